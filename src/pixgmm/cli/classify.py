"""``pixgmm classify``: a label map and per-class probabilities from one colour model per class."""

from __future__ import annotations

import sys

import click

from .big import BIG_HELP, big_options, requested
from .classifymaps import REJECTED_COLOUR, UNCLASSIFIED_COLOUR
from .geo import GEO_BIG_HELP, GEO_HELP
from .legend import LABEL_VALUES, make_legend
from .match import BANDS_HELP, parse_bands
from .options import (
    LAZY_IMAGE_HELP,
    cog_option,
    common_options,
    float_format_option,
    load_model,
    make_options,
    pixel_options,
    resolve_scale,
    split_list,
)

CLASSIFY_OUTPUTS = ("labels", "colour", "probability", "confidence", "margin", "entropy")
#: The file-name part of each output (``scene.labels-colour.png``).
OUTPUT_NAMES = {
    "labels": "labels",
    "colour": "labels-colour",
    "probability": "classes",
    "confidence": "confidence",
    "margin": "margin",
    "entropy": "entropy",
}
#: Label-map value of pixels no class can claim in a uint8 label map (uint16: 65535).
UNCLASSIFIED = 255
#: Default label-map value of rejected pixels in a uint8 label map (uint16: 65534).
REJECTED = 254


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


def _reject_options(classifier, min_probability, chi2_level, reject_label):
    """The reject keywords of :meth:`~pixgmm.Classifier.predict`, checked; usage errors name the option.

    The label of rejected pixels is the legend's (:func:`pixgmm.cli.legend.make_legend`).
    """
    from ..histogram import HistogramModel

    if min_probability is None and chi2_level is None:
        if reject_label is not None:
            raise click.UsageError(
                "--reject-label labels the pixels --min-probability or --chi2-level rejects; "
                "give one of them too"
            )
        return {}
    if chi2_level is not None:
        for lab, model in classifier.models.items():
            if isinstance(model, HistogramModel):
                raise click.BadParameter(
                    f"the chi-square reject needs Gaussian mixtures, and class {lab!r} is a "
                    "HistogramModel; use --min-probability for it",
                    param_hint="--chi2-level",
                )
        try:
            import scipy.special  # noqa: F401  (the chi-square quantile)
        except ImportError:
            raise click.UsageError(
                "--chi2-level needs SciPy for the chi-square quantile; install it with "
                'pip install scipy (it comes with pip install "pixgmm[fit]")'
            ) from None
    return {"min_probability": min_probability, "chi2_level": chi2_level}


def _separability(classifier, as_json):
    """Print the classes' Jeffries-Matusita distances (``--separability``); return the summary."""
    summary = classifier.summary()
    if summary["jeffries_matusita"] is None:
        histograms = [c["label"] for c in summary["classes"] if c["model"] == "HistogramModel"]
        why = (
            f"class {histograms[0]!r} is a HistogramModel; the distance needs Gaussian mixtures"
            if histograms
            else "there is one class"
        )
        summary["note"] = f"no separability: {why}"
        if not as_json:
            click.echo(f"separability: none ({why})")
        return summary
    if not as_json:
        labels = [str(lab) for lab in classifier.labels]
        width = max(8, *(len(lab) + 2 for lab in labels))
        jm = summary["jeffries_matusita"]
        click.echo(
            "separability (Jeffries-Matusita distance of each pair of classes: 0 = the same "
            "colours, 2 = fully separable; pairs below about 1.9 are often confused):"
        )
        click.echo(" " * width + "".join(f"{lab:>{width}}" for lab in labels))
        for lab, row in zip(labels, jm):
            click.echo(f"{lab:<{width}}" + "".join(f"{v:>{width}.4f}" for v in row))
        least = summary["least_separable"]
        pair = least["pair"]
        click.echo(f"least separable: {pair[0]} and {pair[1]} ({least['jeffries_matusita']:.4f})")
    return summary


@click.command(epilog=LAZY_IMAGE_HELP + GEO_HELP + "\n" + BIG_HELP + GEO_BIG_HELP)
@click.argument("inputs", nargs=-1, type=str)
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
    help="Comma-separated outputs: labels (the class values where every LABEL is a whole "
    "number such as 1 or 12, else the class index 0, 1, ... in --model order; "
    f"{UNCLASSIFIED} where no class applies, --reject-label where rejected; see "
    "--label-values), colour (PNG, each class in its own colour, unclassified black, "
    "rejected white), probability (float P(class | colour), one page or plane per class), "
    "confidence (float: the posterior of the most probable class), margin (float: the best "
    "minus the second-best posterior; near 0 where two classes compete), entropy (float: "
    "the entropy of the posterior over the classes, in nats; 0 where one class is certain, "
    "log(number of classes) where all are equal). Labels, confidence, margin and entropy "
    "come from one pass over the pixels.",
)
@click.option(
    "--prior-raster",
    metavar="PRIORS.tif",
    help="Per-pixel prior probabilities: a raster on the image's grid with one band per class "
    "in --model order (a previous land-cover map's class frequencies, a terrain mask). "
    "Values need not sum to 1 (they are divided by their sum at each pixel); 0 forbids a "
    "class there, and a pixel whose priors are all 0 or nodata gets no class. Replaces "
    "--prior.",
)
@click.option(
    "--label-values",
    type=click.Choice(LABEL_VALUES),
    default="auto",
    show_default=True,
    help="What the label map holds: auto, the class values where every LABEL is a whole "
    "number (-m 1=forest.json -m 5=water.json: 1 and 5), else the index of each class in "
    "--model order; index, always the index. Unclassified pixels get 255 (rejected 254) in "
    "a uint8 map; class values above 253 make it uint16 (65535, 65534).",
)
@click.option("--bands", callback=parse_bands, metavar="B1,B2,...", help=BANDS_HELP)
@click.option(
    "--min-probability",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=None,
    metavar="P",
    help="Reject a pixel whose most probable class has a posterior P(class | colour) below P "
    "(0 < P <= 1); it gets --reject-label in the label map.",
)
@click.option(
    "--chi2-level",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    metavar="L",
    help="Reject a pixel that lies outside the L chi-square contour (D degrees of freedom) of "
    "every component of its class, as GRASS i.maxlik's reject threshold; 0 < L < 1, e.g. "
    "0.999 rejects about 0.1% of a class's own pixels. Gaussian mixtures only.",
)
@click.option(
    "--reject-label",
    type=click.IntRange(0, 65535),
    default=None,
    metavar="N",
    help="Label-map value of rejected pixels: not a class value (or index), at most "
    f"{UNCLASSIFIED} in a uint8 map. [default: {REJECTED}; 65534 in a uint16 map]",
)
@click.option(
    "--separability",
    is_flag=True,
    help="Print the Jeffries-Matusita distance between each pair of classes (in the --json "
    'summary under "separability"); without INPUTS, only that.',
)
@pixel_options
@float_format_option
@big_options
@cog_option
@common_options
def classify(
    inputs,
    model_specs,
    prior_specs,
    save,
    prior_raster,
    label_values,
    bands,
    min_probability,
    chi2_level,
    reject_label,
    separability,
    scale,
    max_pixels,
    to_8bit,
    float_format,
    chunks,
    workers,
    scheduler,
    zarr_format,
    cog,
    out,
    overwrite,
    quiet,
    as_json,
):
    """Label every pixel with its most probable class (Bayes rule, one colour model per class).

    Writes photo.labels.png (the class of every pixel: its value where the
    labels are whole numbers, else its index), photo.labels-colour.png (a
    picture of it) and photo.classes.tiff (P(class | colour), one page per
    class, in --model order); --save confidence adds photo.confidence.tiff (the
    posterior of the winning class). The class values, indices and colours are
    printed (and in the --json summary under "classes"); a GeoTIFF label map
    carries them as its colour table and category names. --min-probability and
    --chi2-level reject doubtful pixels (label --reject-label, default 254);
    --separability checks first how distinct the classes are.

    The image's bands are matched to the models' channels by name where both
    have names (GeoTIFF band descriptions); --bands selects them. --scale auto
    follows the value scale recorded in the model files.

    \b
    Examples:
      pixgmm fit --pixels Skin_NonSkin.txt --columns BGR -o uci.json
      pixgmm classify photo.jpg -m skin=uci.1.json -m background=uci.2.json
      pixgmm classify -m water=w.json -m crops=c.json -m urban=u.json --separability
      pixgmm classify scene.tif -m water=w.json -m crops=c.json --chi2-level 0.999 \\
          --save labels,confidence     # scene.labels.tif, scene.confidence.tif (GeoTIFF)
      pixgmm classify scene.tif -m 1=models/1.json -m 2=models/2.json --bands B2,B3,B4,B8
    """
    from ..classify import Classifier
    from . import match as _match
    from . import render as _render
    from .classifymaps import PriorRaster, classify_maps
    from .outputs import Output
    from .run import run

    if not inputs and not separability:
        raise click.UsageError("no INPUTS given (or pass --separability to check the classes only)")
    save = split_list(save, CLASSIFY_OUTPUTS, "--save")
    specs = _pairs(model_specs, "--model")
    models = {label: load_model(spec, f"--model {label}") for label, spec in specs.items()}
    priors = None
    if prior_raster is not None and prior_specs:
        raise click.UsageError(
            "--prior-raster gives every pixel its own priors; leave out --prior with it"
        )
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
    try:
        classifier = Classifier(models, priors=priors)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    reject = _reject_options(classifier, min_probability, chi2_level, reject_label)
    legend = make_legend(classifier.labels, label_values, reject_label, bool(reject))

    rule = _match.pixel_rule(models, specs, resolve_scale(scale, to_8bit), bands)
    channels = _match.compute_channels(models)
    palette = _render.PALETTE
    entries = legend.entries(palette)
    extras = {"labels": legend.geotiff(palette, UNCLASSIFIED_COLOUR, REJECTED_COLOUR)}
    outputs = [
        Output(
            OUTPUT_NAMES[k],
            "picture" if k in ("labels", "colour") else "float",
            key=k,
            geotiff=extras.get(k),
        )
        for k in CLASSIFY_OUTPUTS
        if k in save
    ]
    lazy = requested(chunks, workers, scheduler, zarr_format)
    opts = make_options(
        out, overwrite, quiet, as_json, float_format, max_pixels, lazy=True,
        zarr_format=zarr_format, cog=cog, kernels="classify",
    )  # fmt: skip
    extra = {
        "classes": entries,
        "label_values": "class values" if legend.by_value else "indices",
        "unclassified": legend.unclassified,
    }
    if reject:
        extra["rejected"] = legend.rejected
    if separability:
        extra["separability"] = _separability(classifier, as_json)
        if not inputs:
            if as_json:
                import json

                click.echo(json.dumps(extra, indent=1))
            sys.exit(0)
    if not quiet and not as_json:
        text = ", ".join(
            f"{e['value']} ({e['colour']})" if legend.by_value else
            f"{e['value']} = {e['label']} ({e['colour']})"
            for e in entries
        )  # fmt: skip
        rejected = f"; {legend.rejected} = rejected" if reject else ""
        click.echo(f"classes: {text}; {legend.unclassified} = unclassified{rejected}")
    priors_raster = None if prior_raster is None else PriorRaster(prior_raster, len(models))
    compute = classify_maps(classifier, save, channels, reject, legend, priors_raster)
    if lazy:
        from . import big as _big

        def by_file_name(pixels, where=None):
            return {OUTPUT_NAMES[k]: v for k, v in compute(pixels, where).items()}

        names = [OUTPUT_NAMES[k] for k in CLASSIFY_OUTPUTS if k in save]
        sys.exit(_big.run_lazy(list(inputs), names, by_file_name, opts, chunks, workers,
                               scheduler, extra, rule=rule))  # fmt: skip
    sys.exit(run(list(inputs), outputs, compute, opts, rule, extra))
