"""``pixgmm fit``: a mixture JSON from images (optionally with masks) or a table of labelled pixels."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import click

from .fittraining import TRAINING_HELP, training_options
from .options import DATA_HELP, UsageLine, data_options, pixel_options, resolve_scale

COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")
#: ``pixgmm.fitting.INIT_METHODS``, written out so that ``pixgmm --help`` imports only click
#: (tests/cli/test_cli_fit_stream.py checks that the two agree).
INIT_METHODS = ("lloyd", "kmeans", "k-means++", "random")
CRITERIA = ("bic", "aic")

FIT_HELP = """
Memory: 8-bit images are counted one at a time into a colour histogram per
class (a fixed 128 MiB per class for RGB), so any number of images fits in
the same memory; the EM then runs on the distinct colours with their counts,
which is exactly the EM on every pixel. 16-bit and float images (scaled to
0..255 floats by --scale) cannot be counted that way: the pixels of every
class fitted are kept in memory until the fit (3 float32 values per pixel;
float64 for float64 images, uint16 for 16-bit with --scale none).
"""


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
    if not (math.isfinite(v) and v >= 0):
        raise click.BadParameter(
            f"must be a finite number >= 0, got {value}", param_hint="--reg-covar"
        )
    return v


def parse_components(text):
    """``"8"`` -> ``(8,)``; ``"2:16"`` -> ``(2, ..., 16)``; ``"2:16:2"`` -> ``(2, 4, ..., 16)``.

    Both ends of a range are included. Raises :class:`click.BadParameter` with
    the reason and an example.
    """
    text = str(text).strip()
    form = "a number such as 8 or a range START:STOP[:STEP] such as 2:16 or 2:16:2"
    parts = text.split(":")
    try:
        if len(parts) > 3:
            raise ValueError
        values = [int(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not {form}", param_hint="-k/--components") from None
    if len(values) == 1:
        if values[0] < 1:
            raise click.BadParameter(
                f"{text} components: a mixture needs at least 1", param_hint="-k/--components"
            )
        return (values[0],)
    start, stop = values[0], values[1]
    step = values[2] if len(values) == 3 else 1
    if start < 1:
        raise click.BadParameter(
            f"the range {text} starts at {start}; a mixture needs at least 1 component, "
            f"e.g. {max(1, start + 1)}:{max(stop, 1)}",
            param_hint="-k/--components",
        )
    if stop < start:
        raise click.BadParameter(
            f"the range {text} goes down; give START <= STOP, e.g. {stop}:{start}",
            param_hint="-k/--components",
        )
    if step < 1:
        raise click.BadParameter(
            f"the range {text} has step {step}; the step must be >= 1", param_hint="-k/--components"
        )
    return tuple(range(start, stop + 1, step))


def _components_option(ctx, param, value):
    return parse_components(value)


def _tol_option(ctx, param, value):
    if not (math.isfinite(value) and value >= 0):
        raise click.BadParameter(f"must be a finite number >= 0, got {value}")
    return value


def _image_label(text):
    """A ``--class`` value for images: a mask value (an integer)."""
    try:
        value = int(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not a mask value; with images the classes are the masks' integer "
            "values, e.g. --class 255",
            param_hint="--class",
        ) from None
    if value < 0:
        raise click.BadParameter(f"mask values are >= 0, got {value}", param_hint="--class")
    return value


@click.command(epilog=DATA_HELP + TRAINING_HELP + FIT_HELP)
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
    default="8",
    show_default=True,
    callback=_components_option,
    metavar="K|START:STOP[:STEP]",
    help="Gaussian components per model, or a range (both ends included: 2:16 fits K = 2, "
    "3, ..., 16; 2:16:2 fits 2, 4, ..., 16): every K is fitted and the one with the lowest "
    "--criterion is kept.",
)
@click.option(
    "--criterion",
    type=click.Choice(CRITERIA),
    default="bic",
    show_default=True,
    help="How a range of -k is decided (lowest wins).",
)
@click.option(
    "--covariance",
    type=click.Choice(COVARIANCE_TYPES),
    default="diag",
    show_default=True,
    help="Covariance type of every component.",
)
@click.option(
    "--init",
    type=click.Choice(INIT_METHODS),
    default="lloyd",
    show_default=True,
    help="Start of the EM: lloyd (weighted k-means on the distinct colours, pixgmm's own), "
    "kmeans (scikit-learn's KMeans, needs pixgmm[fit]), k-means++ (seeding only), random "
    "(random responsibilities).",
)
@click.option(
    "--max-iter",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="EM iterations at most (per K and start).",
)
@click.option(
    "--tol",
    default=1e-3,
    show_default=True,
    type=float,
    callback=_tol_option,
    help="Converged when the mean log-likelihood per pixel changes by less than this "
    "(0: run exactly --max-iter iterations).",
)
@click.option(
    "--n-init",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Starts per K; the one with the highest log-likelihood is kept.",
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
    "--random-state",
    "--seed",
    "random_state",
    default=0,
    show_default=True,
    type=click.IntRange(0, 2**32 - 1),
    help="Seed of the initialisation and of any subsample (same seed, same model).",
)
@click.option(
    "--reg-covar",
    default="auto",
    show_default=True,
    help="Added to every variance. auto: 1.0 for whole-number pixels (8/16-bit, so a "
    "component cannot collapse onto one colour), 1e-6 otherwise.",
)
@data_options
@training_options
@pixel_options
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace model files that already exist (without it they are kept and skipped).",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars on stderr (over the images counted, then per class over the EM "
    "iterations with the mean log-likelihood). Default: when stderr is a terminal and not "
    "--quiet; --progress shows them anywhere (a log file), --no-progress never.",
)
@click.option("--quiet", "-q", is_flag=True, help="Print only errors and warnings.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON summary on stdout: per class its model file, pixels and the fit's "
    "diagnostics (converged, iterations, log-likelihood, BIC/AIC, every K tried).",
)
def fit(
    inputs,
    out,
    components,
    criterion,
    covariance,
    init,
    max_iter,
    tol,
    n_init,
    classes,
    per_class,
    max_samples,
    random_state,
    reg_covar,
    pixels_file,
    columns,
    label_column,
    masks,
    training,
    field,
    layer,
    bands,
    validation_fraction,
    validation_out,
    scale,
    max_pixels,
    to_8bit,
    overwrite,
    progress,
    quiet,
    as_json,
):
    """Fit a Gaussian mixture colour model (pixgmm's weighted EM) and write it as JSON.

    From images: all their pixels, or with --masks only the pixels whose mask
    is not 0 (--class V: mask value V; --per-class: one model per mask value).
    The images are read one at a time and counted per class, then one EM runs
    per class. From a table of labelled pixels (--pixels): one model per
    label, or the labels given with --class. The model records its channel
    order (RGB for images, --columns for a table, where it is required), so it
    applies to images in any order, and its training: the class's pixel count
    (for `pixgmm classify --prior counts`) and the fit's diagnostics. Image
    pixels are brought to the 0..255 scale by --scale, as every command does;
    table values are used as written, and table rows with a NaN are left out
    and counted per class (a class left with no rows is an error). A fit that
    stops at --max-iter before converging is reported (a warning, and
    "converged": false in --json). A model file that exists is kept and
    skipped, so rerunning an interrupted fit writes only the missing ones.

    \b
    From a georeferenced IMAGE and training samples (--training: polygons,
    points or a label raster): one model per class of the --field, on every
    band of the image (or --bands), named after the band descriptions.

    \b
    Examples:
      pixgmm fit --pixels Skin_NonSkin.txt --columns BGR -k 16 -o uci.json
                                          # uci.1.json (skin), uci.2.json (non-skin)
      pixgmm fit hands/*.jpg --masks hand-masks/ -k 2:16 -o skin.json --progress
      pixgmm fit sky.jpg -k 3 -o sky.json
      pixgmm fit scene.tif --training training.gpkg --field class --scale none \\
          -k 3 --covariance full --validation-fraction 0.3 -o models/{label}.json
    """
    from . import data as _data
    from . import fitclasses as _fc
    from .run import note_first_run

    if per_class and classes:
        raise click.UsageError("give --class LABEL or --per-class, not both")
    scale = resolve_scale(scale, to_8bit)
    given = [name for name, value in (("--field", field), ("--layer", layer), ("--bands", bands),
             ("--validation-fraction", validation_fraction), ("--validation-out", validation_out))
             if value is not None]  # fmt: skip
    if training is None and given:
        raise UsageLine(f"{', '.join(given)} go(es) with --training; give --training TRAINING")
    if training is not None:
        other = [name for name, value in (("--pixels", pixels_file), ("--masks", masks),
                 ("--class", classes), ("--per-class", per_class)) if value]  # fmt: skip
        if other:
            raise UsageLine(f"--training takes the classes from its samples; drop {other[0]}")
    else:
        try:
            _data.check_sources(inputs, pixels_file, columns, masks)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    if init == "kmeans":
        from .._engine.emfit import require_sklearn

        try:
            require_sklearn("--init kmeans")
        except ImportError as exc:
            raise click.BadParameter(
                str(exc).replace("init='k-means++'", "--init lloyd"), param_hint="--init"
            ) from None
    if reg_covar != "auto":
        _reg_covar(reg_covar, True)  # a bad value is an error before any image is read
    bars = _fc.Progress(_fc.progress_enabled(progress, quiet))
    note_first_run("fit", quiet or as_json)
    start = time.perf_counter()
    settings = dict(
        init=init,
        max_iter=max_iter,
        tol=tol,
        n_init=n_init,
        max_samples=max_samples,
        random_state=random_state,
        criterion=criterion,
    )
    if training is not None:
        from .fittraining import training_job

        options = dict(field=field, layer=layer, bands=bands, scale=scale,
                       validation_fraction=validation_fraction, validation_out=validation_out,
                       random_state=random_state)  # fmt: skip
        job = training_job(inputs, training, options, out, overwrite, quiet, as_json)
    elif pixels_file is not None:
        job = _fc.table_job(pixels_file, columns, label_column, classes, per_class, as_json)
    else:
        if masks is None and (classes or per_class):
            raise click.UsageError(
                "--class and --per-class need labels: give --masks with images, or a table "
                "with a label column"
            )
        if masks is None:
            mode, keys = "all", [None]
        elif classes:
            mode, keys = "labels", list(dict.fromkeys(_image_label(c) for c in classes))
        elif per_class:
            mode, keys = "labels", None  # known once counted
        else:
            mode, keys = "mask", ["mask"]
        target = lambda c, many: _target(out, c, many)  # noqa: E731
        job = _fc.image_job(
            inputs, masks, mode, keys, target, overwrite, scale, max_pixels, bars, as_json
        )
    reg = _reg_covar(reg_covar, job.integer)
    keys = job.keys
    many = len(keys) > 1
    targets = {c: _target(out, c, many) for c in keys}
    if len(set(targets.values())) != len(targets):
        raise click.BadParameter("two classes would share one file name", param_hint="--out")

    from ..io import atomic as _writers

    results = []
    status = 0
    for c in keys:
        what = "all pixels" if c is None else f"class {c}"
        entry = {"class": c, "model": str(targets[c])}
        if job.table:
            entry["dropped_nan"] = job.dropped(c)
        t0 = time.perf_counter()
        if not overwrite and targets[c].exists():
            entry.update(status="skipped", seconds=0.0)
            results.append(entry)
            if not quiet and not as_json:
                click.echo(f"{what}: kept existing {targets[c]} (skipped; --overwrite replaces)")
            continue
        problem = job.problem(c, what)
        if problem is not None:
            entry.update(status="failed", error=problem, seconds=0.0)
            results.append(entry)
            status = 1
            click.echo(f"pixgmm: error: {job.source}: {problem}", err=True)
            continue
        if job.dropped(c) and not quiet:
            click.echo(
                f"{job.source}: {what}: {job.dropped(c):,} row(s) with a NaN pixel value left out",
                err=True,
            )
        try:
            result, warned = _fc.run_fit(
                lambda cb, c=c: job.fit(c, components, covariance, reg, settings, cb),
                bars,
                what,
                components,
                n_init,
                max_iter,
            )
            n_nan = job.dropped(c) + result.n_nan
            block = _fc.diagnostics(
                result, components, job.n_pixels(c, result), n_nan, reg, criterion
            )
            if getattr(job, "scale", None) is not None:
                block["scale"] = job.scale  # the value scale of the pixels fitted
            model = result.mixture.with_training(block)
            targets[c].parent.mkdir(parents=True, exist_ok=True)
            with _writers.atomic_target(targets[c], overwrite) as tmp:
                model.save(tmp)
        except (ValueError, OSError, _writers.OutputExists, _writers.OutputError) as exc:
            entry.update(status="failed", error=f"{what}: {exc}")
            status = 1
            click.echo(f"pixgmm: error: {job.source}: {what}: {exc}", err=True)
        else:
            entry.update(status="ok", pixels=block.pop("n_pixels"))
            entry.update(n_components=result.n_components, lower_bound=result.lower_bound)
            entry.update(block, warnings=warned)
            if hasattr(job, "extra"):
                entry.update(job.extra(c))
            for message in warned:
                click.echo(f"pixgmm: warning: {job.source}: {message}", err=True)
        entry["seconds"] = round(time.perf_counter() - t0, 4)
        results.append(entry)
        if entry["status"] == "ok" and not quiet and not as_json:
            block = {**entry, "n_pixels": entry["pixels"]}
            line = _fc.describe(what, covariance, block, components, result.n_components, tol)
            notes = "".join(f"; {n}" for n in job.notes)
            click.echo(f"{line} -> {targets[c]} ({entry['seconds']:.2f} s{notes})")
    if as_json:
        import json

        summary = {
            "source": job.source,
            "images": job.n_images,
            "channels": job.channels,
            "scale": "; ".join(job.notes) if not job.table else "table values as written",
            "components": components[0] if len(components) == 1 else list(components),
            "covariance": covariance,
            **settings,
            "reg_covar": reg,
            "seconds": round(time.perf_counter() - start, 4),
            "ok": sum(r["status"] == "ok" for r in results),
            "skipped": sum(r["status"] == "skipped" for r in results),
            "failed": sum(r["status"] == "failed" for r in results),
            "models": results,
        }
        if getattr(job, "validation", None) is not None:
            summary["validation"] = job.validation
        click.echo(json.dumps(summary, indent=1))
    sys.exit(status)
