"""One classification call on NumPy or Dask data: its options checked, its plan made, run.

Public layer, behind :meth:`pixgmm.Classifier.classify`. The plan's rule: one kernel scores
every class from the pixels (:func:`pixgmm._engine.classes.pixels_kernel`) when every class
is a Gaussian mixture and the direct engine takes each of them (``method="auto"``'s rule of
:mod:`pixgmm.evaluate`, or ``method="direct"``), or when ``chi2_level`` is asked with
``method="auto"`` (its distances need the direct engine's work anyway); otherwise each class's
engine scores a block and :func:`pixgmm._engine.classes.decide_scores` decides.
"""

from __future__ import annotations

import numpy as np

from .. import evaluate
from .._engine.params import params as _params
from .._validation import (
    is_dask_array,
    native_kernel_dtype,
    normalize_channel_axis,
    pixels_view,
)
from ..histogram import HistogramModel
from . import _checks, _decide, _posterior

_LOG_DENSITY = evaluate.log_density  # what explain() is asked about


def maps(models, labels, log_priors, image, outputs, channel_axis, channels, priors,
         prior_axis, *, dtype, method, fill, min_probability, chi2_level, reject):  # fmt: skip
    """:meth:`pixgmm.Classifier.classify` on NumPy or Dask ``image``: ``{name: map}``."""
    if min_probability is not None:
        min_probability = _checks.check_unit(min_probability, "min_probability", open_low=True)
    chi2_max = None
    if chi2_level is not None:
        chi2_max = chi2_threshold(models, labels, _checks.check_unit(chi2_level, "chi2_level"))
    if (min_probability is not None or chi2_max is not None) and reject is None:
        raise ValueError(
            "min_probability= and chi2_level= reject pixels: pass reject= the label to "
            "give them, e.g. reject=-1 (or a label of your own, such as 'unclassified')"
        )
    odt = _checks.map_dtype(dtype)
    if "labels" not in outputs:  # the reject options change the labels only
        min_probability = chi2_max = None
    lut = _checks.label_table(labels, fill, reject, _checks.label_dtype(labels, fill, reject))
    dask = is_dask_array(image)
    if dask:
        probe, probe_axis = image, channel_axis
        axis = normalize_channel_axis(channel_axis, image.ndim)
        spatial = tuple(s for i, s in enumerate(image.shape) if i != axis)
    else:
        d = models[labels[0]].n_features
        X, spatial = pixels_view(image, d, channel_axis, convert=False)
        # the pixels' shape and kernel dtype without their memory: the engine rule's input
        probe = np.broadcast_to(np.zeros((), native_kernel_dtype(X.dtype)), X.shape)
        probe_axis = -1
    plan = make_plan(models, labels, log_priors, probe, probe_axis, channels, dtype, method,
                     chi2_max, min_probability, outputs, odt)  # fmt: skip
    if priors is not None:
        priors = _checks.pixel_priors(priors, prior_axis, spatial, labels, image)
    fill_missing = fill is None
    if not dask:
        return _decide.run_numpy(plan, X, spatial, priors, outputs, lut, fill_missing)
    if plan.fused:
        data, d2 = channels_last(image, axis), None
    else:
        kw = {"channel_axis": channel_axis, "channels": channels}
        data = _posterior.stack([
            evaluate.log_density(image, models[lab], dtype=dtype, method=method, **kw)
            for lab in labels
        ])  # fmt: skip
        d2 = None
        if plan.chi2_max < np.inf:
            d2 = _posterior.stack([
                evaluate.min_mahalanobis(image, models[lab], dtype=np.float64, **kw)
                for lab in labels
            ])  # fmt: skip
    return _decide.run_dask(plan, data, d2, priors, outputs, lut, fill_missing)


def make_plan(models, labels, log_priors, probe, channel_axis, channels, dtype, method,
              chi2_max, min_probability, outputs, odt):  # fmt: skip
    """The :class:`~._decide.Plan` of a call; ``probe`` stands for the image in the engine
    rule (and validates the call as the engines do)."""
    methods = tuple(
        evaluate.explain(
            _LOG_DENSITY, probe, models[lab], channel_axis=channel_axis, channels=channels,
            dtype=dtype, method=method,
        )
        for lab in labels
    )  # fmt: skip
    resolved = tuple(
        evaluate._resolve_models(
            [models[lab] for lab in labels], [f"models[{lab!r}]" for lab in labels], channels
        )
    )
    histograms = any(isinstance(m, HistogramModel) for m in resolved)
    fused = not histograms and (
        all(m == "direct" for m in methods) or (chi2_max is not None and method == "auto")
    )
    return _decide.Plan(
        fused=fused, stacked=stacked_parameters(resolved) if fused else None, models=resolved,
        methods=methods, score_dtype=dtype, log_priors=np.array(log_priors, dtype=np.float64),
        labels=labels, chi2_max=chi2_max, min_prob=min_probability,
        maps=tuple(m for m in _decide.MAPS if m in outputs), odt=odt,
    )  # fmt: skip


def chi2_threshold(models, labels, level):
    """The chi-square quantile (D degrees of freedom) that ``chi2_level`` asks for."""
    for lab in labels:
        if isinstance(models[lab], HistogramModel):
            raise ValueError(
                f"chi2_level needs Gaussian mixtures; class {lab!r} is a HistogramModel "
                "(use min_probability= instead)"
            )
    try:
        # the inverse of the chi-square survival function: scipy.stats.chi2.ppf(level, D),
        # without importing scipy.stats (half a second of a command line's start-up)
        from scipy.special import chdtri
    except ImportError:
        raise ImportError(
            "chi2_level needs SciPy for the chi-square quantile; install it with "
            'pip install scipy (it comes with pip install "pixgmm[fit]")'
        ) from None
    return float(chdtri(models[labels[0]].n_features, 1.0 - level))


def stacked_parameters(models):
    """Every class's direct-engine parameters, stacked for the one-pass kernel.

    ``(means, prec, coef, full, starts)``: class ``c``'s components are rows
    ``starts[c]:starts[c + 1]``; ``models`` are in the image's channel order.
    """
    parts = [_params(m, True) for m in models]
    starts = np.cumsum([0] + [m.n_components for m in models]).astype(np.intp)
    return (
        np.ascontiguousarray(np.concatenate([p[0] for p in parts])),
        np.ascontiguousarray(np.concatenate([p[1] for p in parts])),
        np.ascontiguousarray(np.concatenate([p[2] for p in parts])),
        np.array([p[3] for p in parts], dtype=np.bool_),
        starts,
    )


def channels_last(image, axis):
    """A dask image with its channels last, in one chunk (a channel axis of 1 when None)."""
    arr = image
    if axis is None:
        arr = arr[..., None]
    elif axis != arr.ndim - 1:
        arr = arr.transpose(*[a for a in range(arr.ndim) if a != axis], axis)
    return arr.rechunk({arr.ndim - 1: -1})
