"""The EM driver: initialisation, the EM loop, the best of several starts.

Private layer: :mod:`pixgmm.fitting` has validated every argument and turned the
pixels into points (:class:`.histfit.Points` or :class:`.histfit.DaskPoints`);
this module runs the EM on them and returns plain arrays and numbers (the public
module builds the :class:`pixgmm.fitting.FitResult` and issues the warnings).

- Initialisation (:func:`initial_parameters`): ``"kmeans"`` (scikit-learn's
  ``KMeans`` with sample weights, on at most :data:`INIT_SAMPLES` points drawn
  by weight), ``"k-means++"`` (weighted seeding, each point to its nearest
  seed), ``"random"`` (random responsibilities); then one M-step from the
  responsibilities, as scikit-learn's ``_initialize``.
- The loop (:func:`run_em`): one :meth:`stats` pass per iteration (E-step and
  sufficient statistics fused, :mod:`.em`), components that lost their weight
  dropped, :func:`.mstep.m_step`, scikit-learn's stopping rule on the lower bound.
- :func:`fit_best`: the best of ``n_init`` starts by final lower bound.
"""

from __future__ import annotations

import numpy as np

from . import histfit as _histfit
from . import mstep as _mstep

_INSTALL = 'pip install "pixgmm[fit]"'
#: Initialisation methods run on at most this many points (drawn by weight).
INIT_SAMPLES = 100_000
#: A component whose share of the total weight falls below this is dropped.
EMPTY_SHARE = 1e-10
#: ``init="lloyd"`` runs on every point up to this many (distinct colours, rows), else
#: on this many drawn by weight.
LLOYD_POINTS = 1 << 21
#: Lloyd iterations at most, and the stopping rule as scikit-learn's ``KMeans``: the
#: centres moved (sum of squares) by at most ``LLOYD_TOL`` times the mean variance.
LLOYD_MAX_ITER = 20
LLOYD_TOL = 1e-4
#: Beyond LLOYD_COARSE_MIN points, the seeding and the first Lloyd iterations run on
#: LLOYD_COARSE points drawn by weight, then LLOYD_FINE_ITER iterations on every point
#: (on the 12-MP photo of the benchmark, 777k colours: a third of the time, and final
#: log-likelihoods within the spread of the seeds of the exact seeding).
LLOYD_COARSE = 100_000
LLOYD_COARSE_MIN = 4 * LLOYD_COARSE
LLOYD_FINE_ITER = 2
#: The k-means kernels run in one thread below this many points: on a loaded machine
#: a parallel launch can wait a scheduler time slice for its second thread.
PARALLEL_MIN = 1 << 18


def _d2(X):
    from . import kmeans as _kmeans

    return _kmeans.nearest_d2 if X.shape[0] >= PARALLEL_MIN else _kmeans.nearest_d2_serial


def ill_defined(reg_covar):
    """The error for a covariance that became singular, with what to do."""
    return ValueError(
        "a component's covariance became singular (it collapsed onto too few distinct "
        f"values) with reg_covar={reg_covar:g}; pass a larger reg_covar (e.g. 1.0 for 8-bit "
        "pixels), fewer components, or float pixels with more distinct values"
    )


# -- initialisation ---------------------------------------------------------------------


def init_sample(points, seed):
    """At most INIT_SAMPLES points (float64) and weights, drawn by weight."""
    if isinstance(points, _histfit.DaskPoints):
        X = points.sample(INIT_SAMPLES, seed)
        return X, np.ones(X.shape[0])
    X, w = points.X, points.w
    n = X.shape[0]
    if n <= INIT_SAMPLES:
        return np.asarray(X, dtype=np.float64), (np.ones(n) if w is None else w)
    rng = np.random.default_rng(seed)
    if w is None:
        idx = np.sort(rng.choice(n, size=INIT_SAMPLES, replace=False))
        return np.asarray(X[idx], dtype=np.float64), np.ones(INIT_SAMPLES)
    idx, counts = draw_by_weight(rng, w, INIT_SAMPLES)
    return np.asarray(X[idx], dtype=np.float64), counts.astype(np.float64)


def kmeans_plus_plus(X, w, k, rng):
    """Weighted k-means++ seeding: indices of k rows of X."""
    first = rng.choice(X.shape[0], p=w / w.sum())
    seeds = [first]
    d2 = ((X - X[first]) ** 2).sum(axis=1)
    for _ in range(1, k):
        p = w * d2
        total = p.sum()
        if not total > 0:
            raise ValueError(
                f"the pixels have only {len(seeds)} distinct value(s), fewer than "
                f"n_components={k}; pass a smaller n_components"
            )
        nxt = rng.choice(X.shape[0], p=p / total)
        seeds.append(nxt)
        d2 = np.minimum(d2, ((X - X[nxt]) ** 2).sum(axis=1))
    return np.array(seeds)


def require_sklearn(what):
    """scikit-learn's ``KMeans`` (ImportError naming the extra and the alternative without it)."""
    try:
        from sklearn.cluster import KMeans
    except ImportError:
        raise ImportError(
            f"{what} needs scikit-learn, which is not installed; install it with {_INSTALL}, "
            "or pass init='k-means++', which needs no scikit-learn"
        ) from None
    return KMeans


def initial_resp(X, w, k, method, seed, random_state_obj):
    """Initial responsibilities (n, k) of the sample X (n, D) with weights w."""
    if method == "kmeans":
        KMeans = require_sklearn("init='kmeans'")
        labels = (
            KMeans(n_clusters=k, n_init=1, random_state=random_state_obj)
            .fit(X, sample_weight=w)
            .labels_
        )
        resp = np.zeros((X.shape[0], k))
        resp[np.arange(X.shape[0]), labels] = 1.0
        return resp
    rng = np.random.default_rng(seed)
    if method == "random":
        resp = rng.uniform(size=(X.shape[0], k))
        return resp / resp.sum(axis=1, keepdims=True)
    seeds = kmeans_plus_plus(X, w, k, rng)
    d2 = ((X[:, None, :] - X[seeds][None, :, :]) ** 2).sum(axis=2)
    resp = np.zeros((X.shape[0], k))
    resp[np.arange(X.shape[0]), d2.argmin(axis=1)] = 1.0
    return resp


def params_from_resp(X, w, resp, covariance_type, reg_covar):
    """Initial (weights, means, covariances) from responsibilities, as scikit-learn's M-step."""
    shift = np.average(X, axis=0, weights=w)
    d = X - shift
    rw = resp * w[:, None]
    nk = rw.sum(axis=0)
    sx = rw.T @ d
    sxx = np.einsum("nk,nc,ne->kce", rw, d, d)
    k = resp.shape[1]
    return _mstep.m_step(
        nk, sx, sxx, np.broadcast_to(shift, (k, X.shape[1])), covariance_type, reg_covar
    )


def draw_by_weight(rng, w, size):
    """``(indices, counts)``: ``size`` draws with replacement, each index with probability
    ``w / w.sum()``, as the distinct indices drawn and how often each was.

    The same distribution as ``np.unique(rng.choice(n, size, p=w / w.sum()),
    return_counts=True)``, from one multinomial draw: no sort of the draws (ten
    times faster for millions of points).
    """
    counts = rng.multinomial(size, np.asarray(w, dtype=np.float64) / float(np.sum(w)))
    idx = np.flatnonzero(counts)
    return idx, counts[idx]


def _lloyd_points(points, seed):
    """``(X, w)`` for ``init="lloyd"``: every point, or LLOYD_POINTS drawn by weight."""
    if isinstance(points, _histfit.DaskPoints):
        X = points.sample(LLOYD_POINTS, seed)
        return X, np.ones(X.shape[0])
    X, w = points.X, points.w
    n = X.shape[0]
    if n <= LLOYD_POINTS:
        return X, (np.ones(n) if w is None else np.ascontiguousarray(w, dtype=np.float64))
    rng = np.random.default_rng(seed)
    idx, counts = draw_by_weight(rng, np.ones(n) if w is None else w, LLOYD_POINTS)
    return np.ascontiguousarray(X[idx]), counts.astype(np.float64)


def kmeans_plus_plus_exact(X, w, k, rng, ntasks):
    """Greedy weighted k-means++ seeding on every point: centres (k, D) float64.

    As scikit-learn's ``kmeans_plusplus``: each new centre is the best (lowest
    weighted potential) of ``2 + log k`` candidates drawn with probability
    ``w * d2``.
    """
    from . import kmeans as _kmeans

    n, d = X.shape
    trials = 2 + int(np.log(k))
    no_cands = np.empty((0, d))
    pot = np.empty((ntasks, trials))
    centres = np.empty((k, d))
    d2 = np.ones(n)
    first = _kmeans.pick(w, d2, np.array([rng.random() * w.sum()]))[0]
    centres[0] = X[first]
    d2[:] = np.inf
    _d2(X)(X, w, centres[0], True, no_cands, d2, pot, ntasks)
    total = pot[:, 0].sum()
    for j in range(1, k):
        if not total > 0:
            raise ValueError(
                f"the pixels have only {j} distinct value(s), fewer than "
                f"n_components={k}; pass a smaller n_components"
            )
        u = np.sort(rng.random(trials)) * total
        cands = np.asarray(X[_kmeans.pick(w, d2, u)], dtype=np.float64)
        _d2(X)(X, w, centres[0], False, cands, d2, pot, ntasks)
        best = int(np.argmin(pot.sum(axis=0)))
        centres[j] = cands[best]
        if j + 1 < k:  # d2 with the new centre, for the next draw
            _d2(X)(X, w, centres[j], True, no_cands, d2, pot, ntasks)
            total = pot[:, 0].sum()
    return centres


def _lloyd_stats(X, w, centres, second, ntasks):
    from . import kmeans as _kmeans

    k, d = centres.shape
    nk = np.empty((ntasks, k))
    sx = np.empty((ntasks, k, d))
    sxx = np.empty((ntasks, k, d, d))
    inertia = np.empty(ntasks)
    stats = _kmeans.lloyd_stats if X.shape[0] >= PARALLEL_MIN else _kmeans.lloyd_stats_serial
    stats(X, w, centres, second, nk, sx, sxx, inertia, ntasks)
    return nk.sum(0), sx.sum(0), sxx.sum(0), float(inertia.sum())


def _relocate(X, w, centres, empty, ntasks):
    """Move the centres ``empty`` to the points farthest from every centre (as scikit-learn)."""
    d = centres.shape[1]
    d2 = np.full(X.shape[0], np.inf)
    pot = np.empty((ntasks, 1))
    for c in centres[~empty]:
        _d2(X)(X, w, c, True, np.empty((0, d)), d2, pot, ntasks)
    far = np.argsort(-d2, kind="stable")[: int(empty.sum())]
    centres = centres.copy()
    centres[empty] = X[far]
    return centres


def lloyd(X, w, centres, max_iter, tol, ntasks):
    """Weighted Lloyd iterations from ``centres``: at most ``max_iter``, until they move
    (sum of squares) by at most ``tol``; an emptied cluster moves to the farthest point."""
    for _ in range(max_iter):
        nk, sx, _, _ = _lloyd_stats(X, w, centres, False, ntasks)
        empty = nk <= 0
        step = np.where(empty[:, None], 0.0, sx / np.where(empty, 1.0, nk)[:, None])
        centres = centres + step
        if empty.any():
            centres = _relocate(X, w, centres, empty, ntasks)
            continue
        if float((step * step).sum()) <= tol:
            break
    return centres


def lloyd_parameters(points, k, covariance_type, reg_covar, seed):
    """``init="lloyd"``: weighted k-means on the (distinct) points, then one M-step.

    Greedy k-means++ seeding and Lloyd iterations (scikit-learn's stopping rule)
    on every point with its exact weight (its pixel count) -- beyond
    LLOYD_COARSE_MIN points, seeding and iterations on LLOYD_COARSE points drawn
    by weight first, then LLOYD_FINE_ITER iterations on every point -- then the
    mixture of the final clusters from every point: each point's responsibility
    is 1 for its nearest centre, as scikit-learn's ``init_params="kmeans"``.
    Returns (weights, means, covariances).
    """
    rng = np.random.default_rng(seed)
    X, w = _lloyd_points(points, seed)
    Xf = np.asarray(X, dtype=np.float64)
    mean = (w @ Xf) / w.sum()
    if k == 1:  # one cluster: k-means ends at the weighted mean, whatever its seed
        nk, sx, sxx = _histfit.one_component_sums(X, w, mean)[:3]
        return _mstep.m_step(nk, sx, sxx, mean[None, :], covariance_type, reg_covar)
    from . import em as _em

    ntasks = _em.n_tasks(X.shape[0])
    var = (w @ (Xf - mean) ** 2) / w.sum()
    tol = LLOYD_TOL * float(var.mean())
    if X.shape[0] > LLOYD_COARSE_MIN:  # coarse: seeding and Lloyd on a sample drawn by weight
        idx, cnt = draw_by_weight(rng, w, LLOYD_COARSE)
        Xs, ws = np.ascontiguousarray(X[idx]), cnt.astype(np.float64)
        nts = _em.n_tasks(Xs.shape[0])
        centres = kmeans_plus_plus_exact(Xs, ws, k, rng, nts)
        centres = lloyd(Xs, ws, centres, LLOYD_MAX_ITER, tol, nts)
        centres = lloyd(X, w, centres, LLOYD_FINE_ITER, tol, ntasks)  # fine: every point
    else:
        centres = kmeans_plus_plus_exact(X, w, k, rng, ntasks)
        centres = lloyd(X, w, centres, LLOYD_MAX_ITER, tol, ntasks)
    nk, sx, sxx, _ = _lloyd_stats(X, w, centres, True, ntasks)
    return _mstep.m_step(nk, sx, sxx, centres, covariance_type, reg_covar)


def initial_parameters(points, k, covariance_type, method, reg_covar, seed, random_state_obj):
    """``(weights, means, precision factors)`` of one start by ``method``."""
    if method == "lloyd":
        weights, means, cov = lloyd_parameters(points, k, covariance_type, reg_covar, seed)
    else:
        Xs, ws = init_sample(points, seed)
        resp = initial_resp(Xs, ws, k, method, seed, random_state_obj)
        weights, means, cov = params_from_resp(Xs, ws, resp, covariance_type, reg_covar)
    try:
        prec = _mstep.precision_cholesky(cov, covariance_type, k, points.n_features)
    except _mstep.IllDefinedCovariance:
        raise ill_defined(reg_covar) from None
    return weights, means, prec


# -- the EM loop ------------------------------------------------------------------------


def is_diagonal(prec):
    d = prec.shape[1]
    off = prec.copy()
    off[:, np.arange(d), np.arange(d)] = 0.0
    return not off.any()


def run_em(
    points, weights, means, prec, covariance_type, reg_covar, max_iter, tol, callback, on_empty
):
    """Run EM from (weights, means, precision factors); returns a dict of the outcome.

    ``on_empty(n_iter, n_empty, n_left)`` is called when components lose their
    weight (they are dropped); ``callback(n_iter, lower_bound)`` after every iteration.
    """
    second = _mstep.SECOND_DIAG if covariance_type in ("diag", "spherical") else _mstep.SECOND_FULL
    lower_bound = -np.inf
    history = []
    converged = False
    n_dropped = 0
    cov = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        full = covariance_type in ("full", "tied") or not is_diagonal(prec)
        coef = _mstep.log_coefficients(weights, prec)
        nk, sx, sxx, ll, wsum, _ = points.stats(means, prec, coef, full, second)
        prev, lower_bound = lower_bound, ll / wsum
        history.append(lower_bound)
        empty = nk < EMPTY_SHARE * wsum
        if empty.any():
            if empty.all():
                raise ValueError("every component lost its weight; check the pixels and init")
            n_dropped += int(empty.sum())
            on_empty(n_iter, int(empty.sum()), int((~empty).sum()))
            keep = ~empty
            nk, sx, sxx, means = nk[keep], sx[keep], sxx[keep], means[keep]
        weights, means, cov = _mstep.m_step(nk, sx, sxx, means, covariance_type, reg_covar)
        try:
            prec = _mstep.precision_cholesky(cov, covariance_type, *means.shape)
        except _mstep.IllDefinedCovariance:
            raise ill_defined(reg_covar) from None
        if callback is not None:
            callback(n_iter, lower_bound)
        if abs(lower_bound - prev) < tol:
            converged = True
            break
    coef = _mstep.log_coefficients(weights, prec)
    full = covariance_type in ("full", "tied") or not is_diagonal(prec)
    _, _, _, ll, wsum, _ = points.stats(means, prec, coef, full, 0)
    return {
        "weights": weights,
        "means": means,
        "cov": cov,
        "converged": converged,
        "n_iter": n_iter,
        "lower_bound": lower_bound,
        "lower_bounds": tuple(history),
        "ll_sum": ll,
        "wsum": wsum,
        "n_dropped": n_dropped,
    }


def fit_best(
    points,
    k,
    covariance_type,
    init,
    start,
    max_iter,
    tol,
    n_init,
    reg_covar,
    seed,
    callback,
    on_empty,
):
    """The best of ``n_init`` EM runs on ``points`` (the dict of :func:`run_em`, with ``"init"``).

    ``start`` is ``(weights, means, precision factors)`` to start from (then one
    run, ``init`` names it), or None to start ``n_init`` times by method ``init``.
    """
    rs = np.random.RandomState(seed)  # one stream across starts, as scikit-learn's n_init
    seeds = np.random.SeedSequence(seed).generate_state(n_init)
    best = None
    for i in range(1 if start is not None else n_init):
        if start is not None:
            weights, means, prec = start
        else:
            weights, means, prec = initial_parameters(
                points, k, covariance_type, init, reg_covar, int(seeds[i]), rs
            )
        run = run_em(
            points,
            weights,
            means,
            prec,
            covariance_type,
            reg_covar,
            max_iter,
            tol,
            callback,
            on_empty,
        )
        run["init"] = init
        if best is None or run["lower_bound"] > best["lower_bound"]:
            best = run
    return best
