"""The direct engine: numba kernels for any dtype, any D, any covariance type.

Private layer: arguments are arrays and scalars only, already validated by the
public layer. ``X`` is (N, D) in any numeric dtype and layout; model parameters
come as ``means`` (K, D) float64, ``prec`` (K, D, D) float64 upper-triangular
precision Cholesky factors, ``coef`` (K,) float64 log normalisers and ``full``
(False when every ``prec[k]`` is diagonal, which skips the off-diagonal work).

Each kernel splits the pixels into blocks of ``BLOCK``; ``prange`` runs over
``ntasks`` contiguous groups of blocks (see :func:`n_tasks`), each with its own scratch, and
writes disjoint parts of the output. Per block, the K log-terms
``l_k = coef_k - |U_k^T (x - mu_k)|^2 / 2`` are computed with the pixels in the
inner (vectorised) loop, then reduced by a two-pass log-sum-exp. No (N, K, D)
or (N, K) temporary exists. For 3 and 4 channels each component's log-terms
take one pass over the block with ``U_k`` and ``mu_k`` in registers; other
channel counts pass over the block once per entry of ``U_k``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS
from .params import combine_logs, has_table_model, is_table_model, params
from .vmath import XMIN, vexp, vlog

NAME = "direct"

MODE_LOG = 0
MODE_PDF = 1


def unsupported(quantity, X, models):
    if quantity in ("resp", "label", "mahal") and has_table_model(models):
        return "needs a Mixture"  # the public functions coerce models first: not reached
    return None


def preferred(quantity, X, models, normalized, dtype):
    return True


def evaluate(quantity, X, models, normalized, out):
    ntasks = n_tasks(X.shape[0])
    if has_table_model(models):
        logs = []
        for m in models:
            if is_table_model(m):
                logs.append(m._log_density_pixels(X))
            else:
                values = np.empty(X.shape[0])
                log_sum_exp(X, *params(m, normalized), MODE_LOG, values, ntasks)
                logs.append(values)
        combine_logs(quantity, logs, out)
    elif quantity == "ratio":
        log_ratio(X, *params(models[0], normalized), *params(models[1], normalized), out, ntasks)
    elif quantity == "resp":
        responsibilities(X, *params(models[0], normalized), out, ntasks)
    elif quantity == "label":
        predict(X, *params(models[0], normalized), out, ntasks)
    elif quantity == "mahal":
        means, prec, _, full = params(models[0], normalized)
        min_mahalanobis(X, means, prec, np.zeros(means.shape[0]), full, out, ntasks)
    else:
        mode = MODE_LOG if quantity == "log" else MODE_PDF
        log_sum_exp(X, *params(models[0], normalized), mode, out, ntasks)


def n_tasks(n):
    """Number of pixel groups to hand to prange: a few per thread, for balance."""
    nblocks = (n + BLOCK - 1) // BLOCK
    return max(1, min(nblocks, 8 * numba.get_num_threads()))


@numba.njit(**NUMBA_FLAGS)
def _block_log_terms(X, start, nb, means, prec, coef, full, xt, lt, y, nanf):
    """Fill lt[k, :nb] with the log-terms of pixels X[start:start+nb]."""
    _block_load(X, start, nb, xt, nanf)
    _block_terms(xt, nb, means, prec, coef, full, lt, y)


@numba.njit(**NUMBA_FLAGS)
def _block_load(X, start, nb, xt, nanf):
    """xt[c, :nb] = X[start:start+nb, c] as float64; nanf[i] marks a pixel with a NaN."""
    D = X.shape[1]
    for i in range(nb):
        nanf[i] = False
    for c in range(D):
        for i in range(nb):
            v = np.float64(X[start + i, c])
            xt[c, i] = v
            nanf[i] = nanf[i] or (v != v)


@numba.njit(**NUMBA_FLAGS)
def _block_terms(xt, nb, means, prec, coef, full, lt, y):
    """Fill lt[k, :nb] with the log-terms of the pixels loaded in xt (see _block_load)."""
    K, D = means.shape
    if D == 3:
        _block_log_terms3(xt, nb, means, prec, coef, full, lt)
        return
    if D == 4:
        _block_log_terms4(xt, nb, means, prec, coef, full, lt)
        return
    for k in range(K):
        q = lt[k]
        for i in range(nb):
            q[i] = 0.0
        if full:
            for j in range(D):
                for i in range(nb):
                    y[i] = 0.0
                for c in range(j + 1):
                    u = prec[k, c, j]
                    mc = means[k, c]
                    for i in range(nb):
                        y[i] += (xt[c, i] - mc) * u
                for i in range(nb):
                    q[i] += y[i] * y[i]
        else:
            for c in range(D):
                u = prec[k, c, c]
                mc = means[k, c]
                for i in range(nb):
                    t = (xt[c, i] - mc) * u
                    q[i] += t * t
        ck = coef[k]
        for i in range(nb):
            q[i] = ck - 0.5 * q[i]


@numba.njit(**NUMBA_FLAGS)
def _block_log_terms3(xt, nb, means, prec, coef, full, lt):
    """The log-terms of a block of 3-channel pixels, one pass over the block per component.

    The same sums as the general loop of :func:`_block_log_terms`, in the same order, with
    the factor's entries in registers: the general loop passes over the block once per
    entry of ``U_k`` and keeps ``y`` and ``q`` in memory in between.
    """
    K = means.shape[0]
    x0 = xt[0]
    x1 = xt[1]
    x2 = xt[2]
    for k in range(K):
        q = lt[k]
        m0 = means[k, 0]
        m1 = means[k, 1]
        m2 = means[k, 2]
        u00 = prec[k, 0, 0]
        u11 = prec[k, 1, 1]
        u22 = prec[k, 2, 2]
        ck = coef[k]
        if full:
            u01 = prec[k, 0, 1]
            u02 = prec[k, 0, 2]
            u12 = prec[k, 1, 2]
            for i in range(nb):
                d0 = x0[i] - m0
                d1 = x1[i] - m1
                d2 = x2[i] - m2
                y0 = d0 * u00
                y1 = d0 * u01 + d1 * u11
                y2 = d0 * u02 + d1 * u12 + d2 * u22
                q[i] = ck - 0.5 * (y0 * y0 + y1 * y1 + y2 * y2)
        else:
            for i in range(nb):
                y0 = (x0[i] - m0) * u00
                y1 = (x1[i] - m1) * u11
                y2 = (x2[i] - m2) * u22
                q[i] = ck - 0.5 * (y0 * y0 + y1 * y1 + y2 * y2)


@numba.njit(**NUMBA_FLAGS)
def _block_log_terms4(xt, nb, means, prec, coef, full, lt):
    """:func:`_block_log_terms3` for 4-channel pixels (RGBA, multispectral)."""
    K = means.shape[0]
    x0 = xt[0]
    x1 = xt[1]
    x2 = xt[2]
    x3 = xt[3]
    for k in range(K):
        q = lt[k]
        m0 = means[k, 0]
        m1 = means[k, 1]
        m2 = means[k, 2]
        m3 = means[k, 3]
        u00 = prec[k, 0, 0]
        u11 = prec[k, 1, 1]
        u22 = prec[k, 2, 2]
        u33 = prec[k, 3, 3]
        ck = coef[k]
        if full:
            u01 = prec[k, 0, 1]
            u02 = prec[k, 0, 2]
            u12 = prec[k, 1, 2]
            u03 = prec[k, 0, 3]
            u13 = prec[k, 1, 3]
            u23 = prec[k, 2, 3]
            for i in range(nb):
                d0 = x0[i] - m0
                d1 = x1[i] - m1
                d2 = x2[i] - m2
                d3 = x3[i] - m3
                y0 = d0 * u00
                y1 = d0 * u01 + d1 * u11
                y2 = d0 * u02 + d1 * u12 + d2 * u22
                y3 = d0 * u03 + d1 * u13 + d2 * u23 + d3 * u33
                q[i] = ck - 0.5 * (y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3)
        else:
            for i in range(nb):
                y0 = (x0[i] - m0) * u00
                y1 = (x1[i] - m1) * u11
                y2 = (x2[i] - m2) * u22
                y3 = (x3[i] - m3) * u33
                q[i] = ck - 0.5 * (y0 * y0 + y1 * y1 + y2 * y2 + y3 * y3)


@numba.njit(**NUMBA_FLAGS)
def _block_lse(lt, K, nb, nanf, m, s, res):
    """res[:nb] = log(sum_k exp(lt[k, :nb])), exactly, with NaN and -inf kept."""
    if K == 1:  # the log-term itself: what the general loop gives (m + log(1)), without it
        q = lt[0]
        for i in range(nb):
            r = q[i] if q[i] > -np.inf else -np.inf
            res[i] = np.nan if nanf[i] else r
        return
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
            s[i] += vexp(q[i] - m[i])
    for i in range(nb):
        r = m[i] + vlog(s[i])
        r = -np.inf if m[i] == -np.inf else r
        res[i] = np.nan if nanf[i] else r


@numba.njit(**NUMBA_FLAGS)
def block_exp(res, nb, tmp):
    """res[:nb] = exp(res[:nb]), vectorised, with subnormal results kept exact."""
    for i in range(nb):
        tmp[i] = res[i]
        res[i] = vexp(tmp[i])
    for i in range(nb):
        if tmp[i] < XMIN:  # vexp flushes results below the smallest normal to 0
            res[i] = math.exp(tmp[i])


@numba.njit(**NUMBA_FLAGS)
def _scratch(K, D):
    return (
        np.empty((D, BLOCK)),
        np.empty((K, BLOCK)),
        np.empty(BLOCK),
        np.empty(BLOCK, dtype=np.bool_),
        np.empty(BLOCK),
        np.empty(BLOCK),
        np.empty(BLOCK),
    )


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def log_sum_exp(X, means, prec, coef, full, mode, out, ntasks):
    """out[i] = log p(X[i]) (mode 0) or p(X[i]) (mode 1)."""
    N = X.shape[0]
    K, D = means.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt, lt, y, nanf, m, s, res = _scratch(K, D)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _block_log_terms(X, start, nb, means, prec, coef, full, xt, lt, y, nanf)
            _block_lse(lt, K, nb, nanf, m, s, res)
            if mode == MODE_PDF:
                block_exp(res, nb, m)
            for i in range(nb):
                out[start + i] = res[i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def log_ratio(X, means_a, prec_a, coef_a, full_a, means_b, prec_b, coef_b, full_b, out, ntasks):
    """out[i] = log p_a(X[i]) - log p_b(X[i])."""
    N = X.shape[0]
    Ka, D = means_a.shape
    Kb = means_b.shape[0]
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt, lta, y, nanf, m, s, ra = _scratch(Ka, D)
        ltb = np.empty((Kb, BLOCK))
        rb = np.empty(BLOCK)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _block_log_terms(X, start, nb, means_a, prec_a, coef_a, full_a, xt, lta, y, nanf)
            _block_lse(lta, Ka, nb, nanf, m, s, ra)
            _block_log_terms(X, start, nb, means_b, prec_b, coef_b, full_b, xt, ltb, y, nanf)
            _block_lse(ltb, Kb, nb, nanf, m, s, rb)
            for i in range(nb):
                out[start + i] = ra[i] - rb[i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def responsibilities(X, means, prec, coef, full, out, ntasks):
    """out[i, k] = w_k N(X[i]; k) / p(X[i]); NaN where p is NaN or 0."""
    N = X.shape[0]
    K, D = means.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt, lt, y, nanf, m, s, res = _scratch(K, D)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _block_log_terms(X, start, nb, means, prec, coef, full, xt, lt, y, nanf)
            _block_lse(lt, K, nb, nanf, m, s, res)
            for k in range(K):  # exponentials with the pixels innermost (vectorised)
                q = lt[k]
                for i in range(nb):
                    q[i] = vexp(q[i] - res[i]) if res[i] > -np.inf else np.nan
            for i in range(nb):
                for k in range(K):
                    out[start + i, k] = lt[k, i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def predict(X, means, prec, coef, full, out, ntasks):
    """out[i] = argmax_k l_k(X[i]) (first on ties); -1 for a NaN pixel and where every
    log-term is -inf (an infinite pixel)."""
    N = X.shape[0]
    K, D = means.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt, lt, y, nanf, m, s, res = _scratch(K, D)
        best = np.empty(BLOCK, dtype=np.int64)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _block_log_terms(X, start, nb, means, prec, coef, full, xt, lt, y, nanf)
            # running argmax with the pixels innermost (vectorised); strict > keeps the
            # first of equal values, and a NaN log-term is never taken
            q = lt[0]
            for i in range(nb):
                m[i] = q[i]
                best[i] = 0
            for k in range(1, K):
                q = lt[k]
                for i in range(nb):
                    take = q[i] > m[i]
                    m[i] = q[i] if take else m[i]
                    best[i] = k if take else best[i]
            for i in range(nb):  # -1 where no component is defined: NaN or infinite pixels
                out[start + i] = -1 if nanf[i] or not (m[i] > -np.inf) else best[i]


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def min_mahalanobis(X, means, prec, zeros, full, out, ntasks):
    """out[i] = min_k |U_k^T (X[i] - mu_k)|^2, the squared Mahalanobis distance to the
    nearest component; NaN for a NaN pixel. ``zeros`` is a (K,) array of 0.0, so the
    log-terms are -d_k^2 / 2."""
    N = X.shape[0]
    K, D = means.shape
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        xt, lt, y, nanf, m, s, res = _scratch(K, D)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            _block_log_terms(X, start, nb, means, prec, zeros, full, xt, lt, y, nanf)
            q = lt[0]
            for i in range(nb):
                m[i] = q[i]
            for k in range(1, K):
                q = lt[k]
                for i in range(nb):
                    m[i] = q[i] if q[i] > m[i] else m[i]
            for i in range(nb):
                out[start + i] = np.nan if nanf[i] else -2.0 * m[i]
