"""``pixgmm classify``: a label map and per-class probabilities from one colour model per class."""

from __future__ import annotations

import sys

import click

from .options import (
    IMAGE_HELP,
    common_options,
    float_format_option,
    load_model,
    make_options,
    model_channels,
    pixel_options,
    resolve_scale,
    split_list,
)

CLASSIFY_OUTPUTS = ("labels", "colour", "probability")
#: Label-map value of pixels no class can claim (NaN, or zero density under every model).
UNCLASSIFIED = 255


def _pairs(values, option):
    """``("LABEL=VALUE", ...)`` -> ``{LABEL: VALUE}`` in order; usage errors name the option."""
    out = {}
    for item in values:
        label, sep, value = item.partition("=")
        label, value = label.strip(), value.strip()
        if not sep or not label or not value:
            raise click.BadParameter(
                f"{item!r} is not LABEL=VALUE (e.g. skin=skin.json)", param_hint=option
            )
        if label in out:
            raise click.BadParameter(f"class {label!r} is given twice", param_hint=option)
        out[label] = value
    return out


def _count_priors(models, specs):
    """``--prior counts``: ``priors="counts"`` once every model is checked to record its count."""
    for label, model in models.items():
        training = getattr(model, "training", None)
        count = getattr(model, "n_samples", None) if training is None else training["n_pixels"]
        if not count:
            raise click.BadParameter(
                f"{label}={specs[label]} records no training-pixel count (only model files "
                "written by pixgmm fit, or histogram models, do); refit it with pixgmm fit, or "
                "give --prior LABEL=P for every class",
                param_hint="--prior counts",
            )
    return "counts"


def _hex(rgb):
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def _compute(classifier, save, channels):
    import numpy as np

    from . import render as _render

    k = len(classifier.labels)

    def compute(pixels):
        lp = classifier.log_posterior(pixels, channels=channels)
        bad = np.isnan(lp[..., 0])
        index = np.argmax(np.where(bad[..., None], 0.0, lp), axis=-1).astype(np.uint8)
        index[bad] = UNCLASSIFIED
        maps = {}
        if "labels" in save:
            maps["labels"] = index
        if "colour" in save:
            picture = _render.label_picture(np.minimum(index, k - 1))
            picture[bad] = 0
            maps["colour"] = picture
        if "probability" in save:
            maps["probability"] = np.exp(lp).astype(np.float32)
        return maps

    return compute


@click.command(epilog=IMAGE_HELP)
@click.argument("inputs", nargs=-1, required=True, type=str)
@click.option(
    "--model",
    "-m",
    "model_specs",
    multiple=True,
    required=True,
    metavar="LABEL=MODEL.json",
    help="A class and its colour model (Mixture or HistogramModel JSON); repeat for each class.",
)
@click.option(
    "--prior",
    "prior_specs",
    multiple=True,
    metavar="LABEL=P|counts",
    help="Prior probability of a class (repeat; give all or none), or --prior counts: "
    "proportional to each class's training-pixel count, recorded by pixgmm fit in its "
    "model files. Default: equal priors.",
)
@click.option(
    "--save",
    default="labels,colour,probability",
    show_default=True,
    help="Comma-separated outputs: labels (PNG, class index 0, 1, ... in --model order, "
    f"{UNCLASSIFIED} where no class applies), colour (PNG, each class in its own colour), "
    "probability (float P(class | colour), one page or plane per class).",
)
@pixel_options
@float_format_option
@common_options
def classify(
    inputs,
    model_specs,
    prior_specs,
    save,
    scale,
    max_pixels,
    to_8bit,
    float_format,
    out,
    overwrite,
    quiet,
    as_json,
):
    """Label every pixel with its most probable class (Bayes rule, one colour model per class).

    Writes photo.labels.png (the class index of every pixel), photo.labels-colour.png
    (a picture of it) and photo.classes.tiff (P(class | colour), one page per
    class, in --model order). The class indices and colours are printed (and in
    the --json summary under "classes").

    \b
    Example:
      pixgmm fit --pixels Skin_NonSkin.txt --columns BGR -o uci.json
      pixgmm classify photo.jpg -m skin=uci.1.json -m background=uci.2.json
    """
    from ..classify import Classifier
    from . import render as _render
    from .pixels import PixelRule
    from .run import Output, run

    save = split_list(save, CLASSIFY_OUTPUTS, "--save")
    specs = _pairs(model_specs, "--model")
    models = {label: load_model(spec, f"--model {label}") for label, spec in specs.items()}
    priors = None
    if [p.strip().lower() for p in prior_specs] == ["counts"]:
        priors = _count_priors(models, specs)
    elif prior_specs:
        given = _pairs(prior_specs, "--prior")
        unknown = [lab for lab in given if lab not in models]
        missing = [lab for lab in models if lab not in given]
        if unknown or missing:
            raise click.BadParameter(
                (f"unknown class(es) {', '.join(unknown)}; " if unknown else "")
                + (f"no prior for {', '.join(missing)}; " if missing else "")
                + "give one --prior LABEL=P for every --model LABEL",
                param_hint="--prior",
            )
        try:
            priors = {lab: float(given[lab]) for lab in models}
        except ValueError:
            raise click.BadParameter("priors must be numbers", param_hint="--prior") from None
    if len(models) >= UNCLASSIFIED:
        raise click.UsageError(f"at most {UNCLASSIFIED - 1} classes fit in a label PNG")
    try:
        classifier = Classifier(models, priors=priors)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None

    first = next(iter(models.values()))
    channels = model_channels(first, first.n_features)
    palette = _render.PALETTE
    legend = [
        {"index": i, "label": lab, "colour": _hex(palette[i % len(palette)])}
        for i, lab in enumerate(classifier.labels)
    ]
    names = {"labels": "labels", "colour": "labels-colour", "probability": "classes"}
    outputs = [
        Output(names[k], "float" if k == "probability" else "picture", key=k)
        for k in CLASSIFY_OUTPUTS
        if k in save
    ]
    rule = PixelRule(first.n_features, resolve_scale(scale, to_8bit))
    opts = make_options(out, overwrite, quiet, as_json, float_format, max_pixels)
    if not quiet and not as_json:
        text = ", ".join(f"{e['index']} = {e['label']} ({e['colour']})" for e in legend)
        click.echo(f"classes: {text}; {UNCLASSIFIED} = unclassified")
    extra = {"classes": legend, "unclassified": UNCLASSIFIED}
    compute = _compute(classifier, save, channels)
    sys.exit(run(list(inputs), outputs, compute, opts, rule, extra))
