"""The core of a fit: its start, its run on points, and its result (:class:`FitResult`).

Private to the public layer: :mod:`pixgmm.fitting` (one mixture) and
:mod:`pixgmm.classfit` (one per class) both build on it, and
:mod:`pixgmm.fitting` re-exports its public names, so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from ._engine import emfit as _emfit
from ._engine import mstep as _mstep
from .mixture import Mixture

_INSTALL = 'pip install "pixgmm[fit]"'


class ConvergenceWarning(UserWarning):
    """The EM stopped at ``max_iter`` before the lower bound changed by less than ``tol``."""


class EmptyComponentWarning(UserWarning):
    """A component lost (almost) all its weight during the EM and was dropped."""


@dataclasses.dataclass(frozen=True)
class FitResult:
    """A fitted mixture and how the fit went.

    Attributes
    ----------
    mixture : Mixture
        The fitted mixture (weights sum to 1, ``reg_covar`` included in the covariances).
    converged : bool
        True when the lower bound changed by less than ``tol``.
    n_iter : int
        EM iterations run (of the best of ``n_init`` starts).
    lower_bound : float
        scikit-learn's ``lower_bound_``: the mean log-likelihood per pixel
        (weighted) of the parameters before the last M-step.
    lower_bounds : tuple of float
        The lower bound after every iteration.
    log_likelihood : float
        Mean log-likelihood per pixel (weighted) of the returned mixture.
    bic, aic : float
        ``-2 L + p log n`` and ``-2 L + 2 p``, with ``L`` the total (weighted)
        log-likelihood, ``p`` the free parameters and ``n`` the total weight
        (the number of pixels without ``sample_weight``); as scikit-learn's.
    n_samples : float
        Total weight of the pixels fitted (their number without ``sample_weight``).
    n_points : int
        Points the EM ran on: distinct colours or rows after compression.
    compression : {"histogram", "unique", "none"}
        How the pixels were compressed (see :func:`fit`).
    n_nan : int
        Pixels skipped because a channel is NaN.
    n_dropped : int
        Components dropped because they lost all their weight.
    init : str
        The initialisation used (a method name, or ``"mixture"``).
    candidates : tuple of FitResult
        With a range of ``n_components``: the fit for every count, in order;
        this result is the one with the lowest ``criterion``. Empty otherwise.
    """

    mixture: Mixture
    converged: bool
    n_iter: int
    lower_bound: float
    lower_bounds: tuple
    log_likelihood: float
    bic: float
    aic: float
    n_samples: float
    n_points: int
    compression: str
    n_nan: int
    n_dropped: int
    init: str
    candidates: tuple = ()

    @property
    def n_components(self):
        return self.mixture.n_components


def n_parameters(n_components, n_features, covariance_type):
    """Free parameters of a mixture, as scikit-learn's ``_n_parameters``.

    It counts the means, the covariances and the weights less one (they sum to 1): the
    ``p`` of the ``bic`` and ``aic`` of :class:`FitResult`.

    Parameters
    ----------
    n_components : int
        Components of the mixture.
    n_features : int
        Channels (features) per pixel.
    covariance_type : {"diag", "full", "spherical", "tied"}
        The form of the covariances.

    Returns
    -------
    int
        The count of free parameters.

    Raises
    ------
    KeyError
        ``covariance_type`` is none of the four.

    Examples
    --------
    >>> from pixgmm.fitting import n_parameters
    >>> n_parameters(16, 3, "diag")
    111
    """
    k, d = n_components, n_features
    cov = {
        "full": k * d * (d + 1) / 2,
        "diag": k * d,
        "tied": d * (d + 1) / 2,
        "spherical": k,
    }[covariance_type]
    return int(cov + k * d + k - 1)


def _gaussian_mixture_class():
    """scikit-learn's ``GaussianMixture`` (ImportError naming the extra without it).

    Not used by the EM. Kept only for ``pixgmm fit``'s early check that scikit-learn is
    installed; the CLI should check ``pixgmm._engine.emfit.require_sklearn`` for
    ``init="kmeans"`` instead.
    """
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        raise ImportError(
            f"pixgmm.fit needs scikit-learn, which is not installed; install it with {_INSTALL}"
        ) from None
    return GaussianMixture


# -- the fit of one set of points ------------------------------------------------------


def _start_from_mixture(init, n_features, covariance_type, channels):
    if init.n_features != n_features:
        raise ValueError(
            f"init has {init.n_features} features but the pixels have {n_features} channel(s); "
            "pass a mixture fitted to the same channels"
        )
    if channels is not None and init.channels is not None:
        init = init.with_channels(channels)
    weights = init.weights / init.weights.sum()
    means = np.array(init.means, dtype=np.float64)
    cov = init.covariances
    if init.covariance_type != covariance_type:
        full = init.full_covariances()
        cov = {
            "full": full,
            "tied": full.mean(axis=0),
            "diag": np.diagonal(full, axis1=1, axis2=2).copy(),
            "spherical": np.diagonal(full, axis1=1, axis2=2).mean(axis=1),
        }[covariance_type]
    prec = np.array(init.precisions_cholesky) if cov is init.covariances else None
    if prec is None:
        prec = _mstep.precision_cholesky(cov, covariance_type, *means.shape)
    return weights, means, prec


def _fit_points(
    points,
    k,
    covariance_type,
    init,
    max_iter,
    tol,
    n_init,
    reg_covar,
    seed,
    channels,
    callback,
    subject,
):
    """The best of ``n_init`` EM runs on ``points`` as a :class:`FitResult`."""
    d = points.n_features
    n_distinct = points.n_points
    if not points.total_weight > 0:
        raise ValueError(
            f"{subject} has total weight 0 (no usable pixel, or sample_weight all zero); "
            "pass pixels with a positive weight"
        )
    if n_distinct < k:
        what = "distinct value(s)" if points.compression != "none" else "usable (non-NaN) pixel(s)"
        raise ValueError(
            f"{subject} has {n_distinct} {what}, fewer than n_components={k}; "
            "pass more pixels or a smaller n_components"
        )
    if isinstance(init, Mixture):
        if init.n_components != k:
            raise ValueError(
                f"init has {init.n_components} components but n_components={k}; pass the same count"
            )
        start, name = _start_from_mixture(init, d, covariance_type, channels), "mixture"
    else:
        start, name = None, init

    def on_empty(n_iter, n_empty, n_left):
        warnings.warn(
            f"{n_empty} component(s) lost all their weight at iteration {n_iter} "
            f"and were dropped; the mixture has {n_left} component(s). Pass "
            "fewer components or another init/random_state to keep them all",
            EmptyComponentWarning,
            stacklevel=6,  # the frame of fit_em or ClassHistograms.fit_em, as before the split
        )

    best = _emfit.fit_best(
        points,
        k,
        covariance_type,
        name,
        start,
        max_iter,
        tol,
        n_init,
        reg_covar,
        seed,
        callback,
        on_empty,
    )
    mixture = Mixture(
        best["weights"], best["means"], best["cov"], covariance_type, channels=channels
    )
    p = n_parameters(mixture.n_components, d, covariance_type)
    total, ll = best["wsum"], best["ll_sum"]
    return FitResult(
        mixture=mixture,
        converged=best["converged"],
        n_iter=best["n_iter"],
        lower_bound=float(best["lower_bound"]),
        lower_bounds=best["lower_bounds"],
        log_likelihood=ll / total,
        bic=-2.0 * ll + p * math.log(total),
        aic=-2.0 * ll + 2.0 * p,
        n_samples=total,
        n_points=n_distinct,
        compression=points.compression,
        n_nan=points.n_nan,
        n_dropped=best["n_dropped"],
        init=best["init"],
    )


def _fit_counts(
    points,
    counts,
    multi,
    covariance_type,
    init,
    max_iter,
    tol,
    n_init,
    reg_covar,
    seed,
    channels,
    criterion,
    callback,
    subject,
):
    """One fit per component count; the best by ``criterion`` with the others as candidates."""
    results = [
        _fit_points(
            points,
            k,
            covariance_type,
            init,
            max_iter,
            tol,
            n_init,
            reg_covar,
            seed,
            channels,
            callback,
            subject,
        )
        for k in counts
    ]
    if not multi:
        res = results[0]
    else:
        res = min(results, key=lambda r: getattr(r, criterion))
        res = dataclasses.replace(res, candidates=tuple(results))
    if not res.converged and max_iter > 0 and tol > 0:
        warnings.warn(
            f"{subject}: the EM did not converge in max_iter={max_iter} "
            f"iterations (last change of the mean log-likelihood >= tol={tol:g}); pass a larger "
            "max_iter or tol",
            ConvergenceWarning,
            stacklevel=3,
        )
    return res


# -- public functions -------------------------------------------------------------------
