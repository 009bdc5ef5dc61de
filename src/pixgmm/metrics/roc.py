"""Detector evaluation on labelled pixels: ROC curve, AUC, true-positive rate at a false-positive rate.

Scores are any per-pixel numbers where larger means "more likely positive": a
log likelihood ratio (:meth:`pixgmm.SkinDetector.log_ratio`), a posterior
probability, or one column of :meth:`pixgmm.Classifier.probability`. A pixel is
called positive when ``score >= threshold``. Everything is NumPy: one sort and
one cumulative sum.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["auc", "plot_roc", "roc_curve", "roc_figure", "tpr_at_fpr"]


def _binary(scores, labels, positive):
    """Validate and return ``(scores as float64 1-D, boolean truth 1-D)``."""
    s = np.asarray(scores)
    if s.dtype.kind not in "uifb":
        raise TypeError(f"scores must be a numeric array, got dtype {s.dtype}")
    s = s.astype(np.float64, copy=False).reshape(-1)
    y = np.asarray(labels)
    if y.shape != np.shape(scores):
        # equal sizes are not enough: a transposed mask would pair the wrong pixels
        raise ValueError(
            f"labels has shape {y.shape} but scores has shape {np.shape(scores)}; "
            "pass one label per score, in the scores' shape"
        )
    y = y.reshape(-1)
    if np.isnan(s).any():
        raise ValueError(
            f"scores contains {int(np.isnan(s).sum())} NaN value(s); drop those pixels first"
        )
    if positive is None:
        if y.dtype.kind == "b":
            truth = y
        else:
            values = np.unique(y)
            if not np.isin(values, [0, 1]).all():
                raise ValueError(
                    f"labels must be binary (bool, or 0 and 1), got values {values[:6].tolist()}; "
                    f"pass positive= the label of the positive class, e.g. positive={values[0]!r}"
                )
            truth = y == 1
    else:
        values = np.unique(y)
        if values.size > 2:
            raise ValueError(
                f"labels has {values.size} distinct values ({values[:6].tolist()}); a ROC curve "
                "needs two classes"
            )
        truth = y == positive
    n_pos = int(np.count_nonzero(truth))
    if n_pos == 0 or n_pos == truth.size:
        which = "positive" if n_pos == 0 else "negative"
        raise ValueError(
            f"labels has no {which} pixels; a ROC curve needs examples of both classes"
            + ("" if positive is None else f" (positive={positive!r})")
        )
    return s, truth


def _roc(s, truth):
    order = np.argsort(-s, kind="stable")
    s_sorted = s[order]
    tps_all = np.cumsum(truth[order], dtype=np.int64)
    # last index of every run of equal scores: each distinct score is one threshold
    last = np.flatnonzero(s_sorted[1:] != s_sorted[:-1])
    last = np.append(last, s_sorted.size - 1)
    tps = np.concatenate(([0], tps_all[last]))
    fps = np.concatenate(([0], last + 1 - tps_all[last]))
    thresholds = np.concatenate(([np.inf], s_sorted[last]))
    return fps, tps, thresholds


def roc_curve(scores, labels, *, positive=None):
    """Receiver operating characteristic: every distinct score as a threshold.

    Parameters
    ----------
    scores : array_like
        Per-pixel scores, any shape; larger means more likely positive. NaN is
        an error (drop those pixels first).
    labels : array_like
        Ground truth, one per score and of the scores' shape: bool, or 0/1
        with 1 positive. With other label values pass ``positive=``.
    positive : scalar, optional
        The label of the positive class (e.g. ``positive=1`` for the UCI skin
        data, whose labels are 1 = skin and 2 = non-skin). ``labels`` must then
        hold at most two distinct values.

    Returns
    -------
    fpr : numpy.ndarray
        ``fpr[i]`` is the false-positive rate of the rule ``score >= thresholds[i]``.
    tpr : numpy.ndarray
        ``tpr[i]`` is the true-positive rate of the same rule.
    thresholds : numpy.ndarray
        The score thresholds, decreasing; the first is
        ``inf`` (nothing positive, the point (0, 0)) and the last is the
        smallest score (everything positive, the point (1, 1)), as in
        ``sklearn.metrics.roc_curve(..., drop_intermediate=False)``. When some
        scores are ``+inf`` the second threshold is ``inf`` too, and the point
        (0, 0) is not reached by any threshold.

    Raises
    ------
    ValueError
        Labels that are not binary, a class with no pixels, NaN scores, or
        ``labels`` and ``scores`` of different shapes.

    Examples
    --------
    >>> from pixgmm.metrics import roc_curve
    >>> fpr, tpr, thr = roc_curve([0.9, 0.8, 0.4, 0.4, 0.1], [1, 0, 1, 0, 0])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.3333333333333333, 0.6666666666666666, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    >>> thr.tolist()
    [inf, 0.9, 0.8, 0.4, 0.1]
    """
    s, truth = _binary(scores, labels, positive)
    fps, tps, thresholds = _roc(s, truth)
    return fps / fps[-1], tps / tps[-1], thresholds


def auc(scores, labels, *, positive=None):
    """Area under the ROC curve (ties between scores count one half).

    Equal to the probability that a random positive pixel scores higher than a
    random negative one (the Mann-Whitney statistic).

    Parameters
    ----------
    scores, labels, positive
        As in :func:`roc_curve`.

    Returns
    -------
    float

    Examples
    --------
    >>> from pixgmm.metrics import auc
    >>> auc([0.9, 0.8, 0.4, 0.4, 0.1], [1, 0, 1, 0, 0])
    0.75
    >>> auc([3.0, 1.0, 2.0], ["skin", "sky", "skin"], positive="skin")
    1.0
    """
    s, truth = _binary(scores, labels, positive)
    fps, tps, _ = _roc(s, truth)
    # trapezoids in integer counts, normalised once: exact for tied scores
    area = float(np.sum(np.diff(fps) * (tps[1:] + tps[:-1]), dtype=np.float64))
    return area / (2.0 * float(fps[-1]) * float(tps[-1]))


def tpr_at_fpr(scores, labels, fpr, *, positive=None):
    """The best true-positive rate with a false-positive rate at most ``fpr``, and its threshold.

    Parameters
    ----------
    scores, labels, positive
        As in :func:`roc_curve`.
    fpr : float
        Target false-positive rate, in [0, 1].

    Returns
    -------
    tpr : float
        Fraction of positive pixels with ``score >= threshold``.
    threshold : float
        The smallest score threshold whose false-positive rate on these pixels
        does not exceed ``fpr`` (``inf`` when even the highest score would).
        Pixels whose score equals the threshold are positive.

    Raises
    ------
    ValueError
        As :func:`roc_curve`; also when negative pixels score ``+inf`` and
        so no threshold meets ``fpr``.

    Examples
    --------
    >>> from pixgmm.metrics import tpr_at_fpr
    >>> scores = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1]
    >>> labels = [1, 1, 0, 1, 0, 1, 0]
    >>> tpr_at_fpr(scores, labels, 0.0)
    (0.5, 0.8)
    >>> tpr_at_fpr(scores, labels, 0.4)
    (0.75, 0.6)
    """
    try:
        target = float(fpr)
    except (TypeError, ValueError):
        raise TypeError(f"fpr must be a number in [0, 1], got {fpr!r}") from None
    if not 0.0 <= target <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {fpr!r}")
    s, truth = _binary(scores, labels, positive)
    fps, tps, thresholds = _roc(s, truth)
    n_neg = int(fps[-1])
    # largest number of false positives allowed, computed exactly in integers
    allowed = math.floor(target * n_neg + 1e-9 * max(1.0, target * n_neg))
    # with +inf scores the curve's first point (nothing positive) has no threshold:
    # ``score >= inf`` still selects the +inf scores, so only later points are reachable
    start = 1 if thresholds[1] == np.inf else 0
    i = int(np.searchsorted(fps[start:], allowed, side="right")) - 1 + start
    if i < start:
        raise ValueError(
            f"{int(fps[1])} negative pixel(s) score +inf, so no threshold keeps the "
            f"false-positive rate at or below fpr={fpr!r} (the rule is score >= threshold); "
            "smooth the models (e.g. HistogramModel(smoothing=1)) or drop those pixels"
        )
    return float(tps[i] / tps[-1]), float(thresholds[i])


def _curve_area(fpr, tpr):
    """Area under a ROC curve given as points (trapezoids; ties are diagonal segments)."""
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) * 0.5))


def roc_figure(curves, *, title=None, max_fpr=1.0, log_fpr=False, min_fpr=None, mark_fpr=()):
    """A matplotlib Figure of ROC curves, each labelled with its AUC.

    Parameters
    ----------
    curves : mapping of str to (fpr, tpr) or (fpr, tpr, thresholds)
        One curve per detector, e.g. ``{"Jones & Rehg": roc_curve(s, y)}``.
        A single ``roc_curve`` result is accepted too.
    title : str, optional
    max_fpr : float, default 1.0
        Right end of the false-positive axis: detectors are compared at the
        low rates people use (e.g. 0.1).
    log_fpr : bool, default False
        A logarithmic false-positive axis, from ``min_fpr`` to ``max_fpr``.
    min_fpr : float, optional
        Left end of a logarithmic axis (default: the smallest positive rate
        on any curve, at least 1e-6).
    mark_fpr : sequence of float, default ()
        False-positive rates to mark with vertical dotted lines.

    Returns
    -------
    matplotlib.figure.Figure
        The legend gives each curve's area under the whole curve, as
        ``"name (AUC 0.995)"``.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'pixgmm[plot]'``).

    Examples
    --------
    >>> from pixgmm.metrics import roc_curve, roc_figure
    >>> fig = roc_figure({"toy": roc_curve([0.9, 0.8, 0.4, 0.1], [1, 0, 1, 0])}, log_fpr=True)
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['toy (AUC 0.750)']
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "plotting ROC curves needs matplotlib; install it with pip install 'pixgmm[plot]'"
        ) from None
    if isinstance(curves, tuple):
        curves = {"": curves}
    if not hasattr(curves, "items"):
        raise TypeError(
            "curves must be a mapping of name to (fpr, tpr[, thresholds]) such as "
            f"{{'detector': roc_curve(scores, labels)}}, got {type(curves).__name__}"
        )
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr!r}")
    checked = {}
    for name, curve in curves.items():
        if not isinstance(curve, (tuple, list)) or len(curve) not in (2, 3):
            raise ValueError(f"curves[{name!r}] must be (fpr, tpr) or (fpr, tpr, thresholds)")
        checked[name] = (np.asarray(curve[0], float), np.asarray(curve[1], float))
    if log_fpr:
        if min_fpr is None:
            positive = [f[f > 0].min() for f, _ in checked.values() if (f > 0).any()]
            min_fpr = max(min(positive, default=1e-6), 1e-6)
        if not 0.0 < float(min_fpr) < float(max_fpr):
            raise ValueError(f"min_fpr must be in (0, max_fpr={max_fpr}), got {min_fpr!r}")
    fig = Figure(figsize=(5.0, 4.5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, (fpr, tpr) in checked.items():
        area = _curve_area(fpr, tpr)
        label = f"{name} (AUC {area:.3f})" if str(name) else f"AUC {area:.3f}"
        ax.plot(fpr, tpr, label=label, lw=1.5, drawstyle="default")
    for x in mark_fpr:
        ax.axvline(float(x), color="0.6", ls=":", lw=1)
    if log_fpr:
        ax.set_xscale("log")
        ax.set_xlim(float(min_fpr), float(max_fpr))
    else:
        ax.set_xlim(0.0, float(max_fpr))
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("false-positive rate" + (" (log scale)" if log_fpr else ""))
    ax.set_ylabel("true-positive rate")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3, which="both" if log_fpr else "major")
    fig.tight_layout()
    return fig


def plot_roc(curves, path, *, title=None, max_fpr=1.0, log_fpr=False, min_fpr=None, mark_fpr=()):
    """Write ROC curves to an image file (PNG) with matplotlib: :func:`roc_figure`, saved.

    Parameters
    ----------
    curves, title, max_fpr, log_fpr, min_fpr, mark_fpr
        As :func:`roc_figure`.
    path : str or path-like
        Output file; its suffix chooses the format (``.png``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from pixgmm.metrics import plot_roc, roc_curve
    >>> curve = roc_curve([0.9, 0.8, 0.4, 0.1], [1, 0, 1, 0])
    >>> path = plot_roc({"toy": curve}, os.path.join(tempfile.mkdtemp(), "roc.png"))
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    fig = roc_figure(
        curves, title=title, max_fpr=max_fpr, log_fpr=log_fpr, min_fpr=min_fpr, mark_fpr=mark_fpr
    )
    path = Path(path)
    fig.savefig(path)
    return path
