"""What a command writes for each input: its outputs, their names and which are still to do.

An :class:`Output` describes one kind of output (a mask, a float map, a
picture); :func:`image_targets` names the files of an input's pages
(``photo.page2.mask.png``), choosing GeoTIFF for a georeferenced input's data
maps; :func:`to_write` keeps the targets a rerun still has to write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Suffix of the videos of exact pictures (masks, label maps): lossless FFV1 in Matroska.
EXACT_VIDEO_SUFFIX = ".mkv"
#: Suffix of the videos of pictures for the eye (overlays, heatmaps): lossy H.264 in MP4.
LOSSY_VIDEO_SUFFIX = ".mp4"
#: The entry of ``compute``'s dict that may give PNG text chunks per picture:
#: ``{key: {keyword: text}}`` (e.g. a heatmap's value range).
PNG_TEXT = "png-text"


@dataclass(frozen=True)
class Output:
    """One output: ``name`` in the file name (``"mask"``), ``form`` ``"float"`` or ``"picture"``.

    ``suffix`` fixes the file suffix of images (default: ``.png`` for pictures,
    ``--float-format`` for float maps); ``key`` is the entry of ``compute``'s
    dict to write (default: ``name``). For a video input, float maps go to a
    float32 ``.tiff`` stack and pictures to a video: an exact picture (a mask, a
    label map: the default) to a lossless FFV1 ``.mkv`` whose frames decode to
    exactly the values written, a ``lossy`` one (an overlay, a heatmap: made for
    the eye) to a smaller H.264 ``.mp4``. A ``whole`` output needs the whole map at
    once (its colour scale comes from the map's percentiles), so an input with
    one is never streamed window by window (:mod:`.stream`). ``geotiff`` holds
    what a GeoTIFF output carries beside its pixels (``colormap``,
    ``categories``: :class:`pixgmm.io.windows.OutputSpec`'s keywords).
    """

    name: str
    form: str
    suffix: str | None = None
    key: str | None = None
    lossy: bool = False
    whole: bool = False  # made from the whole map (a percentile colour scale): not streamed
    packing: str | None = None  # a probability packed in this dtype (pixgmm.quantize)
    geotiff: dict | None = field(default=None, compare=False)  # colormap, categories, ...

    @property
    def map_key(self):
        return self.key or self.name


@dataclass(frozen=True)
class Where:
    """What a ``compute(pixels, where)`` call's pixels are: a page (a GeoTIFF's
    :class:`~pixgmm.io.geotiff.GeoPage`, or None) and a window of it (None: all of it)."""

    page: object = None
    window: object = None


def suffix(output, opts, video):
    if output.suffix is not None and not video:
        return output.suffix
    if output.form == "picture":
        if not video:
            return ".png"
        return LOSSY_VIDEO_SUFFIX if output.lossy else EXACT_VIDEO_SUFFIX
    return ".tiff" if video else f".{opts.float_format}"


def stream_kind(output):
    """The :class:`~pixgmm.io.write.StreamWriter` kind of an output of a video."""
    if output.form != "picture":
        return "tiff"
    return "video" if output.lossy else "lossless"


def page_label(i, n):
    return f".page{i + 1}" if n > 1 else ""


def to_write(targets, opts, result):
    """The targets to write: all with ``--overwrite``, else those that do not exist yet.

    The others are recorded as skipped (kept as they are).
    """
    from ..io import paths

    todo = []
    for t in targets:
        if opts.overwrite or not paths.exists(t):
            todo.append(t)
        else:
            result.skipped.append(str(t))
    return todo


def image_targets(stem, n_pages, outputs, opts, geo=None):
    """The output files of every page of an image: ``[[target of each output], ...]``."""
    from . import geo as _geo

    def file_suffix(o):  # a georeferenced input's data maps are GeoTIFFs (see .geo)
        default = suffix(o, opts, False)
        return default if geo is None else _geo.suffix(o, default)

    return [
        [opts.out / f"{stem}{page_label(i, n_pages)}.{o.name}{file_suffix(o)}" for o in outputs]
        for i in range(n_pages)
    ]


def packed(outputs):
    """``{map key: dtype}`` of the outputs stored as packed probabilities."""
    return {o.map_key: o.packing for o in outputs if o.packing not in (None, "float32")}
