"""Which files pixgmm reads, by name: image, video, TIFF and Zarr suffixes.

Standard library only, so the command line's option parsing can ask without
importing NumPy or an image library.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Rasters only GDAL reads (through rasterio): virtual mosaics.
GDAL_SUFFIXES = frozenset({".vrt"})
IMAGE_SUFFIXES = (
    frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"}) | GDAL_SUFFIXES
)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})
#: Suffixes :func:`pixgmm.io.open_image_lazy` reads tile by tile with tifffile.
LAZY_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".svs", ".ome.tif", ".ome.tiff")


def suffix(path):
    """The lower-case suffix of a path or URL (``"s3://b/scene.TIF"`` -> ``".tif"``)."""
    return Path(os.fspath(path).rstrip("/")).suffix.lower()


def is_video(path):
    """True when ``path`` names a video file (by its suffix)."""
    return suffix(path) in VIDEO_SUFFIXES


def unsupported_reason(path):
    """Why ``path`` is not read, by its suffix; None for an image or a video."""
    ext = suffix(path)
    if ext in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        return None
    return (
        f"unsupported file type {ext or '(no suffix)'!r}; images: "
        f"{', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}"
    )


def check_supported(path):
    """Raise :class:`~pixgmm.io.ReadError` unless ``path`` has an image or video suffix."""
    reason = unsupported_reason(path)
    if reason is not None:
        from .errors import ReadError

        raise ReadError(reason)


def is_zarr(path):
    """True when ``path`` is a Zarr store: a folder (or, for a URL, a prefix) named ``*.zarr``
    or holding Zarr metadata (``zarr.json``, ``.zarray``, ``.zgroup``)."""
    if "://" in os.fspath(path):
        from .remote import is_zarr as remote_is_zarr

        return remote_is_zarr(path)
    p = Path(path)
    return p.is_dir() and (
        p.suffix.lower() == ".zarr"
        or (p / ".zarray").exists()
        or (p / ".zgroup").exists()
        or (p / "zarr.json").exists()
    )
