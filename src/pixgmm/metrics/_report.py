"""The result of :func:`pixgmm.metrics.accuracy_report` and its renderings (text, dict, CSV).

Built by :mod:`pixgmm.metrics.accuracy`; re-exported by :mod:`pixgmm.metrics`.
Nothing here computes an estimate: the types hold them and say them.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math

import numpy as np


def _plain(value):
    """A JSON-ready Python value: arrays to lists, NaN and infinities to None."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _accuracy(x):
    return "n/a" if not np.isfinite(x) else f"{x:.3f}"


def _amount(x, like=None):
    """An area or pixel count for a table: thousands separated, two decimals below 100.

    ``like``: the number whose size sets the decimals (an estimate for its margin).
    """
    if not np.isfinite(x):
        return "n/a"
    size = abs(x if like is None or not np.isfinite(like) else like)
    return f"{x:,.0f}" if size >= 100 or x == 0 else f"{x:,.2f}"


def _columns(rows, align):
    """Lines of a text table; ``align`` holds '<' or '>' per column."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(align))]
    return [
        "  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, align, widths)).rstrip()
        for row in rows
    ]


@dataclasses.dataclass(frozen=True, eq=False)
class Estimate:
    """An estimate with its standard error and confidence interval.

    Every field is a float for one quantity (overall accuracy) or an array with
    one value per class. The interval is ``value -+ z * se`` (a normal, Wald
    interval as in Olofsson et al. 2014), not clipped to [0, 1]; NaN where the
    estimate is undefined.

    Attributes
    ----------
    value, se, low, high : float or numpy.ndarray
        The estimate, its standard error, and the ends of its confidence interval.

    Examples
    --------
    >>> from pixgmm.metrics import accuracy_report
    >>> report = accuracy_report([1, 1, 1, 2, 2, 2], [1, 1, 2, 2, 2, 2],
    ...                          mapped_counts={1: 500, 2: 500})
    >>> oa = report.stratified.overall_accuracy
    >>> round(oa.value, 4), round(oa.se, 4), round(oa.margin, 4)
    (0.8333, 0.1667, 0.3267)
    >>> round(oa.low, 4), round(oa.high, 4)  # a Wald interval: not clipped to 1
    (0.5067, 1.16)
    """

    value: object
    se: object
    low: object
    high: object

    @property
    def margin(self):
        """Half the width of the interval, ``z * se`` (the "±" of a table)."""
        half = (np.asarray(self.high, dtype=float) - np.asarray(self.low, dtype=float)) / 2.0
        return float(half) if half.ndim == 0 else half

    def _row(self, i=None):
        pick = (lambda a: a) if i is None else (lambda a: a[i])
        return {
            "estimate": _plain(pick(self.value)),
            "se": _plain(pick(self.se)),
            "ci": [_plain(pick(self.low)), _plain(pick(self.high))],
        }


@dataclasses.dataclass(frozen=True, eq=False)
class StratifiedEstimates:
    """Population estimates with the map classes as strata (Olofsson et al. 2014).

    Attributes
    ----------
    confidence : float
        Level of the intervals (0.95 by default).
    z : float
        The standard normal quantile of that level (1.95996 for 95 %; the paper
        rounds it to 1.96).
    mapped_pixels : numpy.ndarray
        Pixels of each class in the map (``N_i.``), as passed in ``mapped_counts``.
    weights : numpy.ndarray
        ``W_i``: each class's share of the mapped pixels (the stratum weights).
    proportions : numpy.ndarray
        The estimated error matrix of area proportions, ``p[i, j] = W_i n_ij / n_i.``
        (rows map, columns reference; rows sum to ``weights``, everything to 1).
    overall_accuracy : Estimate
        The share of the area mapped correctly, ``sum_j p[j, j]``.
    users_accuracy, producers_accuracy : Estimate
        Per class: of the area mapped as the class, the share that is it; of the
        area that is the class, the share mapped as it.
    area_proportion : Estimate
        Per class, its share of the area on the ground, ``p_.j``.
    area_pixels : Estimate
        ``area_proportion`` times the mapped pixels: the error-adjusted area in pixels.
    area_hectares : Estimate or None
        The same in hectares, when ``pixel_area`` was given.
    mapped_hectares : numpy.ndarray or None
        The mapped area of each class in hectares, when ``pixel_area`` was given.
    pixel_area : float or None
        The area of one pixel in square metres.

    Examples
    --------
    >>> from pixgmm.metrics import accuracy_report
    >>> report = accuracy_report([1, 1, 1, 2, 2, 2], [1, 1, 2, 2, 2, 2],
    ...                          mapped_counts={1: 300, 2: 700}, pixel_area=900.0)
    >>> s = report.stratified
    >>> s.weights.tolist(), s.mapped_hectares.tolist()
    ([0.3, 0.7], [27.0, 63.0])
    >>> [round(float(v), 2) for v in s.area_hectares.value]
    [18.0, 72.0]
    """

    confidence: float
    z: float
    mapped_pixels: np.ndarray
    weights: np.ndarray
    proportions: np.ndarray
    overall_accuracy: Estimate
    users_accuracy: Estimate
    producers_accuracy: Estimate
    area_proportion: Estimate
    area_pixels: Estimate
    area_hectares: Estimate | None
    mapped_hectares: np.ndarray | None
    pixel_area: float | None


@dataclasses.dataclass(frozen=True, eq=False)
class AccuracyReport:
    """The accuracy of a classified map against reference samples.

    Made by :func:`pixgmm.metrics.accuracy_report`; every array is read-only and
    follows the order of ``classes``.

    Attributes
    ----------
    classes : tuple
        The class values (label values such as 1, 2, 5, not indices): every value
        met in the map samples, the reference samples or ``mapped_counts``.
    names : tuple of str
        A display name per class (the value as text unless names were given).
    confusion_matrix : numpy.ndarray of int64, shape (k, k)
        Sample counts, rows = map classes, columns = reference classes.
    n_samples : int
        Samples counted in the matrix.
    n_in_nodata : int
        Reference samples that fell on map nodata: not in the matrix.
    nodata : scalar or None
        The map's nodata value, as given.
    overall_accuracy, kappa : float
        Of the samples as drawn (no weights): the share on the diagonal and
        Cohen's kappa, as scikit-learn and GRASS ``r.kappa`` give them.
    users_accuracy, producers_accuracy, f1 : numpy.ndarray
        Per class, of the samples: diagonal over row total (user's: 1 - commission
        error), over column total (producer's: 1 - omission error), and their
        harmonic mean; NaN where a total is zero.
    stratified : StratifiedEstimates or None
        Area-weighted estimates with confidence intervals; None when
        ``mapped_counts`` was not given.
    notes : tuple of str
        Plain-language warnings: classes missing from one side, strata with too few
        samples, what was left out.

    Examples
    --------
    >>> from pixgmm.metrics import accuracy_report
    >>> report = accuracy_report([0, 1, 1, 2, 2], [1, 1, 2, 2, 3], nodata=0)
    >>> report  # doctest: +NORMALIZE_WHITESPACE
    AccuracyReport(classes=(1, 2, 3), n_samples=4, n_in_nodata=1,
                   overall_accuracy=0.5000, kappa=0.2000, stratified=False)
    >>> report.confusion_matrix.tolist()
    [[1, 1, 0], [0, 1, 1], [0, 0, 0]]
    >>> for note in report.notes:  # doctest: +NORMALIZE_WHITESPACE
    ...     print(note)
    1 reference sample(s) fall on map nodata and are not counted
    class 3 is in the reference but in no sample's map value: its user's accuracy is NaN
    and its producer's accuracy 0
    """

    classes: tuple
    names: tuple
    confusion_matrix: np.ndarray
    n_samples: int
    n_in_nodata: int
    nodata: object
    overall_accuracy: float
    kappa: float
    users_accuracy: np.ndarray
    producers_accuracy: np.ndarray
    f1: np.ndarray
    stratified: StratifiedEstimates | None
    notes: tuple

    def __repr__(self):
        return (
            f"AccuracyReport(classes={self.classes!r}, n_samples={self.n_samples}, "
            f"n_in_nodata={self.n_in_nodata}, overall_accuracy={self.overall_accuracy:.4f}, "
            f"kappa={self.kappa:.4f}, stratified={self.stratified is not None})"
        )

    def __str__(self):
        return self.table()

    def to_dict(self):
        """The report as plain Python values, ready for :func:`json.dumps`.

        Returns
        -------
        dict
            Keys ``classes``, ``names``, ``confusion_matrix`` (rows map, columns
            reference), ``n_samples``, ``n_in_nodata``, ``nodata``,
            ``overall_accuracy``, ``kappa``, ``per_class`` (one dict per class),
            ``stratified`` (None without mapped counts) and ``notes``. Undefined
            values (NaN) are None, since JSON has no NaN.

        Examples
        --------
        >>> import json
        >>> from pixgmm.metrics import accuracy_report
        >>> report = accuracy_report([1, 1, 2, 2], [1, 2, 2, 2], mapped_counts={1: 30, 2: 70})
        >>> d = report.to_dict()
        >>> d["confusion_matrix"], d["per_class"][0]["users_accuracy"]
        ([[1, 1], [0, 2]], 0.5)
        >>> d["stratified"]["overall_accuracy"]["estimate"]
        0.85
        >>> json.loads(json.dumps(d)) == d
        True
        """
        per_class = []
        matrix = self.confusion_matrix
        for i, value in enumerate(self.classes):
            per_class.append(
                {
                    "class": _plain(value),
                    "name": self.names[i],
                    "n_map": int(matrix[i].sum()),
                    "n_reference": int(matrix[:, i].sum()),
                    "users_accuracy": _plain(self.users_accuracy[i]),
                    "producers_accuracy": _plain(self.producers_accuracy[i]),
                    "f1": _plain(self.f1[i]),
                }
            )
        return {
            "classes": _plain(list(self.classes)),
            "names": list(self.names),
            "confusion_matrix": _plain(matrix),
            "rows": "map",
            "columns": "reference",
            "n_samples": self.n_samples,
            "n_in_nodata": self.n_in_nodata,
            "nodata": _plain(self.nodata),
            "overall_accuracy": _plain(self.overall_accuracy),
            "kappa": _plain(self.kappa),
            "per_class": per_class,
            "stratified": None if self.stratified is None else self._stratified_dict(),
            "notes": list(self.notes),
        }

    def _stratified_dict(self):
        s = self.stratified
        per_class = []
        for i, value in enumerate(self.classes):
            row = {
                "class": _plain(value),
                "name": self.names[i],
                "mapped_pixels": _plain(s.mapped_pixels[i]),
                "weight": _plain(s.weights[i]),
                "users_accuracy": s.users_accuracy._row(i),
                "producers_accuracy": s.producers_accuracy._row(i),
                "area_proportion": s.area_proportion._row(i),
                "area_pixels": s.area_pixels._row(i),
            }
            if s.area_hectares is not None:
                row["mapped_hectares"] = _plain(s.mapped_hectares[i])
                row["area_hectares"] = s.area_hectares._row(i)
            per_class.append(row)
        return {
            "method": "Olofsson et al. (2014), strata = map classes",
            "confidence": s.confidence,
            "z": s.z,
            "pixel_area_m2": _plain(s.pixel_area),
            "proportions": _plain(s.proportions),
            "overall_accuracy": s.overall_accuracy._row(),
            "per_class": per_class,
        }

    def table(self):
        """The report as text for a terminal: the matrix, per-class accuracies, estimates.

        Returns
        -------
        str

        Examples
        --------
        >>> from pixgmm.metrics import accuracy_report
        >>> print(accuracy_report([1, 1, 2, 2, 2], [1, 2, 2, 2, 2]).table())
        Accuracy from 5 reference samples
        <BLANKLINE>
        Confusion matrix (sample counts; rows: map, columns: reference)
        map \\ reference      1      2  total  user's
        1                    1      1      2   0.500
        2                    0      3      3   1.000
        total                1      4      5
        producer's       1.000  0.750
        <BLANKLINE>
        overall accuracy 0.800, kappa 0.545 (of the samples, unweighted)
        <BLANKLINE>
        class  user's  producer's     F1
        1       0.500       1.000  0.667
        2       1.000       0.750  0.857
        <BLANKLINE>
        No area estimates: pass mapped_counts (the map's pixels per class) for the
        stratified estimates of Olofsson et al. (2014).
        """
        lines = [f"Accuracy from {self.n_samples} reference samples"]
        if self.n_in_nodata:
            lines[0] += f" ({self.n_in_nodata} more fell on map nodata and are not counted)"
        lines += ["", "Confusion matrix (sample counts; rows: map, columns: reference)"]
        m = self.confusion_matrix
        rows = [["map \\ reference", *self.names, "total", "user's"]]
        for i, name in enumerate(self.names):
            cells = [str(v) for v in m[i]]
            rows.append([name, *cells, str(m[i].sum()), _accuracy(self.users_accuracy[i])])
        rows.append(["total", *[str(v) for v in m.sum(axis=0)], str(m.sum()), ""])
        rows.append(["producer's", *[_accuracy(v) for v in self.producers_accuracy], "", ""])
        lines += _columns(rows, "<" + ">" * (len(self.names) + 2))
        lines += [
            "",
            f"overall accuracy {_accuracy(self.overall_accuracy)}, kappa "
            f"{_accuracy(self.kappa)} (of the samples, unweighted)",
            "",
        ]
        rows = [["class", "user's", "producer's", "F1"]]
        for i, name in enumerate(self.names):
            rows.append(
                [
                    name,
                    _accuracy(self.users_accuracy[i]),
                    _accuracy(self.producers_accuracy[i]),
                    _accuracy(self.f1[i]),
                ]
            )
        lines += _columns(rows, "<>>>")
        lines.append("")
        if self.stratified is None:
            lines += [
                "No area estimates: pass mapped_counts (the map's pixels per class) for the",
                "stratified estimates of Olofsson et al. (2014).",
            ]
        else:
            lines += self._stratified_lines()
        if self.notes:
            lines += ["", "Notes:"] + [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def _stratified_lines(self):
        s = self.stratified
        level = f"{100 * s.confidence:g}%"
        oa = s.overall_accuracy
        lines = [
            f"Estimates weighted by mapped area (Olofsson et al. 2014; strata = map classes; "
            f"± = {level} CI)",
            f"overall accuracy {_accuracy(oa.value)} ± {_accuracy(oa.margin)}",
            "",
        ]
        hectares = s.area_hectares is not None
        unit = "ha" if hectares else "pixels"
        area = s.area_hectares if hectares else s.area_pixels
        mapped = s.mapped_hectares if hectares else s.mapped_pixels
        rows = [["class", "user's", "producer's", f"mapped ({unit})", f"estimated ({unit})"]]
        ua, pa = s.users_accuracy, s.producers_accuracy
        for i, name in enumerate(self.names):
            rows.append(
                [
                    name,
                    f"{_accuracy(ua.value[i])} ± {_accuracy(ua.margin[i])}",
                    f"{_accuracy(pa.value[i])} ± {_accuracy(pa.margin[i])}",
                    _amount(mapped[i]),
                    f"{_amount(area.value[i])} ± {_amount(area.margin[i], area.value[i])}",
                ]
            )
        return lines + _columns(rows, "<>>>>")

    def matrix_csv(self, *, proportions=False):
        """The confusion matrix as CSV text: a header of reference classes, a row per map class.

        Parameters
        ----------
        proportions : bool, default False
            Write the estimated area proportions ``p[i, j]`` (needs mapped counts)
            instead of the sample counts.

        Returns
        -------
        str
            The first cell reads ``map \\ reference``; rows and columns are named by
            ``names``. No totals: the file holds the matrix only.

        Examples
        --------
        >>> from pixgmm.metrics import accuracy_report
        >>> print(accuracy_report([1, 1, 2], [1, 2, 2]).matrix_csv(), end="")
        map \\ reference,1,2
        1,1,1
        2,0,1
        """
        if proportions:
            if self.stratified is None:
                raise ValueError(
                    "proportions=True needs the stratified estimates; pass mapped_counts "
                    "to accuracy_report"
                )
            matrix = [[repr(float(v)) for v in row] for row in self.stratified.proportions]
        else:
            matrix = self.confusion_matrix.tolist()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["map \\ reference", *self.names])
        for name, row in zip(self.names, matrix):
            writer.writerow([name, *row])
        return out.getvalue()
