"""``pixgmm fit``: a mixture JSON from images (optionally with masks) or a table of labelled pixels."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .options import DATA_HELP, data_options, fail, pixel_options, resolve_scale

COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")


def _target(out, label, many):
    """The model file for ``label``: ``{label}`` in --out replaced, or ``.LABEL`` before the suffix."""
    text = str(out)
    if "{label}" in text:
        return Path(text.replace("{label}", str(label)))
    if not many:
        return Path(out)
    out = Path(out)
    return out.with_name(f"{out.stem}.{label}{out.suffix or '.json'}")


def _reg_covar(value, integer):
    if value == "auto":
        return 1.0 if integer else 1e-6
    try:
        v = float(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a number; give e.g. 1e-6, or auto", param_hint="--reg-covar"
        ) from None
    if not v >= 0:
        raise click.BadParameter(f"must be >= 0, got {value}", param_hint="--reg-covar")
    return v


@click.command(epilog=DATA_HELP)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--out",
    "-o",
    required=True,
    metavar="MODEL.json",
    help="The model file to write. With several classes one file per class: "
    "MODEL.LABEL.json, or put {label} in the name.",
)
@click.option(
    "-k",
    "--components",
    default=8,
    show_default=True,
    type=click.IntRange(min=1),
    help="Gaussian components per model.",
)
@click.option(
    "--covariance",
    type=click.Choice(COVARIANCE_TYPES),
    default="diag",
    show_default=True,
    help="Covariance type of every component.",
)
@click.option(
    "--class",
    "classes",
    multiple=True,
    metavar="LABEL",
    help="Fit the pixels with this label (repeat for several classes, one model each). "
    "Default: with a table, every label; with masks, the pixels whose mask is not 0.",
)
@click.option(
    "--per-class", is_flag=True, help="One model per label present (MODEL.LABEL.json each)."
)
@click.option(
    "--max-samples",
    default=None,
    type=click.IntRange(min=1),
    help="At most this many pixels per model, drawn at random. Default: every pixel (8-bit "
    "colours are fitted exactly through their colour histogram).",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**32 - 1),
    help="Seed of the subsample and of the k-means initialisation (same seed, same model).",
)
@click.option(
    "--reg-covar",
    default="auto",
    show_default=True,
    help="Added to every variance. auto: 1.0 for whole-number pixels (8/16-bit, so a "
    "component cannot collapse onto one colour), 1e-6 otherwise.",
)
@data_options
@pixel_options
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace model files that already exist (without it they are kept and skipped).",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def fit(
    inputs,
    out,
    components,
    covariance,
    classes,
    per_class,
    max_samples,
    seed,
    reg_covar,
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
    """Fit a Gaussian mixture colour model (pixgmm's weighted EM) and write it as JSON.

    From images: all their pixels, or with --masks only the pixels whose mask
    is not 0 (--class V: mask value V; --per-class: one model per mask value).
    From a table of labelled pixels (--pixels): one model per label, or the
    labels given with --class. The model records its channel order (RGB for
    images, --columns for a table, where it is required), so it applies to
    images in any order. Image pixels are brought to the 0..255 scale by
    --scale, as every command does; table values are used as written, and
    table rows with a NaN are left out and counted per class (a class left
    with no rows is an error). A model file that exists is kept and skipped,
    so rerunning an interrupted fit writes only the missing ones.

    \b
    Examples:
      pixgmm fit --pixels Skin_NonSkin.txt --columns BGR -k 16 -o uci.json
                                          # uci.1.json (skin), uci.2.json (non-skin)
      pixgmm fit hands/*.jpg --masks hand-masks/ -o skin.json
      pixgmm fit sky.jpg -k 3 -o sky.json
    """
    import json

    from . import data as _data

    if per_class and classes:
        raise click.UsageError("give --class LABEL or --per-class, not both")
    scale = resolve_scale(scale, to_8bit)
    try:
        _data.check_sources(inputs, pixels_file, columns, masks)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    start = time.perf_counter()
    try:
        data = _data.load(inputs, pixels_file, columns, label_column, masks, scale, max_pixels)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except _data.DataError as exc:
        fail(str(exc), as_json)
    reg = _reg_covar(reg_covar, data.integer)

    if data.labels is None:
        if classes or per_class:
            raise click.UsageError(
                "--class and --per-class need labels: give --masks with images, or a table "
                "with a label column"
            )
        groups = {None: data.pixels}
    else:
        try:
            if classes:
                wanted = [_data.parse_label(c, data.labels) for c in classes]
            elif per_class or pixels_file is not None:
                # labels of rows left out for a NaN count too: a class they empty is named
                present = data.labels if data.dropped is None else [data.labels, data.dropped]
                wanted = [_data.class_label(v) for v in _unique(present)]
            else:  # masks without --class: the pixels inside the mask
                wanted = ["mask"]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--class") from None
        groups = {}
        for c in wanted:
            sel = data.labels != 0 if c == "mask" else data.labels == c
            groups[c] = data.pixels[sel]
        if "mask" in groups and groups["mask"].shape[0] == 0:
            fail(
                f"{data.source}: every mask is all 0, so no pixel is selected; the pixels "
                "under a mask's non-zero values are fitted (check the --masks folder)",
                as_json,
            )
    many = len(groups) > 1
    targets = {c: _target(out, c, many) for c in groups}
    if len(set(targets.values())) != len(targets):
        raise click.BadParameter("two classes would share one file name", param_hint="--out")

    from ..fitting import fit as fit_mixture
    from . import writers as _writers

    channels = data.channels
    results = []
    status = 0
    for c, px in groups.items():
        what = "all pixels" if c is None else f"class {c}"
        dropped = data.dropped_count(None if c in (None, "mask") else c)
        entry = {"class": c, "model": str(targets[c]), "pixels": int(px.shape[0])}
        if data.dropped is not None:
            entry["dropped_nan"] = dropped
        t0 = time.perf_counter()
        if not overwrite and targets[c].exists():
            entry["status"] = "skipped"
            entry["seconds"] = 0.0
            results.append(entry)
            if not quiet and not as_json:
                click.echo(f"{what}: kept existing {targets[c]} (skipped; --overwrite replaces)")
            continue
        if px.shape[0] == 0:
            entry["status"] = "failed"
            entry["error"] = (
                f"{what}: all {dropped:,} row(s) have a NaN pixel value, so nothing is left to fit"
                if dropped
                else f"{what}: no pixels"
            )
            entry["seconds"] = 0.0
            results.append(entry)
            status = 1
            click.echo(f"pixgmm: error: {data.source}: {entry['error']}", err=True)
            continue
        if dropped and not quiet:
            click.echo(
                f"{data.source}: {what}: {dropped:,} row(s) with a NaN pixel value left out",
                err=True,
            )
        if not quiet and sys.stderr.isatty():  # a fit can take a while: say what is running
            click.echo(f"fitting {what} ({px.shape[0]:,} pixels) ...", err=True)
        try:
            model = fit_mixture(
                px,
                components,
                covariance,
                max_samples=max_samples,
                random_state=seed,
                reg_covar=reg,
                channels=channels,
            )
            targets[c].parent.mkdir(parents=True, exist_ok=True)
            with _writers.atomic_target(targets[c], overwrite) as tmp:
                model.save(tmp)
            entry["status"] = "ok"
        except (ValueError, OSError, _writers.OutputExists, _writers.OutputError) as exc:
            entry["status"] = "failed"
            entry["error"] = f"{what}: {exc}"
            status = 1
            click.echo(f"pixgmm: error: {data.source}: {what}: {exc}", err=True)
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        results.append(entry)
        if entry["status"] == "ok" and not quiet and not as_json:
            used = px.shape[0] if max_samples is None else min(px.shape[0], max_samples)
            notes = "".join(f"; {n}" for n in data.notes)
            click.echo(
                f"{what}: {components} components ({covariance}) from {used:,} of "
                f"{px.shape[0]:,} pixels -> {targets[c]} ({entry['seconds']:.2f} s{notes})"
            )
    if as_json:
        summary = {
            "source": data.source,
            "channels": channels,
            "scale": "; ".join(data.notes) if pixels_file is None else "table values as written",
            "components": components,
            "covariance": covariance,
            "reg_covar": reg,
            "seconds": round(time.perf_counter() - start, 4),
            "ok": sum(r["status"] == "ok" for r in results),
            "skipped": sum(r["status"] == "skipped" for r in results),
            "failed": sum(r["status"] == "failed" for r in results),
            "models": results,
        }
        click.echo(json.dumps(summary, indent=1))
    sys.exit(status)


def _unique(labels):
    import numpy as np

    if isinstance(labels, list):
        labels = np.concatenate([np.asarray(part) for part in labels])
    return np.unique(labels)
