"""The work behind ``pixgmm fit``: count images into per-class histograms, fit each class, report.

Images are read one file at a time and counted into a
:class:`pixgmm.fitting.ClassHistograms` (a colour histogram per class for 8-bit
pixels, so memory does not grow with the number of images); each class is then
fitted by pixgmm's EM, with a progress bar over its iterations, and its
:class:`~pixgmm.fitting.FitResult` turned into the ``--json`` entry and the
``training`` block of the model file.
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass, field

import click
import numpy as np

from . import data as _data
from .options import fail


def progress_enabled(progress, quiet):
    """``--progress`` forces the bars, ``--no-progress`` hides them; else a terminal without --quiet."""
    if progress is not None:
        return progress
    return not quiet and sys.stderr.isatty()


class Progress:
    """tqdm bars on stderr: one over the images counted, one per class over its EM iterations."""

    def __init__(self, enabled):
        self.enabled = enabled

    def images(self, total):
        """A bar over ``total`` image files (None when disabled)."""
        if not self.enabled:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc="counting", unit="image", file=sys.stderr)

    def em(self, desc, counts, n_init, max_iter):
        """``(bar, callback)``: the bar of one class's EM and the fit's ``callback(n_iter, lb)``.

        Every EM run (each component count of a range, each of ``n_init``
        starts) restarts the bar; its postfix shows the component count, the
        start and the current mean log-likelihood per pixel.
        """
        if not self.enabled:
            return None, None
        from tqdm import tqdm

        bar = tqdm(total=max_iter, desc=desc, unit="iter", file=sys.stderr)
        state = {"run": -1}

        def callback(n_iter, lower_bound):
            if n_iter == 1:
                state["run"] += 1
                if state["run"] > 0:
                    bar.reset(total=max_iter)
            run = state["run"]
            k = counts[min(run // n_init, len(counts) - 1)]
            start = f" start {run % n_init + 1}/{n_init}" if n_init > 1 else ""
            bar.set_postfix_str(f"K={k}{start} loglik={lower_bound:.5g}", refresh=False)
            bar.update(1)

        return bar, callback


def _close(bar):
    if bar is not None:
        bar.close()


# -- counting images ------------------------------------------------------------------


@dataclass
class Counted:
    """What counting the images gave: the accumulator and what is known of the pixels."""

    acc: object  # pixgmm.fitting.ClassHistograms
    source: str
    notes: list = field(default_factory=list)
    present: set = field(default_factory=set)  # mask values seen (mode "labels")
    integer: bool = True  # every pixel value a whole number (for --reg-covar auto)
    n_images: int = 0
    n_pages: int = 0


def _whole(page):
    return page.dtype.kind in "ui" or bool(np.all(page == np.round(page)))


def _mask_values(mask):
    """The distinct values of a label mask (O(N) for unsigned masks)."""
    if mask.dtype.kind == "u" and mask.dtype.itemsize <= 2:
        return np.flatnonzero(np.bincount(mask.reshape(-1))).tolist()
    return [v.item() for v in np.unique(mask)]


def count_images(plan, mode, classes, scale, max_pixels, progress):
    """Read the files of ``plan`` one at a time into a :class:`ClassHistograms`.

    Parameters
    ----------
    plan : list of (Path, Path or None)
        From :func:`pixgmm.cli.data.plan_images`.
    mode : {"all", "mask", "labels"}
        "all": every pixel (class True); "mask": the pixels whose mask is not 0
        (class True); "labels": the mask values are the classes.
    classes : list or None
        The classes to count (None: every mask value seen).

    Raises
    ------
    pixgmm.cli.data.DataError
        A file that cannot be read or whose mask does not fit it (naming it).
    """
    from ..fitting import ClassHistograms

    out = Counted(ClassHistograms(classes), "")
    names = []
    bar = progress.images(len(plan))
    try:
        for item in _data.iter_images(plan, scale, max_pixels):
            names.append(str(item.path))
            _add_file(out, item, mode)
            del item  # no reference to this file's pixels while the next is read
            if bar is not None:
                n = sum(map(out.acc.n_pixels, out.acc.classes))
                bar.set_postfix_str(f"{n:,} px", refresh=False)
                bar.update(1)
    finally:
        _close(bar)
    out.source = names[0] if len(names) == 1 else f"{len(names)} images"
    return out


def _add_file(out, item, mode):
    """Count the pages of one :class:`~pixgmm.cli.data.ImageFile` into ``out.acc``."""
    out.notes.extend(n for n in item.notes if n not in out.notes)
    masks = item.masks if item.masks is not None else [None] * len(item.pages)
    for page, mask in zip(item.pages, masks):
        if mode == "all":
            labels = np.broadcast_to(True, page.shape[:-1])
        elif mode == "mask":
            labels = mask != 0
        else:
            labels = mask
            out.present.update(_mask_values(mask))
        try:
            out.acc.add(page, labels, name=str(item.path), labels_name=str(item.mask_path))
        except ValueError as exc:
            raise _data.DataError(f"{item.path}: {exc}") from None
        out.integer = out.integer and _whole(page)
        out.n_pages += 1
    out.n_images += 1


# -- one class's fit ------------------------------------------------------------------


def run_fit(fit_call, progress, desc, counts, n_init, max_iter):
    """``(FitResult, [warning text])``: ``fit_call(callback)`` with its bar and warnings caught.

    The fit's :class:`~pixgmm.fitting.ConvergenceWarning` and
    :class:`~pixgmm.fitting.EmptyComponentWarning` are returned, to be reported
    on stderr and in the JSON summary; other warnings are shown as usual.
    """
    from ..fitting import ConvergenceWarning, EmptyComponentWarning

    bar, callback = progress.em(desc, counts, n_init, max_iter)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fit_call(callback)
    finally:
        _close(bar)
    messages = []
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            messages.append(
                f"{desc}: the EM did not converge in --max-iter {max_iter} iterations (the mean "
                "log-likelihood still changed by more than --tol); the model is written, but "
                "pass a larger --max-iter or --tol"
            )
        elif issubclass(w.category, EmptyComponentWarning):
            messages.append(f"{desc}: {w.message}")
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result, messages


def _number(x):
    return float(x)


def _candidate(result, requested):
    return {
        "requested": int(requested),
        "n_components": int(result.n_components),
        "converged": bool(result.converged),
        "n_iter": int(result.n_iter),
        "log_likelihood": _number(result.log_likelihood),
        "bic": _number(result.bic),
        "aic": _number(result.aic),
    }


def diagnostics(result, counts, n_pixels, n_nan, reg_covar, criterion):
    """The fit's diagnostics as JSON values: the ``training`` block of the model file.

    ``n_pixels`` is the class's training pixels (NaN pixels excluded, before
    any ``--max-samples`` subsample: the count behind ``--prior counts``).
    """
    tried = result.candidates or (result,)
    block = {
        "n_pixels": int(n_pixels),
        "n_samples": _number(result.n_samples),
        "n_nan": int(n_nan),
        "n_points": int(result.n_points),
        "compression": result.compression,
        "init": result.init,
        "reg_covar": float(reg_covar),
        "converged": bool(result.converged),
        "n_iter": int(result.n_iter),
        "log_likelihood": _number(result.log_likelihood),
        "bic": _number(result.bic),
        "aic": _number(result.aic),
        "criterion": criterion,
        "candidates": [_candidate(r, k) for r, k in zip(tried, counts)],
    }
    return block


def describe(what, covariance, block, counts, n_components, tol):
    """The line printed for a fitted class (without the target and time)."""
    chosen = f"K={n_components}"
    if len(counts) > 1:
        chosen += f" by {block['criterion'].upper()} of {_counts_text(counts)}"
    unit = {"histogram": "colours", "unique": "distinct values", "none": "points"}[
        block["compression"]
    ]
    fitted = (
        int(block["n_samples"]) if float(block["n_samples"]).is_integer() else block["n_samples"]
    )
    sample = "" if fitted == block["n_pixels"] else f" (a sample of {fitted:,})"
    if block["converged"]:
        state = f"converged in {block['n_iter']} iterations"
    elif tol == 0:
        state = f"{block['n_iter']} iterations (--tol 0)"
    else:
        state = f"NOT converged after {block['n_iter']} iterations"
    return (
        f"{what}: {chosen} ({covariance}) from {block['n_pixels']:,} pixels{sample}, "
        f"{block['n_points']:,} {unit}, {state}, mean log-likelihood "
        f"{block['log_likelihood']:.4f}"
    )


def _counts_text(counts):
    """``2..16`` or ``2..16 step 2`` (``-k`` ranges are arithmetic)."""
    step = counts[1] - counts[0]
    return f"{counts[0]}..{counts[-1]}" + (f" step {step}" if step != 1 else "")


# -- the classes to fit -----------------------------------------------------------------


def _fit_options(settings, reg_covar, callback):
    return dict(
        init=settings["init"],
        max_iter=settings["max_iter"],
        tol=settings["tol"],
        n_init=settings["n_init"],
        reg_covar=reg_covar,
        max_samples=settings["max_samples"],
        random_state=settings["random_state"],
        criterion=settings["criterion"],
        callback=callback,
    )


def _n_components(counts):
    return counts[0] if len(counts) == 1 else counts


class TableJob:
    """The classes of a table of labelled pixels (:class:`~pixgmm.cli.data.LabelledPixels`)."""

    table = True
    n_images = None

    def __init__(self, data, groups):
        self.data = data
        self.groups = groups  # class -> pixels (N, C)
        self.keys = list(groups)
        self.source = data.source
        self.channels = data.channels
        self.integer = data.integer
        self.notes = ()

    def dropped(self, c):
        """Rows of class ``c`` left out for a NaN pixel value."""
        return self.data.dropped_count(None if c in (None, "mask") else c)

    def problem(self, c, what):
        if self.groups[c].shape[0]:
            return None
        dropped = self.dropped(c)
        if dropped:
            return (
                f"{what}: all {dropped:,} row(s) have a NaN pixel value, so nothing is left to fit"
            )
        return f"{what}: no pixels"

    def fit(self, c, counts, covariance, reg_covar, settings, callback):
        from ..fitting import fit_em

        return fit_em(
            self.groups[c],
            _n_components(counts),
            covariance,
            channels=self.channels,
            **_fit_options(settings, reg_covar, callback),
        )

    def n_pixels(self, c, result):
        return self.groups[c].shape[0] - result.n_nan


class ImageJob:
    """The classes counted from images (:func:`count_images`); ``counted`` None: nothing to fit."""

    table = False
    channels = "RGB"

    def __init__(self, keys, mode, counted, n_images, scale="auto"):
        self.keys = list(keys)
        # the value scale recorded in the models: --scale none keeps raw values
        self.scale = "raw" if scale == "none" else "0..255"
        self.mode = mode
        self.counted = counted
        self.n_images = n_images
        self.source = counted.source if counted is not None else f"{n_images} image(s)"
        self.integer = counted.integer if counted is not None else True
        self.notes = tuple(counted.notes) if counted is not None else ()

    def _key(self, c):
        return True if self.mode in ("all", "mask") else c

    def dropped(self, c):
        return 0

    def problem(self, c, what):
        if self.counted.acc.n_pixels(self._key(c)):
            return None
        return f"{what}: no pixels"

    def fit(self, c, counts, covariance, reg_covar, settings, callback):
        key = self._key(c)
        results = self.counted.acc.fit_em(
            _n_components(counts),
            covariance,
            classes=[key],
            channels=self.channels,
            **_fit_options(settings, reg_covar, callback),
        )
        return results[key]

    def n_pixels(self, c, result):
        return self.counted.acc.n_pixels(self._key(c)) - result.n_nan


def table_job(pixels_file, columns, label_column, classes, per_class, as_json):
    """The classes of a table of labelled pixels (``--pixels``), read into memory."""
    try:
        data = _data.read_table(pixels_file, columns, label_column)
    except _data.DataError as exc:
        fail(str(exc), as_json)
    if data.labels is None:
        if classes or per_class:
            raise click.UsageError(
                "--class and --per-class need labels: give a table with a label column"
            )
        return TableJob(data, {None: data.pixels})
    try:
        if classes:
            wanted = [_data.parse_label(c, data.labels) for c in classes]
        else:
            # labels of rows left out for a NaN count too: a class they empty is named
            present = data.labels if data.dropped is None else [data.labels, data.dropped]
            if isinstance(present, list):
                present = np.concatenate([np.asarray(part) for part in present])
            wanted = [_data.class_label(v) for v in np.unique(present)]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--class") from None
    return TableJob(data, {c: data.pixels[data.labels == c] for c in wanted})


def image_job(inputs, masks, mode, keys, target, overwrite, scale, max_pixels, bars, as_json):
    """The classes of images (and masks), counted one file at a time into class histograms.

    ``mode`` as :func:`count_images`; ``keys`` the classes to fit (None: every
    mask value); ``target(class, many)`` a class's model file. Classes whose
    model file exists (without --overwrite) are not counted; when every one
    exists, no image is read.
    """
    try:
        plan = _data.plan_images(inputs, masks)
    except _data.DataError as exc:
        fail(str(exc), as_json)
    todo = None
    if keys is not None:
        many = len(keys) > 1
        todo = [c for c in keys if overwrite or not target(c, many).exists()]
        if not todo:
            return ImageJob(keys, mode, None, len(plan), scale)
    try:
        counted = count_images(
            plan, mode, todo if mode == "labels" else [True], scale, max_pixels, bars
        )
    except _data.DataError as exc:
        fail(str(exc), as_json)
    if mode == "labels" and keys is None:
        keys = counted.acc.classes
    elif mode == "labels":
        missing = [c for c in todo if counted.acc.n_pixels(c) == 0]
        if missing:
            present = ", ".join(map(str, sorted(counted.present))) or "none"
            raise click.BadParameter(
                f"class {missing[0]} is not in the masks; mask values present: {present}",
                param_hint="--class",
            )
    elif mode == "mask" and counted.acc.n_pixels(True) == 0:
        fail(
            f"{counted.source}: every mask is all 0, so no pixel is selected; the pixels "
            "under a mask's non-zero values are fitted (check the --masks folder)",
            as_json,
        )
    return ImageJob(keys, mode, counted, len(plan), scale)
