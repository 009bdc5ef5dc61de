"""Reading images and video into memory, with the pixel limit checked first.

Images are read in **RGB order** (alpha, if any, is kept as a 4th channel and
dropped by the pixel rule, :mod:`.pixels`). JPEG, 8-bit PNG, BMP, WebP and GIF
go through Pillow (via imageio, with the EXIF orientation applied so outputs line
up with the photo as viewers show it); 16-bit PNG, interlaced or not, through
imagecodecs (libpng; Pillow would truncate it to 8 bits); TIFF, including
multi-page and compressed files, through tifffile (which needs imagecodecs for
LZW, JPEG and Zstandard: a file it cannot decode is refused, naming the package
to install); a georeferenced TIFF through rasterio when it is installed
(:mod:`.geotiff`: any band count and interleaving); video frame by frame through
imageio's ffmpeg plugin (the ``imageio-ffmpeg`` wheel ships the ffmpeg binary).
Every header is read, and its pixel count checked against the limit
(:mod:`.limits`), before anything is decoded.

A URL (``s3://bucket/photo.jpg``, ``gs://``, ``az://``, ``https://``) is read
through fsspec into the same decoders (:func:`pixgmm.io.paths.open_binary`: a
seekable file fetched in large blocks), a georeferenced TIFF at a URL through
rasterio with GDAL's ``/vsis3/``-style paths (:mod:`.remote`), and a video at
a URL is downloaded to a temporary file first (ffmpeg reads local files).

imageio, tifffile, imagecodecs and Pillow are imported inside the functions that
need them, so importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ReadError
from .errors import first_line as _first_line
from .formats import GDAL_SUFFIXES, IMAGE_SUFFIXES, TIFF_SUFFIXES, check_supported
from .formats import suffix as _suffix
from .limits import check_size
from .paths import is_url, open_source, require_file, rewind, translated


def _tiff_layout(series):
    """``(pages, height, width)`` of a tifffile series, from its shape and axes alone."""
    shape, axes = tuple(series.shape), series.axes
    if len(shape) >= 3 and axes[-1] == "S":
        spatial = shape[:-1]
    elif len(shape) >= 3 and axes[-3] == "S" and shape[-3] in (3, 4):
        spatial = shape[:-3] + shape[-2:]
    else:
        spatial = shape
    if len(spatial) < 2:
        return 1, 1, int(np.prod(spatial))
    return int(np.prod(spatial[:-2], dtype=np.int64)), int(spatial[-2]), int(spatial[-1])


def _read_tiff(path, max_pixels=None):
    import tifffile

    from ._codecs import check_tiff_codecs

    pages = []
    with tifffile.TiffFile(path) as tif:
        layouts = [_tiff_layout(s) for s in tif.series]
        if layouts:  # checked from the header, before any page is decoded
            _, h, w = layouts[0]
            n_pages = sum(n for n, _, _ in layouts)
            total = sum(n * hh * ww for n, hh, ww in layouts)
            check_size(w, h, n_pages, max_pixels, total=total)
        check_tiff_codecs(tif.series)
        for series in tif.series:
            arr = series.asarray()
            axes = series.axes
            # Leading axes other than Y, X and the samples axis are pages (frames, planes).
            if arr.ndim >= 3 and axes[-1] == "S":
                arr = arr.reshape(-1, *arr.shape[-3:])
            elif arr.ndim >= 3 and axes[-3] == "S" and arr.shape[-3] in (3, 4):
                arr = np.moveaxis(arr.reshape(-1, *arr.shape[-3:]), 1, -1)
            else:
                arr = arr.reshape(-1, *arr.shape[-2:])
            pages.extend(arr)
    if not pages:
        raise ReadError("TIFF file holds no images")
    return pages


def _read_pillow(path, max_pixels=None):
    import imageio.v3 as iio
    from PIL import Image

    # Pillow's own decompression-bomb check is replaced by pixgmm's limit, checked
    # here from the header (Image.open reads nothing else) before anything is decoded.
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(rewind(path)) as im:
        width, height = im.size
        frames = int(getattr(im, "n_frames", 1) or 1)
    check_size(width, height, frames, max_pixels)
    arr = iio.imread(rewind(path), plugin="pillow", rotate=True)
    if arr.ndim == 4:  # animated GIF / WebP: one page per frame
        return list(arr)
    return [arr]


def _read_png(path, max_pixels=None):
    from ._codecs import png_header, read_png

    header = png_header(rewind(path))
    if header is None or header.bit_depth != 16:  # 8-bit and below: Pillow, EXIF orientation
        return _read_pillow(path, max_pixels)
    check_size(header.width, header.height, 1, max_pixels)  # from the header, first
    return [read_png(rewind(path))]


def read_pages(path, max_pixels=None):
    """The images in ``path`` as a list of arrays (one per page or frame), RGB(A) order.

    Each page is (H, W) for greyscale or (H, W, C), in the dtype stored. A
    georeferenced TIFF is read with rasterio when it is installed (all bands, any
    interleaving; :func:`pixgmm.io.probe_geotiff` gives its georeferencing).
    ``path`` may be a URL (``s3://bucket/photo.jpg``; credentials from the
    environment, see :mod:`pixgmm.io.remote`).

    Parameters
    ----------
    path : str, os.PathLike or URL
        An image file: JPEG, PNG, TIFF, BMP, WebP, GIF, or a GDAL virtual
        raster (``.vrt``), by its suffix.
    max_pixels : int, optional
        The pixel limit, all pages together; 0: no limit. Default: the limit in
        force (:func:`pixgmm.io.limits.pixel_limit`).

    Returns
    -------
    list of numpy.ndarray
        One array per page or frame, in the file's order.

    Raises
    ------
    MissingInput
        Nothing is at ``path`` (a ``FileNotFoundError``): no such file, bucket or object.
    PixelLimitError
        The header declares more pixels than the limit (``max_pixels``; None:
        ``PIXGMM_MAX_PIXELS`` or :data:`~pixgmm.io.DEFAULT_MAX_PIXELS`); nothing
        was decoded.
    ReadError
        The file cannot be read or decoded, or the object store refused it
        (access denied, no connection); the message says why.
    ImportError
        ``path`` is a URL and the package for it (s3fs, gcsfs, adlfs) is not
        installed; the message names the ``cloud`` extra.

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pixgmm.io import read_pages
    >>> path = tempfile.mkdtemp() + "/two.tif"
    >>> tifffile.imwrite(path, np.zeros((2, 4, 5, 3), np.uint8), photometric="rgb")
    >>> [page.shape for page in read_pages(path)]
    [(4, 5, 3), (4, 5, 3)]
    """
    if not is_url(path):
        path = Path(path)
    suffix = _suffix(path)
    require_file(path)
    if suffix not in IMAGE_SUFFIXES:
        check_supported(path)
        raise ReadError(f"{suffix!r} is a video; it is read frame by frame, not as an image")
    if suffix in TIFF_SUFFIXES | GDAL_SUFFIXES:  # GeoTIFF, .vrt: rasterio (see .geotiff)
        from .geotiff import probe

        geo = probe(path)
        if geo is not None:
            return geo.read(max_pixels)
    try:
        with translated(path, "read"), open_source(path) as source:
            if suffix in TIFF_SUFFIXES:
                pages = _read_tiff(source, max_pixels)
            elif suffix == ".png":
                pages = _read_png(source, max_pixels)
            else:
                pages = _read_pillow(source, max_pixels)
    except ReadError:
        raise
    except MemoryError:
        raise ReadError("not enough memory to decode the image") from None
    except OSError as exc:
        if exc.errno is not None:  # the file itself cannot be opened or read
            raise ReadError(f"cannot read: {exc.strerror}") from None
        raise ReadError(_decode_reason(exc, suffix)) from None
    except Exception as exc:  # every decoder has its own exception types
        raise ReadError(_decode_reason(exc, suffix)) from None
    return pages


def read_image(path, *, page=0, max_pixels=None):
    """One page of the image at ``path`` as a NumPy array, RGB(A) order (see :func:`read_pages`).

    Parameters
    ----------
    path : str, os.PathLike or URL
        An image file, as for :func:`read_pages`.
    page : int, default 0
        The page or frame to return (negative: counted from the end). Every
        page is read first.
    max_pixels : int, optional
        The pixel limit, all pages together, as for :func:`read_pages`.

    Returns
    -------
    numpy.ndarray
        (H, W) for greyscale or (H, W, C), in the dtype stored.

    Raises
    ------
    ValueError
        The file has no page ``page``.
    MissingInput, PixelLimitError, ReadError, ImportError
        As :func:`read_pages` raises them.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> from pixgmm.io import read_image
    >>> path = tempfile.mkdtemp() + "/photo.png"
    >>> Image.fromarray(np.full((4, 6, 3), 200, np.uint8)).save(path)
    >>> image = read_image(path)
    >>> image.shape, image.dtype.name
    ((4, 6, 3), 'uint8')
    """
    pages = read_pages(path, max_pixels)
    if not -len(pages) <= page < len(pages):
        raise ValueError(f"page={page} is not in {path}, which holds {len(pages)} page(s)")
    return pages[page]


def _decode_reason(exc, suffix):
    reason = _first_line(exc)
    if any(
        text in reason
        for text in ("Could not find a backend", "cannot identify image", "can not handle")
    ):
        reason = f"not a readable {suffix.lstrip('.').upper()} image (unknown or damaged format)"
    return f"cannot decode image: {reason}"


def video_frames(path, max_pixels=None):
    """``(fps, iterator over RGB uint8 frames)`` of a video file, via ffmpeg.

    A frame larger than the pixel limit is refused before any is decoded. A
    video at a URL is downloaded to a temporary file first (removed when the
    frames are exhausted or the iterator is closed).

    Parameters
    ----------
    path : str, os.PathLike or URL
        The video (MP4, MKV, AVI, ...).
    max_pixels : int, optional
        The pixel limit of one frame (:mod:`pixgmm.io.limits`).

    Returns
    -------
    fps : float
        Frames per second (25 when the file does not say).
    frames : iterator of numpy.ndarray
        (H, W, 3) uint8 RGB frames, decoded one at a time.

    Examples
    --------
    >>> import tempfile, numpy as np, imageio.v3 as iio
    >>> from pixgmm.io import video_frames
    >>> path = tempfile.mkdtemp() + "/clip.mkv"
    >>> iio.imwrite(path, np.zeros((3, 16, 16, 3), np.uint8), plugin="FFMPEG", fps=5,
    ...             codec="ffv1")
    >>> fps, frames = video_frames(path)
    >>> fps, [f.shape for f in frames]
    (5.0, [(16, 16, 3), (16, 16, 3), (16, 16, 3)])
    """
    import imageio.v3 as iio

    if is_url(path):
        return _remote_video_frames(path, max_pixels)

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception as exc:
        raise ReadError(f"cannot open video: {_first_line(exc)}") from None
    size = meta.get("size") or meta.get("source_size")
    if size:
        check_size(size[0], size[1], 1, max_pixels)
    try:
        frames = iio.imiter(path, plugin="FFMPEG")
    except Exception as exc:
        raise ReadError(f"cannot open video: {_first_line(exc)}") from None
    fps = float(meta.get("fps") or 25.0)

    def gen():
        try:
            yield from frames
        except Exception as exc:
            raise ReadError(f"cannot decode video frame: {_first_line(exc)}") from None

    return fps, gen()


def _remote_video_frames(url, max_pixels):
    import shutil
    import tempfile

    from .remote import fetch

    require_file(url)
    folder = tempfile.mkdtemp(prefix="pixgmm-video-")
    try:
        with translated(url, "read"):
            local = fetch(url, folder)
        fps, frames = video_frames(local, max_pixels)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def gen():
        try:
            yield from frames
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    return fps, gen()
