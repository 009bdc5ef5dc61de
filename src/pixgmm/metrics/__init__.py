"""Measures of a detector or a classified map against labelled pixels.

- Detectors (two classes, a score per pixel): :func:`roc_curve`, :func:`auc`,
  :func:`tpr_at_fpr`, and their picture :func:`roc_figure` / :func:`plot_roc`.
- Classified maps (label values at reference samples): :func:`accuracy_report`,
  the confusion matrix (rows = map, columns = reference), kappa, user's and
  producer's accuracy, and the area estimates of Olofsson et al. (2014) with
  their confidence intervals (:class:`AccuracyReport`); its pictures
  :func:`confusion_matrix_figure` / :func:`plot_confusion_matrix` and
  :func:`area_estimates_figure` / :func:`plot_area_estimates`; of a map file
  against a reference file of points, polygons or a raster, :func:`map_accuracy`.

This package face only re-exports; each module holds one job.
"""

from __future__ import annotations

from ._report import AccuracyReport, Estimate, StratifiedEstimates
from .accuracy import accuracy_report
from .accuracy_plots import (
    area_estimates_figure,
    confusion_matrix_figure,
    plot_area_estimates,
    plot_confusion_matrix,
)
from .mapfile import map_accuracy
from .roc import auc, plot_roc, roc_curve, roc_figure, tpr_at_fpr

__all__ = [
    "AccuracyReport",
    "Estimate",
    "StratifiedEstimates",
    "accuracy_report",
    "area_estimates_figure",
    "auc",
    "confusion_matrix_figure",
    "map_accuracy",
    "plot_area_estimates",
    "plot_confusion_matrix",
    "plot_roc",
    "roc_curve",
    "roc_figure",
    "tpr_at_fpr",
]
