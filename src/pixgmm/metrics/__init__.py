"""Measures of a detector or a classified map against labelled pixels.

- Detectors (two classes, a score per pixel): :func:`roc_curve`, :func:`auc`,
  :func:`tpr_at_fpr`, and their picture :func:`roc_figure` / :func:`plot_roc`.

This package face only re-exports; each module holds one job.
"""

from __future__ import annotations

from .roc import auc, plot_roc, roc_curve, roc_figure, tpr_at_fpr

__all__ = ["auc", "plot_roc", "roc_curve", "roc_figure", "tpr_at_fpr"]
