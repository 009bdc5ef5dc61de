"""Options and helpers shared by the ``pixgmm`` commands (imports only click at module level)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

_IMAGE_HELP = """
Images (JPEG, PNG 8/16-bit, TIFF incl. multi-page and compressed with LZW,
Deflate, JPEG or Zstandard, BMP, WebP, GIF) are read in RGB order, the EXIF
orientation applied; an alpha channel is ignored. Greyscale images are an error
for colour models (the model needs 3 channels). A video
(MP4, MOV, AVI, MKV, WebM, ...) is processed frame by frame: masks and label
maps become lossless FFV1 .mkv videos (clip.mask.mkv; every frame decodes to
exactly the values written), heatmaps and overlays H.264 .mp4 videos
(clip.overlay.mp4), float maps multi-page float32 TIFFs. A multi-page image gets
one set of outputs per page (photo.page2.mask.png).

Pixel values: 8-bit images are used as read, 16-bit images are scaled to
0..255, and a float image whose values all lie in [0, 1] is scaled to 0..255
(see --scale); what was done is printed with each input.

Images larger than 100 megapixels (all pages of a file together) are refused
before decoding: raise the limit with --max-pixels or PIXGMM_MAX_PIXELS{lazy}.

Outputs are written atomically (a temporary file renamed into place). An output
that already exists is kept and reported as skipped, so rerunning an interrupted
command finishes it; --overwrite replaces existing outputs.
"""

#: The epilog of commands that read images in memory only, and of those with --chunks.
IMAGE_HELP = _IMAGE_HELP.format(lazy="")
LAZY_IMAGE_HELP = _IMAGE_HELP.format(
    lazy=", or\nprocess a TIFF or Zarr image in blocks with --chunks"
)

BUILTIN_MODELS = ("jones-rehg-skin", "jones-rehg-nonskin")


# -- shared options -------------------------------------------------------------


def common_options(func):
    """--out, --overwrite, --quiet, --json for every command that writes per-input files."""

    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False),  # a str: a URL keeps its "//" (see make_options)
        default=".",
        show_default="current folder",
        help="Folder for the outputs (created if missing), or a URL such as s3://bucket/maps/.",
    )
    @click.option(
        "--overwrite",
        is_flag=True,
        help="Replace outputs that already exist (without it they are kept and skipped).",
    )
    @click.option("--quiet", "-q", is_flag=True, help="Print only errors; no progress bar.")
    @click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print a JSON summary on stdout: per input its status, seconds and outputs.",
    )
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)

    return wrapper


def float_format_option(func):
    return click.option(
        "--float-format",
        type=click.Choice(["tiff", "npy"]),
        default="tiff",
        show_default=True,
        help="File format of float maps: float32 TIFF or NumPy .npy (videos: always TIFF).",
    )(func)


def cog_option(func):
    """--cog for the commands whose georeferenced inputs get GeoTIFF outputs."""
    return click.option(
        "--cog",
        is_flag=True,
        help="Write the GeoTIFF outputs of georeferenced inputs as Cloud Optimized GeoTIFFs "
        "(GDAL's COG driver: 512 x 512 tiles, overviews, Deflate), which GIS clients read "
        "window by window over HTTP.",
    )(func)


def _cmap(ctx, param, value):
    """Check a ``--cmap`` name against the colour-map catalogue (imports cmap only if given)."""
    if value is None:
        return None
    from .render import colour_map

    try:
        colour_map(value)
    except (ImportError, ValueError) as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return value


def heatmap_options(func):
    """--cmap and --colorbar for every command that writes heatmaps."""
    options = [
        click.option(
            "--cmap",
            metavar="NAME",
            default=None,
            callback=_cmap,
            help="Colour map of the heatmap [default: viridis]: a name of the cmap package's "
            "catalogue, matplotlib's names first (magma, cividis, gray, RdBu, ...; add _r to "
            'reverse); list them with python -c "import cmap; '
            'print(sorted(cmap.Catalog().unique_keys()))".',
        ),
        click.option(
            "--colorbar",
            is_flag=True,
            help="Append a labelled colour bar to the right of the heatmap (its pixels are "
            "unchanged). Every heatmap PNG records its range in text chunks "
            "(pixgmm:vmin, pixgmm:vmax, pixgmm:colormap).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_heatmap_options(cmap, colorbar, wanted, how):
    """A usage error if --cmap or --colorbar is given but no heatmap is written.

    ``how`` says how to ask for the heatmap (``"add heatmap to --save"``).
    """
    given = [name for name, value in (("--cmap", cmap), ("--colorbar", colorbar)) if value]
    if given and not wanted:
        verb = "applies" if len(given) == 1 else "apply"
        raise click.UsageError(
            f"{' and '.join(given)} {verb} to the heatmap, which is not being written; {how}"
        )


def split_list(value, allowed, option):
    items = [v.strip().lower() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise click.BadParameter(
            f"{', '.join(bad) or value!r} is not one of {', '.join(allowed)} "
            "(give a comma-separated list)",
            param_hint=option,
        )
    return list(dict.fromkeys(items))


def load_model(spec, option="--model"):
    """A Mixture or HistogramModel from a JSON file or a built-in name; bad files are usage errors."""
    if spec in BUILTIN_MODELS:
        from .. import models

        return models.jones_rehg_skin() if spec.endswith("-skin") else models.jones_rehg_nonskin()
    import json

    from ..histogram import HistogramModel
    from ..mixture import Mixture

    path = Path(spec)
    if not path.exists():
        close = [m for m in BUILTIN_MODELS if m.startswith(spec.lower())] if spec else []
        if not close:
            import difflib

            close = difflib.get_close_matches(spec.lower(), BUILTIN_MODELS, n=2, cutoff=0.6)
        hint = (
            f"did you mean {' or '.join(close)}?"
            if close
            else f"built-in models: {', '.join(BUILTIN_MODELS)}"
        )
        raise click.BadParameter(
            f"cannot read model file {spec}: no such file ({hint})", param_hint=option
        )
    try:
        kind = None
        try:
            kind = json.loads(path.read_text(encoding="utf-8")).get("schema")
        except (ValueError, AttributeError, OSError, UnicodeDecodeError):
            pass  # the loader below reports the problem precisely
        cls = HistogramModel if kind == "pixgmm.histogram" else Mixture
        return cls.load(path)
    except (OSError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def make_options(
    out,
    overwrite,
    quiet,
    as_json,
    float_format="tiff",
    max_pixels=None,
    *,
    lazy=False,
    zarr_format=None,
    cog=False,
    kernels="evaluate",
):
    """The per-input loop's :class:`~pixgmm.cli.run.Options`; ``lazy``: the command has --chunks."""
    from ..io.paths import as_path
    from .run import Options

    return Options(
        out=as_path(out),  # a Path, or a URLPath for s3://..., gs://..., az://...
        overwrite=overwrite,
        quiet=quiet,
        json=as_json,
        float_format=float_format,
        max_pixels=max_pixels,
        lazy=lazy,
        zarr_format=int(zarr_format or 3),
        cog=cog,
        kernels=kernels,
    )


def _max_pixels(ctx, param, value):
    """Check ``--max-pixels`` (and ``PIXGMM_MAX_PIXELS`` when the option is not given)."""
    from ..io.limits import MAX_PIXELS_ENV, pixel_limit

    try:
        pixel_limit(value)
    except (TypeError, ValueError) as exc:
        hint = "--max-pixels" if value is not None else MAX_PIXELS_ENV
        raise click.BadParameter(str(exc), param_hint=hint) from None
    return value


#: The --scale rule's names; the rule itself is :class:`pixgmm.io.pixels.PixelRule` (which
#: imports NumPy, so the names are repeated here for --help; a test checks they agree).
SCALES = ("auto", "none", "unit")

SCALE_HELP = (
    "How pixel values are brought to the 0..255 scale of 8-bit colour models. auto: "
    "8-bit as read, 16-bit (any integer wider than 8 bits) scaled from its full range, "
    "float scaled x255 when every value lies in [0, 1] and used as read otherwise; "
    "none: values as read (for models fitted to raw 16-bit or float values); unit: "
    "float images are 0..1 (x255) even with values outside. Commands that apply model "
    "files (classify, density) follow the scale the files record under auto (raw values: "
    "as read), and refuse a --scale that contradicts it; models that record none are "
    "colour models on 0..255 if they have 3 channels, else auto reads only 8-bit images "
    "without a --scale. What was done is printed with each input."
)


def pixel_options(func):
    """--scale, --max-pixels (and the old --to-8bit) for every command that reads images."""
    options = [
        click.option(
            "--scale",
            type=click.Choice(SCALES),
            default="auto",
            show_default=True,
            help=SCALE_HELP,
        ),
        click.option(
            "--max-pixels",
            type=click.IntRange(min=0),
            default=None,
            callback=_max_pixels,
            metavar="N",
            help="Refuse images of more than N pixels (all pages together) before decoding "
            "them; 0: no limit. [default: PIXGMM_MAX_PIXELS, else 100000000]",
        ),
        click.option(
            "--to-8bit",
            is_flag=True,
            hidden=True,
            help="Scale 16-bit images to 0..255 (what --scale auto does; kept for old scripts).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def resolve_scale(scale, to_8bit):
    """The ``--scale`` in force; ``--to-8bit`` with ``--scale none`` is a usage error."""
    if to_8bit and scale == "none":
        raise click.UsageError("--to-8bit scales 16-bit images; it contradicts --scale none")
    return scale


DATA_HELP = """
Labelled pixels come from a text table (--pixels FILE: one pixel per line,
columns separated by spaces, tabs or commas, the label in the last column or
--label-column, an optional header line; --columns is required and names the
channel order, e.g. BGR for the UCI Skin Segmentation file; values are used as
written, and rows with a NaN are left out and counted per class) or from images
(RGB, values scaled as --scale says) with masks (--masks FOLDER: the mask of
photo.jpg is FOLDER/photo.png or FOLDER/photo.mask.png, same size; its values
are the labels).
"""


def _label_column(value):
    if value is None or str(value).strip().lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a column number; give e.g. -1 (the last) or none",
            param_hint="--label-column",
        ) from None


def data_options(func):
    """--pixels, --columns, --label-column, --masks for commands reading labelled pixels."""
    options = [
        click.option(
            "--pixels",
            "pixels_file",
            type=click.Path(dir_okay=False, path_type=Path),
            metavar="FILE",
            help="A text table of pixels, one per line, with a label column.",
        ),
        click.option(
            "--columns",
            metavar="ORDER",
            help="Channel order of the table's pixel columns, e.g. BGR or nir,red; "
            "required with --pixels (a table has no channel order of its own).",
        ),
        click.option(
            "--label-column",
            default="-1",
            show_default=True,
            callback=lambda ctx, param, value: _label_column(value),
            help="The table's label column (0 = first, -1 = last), or none.",
        ),
        click.option(
            "--masks",
            type=click.Path(path_type=Path),
            metavar="FOLDER",
            help="Folder of label masks for the images, named like them.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


class UsageLine(click.UsageError):
    """A usage error reported in one line, ``pixgmm: error: MESSAGE`` (exit status 2).

    For mistakes in the files a command is given (a missing field, samples off
    the image), where click's usage text would only hide the message.
    """

    def show(self, file=None):
        click.echo(f"pixgmm: error: {self.format_message()}", err=True)


class OneLineCommand(click.Command):
    """A command whose every usage error (bad options as well) is one line, exit status 2."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except UsageLine:
            raise
        except click.UsageError as exc:
            raise UsageLine(f"{info_name}: {exc.format_message()}") from None

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UsageLine:
            raise
        except click.UsageError as exc:
            raise UsageLine(exc.format_message()) from None


def fail(message, as_json):
    """Report a failure that stops a command (exit 1): on stderr, and as JSON with --json."""
    import json
    import sys

    click.echo(f"pixgmm: error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({"ok": 0, "failed": 1, "error": message}, indent=1))
    sys.exit(1)
