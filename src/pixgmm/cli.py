"""The ``pixgmm`` command line: skin masks, density maps and label maps for files and videos.

Commands: ``skin``, ``demo``, ``density`` and ``info`` here; ``fit``, ``classify``
and ``evaluate`` in ``_cli_fit``, ``_cli_classify`` and ``_cli_evaluate``; the
Dask options of ``skin`` and ``density`` (``--chunks``, ``--workers``,
``--scheduler``) in ``_cli_big``.

Run ``pixgmm --help`` or ``pixgmm COMMAND --help``. Every command that takes
images accepts files, folders and glob patterns, reads images in RGB order and
writes its outputs next to each other in ``--out`` (default: the current folder),
named after the input (``photo.jpg`` -> ``photo.mask.png``). Heavy modules
(numba kernels, imageio, tifffile, matplotlib) are imported inside the commands,
so ``pixgmm --help`` stays fast.

Exit status: 0 when every input succeeded, 1 when any input failed (each
failure is reported with its path and reason and the others are still
processed), 2 for usage errors (bad options, a bad model file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._cli_big import BIG_HELP, big_options, requested
from ._cli_common import (
    IMAGE_HELP,
    colour_pixels,
    common_options,
    float_format_option,
    load_model,
    make_options,
    model_channels,
    split_list,
)

# -- the group ------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pixgmm", prog_name="pixgmm")
def main():
    """Evaluate Gaussian mixture colour models at every pixel of images and videos.

    Start with `pixgmm demo`: it finds skin in a bundled photo and writes a mask,
    a probability map, a heatmap and an overlay to ./pixgmm-demo.
    """


# -- skin -----------------------------------------------------------------------

SKIN_OUTPUTS = ("mask", "probability", "logratio", "heatmap", "overlay")


def _skin_compute(detector, save, ratio, threshold):
    import numpy as np

    from . import _cli_render
    from .skin import _posterior_copy

    log_t = detector._log_threshold(ratio, threshold)

    def compute(page):
        rgb = colour_pixels(page, 3, to_8bit=True)
        lr = detector.log_ratio(rgb, channels="RGB")
        maps = {}
        if "logratio" in save:
            maps["logratio"] = lr.astype(np.float32)
        if "probability" in save or "heatmap" in save:
            p = _posterior_copy(lr, detector.log_prior_odds)  # P(skin | x), never 0/0
            maps["probability"] = p.astype(np.float32)
            if "heatmap" in save:
                maps["heatmap"] = _cli_render.heatmap(p, 0.0, 1.0)
        if "mask" in save or "overlay" in save:
            mask = lr >= log_t
            maps["mask"] = _cli_render.mask_picture(mask)
            if "overlay" in save:
                maps["overlay"] = _cli_render.overlay(_cli_render.to_display(page), mask)
        return maps

    return compute


def _run_skin(inputs, save, ratio, threshold, prior, skin_model, nonskin_model, opts, lazy=None):
    from ._cli_run import Output, run
    from .skin import SkinDetector

    skin = load_model(skin_model, "--skin-model") if skin_model else None
    nonskin = load_model(nonskin_model, "--nonskin-model") if nonskin_model else None
    try:
        detector = SkinDetector(skin, nonskin, prior=prior)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    if lazy is not None:
        from . import _cli_big

        compute = _cli_big.skin_maps(detector, save, detector._log_threshold(ratio, threshold))
        names = [k for k in SKIN_OUTPUTS if k in save]
        return _cli_big.run_lazy(inputs, names, compute, opts, *lazy)
    outputs = [
        Output(k, "float" if k in ("probability", "logratio") else "picture")
        for k in SKIN_OUTPUTS
        if k in save
    ]
    return run(inputs, outputs, _skin_compute(detector, save, ratio, threshold), opts)


def _sample_path():
    from importlib import resources

    return resources.files("pixgmm").joinpath("data", "astronaut.jpg")


@main.command(epilog=IMAGE_HELP + "\n" + BIG_HELP)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--save",
    default="mask,overlay",
    show_default=True,
    help="Comma-separated outputs: mask (PNG, 0/255), probability (float P(skin | colour)), "
    "logratio (float log p(x|skin) - log p(x|non-skin)), heatmap (PNG of the probability, "
    "viridis), overlay (PNG: the photo with skin tinted magenta).",
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
@float_format_option
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
    float_format,
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
    pixels; 16-bit images are scaled to 0..255 first. Per pixel: the log
    likelihood ratio L = log p(x | skin) - log p(x | non-skin), the posterior
    P(skin | x) = 1 / (1 + exp(-L - log(prior / (1 - prior)))), and the mask
    P(skin | x) >= --threshold (or p(x|skin) / p(x|non-skin) >= --ratio).

    \b
    Examples:
      pixgmm skin photo.jpg                       # photo.mask.png, photo.overlay.png
      pixgmm skin photos/ --out masks --save mask,probability
      pixgmm skin clip.mp4 --save overlay          # clip.overlay.mp4
      pixgmm skin slide.tif --workers 4 --save mask,probability   # Zarr stores
    """
    if ratio is not None and threshold is not None:
        raise click.UsageError("give --threshold (a probability) or --ratio, not both")
    save = split_list(save, SKIN_OUTPUTS, "--save")
    inputs = list(inputs)
    if sample:
        inputs.insert(0, str(_sample_path()))
    if not inputs:
        raise click.UsageError("no INPUTS given (or pass --sample for the bundled photo)")
    opts = make_options(out, overwrite, quiet, as_json, float_format)
    lazy = (chunks, workers, scheduler) if requested(chunks, workers, scheduler) else None
    sys.exit(
        _run_skin(inputs, save, ratio, threshold, prior, skin_model, nonskin_model, opts, lazy)
    )


@main.command()
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
    status = _run_skin([str(_sample_path())], save, None, None, 0.5, None, None, opts)
    if status == 0 and not quiet and not as_json:
        click.echo(f"Open {out / 'astronaut.overlay.png'} to see the skin the detector found.")
    sys.exit(status)


# -- density --------------------------------------------------------------------

DENSITY_FORMATS = ("tiff", "npy", "png")


@main.command(epilog=IMAGE_HELP + "\n" + BIG_HELP)
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
    "viridis, from its 1st percentile to its maximum).",
)
@click.option(
    "--to-8bit",
    is_flag=True,
    help="Scale 16-bit images to 0..255 first (for models fitted to 8-bit colours).",
)
@big_options
@common_options
def density(
    inputs,
    model_spec,
    log_,
    formats,
    to_8bit,
    chunks,
    workers,
    scheduler,
    out,
    overwrite,
    quiet,
    as_json,
):
    """Write the model's density (or log-density) at every pixel.

    The model is applied to the image's channels in the order they are read
    (RGB for colour images); a model that names its channels (e.g. "BGR") is
    reordered to match RGB images. A single-feature model works on greyscale
    images. Pixel values are used as read (0..65535 for 16-bit) unless --to-8bit.

    \b
    Example:
      pixgmm density photo.jpg --model skin.json --log --format tiff,png
      pixgmm density slide.tif --model skin.json --chunks 4096 --workers 4   # slide.density.zarr
    """
    import numpy as np

    from . import _cli_render
    from ._cli_run import Output, run
    from .evaluate import log_density

    formats = split_list(formats, DENSITY_FORMATS, "--format")
    model = load_model(model_spec)
    name = "logdensity" if log_ else "density"
    outputs = [Output(name, "float", suffix=f".{f}") for f in formats if f != "png"]
    if "png" in formats:
        outputs.append(Output(name, "picture", suffix=".png", key="heatmap"))
    channels = model_channels(model, model.n_features)
    opts = make_options(out, overwrite, quiet, as_json)
    if requested(chunks, workers, scheduler):
        from . import _cli_big

        if "png" in formats:
            raise click.BadParameter(
                "png needs the whole map in memory (its colour scale comes from percentiles); "
                "with --chunks/--workers/--scheduler the map is written as Zarr",
                param_hint="--format",
            )
        compute = _cli_big.density_maps(model, name, log_, to_8bit, channels)
        sys.exit(_cli_big.run_lazy(list(inputs), [name], compute, opts, chunks, workers, scheduler))

    def compute(page):
        pixels = colour_pixels(page, model.n_features, to_8bit)
        logp = log_density(pixels, model, channels=channels)
        maps = {name: (logp if log_ else np.exp(logp)).astype(np.float32)}
        if "png" in formats:
            maps["heatmap"] = _cli_render.heatmap(logp, *_cli_render.log_range(logp))
        return maps

    sys.exit(run(list(inputs), outputs, compute, opts))


# -- info -----------------------------------------------------------------------


@main.command()
@click.argument("model_spec", metavar="MODEL")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(model_spec, as_json):
    """Summarise a model: MODEL.json, or jones-rehg-skin / jones-rehg-nonskin."""
    from ._cli_info import describe, render

    model = load_model(model_spec, "MODEL")
    summary = describe(model, model_spec)
    if as_json:
        import json

        click.echo(json.dumps(summary, indent=1))
    else:
        click.echo(render(summary))


# -- commands in their own modules -----------------------------------------------

from ._cli_classify import classify  # noqa: E402
from ._cli_evaluate import evaluate  # noqa: E402
from ._cli_fit import fit  # noqa: E402

main.add_command(classify)
main.add_command(evaluate)
main.add_command(fit)

if __name__ == "__main__":  # python -m pixgmm.cli
    main(prog_name="pixgmm")
