"""The separable engine: per-channel tables for integer pixels and diagonal models.

A diagonal Gaussian factorises over channels, so for channel c, level v and
component k the log-factor ``f[c, v, k] = -((v - mu_kc) / sigma_kc)^2 / 2``
(plus the component's log normaliser folded into channel 0) is tabulated
once. Per channel and level the largest factor ``g[c, v] = max_k f[c, v, k]``
is split off and ``a[c, v, k] = exp(f - g)`` kept, so that

    log p(x) = sum_c g[c, x_c] + log(sum_k prod_c a[c, x_c, k])

costs K*C multiplies and one log per pixel, no exp. When the scaled sum is
below ``TINY`` (its terms underflowed) the pixel is recomputed from ``f`` by
log-sum-exp, so the result is exact in the far tails too.

Applies to 8- and 16-bit integer images (signed or not) with diagonal or
spherical mixtures, for densities, log-densities and log ratios. ``auto`` takes
it for 8-bit images of at least 256 pixels: 16-bit tables (65536 levels) miss
the CPU caches for wide-ranged images and the direct engine is faster there.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import direct
from .cache import TABLES
from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS, TINY
from .params import DENSITIES, has_table_model, params
from .vmath import vlog

NAME = "separable"


def unsupported(quantity, X, models):
    if has_table_model(models):
        return (
            "needs mixtures with diagonal covariances; a HistogramModel is evaluated with "
            "method='table' (uint8 images) or 'direct'"
        )
    dt = X.dtype
    if not (
        dt.kind in "ui"
        and dt.itemsize <= 2
        and all(m.is_diagonal for m in models)
        and quantity in DENSITIES
    ):
        return (
            "needs an 8- or 16-bit integer image, diagonal or spherical covariances and a "
            f"density, log-density or log-ratio (got {dt}, covariance types "
            f"{[m.covariance_type for m in models]})"
        )
    return None


def preferred(quantity, X, models, normalized, dtype):
    return X.dtype.itemsize == 1 and X.shape[0] >= 256


def evaluate(quantity, X, models, normalized, out):
    ntasks = direct.n_tasks(X.shape[0])
    if quantity == "ratio":
        off, (fa, ga, aa) = tables(models[0], normalized, X.dtype)
        _, (fb, gb, ab) = tables(models[1], normalized, X.dtype)
        separable_log_ratio(X, off, fa, ga, aa, fb, gb, ab, out, ntasks)
    else:
        off, (f, g, a) = tables(models[0], normalized, X.dtype)
        mode = direct.MODE_LOG if quantity == "log" else direct.MODE_PDF
        separable_lse(X, off, f, g, a, mode, out, ntasks)


def tables(model, normalized, dtype):
    """``(offset, (f, g, a))`` of ``model`` for pixels of integer ``dtype``, cached."""
    levels = 2 ** (8 * dtype.itemsize)
    offset = -int(np.iinfo(dtype).min)
    key = ("separable", model._fingerprint, bool(normalized), levels, offset)
    found = TABLES.get(key)
    if found is None:
        means, prec, coef, _ = params(model, normalized)
        found = separable_tables(means, prec, coef, levels, offset)
        for t in found:
            t.setflags(write=False)
        found = TABLES.put(key, found)
    return offset, found


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
            if mode == direct.MODE_PDF:
                direct.block_exp(res, nb, tmp)
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
