"""``pixgmm density``: a model's density or log-density at every pixel, as TIFF, NPY or a heatmap."""

from __future__ import annotations

import sys

import click

from .big import BIG_HELP, big_options, requested
from .geo import GEO_BIG_HELP, GEO_HELP_NO_NPY
from .match import BANDS_HELP, parse_bands
from .options import (
    LAZY_IMAGE_HELP,
    check_heatmap_options,
    cog_option,
    common_options,
    heatmap_options,
    load_model,
    make_options,
    pixel_options,
    resolve_scale,
    split_list,
)

DENSITY_FORMATS = ("tiff", "npy", "png")


@click.command(epilog=LAZY_IMAGE_HELP + GEO_HELP_NO_NPY + "\n" + BIG_HELP + GEO_BIG_HELP)
@click.argument("inputs", nargs=-1, required=True, type=str)
@click.option(
    "--model",
    "-m",
    "model_spec",
    required=True,
    metavar="MODEL.json",
    help="Mixture or HistogramModel JSON (see Mixture.save), or jones-rehg-skin / "
    "jones-rehg-nonskin.",
)
@click.option("--log", "log_", is_flag=True, help="Write the natural log of the density.")
@click.option(
    "--format",
    "formats",
    default="tiff",
    show_default=True,
    help="Comma-separated: tiff (float32), npy (float32), png (heatmap of the log-density, "
    "from its 1st percentile to its maximum; see --cmap and --colorbar; for a video an "
    "H.264 .mp4).",
)
@click.option("--bands", callback=parse_bands, metavar="B1,B2,...", help=BANDS_HELP)
@heatmap_options
@pixel_options
@big_options
@cog_option
@common_options
def density(
    inputs,
    model_spec,
    log_,
    formats,
    bands,
    cmap,
    colorbar,
    scale,
    max_pixels,
    to_8bit,
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
    """Write the model's density (or log-density) at every pixel.

    The model is applied to the image's channels in the order they are read
    (RGB for colour images); a model that names its channels (e.g. "BGR") is
    reordered to match RGB images, and a GeoTIFF's bands are matched to the
    model's channels by name where both have names (--bands selects them). A
    single-feature model works on greyscale images. Pixel values are read on
    the scale the model file records (--scale auto: raw values as read, a
    colour model's 0..255 scale with 16-bit images and float images in [0, 1]
    scaled, and the summary says so); see --scale for models without a record.

    \b
    Example:
      pixgmm density photo.jpg --model skin.json --log --format tiff,png
      pixgmm density photo.jpg --model skin.json --format png --cmap magma --colorbar
      pixgmm density slide.tif --model skin.json --chunks 4096 --workers 4   # slide.density.zarr
    """
    import numpy as np

    from ..evaluate import log_density
    from . import match as _match
    from . import render as _render
    from .outputs import PNG_TEXT, Output
    from .run import run

    formats = split_list(formats, DENSITY_FORMATS, "--format")
    check_heatmap_options(cmap, colorbar, "png" in formats, "add png to --format")
    cmap = cmap or _render.DEFAULT_CMAP
    model = load_model(model_spec)
    name = "logdensity" if log_ else "density"
    outputs = [Output(name, "float", suffix=f".{f}") for f in formats if f != "png"]
    if "png" in formats:
        outputs.append(
            Output(name, "picture", suffix=".png", key="heatmap", lossy=True, whole=True)
        )
    models = {"--model": model}
    rule = _match.pixel_rule(models, {"--model": model_spec}, resolve_scale(scale, to_8bit), bands)
    channels = _match.compute_channels(models)
    opts = make_options(
        out,
        overwrite,
        quiet,
        as_json,
        max_pixels=max_pixels,
        lazy=True,
        zarr_format=zarr_format,
        cog=cog,
    )
    if requested(chunks, workers, scheduler, zarr_format):
        from . import big as _big

        if "png" in formats:
            raise click.BadParameter(
                "png needs the whole map in memory (its colour scale comes from percentiles); "
                "with --chunks/--workers/--scheduler the map is written as Zarr",
                param_hint="--format",
            )
        compute = _big.density_maps(model, name, log_, channels)
        sys.exit(
            _big.run_lazy(
                list(inputs), [name], compute, opts, chunks, workers, scheduler, rule=rule
            )
        )

    def compute(pixels, where=None):
        logp = log_density(pixels, model, channels=channels)
        maps = {name: (logp if log_ else np.exp(logp)).astype(np.float32)}
        if "png" in formats:
            maps["heatmap"], text = _render.heatmap_picture(
                logp, *_render.log_range(logp), cmap=cmap, colorbar=colorbar, quantity="log density"
            )
            maps[PNG_TEXT] = {"heatmap": text}
        return maps

    sys.exit(run(list(inputs), outputs, compute, opts, rule))
