"""Accuracy of a classified map against reference samples: :func:`accuracy_report`.

The report is the one remote-sensing users expect: the confusion matrix with
rows = map classes and columns = reference classes, overall accuracy, Cohen's
kappa, user's and producer's accuracy and F1 per class, and, given the map's
pixel count per class, the stratified estimators of Olofsson et al. (2014,
Remote Sensing of Environment 148, 42-57) with the map classes as strata:
overall, user's and producer's accuracy and the area of every class, each with
its standard error and confidence interval. This module validates the inputs;
:mod:`pixgmm.metrics._estimators` does the arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import NormalDist

import numpy as np

from . import _estimators
from ._report import AccuracyReport, Estimate, StratifiedEstimates

__all__ = ["accuracy_report"]

_KINDS = {"b": "numbers", "i": "numbers", "u": "numbers", "f": "numbers", "U": "text"}


def _samples(map_values, reference_values):
    """Both sample arrays, flattened, after checking their types and shapes."""
    arrays = []
    for name, x in (("map_values", map_values), ("reference_values", reference_values)):
        a = np.asarray(x)
        if a.dtype.kind == "O":
            a = np.asarray(a.tolist())
        if a.dtype.kind not in _KINDS:
            raise TypeError(
                f"{name} must hold class values (integers, numbers or text), got dtype {a.dtype}"
            )
        arrays.append(a)
    m, r = arrays
    if m.shape != r.shape:
        raise ValueError(
            f"map_values has shape {m.shape} but reference_values has shape {r.shape}; pass "
            "the map's value at every reference sample, one per sample, in the same order"
        )
    if _KINDS[m.dtype.kind] != _KINDS[r.dtype.kind]:
        raise TypeError(
            f"map_values holds {_KINDS[m.dtype.kind]} but reference_values holds "
            f"{_KINDS[r.dtype.kind]}; give both the same class values (e.g. the map's labels)"
        )
    if m.size == 0:
        raise ValueError("map_values and reference_values are empty; pass at least one sample")
    return m.reshape(-1), r.reshape(-1)


def _is_nan(value):
    return isinstance(value, (float, np.floating)) and math.isnan(value)


def _nodata_mask(m, nodata):
    if nodata is None:
        return np.zeros(m.shape, dtype=bool)
    if _is_nan(nodata):
        return np.isnan(m) if m.dtype.kind == "f" else np.zeros(m.shape, dtype=bool)
    if isinstance(nodata, (str, np.str_)) != (m.dtype.kind == "U"):
        raise TypeError(
            f"nodata={nodata!r} is not a value of map_values (which holds "
            f"{_KINDS[m.dtype.kind]}); pass the map's nodata value"
        )
    return m == nodata


def _check_no_nan(a, name, fix):
    if a.dtype.kind == "f":
        bad = int(np.isnan(a).sum())
        if bad:
            raise ValueError(f"{name} holds {bad} NaN value(s); {fix}")


def _same_kind(values, name, m):
    """Class values given beside the samples must be of their kind (numbers or text)."""
    kind = _KINDS.get(values.dtype.kind)
    if kind != _KINDS[m.dtype.kind]:
        raise TypeError(
            f"{name} holds {kind or values.dtype} but the map holds {_KINDS[m.dtype.kind]}; "
            "give the class values as the map holds them"
        )


def _counts_dict(mapped_counts, nodata, m):
    """``mapped_counts`` given as a mapping: its keys (as an array) and values."""
    keys = list(mapped_counts.keys())
    if not keys:
        raise ValueError("mapped_counts is empty; pass the map's pixel count of every class")
    _same_kind(np.asarray(keys), "mapped_counts (its keys)", m)
    if nodata is not None and any(k == nodata or (_is_nan(k) and _is_nan(nodata)) for k in keys):
        raise ValueError(
            f"mapped_counts has an entry for the nodata value {nodata!r}; count only the "
            "classified pixels"
        )
    values = [mapped_counts[k] for k in keys]
    return np.asarray(keys), values


def _class_values(m, r, classes, count_keys, nodata):
    """The report's classes, in order, as a 1-D array."""
    found = [m, r] if count_keys is None else [m, r, count_keys]
    if classes is None:
        return np.unique(np.concatenate(found))
    wanted = np.asarray(list(classes) if not isinstance(classes, np.ndarray) else classes)
    if wanted.ndim != 1 or wanted.size == 0 or wanted.dtype.kind not in _KINDS:
        raise ValueError(f"classes must be a non-empty list of class values, got {classes!r}")
    _same_kind(wanted, "classes", m)
    if np.unique(wanted).size != wanted.size:
        raise ValueError(f"classes lists a value more than once: {wanted.tolist()}")
    if nodata is not None and any(v == nodata for v in wanted.tolist()):
        raise ValueError(f"classes holds the nodata value {nodata!r}; leave it out")
    for name, values in zip(("map_values", "reference_values", "mapped_counts"), found):
        missing = np.setdiff1d(values, wanted)
        if missing.size:
            raise ValueError(
                f"{name} holds class value(s) {missing[:6].tolist()} that are not in classes="
                f"{wanted.tolist()}; add them to classes (or drop those samples)"
            )
    return wanted


def _index(class_values, values):
    sorter = np.argsort(class_values, kind="stable")
    pos = np.searchsorted(class_values[sorter], values)
    return sorter[pos]


def _names(names, classes):
    if names is None:
        return tuple(str(c) for c in classes)
    if isinstance(names, Mapping):
        unknown = [k for k in names if k not in classes]
        if unknown:
            raise ValueError(
                f"names has entries for {unknown[:6]!r}, which are not classes of the report "
                f"{list(classes)!r}; key names by class value"
            )
        return tuple(str(names.get(c, c)) for c in classes)
    if isinstance(names, str) or len(names) != len(classes):
        raise ValueError(
            f"names must be a mapping {{class value: name}} or one name per class "
            f"({len(classes)}: {list(classes)!r}), got {names!r}"
        )
    return tuple(str(n) for n in names)


def _mapped_pixels(mapped_counts, keys, key_counts, class_values):
    """The map's pixel count per report class, as float64 (validated)."""
    if keys is not None:
        pixels = np.zeros(class_values.size, dtype=np.float64)
        where = _index(class_values, keys)
        try:
            pixels[where] = np.asarray(key_counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"mapped_counts values must be pixel counts (numbers), got {key_counts[:6]!r}"
            ) from None
    else:
        try:
            pixels = np.asarray(mapped_counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                "mapped_counts must be a mapping {class value: pixels} or one count per class "
                "of classes=, in that order"
            ) from None
        if pixels.shape != (class_values.size,):
            raise ValueError(
                f"mapped_counts has shape {pixels.shape} but there are {class_values.size} "
                f"classes {class_values.tolist()}; pass one count per class, in that order"
            )
    if not np.isfinite(pixels).all() or (pixels < 0).any():
        raise ValueError(
            f"mapped_counts must be finite and non-negative pixel counts, got {pixels.tolist()}"
        )
    if pixels.sum() <= 0:
        raise ValueError("mapped_counts are all zero; pass the map's pixel count of every class")
    return pixels


def _frozen(a):
    a = np.array(a, dtype=np.float64)
    a.flags.writeable = False
    return a


def _estimate(value, variance, z, scale=1.0):
    value = np.asarray(value, dtype=np.float64) * scale
    se = np.sqrt(np.asarray(variance, dtype=np.float64)) * scale
    parts = (value, se, value - z * se, value + z * se)
    if value.ndim == 0:
        return Estimate(*(float(p) for p in parts))
    return Estimate(*(_frozen(p) for p in parts))


def _confidence_z(confidence):
    try:
        level = float(confidence)
    except (TypeError, ValueError):
        raise TypeError(f"confidence must be a number in (0, 1), got {confidence!r}") from None
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence!r}")
    return level, NormalDist().inv_cdf(0.5 + level / 2.0)


def _notes(counts, pixels, classes):
    """Plain-language warnings about classes missing on one side and thin strata."""
    notes = []
    rows, cols = counts.sum(axis=1), counts.sum(axis=0)
    for i, c in enumerate(classes):
        mapped = None if pixels is None else pixels[i]
        if rows[i] == 0 and mapped:
            notes.append(
                f"map class {c!r} covers {mapped:,.0f} pixels but no sample falls in it: "
                "its stratum cannot be estimated, so the weighted overall accuracy, "
                "producer's accuracies and areas are NaN; add samples in that class"
            )
        elif rows[i] == 0 and cols[i] > 0:
            where = "never mapped" if mapped == 0 else "in no sample's map value"
            notes.append(
                f"class {c!r} is in the reference but {where}: its user's accuracy is NaN "
                "and its producer's accuracy 0"
            )
        elif rows[i] == 0:
            notes.append(
                f"class {c!r} is in no sample, mapped or reference: its accuracies are NaN"
            )
        elif cols[i] == 0:
            notes.append(
                f"no reference sample is class {c!r}: its producer's accuracy is NaN"
                + ("" if pixels is None else " and its estimated area 0")
            )
        if rows[i] == 1 and pixels is not None:
            notes.append(
                f"map class {c!r} has a single sample: no variance can be estimated for it, "
                "so the standard errors it enters are NaN"
            )
    return tuple(notes)


def _stratified(counts, pixels, pixel_area, confidence, z):
    weights = pixels / pixels.sum()
    est = _estimators.stratified_measures(counts, weights)
    total = float(pixels.sum())
    hectares = None
    mapped_ha = None
    if pixel_area is not None:
        hectares = _estimate(est.area, est.area_var, z, scale=total * pixel_area / 1e4)
        mapped_ha = _frozen(pixels * pixel_area / 1e4)
    return StratifiedEstimates(
        confidence=confidence,
        z=z,
        mapped_pixels=_frozen(pixels),
        weights=_frozen(weights),
        proportions=_frozen(est.proportions),
        overall_accuracy=_estimate(est.overall_accuracy, est.overall_accuracy_var, z),
        users_accuracy=_estimate(est.users_accuracy, est.users_accuracy_var, z),
        producers_accuracy=_estimate(est.producers_accuracy, est.producers_accuracy_var, z),
        area_proportion=_estimate(est.area, est.area_var, z),
        area_pixels=_estimate(est.area, est.area_var, z, scale=total),
        area_hectares=hectares,
        mapped_hectares=mapped_ha,
        pixel_area=pixel_area,
    )


def _pixel_area(pixel_area, mapped_counts):
    if pixel_area is None:
        return None
    if mapped_counts is None:
        raise ValueError(
            "pixel_area gives areas in hectares from mapped_counts; pass mapped_counts too"
        )
    try:
        area = float(pixel_area)
    except (TypeError, ValueError):
        raise TypeError(
            f"pixel_area must be the area of one pixel in square metres, got {pixel_area!r}"
        ) from None
    if not (math.isfinite(area) and area > 0):
        raise ValueError(
            f"pixel_area must be a positive area in square metres (e.g. 900 for 30 m pixels), "
            f"got {pixel_area!r}"
        )
    return area


def accuracy_report(
    map_values,
    reference_values,
    *,
    mapped_counts=None,
    pixel_area=None,
    nodata=None,
    classes=None,
    names=None,
    confidence=0.95,
):
    """Accuracy of a classified map at reference samples, with area estimates.

    Parameters
    ----------
    map_values : array_like
        The map's class value at each reference sample (label values such as 1, 2,
        5, not indices), any shape.
    reference_values : array_like
        The true class of each sample, same shape and kind (numbers or text) as
        ``map_values``. Unlabelled samples must be dropped first (NaN is an error).
    mapped_counts : mapping or array_like, optional
        The map's pixel count per class (nodata excluded), as ``{class value:
        pixels}`` (classes absent count 0), or one count per class of ``classes``,
        in that order. Gives the stratum weights ``W_i`` = count of class i / total
        and turns on the stratified estimates; without it ``stratified`` is None and
        only the sample figures are reported.
    pixel_area : float, optional
        Area of one pixel in square metres (900 for 30 m pixels): areas are also
        reported in hectares. Needs ``mapped_counts``.
    nodata : scalar, optional
        The map's nodata value (NaN allowed). Samples on it are not in the matrix;
        their number is ``n_in_nodata`` (and a note).
    classes : sequence, optional
        The classes of the report, in order; must hold every value met. By default
        the sorted union of the map samples, the reference samples and the keys of
        ``mapped_counts``.
    names : mapping or sequence of str, optional
        Display names, ``{class value: name}`` or one per class of the report.
    confidence : float, default 0.95
        Level of the confidence intervals, ``estimate -+ z se`` with ``z`` the normal
        quantile (1.95996 at 0.95).

    Returns
    -------
    AccuracyReport
        ``classes``, ``confusion_matrix`` (rows = map, columns = reference, sample
        counts; square over the union of classes, so a class met only in the
        reference has an empty row, one met only in the map an empty column),
        ``overall_accuracy``, ``kappa``, per-class ``users_accuracy``,
        ``producers_accuracy`` and ``f1`` (of the samples, unweighted; NaN where a
        row or column is empty), ``stratified`` (:class:`StratifiedEstimates`),
        ``n_in_nodata`` and ``notes``. Print it for a table; ``to_dict()`` for JSON;
        ``matrix_csv()`` for the matrix.

    Raises
    ------
    TypeError
        Values that are not class values, map and reference of different kinds.
    ValueError
        Shapes that differ, NaN outside ``nodata``, no sample left, values outside
        ``classes``, samples in a map class that ``mapped_counts`` says has no pixel,
        negative counts, a bad ``pixel_area`` or ``confidence``.

    Notes
    -----
    The stratified estimators assume the samples were drawn at random within each
    map class (stratified random sampling with the map classes as strata, any
    allocation; a simple random sample is post-stratified the same way). With
    ``q_ij = n_ij / n_i.`` and ``p_ij = W_i q_ij`` (Olofsson et al. 2014)::

        overall accuracy  O    = sum_j p_jj    V(O)    = sum_i W_i^2 U_i (1 - U_i) / (n_i. - 1)
        user's accuracy   U_i  = p_ii / p_i.   V(U_i)  = U_i (1 - U_i) / (n_i. - 1)
        area proportion   p_.j = sum_i p_ij    V(p_.j) = sum_i W_i^2 q_ij (1 - q_ij) / (n_i. - 1)
        producer's acc.   P_j  = p_jj / p_.j
        V(P_j) = [W_j^2 (1 - P_j)^2 U_j (1 - U_j) / (n_j. - 1)
                  + P_j^2 sum_{i != j} W_i^2 q_ij (1 - q_ij) / (n_i. - 1)] / p_.j^2

    (the paper's eqs. 5-7 and 10; it writes ``V(P_j)`` with pixel counts, which
    cancel). Areas are ``p_.j`` times the total of ``mapped_counts``, their
    standard errors likewise. Intervals are ``estimate -+ z SE``, not clipped to
    [0, 1]. A stratum with pixels but no sample makes the estimates it enters NaN;
    a stratum with one sample has no variance (NaN standard errors).

    Examples
    --------
    Forty reference points on a map of three classes (1 forest, 2 crops, 5 water)
    whose 100,000 pixels of 30 m are 60 % forest, 30 % crops and 10 % water:

    >>> from pixgmm.metrics import accuracy_report
    >>> mapped = [1] * 17 + [2] * 13 + [5] * 10
    >>> ref = [1] * 14 + [2] * 3 + [1] * 2 + [2] * 11 + [5] * 10
    >>> report = accuracy_report(mapped, ref, mapped_counts={1: 60_000, 2: 30_000, 5: 10_000},
    ...                          pixel_area=900.0)
    >>> report.classes
    (1, 2, 5)
    >>> report.confusion_matrix.tolist()
    [[14, 3, 0], [2, 11, 0], [0, 0, 10]]
    >>> round(report.overall_accuracy, 3), round(report.kappa, 3)
    (0.875, 0.809)

    The same weighted by the mapped areas, with 95 % intervals:

    >>> s = report.stratified
    >>> round(s.overall_accuracy.value, 3), round(s.overall_accuracy.margin, 3)
    (0.848, 0.128)
    >>> s.mapped_hectares.tolist()
    [5400.0, 2700.0, 900.0]
    >>> [round(a) for a in s.area_hectares.value], [round(m) for m in s.area_hectares.margin]
    ([4862, 3238, 900], [1149, 1149, 0])
    """
    m, r = _samples(map_values, reference_values)
    in_nodata = _nodata_mask(m, nodata)
    n_in_nodata = int(np.count_nonzero(in_nodata))
    if n_in_nodata:
        m, r = m[~in_nodata], r[~in_nodata]
        if m.size == 0:
            raise ValueError(
                f"all {n_in_nodata} reference samples fall on map nodata ({nodata!r}); "
                "check that the map and the reference cover the same ground"
            )
    _check_no_nan(m, "map_values", "pass nodata=float('nan') if NaN marks nodata in the map")
    _check_no_nan(r, "reference_values", "drop the unlabelled samples first")
    keys = key_counts = None
    if isinstance(mapped_counts, Mapping):
        keys, key_counts = _counts_dict(mapped_counts, nodata, m)
    elif mapped_counts is not None and classes is None:
        raise ValueError(
            "mapped_counts as a list needs classes= to say which class each count is for; "
            "or pass a mapping {class value: pixels}"
        )
    area = _pixel_area(pixel_area, mapped_counts)
    level, z = _confidence_z(confidence)

    class_values = _class_values(m, r, classes, keys, nodata)
    k = class_values.size
    counts = _estimators.confusion_counts(_index(class_values, m), _index(class_values, r), k)
    counts.flags.writeable = False
    classes_out = tuple(v.item() for v in class_values)
    sample = _estimators.sample_measures(counts)

    pixels = None
    stratified = None
    if mapped_counts is not None:
        pixels = _mapped_pixels(mapped_counts, keys, key_counts, class_values)
        unmapped = (counts.sum(axis=1) > 0) & (pixels == 0)
        if unmapped.any():
            bad = [classes_out[i] for i in np.flatnonzero(unmapped)]
            raise ValueError(
                f"samples fall in map class(es) {bad[:6]!r}, but mapped_counts gives them no "
                "pixel; count the map's pixels of every class (e.g. numpy.unique(map, "
                "return_counts=True))"
            )
        stratified = _stratified(counts, pixels, area, level, z)
    notes = _notes(counts, pixels, classes_out)
    if n_in_nodata:
        notes = (
            f"{n_in_nodata} reference sample(s) fall on map nodata and are not counted",
            *notes,
        )
    return AccuracyReport(
        classes=classes_out,
        names=_names(names, classes_out),
        confusion_matrix=counts,
        n_samples=int(counts.sum()),
        n_in_nodata=n_in_nodata,
        nodata=nodata,
        overall_accuracy=sample.overall_accuracy,
        kappa=sample.kappa,
        users_accuracy=_frozen(sample.users_accuracy),
        producers_accuracy=_frozen(sample.producers_accuracy),
        f1=_frozen(sample.f1),
        stratified=stratified,
        notes=notes,
    )
