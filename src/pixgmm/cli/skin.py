"""``pixgmm skin``: skin masks, probability maps, heatmaps and overlays with the Jones & Rehg models."""

from __future__ import annotations

import sys

import click

from .big import BIG_HELP, big_options, requested
from .geo import GEO_BIG_HELP, GEO_HELP
from .options import (
    LAZY_IMAGE_HELP,
    check_heatmap_options,
    cog_option,
    common_options,
    float_format_option,
    heatmap_options,
    load_model,
    make_options,
    pixel_options,
    resolve_scale,
    split_list,
)

SKIN_OUTPUTS = ("mask", "probability", "logratio", "heatmap", "overlay")


#: The quantity a skin heatmap shows (its colour bar's label).
HEATMAP_QUANTITY = "P(skin | colour)"


def _needed(save):
    """The detector maps (:meth:`~pixgmm.SkinDetector.maps`) the outputs in ``save`` derive from."""
    names = []
    if "logratio" in save:
        names.append("logratio")
    if "probability" in save or "heatmap" in save:
        names.append("probability")
    if "mask" in save or "overlay" in save:
        names.append("mask")
    return names


def _float_probability(p):
    """A probability map as float32 for a picture, decoded when it is stored packed."""
    import numpy as np

    from ..quantize import decode

    return p if p.dtype == np.float32 else decode(p).astype(np.float32)


def _skin_compute(detector, save, ratio, threshold, cmap=None, colorbar=False, pdtype="float32"):
    """``compute(pixels) -> maps`` for images in memory: every map from one pass."""
    from . import render as _render
    from .outputs import PNG_TEXT

    log_t = detector._log_threshold(ratio, threshold)
    cmap = cmap or _render.DEFAULT_CMAP
    names = _needed(save)

    def compute(rgb, where=None):
        m = detector.maps(rgb, names, log_ratio=log_t, probability_dtype=pdtype, channels="RGB")
        maps = {k: m[k] for k in ("logratio", "probability") if k in save}
        if "heatmap" in save:
            maps["heatmap"], text = _render.heatmap_picture(
                _float_probability(m["probability"]), 0.0, 1.0, cmap=cmap, colorbar=colorbar,
                quantity=HEATMAP_QUANTITY,
            )  # fmt: skip
            maps[PNG_TEXT] = {"heatmap": text}
        if "mask" in save:
            maps["mask"] = _render.mask_picture(m["mask"])
        if "overlay" in save:
            maps["overlay"] = _render.overlay(_render.to_display(rgb), m["mask"])
        return maps

    return compute


def _lazy_compute(detector, save, log_t, lut, pdtype):
    """``compute(lazy pixels) -> {output: lazy map}``: one task per block computes every map."""
    import dask.array as da
    import numpy as np

    from . import render as _render

    names = _needed(save)

    def heat(p):
        return _render.heatmap(_float_probability(p), 0.0, 1.0, lut)

    def tint(image, mask):
        return _render.overlay(_render.to_display(image), mask[..., 0])

    def compute(rgb, where=None):
        m = detector.maps(rgb, names, log_ratio=log_t, probability_dtype=pdtype, channels="RGB")
        maps = {k: m[k] for k in ("logratio", "probability") if k in save}
        if "heatmap" in save:
            p = m["probability"]
            maps["heatmap"] = p.map_blocks(
                heat, dtype=np.uint8, new_axis=2, chunks=(*p.chunks, (3,))
            )
        if "mask" in save:
            maps["mask"] = m["mask"].map_blocks(_render.mask_picture, dtype=np.uint8)
        if "overlay" in save:
            mask = m["mask"]
            maps["overlay"] = da.map_blocks(
                tint, rgb, mask[..., None], dtype=np.uint8, chunks=(*mask.chunks, (3,))
            )
        return maps

    return compute


def run_skin(
    inputs,
    save,
    ratio,
    threshold,
    prior,
    skin_model,
    nonskin_model,
    opts,
    lazy=None,
    scale="auto",
    cmap=None,
    colorbar=False,
    probability_dtype="float32",
):
    from ..io.pixels import PixelRule
    from ..skin import SkinDetector
    from .outputs import Output
    from .run import run

    skin = load_model(skin_model, "--skin-model") if skin_model else None
    nonskin = load_model(nonskin_model, "--nonskin-model") if nonskin_model else None
    try:
        detector = SkinDetector(skin, nonskin, prior=prior)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if lazy is not None:
        from . import big as _big

        if colorbar:
            raise click.UsageError(
                "--colorbar draws on a PNG heatmap; with --chunks/--workers/--scheduler the "
                "heatmap is a Zarr store (leave out --colorbar, or run without --chunks)"
            )
        from .render import colour_lut

        lut = colour_lut(cmap) if cmap else None
        log_t = detector._log_threshold(ratio, threshold)
        compute = _lazy_compute(detector, save, log_t, lut, probability_dtype)
        names = [k for k in SKIN_OUTPUTS if k in save]
        packed = {"probability": probability_dtype} if probability_dtype != "float32" else {}
        return _big.run_lazy(
            inputs, names, compute, opts, *lazy, rule=PixelRule(3, scale), packed=packed
        )
    outputs = [
        Output(
            k,
            "float" if k in ("probability", "logratio") else "picture",
            lossy=k in ("heatmap", "overlay"),  # pictures for the eye; the mask stays exact
            packing=probability_dtype if k == "probability" else None,
        )
        for k in SKIN_OUTPUTS
        if k in save
    ]
    compute = _skin_compute(detector, save, ratio, threshold, cmap, colorbar, probability_dtype)
    return run(inputs, outputs, compute, opts, PixelRule(3, scale))


def sample_path():
    from importlib import resources

    return resources.files("pixgmm").joinpath("data", "astronaut.jpg")


@click.command(epilog=LAZY_IMAGE_HELP + GEO_HELP + "\n" + BIG_HELP + GEO_BIG_HELP)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--save",
    default="mask,overlay",
    show_default=True,
    help="Comma-separated outputs: mask (PNG, 0/255), probability (float P(skin | colour)), "
    "logratio (float log p(x|skin) - log p(x|non-skin)), heatmap (PNG of the probability, "
    "0 to 1, see --cmap and --colorbar), overlay (PNG: the photo with skin tinted magenta). "
    "For a video: clip.mask.mkv (lossless), clip.heatmap.mp4, clip.overlay.mp4, float maps "
    "as TIFF stacks.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="Skin where P(skin | colour) >= this posterior probability. [default: 0.5]",
)
@click.option(
    "--ratio",
    type=click.FloatRange(min=0.0),
    default=None,
    help="Instead of --threshold: skin where p(x|skin) / p(x|non-skin) >= this likelihood "
    "ratio (Jones & Rehg's convention; the prior does not enter).",
)
@click.option(
    "--prior",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Prior probability of skin, P(skin).",
)
@click.option(
    "--skin-model",
    metavar="MODEL.json",
    help="Skin colour model (Mixture or HistogramModel JSON) instead of Jones & Rehg's.",
)
@click.option("--nonskin-model", metavar="MODEL.json", help="Non-skin colour model JSON.")
@click.option("--sample", is_flag=True, help="Also process the photo bundled with pixgmm.")
@click.option(
    "--probability-dtype",
    type=click.Choice(("float32", "uint16", "uint8")),
    default="float32",
    show_default=True,
    help="How the probability map is stored: float32, or packed as round(P x 65534) in "
    "uint16 or round(P x 254) in uint8 (half the size or a quarter; within 8e-6 or 0.002), "
    "the top code (65535, 255) meaning no value. TIFF, GeoTIFF and Zarr outputs carry the "
    "scale and nodata (GDAL's scale/offset, CF's scale_factor/_FillValue), so GDAL, "
    "rasterio and xarray read probabilities back.",
)
@heatmap_options
@float_format_option
@pixel_options
@big_options
@cog_option
@common_options
def skin(
    inputs,
    save,
    threshold,
    ratio,
    prior,
    skin_model,
    nonskin_model,
    sample,
    probability_dtype,
    cmap,
    colorbar,
    float_format,
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
    """Find skin with the Jones & Rehg (1999) colour models.

    The models are in RGB order on the 0..255 scale and are applied to RGB
    pixels brought to that scale by --scale (16-bit images and float images in
    [0, 1] are scaled to 0..255; the summary says so). Per pixel: the log
    likelihood ratio L = log p(x | skin) - log p(x | non-skin), the posterior
    P(skin | x) = 1 / (1 + exp(-L - log(prior / (1 - prior)))), and the mask
    P(skin | x) >= --threshold (or p(x|skin) / p(x|non-skin) >= --ratio).

    \b
    Examples:
      pixgmm skin photo.jpg                       # photo.mask.png, photo.overlay.png
      pixgmm skin photos/ --out masks --save mask,probability
      pixgmm skin clip.mp4 --save mask,overlay     # clip.mask.mkv, clip.overlay.mp4
      pixgmm skin photo.jpg --save heatmap --cmap magma --colorbar
      pixgmm skin slide.tif --workers 4 --save mask,probability   # Zarr stores
    """
    if ratio is not None and threshold is not None:
        raise click.UsageError("give --threshold (a probability) or --ratio, not both")
    save = split_list(save, SKIN_OUTPUTS, "--save")
    check_heatmap_options(cmap, colorbar, "heatmap" in save, "add heatmap to --save")
    inputs = list(inputs)
    if sample:
        inputs.insert(0, str(sample_path()))
    if not inputs:
        raise click.UsageError("no INPUTS given (or pass --sample for the bundled photo)")
    if probability_dtype != "float32" and "probability" in save and float_format == "npy":
        raise click.BadParameter(
            f"a probability packed as {probability_dtype} needs a file that says how to unpack "
            "it (TIFF, GeoTIFF, Zarr); use --float-format tiff, or --probability-dtype float32",
            param_hint="--probability-dtype",
        )
    scale = resolve_scale(scale, to_8bit)
    opts = make_options(
        out,
        overwrite,
        quiet,
        as_json,
        float_format,
        max_pixels,
        lazy=True,
        zarr_format=zarr_format,
        cog=cog,
    )
    lazy = (
        (chunks, workers, scheduler) if requested(chunks, workers, scheduler, zarr_format) else None
    )
    status = run_skin(
        inputs,
        save,
        ratio,
        threshold,
        prior,
        skin_model,
        nonskin_model,
        opts,
        lazy,
        scale,
        cmap=cmap,
        colorbar=colorbar,
        probability_dtype=probability_dtype,
    )
    sys.exit(status)
