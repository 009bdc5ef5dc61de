"""``pixgmm skin``: skin masks, probability maps, heatmaps and overlays with the Jones & Rehg models."""

from __future__ import annotations

import sys

import click

from .big import BIG_HELP, big_options, requested
from .geo import GEO_BIG_HELP, GEO_HELP
from .options import (
    LAZY_IMAGE_HELP,
    check_heatmap_options,
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


def _skin_compute(detector, save, ratio, threshold, cmap=None, colorbar=False):
    import numpy as np

    from ..skin import _posterior_copy
    from . import render as _render
    from .run import PNG_TEXT

    log_t = detector._log_threshold(ratio, threshold)
    cmap = cmap or _render.DEFAULT_CMAP

    def compute(rgb):
        lr = detector.log_ratio(rgb, channels="RGB")
        maps = {}
        if "logratio" in save:
            maps["logratio"] = lr.astype(np.float32)
        if "probability" in save or "heatmap" in save:
            p = _posterior_copy(lr, detector.log_prior_odds)  # P(skin | x), never 0/0
            maps["probability"] = p.astype(np.float32)
            if "heatmap" in save:
                maps["heatmap"], text = _render.heatmap_picture(
                    p, 0.0, 1.0, cmap=cmap, colorbar=colorbar, quantity=HEATMAP_QUANTITY
                )
                maps[PNG_TEXT] = {"heatmap": text}
        if "mask" in save or "overlay" in save:
            mask = lr >= log_t
            maps["mask"] = _render.mask_picture(mask)
            if "overlay" in save:
                maps["overlay"] = _render.overlay(_render.to_display(rgb), mask)
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
):
    from ..io.pixels import PixelRule
    from ..skin import SkinDetector
    from .run import Output, run

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
        compute = _big.skin_maps(detector, save, detector._log_threshold(ratio, threshold), lut=lut)
        names = [k for k in SKIN_OUTPUTS if k in save]
        return _big.run_lazy(inputs, names, compute, opts, *lazy, rule=PixelRule(3, scale))
    outputs = [
        Output(
            k,
            "float" if k in ("probability", "logratio") else "picture",
            lossy=k in ("heatmap", "overlay"),  # pictures for the eye; the mask stays exact
        )
        for k in SKIN_OUTPUTS
        if k in save
    ]
    compute = _skin_compute(detector, save, ratio, threshold, cmap, colorbar)
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
@heatmap_options
@float_format_option
@pixel_options
@big_options
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
    cmap,
    colorbar,
    float_format,
    scale,
    max_pixels,
    to_8bit,
    chunks,
    workers,
    scheduler,
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
    scale = resolve_scale(scale, to_8bit)
    opts = make_options(out, overwrite, quiet, as_json, float_format, max_pixels, lazy=True)
    lazy = (chunks, workers, scheduler) if requested(chunks, workers, scheduler) else None
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
    )
    sys.exit(status)
