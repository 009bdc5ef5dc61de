"""The E-step of 8-bit points with diagonal covariances from per-channel tables.

Private layer, the same contract as :func:`.em.em_stats` (the same outputs, to
rounding) for a colour histogram: ``X`` (N, 3) uint8 distinct colours with
diagonal or spherical covariances. A diagonal Gaussian factorises over the
channels; with the separable engine's tables (:func:`.separable.separable_tables`:
log-factors ``f[c, v, k]``, their per-level maximum ``g[c, v]`` and the scaled
factors ``a[c, v, k] = exp(f - g)``) a point's K weighted densities are
``exp(g0 + g1 + g2) * a[0, x0, k] a[1, x1, k] a[2, x2, k]``: 2K multiplies, no
exponential. The components are the innermost loop (one contiguous row of K
values per channel and level), and so are the sufficient statistics, kept per
component in K-long accumulators, so the whole E-step vectorises over K.

Where the scaled sum is below :data:`.config.TINY` (or not finite) the products
may have lost precision to underflow, and the point is recomputed exactly by
log-sum-exp from ``f``. A component whose product underflows while the sum does
not has a responsibility below ``1e-308 / TINY`` of the point's weight.
"""

from __future__ import annotations

import numba
import numpy as np

from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS, TINY
from .em import _block_acc3, _load_block
from .separable import separable_tables
from .vmath import vexp, vlog


def tables(means, prec, coef):
    """``(f, g, a)`` for 8-bit values (see the module docstring)."""
    return separable_tables(means, prec, coef, 256, 0)


@numba.njit(**NUMBA_FLAGS)
def _exact_point(X, j, f, r):
    """``r[:]`` becomes the responsibilities of point ``j`` by log-sum-exp; returns ``log p``."""
    K = f.shape[2]
    v0 = np.int64(X[j, 0])
    v1 = np.int64(X[j, 1])
    v2 = np.int64(X[j, 2])
    m = -np.inf
    for k in range(K):
        lk = f[0, v0, k] + f[1, v1, k] + f[2, v2, k]
        r[k] = lk
        m = lk if lk > m else m
    if m == -np.inf:
        for k in range(K):
            r[k] = 0.0
        return m
    s = 0.0
    for k in range(K):
        e = vexp(r[k] - m)
        r[k] = e
        s += e
    for k in range(K):
        r[k] /= s
    return m + vlog(s)


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def em_stats_table(X, w, has_w, f, g, a, means, second, nk, sx, sxx, out, ntasks):
    """:func:`.em.em_stats` for uint8 points (N, 3) and diagonal precisions, from tables.

    Per block: the K scaled products per point (components innermost), the logs of
    the sums for the whole block at once, the exact fallback where a sum is too
    small, then the responsibilities transposed to (K, block) for the
    statistics, accumulated as :func:`.em.em_stats` does (:func:`.em._block_acc3`).
    """
    N, D = X.shape
    K = means.shape[0]
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        R = np.empty((BLOCK, K))
        lt = np.empty((K, BLOCK))
        xt = np.empty((D, BLOCK))
        s = np.empty(BLOCK)
        lp = np.empty(BLOCK)
        wt = np.empty(BLOCK)
        ank = np.zeros(K)
        asx = np.zeros((K, D))
        asxx = np.zeros((K, D, D))
        ll = 0.0
        wsum = 0.0
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _load_block(X, w, has_w, start, nb, xt, wt)
            for i in range(nb):
                j = start + i
                v0 = np.int64(X[j, 0])
                v1 = np.int64(X[j, 1])
                v2 = np.int64(X[j, 2])
                r = R[i]
                a0 = a[0, v0]
                a1 = a[1, v1]
                a2 = a[2, v2]
                acc = 0.0
                for k in range(K):
                    e = a0[k] * a1[k] * a2[k]
                    r[k] = e
                    acc += e
                s[i] = acc
                lp[i] = g[0, v0] + g[1, v1] + g[2, v2]
            for i in range(nb):
                lp[i] = lp[i] + vlog(s[i])
            for i in range(nb):
                s[i] = 1.0 / s[i]
            for k in range(K):
                q = lt[k]
                for i in range(nb):
                    q[i] = R[i, k] * s[i]
            for i in range(nb):
                si = 1.0 / s[i]
                if not (si >= TINY and si < np.inf):
                    lp[i] = _exact_point(X, start + i, f, R[i])
                    for k in range(K):
                        lt[k, i] = R[i, k]
            for i in range(nb):
                ll += wt[i] * lp[i]
                wsum += wt[i]
            if second != 0:
                _block_acc3(xt, nb, means, lt, lp, wt, second, ank, asx, asxx)
        nk[t] = ank
        sx[t] = asx
        sxx[t] = asxx
        out[t, 0] = ll
        out[t, 1] = wsum
        out[t, 2] = 0.0
