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
3. The initial parameters come from ``init``: by default (``"lloyd"``) a
   weighted k-means (k-means++ seeding and Lloyd iterations, numba) on the
   distinct colours with their exact pixel counts; or a :class:`~pixgmm.Mixture`;
   or another method run on at most 100,000 points drawn by weight.
4. The EM runs in pixgmm's numba engine (``pixgmm._engine.emfit`` over
   ``pixgmm._engine.em``): E-step and sufficient
   statistics fused per block of pixels, float64 accumulation, no N x K
   responsibility matrix. The M-step and the stopping rule are scikit-learn's
   ``GaussianMixture``'s: ``reg_covar`` added to the diagonal, the lower bound is
   the mean log-likelihood per pixel (weighted) before each M-step, and the EM
   stops when it changes by less than ``tol`` (``tol=0``: exactly ``max_iter``
   iterations). From the same start and on the same pixels the parameters equal
   scikit-learn's to rounding.

scikit-learn is needed only for ``init="kmeans"`` (``pip install "pixgmm[fit]"``);
the default ``init="lloyd"``, ``"k-means++"`` and ``"random"`` need nothing beyond
NumPy and numba.

Layout: this module holds the public functions and :class:`FitResult`;
``pixgmm._fitinput`` checks their arguments and turns pixels into points;
``pixgmm._fitresult`` starts a fit, runs it on points and builds its result;
``pixgmm._engine.emfit`` runs the EM; :mod:`pixgmm.classfit` fits one mixture per
class (:class:`ClassHistograms`, :func:`fit_classes`, :func:`fit_classes_em`,
re-exported here); :mod:`pixgmm.training` fits one per class of training samples
(polygons, points, a label raster) over a georeferenced image
(:func:`fit_training`, :func:`fit_training_em`, re-exported here).
"""

from __future__ import annotations

import dataclasses

from . import _fitinput as _in
from ._docshare import shared_sections
from ._fitinput import INIT_METHODS
from ._fitresult import (
    ConvergenceWarning,
    EmptyComponentWarning,
    FitResult,
    _fit_counts,
    n_parameters,
)
from .classfit import ClassHistograms, fit_classes, fit_classes_em
from .training import fit_training, fit_training_em

for _public in (ConvergenceWarning, EmptyComponentWarning, FitResult, n_parameters):
    _public.__module__ = __name__  # documented, pickled and shown as pixgmm.fitting's

__all__ = [
    "INIT_METHODS",
    "ClassHistograms",
    "ConvergenceWarning",
    "EmptyComponentWarning",
    "FitResult",
    "fit",
    "fit_classes",
    "fit_classes_em",
    "fit_em",
    "fit_training",
    "fit_training_em",
    "n_parameters",
]


#: The Parameters and Raises sections :func:`fit` and :func:`fit_em` share (``fit`` is
#: ``fit_em`` returning only the mixture), put into both docstrings at their lines
#: ``%(fit_parameters)s`` and ``%(fit_raises)s``.
_FIT_PARAMETERS = """\
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
        The form of the components' covariances, as scikit-learn's.
    init : {"lloyd", "kmeans", "k-means++", "random"} or Mixture, default "lloyd"
        The start of the EM. ``"lloyd"``: weighted k-means in pixgmm's numba
        engine on the distinct colours (or rows) with their exact weights:
        greedy k-means++ seeding as scikit-learn's, then at most 20 Lloyd
        iterations (stopping as scikit-learn's ``KMeans``); beyond 400,000
        distinct values the seeding and these iterations run on 100,000 pixels
        drawn by weight, then 2 more iterations on every distinct value. Each
        cluster of every distinct value gives a component, as scikit-learn's
        ``init_params="kmeans"``. (Beyond 2**21 distinct values, e.g. float
        pixels, "every distinct value" is 2**21 pixels drawn by weight.) ``"kmeans"``: scikit-learn's
        ``KMeans`` (needs ``pixgmm[fit]``) with the pixel counts as sample
        weights, on at most 100,000 points drawn by weight. ``"k-means++"``:
        weighted k-means++ seeding then every point to its nearest seed (NumPy
        only; 100,000 points); ``"random"``: random responsibilities. The EM
        then runs on every pixel. A :class:`~pixgmm.Mixture` starts from its
        parameters (warm start); its weights are renormalised.
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
    scale : {"raw", "0..255", "0..1"}, optional
        The value scale of ``pixels``: ``"raw"`` (values as read from the image,
        e.g. 16-bit reflectances), ``"0..255"`` (8-bit colours, or wider
        pixels brought to that scale) or ``"0..1"``. Recorded in the mixture's
        :attr:`~pixgmm.Mixture.training` (with the pixel count) and its file, so
        that ``pixgmm classify --scale auto`` reads images on the same scale.
        Default: not recorded.
"""


_FIT_RAISES = """\
    Raises
    ------
    ValueError
        Fewer distinct pixel values than components, a zero total weight,
        infinite pixel values, a covariance that became singular, or a bad
        argument.
    ImportError
        ``init="kmeans"`` without scikit-learn.
    TypeError
        An argument of the wrong type, e.g. a ``callback`` that is not callable.
"""


_fit_sections = shared_sections(fit_parameters=_FIT_PARAMETERS, fit_raises=_FIT_RAISES)


@_fit_sections
def fit_em(
    pixels,
    n_components,
    covariance_type="diag",
    *,
    init="lloyd",
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
    scale=None,
):
    """Fit a Gaussian mixture to every pixel and report how the fit went.

    Takes the arguments of :func:`fit` and returns a :class:`FitResult`
    (``result.mixture`` is what :func:`fit` returns).

    %(fit_parameters)s

    Returns
    -------
    FitResult

    %(fit_raises)s

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
    counts, multi = _in.check_components(n_components)
    max_iter, tol, n_init, max_samples = _in.check_options(
        covariance_type, init, max_iter, tol, n_init, max_samples, criterion
    )
    seed = _in.seed_of(random_state)
    if callback is not None and not callable(callback):
        raise TypeError(
            f"callback must be callable as callback(n_iter, lower_bound), got {callback!r}"
        )
    scale = _in.check_scale(scale)
    if _in.is_dask_array(pixels):
        points = _in.dask_points(pixels, channel_axis, sample_weight, max_samples, "pixels")
        dtype = pixels.dtype
        n_pixels = pixels.size // (1 if channel_axis is None else pixels.shape[channel_axis])
    else:
        px, spatial = _in.pixel_matrix(pixels, channel_axis, "pixels")
        w = None if sample_weight is None else _in.check_weights(sample_weight, spatial)
        dtype = px.dtype
        n_pixels = px.shape[0]
        _in.check_channels(channels, px.shape[1])
        points = _in.pixel_points(px, w, max_samples, seed, "pixels")
    _in.check_channels(channels, points.n_features)
    reg_covar = _in.check_reg_covar(reg_covar, dtype)
    result = _fit_counts(
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
    if scale is None:
        return result
    record = {"n_pixels": int(n_pixels) - result.n_nan, "scale": scale}
    return dataclasses.replace(result, mixture=result.mixture.with_training(record))


@_fit_sections
def fit(
    pixels,
    n_components,
    covariance_type="diag",
    *,
    init="lloyd",
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
    scale=None,
):
    """Fit a Gaussian mixture to every pixel of an image or a list of pixels.

    %(fit_parameters)s

    Returns
    -------
    Mixture
        Weights summing to 1, ``reg_covar`` included in the covariances.

    %(fit_raises)s

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
    >>> pixgmm.fit(image, 1, scale="0..255").training
    {'n_pixels': 4096, 'scale': '0..255'}
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
        scale=scale,
    ).mixture
