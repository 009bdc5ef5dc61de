"""Probabilities stored compactly: uint8 or uint16 with a CF scale factor, or float32.

A probability map in float32 costs 4 bytes a pixel; most uses (thresholds,
pictures, area sums) need far less precision. ``encode(p, "uint8")`` stores
``round(p * 254)`` and reserves 255 for NaN (no value), so ``p`` is recovered
as ``packed * scale_factor`` within ``0.5 / 254`` (0.002); ``"uint16"`` stores
``round(p * 65534)`` with 65535 reserved (within 7.6e-6). The attributes of
:func:`cf_attributes` (``scale_factor``, ``add_offset``, ``_FillValue``) are the
CF conventions' packing attributes, which xarray decodes when it opens a Zarr
store or a netCDF file; GeoTIFF outputs carry the same as GDAL's band scale,
offset and nodata.

Examples
--------
>>> import numpy as np
>>> from pixgmm.quantize import decode, encode
>>> packed = encode(np.array([0.0, 0.5, 1.0, np.nan]), "uint8")
>>> packed.tolist(), decode(packed).round(3).tolist()
([0, 127, 254, 255], [0.0, 0.5, 1.0, nan])
"""

from __future__ import annotations

import numpy as np

#: The dtypes a probability may be stored in, and for the integer ones the largest
#: code (1.0) and the code that means "no value".
DTYPES = ("float32", "uint16", "uint8")
_CODES = {"uint8": (254, 255), "uint16": (65534, 65535)}

__all__ = ["DTYPES", "cf_attributes", "check_dtype", "decode", "encode"]


def check_dtype(dtype, name="probability_dtype"):
    """The dtype's name when it is one of :data:`DTYPES`; else a ValueError naming ``name``.

    Parameters
    ----------
    dtype : str, numpy.dtype or type
        Anything :class:`numpy.dtype` takes (``"uint8"``, ``np.uint8``, ...).
    name : str, default "probability_dtype"
        How the error message names the argument.

    Returns
    -------
    str
        ``"float32"``, ``"uint16"`` or ``"uint8"``.

    Raises
    ------
    ValueError
        ``dtype`` is not one of :data:`DTYPES` (or not a dtype at all).

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.quantize import check_dtype
    >>> check_dtype(np.uint8), check_dtype("float32")
    ('uint8', 'float32')
    """
    try:
        text = np.dtype(dtype).name
    except TypeError:
        text = None
    if text not in DTYPES:
        raise ValueError(f"{name}={dtype!r} is not one of {', '.join(DTYPES)}")
    return text


def encode(p, dtype):
    """Probabilities ``p`` (NaN: no value) in ``dtype``: float32 as they are, integers packed.

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1] (not checked: values outside do not fit the
        integer codes), NaN where there is no value.
    dtype : {"float32", "uint16", "uint8"}
        The dtype to store them in, by name or as a NumPy dtype.

    Returns
    -------
    numpy.ndarray
        ``p`` in ``dtype``, same shape: ``round(p * 254)`` for uint8 and
        ``round(p * 65534)`` for uint16, with NaN as 255 or 65535.

    Raises
    ------
    ValueError
        ``dtype`` is not one of :data:`DTYPES`.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.quantize import encode
    >>> encode(np.array([0.0, 0.25, np.nan]), "uint16").tolist()
    [0, 16384, 65535]
    """
    dtype = check_dtype(dtype)
    p = np.asarray(p)
    if dtype == "float32":
        return p.astype(np.float32)
    top, fill = _CODES[dtype]
    out = np.rint(p * top)
    out[np.isnan(p)] = fill
    return out.astype(dtype)


def decode(packed):
    """Probabilities (float64, NaN where no value) from :func:`encode`'s output.

    Parameters
    ----------
    packed : array_like
        uint8 or uint16 codes, or floats (returned as float64, unchanged).

    Returns
    -------
    numpy.ndarray
        float64, same shape; NaN where ``packed`` holds the no-value code.

    Raises
    ------
    ValueError
        ``packed`` is neither uint8, uint16 nor floating-point.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.quantize import decode
    >>> decode(np.array([0, 127, 254, 255], np.uint8)).round(4).tolist()
    [0.0, 0.5, 1.0, nan]
    """
    packed = np.asarray(packed)
    if packed.dtype.kind == "f":
        return packed.astype(np.float64)
    top, fill = _CODES[check_dtype(packed.dtype)]
    out = packed / top
    out[packed == fill] = np.nan
    return out


def cf_attributes(dtype):
    """``{"scale_factor", "add_offset", "_FillValue"}`` of a packed dtype; empty for float32.

    Parameters
    ----------
    dtype : {"float32", "uint16", "uint8"}
        The dtype, by name or as a NumPy dtype.

    Returns
    -------
    dict
        For uint8 and uint16: ``scale_factor`` (1/254 or 1/65534), ``add_offset``
        (0.0) and ``_FillValue`` (255 or 65535), the CF packing attributes;
        ``{}`` for float32.

    Raises
    ------
    ValueError
        ``dtype`` is not one of :data:`DTYPES`.

    Examples
    --------
    >>> from pixgmm.quantize import cf_attributes
    >>> cf_attributes("uint8")["_FillValue"], cf_attributes("float32")
    (255, {})
    """
    dtype = check_dtype(dtype)
    if dtype == "float32":
        return {}
    top, fill = _CODES[dtype]
    return {"scale_factor": 1.0 / top, "add_offset": 0.0, "_FillValue": fill}
