"""A skin detector's maps computed together, once per block: log ratio, probability, mask.

:meth:`pixgmm.SkinDetector.maps` asks for several maps of one image; this
module computes all of them in one pass over each block of pixels. For 8-bit
colour (uint8, at most 3 channels) every map comes from a colour table of the
final values (the probability already in its stored dtype, the mask already
thresholded), so each block costs one lookup per pixel and map, with no float64
intermediate; other images compute the log ratio once and derive the rest from
it. On a Dask image one task per block computes every map, and each map is a
cheap selection from that task's result, so reading the image and the lookups
happen once whatever the number of maps.

Also the posterior's arithmetic (:func:`posterior_inplace`), shared with
:class:`pixgmm.SkinDetector`.
"""

from __future__ import annotations

import operator

import numpy as np

from . import quantize
from ._engine import table as _table
from ._validation import normalize_channels, pixels_view

#: The maps :func:`maps` computes.
MAPS = ("logratio", "probability", "mask")


def sigmoid_inplace(z):
    """``1 / (1 + exp(-z))`` in place, without overflow or 0/0: exact at +-inf, NaN stays NaN."""
    e = np.abs(z)
    np.negative(e, out=e)
    with np.errstate(under="ignore"):  # exp(-|z|) rounding to 0 is the exact answer's float
        np.exp(e, out=e)  # exp(-|z|) in [0, 1]
    positive = z >= 0
    np.add(e, 1.0, out=z)  # z now holds the denominator 1 + exp(-|z|)
    num = np.where(positive, 1.0, e)
    np.divide(num, z, out=z, casting="unsafe")
    return z


def posterior_inplace(z, log_prior_odds):
    """``sigmoid(z + log_prior_odds)``, overwriting the float array ``z``."""
    z += z.dtype.type(log_prior_odds)
    return sigmoid_inplace(z)


def posterior_copy(z, log_prior_odds):
    """:func:`posterior_inplace` on a copy of ``z``."""
    return posterior_inplace(np.array(z, copy=True), log_prior_odds)


def check_maps(names):
    """The requested map names as a tuple in :data:`MAPS` order; a clear error otherwise."""
    if isinstance(names, str):
        names = (names,)
    try:
        names = tuple(names)
    except TypeError:
        raise TypeError(f"maps must be a sequence of names from {MAPS}, got {names!r}") from None
    unknown = [n for n in names if n not in MAPS]
    if unknown or not names:
        raise ValueError(
            f"maps={names!r}: choose one or more of {', '.join(MAPS)}"
            + (f" ({', '.join(map(repr, unknown))} is not one)" if unknown else "")
        )
    return tuple(n for n in MAPS if n in names)


def maps(detector, image, names, log_threshold, probability_dtype, channel_axis, channels):
    """``{name: map}`` of ``detector`` on ``image`` (NumPy or Dask), every map in one pass.

    Validated by the caller (:meth:`pixgmm.SkinDetector.maps`): ``names`` from
    :func:`check_maps`, ``log_threshold`` a float, ``probability_dtype`` one of
    :data:`pixgmm.quantize.DTYPES`. The tables of final values are used for 8-bit
    colour images of at least :data:`pixgmm._engine.table.TABLE_MIN_PIXELS`
    pixels (the whole image's count, for a Dask image) or when they are cached;
    a smaller image takes the engines' own rule, which is faster for it than
    building 16.7 million table entries.
    """
    lazy = hasattr(image, "dask") and not isinstance(image, np.ndarray)
    d = detector.skin.n_features
    n_pixels = int(np.prod(image.shape, dtype=np.float64) // max(1, image.shape[channel_axis]))
    tables = (
        np.dtype(image.dtype) == np.uint8
        and d <= 3
        and (n_pixels >= _table.TABLE_MIN_PIXELS
             or _cached(detector, names, d, log_threshold, probability_dtype, channels))
    )  # fmt: skip
    args = (names, log_threshold, probability_dtype, channel_axis, channels, tables)
    if lazy:
        return _dask_maps(detector, image, *args)
    return _block(image, detector, *args)


def _dask_maps(
    detector, image, names, log_threshold, probability_dtype, channel_axis, channels, tables
):
    import dask
    import dask.array as da

    axis = channel_axis % image.ndim if channel_axis is not None else None
    if axis is not None and len(image.chunks[axis]) > 1:
        image = image.rechunk({axis: -1})
    token = dask.base.tokenize(
        image.name, detector.skin._fingerprint, detector.nonskin._fingerprint,
        float(detector.log_prior_odds), names, float(log_threshold), probability_dtype, axis,
        normalize_channels(channels),
    )  # fmt: skip
    ddet = dask.delayed(detector, pure=True, name=f"pixgmm-skin-detector-{token}")
    drop = () if axis is None else (axis,)
    spatial_chunks = tuple(c for i, c in enumerate(image.chunks) if i not in drop)
    packed = da.map_blocks(
        _block,
        image,
        ddet,
        names,
        log_threshold,
        probability_dtype,
        axis,
        channels,
        tables,
        drop_axis=drop,
        chunks=spatial_chunks,
        dtype=object,
        meta=np.empty((0,) * len(spatial_chunks), object),
        name=f"pixgmm-skin-maps-{token}",
    )
    dtypes = _dtypes(probability_dtype)
    return {
        n: packed.map_blocks(
            operator.itemgetter(n),
            dtype=dtypes[n],
            meta=np.empty((0,) * len(spatial_chunks), dtypes[n]),
            name=f"pixgmm-skin-{n}-{token}",
        )
        for n in names
    }


def _dtypes(probability_dtype):
    return {"logratio": np.dtype(np.float32), "probability": np.dtype(probability_dtype),
            "mask": np.dtype(bool)}  # fmt: skip


def _block(
    block, detector, names, log_threshold, probability_dtype, channel_axis, channels, tables
):
    """Every requested map of one NumPy block, as a dict."""
    d = detector.skin.n_features
    X, spatial = pixels_view(block, d, channel_axis)
    if tables:
        return _table_maps(X, spatial, detector, names, log_threshold, probability_dtype, channels)
    lr = detector.log_ratio(block, channel_axis=channel_axis, channels=channels)
    out = {}
    if "logratio" in names:
        out["logratio"] = lr.astype(np.float32)
    if "probability" in names:
        p = posterior_inplace(np.array(lr, dtype=np.float64), detector.log_prior_odds)
        out["probability"] = quantize.encode(p, probability_dtype)
    if "mask" in names:
        out["mask"] = lr >= log_threshold
    return out


#: Combined tables: the probability's width in bits per stored dtype, and the table's dtype.
_PACKED = {"float32": (31, np.uint32), "uint16": (16, np.uint32), "uint8": (8, np.uint16)}


def _table_maps(X, spatial, detector, names, log_threshold, probability_dtype, channels):
    """The maps of 8-bit pixels through colour tables of their final values.

    The probability and the mask, when both are asked for, come from one table
    whose entries hold both (the probability's bits, the mask in the bit above):
    one lookup per pixel for the two maps.
    """
    n_channels = X.shape[1]
    out = {}
    rest = list(names)
    if "probability" in names and "mask" in names:
        rest = [n for n in names if n not in ("probability", "mask")]
        table = _colour_table(detector, "probability+mask", n_channels, log_threshold,
                              probability_dtype, channels)  # fmt: skip
        bits, _ = _PACKED[probability_dtype]
        p = np.empty(X.shape[0], probability_dtype)
        mask = np.empty(X.shape[0], bool)
        if X.shape[0]:
            width = np.uint32 if probability_dtype == "float32" else p.dtype
            _table.gather_split(X, table, bits, p.view(width), mask.view(np.uint8), 1)
        out["probability"], out["mask"] = p, mask
    tables = [_colour_table(detector, n, n_channels, log_threshold, probability_dtype, channels)
              for n in rest]  # fmt: skip
    outs = [np.empty(X.shape[0], t.dtype) for t in tables]
    if X.shape[0]:
        for i in range(0, len(tables), 2):  # two maps per pass over the pixels
            if i + 1 < len(tables):
                _table.gather_pair(X, tables[i], tables[i + 1], outs[i], outs[i + 1])
            else:
                _table.gather(X, tables[i], outs[i])
    out.update(zip(rest, outs))
    return {n: out[n].reshape(spatial) for n in names}


def _probability_table(lr, log_prior_odds, probability_dtype, mask_threshold=None):
    """The probability of every colour in its stored dtype; with ``mask_threshold``, packed
    with the mask (``lr >= mask_threshold``) in the bit above the probability's bits (a
    float32's sign bit, cleared first: a NaN stays NaN, never a mask).

    Built a cache-sized piece at a time, with the same arithmetic element by element as
    :func:`posterior_inplace` and :func:`pixgmm.quantize.encode` on a whole map.
    """
    if mask_threshold is None:
        out = np.empty(lr.shape, probability_dtype)
    else:
        bits, table_dtype = _PACKED[probability_dtype]
        out = np.empty(lr.shape, table_dtype)
    step = 1 << 16
    for start in range(0, lr.size, step):
        piece = lr[start : start + step]
        p = quantize.encode(posterior_inplace(np.array(piece, np.float64), log_prior_odds),
                            probability_dtype)  # fmt: skip
        if mask_threshold is None:
            out[start : start + step] = p
            continue
        value = p.view(np.uint32) & np.uint32(0x7FFFFFFF) if bits == 31 else p
        flag = (piece >= mask_threshold).astype(table_dtype) << table_dtype(bits)
        out[start : start + step] = value.astype(table_dtype) | flag
    return out


def _key(detector, name, n_channels, log_threshold, probability_dtype, channels):
    """Everything the table of one map depends on."""
    return (
        f"skin-{name}",
        detector.skin._fingerprint,
        detector.nonskin._fingerprint,
        normalize_channels(channels),
        n_channels,
        float(log_threshold) if name == "mask" else None,
        (float(detector.log_prior_odds), probability_dtype)
        if name.startswith("probability")
        else None,
        float(log_threshold) if name == "probability+mask" else None,
    )


def _cached(detector, names, n_channels, log_threshold, probability_dtype, channels):
    """True when the tables of every map in ``names`` are in the table cache."""
    from ._engine.cache import TABLES

    return all(
        TABLES.get(_key(detector, n, n_channels, log_threshold, probability_dtype, channels))
        is not None
        for n in names
    )


def _colour_table(detector, name, n_channels, log_threshold, probability_dtype, channels):
    """The table of one map's final values for every 8-bit colour (built once, cached)."""
    from ._engine.blocks import _TABLE_LOCK
    from .evaluate import _resolve_models

    key = _key(detector, name, n_channels, log_threshold, probability_dtype, channels)

    def build():
        models = _resolve_models([detector.skin, detector.nonskin], ("skin", "nonskin"), channels)
        # the log-ratio colour table itself (cached too): no gather of 16.7 million colours
        lr = _table.colour_table("ratio", models, True, n_channels, np.float64)
        if name == "logratio":
            return lr.astype(np.float32)
        if name == "mask":
            return lr >= log_threshold
        mask_threshold = log_threshold if name == "probability+mask" else None
        return _probability_table(lr, detector.log_prior_odds, probability_dtype, mask_threshold)

    with _TABLE_LOCK:  # one build per process, whatever the number of threads
        return _table.cached(key, build)
