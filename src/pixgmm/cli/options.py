"""Options and helpers shared by the ``pixgmm`` commands (imports only click at module level)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

IMAGE_HELP = """
Images (JPEG, PNG 8/16-bit, TIFF incl. multi-page, BMP, WebP, GIF) are read in
RGB order, the EXIF orientation applied; an alpha channel is ignored. Greyscale
images are an error for colour models (the model needs 3 channels). A video
(MP4, MOV, AVI, MKV, WebM, ...) is processed frame by frame: pictures become
.mp4 videos, float maps multi-page float32 TIFFs. A multi-page image gets one
set of outputs per page (photo.page2.mask.png).

Outputs are written atomically (a temporary file renamed into place) and never
replace an existing file unless --overwrite is given.
"""

BUILTIN_MODELS = ("jones-rehg-skin", "jones-rehg-nonskin")


# -- shared options -------------------------------------------------------------


def common_options(func):
    """--out, --overwrite, --quiet, --json for every command that writes per-input files."""

    @click.option(
        "--out",
        "-o",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default="current folder",
        help="Folder for the outputs (created if missing).",
    )
    @click.option("--overwrite", is_flag=True, help="Replace outputs that already exist.")
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


def make_options(out, overwrite, quiet, as_json, float_format="tiff"):
    from .run import Options

    return Options(
        out=out, overwrite=overwrite, quiet=quiet, json=as_json, float_format=float_format
    )


def colour_pixels(page, n_features, to_8bit):
    """The pixels a colour model sees: alpha dropped, 16-bit optionally scaled to 0..255."""
    import numpy as np

    img = np.asarray(page)
    if img.ndim == 3 and img.shape[-1] == n_features + 1 and n_features in (1, 3):
        img = img[..., :n_features]  # alpha
    if img.ndim == 2 and n_features == 1:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] != n_features:
        got = "a greyscale image" if img.ndim == 2 else f"an image of shape {img.shape}"
        raise ValueError(
            f"got {got} but the model needs {n_features} channel(s) per pixel"
            + ("; convert it to RGB first" if img.ndim == 2 and n_features == 3 else "")
        )
    if to_8bit and img.dtype.kind in "ui" and img.dtype.itemsize > 1:
        info = np.iinfo(img.dtype)
        img = (img.astype(np.float32) - info.min) * np.float32(255.0 / (info.max - info.min))
    return img


def model_channels(model, n):
    """The image channel names to pass for ``model``: RGB order when the model names R, G, B."""
    names = getattr(model, "channels", None)
    if names is not None and n == 3 and set(names) == set("RGB"):
        return "RGB"
    return None


DATA_HELP = """
Labelled pixels come from a text table (--pixels FILE: one pixel per line,
columns separated by spaces, tabs or commas, the label in the last column or
--label-column, an optional header line; name the channel order with --columns,
e.g. BGR for the UCI Skin Segmentation file) or from images (RGB) with masks
(--masks FOLDER: the mask of photo.jpg is FOLDER/photo.png or
FOLDER/photo.mask.png, same size; its values are the labels).
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
    """--pixels, --columns, --label-column, --masks, --to-8bit for commands reading labelled pixels."""
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
            help="Channel order of the table's pixel columns, e.g. BGR or nir,red.",
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
        click.option("--to-8bit", is_flag=True, help="Scale 16-bit images to 0..255 first."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def fail(message, as_json):
    """Report a failure that stops a command (exit 1): on stderr, and as JSON with --json."""
    import json
    import sys

    click.echo(f"pixgmm: error: {message}", err=True)
    if as_json:
        click.echo(json.dumps({"ok": 0, "failed": 1, "error": message}, indent=1))
    sys.exit(1)
