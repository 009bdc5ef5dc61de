"""Files for the command line: finding inputs, reading images and video, writing atomically.

Images are read in **RGB order** (alpha, if any, is kept as a 4th channel and
dropped by the caller). JPEG, 8-bit PNG, BMP, WebP and GIF go through Pillow
(via imageio, with the EXIF orientation applied so outputs line up with the
photo as viewers show it); 16-bit PNG through :mod:`pixgmm.cli.png16` (Pillow would
truncate it to 8 bits); TIFF, including multi-page files, through tifffile;
video frame by frame through imageio's ffmpeg plugin (the ``imageio-ffmpeg``
wheel ships the ffmpeg binary).

Every output is written to a temporary file in the destination folder and then
renamed over the target (:func:`os.replace`), so an interrupted run never
leaves a half-written file under an output's name.

imageio, tifffile and Pillow are imported inside the functions that need them,
so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp", ".gif"})
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv", ".flv"}
)
TIFF_SUFFIXES = frozenset({".tif", ".tiff"})

#: Output kinds, which a folder scan skips so that a second run over the same folder
#: does not take the first run's pictures as new photos.
OUTPUT_KINDS = (
    "mask",
    "probability",
    "logratio",
    "heatmap",
    "overlay",
    "density",
    "logdensity",
    "labels",
    "classes",
)


class InputError(Exception):
    """An input that cannot be read; the message is the reason shown to the user."""


def is_video(path):
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _is_output_name(path):
    parts = path.name.lower().split(".")
    return len(parts) >= 3 and parts[-2].split("-")[0] in OUTPUT_KINDS


def _has_glob(text):
    return any(ch in text for ch in "*?[")


def expand_inputs(args):
    """Turn command-line arguments into ``[(argument, path or None, reason or None)]``.

    A file is taken as given (whatever its suffix: an unsupported one is reported
    when it is read). A folder contributes its image and video files (by suffix,
    not recursively, skipping names that look like pixgmm outputs, e.g.
    ``photo.mask.png``). A pattern with ``*``, ``?`` or ``[`` is expanded (``**``
    recurses). An argument that matches nothing gives ``(argument, None, reason)``.
    """
    found = []
    for arg in args:
        path = Path(arg)
        if path.is_dir() and path.suffix.lower() == ".zarr":
            found.append((arg, None, "a Zarr store: read it lazily with --chunks auto"))
        elif path.is_dir():
            files = sorted(
                p
                for p in path.iterdir()
                if p.is_file()
                and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
                and not _is_output_name(p)
            )
            if not files:
                found.append((arg, None, "folder holds no image or video files"))
            found.extend((arg, p, None) for p in files)
        elif path.exists() or os.path.lexists(path):
            found.append((arg, path, None))
        elif _has_glob(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                found.append((arg, None, "pattern matches no files"))
            found.extend((arg, m, None) for m in matches)
        else:
            found.append((arg, None, "no such file or folder"))
    return found


# -- reading ------------------------------------------------------------------


def _read_tiff(path):
    import tifffile

    pages = []
    with tifffile.TiffFile(path) as tif:
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
        raise InputError("TIFF file holds no images")
    return pages


def _read_pillow(path):
    import imageio.v3 as iio

    arr = iio.imread(path, plugin="pillow", rotate=True)
    if arr.ndim == 4:  # animated GIF / WebP: one page per frame
        return list(arr)
    return [arr]


def check_supported(path):
    """Raise :class:`InputError` unless ``path`` has an image or video suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_SUFFIXES | VIDEO_SUFFIXES:
        raise InputError(
            f"unsupported file type {suffix or '(no suffix)'!r}; images: "
            f"{', '.join(sorted(IMAGE_SUFFIXES))}; videos: {', '.join(sorted(VIDEO_SUFFIXES))}"
        )


def read_pages(path):
    """The images in ``path`` as a list of arrays (one per page or frame), RGB(A) order.

    Each page is (H, W) for greyscale or (H, W, C). Raises :class:`InputError`
    with the reason when the file cannot be read.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise InputError("not a file" if path.exists() else "no such file")
    if suffix not in IMAGE_SUFFIXES:
        check_supported(path)
        raise InputError(f"{suffix!r} is a video; it is read frame by frame, not as an image")
    try:
        if suffix in TIFF_SUFFIXES:
            pages = _read_tiff(path)
        elif suffix == ".png":
            from .png16 import png_header, read_png16

            header = png_header(path)
            if header is not None and header[2] == 16:
                pages = [read_png16(path)]
            else:
                pages = _read_pillow(path)
        else:
            pages = _read_pillow(path)
    except InputError:
        raise
    except MemoryError:
        raise InputError("not enough memory to decode the image") from None
    except Exception as exc:  # every decoder has its own exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if any(
            text in reason
            for text in ("Could not find a backend", "cannot identify image", "can not handle")
        ):
            reason = (
                f"not a readable {suffix.lstrip('.').upper()} image (unknown or damaged format)"
            )
        raise InputError(f"cannot decode image: {reason}") from None
    return pages


def video_frames(path):
    """``(fps, iterator over RGB uint8 frames)`` of a video file, via ffmpeg."""
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
        frames = iio.imiter(path, plugin="FFMPEG")
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot open video: {reason}") from None
    fps = float(meta.get("fps") or 25.0)

    def gen():
        try:
            yield from frames
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(f"cannot decode video frame: {reason}") from None

    return fps, gen()


# -- writing ------------------------------------------------------------------


class OutputExists(Exception):
    """An output file exists and ``--overwrite`` was not given."""


def check_target(path, overwrite):
    """Raise :class:`OutputExists` if ``path`` exists and ``overwrite`` is false."""
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"{path} exists (pass --overwrite to replace it)")


@contextlib.contextmanager
def atomic_target(path, overwrite):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name keeps the suffix (writers choose the format by it) and
    starts with a dot. On any error, or interrupt, the temporary file is removed
    and ``path`` is untouched.
    """
    path = Path(path)
    check_target(path, overwrite)
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    try:
        yield tmp
        if not overwrite and os.path.lexists(path):
            raise OutputExists(f"{path} appeared while it was being written; not replaced")
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


#: zlib level for PNG outputs: 3 writes a 12-megapixel overlay about 3x faster than
#: Pillow's default 6, for files about 15% larger.
PNG_COMPRESS_LEVEL = 3


def write_png(path, array, overwrite):
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically."""
    import imageio.v3 as iio

    with atomic_target(path, overwrite) as tmp:
        iio.imwrite(
            tmp,
            np.ascontiguousarray(array),
            plugin="pillow",
            extension=".png",
            compress_level=PNG_COMPRESS_LEVEL,
        )


def write_float(path, array, overwrite):
    """Write a float map as float32 TIFF (``.tiff``) or ``.npy``, atomically.

    A stack of maps (H, W, K), e.g. one probability per class, is written to
    TIFF as K pages (K, H, W) and to ``.npy`` as it is.
    """
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and path.suffix != ".npy":
        array = np.moveaxis(array, -1, 0)
    array = np.ascontiguousarray(array)
    with atomic_target(path, overwrite) as tmp:
        if path.suffix == ".npy":
            with open(tmp, "wb") as fh:
                np.save(fh, array)
        else:
            import tifffile

            tifffile.imwrite(tmp, array, photometric="minisblack")


def write_tiff_stack(path, pages, overwrite, metadata=None):
    """Write float32 pages (each (H, W) or (K, H, W)) as one multi-page TIFF, atomically."""
    import tifffile

    with atomic_target(path, overwrite) as tmp, tifffile.TiffWriter(tmp, bigtiff=True) as tif:
        for page in pages:
            tif.write(
                np.ascontiguousarray(page, dtype=np.float32),
                photometric="minisblack",
                metadata=metadata,
            )


class StreamWriter:
    """An output written piece by piece (video frames, TIFF pages), renamed into place at the end.

    ``kind`` is ``"video"`` (an ffmpeg H.264 file) or ``"tiff"`` (float32 pages).
    Use as a context manager; :meth:`append` adds one frame. Nothing appears under
    ``path`` unless the block completes.
    """

    def __init__(self, path, kind, overwrite, fps=25.0):
        self.path = Path(path)
        self.kind = kind
        self.fps = fps
        self._ctx = atomic_target(self.path, overwrite)
        self._writer = None

    def __enter__(self):
        self._tmp = self._ctx.__enter__()
        return self

    def append(self, frame):
        if self._writer is None:
            if self.kind == "video":
                import imageio.v2 as iio2

                # macro_block_size=2: H.264 with yuv420p needs even sizes; odd ones are
                # padded by ffmpeg's scaler by at most one pixel.
                self._writer = iio2.get_writer(
                    self._tmp,
                    format="FFMPEG",
                    mode="I",
                    fps=self.fps,
                    codec="libx264",
                    quality=8,
                    macro_block_size=2,
                    ffmpeg_log_level="error",
                )
            else:
                import tifffile

                self._writer = tifffile.TiffWriter(self._tmp, bigtiff=True)
        if self.kind == "video":
            self._writer.append_data(np.ascontiguousarray(frame))
        else:
            frame = np.asarray(frame, dtype=np.float32)
            if frame.ndim == 3:  # (H, W, K) -> K pages
                frame = np.moveaxis(frame, -1, 0)
            # contiguous: the frames form one series, read back as one (N, H, W) array
            self._writer.write(
                np.ascontiguousarray(frame), photometric="minisblack", contiguous=True
            )

    def __exit__(self, exc_type, exc, tb):
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                if exc_type is None:
                    raise
        return self._ctx.__exit__(exc_type, exc, tb)
