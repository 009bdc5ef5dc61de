"""``pixgmm accuracy``: the accuracy report of a classified map against reference samples."""

from __future__ import annotations

from pathlib import Path

import click

from .options import OneLineCommand, UsageLine

#: The files ``-o DIR`` writes.
REPORT_FILES = {
    "json": "accuracy.json",
    "csv": "confusion-matrix.csv",
    "matrix": "confusion-matrix.png",
    "areas": "area-estimates.png",
}

ACCURACY_HELP = """
The map's values are the classes, read as they are (the label values of pixgmm
classify, not indices); its nodata value is no class. REFERENCE is a vector
file of points (one sample each) or polygons (every pixel centre inside counts;
the pixels of one polygon are clustered samples, which the report notes) with a
class field, or a label raster on the map's grid (0 and nodata: unlabelled).
Samples in another CRS are reprojected. The map is read window by window to
count its pixels per class: the strata weights of the area estimates of
Olofsson et al. (2014), in hectares when the map's CRS is projected. Samples on
map nodata and outside the map are counted and reported.

Every usage error (a missing file or field, no sample on the map, an output
that exists) is one line on stderr with exit status 2.
"""


@click.command(cls=OneLineCommand, epilog=ACCURACY_HELP)
@click.argument("map_path", metavar="MAP", required=False)
@click.option(
    "--reference",
    "-r",
    metavar="REFERENCE",
    help="Reference samples: points or polygons with a class field (GeoPackage, Shapefile, "
    "GeoJSON, FlatGeobuf), or a label raster on the map's grid. Required.",
)
@click.option("--field", metavar="NAME", help="The class field of REFERENCE.")
@click.option("--layer", metavar="NAME", help="The layer of REFERENCE that holds the samples.")
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="Level of the confidence intervals.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="Write the report there: accuracy.json, confusion-matrix.csv, confusion-matrix.png "
    "(counts with user's and producer's accuracies) and area-estimates.png (mapped and "
    "estimated area of each class with its interval).",
)
@click.option("--overwrite", is_flag=True, help="Replace report files that exist in DIR.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the report as JSON on stdout (to_dict())."
)
def accuracy(map_path, reference, field, layer, confidence, out, overwrite, quiet, as_json):
    """Compare a classified MAP with reference samples: confusion matrix and area estimates.

    Prints the confusion matrix (rows: map, columns: reference), overall
    accuracy, kappa, user's and producer's accuracy and F1 per class, and the
    stratified estimates of Olofsson et al. (2014): overall, user's and
    producer's accuracy and the area of each class with 95% confidence
    intervals.

    \b
    Examples:
      pixgmm accuracy maps/scene.labels.tif --reference validation.gpkg
      pixgmm accuracy maps/scene.labels.tif -r validation.gpkg --field class -o report/
      pixgmm accuracy scene.labels.tif -r reference.tif --json
    """
    if map_path is None:
        raise UsageLine("accuracy: give the classified MAP (a GeoTIFF label map)")
    if reference is None:
        raise UsageLine("accuracy: give the reference samples with --reference REFERENCE")
    targets = {}
    if out is not None:
        targets = {key: out / name for key, name in REPORT_FILES.items()}
        existing = [str(t) for t in targets.values() if t.exists()]
        if existing and not overwrite:
            raise UsageLine(f"{existing[0]} exists; pass --overwrite to replace the report")
        try:
            import matplotlib  # noqa: F401  (the pictures)
        except ImportError:
            raise UsageLine(
                "-o DIR draws the report's pictures with matplotlib: pip install matplotlib "
                '(it comes with pip install "pixgmm[plot]")'
            ) from None
    report = _report(map_path, reference, field, layer, confidence)
    if as_json:
        import json

        click.echo(json.dumps(report.to_dict(), indent=1))
    elif not quiet:
        click.echo(report.table())
    if targets:
        _write(report, targets, overwrite, quiet or as_json)


def _report(map_path, reference, field, layer, confidence):
    from ..io.errors import ReadError
    from ..io.vector import FieldError, LayerError
    from ..metrics.mapfile import map_accuracy

    try:
        return map_accuracy(map_path, reference, field=field, layer=layer, confidence=confidence)
    except FieldError as exc:
        raise UsageLine(f"--field: {exc}") from None
    except LayerError as exc:
        raise UsageLine(f"--layer: {exc}") from None
    except (ReadError, OSError, TypeError, ValueError) as exc:
        raise UsageLine(str(exc)) from None


def _write(report, targets, overwrite, quiet):
    import json

    from ..io.errors import OutputError, OutputExists
    from ..io.write import write_figure, write_text
    from ..metrics import area_estimates_figure, confusion_matrix_figure

    try:
        next(iter(targets.values())).parent.mkdir(parents=True, exist_ok=True)
        write_text(targets["json"], json.dumps(report.to_dict(), indent=1) + "\n", overwrite)
        write_text(targets["csv"], report.matrix_csv(), overwrite)
        write_figure(targets["matrix"], confusion_matrix_figure(report), overwrite)
        if report.stratified is not None:
            write_figure(targets["areas"], area_estimates_figure(report), overwrite)
    except (OSError, OutputError, OutputExists) as exc:
        raise UsageLine(str(exc)) from None
    if not quiet:
        written = [str(t) for key, t in targets.items() if t.exists()]
        click.echo(f"report: {', '.join(written)}")
