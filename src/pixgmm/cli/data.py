"""Labelled pixels for ``pixgmm fit`` and ``pixgmm evaluate``: text tables and images with masks.

Two sources give the same thing, pixels (N, C) and one label per pixel:

- a text table (``--pixels FILE``): one pixel per line, columns separated by
  whitespace or commas, the label in one column (the last by default), an
  optional header line and ``#`` comments. The UCI Skin Segmentation file is
  such a table (columns B G R label), read with ``--columns BGR``.
- images with masks (``IMAGE... --masks FOLDER``): the mask of ``photo.jpg`` is
  the image in FOLDER named ``photo.<suffix>`` or ``photo.mask.<suffix>``, of the
  photo's height and width; its values are the labels (for a colour mask, the
  first channel). Images are read in RGB order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.errors import ReadError
from ..io.formats import IMAGE_SUFFIXES, is_video
from ..io.read import read_pages
from . import inputs as _inputs


class DataError(Exception):
    """Labelled pixels that cannot be read; the message names the file and the reason."""


@dataclass
class LabelledPixels:
    """``pixels`` (N, C), ``labels`` (N,) or None, ``channels`` (str or None), ``source`` text.

    ``dropped`` holds the labels of the table rows left out because a pixel value
    was NaN (one entry per row; empty for images); ``notes`` what was done to the
    pixel values (``--scale``).
    """

    pixels: np.ndarray
    labels: np.ndarray | None
    channels: str | None
    source: str
    dropped: np.ndarray | None = None
    notes: tuple = ()

    def dropped_count(self, label=None):
        """Rows left out for a NaN, all of them or those of ``label``."""
        if self.dropped is None:
            return 0
        if label is None:
            return int(self.dropped.size)
        return int(np.count_nonzero(self.dropped == label))

    @property
    def integer(self):
        """True when every pixel value is a whole number (8/16-bit data)."""
        px = self.pixels
        return px.dtype.kind in "ui" or bool(np.all(px == np.round(px)))


def parse_columns(text):
    """``"BGR"`` or ``"B,G,R"`` or ``"nir,red"`` -> the channel names (a str of letters or a list)."""
    if text is None:
        return None
    text = text.strip()
    if "," in text:
        names = [t.strip() for t in text.split(",")]
        if not all(names):
            raise ValueError(f"--columns {text!r} has an empty name")
        return names
    if not text:
        raise ValueError("--columns is empty; give the channel order, e.g. BGR")
    return text


def _is_number(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _sniff(path):
    """``(delimiter or None, rows to skip)``: commas or whitespace; a non-numeric header skipped."""
    skip = 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                skip += 1
                continue
            delimiter = "," if "," in stripped else None
            fields = stripped.split(delimiter)
            if not all(_is_number(f.strip()) for f in fields):
                skip += 1  # a header line
            return delimiter, skip
    raise DataError(f"{path}: the file holds no rows")


def _label_values(col):
    """Labels as int64 when they are whole numbers, else float."""
    if np.all(np.isfinite(col)) and np.all(col == np.round(col)):
        return col.astype(np.int64)
    return col


def _compact(pixels):
    """Whole numbers in 0..255 become uint8 (the colour table's fast path), else float64."""
    if pixels.size and np.all(pixels == np.round(pixels)):
        lo, hi = pixels.min(), pixels.max()
        if lo >= 0 and hi <= 255:
            return pixels.astype(np.uint8)
        if lo >= 0 and hi <= 65535:
            return pixels.astype(np.uint16)
    return pixels


def read_table(path, columns=None, label_column=-1):
    """Labelled pixels from a text table; ``label_column=None`` for a table without labels."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'not a file' if path.exists() else 'no such file'}")
    delimiter, skip = _sniff(path)
    try:
        data = np.loadtxt(path, delimiter=delimiter, skiprows=skip, ndmin=2, dtype=np.float64)
    except (ValueError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a table of numbers ({first})") from None
    if data.shape[0] == 0:
        raise DataError(f"{path}: the file holds no rows")
    n_cols = data.shape[1]
    labels = None
    if label_column is not None:
        if not -n_cols <= label_column < n_cols:
            raise DataError(
                f"{path}: --label-column {label_column} is outside the file's {n_cols} columns"
            )
        idx = label_column % n_cols
        labels = _label_values(data[:, idx])
        data = np.delete(data, idx, axis=1)
    names = parse_columns(columns) if isinstance(columns, str) else columns
    if names is not None and len(names) != data.shape[1]:
        raise DataError(
            f"{path}: --columns {columns!r} names {len(names)} channel(s) but the file has "
            f"{data.shape[1]} pixel column(s)"
            + (" besides the label column" if label_column is not None else "")
        )
    dropped = None
    if np.isnan(data).any():
        keep = ~np.isnan(data).any(axis=1)
        data = data[keep]
        if labels is not None:
            dropped = labels[~keep]
            labels = labels[keep]
        else:
            dropped = np.full(int((~keep).sum()), -1)
    return LabelledPixels(_compact(data), labels, names, str(path), dropped)


def _find_mask(image_path, folder):
    stem = image_path.name.rsplit(".", 1)[0]
    candidates = [
        p
        for p in sorted(Path(folder).iterdir())
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and p.name.rsplit(".", 1)[0] in (stem, f"{stem}.mask")
        and p.resolve() != image_path.resolve()
    ]
    if not candidates:
        raise DataError(
            f"{image_path}: no mask in {folder} (looked for {stem}.png, {stem}.mask.png, ...)"
        )
    return candidates[0]


@dataclass
class ImageFile:
    """One image file read for ``fit``/``evaluate``: its pages and, with ``--masks``, their labels.

    ``pages`` are (H, W, 3) pixels after the ``--scale`` rule, or (N, 3) lists of
    the valid pixels of a GeoTIFF page with nodata pixels; ``masks`` one label
    array per page of the page's spatial shape (unsigned integers as read, other
    types as int64), or None without ``--masks``; ``notes`` what the rule did to
    the values and how many nodata pixels were left out.
    """

    path: Path
    mask_path: Path | None
    pages: list
    masks: list | None
    notes: tuple


def plan_images(args, masks=None):
    """``[(image path, mask path or None), ...]`` for the images given, checked before decoding.

    Every argument is expanded (files, folders, patterns) and every mask found
    first, so a missing mask or an unusable input stops the command before any
    image is read. Raises :class:`DataError` naming the first problem.
    """
    found = _inputs.expand_inputs(args)
    if masks is not None and not Path(masks).is_dir():
        raise DataError(f"--masks {masks}: not a folder")
    plan = []
    for arg, path, problem in found:
        if problem is not None:
            raise DataError(f"{arg}: {problem}")
        if is_video(path):
            raise DataError(f"{path}: videos are not supported here; give images")
        plan.append((path, None if masks is None else _find_mask(path, masks)))
    if not plan:
        raise DataError("no images given")
    return plan


def _mask_labels(mask):
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype.kind == "b":
        return mask.view(np.uint8)
    return mask if mask.dtype.kind == "u" else mask.astype(np.int64)


def read_image_file(path, mask_path=None, rule=None, max_pixels=None):
    """One :class:`ImageFile`: every page of ``path`` (and of its mask), checked against each other."""
    from ..io.pixels import PixelRule, page_pixels
    from . import geo as _geo

    rule = PixelRule(3) if rule is None else rule
    notes = []
    geo = _geo.probe(path, quiet=True)  # a GeoTIFF: its nodata pixels are left out
    try:
        pages, valid = [], []
        for i, p in enumerate(read_pages(path, max_pixels)):
            pixels, note, invalid = page_pixels(geo, i, p, rule)
            pages.append(pixels)
            valid.append(None if invalid is None or not invalid.any() else ~invalid)
            if note is not None and note not in notes:
                notes.append(note)
    except ReadError as exc:
        raise DataError(f"{path}: {_reason(exc, path)}") from None
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
    labels = None
    if mask_path is not None:
        try:
            mask_pages = read_pages(mask_path, max_pixels)
        except ReadError as exc:
            raise DataError(f"{mask_path}: {_reason(exc, mask_path)}") from None
        if len(mask_pages) != len(pages):
            raise DataError(f"{mask_path}: {len(mask_pages)} page(s) but {path} has {len(pages)}")
        labels = []
        for page, mask in zip(pages, mask_pages):
            mask = _mask_labels(mask)
            if mask.shape != page.shape[:2]:
                raise DataError(
                    f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} pixels but "
                    f"{path} is {page.shape[1]}x{page.shape[0]}"
                )
            labels.append(mask)
    left_out = sum(int((~v).sum()) for v in valid if v is not None)
    if left_out:  # nodata pixels: the pages become (N, 3) lists of the valid pixels
        pages = [pg if v is None else pg[v] for pg, v in zip(pages, valid)]
        if labels is not None:
            labels = [lab if v is None else lab[v] for lab, v in zip(labels, valid)]
        notes.append(f"{left_out} nodata pixel(s) left out")
    return ImageFile(Path(path), mask_path, pages, labels, tuple(notes))


def _reason(exc, path):
    """A read failure in words; over the pixel limit, with the options these commands have."""
    from ..io.errors import PixelLimitError

    if isinstance(exc, PixelLimitError):
        return str(exc.with_way_out(_inputs.way_out(path, lazy=False)))
    return str(exc)


def iter_images(plan, scale="auto", max_pixels=None):
    """Read the files of :func:`plan_images` one at a time: an :class:`ImageFile` each.

    Only one file's pages are held at a time, so a caller that counts them
    (``pixgmm fit``) needs memory for one image, not for all of them.
    """
    from ..io.pixels import PixelRule

    rule = PixelRule(3, scale)
    for path, mask_path in plan:
        yield read_image_file(path, mask_path, rule, max_pixels)


def read_images(args, masks=None, scale="auto", max_pixels=None):
    """Pixels (and mask labels when ``masks`` is a folder) of images given on the command line.

    Every page of a multi-page file is used, its values brought to the model
    scale by :class:`~pixgmm.io.pixels.PixelRule` (``scale``, as every command).
    All pixels are held together (``pixgmm evaluate`` scores them all; ``pixgmm
    fit`` streams them with :func:`iter_images` instead). Raises
    :class:`DataError` naming the first file that cannot be used.
    """
    notes, pixel_parts, label_parts, names = [], [], [], []
    for item in iter_images(plan_images(args, masks), scale, max_pixels):
        notes.extend(n for n in item.notes if n not in notes)
        pixel_parts.extend(p.reshape(-1, 3) for p in item.pages)
        if item.masks is not None:
            label_parts.extend(m.reshape(-1).astype(np.int64) for m in item.masks)
        names.append(str(item.path))
    dtypes = {p.dtype for p in pixel_parts}
    pixels = (
        np.concatenate(pixel_parts)
        if len(dtypes) == 1
        else np.concatenate([p.astype(np.float64) for p in pixel_parts])
    )
    labels = np.concatenate(label_parts) if masks is not None else None
    source = names[0] if len(names) == 1 else f"{len(names)} images"
    return LabelledPixels(pixels, labels, "RGB", source, notes=tuple(notes))


def check_sources(inputs, pixels_file, columns, masks):
    """Raise ValueError (a usage error) for a combination of data options that cannot work.

    A table has no channel order of its own, so ``--pixels`` needs ``--columns``:
    assuming RGB for a BGR file (the UCI data) gives wrong answers silently.
    """
    if pixels_file is not None and inputs:
        raise ValueError("give images or --pixels FILE, not both")
    if pixels_file is None and not inputs:
        raise ValueError("no data: give images (with --masks) or --pixels FILE")
    if pixels_file is not None:
        if masks is not None:
            raise ValueError("--masks goes with images, not with --pixels")
        if columns is None:
            raise ValueError(
                "--pixels needs --columns: name the channel order of the table's pixel "
                "columns, e.g. --columns BGR for the UCI Skin Segmentation file (a table "
                "has no channel order of its own)"
            )
    elif columns is not None:
        raise ValueError("--columns goes with --pixels; images are read in RGB order")


def load(inputs, pixels_file, columns, label_column, masks, scale="auto", max_pixels=None):
    """Labelled pixels from ``--pixels`` or from images (with ``--masks``); exactly one source.

    A table's values are used as written; images' are scaled by ``scale``.
    """
    check_sources(inputs, pixels_file, columns, masks)
    if pixels_file is not None:
        return read_table(pixels_file, columns, label_column)
    return read_images(inputs, masks, scale, max_pixels)


def class_label(value):
    """A label as the user would type it: ``1`` not ``1.0``, strings as they are."""
    if isinstance(value, (np.integer, int)) or (
        isinstance(value, (float, np.floating)) and float(value).is_integer()
    ):
        return int(value)
    return value.item() if hasattr(value, "item") else value


def parse_label(text, labels):
    """The label ``text`` names, matched against the labels present (numbers as numbers)."""
    present = [class_label(v) for v in np.unique(labels)]
    for v in present:
        if str(v) == text.strip():
            return v
    raise ValueError(
        f"class {text!r} is not in the data; labels present: {', '.join(map(str, present[:20]))}"
    )
