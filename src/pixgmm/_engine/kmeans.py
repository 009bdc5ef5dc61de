"""Weighted k-means kernels: k-means++ seeding and Lloyd iterations on weighted points.

Private layer: ``X`` (N, D) in any numeric dtype (uint8 distinct colours,
float pixels), ``w`` (N,) float64 weights (a colour's pixel count), already
validated and free of NaN. The points are split into ``ntasks`` contiguous
groups (a function of N only, :func:`.em.n_tasks`), each with its own
accumulators, so results do not depend on the number of threads.

- :func:`nearest_d2`: ``d2[i] = min(d2[i], |x_i - c|^2)`` for a new centre, and
  the weighted potentials ``sum w_i min(d2_i, |x_i - c_l|^2)`` of candidate
  centres ``c_l`` (greedy k-means++ as scikit-learn's ``kmeans_plusplus``).
- :func:`lloyd_stats`: every point to its nearest centre; per centre the summed
  weight, the weighted sum of ``x - c`` and (optionally) of ``(x - c)(x - c)^T``
  (lower triangle), and the weighted inertia: one Lloyd step, or the statistics
  an M-step turns into a mixture.
"""

from __future__ import annotations

import numba
import numpy as np

from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS


@numba.njit(**NUMBA_FLAGS)
def _d2_task(X, w, centre, update, cands, d2, pot, t, ntasks):
    """Update ``d2`` with ``centre`` (if ``update``) and the candidates' potentials ``pot[t, l]``.

    ``pot[t, l] = sum_i w_i min(d2_i, |x_i - cands_l|^2)`` over group ``t`` (after the
    update); with no candidates (L = 0) ``pot[t, 0]`` is ``sum_i w_i d2_i``. One
    pass over the points does both, block by block with the points innermost.
    """
    N, D = X.shape
    L = cands.shape[0]
    nblocks = (N + BLOCK - 1) // BLOCK
    xt = np.empty((D, BLOCK))
    q = np.empty(BLOCK)
    acc = np.zeros(max(L, 1))
    for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
        start = b * BLOCK
        nb = min(BLOCK, N - start)
        for c in range(D):
            for i in range(nb):
                xt[c, i] = np.float64(X[start + i, c])
        dd = d2[start : start + nb]
        ww = w[start : start + nb]
        if update:
            for i in range(nb):
                q[i] = 0.0
            for c in range(D):
                m = centre[c]
                for i in range(nb):
                    v = xt[c, i] - m
                    q[i] += v * v
            for i in range(nb):
                dd[i] = min(dd[i], q[i])
        if L == 0:
            sacc = 0.0
            for i in range(nb):
                sacc += ww[i] * dd[i]
            acc[0] += sacc
        for l in range(L):
            for i in range(nb):
                q[i] = 0.0
            for c in range(D):
                m = cands[l, c]
                for i in range(nb):
                    v = xt[c, i] - m
                    q[i] += v * v
            sacc = 0.0
            for i in range(nb):
                sacc += ww[i] * min(dd[i], q[i])
            acc[l] += sacc
    for l in range(max(L, 1)):
        pot[t, l] = acc[l]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def nearest_d2(X, w, centre, update, cands, d2, pot, ntasks):
    """:func:`_d2_task` for every group, in parallel."""
    for t in numba.prange(ntasks):
        _d2_task(X, w, centre, update, cands, d2, pot, t, ntasks)


@numba.njit(**NUMBA_FLAGS)
def nearest_d2_serial(X, w, centre, update, cands, d2, pot, ntasks):
    """:func:`nearest_d2` in one thread (small inputs: no parallel launch to wait for)."""
    for t in range(ntasks):
        _d2_task(X, w, centre, update, cands, d2, pot, t, ntasks)


@numba.njit(**NUMBA_FLAGS)
def pick(w, d2, u):
    """Indices of the points where the cumulative ``w * d2`` first exceeds each of ``u`` (sorted)."""
    N = w.shape[0]
    out = np.empty(u.shape[0], dtype=np.int64)
    j = 0
    acc = 0.0
    last = 0
    for i in range(N):
        v = w[i] * d2[i]
        if v > 0.0:
            last = i
        acc += v
        while j < u.shape[0] and acc > u[j]:
            out[j] = i
            j += 1
        if j == u.shape[0]:
            break
    while j < u.shape[0]:  # rounding at the very end: the last point with weight
        out[j] = last
        j += 1
    return out


@numba.njit(**NUMBA_FLAGS)
def _lloyd_task(X, w, centres, second, nk, sx, sxx, inertia, t, ntasks):
    """Every point to its nearest centre; per group ``t`` the statistics of each centre.

    ``nk[t, k] = sum w``, ``sx[t, k] = sum w (x - c_k)``, ``sxx[t, k] = sum w (x - c_k)(x - c_k)^T``
    (lower triangle; only when ``second``), ``inertia[t] = sum w |x - c|^2``, over
    the points of group ``t`` nearest to ``c_k`` (ties: the lowest ``k``).
    """
    N, D = X.shape
    K = centres.shape[0]
    nblocks = (N + BLOCK - 1) // BLOCK
    xt = np.empty((D, BLOCK))
    best = np.empty(BLOCK)
    lab = np.empty(BLOCK, dtype=np.int64)
    q = np.empty(BLOCK)
    ank = np.zeros(K)
    asx = np.zeros((K, D))
    asxx = np.zeros((K, D, D))
    ine = 0.0
    for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
        start = b * BLOCK
        nb = min(BLOCK, N - start)
        for c in range(D):
            for i in range(nb):
                xt[c, i] = np.float64(X[start + i, c])
        for i in range(nb):
            best[i] = np.inf
            lab[i] = 0
        for k in range(K):
            for i in range(nb):
                q[i] = 0.0
            for c in range(D):
                m = centres[k, c]
                for i in range(nb):
                    v = xt[c, i] - m
                    q[i] += v * v
            for i in range(nb):
                if q[i] < best[i]:
                    best[i] = q[i]
                    lab[i] = k
        for i in range(nb):
            k = lab[i]
            wi = w[start + i]
            ank[k] += wi
            ine += wi * best[i]
            for c in range(D):
                dc = xt[c, i] - centres[k, c]
                asx[k, c] += wi * dc
                if second:
                    for e in range(c + 1):
                        asxx[k, c, e] += wi * dc * (xt[e, i] - centres[k, e])
    nk[t] = ank
    sx[t] = asx
    sxx[t] = asxx
    inertia[t] = ine


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def lloyd_stats(X, w, centres, second, nk, sx, sxx, inertia, ntasks):
    """:func:`_lloyd_task` for every group, in parallel."""
    for t in numba.prange(ntasks):
        _lloyd_task(X, w, centres, second, nk, sx, sxx, inertia, t, ntasks)


@numba.njit(**NUMBA_FLAGS)
def lloyd_stats_serial(X, w, centres, second, nk, sx, sxx, inertia, ntasks):
    """:func:`lloyd_stats` in one thread (small inputs)."""
    for t in range(ntasks):
        _lloyd_task(X, w, centres, second, nk, sx, sxx, inertia, t, ntasks)
