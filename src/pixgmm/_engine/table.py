"""The colour-table engine: the value of every 8-bit colour, gathered per pixel.

For a uint8 image with C <= 3 channels the quantity (density, log-density or
log ratio) is computed once for each of the 256**C colours and then looked up
per pixel, which costs one read of the pixel and one of the table.

For a diagonal 3-channel model the 256**3 log-densities are, row (v0, v1) by
column v2, ``log(sum_k R[r, k] B[v2, k]) + rs[r] + cs[v2]`` with row and column
scales split off as in the separable engine: one matrix product of (65536, K)
by (K, 256), done by a parallel kernel in row chunks so the float64 scratch
stays small (8 MiB). Entries whose scaled sum is below ``TINY`` are recomputed
directly. Other models are evaluated colour by colour with the direct kernel;
a table model (HistogramModel) gives its own values.

``auto`` takes this engine when the table is already in the table cache, or
when the image has at least ``TABLE_MIN_PIXELS`` pixels (2**20, a 1-megapixel
photo) for diagonal 3-channel models and 3-channel table models, whose table is
cheap, and 256**C pixels otherwise, whose table costs one direct evaluation per
colour. The table is then kept in the cache for the next image.
"""

from __future__ import annotations

import numba
import numpy as np

from . import direct
from .cache import TABLES
from .config import BLOCK, NUMBA_PARALLEL_FLAGS, TINY
from .params import DENSITIES, combine_logs, has_table_model, is_table_model, params
from .separable import separable_tables
from .vmath import vexp, vlog

NAME = "table"

#: The diagonal 3-channel colour table is built when an image has at least this many pixels.
TABLE_MIN_PIXELS = 2**20
#: Rows (pairs of the first two channel values) per chunk of the colour-table build.
TABLE_CHUNK_ROWS = 4096


def unsupported(quantity, X, models):
    if X.dtype == np.uint8 and X.shape[1] <= 3 and quantity in DENSITIES:
        return None
    return (
        "needs a uint8 image with at most 3 channels and a density, log-density or "
        f"log-ratio (got {X.dtype} with {X.shape[1]} channels)"
    )


def min_pixels(X, models):
    """The image size from which ``auto`` builds the table (when it is not cached)."""
    c = X.shape[1]
    if c == 3 and all(is_table_model(m) or m.is_diagonal for m in models):
        return TABLE_MIN_PIXELS
    return 256**c


def preferred(quantity, X, models, normalized, dtype):
    if X.shape[0] >= min_pixels(X, models):
        return True
    return TABLES.get(_key(quantity, models, normalized, X.shape[1], dtype)) is not None


def evaluate(quantity, X, models, normalized, out):
    table = colour_table(quantity, models, normalized, X.shape[1], out.dtype)
    gather(X, table, out)


def gather(X, table, out):
    """``out[i] = table[colour index of X[i]]`` for uint8 pixels X (N, C)."""
    c = X.shape[1]
    if table.shape != (256**c,):
        raise ValueError(f"a colour table of {table.shape} entries cannot index {c}-channel pixels")
    shifts = np.array([8 * (c - 1 - i) for i in range(c)], dtype=np.int64)
    _gather(X, shifts, table, out, direct.n_tasks(X.shape[0]))


def gather_pair(X, table_a, table_b, out_a, out_b):
    """:func:`gather` of two tables in one pass over the pixels (two maps of one image)."""
    c = X.shape[1]
    if table_a.shape != (256**c,) or table_b.shape != (256**c,):
        raise ValueError(f"colour tables of {256**c} entries are needed for {c}-channel pixels")
    shifts = np.array([8 * (c - 1 - i) for i in range(c)], dtype=np.int64)
    _gather2(X, shifts, table_a, table_b, out_a, out_b, direct.n_tasks(X.shape[0]))


def gather_split(X, table, value_bits, out_value, out_flag, flag_on):
    """One lookup per pixel in a table of packed entries: a value and a flag bit.

    Each entry of ``table`` (uint16 or uint32) holds a value in its low
    ``value_bits`` bits and a flag in the bit above; ``out_value`` (an unsigned
    integer array of the value's width: a float32 map viewed as uint32) gets the
    value, ``out_flag`` (uint8: a bool map viewed as uint8, or a 0/255 mask)
    ``flag_on`` where the flag is set, 0 elsewhere.
    """
    c = X.shape[1]
    if table.shape != (256**c,):
        raise ValueError(f"a colour table of {table.shape} entries cannot index {c}-channel pixels")
    shifts = np.array([8 * (c - 1 - i) for i in range(c)], dtype=np.int64)
    mask = table.dtype.type((1 << value_bits) - 1)
    _gather_split(X, shifts, table, mask, np.int64(value_bits), out_value, out_flag,
                  np.uint8(flag_on), direct.n_tasks(X.shape[0]))  # fmt: skip


def all_colours(n_channels):
    """Every 8-bit colour as an (256**C, C) uint8 array, in colour-table order."""
    idx = np.arange(256**n_channels, dtype=np.uint32)
    colours = np.empty((idx.size, n_channels), dtype=np.uint8)
    for c in range(n_channels):
        np.right_shift(idx, 8 * (n_channels - 1 - c), out=colours[:, c], casting="unsafe")
    return colours


def _key(quantity, models, normalized, n_channels, dtype):
    """Everything a colour table depends on."""
    norm = None if quantity == "ratio" and not has_table_model(models) else bool(normalized)
    return (
        "colour-table",
        *(m._fingerprint for m in models),
        quantity,
        norm,
        n_channels,
        np.dtype(dtype).str,
    )


def colour_table(quantity, models, normalized, n_channels, dtype):
    """The colour table of ``quantity`` for 8-bit pixels, from the cache or built."""
    dtype = np.dtype(dtype)
    key = _key(quantity, models, normalized, n_channels, dtype)
    table = TABLES.get(key)
    if table is not None:
        return table
    table = np.empty(256**n_channels, dtype=dtype)
    if has_table_model(models):
        for start, logs in _table_model_logs(models, normalized, n_channels):
            combine_logs(quantity, logs, table[start : start + logs[0].shape[0]])
    else:
        chunks = [log_table_chunks(params(m, normalized), n_channels) for m in models]
        for parts in zip(*chunks):
            start = parts[0][0]
            values = parts[0][1]
            stop = start + values.shape[0]
            if quantity == "log":
                table[start:stop] = values
            elif quantity == "pdf":
                np.exp(values, out=values)
                table[start:stop] = values
            else:
                np.subtract(values, parts[1][1], out=values)
                table[start:stop] = values
    table.setflags(write=False)
    return TABLES.put(key, table)


def cached(key, build):
    """The table cache's entry for ``key``, built by ``build()`` and kept when missing."""
    table = TABLES.get(key)
    if table is None:
        table = build()
        table.setflags(write=False)
        table = TABLES.put(key, table)
    return table


def _table_model_logs(models, normalized, n_channels):
    """Yield ``(start, [log-values of each model])`` covering all 256**C colours in order."""
    n = 256**n_channels
    mix = [i for i, m in enumerate(models) if not is_table_model(m)]
    if mix:  # at most one: a log ratio has two models and one of them is a table model
        chunks = log_table_chunks(params(models[mix[0]], normalized), n_channels)
    else:
        chunks = ((start, None) for start in range(0, n, 1 << 20))
    for start, values in chunks:
        stop = start + values.shape[0] if values is not None else min(n, start + (1 << 20))
        yield (
            start,
            [values if i in mix else m._log_table(start, stop) for i, m in enumerate(models)],
        )


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def _gather(X, shifts, table, out, ntasks):
    """out[i] = table[sum_c X[i, c] << shifts[c]] for 8-bit pixels."""
    N, C = X.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        lo = t * nblocks // ntasks * BLOCK
        hi = min(N, (t + 1) * nblocks // ntasks * BLOCK)
        if C == 3:
            s0 = shifts[0]
            s1 = shifts[1]
            s2 = shifts[2]
            for i in range(lo, hi):
                idx = (
                    (np.int64(X[i, 0]) << s0)
                    | (np.int64(X[i, 1]) << s1)
                    | (np.int64(X[i, 2]) << s2)
                )
                out[i] = table[idx]
        else:
            for i in range(lo, hi):
                idx = np.int64(0)
                for c in range(C):
                    idx |= np.int64(X[i, c]) << shifts[c]
                out[i] = table[idx]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def _gather2(X, shifts, table_a, table_b, out_a, out_b, ntasks):
    """out_a[i], out_b[i] = table_a[idx], table_b[idx] with idx the colour index of X[i]."""
    N, C = X.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        lo = t * nblocks // ntasks * BLOCK
        hi = min(N, (t + 1) * nblocks // ntasks * BLOCK)
        for i in range(lo, hi):
            idx = np.int64(0)
            for c in range(C):
                idx |= np.int64(X[i, c]) << shifts[c]
            out_a[i] = table_a[idx]
            out_b[i] = table_b[idx]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def _gather_split(X, shifts, table, mask, value_bits, out_value, out_flag, flag_on, ntasks):
    """out_value[i], out_flag[i] from one table entry: its low bits and its flag bit."""
    N, C = X.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        lo = t * nblocks // ntasks * BLOCK
        hi = min(N, (t + 1) * nblocks // ntasks * BLOCK)
        for i in range(lo, hi):
            idx = np.int64(0)
            for c in range(C):
                idx |= np.int64(X[i, c]) << shifts[c]
            entry = table[idx]
            out_value[i] = entry & mask
            out_flag[i] = flag_on if (entry >> value_bits) & 1 else np.uint8(0)


def _direct_log(colours, params):
    out = np.empty(colours.shape[0])
    means, prec, coef, full = params
    direct.log_sum_exp(
        colours, means, prec, coef, full, direct.MODE_LOG, out, direct.n_tasks(colours.shape[0])
    )
    return out


def _colours(idx, n_channels):
    """The 8-bit colours with table indices ``idx``, as an (n, C) uint8 array."""
    cols = [(idx >> (8 * (n_channels - 1 - c))) & 255 for c in range(n_channels)]
    return np.stack(cols, axis=1).astype(np.uint8)


def log_table_chunks(params, n_channels):
    """Yield ``(start, log_values)`` covering all 256**C colours of a model, in order.

    ``params`` is ``(means, prec, coef, full)``. Memory is bounded by the chunk size:
    for a diagonal 3-channel model one float64 buffer is yielded again for every chunk,
    so a caller that keeps a chunk must copy it.
    """
    means, prec, coef, full = params
    n = 256**n_channels
    if n_channels != 3 or full:
        step = TABLE_CHUNK_ROWS * 256
        for start in range(0, n, step):
            stop = min(n, start + step)
            yield start, _direct_log(_colours(np.arange(start, stop), n_channels), params)
        return
    f, g, a = separable_tables(means, prec, coef, 256, 0)
    ca_t = np.ascontiguousarray(a[2].T)  # (K, 256)
    out = np.empty((TABLE_CHUNK_ROWS, 256))
    ntasks = direct.n_tasks(TABLE_CHUNK_ROWS * 256)
    for r0 in range(0, 65536, TABLE_CHUNK_ROWS):
        _diag3_rows(f[0], f[1], ca_t, g[2], r0, out, ntasks)
        flat = out.reshape(-1)
        bad = np.flatnonzero(np.isnan(flat))
        if bad.size:
            flat[bad] = _direct_log(_colours(bad + r0 * 256, 3), params)
        yield r0 * 256, flat


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def _diag3_rows(f0, f1, ca_t, cs, r0, out, ntasks):
    """out[r, v2] = log p(colour (v0, v1, v2)) for the rows r0 + r = v0 * 256 + v1.

    Per row the K log-factors of (v0, v1) are summed and scaled by their largest, ``rs``;
    then for all 256 values v2 at once ``s = sum_k exp(row_k - rs) * ca_t[k, v2]`` and
    ``rs + cs[v2] + log(s)``: a (1, K) by (K, 256) product, then a vectorised log. An
    entry whose ``s`` is below ``TINY`` (its terms underflowed) is set to NaN for the
    caller to recompute exactly.
    """
    nrows = out.shape[0]
    K = ca_t.shape[0]
    for t in numba.prange(ntasks):
        rl = np.empty(K)
        s = np.empty(256)
        for r in range(t * nrows // ntasks, (t + 1) * nrows // ntasks):
            v0 = (r0 + r) >> 8
            v1 = (r0 + r) & 255
            rs = -np.inf
            for k in range(K):
                rl[k] = f0[v0, k] + f1[v1, k]
                rs = max(rs, rl[k])
            for k in range(K):  # terms scaled by their largest: a flush to 0 cannot matter
                rl[k] = vexp(rl[k] - rs)
            for v in range(256):
                s[v] = 0.0
            for k in range(K):
                w = rl[k]
                for v in range(256):
                    s[v] += w * ca_t[k, v]
            o = out[r]
            for v in range(256):
                val = rs + cs[v] + vlog(s[v])
                o[v] = val if s[v] >= TINY else np.nan
