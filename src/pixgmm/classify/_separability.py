"""How well the classes separate: Bhattacharyya and Jeffries-Matusita distances, summary.

Public layer: used by :meth:`pixgmm.Classifier.separability` and ``summary``. Each class is
summarised by one Gaussian, its mixture's mean and covariance.
"""

from __future__ import annotations

import numpy as np

from ..histogram import HistogramModel

METRICS = ("jeffries-matusita", "bhattacharyya")


def separability(models, labels, metric):
    """The (C, C) matrix of ``metric`` between the classes ``models[label]``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be 'jeffries-matusita' or 'bhattacharyya', got {metric!r}")
    moments = []
    for lab in labels:
        m = models[lab]
        if isinstance(m, HistogramModel):
            raise ValueError(
                f"separability needs Gaussian mixtures; class {lab!r} is a HistogramModel"
            )
        moments.append(_moments(m))
    c = len(moments)
    out = np.zeros((c, c))
    for i in range(c):
        for j in range(i + 1, c):
            out[i, j] = out[j, i] = _bhattacharyya(*moments[i], *moments[j])
    if metric == "jeffries-matusita":
        out = 2.0 * -np.expm1(-out)
    return out


def summary(models, labels, priors):
    """The dict of :meth:`pixgmm.Classifier.summary`."""
    classes = []
    for lab, prior in zip(labels, priors):
        m = models[lab]
        classes.append({
            "label": lab,
            "prior": float(prior),
            "model": type(m).__name__,
            "n_components": getattr(m, "n_components", None),
        })  # fmt: skip
    result = {"n_features": models[labels[0]].n_features, "classes": classes}
    if any(isinstance(m, HistogramModel) for m in models.values()) or len(classes) < 2:
        result["jeffries_matusita"] = None
        result["least_separable"] = None
        return result
    jm = separability(models, labels, "jeffries-matusita")
    iu = np.triu_indices(len(classes), 1)
    k = int(np.argmin(jm[iu]))
    i, j = iu[0][k], iu[1][k]
    result["jeffries_matusita"] = jm.tolist()
    result["least_separable"] = {
        "pair": (labels[i], labels[j]),
        "jeffries_matusita": float(jm[i, j]),
    }
    return result


def _moments(model):
    """Mean (D,) and covariance (D, D) of a mixture."""
    w = model.weights / model.weights.sum()
    mu = w @ model.means
    diff = model.means - mu
    cov = np.einsum("k,kij->ij", w, model.full_covariances())
    return mu, cov + np.einsum("k,ki,kj->ij", w, diff, diff)


def _bhattacharyya(m1, s1, m2, s2):
    s = 0.5 * (s1 + s2)
    d = m1 - m2
    maha = float(d @ np.linalg.solve(s, d))
    _, ld = np.linalg.slogdet(s)
    _, ld1 = np.linalg.slogdet(s1)
    _, ld2 = np.linalg.slogdet(s2)
    return maha / 8.0 + 0.5 * (ld - 0.5 * (ld1 + ld2))
