"""The fit's inputs: argument checks, and pixels turned into the points an EM runs on.

Part of the public layer behind :mod:`pixgmm.fitting` and :mod:`pixgmm.classfit`:
every check here raises the ``TypeError``/``ValueError`` the user sees, naming the
parameter and the fix. Pixels become :class:`pixgmm._engine.histfit.Points`
(NaN pixels skipped and counted, optional subsample, exact compression) or, for a
dask array, a distributed histogram or :class:`~pixgmm._engine.histfit.DaskPoints`.
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Sequence

import numpy as np

from ._engine import histfit as _histfit
from ._validation import (
    as_image_array,
    check_image_dtype,
    native_kernel_dtype,
    normalize_channel_axis,
    normalize_channels,
)
from .mixture import COVARIANCE_TYPES, SCALES, Mixture

#: The initialisations a fit accepts as ``init=`` (besides a :class:`~pixgmm.Mixture`).
INIT_METHODS = ("lloyd", "kmeans", "k-means++", "random")
#: Dask float arrays up to this size are persisted for the distributed EM.
PERSIST_BYTES = 2 << 30


# -- argument checks --------------------------------------------------------------------


def check_int(value, name, minimum):
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_components(n_components, name="n_components"):
    """A tuple of component counts (one entry unless a range was given)."""
    if isinstance(n_components, (Sequence, range, np.ndarray)) and not isinstance(
        n_components, (str, bytes)
    ):
        counts = tuple(check_int(k, f"{name}[{i}]", 1) for i, k in enumerate(n_components))
        if not counts:
            raise ValueError(f"{name} is empty; pass a count or a range such as range(2, 17)")
        if len(set(counts)) != len(counts):
            raise ValueError(f"{name}={list(counts)!r} repeats a count; list each count once")
        return counts, True
    return (check_int(n_components, name, 1),), False


def check_options(covariance_type, init, max_iter, tol, n_init, max_samples, criterion):
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
    max_iter = check_int(max_iter, "max_iter", 1)
    n_init = check_int(n_init, "n_init", 1)
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a number, got {tol!r}")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    if max_samples is not None:
        max_samples = check_int(max_samples, "max_samples", 1)
    if criterion not in ("bic", "aic"):
        raise ValueError(f"criterion must be 'bic' or 'aic', got {criterion!r}")
    return max_iter, float(tol), n_init, max_samples


def check_reg_covar(reg_covar, dtype):
    """The ``reg_covar`` to use: ``"auto"`` is 1.0 for integer pixels, 1e-6 otherwise."""
    if isinstance(reg_covar, str) and reg_covar == "auto":
        return 1.0 if np.dtype(dtype).kind in "ui" else 1e-6
    if isinstance(reg_covar, (bool, np.bool_)) or not isinstance(reg_covar, numbers.Real):
        raise TypeError(f"reg_covar must be a number or 'auto', got {reg_covar!r}")
    if not (math.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a finite number >= 0, got {reg_covar}")
    return float(reg_covar)


def seed_of(random_state):
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


def check_channels(channels, n_channels):
    """Fail before fitting, not after, when ``channels`` cannot name the pixels' channels."""
    names = normalize_channels(channels)
    if names is not None and len(names) != n_channels:
        raise ValueError(
            f"channels={channels!r} names {len(names)} channel(s) but the pixels have "
            f"{n_channels}; pass one name per channel, in the pixels' order"
        )
    return names


def check_scale(scale, name="scale"):
    """``scale`` checked: None or one of :data:`pixgmm.mixture.SCALES`."""
    if scale is None:
        return None
    if not isinstance(scale, str) or scale not in SCALES:
        raise ValueError(
            f"{name} must be one of {', '.join(map(repr, SCALES))} (the value scale of the "
            f"pixels fitted) or None, got {scale!r}"
        )
    return scale


def is_dask_array(x):
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "map_blocks")


# -- pixels to points -------------------------------------------------------------------


def pixel_matrix(image, channel_axis, name):
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


def check_weights(sample_weight, spatial, name="sample_weight"):
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


def nonfinite(px, name):
    """NaN pixels of float pixels (N, D); infinite values are an error."""
    if px.dtype.kind != "f":
        return 0
    from ._engine import em as _em

    n_nan, n_inf = _em.count_nonfinite(px, _em.n_tasks(px.shape[0]))
    if n_inf:
        raise ValueError(
            f"{name} contains {n_inf} infinite value(s); only NaN pixels are skipped, replace "
            "infinities (e.g. with np.nan) before fitting"
        )
    return int(n_nan)


def pixel_points(px, w, max_samples, seed, name):
    """:class:`_histfit.Points` for pixels (N, D) with optional weights (N,)."""
    n_nan = nonfinite(px, name)
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


def dask_points(arr, channel_axis, sample_weight, max_samples, name):
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
