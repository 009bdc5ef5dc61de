"""Slow, obviously-correct references that every pixgmm engine is compared against.

Two independent references:

* :func:`log_terms_loop` / :func:`log_density_loop` — a per-pixel, per-component
  loop in float64 from the full covariance matrices: Cholesky factor, triangular
  solve, log-determinant, then log-sum-exp. Nothing is vectorised, nothing is clever.
* :func:`log_terms_numpy` — the same formula vectorised over pixels one component
  at a time (fast enough for the property tests).
* :func:`log_terms_scipy` — ``scipy.stats.multivariate_normal.logpdf`` per component,
  combined with ``scipy.special.logsumexp``.

Every function takes pixels as an (N, D) array (any real dtype; values are cast to
float64 exactly) and a :class:`pixgmm.Mixture`, and uses only
``Mixture.weights``, ``Mixture.means`` and ``Mixture.full_covariances()``.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
import scipy.special
import scipy.stats

LOG_2PI = math.log(2.0 * math.pi)


def _params(model):
    weights = np.asarray(model.weights, dtype=np.float64)
    means = np.asarray(model.means, dtype=np.float64)
    covs = model.full_covariances()
    return weights, means, covs


def _log_weights(weights):
    with np.errstate(divide="ignore"):
        return np.log(weights)


def _pixels(X):
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError("reference functions take (N, D) pixels")
    return X.astype(np.float64)


# -- the per-pixel loop --------------------------------------------------------------------


def log_gaussian_one(x, mean, cov, normalized=True):
    """log N(x; mean, cov) for one pixel, with the determinant; a textbook formula."""
    d = mean.shape[0]
    low = np.linalg.cholesky(cov)
    z = scipy.linalg.solve_triangular(low, x - mean, lower=True)
    maha = float(z @ z)
    log_det = 2.0 * float(np.sum(np.log(np.diag(low))))
    out = -0.5 * maha - 0.5 * log_det
    if normalized:
        out -= 0.5 * d * LOG_2PI
    return out


def log_terms_loop(X, model, normalized=True):
    """(N, K) array of log w_k + log N(x_i; mu_k, Sigma_k), one pixel and component at a time."""
    X = _pixels(X)
    weights, means, covs = _params(model)
    log_w = _log_weights(weights)
    n, k = X.shape[0], weights.shape[0]
    out = np.empty((n, k))
    for i in range(n):
        x = X[i]
        for j in range(k):
            if np.any(np.isnan(x)):
                out[i, j] = np.nan
            else:
                with np.errstate(over="ignore", invalid="ignore"):
                    out[i, j] = log_w[j] + log_gaussian_one(x, means[j], covs[j], normalized)
    return out


def log_density_loop(X, model, normalized=True):
    """log p(x) per pixel: the loop of :func:`log_terms_loop`, then a per-pixel log-sum-exp."""
    terms = log_terms_loop(X, model, normalized)
    out = np.empty(terms.shape[0])
    for i, row in enumerate(terms):
        if np.any(np.isnan(row)):
            out[i] = np.nan
            continue
        m = row.max()
        if m == -np.inf:
            out[i] = -np.inf
            continue
        out[i] = m + math.log(sum(math.exp(v - m) for v in row))
    return out


# -- vectorised over pixels, one component at a time ---------------------------------------


def log_terms_numpy(X, model, normalized=True):
    """(N, K) log-terms, the loop's formula vectorised over pixels (NaN pixels give NaN)."""
    X = _pixels(X)
    weights, means, covs = _params(model)
    log_w = _log_weights(weights)
    n, d = X.shape
    out = np.empty((n, weights.shape[0]))
    for j in range(weights.shape[0]):
        low = np.linalg.cholesky(covs[j])
        with np.errstate(over="ignore", invalid="ignore"):
            z = scipy.linalg.solve_triangular(low, (X - means[j]).T, lower=True, check_finite=False)
            maha = np.sum(z * z, axis=0)
        log_det = 2.0 * np.sum(np.log(np.diag(low)))
        out[:, j] = log_w[j] - 0.5 * maha - 0.5 * log_det
        if normalized:
            out[:, j] -= 0.5 * d * LOG_2PI
    return out


def log_terms_scipy(X, model, normalized=True):
    """(N, K) log-terms from ``scipy.stats.multivariate_normal.logpdf``."""
    X = _pixels(X)
    weights, means, covs = _params(model)
    log_w = _log_weights(weights)
    d = X.shape[1]
    out = np.empty((X.shape[0], weights.shape[0]))
    for j in range(weights.shape[0]):
        lp = scipy.stats.multivariate_normal(mean=means[j], cov=covs[j]).logpdf(X)
        out[:, j] = log_w[j] + np.atleast_1d(lp)
        if not normalized:
            out[:, j] += 0.5 * d * LOG_2PI
    return out


def logsumexp_rows(terms):
    """log-sum-exp along axis 1 with ``scipy.special.logsumexp`` (NaN rows stay NaN)."""
    if terms.shape[0] == 0:
        return np.empty(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return scipy.special.logsumexp(terms, axis=1)


# -- derived quantities --------------------------------------------------------------------


def log_density(X, model, normalized=True, terms=log_terms_numpy):
    """Reference log p(x), from ``terms`` (default: the vectorised loop formula)."""
    return logsumexp_rows(terms(X, model, normalized))


def density(X, model, normalized=True, terms=log_terms_numpy):
    """Reference p(x) = exp(log p(x))."""
    return np.exp(log_density(X, model, normalized, terms))


def log_ratio(X, model_a, model_b, normalized=True, terms=log_terms_numpy):
    """Reference log p_a(x) - log p_b(x) (NaN where both are -inf)."""
    with np.errstate(invalid="ignore"):
        return log_density(X, model_a, normalized, terms) - log_density(
            X, model_b, normalized, terms
        )


def responsibilities(X, model, normalized=True, terms=log_terms_numpy):
    """Reference w_k N_k(x) / p(x) as (N, K); NaN where p(x) is 0 or NaN."""
    lt = terms(X, model, normalized)
    lp = logsumexp_rows(lt)
    with np.errstate(invalid="ignore"):
        r = np.exp(lt - lp[:, None])
    r[~np.isfinite(lp)] = np.nan
    return r


def predict_terms(X, model, normalized=True, terms=log_terms_numpy):
    """The (N, K) log-terms that ``predict`` maximises (for tie-tolerant checks)."""
    return terms(X, model, normalized)


def predict(X, model, normalized=True, terms=log_terms_numpy):
    """Reference argmax_k of the log-terms (first on ties); -1 at NaN pixels."""
    lt = terms(X, model, normalized)
    out = np.full(lt.shape[0], -1, dtype=np.intp)
    ok = ~np.any(np.isnan(lt), axis=1)
    if lt.shape[1]:
        out[ok] = np.argmax(lt[ok], axis=1)
    return out


def as_pixels(image, channel_axis=-1):
    """The (N, D) float64 pixels of an image, in the order pixgmm's outputs use."""
    arr = np.asarray(image)
    if channel_axis is None:
        return arr.reshape(-1, 1).astype(np.float64)
    arr = np.moveaxis(arr, channel_axis, -1)
    return arr.reshape(-1, arr.shape[-1]).astype(np.float64)


def spatial_shape(image, channel_axis=-1):
    """Shape of a per-pixel result for ``image``."""
    shape = np.shape(image)
    if channel_axis is None:
        return shape
    axis = channel_axis % len(shape)
    return shape[:axis] + shape[axis + 1 :]


# -- random models for the tests ----------------------------------------------------------

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")


def random_spd(rng, d, scale, cond):
    """A random symmetric positive-definite (d, d) matrix with eigenvalues in [scale**2 / cond,
    scale**2] (the largest and smallest exactly at the ends when d > 1): condition number ``cond``.
    """
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    q = q * np.sign(np.diag(r))
    ev = scale**2 * np.exp(-rng.uniform(0.0, np.log(cond), size=d))
    ev[0] = scale**2
    if d > 1:
        ev[-1] = scale**2 / cond
    m = (q * ev) @ q.T
    return 0.5 * (m + m.T)


def random_spd_gram(rng, d, scale, eps=0.05):
    """A A^T + eps I (times scale**2): the other classic way to draw a covariance."""
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    m = (a @ a.T + eps * np.eye(d)) * scale**2
    return 0.5 * (m + m.T)


def random_mixture(
    rng,
    covariance_type,
    d,
    k,
    lo=0.0,
    hi=255.0,
    *,
    cond=30.0,
    spread=(0.05, 0.3),
    zero_weight=False,
):
    """A random, well-conditioned mixture with means in [lo, hi] and standard deviations of
    ``spread`` times ``hi - lo``; ``zero_weight`` sets one weight (of several) to exactly 0.
    """
    import pixgmm

    width = hi - lo
    means = rng.uniform(lo, hi, size=(k, d))
    weights = rng.uniform(0.05, 1.0, size=k)
    if zero_weight and k > 1:
        weights[rng.integers(k)] = 0.0
    scales = width * rng.uniform(*spread, size=k)
    if covariance_type == "full":
        cov = np.array([random_spd(rng, d, s, rng.uniform(1.0, cond)) for s in scales])
    elif covariance_type == "tied":
        cov = random_spd(rng, d, scales[0], cond)
    elif covariance_type == "diag":
        cov = (scales[:, None] * rng.uniform(np.sqrt(1.0 / cond), 1.0, size=(k, d))) ** 2
    elif covariance_type == "spherical":
        cov = scales**2
    else:  # pragma: no cover - guarded by the callers
        raise ValueError(covariance_type)
    return pixgmm.Mixture(weights, means, cov, covariance_type)


# -- Bayes classification, pixel by pixel ---------------------------------------------------


def classify_loop(X, models, log_priors, chi2_max=math.inf):
    """Per pixel ``(index, confidence, margin, entropy, rejected)`` of Bayes classification.

    ``models`` is a sequence of :class:`pixgmm.Mixture` (one per class) and ``log_priors``
    (N, C) the log prior of each class at each pixel. Scores are :func:`log_density_loop`
    plus the log prior; the winner is the first largest score (-1, NaN maps where no score
    is a number above -inf); the posterior of class c is ``exp(s_c - max) / sum``; the
    margin is the best posterior minus the second best (0 when there is one class), the
    entropy ``-sum p log p`` in nats; ``rejected`` is whether the winner's squared
    Mahalanobis distance to its nearest component (from the inverse covariance) exceeds
    ``chi2_max``. Nothing is vectorised.
    """
    X = _pixels(X)
    n = X.shape[0]
    dens = [log_density_loop(X, m) for m in models]
    inverses = [[np.linalg.inv(c) for c in m.full_covariances()] for m in models]
    index = np.full(n, -1)
    conf, margin, entropy = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    rejected = np.zeros(n, dtype=bool)
    for i in range(n):
        scores = [float(dens[c][i]) + float(log_priors[i, c]) for c in range(len(models))]
        if any(math.isnan(s) for s in scores) or max(scores) == -math.inf:
            continue
        top = max(scores)
        best = scores.index(top)
        e = [math.exp(s - top) for s in scores]
        total = sum(e)
        p = sorted((v / total for v in e), reverse=True)
        index[i] = best
        conf[i] = e[best] / total
        margin[i] = p[0] - (p[1] if len(p) > 1 else 0.0)
        entropy[i] = -sum(v * math.log(v) for v in p if v > 0.0)
        d2 = min(
            float((X[i] - mu) @ inv @ (X[i] - mu))
            for mu, inv in zip(models[best].means, inverses[best])
        )
        rejected[i] = d2 > chi2_max
    return index, conf, margin, entropy, rejected
