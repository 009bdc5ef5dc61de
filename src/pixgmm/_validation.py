"""The one validator: image, channel axis, channel names, dtypes and ``out``.

Every public function funnels its arguments through here, so a given mistake
gets the same message wherever it is made. Messages name the user's parameter
and say how to fix it. ``TypeError`` for a wrong type, ``ValueError`` for a
wrong value.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def normalize_channels(channels, name="channels"):
    """Return channel names as a tuple of upper-case strings, or None.

    ``"BGR"`` -> ``("B", "G", "R")``; ``["nir", "red"]`` -> ``("NIR", "RED")``.
    """
    if channels is None:
        return None
    if isinstance(channels, str):
        names = tuple(channels)
    elif isinstance(channels, Sequence) and all(isinstance(c, str) for c in channels):
        names = tuple(channels)
    else:
        raise TypeError(
            f"{name} must be a string such as 'RGB' or a sequence of channel names, "
            f"got {channels!r}"
        )
    names = tuple(n.strip().upper() for n in names)
    if not names or any(not n for n in names):
        raise ValueError(
            f"{name} must name at least one channel and no empty names, got {channels!r}"
        )
    if len(set(names)) != len(names):
        raise ValueError(
            f"{name}={channels!r} names a channel twice; each channel needs its own name"
        )
    return names


def format_channels(names):
    """Inverse of :func:`normalize_channels` for messages and reprs."""
    if names is None:
        return None
    if all(len(n) == 1 for n in names):
        return "".join(names)
    return tuple(names)


def channel_permutation(model_channels, image_channels):
    """Index array ``p`` with ``model feature p[i]`` = image channel ``i``, or None.

    Both arguments are normalised name tuples (or None). When either is None
    no reordering is possible or needed.
    """
    if model_channels is None or image_channels is None:
        return None
    if len(image_channels) != len(model_channels) or set(image_channels) != set(model_channels):
        raise ValueError(
            f"channels={format_channels(image_channels)!r} does not name the same channels as "
            f"the model (channels={format_channels(model_channels)!r}); pass the image's channel "
            f"order using the model's channel names, e.g. channels="
            f"{format_channels(model_channels[::-1])!r}"
        )
    if image_channels == model_channels:
        return None
    return np.array([model_channels.index(c) for c in image_channels], dtype=np.intp)


def check_image_dtype(dtype, name="image"):
    """Raise TypeError unless ``dtype`` is a real integer or floating type.

    Any byte order and any float width pass (float16 and long double are
    converted by :func:`native_kernel_dtype`); booleans, complex numbers,
    objects, strings, dates and structured (record) dtypes do not.
    """
    dtype = np.dtype(dtype)
    kind = dtype.kind
    if kind == "b":
        raise TypeError(
            f"{name} has boolean dtype; pass the pixel values (e.g. uint8), not a mask "
            f"(convert with {name}.astype(np.uint8) if the values really are 0 and 1)"
        )
    if kind == "c":
        raise TypeError(
            f"{name} has complex dtype {dtype}; pixel values must be real numbers "
            f"(pass {name}.real or np.abs({name}) if that is what you mean)"
        )
    if kind in "uif" and dtype.fields is None:
        return dtype
    if dtype.fields is not None or kind == "V":
        hint = (
            "; convert a record array with numpy.lib.recfunctions.structured_to_unstructured"
            f"({name})"
        )
    elif kind == "O":
        hint = (
            f"; if it holds numbers, convert it with {name}.astype(np.float64) "
            "(a list of arrays of different shapes cannot be an image)"
        )
    elif kind in "mM":
        hint = "; dates and time spans are not pixel values"
    elif kind in "SU":
        hint = "; strings are not pixel values (read the image with an image reader)"
    else:  # pragma: no cover - every NumPy kind is listed above
        hint = ""
    raise TypeError(
        f"{name} must be a numeric array (integer or floating point), got dtype {dtype}{hint}"
    )


def as_image_array(image, name="image"):
    """``image`` as a plain ``numpy.ndarray`` of a real numeric dtype, or a clear TypeError.

    A NumPy masked array becomes a float array with NaN at masked values (so
    a pixel with any masked channel evaluates to NaN, and ``predict`` gives -1
    there); an integer masked image becomes float64 (exact), a float16 or float32
    one float32. Other ndarray subclasses (``np.matrix``, ``np.memmap``) are
    viewed as plain arrays.
    """
    if isinstance(image, np.ma.MaskedArray):
        return _masked_as_nan(image, name)
    if type(image) is np.ndarray:
        arr = image
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:  # numpy's own message is kept
            raise TypeError(f"{name} could not be converted to an array: {exc}") from exc
    check_image_dtype(arr.dtype, name)
    return arr


def _masked_as_nan(image, name):
    data = np.asarray(image.data)
    check_image_dtype(data.dtype, name)
    mask = np.ma.getmaskarray(image)
    if not mask.any():
        return data
    small_float = data.dtype.kind == "f" and data.dtype.itemsize <= 4
    out = data.astype(np.float32 if small_float else np.float64)
    out[mask] = np.nan
    return out


def native_kernel_dtype(dtype):
    """The dtype kernels read for an image of ``dtype``: native byte order, float32 or float64.

    float16 (either byte order) becomes float32 and long double (float96/float128)
    float64, the widest float the kernels compute in; integers keep their width.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize < 4:
        return np.dtype(np.float32)
    if dtype.kind == "f" and dtype.itemsize > 8:
        return np.dtype(np.float64)
    return dtype.newbyteorder("=")


def normalize_channel_axis(channel_axis, ndim, name="channel_axis"):
    if channel_axis is None:
        return None
    try:
        if isinstance(channel_axis, (bool, np.bool_)):
            raise TypeError
        axis = operator.index(channel_axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer or None, got {channel_axis!r}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={channel_axis} is out of range for an image with {ndim} dimension(s); "
            f"use channel_axis=None for a single-channel image without a channel axis"
        )
    return axis % ndim


def pixels_view(image, n_features, channel_axis, name="image", *, convert=True):
    """Validate ``image`` and return ``(pixels, spatial_shape)``.

    ``pixels`` is a 2-D (N, C) array in a dtype kernels accept (a view where
    possible, else a copy), ``spatial_shape`` the shape of the per-pixel output.
    ``convert=False`` keeps the image's dtype (a caller that converts block by block,
    so that a big-endian or float16 image is never copied whole).
    """
    arr = as_image_array(image, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass an array of pixels such as (H, W, C)")
    axis = normalize_channel_axis(channel_axis, arr.ndim)
    if axis is None:
        if n_features != 1:
            raise ValueError(
                f"channel_axis=None treats {name} as single-channel, but the model has "
                f"{n_features} features; pass channel_axis= the axis that holds the channels"
            )
        spatial = arr.shape
        arr = arr.reshape(-1, 1)
    else:
        n_ch = arr.shape[axis]
        looks_gray = arr.ndim == 2 and axis == 1 and arr.shape[0] != n_features
        if n_ch != n_features and looks_gray and not 1 <= n_ch <= 4:
            if n_features > 1:
                raise ValueError(
                    f"{name} has shape {arr.shape}: it looks like a grayscale image, but the "
                    f"model needs {n_features} channels; convert the image to colour first "
                    f"(e.g. np.stack([{name}] * {n_features}, axis=-1)) or use a single-channel "
                    f"model with channel_axis=None"
                )
            raise ValueError(
                f"{name} has shape {arr.shape}: it looks like a grayscale image without a "
                f"channel axis; pass channel_axis=None (channel_axis={channel_axis} reads "
                f"{n_ch} channels along the last axis)"
            )
        if n_ch != n_features:
            hint = ""
            if n_ch == 4 and n_features == 3:
                hint = "; if the 4th channel is alpha, drop it first (image[..., :3])"
            elif axis == arr.ndim - 1 and arr.ndim >= 2 and arr.shape[0] == n_features:
                hint = "; if the channels come first, pass channel_axis=0"
            raise ValueError(
                f"{name} has {n_ch} channel(s) along channel_axis={channel_axis} (shape "
                f"{arr.shape}) but the model has {n_features} feature(s){hint}"
            )
        if axis != arr.ndim - 1:
            arr = np.moveaxis(arr, axis, -1)
        spatial = arr.shape[:-1]
        arr = arr.reshape(-1, n_ch)
    kdtype = native_kernel_dtype(arr.dtype)
    if convert and arr.dtype != kdtype:
        arr = arr.astype(kdtype)
    return arr, spatial


def resolve_dtype(image_dtype, dtype=None, out=None):
    """The output dtype rule, in one place.

    1. ``out`` given: its dtype (float32 or float64); ``dtype``, if also given, must agree.
    2. ``dtype`` given: float32 or float64.
    3. Otherwise float32 for float16/float32 images and float64 for everything else
       (integer images included: a density in float32 underflows to 0 below 1e-38).
    """
    if dtype is not None:
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dt not in FLOAT_DTYPES:
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        odt = out.dtype.newbyteorder("=") if out.dtype.kind == "f" else out.dtype
        if odt not in FLOAT_DTYPES:
            raise ValueError(f"out must have dtype float32 or float64, got {out.dtype}")
        if dtype is not None and np.dtype(dtype) != odt:
            raise ValueError(
                f"dtype={np.dtype(dtype)} disagrees with out.dtype={out.dtype}; pass one"
            )
        return odt
    if dtype is not None:
        return np.dtype(dtype)
    if np.dtype(image_dtype) in (np.dtype(np.float16), np.dtype(np.float32)):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def check_out(out, shape, dtype, name="out"):
    """Raise unless ``out`` can receive a result of ``shape`` and ``dtype``."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, but the result has shape {tuple(shape)}")
    if out.dtype != dtype and out.dtype.newbyteorder("=") != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, but the result has dtype {dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")


def kernel_output(shape, dtype, out):
    """A C-contiguous native array the kernels can write, and whether to copy it into ``out``."""
    if out is not None and out.flags.c_contiguous and out.dtype.isnative:
        return out, False
    return np.empty(shape, dtype=dtype), out is not None


def check_method(method, allowed):
    if not isinstance(method, str) or method not in allowed:
        raise ValueError(f"method must be one of {', '.join(map(repr, allowed))}; got {method!r}")
    return method


def check_bool(value, name):
    """Raise TypeError unless ``value`` is True or False (a string such as "no" is not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def is_dask_array(image):
    """True for a dask array, checked without importing dask."""
    return type(image).__module__.split(".")[0] == "dask" and hasattr(image, "map_blocks")
