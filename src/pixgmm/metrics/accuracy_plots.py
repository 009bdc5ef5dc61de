"""Pictures of an :class:`~pixgmm.metrics.AccuracyReport`: the confusion matrix and the areas.

matplotlib (the ``plot`` extra) is imported when a picture is drawn, never on import.
Every number drawn is the report's, formatted; nothing is computed here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ._report import AccuracyReport, _amount

__all__ = [
    "area_estimates_figure",
    "confusion_matrix_figure",
    "plot_area_estimates",
    "plot_confusion_matrix",
]


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "drawing an accuracy report needs matplotlib; install it with "
            "pip install 'pixgmm[plot]'"
        ) from None
    return Figure, FigureCanvasAgg


def _check_report(report):
    if not isinstance(report, AccuracyReport):
        raise TypeError(
            f"report must be an AccuracyReport from pixgmm.metrics.accuracy_report, "
            f"got {type(report).__name__}"
        )


def _acc(x):
    return "n/a" if not math.isfinite(x) else f"{x:.2f}"


def _share(x, like=None):
    return "n/a" if not math.isfinite(x) else f"{x:.4f}"


def _thousands(x, _pos):
    return f"{x:,.0f}" if abs(x) >= 100 or x == 0 else f"{x:,.2f}"


def confusion_matrix_figure(report, *, values="counts", title=None, cmap="Blues"):
    """A matplotlib Figure of the confusion matrix with user's and producer's accuracy.

    Rows are map classes, columns reference classes. The margin column holds each
    map class's user's accuracy, the margin row each reference class's producer's
    accuracy, the corner the overall accuracy. A cell's colour is its share of its
    row (of the map class's samples, or of its area).

    Parameters
    ----------
    report : AccuracyReport
        From :func:`accuracy_report`.
    values : {"counts", "proportions"}, default "counts"
        ``"counts"``: the sample counts and the accuracies of the samples (as
        ``report.confusion_matrix``, ``report.users_accuracy``, ...). ``"proportions"``:
        the estimated area proportions ``p[i, j]`` and the area-weighted accuracies
        with their confidence-interval half-widths (``report.stratified``; needs
        ``mapped_counts``).
    title : str, optional
        Default: what the cells hold, the sample count and kappa.
    cmap : str, default "Blues"
        matplotlib colour map of the cells.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'pixgmm[plot]'``).
    ValueError
        ``values="proportions"`` on a report without stratified estimates.

    Examples
    --------
    >>> from pixgmm.metrics import accuracy_report, confusion_matrix_figure
    >>> report = accuracy_report([1, 1, 2, 2, 2], [1, 2, 2, 2, 2])
    >>> fig = confusion_matrix_figure(report)
    >>> [t.get_text() for t in fig.axes[0].texts]  # row by row, then the corner
    ['1', '1', '0.50', '1.00', '0', '3', '1.00', '0.75', 'OA 0.80']
    """
    Figure, FigureCanvasAgg = _matplotlib()
    _check_report(report)
    if values not in ("counts", "proportions"):
        raise ValueError(f'values must be "counts" or "proportions", got {values!r}')
    k = len(report.classes)
    counts = report.confusion_matrix
    if values == "proportions":
        s = report.stratified
        if s is None:
            raise ValueError(
                'values="proportions" needs the stratified estimates; pass mapped_counts '
                "to accuracy_report"
            )
        cells = [[f"{v:.4f}" for v in row] for row in s.proportions]
        ua = [
            f"{_acc(v)}\n±{_acc(m)}"
            for v, m in zip(s.users_accuracy.value, s.users_accuracy.margin)
        ]
        pa = [
            f"{_acc(v)}\n±{_acc(m)}"
            for v, m in zip(s.producers_accuracy.value, s.producers_accuracy.margin)
        ]
        oa = s.overall_accuracy
        corner = f"OA {_acc(oa.value)}\n±{_acc(oa.margin)}"
        with np.errstate(divide="ignore", invalid="ignore"):
            share = s.proportions / s.weights[:, None]
        what = f"Estimated area proportions ({100 * s.confidence:g}% CI)"
    else:
        cells = [[str(v) for v in row] for row in counts]
        ua = [_acc(v) for v in report.users_accuracy]
        pa = [_acc(v) for v in report.producers_accuracy]
        corner = f"OA {_acc(report.overall_accuracy)}"
        with np.errstate(divide="ignore", invalid="ignore"):
            share = counts / counts.sum(axis=1, keepdims=True)
        what = "Sample counts"
    if title is None:
        title = f"{what}: {report.n_samples} samples, kappa {_acc(report.kappa)}"

    side = max(4.0, 1.8 + 0.8 * (k + 1))
    fig = Figure(figsize=(side + 1.0, side), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    fontsize = 9 if k <= 8 else 7
    grid = np.full((k + 1, k + 1), np.nan)
    grid[:k, :k] = share
    image = ax.imshow(grid, cmap=cmap, vmin=0.0, vmax=1.0, origin="upper")
    for i in range(k + 1):  # the margins on grey
        for cell in ((i, k), (k, i)):
            ax.add_patch(_cell(cell, "0.92"))
    for i in range(k):
        for j in range(k):
            dark = np.isfinite(share[i, j]) and share[i, j] > 0.6
            ax.text(
                j,
                i,
                cells[i][j],
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if dark else "black",
            )
        ax.text(k, i, ua[i], ha="center", va="center", fontsize=fontsize)
        ax.text(i, k, pa[i], ha="center", va="center", fontsize=fontsize)
    ax.text(k, k, corner, ha="center", va="center", fontsize=fontsize, fontweight="bold")
    names = list(report.names)
    ax.set_xticks(range(k + 1), [*names, "user's"], rotation=30, ha="left")
    ax.set_yticks(range(k + 1), [*names, "producer's"])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("reference")
    ax.set_ylabel("map")
    ax.set_xlim(-0.5, k + 0.5)
    ax.set_ylim(k + 0.5, -0.5)
    ax.set_title(title, fontsize=10, pad=12)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    bar.set_label("share of the map class", fontsize=8)
    fig.tight_layout()
    return fig


def _cell(ij, color):
    from matplotlib.patches import Rectangle

    i, j = ij
    return Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, facecolor=color, edgecolor="white", lw=1)


def plot_confusion_matrix(report, path, *, values="counts", title=None, cmap="Blues"):
    """Write the confusion-matrix picture to an image file: :func:`confusion_matrix_figure`, saved.

    Parameters
    ----------
    report, values, title, cmap
        As :func:`confusion_matrix_figure`.
    path : str or path-like
        Output file; its suffix chooses the format (``.png``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from pixgmm.metrics import accuracy_report, plot_confusion_matrix
    >>> report = accuracy_report([1, 1, 2, 2], [1, 2, 2, 2])
    >>> path = plot_confusion_matrix(report, os.path.join(tempfile.mkdtemp(), "matrix.png"))
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    fig = confusion_matrix_figure(report, values=values, title=title, cmap=cmap)
    path = Path(path)
    fig.savefig(path)
    return path


_UNITS = {
    "hectares": ("area_hectares", "mapped_hectares", "area (ha)"),
    "pixels": ("area_pixels", "mapped_pixels", "area (pixels)"),
    "proportion": ("area_proportion", "weights", "share of the area"),
}


def area_estimates_figure(report, *, unit=None, title=None):
    """A matplotlib Figure of each class's mapped area beside its estimated area and interval.

    One small panel per class, each on its own scale (a rare class next to a
    common one stays readable): a grey bar for the area the map shows, a coloured
    bar for the area estimated from the samples (Olofsson et al. 2014) with an
    error bar over its confidence interval, both labelled with their numbers.

    Parameters
    ----------
    report : AccuracyReport
        From :func:`accuracy_report` with ``mapped_counts``.
    unit : {"hectares", "pixels", "proportion"}, optional
        Default: hectares when the report has them (``pixel_area`` was given),
        else pixels.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        Axes in class order (unused panels are switched off); in each, the bars
        are ``[mapped, estimated]``.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'pixgmm[plot]'``).
    ValueError
        A report without stratified estimates, or hectares without ``pixel_area``.

    Examples
    --------
    >>> from pixgmm.metrics import accuracy_report, area_estimates_figure
    >>> report = accuracy_report([1, 1, 1, 2, 2, 2], [1, 1, 2, 2, 2, 2],
    ...                          mapped_counts={1: 300, 2: 700})
    >>> fig = area_estimates_figure(report)
    >>> [round(float(p.get_height()), 6) for p in fig.axes[0].patches]  # mapped, estimated
    [300.0, 200.0]
    """
    Figure, FigureCanvasAgg = _matplotlib()
    from matplotlib.ticker import FuncFormatter

    _check_report(report)
    s = report.stratified
    if s is None:
        raise ValueError(
            "the area picture needs the stratified estimates; pass mapped_counts "
            "(the map's pixels per class) to accuracy_report"
        )
    if unit is None:
        unit = "hectares" if s.area_hectares is not None else "pixels"
    if unit not in _UNITS:
        raise ValueError(f'unit must be "hectares", "pixels" or "proportion", got {unit!r}')
    if unit == "hectares" and s.area_hectares is None:
        raise ValueError(
            'unit="hectares" needs pixel_area (square metres) in accuracy_report; '
            'or pass unit="pixels"'
        )
    est_name, mapped_name, ylabel = _UNITS[unit]
    est = getattr(s, est_name)
    mapped = getattr(s, mapped_name)
    fmt = _share if unit == "proportion" else _amount
    k = len(report.classes)
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig = Figure(figsize=(0.5 + 2.4 * ncols, 0.7 + 2.8 * nrows), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, ax in enumerate(axes):
        if i >= k:
            ax.set_axis_off()
            continue
        value, low, high = float(est.value[i]), float(est.low[i]), float(est.high[i])
        ax.bar([0, 1], [float(mapped[i]), value], color=["0.7", "C0"], width=0.6)
        if math.isfinite(value) and math.isfinite(low) and math.isfinite(high):
            ax.errorbar(
                1,
                value,
                yerr=[[value - low], [high - value]],
                fmt="none",
                ecolor="black",
                capsize=5,
                lw=1.2,
            )
        top = np.nanmax([float(mapped[i]), high, value, 0.0])
        bottom = min(0.0, low) if math.isfinite(low) else 0.0
        ax.set_ylim(bottom, top * 1.3 if top > 0 else 1.0)
        ax.text(0, float(mapped[i]), fmt(float(mapped[i])), ha="center", va="bottom", fontsize=7)
        label_y = high if math.isfinite(high) else (value if math.isfinite(value) else 0.0)
        ax.text(
            1,
            label_y,
            f"{fmt(value)}\n± {fmt(float(est.margin[i]), value)}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
        ax.set_xticks([0, 1], ["mapped", "estimated"], fontsize=8)
        ax.set_title(report.names[i], fontsize=9)
        ax.tick_params(axis="y", labelsize=7)
        if unit != "proportion":
            ax.yaxis.set_major_formatter(FuncFormatter(_thousands))
        if i % ncols == 0:
            ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    if title is None:
        title = f"Area per class: mapped, and estimated with its {100 * s.confidence:g}% CI"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_area_estimates(report, path, *, unit=None, title=None):
    """Write the area picture to an image file: :func:`area_estimates_figure`, saved.

    Parameters
    ----------
    report, unit, title
        As :func:`area_estimates_figure`.
    path : str or path-like
        Output file; its suffix chooses the format (``.png``).

    Returns
    -------
    pathlib.Path
        ``path``.

    Examples
    --------
    >>> import os, tempfile
    >>> from pixgmm.metrics import accuracy_report, plot_area_estimates
    >>> report = accuracy_report([1, 1, 2, 2], [1, 2, 2, 2], mapped_counts={1: 40, 2: 60})
    >>> path = plot_area_estimates(report, os.path.join(tempfile.mkdtemp(), "areas.png"))
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
    """
    fig = area_estimates_figure(report, unit=unit, title=title)
    path = Path(path)
    fig.savefig(path)
    return path
