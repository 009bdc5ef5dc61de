"""Fitting mixtures to pixels with scikit-learn's ``GaussianMixture``.

scikit-learn is an optional dependency (``pip install "pixgmm[fit]"``); it is
imported only when a fit is asked for. Both functions take images (..., C) or
pixel lists (N, C) in any dtype, convert only the pixels they use to float64
(so uint8 never wraps), drop NaN pixels, subsample uniformly at random to
``max_samples`` with a fixed seed and return :class:`pixgmm.Mixture` objects.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from ._validation import as_image_array, normalize_channel_axis, normalize_channels
from .mixture import COVARIANCE_TYPES, Mixture

_INSTALL = 'pip install "pixgmm[fit]"'


def _gaussian_mixture_class():
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        raise ImportError(
            f"pixgmm.fit needs scikit-learn, which is not installed; install it with {_INSTALL}"
        ) from None
    return GaussianMixture


def _check_int(value, name, minimum):
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _check_common(covariance_type, max_samples, reg_covar):
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {', '.join(map(repr, COVARIANCE_TYPES))}; "
            f"got {covariance_type!r}"
        )
    max_samples = _check_int(max_samples, "max_samples", 1)
    if isinstance(reg_covar, bool) or not isinstance(reg_covar, numbers.Real):
        raise TypeError(f"reg_covar must be a number, got {reg_covar!r}")
    if not (np.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar}")
    return max_samples, float(reg_covar)


def _generator(random_state):
    """A numpy Generator for subsampling and an int seed for scikit-learn."""
    if isinstance(random_state, np.random.Generator):
        rng = random_state
    elif isinstance(random_state, np.random.RandomState):
        rng = np.random.default_rng(random_state.randint(2**31))
    elif random_state is None or isinstance(random_state, numbers.Integral):
        if random_state is not None and not 0 <= random_state < 2**32:
            raise ValueError(f"random_state must be in [0, 2**32), got {random_state}")
        rng = np.random.default_rng(random_state)
        if random_state is not None:
            return rng, int(random_state)
    else:
        raise TypeError(
            "random_state must be None, an integer, a numpy.random.Generator or a "
            f"numpy.random.RandomState, got {type(random_state).__name__}"
        )
    return rng, int(rng.integers(2**31))


def _pixel_matrix(image, channel_axis, name):
    """``(pixels (N, C) in the input dtype, spatial shape)`` without copying when possible."""
    arr = as_image_array(image, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass an image (..., C) or pixels (N, C)")
    axis = normalize_channel_axis(channel_axis, arr.ndim)
    if axis is None:
        return arr.reshape(-1, 1), arr.shape
    if axis != arr.ndim - 1:
        arr = np.moveaxis(arr, axis, -1)
    return arr.reshape(-1, arr.shape[-1]), arr.shape[:-1]


def _drop_nan(px, name):
    """Drop pixels with a NaN in any channel; infinities are an error."""
    if px.dtype.kind != "f":
        return px
    finite = np.isfinite(px)
    if finite.all():
        return px
    if np.isinf(px[~finite]).any():
        raise ValueError(
            f"{name} contains infinite values; only NaN pixels are skipped, replace "
            "infinities (e.g. with np.nan) before fitting"
        )
    return px[finite.all(axis=1)]


def _subsample(px, max_samples, rng):
    n = px.shape[0]
    if n <= max_samples:
        return px
    idx = np.sort(rng.choice(n, size=max_samples, replace=False))
    return px[idx]


def _check_channels(channels, n_channels):
    """Fail before fitting, not after, when ``channels`` cannot name the pixels' channels."""
    names = normalize_channels(channels)
    if names is not None and len(names) != n_channels:
        raise ValueError(
            f"channels={channels!r} names {len(names)} channel(s) but the pixels have "
            f"{n_channels}; pass one name per channel, in the pixels' order"
        )


def _fit_matrix(
    px,
    n_components,
    covariance_type,
    max_samples,
    rng,
    seed,
    reg_covar,
    channels,
    gmm_kwargs,
    name,
    what,
):
    px = _drop_nan(px, name)
    if px.shape[0] < n_components:
        raise ValueError(
            f"{what} has {px.shape[0]} usable (non-NaN) pixel(s), fewer than "
            f"n_components={n_components}; pass more pixels or a smaller n_components"
        )
    px = np.asarray(_subsample(px, max_samples, rng), dtype=np.float64)
    if px.shape[0] < n_components:
        raise ValueError(f"max_samples={max_samples} is smaller than n_components={n_components}")
    GaussianMixture = _gaussian_mixture_class()
    try:
        gmm = GaussianMixture(
            n_components=n_components,
            covariance_type=covariance_type,
            reg_covar=reg_covar,
            random_state=seed,
            **gmm_kwargs,
        )
    except TypeError as exc:
        raise TypeError(f"invalid keyword for sklearn.mixture.GaussianMixture: {exc}") from None
    gmm.fit(px)
    return Mixture.from_sklearn(gmm, channels=channels)


def fit(
    pixels,
    n_components,
    covariance_type="diag",
    *,
    max_samples=1_000_000,
    random_state=0,
    reg_covar=1e-6,
    channels=None,
    channel_axis=-1,
    **gmm_kwargs,
):
    """Fit a Gaussian mixture to the pixels of an image or a list of pixels.

    Parameters
    ----------
    pixels : array_like
        An image (..., C) with channels along ``channel_axis``, or pixels (N, C).
        Any integer or floating dtype; only the pixels used are converted to
        float64. Pixels with a NaN in any channel are skipped.
    n_components : int
        Number of Gaussian components.
    covariance_type : {"diag", "full", "spherical", "tied"}, default "diag"
    max_samples : int, default 1_000_000
        At most this many pixels, drawn uniformly at random without replacement,
        are used for the fit.
    random_state : int, numpy.random.Generator or None, default 0
        Seed for the subsample and for scikit-learn's initialisation; the same
        seed and data give the same mixture.
    reg_covar : float, default 1e-6
        Added to every variance (scikit-learn's ``reg_covar``). Integer pixels
        take few distinct values; a larger value (around 1 for 8-bit data)
        keeps a component from collapsing onto a single colour.
    channels : str or sequence of str, optional
        The channel order of ``pixels`` (e.g. ``"RGB"``), stored in the mixture.
    channel_axis : int or None, default -1
        The axis of ``pixels`` holding the channels; None for a single-channel
        image without a channel axis.
    **gmm_kwargs
        Passed to ``sklearn.mixture.GaussianMixture`` (``max_iter``, ``n_init``,
        ``init_params``, ``tol``, ...).

    Returns
    -------
    Mixture

    Raises
    ------
    ImportError
        scikit-learn is not installed.
    ValueError
        Fewer usable pixels than components, infinite pixel values, or a bad
        ``n_components``, ``max_samples``, ``covariance_type`` or ``reg_covar``.

    See Also
    --------
    fit_classes : one mixture per labelled class.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal([200, 120, 90], 10, size=(64, 64, 3)).clip(0, 255).astype(np.uint8)
    >>> model = pixgmm.fit(image, 2, channels="RGB")
    >>> model
    Mixture(n_components=2, n_features=3, covariance_type='diag', channels='RGB')
    >>> bool(np.allclose(model.weights @ model.means, image.reshape(-1, 3).mean(0)))
    True
    """
    n_components = _check_int(n_components, "n_components", 1)
    max_samples, reg_covar = _check_common(covariance_type, max_samples, reg_covar)
    rng, seed = _generator(random_state)
    px, _ = _pixel_matrix(pixels, channel_axis, "pixels")
    _check_channels(channels, px.shape[1])
    return _fit_matrix(
        px,
        n_components,
        covariance_type,
        max_samples,
        rng,
        seed,
        reg_covar,
        channels,
        gmm_kwargs,
        "pixels",
        "pixels",
    )


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


def fit_classes(
    images,
    labels,
    n_components,
    covariance_type="diag",
    *,
    classes=None,
    max_samples=1_000_000,
    random_state=0,
    reg_covar=1e-6,
    channels=None,
    channel_axis=-1,
    **gmm_kwargs,
):
    """Fit one Gaussian mixture per class from labelled pixels.

    Parameters
    ----------
    images : array_like or list of array_like
        An image (..., C), a pixel array (N, C), or a list of images (each
        with the same number of channels).
    labels : array_like or list of array_like
        The class of every pixel: an array of the image's spatial shape (for
        pixels (N, C), a vector of length N), or a list of them, one per image.
        Any hashable values (integers, booleans, strings).
    n_components : int or dict
        Components per class; a dict gives each class its own number.
    covariance_type : {"diag", "full", "spherical", "tied"}, default "diag"
    classes : sequence, optional
        The classes to fit, in order. Default: every distinct label, sorted.
        Pixels whose label is not listed are ignored (e.g. an "unlabelled" value).
    max_samples : int, default 1_000_000
        Per class, at most this many pixels drawn uniformly at random.
    random_state, reg_covar, channels, channel_axis, **gmm_kwargs
        As in :func:`fit`.

    Returns
    -------
    dict
        ``{label: Mixture}`` in the order of ``classes``; ready for
        :class:`pixgmm.Classifier` or, with two classes, :class:`pixgmm.SkinDetector`.

    Raises
    ------
    ValueError
        A label array whose shape differs from its image's spatial shape, a
        class in ``classes`` with no pixels, or a class with fewer usable pixels
        than components.

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
    max_samples, reg_covar = _check_common(covariance_type, max_samples, reg_covar)
    pairs = _as_image_list(images, labels)

    pixel_parts, label_parts = [], []
    n_channels = None
    for image, lab, iname, lname in pairs:
        px, spatial = _pixel_matrix(image, channel_axis, iname)
        if n_channels is not None and px.shape[1] != n_channels:
            raise ValueError(
                f"{iname} has {px.shape[1]} channel(s) but images[0] has {n_channels}; "
                "every image needs the same channels"
            )
        n_channels = px.shape[1]
        lab = np.asarray(lab)
        if lab.shape != tuple(spatial):
            raise ValueError(
                f"{lname} has shape {lab.shape} but {iname} has spatial shape {tuple(spatial)} "
                f"(shape {np.shape(image)}, channel_axis={channel_axis}); pass one label per pixel"
            )
        pixel_parts.append(px)
        label_parts.append(lab.reshape(-1))

    _check_channels(channels, n_channels)
    all_labels = np.concatenate(label_parts) if len(label_parts) > 1 else label_parts[0]
    present = np.unique(all_labels)
    if classes is None:
        classes = [v.item() if hasattr(v, "item") else v for v in present]
        if len(classes) == 0:
            raise ValueError("labels is empty; there are no pixels to fit")
    else:
        if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
            raise TypeError(f"classes must be a sequence of labels, got {classes!r}")
        classes = list(classes)
        if not classes:
            raise ValueError("classes is empty; name at least one class to fit")
        if len(set(classes)) != len(classes):
            raise ValueError(f"classes={classes!r} names a class twice")

    if isinstance(n_components, dict):
        missing = [c for c in classes if c not in n_components]
        if missing:
            raise ValueError(
                f"n_components has no entry for class(es) {missing!r}; give every class a number"
            )
        per_class = {c: _check_int(n_components[c], f"n_components[{c!r}]", 1) for c in classes}
    else:
        k = _check_int(n_components, "n_components", 1)
        per_class = dict.fromkeys(classes, k)

    rng, seed = _generator(random_state)
    models = {}
    for c in classes:
        parts = [px[lab == c] for px, lab in zip(pixel_parts, label_parts)]
        count = sum(p.shape[0] for p in parts)
        if count == 0:
            raise ValueError(
                f"class {c!r} has no pixels in labels (labels present: "
                f"{[v.item() if hasattr(v, 'item') else v for v in present]!r}); "
                "remove it from classes or label some pixels with it"
            )
        px = parts[0] if len(parts) == 1 else np.concatenate(parts)
        models[c] = _fit_matrix(
            px,
            per_class[c],
            covariance_type,
            max_samples,
            rng,
            seed,
            reg_covar,
            channels,
            gmm_kwargs,
            "images",
            f"class {c!r}",
        )
    return models
