"""Fitting Gaussian mixtures to every pixel: pixgmm's own weighted EM.

:func:`fit` and :func:`fit_classes` return :class:`pixgmm.Mixture` objects;
:func:`fit_em` and :func:`fit_classes_em` take the same arguments and return
:class:`FitResult` objects with the fit's diagnostics (converged or not,
iterations, log-likelihood, BIC/AIC, how the pixels were compressed).

How a fit runs
--------------
1. The pixels (any dtype, any channel axis, NumPy or Dask) are read once.
   Pixels with a NaN in any channel are skipped and counted; infinite values
   are an error. Every pixel is used unless ``max_samples`` is given.
2. Integer pixels are compressed exactly: 8-bit pixels with up to 3 channels to
   their colour histogram (distinct colours weighted by their pixel counts),
   other integers to their distinct rows with counts where that at least halves
   them. An EM on the compressed points *is* the EM on every pixel.
3. The initial parameters come from ``init`` (a :class:`~pixgmm.Mixture`, or a
   method run on at most 100,000 points drawn by weight).
4. The EM runs in pixgmm's numba engine (``pixgmm._em``): E-step and sufficient
   statistics fused per block of pixels, float64 accumulation, no N x K
   responsibility matrix. The M-step and the stopping rule are scikit-learn's
   ``GaussianMixture``'s: ``reg_covar`` added to the diagonal, the lower bound is
   the mean log-likelihood per pixel (weighted) before each M-step, and the EM
   stops when it changes by less than ``tol`` (``tol=0``: exactly ``max_iter``
   iterations). From the same start and on the same pixels the parameters equal
   scikit-learn's to rounding.

scikit-learn is needed only for ``init="kmeans"`` (``pip install "pixgmm[fit]"``);
``init="k-means++"`` and ``init="random"`` need nothing beyond NumPy.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import operator
import warnings
from collections.abc import Sequence

import numpy as np

from ._engine import em as _em
from ._engine import histfit as _histfit
from ._validation import (
    as_image_array,
    check_image_dtype,
    native_kernel_dtype,
    normalize_channel_axis,
    normalize_channels,
)
from .mixture import COVARIANCE_TYPES, Mixture

_INSTALL = 'pip install "pixgmm[fit]"'
INIT_METHODS = ("kmeans", "k-means++", "random")
#: Initialisation methods run on at most this many points (drawn by weight).
INIT_SAMPLES = 100_000
#: A component whose share of the total weight falls below this is dropped.
EMPTY_SHARE = 1e-10
#: Dask float arrays up to this size are persisted for the distributed EM.
PERSIST_BYTES = 2 << 30


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


# -- argument checks --------------------------------------------------------------------


def _check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_components(n_components, name="n_components"):
    """A tuple of component counts (one entry unless a range was given)."""
    if isinstance(n_components, (Sequence, range, np.ndarray)) and not isinstance(
        n_components, (str, bytes)
    ):
        counts = tuple(_check_int(k, f"{name}[{i}]", 1) for i, k in enumerate(n_components))
        if not counts:
            raise ValueError(f"{name} is empty; pass a count or a range such as range(2, 17)")
        if len(set(counts)) != len(counts):
            raise ValueError(f"{name}={list(counts)!r} repeats a count; list each count once")
        return counts, True
    return (_check_int(n_components, name, 1),), False


def _check_options(covariance_type, init, max_iter, tol, n_init, max_samples, criterion):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}; "
            f"got {covariance_type!r}"
        )
    if not isinstance(init, Mixture) and init not in INIT_METHODS:
        raise ValueError(
            f"init must be a pixgmm.Mixture or one of {', '.join(map(repr, INIT_METHODS))}; "
            f"got {init!r}"
        )
    max_iter = _check_int(max_iter, "max_iter", 1)
    n_init = _check_int(n_init, "n_init", 1)
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a number, got {tol!r}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    if max_samples is not None:
        max_samples = _check_int(max_samples, "max_samples", 1)
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion must be 'bic' or 'aic', got {criterion!r}")
    return max_iter, float(tol), n_init, max_samples


def _check_reg_covar(reg_covar, dtype):
    """The ``reg_covar`` to use: ``"auto"`` is 1.0 for integer pixels, 1e-6 otherwise."""
    if isinstance(reg_covar, str) and reg_covar == "auto":
        return 1.0 if np.dtype(dtype).kind in "ui" else 1e-6
    if isinstance(reg_covar, (bool, np.bool_)) or not isinstance(reg_covar, numbers.Real):
        raise TypeError(f"reg_covar must be a number or 'auto', got {reg_covar!r}")
    if not (math.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar}")
    return float(reg_covar)


def _seed(random_state):
    """An integer seed (0 <= seed < 2**32) from an int, a Generator, a RandomState or None."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**32))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(2**31))
    if random_state is None:
        return int(np.random.default_rng().integers(2**32))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= random_state < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32), got {random_state}")
        return int(random_state)
    raise TypeError(
        "random_state must be None, an integer, a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {type(random_state).__name__}"
    )


def _check_channels(channels, n_channels):
    """Fail before fitting, not after, when ``channels`` cannot name the pixels' channels."""
    names = normalize_channels(channels)
    if names is not None and len(names) != n_channels:
        raise ValueError(
            f"channels={channels!r} names {len(names)} channel(s) but the pixels have "
            f"{n_channels}; pass one name per channel, in the pixels' order"
        )
    return names


def _is_dask_array(x):
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "map_blocks")


# -- pixels to points -------------------------------------------------------------------


def _pixel_matrix(image, channel_axis, name):
    """``(pixels (N, C) in a native dtype, spatial shape)`` without copying when possible."""
    arr = as_image_array(image, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass an image (..., C) or pixels (N, C)")
    axis = normalize_channel_axis(channel_axis, arr.ndim)
    if axis is None:
        spatial, arr = arr.shape, arr.reshape(-1, 1)
    else:
        if axis != arr.ndim - 1:
            arr = np.moveaxis(arr, axis, -1)
        spatial, arr = arr.shape[:-1], arr.reshape(-1, arr.shape[-1])
    kdtype = native_kernel_dtype(arr.dtype)
    if arr.dtype != kdtype:
        arr = arr.astype(kdtype)
    return arr, spatial


def _check_weights(sample_weight, spatial, name="sample_weight"):
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "uif" or w.dtype.kind == "b":
        raise TypeError(f"{name} must be an array of non-negative numbers, got dtype {w.dtype}")
    if w.shape != tuple(spatial):
        raise ValueError(
            f"{name} has shape {w.shape} but the pixels have spatial shape {tuple(spatial)}; "
            "pass one weight per pixel"
        )
    w = np.ascontiguousarray(w, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise ValueError(f"{name} must be finite and >= 0 for every pixel")
    return w


def _nonfinite(px, name):
    """NaN pixels of float pixels (N, D); infinite values are an error."""
    if px.dtype.kind != "f":
        return 0
    n_nan, n_inf = _em.count_nonfinite(px, _em.n_tasks(px.shape[0]))
    if n_inf:
        raise ValueError(
            f"{name} contains {n_inf} infinite value(s); only NaN pixels are skipped, replace "
            "infinities (e.g. with np.nan) before fitting"
        )
    return int(n_nan)


def _points(px, w, max_samples, seed, name):
    """:class:`_histfit.Points` for pixels (N, D) with optional weights (N,)."""
    n_nan = _nonfinite(px, name)
    if n_nan:  # drop them here: compression and sampling then see clean pixels
        keep = ~np.isnan(px).any(axis=1)
        px = px[keep]
        w = None if w is None else w[keep]
    if max_samples is not None and px.shape[0] > max_samples:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(px.shape[0], size=max_samples, replace=False))
        px, w = px[idx], (None if w is None else w[idx])
    n_pixels = px.shape[0]
    total = float(n_pixels) if w is None else float(w.sum())
    X, ww, how = _histfit.compress(px, w)
    if ww is not None and how == "none":
        keep = ww > 0
        if not keep.all():
            X, ww = X[keep], ww[keep]
    return _histfit.Points(
        np.ascontiguousarray(X),
        ww,
        compression=how,
        n_pixels=n_pixels,
        n_nan=n_nan,
        total_weight=total,
    )


def _dask_points(arr, channel_axis, sample_weight, max_samples, name):
    check_image_dtype(arr.dtype, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass an image (..., C) or pixels (N, C)")
    if sample_weight is not None or max_samples is not None:
        raise ValueError(
            "sample_weight and max_samples are not supported with a dask array; fit every "
            "pixel, or subsample the array first (e.g. image[::2, ::2])"
        )
    axis = normalize_channel_axis(channel_axis, arr.ndim)
    if axis is None:
        arr = arr[..., None]
    elif axis != arr.ndim - 1:
        arr = arr.transpose(*[i for i in range(arr.ndim) if i != axis], axis)
    if arr.numblocks[-1] != 1:
        arr = arr.rechunk({arr.ndim - 1: -1})
    n_pixels = int(np.prod(arr.shape[:-1]))
    if arr.dtype == np.uint8 and arr.shape[-1] <= 3:
        X, counts = _histfit.dask_histogram(arr)
        return _histfit.Points(
            X,
            counts,
            compression="histogram",
            n_pixels=n_pixels,
            n_nan=0,
            total_weight=float(n_pixels),
        )
    kdtype = native_kernel_dtype(arr.dtype)
    if arr.dtype != kdtype:
        arr = arr.astype(kdtype)
    points = _histfit.DaskPoints(arr, PERSIST_BYTES)
    if points.n_inf:
        raise ValueError(
            f"{name} contains {points.n_inf} infinite value(s); only NaN pixels are skipped, "
            "replace infinities (e.g. with np.nan) before fitting"
        )
    return points


# -- initialisation ---------------------------------------------------------------------


def _init_sample(points, seed):
    """At most INIT_SAMPLES points (float64) and weights, drawn by weight."""
    if isinstance(points, _histfit.DaskPoints):
        X = points.sample(INIT_SAMPLES, seed)
        return X, np.ones(X.shape[0])
    X, w = points.X, points.w
    n = X.shape[0]
    if n <= INIT_SAMPLES:
        return np.asarray(X, dtype=np.float64), (np.ones(n) if w is None else w)
    rng = np.random.default_rng(seed)
    if w is None:
        idx = np.sort(rng.choice(n, size=INIT_SAMPLES, replace=False))
        return np.asarray(X[idx], dtype=np.float64), np.ones(INIT_SAMPLES)
    idx, counts = np.unique(rng.choice(n, size=INIT_SAMPLES, p=w / w.sum()), return_counts=True)
    return np.asarray(X[idx], dtype=np.float64), counts.astype(np.float64)


def _kmeans_plus_plus(X, w, k, rng):
    """Weighted k-means++ seeding: indices of k rows of X."""
    first = rng.choice(X.shape[0], p=w / w.sum())
    seeds = [first]
    d2 = ((X - X[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        total = p.sum()
        if not total > 0:
            raise ValueError(
                f"the pixels have only {len(seeds)} distinct value(s), fewer than "
                f"n_components={k}; pass a smaller n_components"
            )
        nxt = rng.choice(X.shape[0], p=p / total)
        seeds.append(nxt)
        d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(axis=1))
    return np.array(seeds)


def _require_sklearn(what):
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ImportError(
            f"{what} needs scikit-learn, which is not installed; install it with {_INSTALL}, "
            "or pass init='k-means++', which needs no scikit-learn"
        ) from None
    return KMeans


def _gaussian_mixture_class():
    """scikit-learn's ``GaussianMixture`` (ImportError naming the extra without it).

    Not used by the EM. Kept only for ``pixgmm fit``'s early check that scikit-learn is
    installed; the CLI should check ``_require_sklearn`` for ``init="kmeans"`` instead.
    """
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        raise ImportError(
            f"pixgmm.fit needs scikit-learn, which is not installed; install it with {_INSTALL}"
        ) from None
    return GaussianMixture


def _initial_resp(X, w, k, method, seed, random_state_obj):
    if method == "kmeans":
        KMeans = _require_sklearn("init='kmeans'")
        labels = (
            KMeans(n_clusters=k, n_init=1, random_state=random_state_obj)
            .fit(X, sample_weight=w)
            .labels_
        )
        resp = np.zeros((X.shape[0], k))
        resp[np.arange(X.shape[0]), labels] = 1.0
        return resp
    rng = np.random.default_rng(seed)
    if method == "random":
        resp = rng.uniform(size=(X.shape[0], k))
        return resp / resp.sum(axis=1, keepdims=True)
    seeds = _kmeans_plus_plus(X, w, k, rng)
    d2 = ((X[:, None, :] - X[seeds][None, :, :]) ** 2).sum(axis=2)
    resp = np.zeros((X.shape[0], k))
    resp[np.arange(X.shape[0]), d2.argmin(axis=1)] = 1.0
    return resp


def _params_from_resp(X, w, resp, covariance_type, reg_covar):
    """Initial (weights, means, covariances) from responsibilities, as scikit-learn's M-step."""
    shift = np.average(X, axis=0, weights=w)
    d = X - shift
    rw = resp * w[:, None]
    nk = rw.sum(axis=0)
    sx = rw.T @ d
    sxx = np.einsum("nk,nc,ne->kce", rw, d, d)
    k = resp.shape[1]
    return _em.m_step(
        nk, sx, sxx, np.broadcast_to(shift, (k, X.shape[1])), covariance_type, reg_covar
    )


# -- the EM loop ------------------------------------------------------------------------


def _ill_defined(reg_covar):
    return ValueError(
        "a component's covariance became singular (it collapsed onto too few distinct "
        f"values) with reg_covar={reg_covar:g}; pass a larger reg_covar (e.g. 1.0 for 8-bit "
        "pixels), fewer components, or float pixels with more distinct values"
    )


def _run_em(points, weights, means, prec, covariance_type, reg_covar, max_iter, tol, callback):
    """Run EM from (weights, means, precision factors); returns a dict of the outcome."""
    second = _em.SECOND_DIAG if covariance_type in ("diag", "spherical") else _em.SECOND_FULL
    lower_bound = -np.inf
    history = []
    converged = False
    n_dropped = 0
    cov = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        full = covariance_type in ("full", "tied") or not _is_diagonal(prec)
        coef = _em.log_coefficients(weights, prec)
        nk, sx, sxx, ll, wsum, _ = points.stats(means, prec, coef, full, second)
        prev, lower_bound = lower_bound, ll / wsum
        history.append(lower_bound)
        empty = nk < EMPTY_SHARE * wsum
        if empty.any():
            if empty.all():
                raise ValueError("every component lost its weight; check the pixels and init")
            n_dropped += int(empty.sum())
            warnings.warn(
                f"{int(empty.sum())} component(s) lost all their weight at iteration {n_iter} "
                f"and were dropped; the mixture has {int((~empty).sum())} component(s). Pass "
                "fewer components or another init/random_state to keep them all",
                EmptyComponentWarning,
                stacklevel=4,
            )
            keep = ~empty
            nk, sx, sxx, means = nk[keep], sx[keep], sxx[keep], means[keep]
        weights, means, cov = _em.m_step(nk, sx, sxx, means, covariance_type, reg_covar)
        try:
            prec = _em.precision_cholesky(cov, covariance_type, *means.shape)
        except _em.IllDefinedCovariance:
            raise _ill_defined(reg_covar) from None
        if callback is not None:
            callback(n_iter, lower_bound)
        if abs(lower_bound - prev) < tol:
            converged = True
            break
    coef = _em.log_coefficients(weights, prec)
    full = covariance_type in ("full", "tied") or not _is_diagonal(prec)
    _, _, _, ll, wsum, _ = points.stats(means, prec, coef, full, 0)
    return {
        "weights": weights,
        "means": means,
        "cov": cov,
        "converged": converged,
        "n_iter": n_iter,
        "lower_bound": lower_bound,
        "lower_bounds": tuple(history),
        "ll_sum": ll,
        "wsum": wsum,
        "n_dropped": n_dropped,
    }


def _is_diagonal(prec):
    d = prec.shape[1]
    off = prec.copy()
    off[:, np.arange(d), np.arange(d)] = 0.0
    return not off.any()


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
        prec = _em.precision_cholesky(cov, covariance_type, *means.shape)
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
    best = None
    if isinstance(init, Mixture):
        if init.n_components != k:
            raise ValueError(
                f"init has {init.n_components} components but n_components={k}; pass the same count"
            )
        starts = [("mixture", _start_from_mixture(init, d, covariance_type, channels))]
    else:
        starts = None
    rs = np.random.RandomState(seed)  # one stream across starts, as scikit-learn's n_init
    seeds = np.random.SeedSequence(seed).generate_state(n_init)
    for i in range(1 if starts else n_init):
        if starts:
            name, (weights, means, prec) = starts[0]
        else:
            name = init
            Xs, ws = _init_sample(points, int(seeds[i]))
            resp = _initial_resp(Xs, ws, k, init, int(seeds[i]), rs)
            weights, means, cov = _params_from_resp(Xs, ws, resp, covariance_type, reg_covar)
            try:
                prec = _em.precision_cholesky(cov, covariance_type, k, d)
            except _em.IllDefinedCovariance:
                raise _ill_defined(reg_covar) from None
        run = _run_em(
            points, weights, means, prec, covariance_type, reg_covar, max_iter, tol, callback
        )
        run["init"] = name
        if best is None or run["lower_bound"] > best["lower_bound"]:
            best = run
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


def fit_em(
    pixels,
    n_components,
    covariance_type="diag",
    *,
    init="kmeans",
    max_iter=100,
    tol=1e-3,
    n_init=1,
    reg_covar="auto",
    sample_weight=None,
    max_samples=None,
    random_state=0,
    channels=None,
    channel_axis=-1,
    criterion="bic",
    callback=None,
):
    """Fit a Gaussian mixture to every pixel and report how the fit went.

    Takes the arguments of :func:`fit` and returns a :class:`FitResult`
    (``result.mixture`` is what :func:`fit` returns).

    Returns
    -------
    FitResult

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.fitting import fit_em
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal([200, 120, 90], 10, size=(64, 64, 3)).clip(0, 255).astype(np.uint8)
    >>> result = fit_em(image, 2, init="k-means++")
    >>> result.converged, result.compression, result.n_samples
    (True, 'histogram', 4096.0)
    >>> best = fit_em(image, range(1, 4), init="k-means++")  # model selection by BIC
    >>> [r.n_components for r in best.candidates], best.n_components
    ([1, 2, 3], 1)
    """
    counts, multi = _check_components(n_components)
    max_iter, tol, n_init, max_samples = _check_options(
        covariance_type, init, max_iter, tol, n_init, max_samples, criterion
    )
    seed = _seed(random_state)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable as callback(n_iter, lower_bound), got {callback!r}"
        )
    if _is_dask_array(pixels):
        points = _dask_points(pixels, channel_axis, sample_weight, max_samples, "pixels")
        dtype = pixels.dtype
    else:
        px, spatial = _pixel_matrix(pixels, channel_axis, "pixels")
        w = None if sample_weight is None else _check_weights(sample_weight, spatial)
        dtype = px.dtype
        _check_channels(channels, px.shape[1])
        points = _points(px, w, max_samples, seed, "pixels")
    _check_channels(channels, points.n_features)
    reg_covar = _check_reg_covar(reg_covar, dtype)
    return _fit_counts(
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
        "pixels",
    )


def fit(
    pixels,
    n_components,
    covariance_type="diag",
    *,
    init="kmeans",
    max_iter=100,
    tol=1e-3,
    n_init=1,
    reg_covar="auto",
    sample_weight=None,
    max_samples=None,
    random_state=0,
    channels=None,
    channel_axis=-1,
    criterion="bic",
    callback=None,
):
    """Fit a Gaussian mixture to every pixel of an image or a list of pixels.

    Parameters
    ----------
    pixels : array_like or dask array
        An image (..., C) with channels along ``channel_axis``, or pixels (N, C),
        in any integer or floating dtype. Pixels with a NaN in any channel are
        skipped (``FitResult.n_nan`` counts them); infinite values are an error.
        A dask array is fitted without loading it: 8-bit images with up to 3
        channels by a distributed colour histogram, anything else by a
        distributed EM over its blocks (persisted when at most 2 GiB).
    n_components : int or sequence of int
        Number of Gaussian components; a range (e.g. ``range(2, 17)``) fits
        every count and keeps the best by ``criterion``.
    covariance_type : {"diag", "full", "spherical", "tied"}, default "diag"
    init : {"kmeans", "k-means++", "random"} or Mixture, default "kmeans"
        The start of the EM. ``"kmeans"``: scikit-learn's ``KMeans`` (needs
        ``pixgmm[fit]``) with the pixel counts as sample weights;
        ``"k-means++"``: weighted k-means++ seeding then every point to its
        nearest seed (NumPy only); ``"random"``: random responsibilities.
        These run on at most 100,000 points drawn by weight; the EM then runs
        on every pixel. A :class:`~pixgmm.Mixture` starts from its parameters
        (warm start); its weights are renormalised.
    max_iter : int, default 100
        EM iterations at most.
    tol : float, default 1e-3
        Stop when the mean log-likelihood per pixel changes by less than this;
        ``tol=0`` runs exactly ``max_iter`` iterations.
    n_init : int, default 1
        Initialisations to try (not with a Mixture ``init``); the one with the
        highest final lower bound is kept.
    reg_covar : float or "auto", default "auto"
        Added to the diagonal of every covariance at every M-step, as
        scikit-learn's ``reg_covar``. ``"auto"``: 1.0 for integer pixels, 1e-6
        for float pixels. Integer pixels take few distinct values, and a
        component on one colour would shrink its variance towards 0 and its
        likelihood towards infinity; a variance floor of 1 (one grey level
        squared, a bit more than the 1/12 of the rounding to integers) keeps
        every component at least about one level wide.
    sample_weight : array_like, optional
        Non-negative weight of every pixel (the spatial shape of ``pixels``).
        Integer weights give the EM of the pixels repeated that many times.
    max_samples : int, optional
        Fit at most this many pixels, drawn uniformly at random without
        replacement (seeded by ``random_state``). Default: every pixel.
    random_state : int, numpy.random.Generator or None, default 0
        Seed of the initialisation and of any subsample.
    channels : str or sequence of str, optional
        The channel order of ``pixels`` (e.g. ``"RGB"``), stored in the mixture.
    channel_axis : int or None, default -1
        The axis holding the channels; None for a single-channel image.
    criterion : {"bic", "aic"}, default "bic"
        How a range of ``n_components`` is decided (lowest wins).
    callback : callable, optional
        ``callback(n_iter, lower_bound)`` after every EM iteration (progress bars).

    Returns
    -------
    Mixture
        Weights summing to 1, ``reg_covar`` included in the covariances.

    Raises
    ------
    ValueError
        Fewer distinct pixel values than components, a zero total weight,
        infinite pixel values, a covariance that became singular, or a bad
        argument.
    ImportError
        ``init="kmeans"`` without scikit-learn.

    Warns
    -----
    ConvergenceWarning
        The EM stopped at ``max_iter`` before converging (see
        :func:`fit_em` to get ``converged`` and the other diagnostics).
    EmptyComponentWarning
        A component lost all its weight (below 1e-10 of the total) and was
        dropped; the mixture then has fewer components.

    See Also
    --------
    fit_em : the same fit, with its diagnostics (:class:`FitResult`).
    fit_classes : one mixture per labelled class.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal([200, 120, 90], 10, size=(64, 64, 3)).clip(0, 255).astype(np.uint8)
    >>> model = pixgmm.fit(image, 2, channels="RGB", init="k-means++")
    >>> model
    Mixture(n_components=2, n_features=3, covariance_type='diag', channels='RGB')
    >>> bool(np.allclose(model.weights @ model.means, image.reshape(-1, 3).mean(0)))
    True
    """
    return fit_em(
        pixels,
        n_components,
        covariance_type,
        init=init,
        max_iter=max_iter,
        tol=tol,
        n_init=n_init,
        reg_covar=reg_covar,
        sample_weight=sample_weight,
        max_samples=max_samples,
        random_state=random_state,
        channels=channels,
        channel_axis=channel_axis,
        criterion=criterion,
        callback=callback,
    ).mixture


# -- many images, many classes ----------------------------------------------------------


class ClassHistograms:
    """Labelled pixels accumulated image by image, for one EM per class.

    8-bit pixels with up to 3 channels are counted into one colour histogram
    per class (a dense array of 256**C float64 counts: 128 MiB per class for
    RGB), so memory does not grow with the number of images. Other pixels
    are kept as they are (memory grows with them) and compressed at the fit.

    Parameters
    ----------
    classes : sequence, optional
        The classes to count, in order. Default: every label seen, sorted.
        Pixels whose label is not listed are ignored.
    channel_axis : int or None, default -1
        The axis of every image holding the channels.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.fitting import ClassHistograms
    >>> rng = np.random.default_rng(0)
    >>> acc = ClassHistograms()
    >>> for _ in range(3):  # e.g. images read one at a time from a folder
    ...     image = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    ...     _ = acc.add(image, image[..., 0] > 127)
    >>> acc.classes, acc.n_pixels(True) + acc.n_pixels(False)
    ([False, True], 1800)
    >>> models = acc.fit(2, init="k-means++")
    >>> sorted(models), models[True].n_components
    ([False, True], 2)
    """

    def __init__(self, classes=None, *, channel_axis=-1):
        if classes is not None:
            if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
                raise TypeError(f"classes must be a sequence of labels, got {classes!r}")
            classes = list(classes)
            if not classes:
                raise ValueError("classes is empty; name at least one class to fit")
            if len(set(classes)) != len(classes):
                raise ValueError(f"classes={classes!r} names a class twice")
        self._wanted = classes
        self._channel_axis = channel_axis
        self._counts = {}  # class -> dense colour histogram
        self._parts = {}  # class -> list of pixel arrays
        self._seen = set()
        self._n_nan = {}
        self.n_channels = None
        self.n_images = 0

    @property
    def classes(self):
        """The classes, in fit order (the listed ones, or every label seen, sorted)."""
        if self._wanted is not None:
            return list(self._wanted)
        return sorted(self._seen, key=_sort_key)

    def n_pixels(self, label):
        """Pixels counted so far for ``label``."""
        total = self._counts[label].sum() if label in self._counts else 0.0
        total += sum(p.shape[0] for p in self._parts.get(label, ()))
        return int(total)

    def add(self, image, labels, *, name="image", labels_name="labels"):
        """Count the pixels of one image (..., C) with one label per pixel."""
        px, spatial = _pixel_matrix(image, self._channel_axis, name)
        if self.n_channels is not None and px.shape[1] != self.n_channels:
            raise ValueError(
                f"{name} has {px.shape[1]} channel(s) but the first image has "
                f"{self.n_channels}; every image needs the same channels"
            )
        lab = np.asarray(labels)
        if lab.shape != tuple(spatial):
            raise ValueError(
                f"{labels_name} has shape {lab.shape} but {name} has spatial shape "
                f"{tuple(spatial)} (shape {np.shape(image)}, channel_axis={self._channel_axis}); "
                "pass one label per pixel"
            )
        self.n_channels = px.shape[1]
        lab = lab.reshape(-1)
        present = [v.item() if hasattr(v, "item") else v for v in np.unique(lab)]
        self._seen.update(present)
        hist = px.dtype == np.uint8 and px.shape[1] <= 3
        for c in present:
            if self._wanted is not None and c not in self._wanted:
                continue
            mask = lab == c
            if hist and c not in self._parts:
                self._counts[c] = _histfit.histogram_counts(px, None, self._counts.get(c), mask)
            else:
                if c in self._counts:  # mixed dtypes: the histogram becomes points
                    colours, counts = _histfit.from_counts(self._counts.pop(c), self.n_channels)
                    self._parts[c] = [np.repeat(colours, counts.astype(np.int64), axis=0)]
                self._parts.setdefault(c, []).append(px[mask])
        self.n_images += 1
        return self

    def _class_points(self, c, max_samples, seed):
        if c in self._counts:
            colours, counts = _histfit.from_counts(self._counts[c], self.n_channels)
            if max_samples is not None and counts.sum() > max_samples:
                rng = np.random.default_rng(seed)
                counts = rng.multivariate_hypergeometric(counts.astype(np.int64), max_samples)
                keep = counts > 0
                colours, counts = colours[keep], counts[keep].astype(np.float64)
            n = int(counts.sum())
            return _histfit.Points(
                colours,
                counts,
                compression="histogram",
                n_pixels=n,
                n_nan=0,
                total_weight=float(n),
            )
        parts = self._parts[c]
        px = parts[0] if len(parts) == 1 else np.concatenate(parts)
        return _points(px, None, max_samples, seed, f"class {c!r}")

    def fit_em(self, n_components, covariance_type="diag", **options):
        """One :class:`FitResult` per class: ``{label: FitResult}`` (options as :func:`fit`)."""
        return _fit_accumulated(self, n_components, covariance_type, **options)

    def fit(self, n_components, covariance_type="diag", **options):
        """One :class:`~pixgmm.Mixture` per class: ``{label: Mixture}`` (options as :func:`fit`)."""
        return {
            c: r.mixture for c, r in self.fit_em(n_components, covariance_type, **options).items()
        }


def _sort_key(v):
    return (type(v).__name__, v)


def _fit_accumulated(
    acc,
    n_components,
    covariance_type="diag",
    *,
    init="kmeans",
    max_iter=100,
    tol=1e-3,
    n_init=1,
    reg_covar="auto",
    max_samples=None,
    random_state=0,
    channels=None,
    criterion="bic",
    callback=None,
):
    max_iter, tol, n_init, max_samples = _check_options(
        covariance_type, init, max_iter, tol, n_init, max_samples, criterion
    )
    if acc.n_images == 0:
        raise ValueError("no image was added; add labelled images before fitting")
    _check_channels(channels, acc.n_channels)
    classes = acc.classes
    if not classes:
        raise ValueError("labels is empty; there are no pixels to fit")
    if isinstance(n_components, dict):
        missing = [c for c in classes if c not in n_components]
        if missing:
            raise ValueError(
                f"n_components has no entry for class(es) {missing!r}; give every class a number"
            )
        per_class = {c: _check_components(n_components[c], f"n_components[{c!r}]") for c in classes}
    else:
        per_class = dict.fromkeys(classes, _check_components(n_components))
    for c in classes:
        if c not in acc._counts and c not in acc._parts:
            raise ValueError(
                f"class {c!r} has no pixels in labels (labels present: "
                f"{sorted(acc._seen, key=_sort_key)!r}); remove it from classes or label some "
                "pixels with it"
            )
    seed = _seed(random_state)
    integer = any(c in acc._counts for c in classes) or any(
        p.dtype.kind in "ui" for c in classes for p in acc._parts.get(c, ())
    )
    reg = _check_reg_covar(reg_covar, np.uint8 if integer else np.float64)
    results = {}
    for c in classes:
        points = acc._class_points(c, max_samples, seed)
        counts, multi = per_class[c]
        results[c] = _fit_counts(
            points,
            counts,
            multi,
            covariance_type,
            init,
            max_iter,
            tol,
            n_init,
            reg,
            seed,
            channels,
            criterion,
            callback,
            f"class {c!r}",
        )
    return results


def _as_image_list(images, labels):
    """Pair images with label arrays: one image, or equal-length lists of them."""
    if isinstance(images, (list, tuple)) and all(hasattr(im, "ndim") for im in images):
        if not isinstance(labels, (list, tuple)) or len(labels) != len(images):
            got = (
                f"{len(labels)} label arrays"
                if isinstance(labels, (list, tuple))
                else (f"a single {type(labels).__name__}")
            )
            raise ValueError(
                f"images is a list of {len(images)} image(s), so labels must be a list with one "
                f"label mask per image; got {got}"
            )
        if not images:
            raise ValueError("images is empty; pass at least one image")
        return [
            (im, lab, f"images[{i}]", f"labels[{i}]")
            for i, (im, lab) in enumerate(zip(images, labels))
        ]
    return [(images, labels, "images", "labels")]


def fit_classes_em(
    images,
    labels,
    n_components,
    covariance_type="diag",
    *,
    classes=None,
    channel_axis=-1,
    **options,
):
    """:func:`fit_classes` returning ``{label: FitResult}`` with every fit's diagnostics.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.fitting import fit_classes_em
    >>> rng = np.random.default_rng(0)
    >>> image = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    >>> results = fit_classes_em(image, image[..., 1] > 100, 2, init="k-means++")
    >>> {k: (r.compression, r.n_samples) for k, r in results.items()}
    {False: ('histogram', 605.0), True: ('histogram', 995.0)}
    """
    acc = ClassHistograms(classes, channel_axis=channel_axis)
    for image, lab, iname, lname in _as_image_list(images, labels):
        acc.add(image, lab, name=iname, labels_name=lname)
    return acc.fit_em(n_components, covariance_type, **options)


def fit_classes(
    images,
    labels,
    n_components,
    covariance_type="diag",
    *,
    classes=None,
    channel_axis=-1,
    **options,
):
    """Fit one Gaussian mixture per class from labelled pixels.

    The pixels of every image are counted per class (a colour histogram for
    8-bit images with up to 3 channels, so memory does not grow with the
    number of images), then one EM per class runs as in :func:`fit`. To
    stream images from disk, use :class:`ClassHistograms` directly.

    Parameters
    ----------
    images : array_like or list of array_like
        An image (..., C), a pixel array (N, C), or a list of images (each
        with the same number of channels).
    labels : array_like or list of array_like
        The class of every pixel: an array of the image's spatial shape (for
        pixels (N, C), a vector of length N), or a list of them, one per image.
        Any hashable values (integers, booleans, strings).
    n_components : int, sequence of int or dict
        Components per class (a range: chosen by ``criterion``); a dict gives
        each class its own.
    covariance_type : {"diag", "full", "spherical", "tied"}, default "diag"
    classes : sequence, optional
        The classes to fit, in order. Default: every distinct label, sorted.
        Pixels whose label is not listed are ignored (e.g. an "unlabelled" value).
    channel_axis : int or None, default -1
    **options
        ``init``, ``max_iter``, ``tol``, ``n_init``, ``reg_covar``,
        ``max_samples`` (per class), ``random_state``, ``channels``,
        ``criterion``, ``callback``: as in :func:`fit`.

    Returns
    -------
    dict
        ``{label: Mixture}`` in the order of ``classes``; ready for
        :class:`pixgmm.Classifier` or, with two classes, :class:`pixgmm.SkinDetector`.

    Raises
    ------
    ValueError
        A label array whose shape differs from its image's spatial shape, a
        class in ``classes`` with no pixels, or a class with fewer distinct
        pixel values than components.

    See Also
    --------
    fit_classes_em : the same, returning :class:`FitResult` objects.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(60, 8, size=(40, 40, 3))
    >>> mask = np.zeros((40, 40), bool)
    >>> mask[:, 20:] = True
    >>> image[mask] += 100
    >>> models = pixgmm.fit_classes(image, mask, 1, channels="RGB")
    >>> {k: np.round(m.means[0], -1).tolist() for k, m in models.items()}
    {False: [60.0, 60.0, 60.0], True: [160.0, 160.0, 160.0]}
    """
    results = fit_classes_em(
        images,
        labels,
        n_components,
        covariance_type,
        classes=classes,
        channel_axis=channel_axis,
        **options,
    )
    return {c: r.mixture for c, r in results.items()}
