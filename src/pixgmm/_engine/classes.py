"""Per-pixel decisions among classes, in one pass: label, confidence, margin, entropy, reject.

Private layer: arrays and scalars in, already validated by :mod:`pixgmm.classify`.

Two kernels write the same outputs:

- :func:`pixels_kernel` ``(D)`` returns the kernel for pixels ``X`` (N, D) and every class's
  Gaussian mixture, stacked (class ``c`` owns rows ``starts[c]:starts[c + 1]`` of ``means``,
  ``prec`` and ``coef``; ``full[c]`` says whether its factors have off-diagonal entries).
  Per block of ``BLOCK`` pixels the pixels are converted to float64 once (a contiguous
  (D, BLOCK) copy: no float64 copy of the image exists), then each class's log-terms,
  its log-density (log-sum-exp) and, with ``chi2_max``, its smallest squared Mahalanobis
  distance are computed from them, and :func:`_block_decide` turns the class scores into
  the outputs. For ``D <= UNROLL_MAX_FEATURES`` the kernel is compiled for that ``D``: the
  loops over the factor's entries are unrolled, so the loop over pixels is the vectorised
  one with the whole quadratic form in registers (about 3x the speed of the general loop
  of :func:`pixgmm._engine.direct._block_terms` at D = 10; LLVM stops unrolling near
  D = 16, where that general loop is the faster).
- :func:`decide_scores` takes class log-densities already computed (by any engine:
  colour tables, histograms) and, with ``chi2_max``, each class's distances.

Outputs, each ``(N,)`` or ``(0,)`` (then not written):

``codes`` (int32)
    ``CODE_FIRST_CLASS + c`` for class ``c``; ``CODE_UNDEFINED`` where no class is
    defined (a NaN pixel, zero density or a zero prior for every class);
    ``CODE_REJECTED`` where the winner's posterior is below ``min_prob`` or its class's
    smallest squared distance exceeds ``chi2_max``.
``conf``
    The winning posterior ``max_c P(c | x)`` (NaN where undefined).
``margin``
    The best posterior minus the second best (the best alone for one class).
``entropy``
    ``-sum_c P(c | x) log P(c | x)`` in nats.

Class scores are ``log p(x | c) + log prior``. The prior is ``log_priors[c]``, or, when
``priors`` (N, C) float64 has rows, the pixel's own ``priors[i, c] / sum_c priors[i, c]``
(a zero prior gives the class ``-inf``; a pixel whose priors are all zero has no class).
The first of equal scores wins, as ``numpy.argmax``.
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from .config import BLOCK, NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS
from .direct import _block_load, _block_lse, _block_terms
from .vmath import vexp, vlog

#: The largest channel count whose kernel is compiled with the quadratic form unrolled.
UNROLL_MAX_FEATURES = 14

CODE_REJECTED = 0
CODE_UNDEFINED = 1
CODE_FIRST_CLASS = 2


@numba.njit(**NUMBA_FLAGS)
def _block_priors(priors, start, nb, C, lp, psum):
    """lp[c, :nb] = log(priors[start + i, c] / sum_c priors[start + i, c]); -inf for every
    class of a pixel whose priors sum to 0."""
    for i in range(nb):
        psum[i] = 0.0
    for c in range(C):
        q = lp[c]
        for i in range(nb):
            v = priors[start + i, c]
            q[i] = v
            psum[i] += v
    for i in range(nb):
        psum[i] = vlog(psum[i])
    for c in range(C):
        q = lp[c]
        for i in range(nb):
            q[i] = vlog(q[i]) - psum[i] if psum[i] > -np.inf else -np.inf


@numba.njit(**NUMBA_FLAGS)
def _block_decide(sc, C, nb, d2, use_d2, chi2_max, min_prob, start, codes, conf, margin,
                  entropy, m, m2, total, h, dw, best):  # fmt: skip
    """The outputs of pixels ``start:start + nb`` from their class scores ``sc[c, :nb]``.

    ``d2[c, :nb]`` holds each class's smallest squared distance (read with ``use_d2``).
    The rest are scratch of ``BLOCK``. Every loop runs over the pixels, so the comparisons
    and ``vexp``/``vlog`` vectorise; the winner's own term is exp(0) = 1 exactly, and
    terms that ``vexp`` flushes to 0 are below 1e-307 of it.
    """
    for i in range(nb):
        m[i] = sc[0, i]
        m2[i] = -np.inf
        best[i] = 0
    if use_d2:
        for i in range(nb):
            dw[i] = d2[0, i]
    for c in range(1, C):
        q = sc[c]
        for i in range(nb):
            v = q[i]
            old = m[i]
            take = (v > old) | (old != old)  # a NaN score loses to any number
            cand = old if take else v  # the runner-up is the old best or this one
            m2[i] = cand if cand > m2[i] else m2[i]
            m[i] = v if take else old
            best[i] = c if take else best[i]
        if use_d2:
            dq = d2[c]
            for i in range(nb):
                dw[i] = dq[i] if best[i] == c else dw[i]
    want_entropy = entropy.shape[0] > 0
    # the posteriors' sum, unless only the labels are asked (without min_prob): then the
    # winner alone decides and no exponential is needed
    need_sum = conf.shape[0] > 0 or margin.shape[0] > 0 or want_entropy or min_prob > 0.0
    for i in range(nb):
        total[i] = 0.0 if need_sum else 1.0
        h[i] = 0.0
    for c in range(C if need_sum else 0):
        q = sc[c]
        if want_entropy:
            for i in range(nb):
                t = q[i] - m[i]
                e = vexp(t)
                total[i] += e
                h[i] += e * t if e > 0.0 else 0.0  # 0 * -inf would be NaN
        else:
            for i in range(nb):
                total[i] += vexp(q[i] - m[i])
    for i in range(nb):
        defined = m[i] > -np.inf  # False for NaN and -inf
        p = 1.0 / total[i]
        code = best[i] + CODE_FIRST_CLASS
        code = CODE_REJECTED if p < min_prob else code
        if use_d2:
            code = CODE_REJECTED if dw[i] > chi2_max else code
        codes[start + i] = code if defined else CODE_UNDEFINED
        total[i] = p if defined else np.nan
    if conf.shape[0] > 0:
        for i in range(nb):
            conf[start + i] = total[i]
    if margin.shape[0] > 0:
        for i in range(nb):
            margin[start + i] = (1.0 - vexp(m2[i] - m[i])) * total[i]
    if want_entropy:
        for i in range(nb):
            # H = log(sum_c e_c) - sum_c e_c t_c / sum_c e_c, with t_c = s_c - max and p = 1 / sum;
            # never below 0 (rounding when one class takes it all)
            v = -vlog(total[i]) - h[i] * total[i]
            entropy[start + i] = 0.0 if v <= 0.0 else v


@numba.njit(**NUMBA_FLAGS)
def _decide_scratch(C):
    return (
        np.empty((C, BLOCK)),  # sc
        np.empty((C, BLOCK)),  # d2
        np.empty((C, BLOCK)),  # lp
        np.empty(BLOCK),  # m
        np.empty(BLOCK),  # m2
        np.empty(BLOCK),  # total
        np.empty(BLOCK),  # h
        np.empty(BLOCK),  # dw
        np.empty(BLOCK, dtype=np.intp),  # best
    )


@numba.njit(**NUMBA_PARALLEL_FLAGS)
def decide_scores(S, D2, log_priors, priors, chi2_max, min_prob, codes, conf, margin, entropy,
                  ntasks):  # fmt: skip
    """The outputs from class log-densities ``S`` (N, C) (no priors in them).

    ``D2`` (N, C) holds each class's smallest squared distance, read when ``chi2_max`` is
    finite (else it may be (0, C)).
    """
    N, C = S.shape
    use_d2 = chi2_max < np.inf
    has_priors = priors.shape[0] > 0
    nblocks = (N + BLOCK - 1) // BLOCK
    for t in numba.prange(ntasks):
        sc, d2, lp, m, m2, total, h, dw, best = _decide_scratch(C)
        for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
            start = b * BLOCK
            nb = min(BLOCK, N - start)
            if has_priors:
                _block_priors(priors, start, nb, C, lp, m)
            for c in range(C):
                q = sc[c]
                if has_priors:
                    r = lp[c]
                    for i in range(nb):
                        q[i] = np.float64(S[start + i, c]) + r[i]
                else:
                    lpc = log_priors[c]
                    for i in range(nb):
                        q[i] = np.float64(S[start + i, c]) + lpc
                if use_d2:
                    dq = d2[c]
                    for i in range(nb):
                        dq[i] = D2[start + i, c]
            _block_decide(sc, C, nb, d2, use_d2, chi2_max, min_prob, start, codes, conf,
                          margin, entropy, m, m2, total, h, dw, best)  # fmt: skip


_KERNELS = {}
_KERNELS_LOCK = threading.Lock()


def pixels_kernel(n_features):
    """The fused kernel for pixels of ``n_features`` channels (see the module docstring).

    ``kernel(X, means, prec, coef, full, starts, log_priors, priors, chi2_max, min_prob,
    codes, conf, margin, entropy, ntasks)``. One kernel per unrolled channel count (one
    more for every count above ``UNROLL_MAX_FEATURES``), made once per process (under a
    lock: Dask threads ask together) and compiled code cached on disk.
    """
    D = n_features if n_features <= UNROLL_MAX_FEATURES else 0  # 0: the general loop
    with _KERNELS_LOCK:
        if D not in _KERNELS:
            _KERNELS[D] = _make_pixels_kernel(D)
        return _KERNELS[D]


def _make_pixels_kernel(D):
    @numba.njit(**NUMBA_PARALLEL_FLAGS)
    def classify_pixels(X, means, prec, coef, full, starts, log_priors, priors, chi2_max,
                        min_prob, codes, conf, margin, entropy, ntasks):  # fmt: skip
        N, nf = X.shape
        C = log_priors.shape[0]
        use_d2 = chi2_max < np.inf
        has_priors = priors.shape[0] > 0
        kmax = 1
        for c in range(C):
            kmax = max(kmax, starts[c + 1] - starts[c])
        nblocks = (N + BLOCK - 1) // BLOCK
        for t in numba.prange(ntasks):
            xt = np.empty((nf, BLOCK))
            lt = np.empty((kmax, BLOCK))
            y = np.empty(BLOCK)
            nanf = np.empty(BLOCK, dtype=np.bool_)
            s = np.empty(BLOCK)
            res = np.empty(BLOCK)
            zeros = np.zeros(kmax)
            sc, d2, lp, m, m2, total, h, dw, best = _decide_scratch(C)
            for b in range(t * nblocks // ntasks, (t + 1) * nblocks // ntasks):
                start = b * BLOCK
                nb = min(BLOCK, N - start)
                if D > 0:  # a pixel's channels are adjacent in X: read them together
                    for i in range(nb):
                        bad = False
                        for r in range(D):
                            v = np.float64(X[start + i, r])
                            xt[r, i] = v
                            bad = bad | (v != v)
                        nanf[i] = bad
                else:
                    _block_load(X, start, nb, xt, nanf)
                if has_priors:
                    _block_priors(priors, start, nb, C, lp, m)
                for c in range(C):
                    a = starts[c]
                    K = starts[c + 1] - a
                    dq = d2[c]
                    if D > 0:
                        # log-terms coef_k - q_k / 2 with q_k = |U_k^T (x - mu_k)|^2, the
                        # quadratic form unrolled (D is a constant) and the pixels vectorised;
                        # the smallest q_k is kept on the way (a select: no branch in the loop)
                        for i in range(nb):
                            dq[i] = np.inf
                        for k in range(K):
                            q = lt[k]
                            ck = coef[a + k]
                            if full[c]:
                                for i in range(nb):
                                    acc = 0.0
                                    for j in range(D):
                                        v = 0.0
                                        for r in range(j + 1):
                                            v += (xt[r, i] - means[a + k, r]) * prec[a + k, r, j]
                                        acc += v * v
                                    q[i] = ck - 0.5 * acc
                                    dq[i] = acc if acc < dq[i] else dq[i]
                            else:
                                for i in range(nb):
                                    acc = 0.0
                                    for r in range(D):
                                        v = (xt[r, i] - means[a + k, r]) * prec[a + k, r, r]
                                        acc += v * v
                                    q[i] = ck - 0.5 * acc
                                    dq[i] = acc if acc < dq[i] else dq[i]
                    elif use_d2:
                        # log-terms with a zero normaliser are -q_k / 2 exactly: the smallest
                        # distance first, then the normalisers added
                        _block_terms(xt, nb, means[a : a + K], prec[a : a + K],
                                     zeros[:K], full[c], lt, y)  # fmt: skip
                        for i in range(nb):
                            dq[i] = np.inf
                        for k in range(K):
                            q = lt[k]
                            ck = coef[a + k]
                            for i in range(nb):
                                v = -2.0 * q[i]
                                dq[i] = v if v < dq[i] else dq[i]
                                q[i] += ck
                    else:
                        _block_terms(xt, nb, means[a : a + K], prec[a : a + K], coef[a : a + K],
                                     full[c], lt, y)  # fmt: skip
                    _block_lse(lt, K, nb, nanf, m, s, res)
                    q = sc[c]
                    if has_priors:
                        r = lp[c]
                        for i in range(nb):
                            q[i] = res[i] + r[i]
                    else:
                        lpc = log_priors[c]
                        for i in range(nb):
                            q[i] = res[i] + lpc
                _block_decide(sc, C, nb, d2, use_d2, chi2_max, min_prob, start, codes, conf,
                              margin, entropy, m, m2, total, h, dw, best)  # fmt: skip

    return classify_pixels


def check_prior_block(priors):
    """True when every value of ``priors`` is finite and >= 0 (two reductions, no temporary)."""
    return priors.size == 0 or (priors.min() >= 0.0 and priors.max() < math.inf)
