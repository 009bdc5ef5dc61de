"""The weighted EM engine: fused E-step and sufficient statistics, M-step, histograms.

Private layer: arguments are arrays and scalars only, already validated by
:mod:`pixgmm.fitting`. ``X`` is (N, D) in any numeric dtype (uint8 distinct
colours, float32 or float64 pixels), ``w`` (N,) float64 sample weights.

One EM iteration is one call of :func:`em_stats`: the pixels are split into
blocks of ``BLOCK``; ``prange`` runs over ``ntasks`` contiguous groups of blocks,
each with its own scratch and its own accumulators (row ``t`` of the outputs),
so nothing is shared between threads and no (N, K) responsibility matrix exists.
Per block the K log-terms ``l_k = coef_k - |U_k^T (x - mu_k)|^2 / 2`` are
computed with the pixels innermost (as in ``direct``), reduced by log-sum-exp
to ``log p(x)``, and each component's responsibilities ``r = w exp(l_k - log p)``
are accumulated at once into

- ``nk[t, k]  = sum r``,
- ``sx[t, k]  = sum r (x - mu_k)``,
- ``sxx[t, k] = sum r (x - mu_k)(x - mu_k)^T`` (only its diagonal for diag and
  spherical covariances),

all in float64. The statistics are centred on the *current* means ``mu_k``:
the data are already shifted by ``mu_k`` for the log-terms, and the new
covariance ``sxx / nk - d d^T`` (``d = sx / nk``, the mean's update) loses
almost nothing to cancellation, whatever the data's offset (0..255 colours,
or 1e6 +- 1), unlike raw second moments ``sum r x x^T / nk - mu mu^T``.

A pixel with a NaN in any channel gets weight 0 and is counted; the driver
rejects infinite values before the first call. ``ntasks`` is chosen by
:func:`n_tasks` from the pixel count only, not the number of threads, so a
fit gives bit-identical results on any machine with the same data.

The M-step (:func:`~pixgmm._engine.mstep.m_step`, :func:`~.mstep.precision_cholesky`)
is NumPy and lives in :mod:`.mstep`, which imports no numba.
"""

from __future__ import annotations

import numba
import numpy as np

from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS
from .direct import _block_log_terms3  # the same log-terms as evaluation, one kernel
from .mstep import (  # noqa: F401  (the M-step's NumPy half, named here as before)
    SECOND_DIAG,
    SECOND_FULL,
    IllDefinedCovariance,
    log_coefficients,
    m_step,
    precision_cholesky,
)
from .vmath import vexp, vlog

#: Upper bound on the pixel groups of one call (each holds K x D x D accumulators).
MAX_TASKS = 64


def n_tasks(n):
    """Pixel groups for ``prange``: a function of ``n`` only, so results do not depend on threads."""
    nblocks = (n + BLOCK - 1) // BLOCK
    return max(1, min(nblocks, MAX_TASKS))


@numba.njit(**NUMBA_FLAGS)
def _load_block(X, w, has_w, start, nb, xt, wt):
    """xt[:, :nb] = X[start:start+nb].T in float64, wt = weights; NaN pixels weigh 0. Returns NaN count."""
    D = X.shape[1]
    nnan = 0
    for i in range(nb):
        wt[i] = w[start + i] if has_w else 1.0
    for c in range(D):
        for i in range(nb):
            xt[c, i] = np.float64(X[start + i, c])
    for i in range(nb):
        bad = False
        for c in range(D):
            v = xt[c, i]
            bad = bad or (v != v)
        if bad:
            nnan += 1
            wt[i] = 0.0
            for c in range(D):
                xt[c, i] = 0.0
    return nnan


@numba.njit(**NUMBA_FLAGS)
def _block_terms(xt, nb, means, prec, coef, full, lt, dt, y):
    """lt[k, :nb] = coef_k - |U_k^T (x - mu_k)|^2 / 2 for every component."""
    K, D = means.shape
    for k in range(K):
        q = lt[k]
        for c in range(D):
            mc = means[k, c]
            for i in range(nb):
                dt[c, i] = xt[c, i] - mc
        for i in range(nb):
            q[i] = 0.0
        if full:
            for j in range(D):
                for i in range(nb):
                    y[i] = 0.0
                for c in range(j + 1):
                    u = prec[k, c, j]
                    for i in range(nb):
                        y[i] += dt[c, i] * u
                for i in range(nb):
                    q[i] += y[i] * y[i]
        else:
            for c in range(D):
                u = prec[k, c, c]
                for i in range(nb):
                    t = dt[c, i] * u
                    q[i] += t * t
        ck = coef[k]
        for i in range(nb):
            q[i] = ck - 0.5 * q[i]


@numba.njit(**NUMBA_FLAGS)
def _block_acc3(xt, nb, means, lt, lp, wt, second, ank, asx, asxx):
    """Responsibilities and moments of a block of 3-channel pixels, one pass per component."""
    K = means.shape[0]
    x0 = xt[0]
    x1 = xt[1]
    x2 = xt[2]
    for k in range(K):
        q = lt[k]
        m0 = means[k, 0]
        m1 = means[k, 1]
        m2 = means[k, 2]
        s = 0.0
        s0 = 0.0
        s1 = 0.0
        s2 = 0.0
        s00 = 0.0
        s11 = 0.0
        s22 = 0.0
        s10 = 0.0
        s20 = 0.0
        s21 = 0.0
        if second == SECOND_FULL:
            for i in range(nb):
                r = wt[i] * q[i]
                d0 = x0[i] - m0
                d1 = x1[i] - m1
                d2 = x2[i] - m2
                r0 = r * d0
                r1 = r * d1
                r2 = r * d2
                s += r
                s0 += r0
                s1 += r1
                s2 += r2
                s00 += r0 * d0
                s11 += r1 * d1
                s22 += r2 * d2
                s10 += r1 * d0
                s20 += r2 * d0
                s21 += r2 * d1
        else:
            for i in range(nb):
                r = wt[i] * q[i]
                d0 = x0[i] - m0
                d1 = x1[i] - m1
                d2 = x2[i] - m2
                r0 = r * d0
                r1 = r * d1
                r2 = r * d2
                s += r
                s0 += r0
                s1 += r1
                s2 += r2
                s00 += r0 * d0
                s11 += r1 * d1
                s22 += r2 * d2
        ank[k] += s
        asx[k, 0] += s0
        asx[k, 1] += s1
        asx[k, 2] += s2
        asxx[k, 0, 0] += s00
        asxx[k, 1, 1] += s11
        asxx[k, 2, 2] += s22
        asxx[k, 1, 0] += s10
        asxx[k, 2, 0] += s20
        asxx[k, 2, 1] += s21


@numba.njit(**NUMBA_FLAGS)
def _block_lse(lt, K, nb, m, s, lp):
    """lp[:nb] = log(sum_k exp(lt[k, :nb])) (two-pass, exact); lt[k] becomes ``exp(lt[k] - lp)``.

    The second pass keeps ``exp(l_k - max)`` in ``lt`` and its sum in ``s``, so the
    responsibilities cost a multiplication instead of another K exponentials.
    """
    for i in range(nb):
        m[i] = -np.inf
        s[i] = 0.0
    for k in range(K):
        q = lt[k]
        for i in range(nb):
            v = q[i]
            m[i] = v if v > m[i] else m[i]
    for k in range(K):
        q = lt[k]
        for i in range(nb):
            e = vexp(q[i] - m[i])
            q[i] = e
            s[i] += e
    for i in range(nb):
        lp[i] = m[i] + vlog(s[i])
        s[i] = 1.0 / s[i]
    for k in range(K):
        q = lt[k]
        for i in range(nb):
            q[i] *= s[i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def em_stats(X, w, has_w, means, prec, coef, full, second, nk, sx, sxx, out, ntasks):
    """One E-step with its sufficient statistics, per pixel group ``t``.

    Writes ``nk[t]`` (K,), ``sx[t]`` (K, D), ``sxx[t]`` (K, D, D) (lower triangle and
    diagonal for ``second == SECOND_FULL``, diagonal only for ``SECOND_DIAG``) and
    ``out[t] = (sum w log p(x), sum w, NaN pixels)``. ``second == 0`` skips the
    moments (a likelihood-only pass).
    """
    N, D = X.shape
    K = means.shape[0]
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt = np.empty((D, BLOCK))
        dt = np.empty((D, BLOCK))
        lt = np.empty((K, BLOCK))
        wt = np.empty(BLOCK)
        y = np.empty(BLOCK)
        m = np.empty(BLOCK)
        s = np.empty(BLOCK)
        lp = np.empty(BLOCK)
        ank = np.zeros(K)
        asx = np.zeros((K, D))
        asxx = np.zeros((K, D, D))
        ll = 0.0
        wsum = 0.0
        nnan = 0
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            nnan += _load_block(X, w, has_w, start, nb, xt, wt)
            if D == 3:
                _block_log_terms3(xt, nb, means, prec, coef, full, lt)
            else:
                _block_terms(xt, nb, means, prec, coef, full, lt, dt, y)
            _block_lse(lt, K, nb, m, s, lp)
            for i in range(nb):
                ll += wt[i] * lp[i]
                wsum += wt[i]
            if second == 0:
                continue
            if D == 3:
                _block_acc3(xt, nb, means, lt, lp, wt, second, ank, asx, asxx)
                continue
            for k in range(K):
                q = lt[k]
                for i in range(nb):  # the responsibility, times the pixel's weight
                    q[i] = wt[i] * q[i]
                acc = 0.0
                for i in range(nb):
                    acc += q[i]
                ank[k] += acc
                for c in range(D):
                    mc = means[k, c]
                    for i in range(nb):
                        dt[c, i] = xt[c, i] - mc
                for c in range(D):
                    dc = dt[c]
                    acc = 0.0
                    for i in range(nb):
                        acc += q[i] * dc[i]
                    asx[k, c] += acc
                    top = c if second == SECOND_FULL else 0
                    for e in range(c - top, c + 1):
                        de = dt[e]
                        acc = 0.0
                        for i in range(nb):
                            acc += q[i] * dc[i] * de[i]
                        asxx[k, c, e] += acc
        nk[t] = ank
        sx[t] = asx
        sxx[t] = asxx
        out[t, 0] = ll
        out[t, 1] = wsum
        out[t, 2] = nnan


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def count_nonfinite(X, ntasks):
    """``(pixels with a NaN in some channel, infinite values)`` of a float (N, D) array."""
    N, D = X.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    counts = np.zeros((ntasks, 2), dtype=np.int64)
    for t in numba.prange(ntasks):
        nnan = 0
        ninf = 0
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            for i in range(b * BLOCK, min((b + 1) * BLOCK, N)):
                bad = False
                for c in range(D):
                    v = X[i, c]
                    bad = bad or (v != v)
                    ninf += 1 if (v == np.inf or v == -np.inf) else 0
                nnan += 1 if bad else 0
        counts[t, 0] = nnan
        counts[t, 1] = ninf
    return counts[:, 0].sum(), counts[:, 1].sum()


@numba.njit(**NUMBA_FLAGS)
def histogram8(X, w, has_w, mask, has_mask, counts):
    """counts[code(x)] += w (1 without weights) for every (masked) row of 8-bit X (N, C), C <= 3.

    ``code(x) = x_0 * 256**(C-1) + ... + x_{C-1}`` (the first channel most
    significant). One serial pass: the counts array (up to 16.7 M int64) is
    shared, and random increments are limited by memory latency, not threads.
    Float64 counts are exact up to 2**53 pixels.
    """
    N, C = X.shape
    for i in range(N):
        if has_mask and not mask[i]:
            continue
        code = np.int64(0)
        for c in range(C):
            code = code * 256 + np.int64(X[i, c])
        counts[code] += w[i] if has_w else 1.0


@numba.njit(**NUMBA_FLAGS)
def histogram8_count(X, counts):
    """counts[code(x)] += 1 for every row of 8-bit X (N, C), C <= 3 (integer counts).

    :func:`histogram8` without weights or mask, into a uint32 array: half the
    memory of float64 counts, so half the pages to fault in and to scan; exact
    for fewer than 2**32 pixels.
    """
    N, C = X.shape
    for i in range(N):
        code = np.int64(0)
        for c in range(C):
            code = code * 256 + np.int64(X[i, c])
        counts[code] += np.uint32(1)


@numba.njit(**NUMBA_FLAGS)
def histogram8_sparse3(X):
    """``(codes, counts)``: the sorted distinct packed codes of 8-bit RGB rows X (N, 3), counted.

    The same histogram as :func:`histogram8_count` followed by its non-zero
    entries, but cache-friendly for images with millions of scattered colours:
    the rows are first bucketed by their first channel (a counting sort), then
    each bucket's 65,536 possible codes are counted in a table that stays in the
    CPU cache, instead of every pixel hitting a random place of a 64 MiB array.
    """
    N = X.shape[0]
    starts = np.zeros(257, dtype=np.int64)
    for i in range(N):
        starts[np.int64(X[i, 0]) + 1] += 1
    for b in range(256):
        starts[b + 1] += starts[b]
    low = np.empty(N, dtype=np.uint16)
    pos = starts[:256].copy()
    for i in range(N):
        b = np.int64(X[i, 0])
        low[pos[b]] = np.uint16(np.int64(X[i, 1]) * 256 + np.int64(X[i, 2]))
        pos[b] += 1
    table = np.zeros(65536, dtype=np.int64)
    m = 0
    for b in range(256):  # first pass: how many distinct codes
        for j in range(starts[b], starts[b + 1]):
            v = np.int64(low[j])
            m += 1 if table[v] == 0 else 0
            table[v] += 1
        for j in range(starts[b], starts[b + 1]):
            table[np.int64(low[j])] = 0
    codes = np.empty(m, dtype=np.int64)
    counts = np.empty(m)
    k = 0
    for b in range(256):  # second pass: list them in code order
        if starts[b + 1] == starts[b]:
            continue
        for j in range(starts[b], starts[b + 1]):
            table[np.int64(low[j])] += 1
        for v in range(65536):
            if table[v] != 0:
                codes[k] = b * 65536 + v
                counts[k] = table[v]
                table[v] = 0
                k += 1
    return codes, counts


@numba.njit(**NUMBA_FLAGS)
def merge_counts(codes_a, counts_a, codes_b, counts_b):
    """The union of two sparse histograms, each with sorted distinct codes: ``(codes, counts)``
    sorted, with the counts of a code in both added. One linear pass, no sort."""
    na, nb = codes_a.shape[0], codes_b.shape[0]
    codes = np.empty(na + nb, dtype=np.int64)
    counts = np.empty(na + nb)
    i = j = m = 0
    while i < na and j < nb:
        a, b = codes_a[i], codes_b[j]
        if a < b:
            codes[m], counts[m] = a, counts_a[i]
            i += 1
        elif b < a:
            codes[m], counts[m] = b, counts_b[j]
            j += 1
        else:
            codes[m], counts[m] = a, counts_a[i] + counts_b[j]
            i += 1
            j += 1
        m += 1
    while i < na:
        codes[m], counts[m] = codes_a[i], counts_a[i]
        i += 1
        m += 1
    while j < nb:
        codes[m], counts[m] = codes_b[j], counts_b[j]
        j += 1
        m += 1
    return codes[:m], counts[:m]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def nonzero_counts(counts, n_channels, ntasks):
    """``(colours (M, C) uint8, counts (M,))`` of the non-zero entries of a dense histogram.

    In code order, as ``np.flatnonzero``: each of ``ntasks`` contiguous parts of
    ``counts`` is scanned twice (count, then fill at its offset), in parallel.
    """
    n = counts.shape[0]
    found = np.zeros(ntasks + 1, dtype=np.int64)
    for t in numba.prange(ntasks):
        m = 0
        for i in range(t * n // ntasks, (t + 1) * n // ntasks):
            m += 1 if counts[i] != 0 else 0
        found[t + 1] = m
    for t in range(ntasks):
        found[t + 1] += found[t]
    colours = np.empty((found[ntasks], n_channels), dtype=np.uint8)
    values = np.empty(found[ntasks])
    for t in numba.prange(ntasks):
        j = found[t]
        for i in range(t * n // ntasks, (t + 1) * n // ntasks):
            v = counts[i]
            if v != 0:
                for c in range(n_channels):
                    colours[j, c] = (i >> (8 * (n_channels - 1 - c))) & 255
                values[j] = v
                j += 1
    return colours, values


def decode8(codes, n_channels):
    """Rows (M, C) uint8 of the packed codes of :func:`histogram8`."""
    out = np.empty((codes.shape[0], n_channels), dtype=np.uint8)
    for c in range(n_channels):
        out[:, c] = (codes >> (8 * (n_channels - 1 - c))) & 255
    return out
