"""``pixgmm demo``: the skin detector on the photo bundled with pixgmm."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .options import make_options
from .skin import run_skin, sample_path


@click.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("pixgmm-demo"),
    show_default=True,
    help="Folder for the outputs.",
)
@click.option("--overwrite", is_flag=True, help="Replace outputs from an earlier run.")
@click.option("--quiet", "-q", is_flag=True, help="Print only errors.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def demo(out, overwrite, quiet, as_json):
    """Run the skin detector on the bundled sample photo.

    The photo is NASA's public-domain portrait of astronaut Eileen Collins
    (also shipped by scikit-image). Writes astronaut.mask.png,
    astronaut.probability.tiff, astronaut.heatmap.png and astronaut.overlay.png
    to --out. Same as: pixgmm skin --sample --save mask,probability,heatmap,overlay
    """
    opts = make_options(out, overwrite, quiet, as_json)
    save = ["mask", "probability", "heatmap", "overlay"]
    status = run_skin([str(sample_path())], save, None, None, 0.5, None, None, opts)
    if status == 0 and not quiet and not as_json:
        click.echo(f"Open {out / 'astronaut.overlay.png'} to see the skin the detector found.")
    sys.exit(status)
