"""Table engines: the full colour table and per-channel separable tables.

Private layer. The builders take model parameter arrays; the kernels take
contiguous arrays and scalars.

Separable tables (diagonal covariances, integer pixels with L levels)
    A diagonal Gaussian factorises over channels, so for channel c, level v and
    component k the log-factor ``f[c, v, k] = -((v - mu_kc) / sigma_kc)^2 / 2``
    (plus the component's log normaliser folded into channel 0) is tabulated
    once. Per channel and level the largest factor ``g[c, v] = max_k f[c, v, k]``
    is split off and ``a[c, v, k] = exp(f - g)`` kept, so that

        log p(x) = sum_c g[c, x_c] + log(sum_k prod_c a[c, x_c, k])

    costs K*C multiplies and one log per pixel, no exp. When the scaled sum is
    below ``TINY`` (its terms underflowed) the pixel is recomputed from ``f`` by
    log-sum-exp, so the result is exact in the far tails too.

Colour table (8-bit pixels, C <= 3)
    The value for every one of the 256**C colours, gathered per pixel. For a
    diagonal 3-channel model the 256**3 log-densities are, row (v0, v1) by column
    v2, ``log(sum_k R[r, k] B[v2, k]) + rs[r] + cs[v2]`` with row and column
    scales split off as above: one matrix product of (65536, K) by (K, 256),
    done by a parallel kernel in row chunks so the float64 scratch stays small
    (8 MiB). Entries whose scaled sum is below ``TINY`` are recomputed directly.
    Other models are evaluated colour by colour with the direct kernel.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import _kernels
from ._config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS, TINY
from ._math import vexp, vlog

#: Rows (pairs of the first two channel values) per chunk of the colour-table build.
TABLE_CHUNK_ROWS = 4096


# -- separable per-channel tables ----------------------------------------------------------


def separable_tables(means, prec, coef, levels, offset):
    """Return ``(f, g, a)`` of shapes (D, L, K), (D, L), (D, L, K) for a diagonal model.

    Level ``v`` stands for the pixel value ``v - offset``.
    """
    k, d = means.shape
    values = np.arange(levels, dtype=np.float64) - offset
    sig_inv = np.diagonal(prec, axis1=1, axis2=2)  # (K, D)
    # f[c, v, k]
    z = (values[None, :, None] - means.T[:, None, :]) * sig_inv.T[:, None, :]
    f = -0.5 * z * z
    f[0] += coef[None, :]
    f = np.ascontiguousarray(f)  # the broadcast above may leave it in Fortran-like order
    with np.errstate(invalid="ignore"):
        g = np.ascontiguousarray(f.max(axis=2))
        a = np.exp(f - g[:, :, None])
    return f, g, np.ascontiguousarray(a)


@numba.njit(**NUMBA_FLAGS)
def _separable_block(X, start, nb, offset, f, g, a, prod, sc, res):
    """res[:nb] = log p of pixels X[start:start+nb] from separable tables.

    Per pixel the K scaled products are formed with the component loop innermost
    (``a[c, v]`` is one contiguous row of K values); the logs of the sums are
    then taken for the whole block at once, vectorised.
    """
    D = X.shape[1]
    K = f.shape[2]
    if D == 3:
        for i in range(nb):
            v0 = np.int64(X[start + i, 0]) + offset
            v1 = np.int64(X[start + i, 1]) + offset
            v2 = np.int64(X[start + i, 2]) + offset
            s = 0.0
            for k in range(K):
                s += a[0, v0, k] * a[1, v1, k] * a[2, v2, k]
            res[i] = s
            sc[i] = g[0, v0] + g[1, v1] + g[2, v2]
    elif D == 4:
        for i in range(nb):
            v0 = np.int64(X[start + i, 0]) + offset
            v1 = np.int64(X[start + i, 1]) + offset
            v2 = np.int64(X[start + i, 2]) + offset
            v3 = np.int64(X[start + i, 3]) + offset
            s = 0.0
            for k in range(K):
                s += a[0, v0, k] * a[1, v1, k] * a[2, v2, k] * a[3, v3, k]
            res[i] = s
            sc[i] = g[0, v0] + g[1, v1] + g[2, v2] + g[3, v3]
    else:
        for i in range(nb):
            v = np.int64(X[start + i, 0]) + offset
            scale = g[0, v]
            for k in range(K):
                prod[k] = a[0, v, k]
            for c in range(1, D):
                v = np.int64(X[start + i, c]) + offset
                scale += g[c, v]
                for k in range(K):
                    prod[k] *= a[c, v, k]
            s = 0.0
            for k in range(K):
                s += prod[k]
            res[i] = s
            sc[i] = scale
    for i in range(nb):
        r = sc[i] + vlog(res[i])
        # A sum below TINY lost precision to underflow (or is 0): exact fallback.
        sc[i] = r if res[i] >= TINY else np.nan
        res[i] = r
    for i in range(nb):
        if sc[i] != sc[i]:
            res[i] = _separable_exact(X, start + i, offset, f, prod, D, K)


@numba.njit(**NUMBA_FLAGS)
def _separable_exact(X, i, offset, f, prod, D, K):
    """log p of pixel X[i] by log-sum-exp over the log-factors (the underflow fallback)."""
    m = -np.inf
    for k in range(K):
        lk = 0.0
        for c in range(D):
            lk += f[c, np.int64(X[i, c]) + offset, k]
        prod[k] = lk
        m = lk if lk > m else m
    if m == -np.inf:
        return -np.inf
    s = 0.0
    for k in range(K):
        s += math.exp(prod[k] - m)
    return m + math.log(s)


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def separable_lse(X, offset, f, g, a, mode, out, ntasks):
    """out[i] = log p(X[i]) (mode 0) or p(X[i]) (mode 1) from separable tables."""
    N = X.shape[0]
    K = f.shape[2]
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        prod = np.empty(K)
        res = np.empty(BLOCK)
        tmp = np.empty(BLOCK)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _separable_block(X, start, nb, offset, f, g, a, prod, tmp, res)
            if mode == _kernels.MODE_PDF:
                _kernels.block_exp(res, nb, tmp)
            for i in range(nb):
                out[start + i] = res[i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def separable_log_ratio(X, offset, fa, ga, aa, fb, gb, ab, out, ntasks):
    """out[i] = log p_a(X[i]) - log p_b(X[i]) from separable tables."""
    N = X.shape[0]
    K = max(fa.shape[2], fb.shape[2])
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        prod = np.empty(K)
        tmp = np.empty(BLOCK)
        ra = np.empty(BLOCK)
        rb = np.empty(BLOCK)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _separable_block(X, start, nb, offset, fa, ga, aa, prod, tmp, ra)
            _separable_block(X, start, nb, offset, fb, gb, ab, prod, tmp, rb)
            for i in range(nb):
                out[start + i] = ra[i] - rb[i]


# -- full colour table ---------------------------------------------------------------------


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def gather(X, shifts, table, out, ntasks):
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


def _direct_log(colours, params):
    out = np.empty(colours.shape[0])
    means, prec, coef, full = params
    _kernels.log_sum_exp(
        colours, means, prec, coef, full, _kernels.MODE_LOG, out, _kernels.n_tasks(colours.shape[0])
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
    ntasks = _kernels.n_tasks(TABLE_CHUNK_ROWS * 256)
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
