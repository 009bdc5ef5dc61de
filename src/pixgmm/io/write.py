"""Writing pictures, float maps and videos, each atomically (see :mod:`.atomic`).

PNG pictures (with optional text chunks), float32 TIFF or ``.npy`` maps, float32
TIFF stacks, text (reports, CSV tables), matplotlib figures, and videos frame by
frame through ffmpeg (lossless FFV1 for masks and
label maps, H.264 for pictures made for the eye). GeoTIFF outputs are written by
:mod:`.geotiff`, Zarr stores by :mod:`.zarrstore`. Every path may be a URL
(``s3://bucket/maps/photo.mask.png``): the file is written locally and uploaded
whole (:mod:`.atomic`).
"""

from __future__ import annotations

import numpy as np

from .atomic import atomic_target
from .formats import suffix

#: zlib level for PNG outputs: 3 writes a 12-megapixel overlay about 3x faster than
#: Pillow's default 6, for files about 15% larger.
PNG_COMPRESS_LEVEL = 3


def write_png(path, array, overwrite=False, text=None):
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically.

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output (:func:`pixgmm.io.atomic_target`).
    array : numpy.ndarray
        uint8 pixels, (H, W) or (H, W, 3).
    overwrite : bool, default False
        Replace an existing file.
    text : dict of str, optional
        The PNG's text chunks (tEXt), e.g. a heatmap's value range.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> from pixgmm.io import write_png
    >>> path = tempfile.mkdtemp() + "/mask.png"
    >>> write_png(path, np.full((2, 3), 255, np.uint8), text={"pixgmm:kind": "mask"})
    >>> with Image.open(path) as im:
    ...     print(im.size, im.text)
    (3, 2) {'pixgmm:kind': 'mask'}
    """
    import imageio.v3 as iio

    extra = {}
    if text:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        extra["pnginfo"] = info
    with atomic_target(path, overwrite) as tmp:
        iio.imwrite(
            tmp,
            np.ascontiguousarray(array),
            plugin="pillow",
            extension=".png",
            compress_level=PNG_COMPRESS_LEVEL,
            **extra,
        )


def write_float(path, array, overwrite=False, packing=None):
    """Write a float map as float32 TIFF (``.tiff``) or ``.npy``, atomically.

    A stack of maps (H, W, K), e.g. one probability per class, is written to
    TIFF as K pages (K, H, W) and to ``.npy`` as it is. ``packing`` (a dtype of
    :mod:`pixgmm.quantize`): ``array`` holds probabilities packed in that
    integer dtype, written as they are to a TIFF whose GDAL metadata tags carry
    the scale, offset and nodata value (GDAL and rasterio read them); ``.npy``
    cannot say how to unpack them and refuses.

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output (:func:`pixgmm.io.atomic_target`): ``.npy`` for NumPy's
        format, any other suffix a TIFF.
    array : array_like
        The map, (H, W), or a stack of maps, (H, W, K); written as float32, or
        in ``packing``'s dtype.
    overwrite : bool, default False
        Replace an existing file.
    packing : {"uint8", "uint16", "float32"}, optional
        The dtype of :mod:`pixgmm.quantize` the probabilities in ``array`` are
        packed in (:func:`pixgmm.quantize.encode`). Default (or ``"float32"``):
        ``array`` holds floats, written as float32.

    Raises
    ------
    ValueError
        ``packing`` is not one of the dtypes, or is an integer dtype and
        ``path`` is a ``.npy`` file.
    OutputExists
        ``path`` exists and ``overwrite`` is false.
    OutputError
        The operating system refused the write (a full disk, no permission).

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pixgmm.io import write_float
    >>> path = tempfile.mkdtemp() + "/p.tiff"
    >>> write_float(path, np.array([[0, 127], [254, 255]], np.uint8), packing="uint8")
    >>> with tifffile.TiffFile(path) as tif:
    ...     print(tif.pages[0].dtype, tif.pages[0].tags["GDAL_NODATA"].value)
    uint8 255
    """
    from .. import quantize

    npy = suffix(path) == ".npy"
    cf = quantize.cf_attributes(packing) if packing is not None else {}
    if cf:
        if npy:
            raise ValueError(
                f"a probability packed as {packing} is written to TIFF, GeoTIFF or Zarr, whose "
                "metadata say how to unpack it; .npy cannot (store float32 for .npy)"
            )
        array = np.asarray(array, dtype=packing)
    else:
        array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and not npy:
        array = np.moveaxis(array, -1, 0)
    array = np.ascontiguousarray(array)
    with atomic_target(path, overwrite) as tmp:
        if npy:
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        else:
            import tifffile

            tifffile.imwrite(tmp, array, photometric="minisblack", extratags=_gdal_tags(cf))


def _gdal_tags(cf):
    """TIFF tags GDAL reads for a packed map: GDAL_METADATA (scale, offset), GDAL_NODATA."""
    if not cf:
        return ()
    items = "".join(
        f'<Item name="{name}" sample="0" role="{name.lower()}">{value!r}</Item>'
        for name, value in (("SCALE", cf["scale_factor"]), ("OFFSET", cf["add_offset"]))
    )
    metadata = f"<GDALMetadata>{items}</GDALMetadata>"
    return (
        (42112, "s", 0, metadata, True),  # GDAL_METADATA
        (42113, "s", 0, str(cf["_FillValue"]), True),  # GDAL_NODATA
    )


def write_text(path, text, overwrite=False):
    """Write ``text`` (a report, a CSV table) as UTF-8, atomically."""
    with atomic_target(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_figure(path, figure, overwrite=False, *, dpi=None):
    """Save a matplotlib figure (its format from the suffix, e.g. ``.png``), atomically; close it."""
    try:
        with atomic_target(path, overwrite) as tmp:
            figure.savefig(tmp, format=suffix(path).lstrip(".") or "png", dpi=dpi)
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)


def write_tiff_stack(path, pages, overwrite=False, metadata=None):
    """Write float32 pages (each (H, W) or (K, H, W)) as one multi-page TIFF, atomically."""
    import tifffile

    with atomic_target(path, overwrite) as tmp, tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        for page in pages:
            tif.write(
                np.ascontiguousarray(page, dtype=np.float32),
                photometric="minisblack",
                metadata=metadata,
            )


#: Video kinds of :class:`StreamWriter`: ffmpeg's encoder and its options for each.
#: ``"video"``: H.264 (yuv420p, lossy) for pictures made for the eye; ``"lossless"``:
#: FFV1 (gray for (H, W) frames, gbrp for RGB frames), which decodes to exactly the
#: values written, for masks and label maps.
VIDEO_KINDS = {
    # macro_block_size=2: H.264 with yuv420p needs even sizes; odd ones are
    # padded by ffmpeg's scaler by at most one pixel.
    "video": {"codec": "libx264", "quality": 8, "macro_block_size": 2},
    # FFV1 takes any size (no chroma subsampling): no padding, no resizing.
    "lossless": {"codec": "ffv1", "macro_block_size": 1},
}


class StreamWriter:
    """An output written piece by piece (video frames, TIFF pages), renamed into place at the end.

    ``kind`` is ``"video"`` (an ffmpeg H.264 file, lossy: for overlays and
    heatmaps), ``"lossless"`` (an ffmpeg FFV1 file, e.g. ``.mkv``, whose frames
    decode to exactly the values written: for masks and label maps) or
    ``"tiff"`` (float32 pages). Use as a context manager; :meth:`append` adds
    one frame. Nothing appears under ``path`` unless the block completes.

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output (:func:`pixgmm.io.atomic_target`); for a video its suffix
        chooses ffmpeg's container (``.mp4``, ``.mkv``, ...).
    kind : {"video", "lossless", "tiff"}
        What is written (:data:`VIDEO_KINDS` for the two videos). A
        ``"lossless"`` video takes uint8 frames only; ``"tiff"`` writes each
        frame as float32, a (H, W, K) frame as K pages.
    overwrite : bool, default False
        Replace an existing output; without it, entering the block raises
        :class:`~pixgmm.io.OutputExists` when ``path`` exists.
    fps : float, default 25.0
        Frames per second of a video; not used for ``"tiff"``.

    Raises
    ------
    ValueError
        ``kind`` is not one of the three.
    """

    def __init__(self, path, kind, overwrite=False, fps=25.0):
        if kind not in (*VIDEO_KINDS, "tiff"):
            raise ValueError(
                f"kind must be one of {', '.join([*VIDEO_KINDS, 'tiff'])}, not {kind!r}"
            )
        self.path = path
        self.kind = kind
        self.fps = fps
        self._ctx = atomic_target(self.path, overwrite)
        self._writer = None

    def __enter__(self):
        self._tmp = self._ctx.__enter__()
        return self

    def _open_video(self, frame):
        import imageio.v2 as iio2

        options = dict(VIDEO_KINDS[self.kind])
        if self.kind == "lossless":
            options["pixelformat"] = "gray" if frame.ndim == 2 else "gbrp"
        return iio2.get_writer(
            self._tmp,
            format="FFMPEG",
            mode="I",
            fps=self.fps,
            ffmpeg_log_level="error",
            **options,
        )

    def append(self, frame):
        if self.kind in VIDEO_KINDS:
            frame = np.ascontiguousarray(frame)
            if self.kind == "lossless" and frame.dtype != np.uint8:
                raise ValueError(f"a lossless video takes uint8 frames, not {frame.dtype}")
            if self._writer is None:
                self._writer = self._open_video(frame)
            self._writer.append_data(frame)
            return
        if self._writer is None:
            import tifffile

            self._writer = tifffile.TiffWriter(self._tmp, bigtiff=True)
        frame = np.asarray(frame, dtype=np.float32)
        if frame.ndim == 3:  # (H, W, K) -> K pages
            frame = np.moveaxis(frame, -1, 0)
        # contiguous: the frames form one series, read back as one (N, H, W) array
        self._writer.write(np.ascontiguousarray(frame), photometric="minisblack", contiguous=True)

    def __exit__(self, exc_type, exc, tb):
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception as close_exc:
                if exc_type is None:  # the close failed (a full disk): report it as the error
                    exc_type, exc, tb = type(close_exc), close_exc, close_exc.__traceback__
        return self._ctx.__exit__(exc_type, exc, tb)
