"""``pixgmm evaluate``: ROC table and plot of detectors on labelled pixels."""

from __future__ import annotations

from pathlib import Path

import click

from .options import DATA_HELP, data_options, fail, load_model, pixel_options, resolve_scale

BUILTIN_DETECTOR = "jones-rehg"


def parse_detector(spec):
    """``(name, [model specs])`` from ``jones-rehg``, ``[NAME=]A.json[,B.json]``."""
    spec = spec.strip()
    if spec == BUILTIN_DETECTOR:
        return spec, ["jones-rehg-skin", "jones-rehg-nonskin"]
    name, sep, rest = spec.partition("=")
    if not sep:
        name, rest = None, spec
    parts = [p.strip() for p in rest.split(",")]
    if not 1 <= len(parts) <= 2 or not all(parts) or (sep and not name.strip()):
        raise click.BadParameter(
            f"{spec!r} is not a detector; give jones-rehg, NAME=SKIN.json,NONSKIN.json "
            "(score: log likelihood ratio) or NAME=MODEL.json (score: log-density)",
            param_hint="--detector",
        )
    if name is None:
        name = ",".join(Path(p).stem for p in parts)
    return name.strip(), parts


def _fprs(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a list of numbers", param_hint="--fpr") from None
    if not values or not all(0.0 <= v <= 1.0 for v in values):
        raise click.BadParameter(
            f"{text!r}: give false-positive rates in [0, 1], e.g. 0.01,0.1", param_hint="--fpr"
        )
    return values


def _scorer(name, specs):
    """A function pixels -> scores (larger = more likely positive) and the score's name."""
    models = [load_model(s, f"--detector {name}") for s in specs]
    if len(models) == 2:
        from ..skin import SkinDetector

        try:
            detector = SkinDetector(*models)
        except (TypeError, ValueError) as exc:
            raise click.BadParameter(str(exc), param_hint=f"--detector {name}") from None
        return (lambda px, ch: detector.log_ratio(px, channels=ch)), "log likelihood ratio"
    from ..evaluate import log_density

    model = models[0]
    return (lambda px, ch: log_density(px, model, channels=ch)), "log-density"


def _plot_problem(plot, overwrite):
    """Why ``--plot`` cannot be written (None when it can): checked before any computing."""
    import os
    from importlib.util import find_spec

    from ..io import atomic as _writers

    if find_spec("matplotlib") is None:
        return 'matplotlib is not installed; --plot needs it: pip install "pixgmm[plot]"'
    if not overwrite and os.path.lexists(plot):
        return f"{plot} exists (pass --overwrite to replace it)"
    folder = plot.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = _writers.temp_name(plot)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        return f"cannot write {plot}: {exc.strerror or exc}"
    return None


def _pct(v):
    return f"{100 * v:g}%"


@click.command(epilog=DATA_HELP)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--detector",
    "-d",
    "detectors",
    multiple=True,
    metavar="SPEC",
    help="jones-rehg (the built-in skin detector, the default), NAME=SKIN.json,NONSKIN.json "
    "(scored by the log likelihood ratio) or NAME=MODEL.json (scored by the log-density). "
    "Repeat to compare.",
)
@click.option(
    "--positive",
    metavar="LABEL",
    help="The label of positive pixels. Default: 1 for a table (UCI: 1 = skin), "
    "any value but 0 for masks.",
)
@click.option(
    "--fpr",
    "fpr_text",
    default="0.01,0.05,0.1",
    show_default=True,
    help="False-positive rates at which to report the true-positive rate.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="ROC.png",
    help="Write the ROC curves to this PNG (needs matplotlib).",
)
@click.option(
    "--max-fpr",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Right end of the plot's false-positive axis.",
)
@data_options
@pixel_options
@click.option("--overwrite", is_flag=True, help="Replace the plot if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors (the plot is still written).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
def evaluate(
    inputs,
    detectors,
    positive,
    fpr_text,
    plot,
    max_fpr,
    pixels_file,
    columns,
    label_column,
    masks,
    scale,
    max_pixels,
    to_8bit,
    overwrite,
    quiet,
    as_json,
):
    """ROC of skin (or any two-class) detectors on labelled pixels: AUC, TPR at given FPRs, plot.

    A pixel is called positive when its score is at least a threshold; every
    threshold gives one (false-positive rate, true-positive rate) point. The
    table gives the area under the curve and, for each --fpr, the best
    true-positive rate whose false-positive rate does not exceed it, with the
    score threshold that achieves it.

    \b
    Examples:
      pixgmm evaluate --pixels Skin_NonSkin.txt --columns BGR --plot roc.png
      pixgmm evaluate --pixels Skin_NonSkin.txt --columns BGR \\
          -d jones-rehg -d uci=uci.1.json,uci.2.json --fpr 0.05
      pixgmm evaluate photos/ --masks masks/
    """
    import json

    import numpy as np

    from ..io import atomic as _writers
    from ..metrics import auc, roc_curve, tpr_at_fpr
    from . import data as _data

    fprs = _fprs(fpr_text)
    parsed = [parse_detector(d) for d in (detectors or (BUILTIN_DETECTOR,))]
    names = [n for n, _ in parsed]
    if len(set(names)) != len(names):
        raise click.BadParameter("two detectors have the same name", param_hint="--detector")
    scale = resolve_scale(scale, to_8bit)
    try:
        _data.check_sources(inputs, pixels_file, columns, masks)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    scorers = [(name, *_scorer(name, specs)) for name, specs in parsed]
    if plot is not None:  # before any computing, as fit checks scikit-learn
        problem = _plot_problem(plot, overwrite)
        if problem is not None:
            fail(problem, as_json)
    try:
        data = _data.load(inputs, pixels_file, columns, label_column, masks, scale, max_pixels)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except _data.DataError as exc:
        fail(str(exc), as_json)
    if data.labels is None:
        raise click.UsageError("evaluate needs labels: a table with a label column, or --masks")
    if positive is not None:
        try:
            pos = _data.parse_label(positive, data.labels)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--positive") from None
        truth = data.labels == pos
    elif masks is not None:
        pos, truth = "not 0", data.labels != 0
    else:
        pos, truth = 1, data.labels == 1
    n_pos = int(truth.sum())
    if n_pos == 0 or n_pos == truth.size:
        fail(
            f"{data.source}: no {'positive' if n_pos == 0 else 'negative'} "
            f"pixels (positive label {pos}); a ROC curve needs both",
            as_json,
        )

    rows, curves = [], {}
    for name, score_fn, score_name in scorers:
        try:
            scores = np.asarray(score_fn(data.pixels, data.channels), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            fail(f"detector {name}: {exc}", as_json)
        keep = ~np.isnan(scores)
        s, t = scores[keep], truth[keep]
        curve = roc_curve(s, t)
        curves[name] = curve
        at = []
        for f in fprs:
            tpr, threshold = tpr_at_fpr(s, t, f)
            # JSON has no infinity: a threshold above every score (nothing positive) is null
            at.append(
                {"fpr": f, "tpr": tpr, "threshold": threshold if np.isfinite(threshold) else None}
            )
        rows.append(
            {
                "detector": name,
                "score": score_name,
                "auc": auc(s, t),
                "tpr_at_fpr": at,
                "dropped_nan": int((~keep).sum()),
            }
        )
    if plot is not None:
        from ..metrics import plot_roc

        plot.parent.mkdir(parents=True, exist_ok=True)
        try:
            with _writers.atomic_target(plot, overwrite) as tmp:
                plot_roc(
                    curves,
                    tmp,
                    title=f"{Path(data.source).name}: {truth.size:,} pixels",
                    max_fpr=max_fpr,
                    mark_fpr=fprs,
                )
        except (ImportError, OSError, _writers.OutputExists, _writers.OutputError) as exc:
            fail(f"{plot}: {exc}", as_json)

    if as_json:
        summary = {
            "source": data.source,
            "pixels": int(truth.size),
            "positive": n_pos,
            "negative": int(truth.size - n_pos),
            "positive_label": pos,
            "dropped_nan_rows": data.dropped_count(),
            "scale": "; ".join(data.notes) if pixels_file is None else "table values as written",
            "detectors": rows,
            "plot": None if plot is None else str(plot),
        }
        click.echo(json.dumps(summary, indent=1))
        return
    if quiet:
        return
    if data.dropped_count():
        click.echo(
            f"{data.source}: {data.dropped_count():,} row(s) with a NaN pixel value left out"
        )
    for note in data.notes:
        click.echo(f"{data.source}: {note}")
    click.echo(
        f"{data.source}: {truth.size:,} pixels, {n_pos:,} positive (label {pos}), "
        f"{truth.size - n_pos:,} negative"
    )
    width = max(8, *(len(r["detector"]) for r in rows)) + 2
    header = f"{'detector':<{width}}{'AUC':>8}" + "".join(
        f"{'TPR@FPR ' + _pct(f):>16}" for f in fprs
    )
    click.echo(header)
    for r in rows:
        line = f"{r['detector']:<{width}}{r['auc']:>8.4f}"
        line += "".join(f"{a['tpr']:>16.4f}" for a in r["tpr_at_fpr"])
        click.echo(line)
    for r in rows:
        thresholds = ", ".join(
            f"{'inf' if a['threshold'] is None else format(a['threshold'], '.4g')} "
            f"(FPR {_pct(a['fpr'])})"
            for a in r["tpr_at_fpr"]
        )
        click.echo(f"  {r['detector']}: {r['score']} thresholds {thresholds}")
        if r["dropped_nan"]:
            click.echo(f"  {r['detector']}: {r['dropped_nan']} pixel(s) with a NaN score left out")
    if plot is not None:
        click.echo(f"ROC plot -> {plot}")
