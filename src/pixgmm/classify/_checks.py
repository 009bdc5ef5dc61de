"""The classifier's argument checks: models, class priors, per-pixel priors, options, dtypes.

Public layer: every check raises ``TypeError``/``ValueError`` naming the parameter and the fix.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import is_dask_array
from .._xarray import channel_dim, is_dataarray
from ..histogram import HistogramModel
from ..mixture import Mixture, as_mixture

#: The per-pixel maps :meth:`pixgmm.Classifier.classify` computes.
OUTPUTS = ("labels", "confidence", "margin", "entropy")

_UNSIGNED = (np.uint8, np.uint16, np.uint32, np.uint64)
_SIGNED = (np.int8, np.int16, np.int32, np.int64)


def check_model(model, name):
    if isinstance(model, HistogramModel):
        return model
    return as_mixture(model, name)


def is_fit_result(value):
    return type(value).__name__ == "FitResult" and hasattr(value, "mixture")


def training_count(model, label):
    """The number of training pixels a model records (``priors="counts"``)."""
    if is_fit_result(model) or isinstance(model, HistogramModel):
        return model.n_samples
    training = model.training if isinstance(model, Mixture) else None
    if training is not None:
        return training["n_pixels"]
    raise TypeError(
        f"priors='counts' needs each class's training-pixel count, which models[{label!r}] "
        f"({type(model).__name__}) does not record; pass fit results "
        "(pixgmm.fitting.fit_classes_em), HistogramModels, mixtures that record it "
        "(Mixture.training: files written by pixgmm fit, or Mixture.with_training), or "
        "priors={label: count}"
    )


def class_priors(priors, labels):
    """The classes' priors (C,) float64, positive and summing to 1."""
    n = len(labels)
    if priors is None:
        return np.full(n, 1.0 / n)
    if isinstance(priors, Mapping):
        keys = set(priors)
        if keys != set(labels):
            missing = [lab for lab in labels if lab not in keys]
            extra = [k for k in priors if k not in set(labels)]
            raise ValueError(
                "priors must have exactly the classes of models as keys"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
        values = [priors[lab] for lab in labels]
    elif isinstance(priors, Sequence) or isinstance(priors, np.ndarray):
        values = list(np.asarray(priors).reshape(-1)) if np.ndim(priors) else [priors]
        if len(values) != n:
            raise ValueError(
                f"priors has {len(values)} value(s) but there are {n} classes; pass one per "
                "class, in the order of models, or a dict {label: prior}"
            )
    else:
        raise TypeError(
            f"priors must be None, a dict {{label: prior}} or a sequence, got {type(priors).__name__}"
        )
    try:
        p = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"priors must be numbers, got {values!r}") from None
    bad = ~(np.isfinite(p) & (p > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"priors must be finite and positive; the prior of class {labels[i]!r} is {p[i]}"
        )
    return p / p.sum()


def check_unit(value, name, *, open_low=False):
    """A probability in (0, 1) (``open_low``: (0, 1])."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}")
    value = float(value)
    ok = 0.0 < value <= 1.0 if open_low else 0.0 < value < 1.0
    if not ok:
        bounds = "0 < {} <= 1" if open_low else "0 < {} < 1"
        raise ValueError(f"{name} must satisfy {bounds.format(name)}, got {value}")
    return value


def check_outputs(outputs):
    """``outputs`` as a tuple of names from :data:`OUTPUTS`, each once."""
    if isinstance(outputs, str):
        outputs = (outputs,)
    if not isinstance(outputs, (Sequence, set, frozenset)) or not all(
        isinstance(o, str) for o in outputs
    ):
        raise TypeError(f"outputs must be a sequence of names from {OUTPUTS}, got {outputs!r}")
    unknown = [o for o in outputs if o not in OUTPUTS]
    if unknown:
        raise ValueError(
            f"outputs names {unknown}, which classify does not compute; choose from {OUTPUTS}"
        )
    names = tuple(dict.fromkeys(outputs))
    if not names:
        raise ValueError(f"outputs is empty; name at least one of {OUTPUTS}")
    return names


def map_dtype(dtype):
    """The dtype of the confidence, margin and entropy maps: float32 unless asked."""
    if dtype is None:
        return np.dtype(np.float32)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def label_dtype(labels, *extra):
    """The dtype of a label map: the smallest integer type holding every label value (and
    ``extra``: the fill and reject labels) when they are all integers, unsigned when none is
    negative; otherwise NumPy's (strings, floats)."""
    values = list(labels) + [v for v in extra if v is not None]
    if all(_is_int(v) for v in values):
        lo, hi = int(min(values)), int(max(values))
        for dt in _UNSIGNED if lo >= 0 else _SIGNED:
            info = np.iinfo(dt)
            if info.min <= lo and hi <= info.max:
                return np.dtype(dt)
    return np.asarray(values).dtype


def label_table(labels, fill, reject, dtype):
    """``[reject, fill, *labels]`` as an array of ``dtype``: the label of each kernel code
    (``_engine.classes.CODE_*``); a missing fill or reject holds a placeholder, never read."""
    first = labels[0]
    values = [first if reject is None else reject, first if fill is None else fill, *labels]
    return np.asarray(values, dtype=dtype)


def pixel_priors(priors, prior_axis, spatial, labels, image):
    """Per-pixel priors with the class axis last and the image's spatial shape.

    ``spatial`` is the shape of the image without its channel axis. A NumPy image gets a
    NumPy array (a dask ``priors`` is computed), a dask image a dask array (chunks are
    aligned later). Values are checked block by block as they are used.
    """
    n = len(labels)
    if is_dataarray(priors):
        raise TypeError(
            "priors is an xarray.DataArray but the image is not; pass priors.data, or pass "
            "the image as a DataArray too"
        )
    if not (isinstance(priors, np.ndarray) or is_dask_array(priors)):
        try:
            priors = np.asarray(priors)
        except Exception as exc:
            raise TypeError(f"priors could not be converted to an array: {exc}") from exc
    if priors.dtype.kind not in "biuf":
        raise TypeError(f"priors must hold numbers (one band per class), got dtype {priors.dtype}")
    if priors.ndim == 0:
        raise ValueError(
            f"priors is a scalar; pass one band per class (shape {(*spatial, n)}), or set the "
            "classes' priors with Classifier(models, priors=...)"
        )
    if isinstance(prior_axis, str):
        raise TypeError(
            f"prior_axis={prior_axis!r} names a dimension, but priors is not an "
            "xarray.DataArray (or the image is not); pass an axis number"
        )
    try:
        if isinstance(prior_axis, (bool, np.bool_)):
            raise TypeError
        axis = operator.index(prior_axis)
    except TypeError:
        raise TypeError(f"prior_axis must be an integer, got {prior_axis!r}") from None
    if not -priors.ndim <= axis < priors.ndim:
        raise ValueError(
            f"prior_axis={prior_axis} is out of range for priors of shape {priors.shape}"
        )
    axis %= priors.ndim
    expected = (*spatial, n)
    bands = priors.shape[axis]
    rest = priors.shape[:axis] + priors.shape[axis + 1 :]
    if bands != n:
        raise ValueError(
            f"priors has shape {priors.shape}: {bands} band(s) along prior_axis={prior_axis}, "
            f"but the classifier has {n} classes {list(labels)}; pass one band per class, in "
            "the order of Classifier.labels"
        )
    if tuple(rest) != tuple(spatial):
        raise ValueError(
            f"priors has shape {priors.shape}, whose pixels (shape {tuple(rest)} without "
            f"prior_axis={prior_axis}) are not the image's (shape {tuple(spatial)} without its "
            f"channel axis); pass priors of shape {expected} on the image's grid"
        )
    if axis != priors.ndim - 1:
        priors = priors.transpose(*[a for a in range(priors.ndim) if a != axis], axis)
    if is_dask_array(priors) and not is_dask_array(image):
        priors = np.asarray(priors)
    return priors


def bad_prior_message(block, labels):
    """The ``ValueError`` message for a block of priors with a NaN, infinite or negative value."""
    flat = np.asarray(block, dtype=np.float64).reshape(-1, block.shape[-1])
    bad = ~(np.isfinite(flat) & (flat >= 0))
    pixel, cls = np.unravel_index(int(np.argmax(bad)), flat.shape)
    return (
        f"priors must be finite and >= 0 at every pixel; the band of class {labels[cls]!r} "
        f"holds {flat[pixel, cls]} (give a forbidden class 0, not NaN or a negative value)"
    )


def xarray_priors(image, dim, priors, prior_axis):
    """Per-pixel priors for the data of DataArray ``image`` (channel dimension ``dim``):
    a DataArray is put in the data's spatial order with its class dimension last."""
    if priors is None or not is_dataarray(priors):
        return priors, prior_axis
    band = channel_dim(priors, prior_axis, name="prior_axis")
    spatial = [d for d in image.dims if d != dim]
    others = [d for d in priors.dims if d != band]
    if sorted(others) != sorted(spatial):
        raise ValueError(
            f"priors has dimensions {list(priors.dims)} (classes along {band!r}), but the "
            f"image's pixels have dimensions {spatial}; pass priors on the image's grid"
        )
    for d in spatial:
        if d in image.coords and d in priors.coords:
            if not np.array_equal(image.coords[d].values, priors.coords[d].values):
                raise ValueError(
                    f"priors' {d!r} coordinates differ from the image's: the priors are not on "
                    "the image's grid; align them first (e.g. priors.rio.reproject_match(image) "
                    "for rasters)"
                )
    return priors.transpose(*spatial, band).data, -1
