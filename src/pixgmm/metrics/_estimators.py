"""The arithmetic of an accuracy report: sample counts in, estimates out.

Arrays and scalars only, no validation: :mod:`pixgmm.metrics.accuracy` checks the
inputs and builds the report. The notation is that of Olofsson et al. (2014),
"Good practices for estimating area and assessing accuracy of land change",
Remote Sensing of Environment 148, 42-57:

- ``n[i, j]``: reference samples in map class ``i`` (row) whose reference class
  is ``j`` (column); ``n_i.`` and ``n_.j`` its row and column totals;
- ``W[i]``: the share of the map's pixels in class ``i``, the weight of stratum
  ``i`` when the samples were drawn at random within each map class;
- ``p[i, j] = W[i] n[i, j] / n_i.``: the estimated share of the area that is mapped
  ``i`` and is ``j`` on the ground.

Estimates (the paper's equations, by the quantity they estimate)::

    overall accuracy     O    = sum_j p[j, j]
    user's accuracy      U_i  = p[i, i] / p_i.  = n[i, i] / n_i.
    producer's accuracy  P_j  = p[j, j] / p_.j
    area proportion      p_.j = sum_i p[i, j]

    V(O)    = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)
    V(U_i)  = U_i (1 - U_i) / (n_i. - 1)
    V(P_j)  = [ W_j^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1)
                + P_j^2 sum_{i != j} W_i^2 q_ij (1 - q_ij) / (n_i. - 1) ] / p_.j^2
    V(p_.j) = sum_i W_i^2 q_ij (1 - q_ij) / (n_i. - 1)        with q_ij = n[i, j] / n_i.

The paper writes ``V(P_j)`` with pixel counts ``N_i. = N W_i`` and ``N_.j = N p_.j``;
``N`` cancels, so the weights suffice. A stratum with map pixels but no sample
makes everything it enters NaN; a stratum with one sample has no variance (NaN).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def confusion_counts(map_index, reference_index, n_classes):
    """``n[i, j]``: how many samples have map class ``i`` and reference class ``j``."""
    flat = map_index.astype(np.int64) * n_classes + reference_index.astype(np.int64)
    counts = np.bincount(flat, minlength=n_classes * n_classes)
    return counts.reshape(n_classes, n_classes)


class SampleMeasures(NamedTuple):
    overall_accuracy: float
    kappa: float
    users_accuracy: np.ndarray
    producers_accuracy: np.ndarray
    f1: np.ndarray


def sample_measures(counts):
    """Measures of the samples as drawn (no weights): NaN where a total is zero."""
    n = counts.astype(np.float64)
    total = n.sum()
    diag = np.diag(n)
    rows = n.sum(axis=1)
    cols = n.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = diag.sum() / total
        chance = float(np.dot(rows, cols)) / (total * total)
        kappa = (observed - chance) / (1.0 - chance)
        users = diag / rows
        producers = diag / cols
        f1 = 2.0 * diag / (rows + cols)
    return SampleMeasures(float(observed), float(kappa), users, producers, f1)


class StratifiedMeasures(NamedTuple):
    proportions: np.ndarray  # p[i, j]
    overall_accuracy: float
    overall_accuracy_var: float
    users_accuracy: np.ndarray
    users_accuracy_var: np.ndarray
    producers_accuracy: np.ndarray
    producers_accuracy_var: np.ndarray
    area: np.ndarray  # p_.j
    area_var: np.ndarray


def stratified_measures(counts, weights):
    """Olofsson et al. (2014) estimators with the map classes as strata.

    ``counts`` is the (k, k) sample matrix (rows map), ``weights`` the (k,) stratum
    weights summing to 1. A row of weight 0 must have no sample (the caller checks).
    """
    n = counts.astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)
    rows = n.sum(axis=1)
    sampled = rows > 0
    q = np.zeros_like(n)
    q[sampled] = n[sampled] / rows[sampled, None]
    q[~sampled & (w > 0)] = np.nan  # map pixels, no sample: that stratum is unknown
    p = w[:, None] * q
    with np.errstate(divide="ignore", invalid="ignore"):
        # W_i^2 / (n_i. - 1): 0 for an empty stratum of weight 0, inf for a single sample
        factor = np.where(w > 0, w * w / (rows - 1.0), 0.0)
        spread = factor[:, None] * q * (1.0 - q)  # W_i^2 q_ij (1 - q_ij) / (n_i. - 1)
        users = np.where(sampled, np.diag(q), np.nan)
        users_var = users * (1.0 - users) / (rows - 1.0)
        overall = float(np.trace(p))
        overall_var = float(np.sum(np.diag(spread)))
        area = p.sum(axis=0)
        area_var = spread.sum(axis=0)
        producers = np.diag(p) / area
        off = ~np.eye(n.shape[0], dtype=bool)
        # 1 - P_j as the off-diagonal share of the column: no cancellation when P_j ~ 1
        missed = np.where(off, p, 0.0).sum(axis=0) / area
        own = np.diag(spread)  # the j-th stratum's term, W_j^2 U_j (1 - U_j) / (n_j. - 1)
        others = np.where(off, spread, 0.0).sum(axis=0)  # the sum over i != j
        producers_var = (missed**2 * own + producers**2 * others) / area**2
    return StratifiedMeasures(
        p, overall, overall_var, users, users_var, producers, producers_var, area, area_var
    )
