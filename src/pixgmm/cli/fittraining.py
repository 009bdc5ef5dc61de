"""``pixgmm fit IMAGE --training TRAINING``: one model per class of training samples.

The training pixels are read by :func:`pixgmm.training.training_pixels`
(window by window, only the windows with samples); this module holds the
options' checks, the validation hold-out (``--validation-fraction``, whole
features written to a vector file) and the job that ``fit``'s per-class loop
runs (:class:`TrainingJob`, the same interface as the jobs of
:mod:`.fitclasses`). Every problem with the files (a missing field, samples
outside the image, a class without pixels) is a one-line usage error (exit 2)
naming the file, the field and the class.
"""

from __future__ import annotations

from pathlib import Path

import click

from .options import UsageLine

TRAINING_HELP = """
Training samples (--training): a vector file of polygons or points with a class
field (GeoPackage, Shapefile, GeoJSON, FlatGeobuf; --field names the field,
--layer the layer), or a label raster on the image's grid (0 and nodata:
unlabelled), over one georeferenced IMAGE of any band count and dtype. A
polygon trains on the pixels whose centre lies inside it, a point on the pixel
it falls in; samples in another CRS are reprojected. Classes are the field's
values: whole numbers (models/{label}.json with -o models/{label}.json; the
label map of pixgmm classify -m 1=models/1.json ... then holds those numbers) or
names. The image is read window by window, only where there are samples. Each
model records its bands (named after the band descriptions), its class's pixel
count and the value scale (--scale).
"""


def _fraction(ctx, param, value):
    if value is not None and not 0.0 < value < 1.0:
        raise click.BadParameter(f"must be between 0 and 1 (exclusive), got {value}")
    return value


def training_options(func):
    """--training, --field, --layer, --bands, --validation-fraction, --validation-out."""
    from .match import parse_bands

    options = [
        click.option(
            "--training",
            metavar="TRAINING",
            help="Training samples for the one georeferenced IMAGE: polygons or points with a "
            "class field (GeoPackage, Shapefile, GeoJSON, FlatGeobuf), or a label raster on "
            "the image's grid. One model per class.",
        ),
        click.option("--field", metavar="NAME", help="The class field of --training."),
        click.option("--layer", metavar="NAME", help="The layer of --training that holds them."),
        click.option(
            "--bands",
            callback=parse_bands,
            metavar="B1,B2,...",
            help="With --training: the image bands to fit (1-based numbers or band names, in "
            "order), e.g. B2,B3,B4,B8; the models' channels, named after the bands. Default: "
            "every band.",
        ),
        click.option(
            "--validation-fraction",
            type=float,
            callback=_fraction,
            metavar="F",
            help="Hold out this share of each class's features (whole polygons or points, drawn "
            "with --random-state) for pixgmm accuracy, written to --validation-out.",
        ),
        click.option(
            "--validation-out",
            metavar="FILE",
            help="Where the held-out features go (.gpkg, .geojson or .fgb). Default: "
            "TRAINING-NAME.validation.gpkg beside the model files.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _validation_target(validation_out, training, out):
    if validation_out is not None:
        return Path(validation_out)
    folder = Path(str(out).replace("{label}", "label")).parent
    return folder / f"{Path(training).stem}.validation.gpkg"


class TrainingJob:
    """The classes of :class:`pixgmm.training.TrainingPixels`, for ``fit``'s per-class loop."""

    table = False
    n_images = 1

    def __init__(self, image, pixels, validation=None):
        self.pixels = pixels
        self.keys = list(pixels.classes)
        self.source = str(image)
        self.channels = None if pixels.channels is None else list(pixels.channels)
        self.integer = pixels.integer
        self.notes = tuple(pixels.notes)
        self.scale = pixels.scale
        self.validation = validation

    def dropped(self, c):
        return 0

    def problem(self, c, what):
        return None  # every class has pixels: checked while reading them

    def fit(self, c, counts, covariance, reg_covar, settings, callback):
        from .fitclasses import _fit_options, _n_components

        options = _fit_options(settings, reg_covar, callback)
        return self.pixels.fit_em(_n_components(counts), covariance, classes=[c], **options)[c]

    def n_pixels(self, c, result):
        return self.pixels.n_pixels[c] - result.n_nan

    def extra(self, c):
        """The class's entry in the --json summary beside its fit."""
        entry = {"nodata_pixels": self.pixels.n_nodata[c]}
        if self.pixels.n_features is not None:
            entry["features"] = self.pixels.n_features[c]
        return entry


def _check_labels(classes, out):
    """Class names must make file names when ``{label}`` (or ``.LABEL``) names the models."""
    for c in classes:
        text = str(c)
        if "/" in text or "\\" in text or text in (".", "..") or "\0" in text:
            raise UsageLine(
                f"class {text!r} cannot be part of a file name (-o {out}); rename the class"
            )


def training_job(inputs, training, options, out, overwrite, quiet, as_json):
    """Read the training pixels (and hold out validation features); the :class:`TrainingJob`.

    ``options`` holds ``field``, ``layer``, ``bands``, ``scale``,
    ``validation_fraction``, ``validation_out`` and ``random_state``.
    """
    from ..io.errors import OutputError, OutputExists, ReadError
    from ..io.vector import FieldError, LayerError, read_features, write_features
    from ..training import split_features, training_pixels

    if len(inputs) != 1:
        raise UsageLine(
            f"--training trains on one georeferenced image; give exactly one IMAGE (got "
            f"{len(inputs)})"
        )
    image = inputs[0]
    fraction = options["validation_fraction"]
    samples = training
    validation = None
    try:
        if fraction is not None:
            if Path(training).suffix.lower() in (".tif", ".tiff", ".vrt"):
                raise UsageLine(
                    "--validation-fraction holds out whole features of a vector file; "
                    f"{training} is a label raster"
                )
            features = read_features(training, options["field"], layer=options["layer"])
            samples, held, notes = split_features(features, fraction, options["random_state"])
            target = _validation_target(options["validation_out"], training, out)
            kept = not overwrite and target.exists()
            if not kept:
                target.parent.mkdir(parents=True, exist_ok=True)
                write_features(target, held, overwrite=overwrite)
            validation = {
                "path": str(target),
                "features": len(held.values),
                "kept_existing": kept,
                "notes": notes,
            }
            if not quiet and not as_json:
                what = "kept existing" if kept else "wrote"
                click.echo(
                    f"validation: {what} {target} ({len(held.values)} of "
                    f"{len(features.values)} features held out, field {features.field!r})"
                )
                for note in notes:
                    click.echo(f"validation: {note}")
        pixels = training_pixels(
            image,
            samples,
            field=options["field"],
            layer=options["layer"],
            bands=options["bands"],
            scale=options["scale"],
            bands_name="--bands",
        )
    except FieldError as exc:
        raise UsageLine(f"--field: {exc}") from None
    except LayerError as exc:
        raise UsageLine(f"--layer: {exc}") from None
    except (ReadError, OutputExists, OutputError, OSError, ValueError) as exc:
        raise UsageLine(str(exc)) from None
    _check_labels(pixels.classes, out)
    return TrainingJob(image, pixels, validation)
