"""xarray DataArrays in and out, for every function that takes an image.

Public-layer adapter: a function that receives an ``xarray.DataArray`` unwraps
it (:func:`unwrap`), computes on its NumPy or Dask data as usual, and rebuilds a
DataArray around the result (:func:`wrap`). xarray is an optional dependency
(``pip install "pixgmm[xarray]"``); this module imports it only when a
DataArray arrives, so ``import pixgmm`` never does.

The rules, documented in the README:

- ``channel_axis`` may name a dimension (``channel_axis="band"``, rioxarray's
  convention) or be an axis number as for NumPy arrays.
- Channel names: when ``channels`` is not given and the channel dimension has
  string coordinates (``["red", "green", "blue"]``) or a ``long_name`` tuple of
  one string per band (as rioxarray sets from band descriptions), those names
  are the image's channel order, so a model with named channels is matched by
  name.
- The result keeps the image's other dimensions, their coordinates (CRS
  coordinate ``spatial_ref`` included) and its attributes, except those that
  describe the input's values (``_FillValue``, ``missing_value``, ``nodata``,
  ``scale_factor``, ``add_offset``, ``valid_range``, ``valid_min``,
  ``valid_max``, ``long_name``, ``units``), which would be wrong on a density.
- Nodata: where any channel of a pixel equals the image's nodata value
  (rioxarray's ``rio.nodata``, the ``_FillValue`` attribute or encoding,
  ``nodata`` or ``missing_value``), the result is NaN (component labels: -1,
  as for NaN pixels). A Dask-backed DataArray gives a Dask-backed result.
"""

from __future__ import annotations

import math

import numpy as np

#: Attributes that describe the input's values and must not be copied onto a result.
VALUE_ATTRS = (
    "_FillValue",
    "missing_value",
    "nodata",
    "scale_factor",
    "add_offset",
    "valid_range",
    "valid_min",
    "valid_max",
    "long_name",
    "units",
)


def is_dataarray(obj):
    """True for an ``xarray.DataArray``, checked without importing xarray."""
    t = type(obj)
    return t.__name__ == "DataArray" and t.__module__.split(".")[0] == "xarray"


def channel_dim(image, channel_axis, name="channel_axis"):
    """The name of the channel dimension (None for a grayscale image)."""
    if channel_axis is None:
        return None
    if isinstance(channel_axis, str):
        if channel_axis not in image.dims:
            raise ValueError(
                f"{name}={channel_axis!r} is not a dimension of the image; its dimensions are "
                f"{list(image.dims)}"
            )
        return channel_axis
    if isinstance(channel_axis, (bool, np.bool_)) or not isinstance(
        channel_axis, (int, np.integer)
    ):
        raise TypeError(
            f"{name} must be a dimension name, an integer or None, got {channel_axis!r}"
        )
    ndim = image.ndim
    if not -ndim <= channel_axis < ndim:
        hint = (
            ' (rioxarray images keep their bands in dimension "band")'
            if "band" in image.dims
            else ""
        )
        raise ValueError(
            f"{name}={channel_axis} is out of range for an image with dimensions "
            f"{list(image.dims)}{hint}"
        )
    return image.dims[channel_axis]


def band_names(image, dim):
    """Channel names carried by the image, or None."""
    if dim is None:
        return None
    if dim in image.coords:
        values = image.coords[dim].values
        if values.dtype.kind in "UO" and all(isinstance(v, str) for v in values.tolist()):
            return tuple(values.tolist())
    long_name = image.attrs.get("long_name")
    if (
        isinstance(long_name, (tuple, list))
        and len(long_name) == image.sizes[dim]
        and all(isinstance(v, str) and v for v in long_name)
    ):
        return tuple(long_name)
    return None


def nodata_value(image):
    """The image's nodata value, or None (a NaN nodata needs no mask: NaN pixels give NaN)."""
    value = None
    rio = getattr(image, "rio", None)  # present once rioxarray is imported
    if rio is not None:
        try:
            value = rio.nodata
        except (TypeError, ValueError):  # rioxarray cannot convert it; read it below
            value = None
    if value is None:
        for where in (image.attrs, image.encoding):
            for key in ("_FillValue", "nodata", "missing_value"):
                if where.get(key) is not None:
                    value = where[key]
                    break
            if value is not None:
                break
    if value is None:
        return None
    value = np.asarray(value).reshape(-1)[0].item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def unwrap(image, channel_axis, channels):
    """``(data, axis, channels, dim)`` for computing on a DataArray's NumPy or Dask data."""
    dim = channel_dim(image, channel_axis)
    if channels is None:
        channels = band_names(image, dim)
    axis = None if dim is None else image.get_axis_num(dim)
    return image.data, axis, channels, dim


def nodata_mask(image, dim):
    """Pixels where any channel equals the nodata value (NumPy or Dask), or None."""
    value = nodata_value(image)
    if value is None:
        return None
    mask = image.data == value
    if dim is not None:
        mask = mask.any(axis=image.get_axis_num(dim))
    return mask


def wrap(result, image, dim, *, name, extra_dim=None, extra_coords=None, fill=np.nan):
    """A DataArray around ``result``: the image's other dims, coords and attributes.

    ``extra_dim`` names a trailing axis of ``result`` (components, classes).
    Nodata pixels of the image get ``fill``.
    """
    import xarray as xr

    dims = [d for d in image.dims if d != dim]
    if extra_dim is not None:
        dims.append(extra_dim)
    coords = {k: c for k, c in image.coords.items() if dim is None or dim not in c.dims}
    if extra_dim is not None and extra_coords is not None:
        coords[extra_dim] = extra_coords
    attrs = {k: v for k, v in image.attrs.items() if k not in VALUE_ATTRS}
    out = xr.DataArray(result, dims=dims, coords=coords, attrs=attrs, name=name)
    mask = nodata_mask(image, dim)
    if mask is not None:
        spatial = [d for d in image.dims if d != dim]
        keep = ~xr.DataArray(mask, dims=spatial)
        out = out.where(keep, fill) if fill is not None else out.where(keep)
        if np.dtype(result.dtype).kind in "iub":
            out = out.astype(result.dtype)
    return out


def apply(func, image, *, channel_axis, channels, name, nodata=np.nan, extra=None, **kwargs):
    """``func(data, channel_axis=, channels=, **kwargs)`` on a DataArray, as a DataArray.

    ``extra`` is ``(dim, coords)`` for a trailing axis of the result; the image's
    nodata pixels get ``nodata``.
    """
    if kwargs.get("out") is not None:
        raise TypeError(
            f"out= cannot be used when image is an xarray.DataArray: {name}() returns a new "
            "DataArray with the image's coordinates; drop out="
        )
    data, axis, channels, dim = unwrap(image, channel_axis, channels)
    result = func(data, channel_axis=axis, channels=channels, **kwargs)
    extra_dim, extra_coords = extra if extra is not None else (None, None)
    return wrap(
        result, image, dim, name=name, fill=nodata, extra_dim=extra_dim, extra_coords=extra_coords
    )
