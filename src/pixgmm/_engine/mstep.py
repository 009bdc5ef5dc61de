"""The M-step of the EM, in NumPy: summed statistics in, weights, means, covariances out.

Private layer, beside :mod:`.em` (whose kernels compute the statistics) but importing no
numba, so a fit that needs no kernel (one Gaussian on points in memory:
:func:`pixgmm._engine.histfit.one_component_stats`) loads no compiler.

:func:`m_step` turns the summed statistics into parameters exactly as scikit-learn's
``_estimate_gaussian_parameters`` defines them (``nk + 10 eps``, ``reg_covar`` added to
the diagonal, weights ``nk / sum(nk)``), and :func:`precision_cholesky` as its
``_compute_precision_cholesky``.
"""

from __future__ import annotations

import math

import numpy as np

#: ``second`` argument of the statistics kernels: which second moments to accumulate.
SECOND_DIAG = 1
SECOND_FULL = 2

_LOG_2PI = math.log(2.0 * math.pi)
_EPS = float(np.finfo(np.float64).eps)


def m_step(nk, sx, sxx, means_old, covariance_type, reg_covar):
    """``(weights, means, covariances)`` from summed statistics, as scikit-learn's M-step.

    ``nk`` (K,), ``sx`` (K, D) and ``sxx`` (K, D, D) are the statistics of
    :func:`em_stats` summed over pixel groups, centred on ``means_old``.
    """
    K, D = means_old.shape
    nk_reg = nk + 10 * _EPS  # scikit-learn: nk = resp.sum(0) + 10 * eps
    means = (sx + nk[:, None] * means_old) / nk_reg[:, None]
    d = means - means_old  # the means' update: the statistics are re-centred on the new means
    if covariance_type in ("diag", "spherical"):
        dsq = np.diagonal(sxx, axis1=1, axis2=2)
        scatter = dsq - 2.0 * sx * d + nk[:, None] * d * d
        var = scatter / nk_reg[:, None] + reg_covar
        cov = var if covariance_type == "diag" else var.mean(axis=1)
    else:
        low = np.tril(sxx)
        full = low + np.swapaxes(np.tril(sxx, -1), 1, 2)
        scatter = (
            full
            - sx[:, :, None] * d[:, None, :]
            - d[:, :, None] * sx[:, None, :]
            + nk[:, None, None] * d[:, :, None] * d[:, None, :]
        )
        idx = np.arange(D)
        if covariance_type == "full":
            cov = scatter / nk_reg[:, None, None]
            cov[:, idx, idx] += reg_covar
        else:
            cov = scatter.sum(axis=0) / nk_reg.sum()
            cov[idx, idx] += reg_covar
        cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    weights = nk_reg / nk_reg.sum()
    return weights, means, cov


class IllDefinedCovariance(ValueError):
    """A covariance is not positive definite (the driver adds what to do)."""


def precision_cholesky(cov, covariance_type, K, D):
    """Upper-triangular U (K, D, D) with ``inv(Sigma_k) = U_k U_k^T`` (scikit-learn's way)."""
    if covariance_type in ("diag", "spherical"):
        var = cov if covariance_type == "diag" else np.repeat(cov[:, None], D, axis=1)
        if not np.all(var > 0):
            k = int(np.argwhere(~(var > 0))[0, 0])
            raise IllDefinedCovariance(f"component {k} has a variance <= 0")
        u = np.zeros((K, D, D))
        idx = np.arange(D)
        u[:, idx, idx] = 1.0 / np.sqrt(var)
        return u
    mats = cov[None] if covariance_type == "tied" else cov
    try:
        low = np.linalg.cholesky(mats)
    except np.linalg.LinAlgError:
        raise IllDefinedCovariance("a covariance is not positive definite") from None
    eye = np.broadcast_to(np.eye(D), mats.shape)
    u = np.swapaxes(np.linalg.solve(low, eye), 1, 2)
    if covariance_type == "tied":
        u = np.repeat(u, K, axis=0)
    return np.ascontiguousarray(u)


def log_coefficients(weights, prec):
    """``log w_k + log det U_k - D/2 log(2 pi)``: the constant of each log-term."""
    D = prec.shape[1]
    with np.errstate(divide="ignore"):
        logw = np.log(weights)
    return logw + np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1) - 0.5 * D * _LOG_2PI
