"""One Gaussian mixture per class, from labelled pixels of many images.

:class:`ClassHistograms` accumulates labelled pixels image by image (a colour
histogram per class for 8-bit images with up to 3 channels, so memory does not
grow with the number of images); :func:`fit_classes` and :func:`fit_classes_em`
run it over images in memory. Each class is then fitted by the EM of
:func:`pixgmm.fitting.fit` (every name here is also importable from
:mod:`pixgmm.fitting`).
"""

from __future__ import annotations

import numpy as np

from . import _fitinput as _in
from ._docshare import shared_sections
from ._engine import histfit as _histfit
from ._fitresult import _fit_counts

__all__ = ["ClassHistograms", "fit_classes", "fit_classes_em"]


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
        px, spatial = _in.pixel_matrix(image, self._channel_axis, name)
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
        return _in.pixel_points(px, None, max_samples, seed, f"class {c!r}")

    def fit_em(self, n_components, covariance_type="diag", *, classes=None, **options):
        """One :class:`~pixgmm.fitting.FitResult` per class: ``{label: FitResult}`` (options as :func:`~pixgmm.fitting.fit`).

        ``classes`` fits only these of the counted classes, in this order (e.g.
        one at a time, so that one class that cannot be fitted does not stop the
        others); default: every class (:attr:`classes`).
        """
        return _fit_accumulated(self, n_components, covariance_type, classes=classes, **options)

    def fit(self, n_components, covariance_type="diag", *, classes=None, **options):
        """One :class:`~pixgmm.Mixture` per class: ``{label: Mixture}`` (options as :meth:`fit_em`)."""
        results = self.fit_em(n_components, covariance_type, classes=classes, **options)
        return {c: r.mixture for c, r in results.items()}


def _sort_key(v):
    return (type(v).__name__, v)


def _fit_accumulated(
    acc,
    n_components,
    covariance_type="diag",
    *,
    classes=None,
    init="lloyd",
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
    max_iter, tol, n_init, max_samples = _in.check_options(
        covariance_type, init, max_iter, tol, n_init, max_samples, criterion
    )
    if acc.n_images == 0:
        raise ValueError("no image was added; add labelled images before fitting")
    _in.check_channels(channels, acc.n_channels)
    if classes is None:
        classes = acc.classes
    else:
        if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
            raise TypeError(f"classes must be a sequence of labels, got {classes!r}")
        classes = list(classes)
        if not classes:
            raise ValueError("classes is empty; name at least one counted class to fit")
        counted = acc.classes
        extra = [c for c in classes if c not in counted]
        if extra or len(set(classes)) != len(classes):
            raise ValueError(
                f"classes={classes!r} must name each class once, among the classes counted "
                f"({counted!r})"
            )
    if not classes:
        raise ValueError("labels is empty; there are no pixels to fit")
    if isinstance(n_components, dict):
        missing = [c for c in classes if c not in n_components]
        if missing:
            raise ValueError(
                f"n_components has no entry for class(es) {missing!r}; give every class a number"
            )
        per_class = {
            c: _in.check_components(n_components[c], f"n_components[{c!r}]") for c in classes
        }
    else:
        per_class = dict.fromkeys(classes, _in.check_components(n_components))
    for c in classes:
        if c not in acc._counts and c not in acc._parts:
            raise ValueError(
                f"class {c!r} has no pixels in labels (labels present: "
                f"{sorted(acc._seen, key=_sort_key)!r}); remove it from classes or label some "
                "pixels with it"
            )
    seed = _in.seed_of(random_state)
    integer = any(c in acc._counts for c in classes) or any(
        p.dtype.kind in "ui" for c in classes for p in acc._parts.get(c, ())
    )
    reg = _in.check_reg_covar(reg_covar, np.uint8 if integer else np.float64)
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


#: The Parameters and Raises sections :func:`fit_classes` and :func:`fit_classes_em`
#: share (``fit_classes`` is ``fit_classes_em`` returning only the mixtures), put into
#: both docstrings at their lines ``%(class_parameters)s`` and ``%(class_raises)s``.
_CLASS_PARAMETERS = """\
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
        The form of the components' covariances, as in :func:`pixgmm.fit`.
    classes : sequence, optional
        The classes to fit, in order. Default: every distinct label, sorted.
        Pixels whose label is not listed are ignored (e.g. an "unlabelled" value).
    channel_axis : int or None, default -1
        The axis of every image holding the channels; None for single-channel
        images.
    **options
        ``init``, ``max_iter``, ``tol``, ``n_init``, ``reg_covar``,
        ``max_samples`` (per class), ``random_state``, ``channels``,
        ``criterion``, ``callback``: as in :func:`pixgmm.fit`, passed to
        :meth:`ClassHistograms.fit_em`.
"""

_CLASS_RAISES = """\
    Raises
    ------
    ValueError
        A label array whose shape differs from its image's spatial shape, a
        class in ``classes`` with no pixels, or a class with fewer distinct
        pixel values than components.
"""

_class_sections = shared_sections(class_parameters=_CLASS_PARAMETERS, class_raises=_CLASS_RAISES)


@_class_sections
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

    %(class_parameters)s

    Returns
    -------
    dict
        ``{label: FitResult}`` in the order of ``classes``.

    %(class_raises)s

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


@_class_sections
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
    number of images), then one EM per class runs as in :func:`pixgmm.fit`. To
    stream images from disk, use :class:`ClassHistograms` directly.

    %(class_parameters)s

    Returns
    -------
    dict
        ``{label: Mixture}`` in the order of ``classes``; ready for
        :class:`pixgmm.Classifier` or, with two classes, :class:`pixgmm.SkinDetector`.

    %(class_raises)s

    See Also
    --------
    fit_classes_em : the same, returning :class:`~pixgmm.fitting.FitResult` objects.

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
