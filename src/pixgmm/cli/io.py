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
import fnmatch
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


class OutputError(Exception):
    """An output that cannot be written; the message names the output and the OS's reason."""


def is_video(path):
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


#: Marker in the name of every temporary file pixgmm writes (``.photo.mask.png.pixgmm-tmp-...``).
TEMP_MARKER = ".pixgmm-tmp-"


def is_temporary(name):
    """True for the name of a temporary output file (hidden, with :data:`TEMP_MARKER`)."""
    return TEMP_MARKER in str(name)


def _is_output_name(path):
    parts = path.name.lower().split(".")
    return len(parts) >= 3 and parts[-2].split("-")[0] in OUTPUT_KINDS


def _is_candidate(path):
    """A file name a folder scan or a pattern takes as an input: an image or video suffix,
    not hidden, not a temporary file, not named like a pixgmm output."""
    name = path.name
    return (
        not name.startswith(".")
        and not is_temporary(name)
        and path.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES
        and not _is_output_name(path)
    )


def _has_glob(text):
    return any(ch in text for ch in "*?[")


def _entries(directory):
    try:
        with os.scandir(directory or ".") as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []  # an unreadable folder matches nothing, as for glob.glob


def _is_dir(entry):
    try:
        return entry.is_dir()  # follows symlinks
    except OSError:
        return False


def _is_file(entry):
    try:
        return entry.is_file()
    except OSError:
        return False


def glob_files(pattern):
    """Files matching ``pattern``, each once, in sorted order; ``**`` recurses without looping.

    Like ``glob.glob(pattern, recursive=True)`` (hidden names match only a
    pattern part that starts with a dot), except that every folder is entered at
    most once per pattern position, by its device and inode: a symbolic link
    back to a parent (``self -> .``) or any other loop is not followed again,
    and a file reached by several paths is listed once (by its real path).
    """
    if "**" not in pattern:
        matches = glob.glob(pattern)
    else:
        matches = _walk_pattern(pattern)
    chosen = {}  # real path -> the path listed: the file itself rather than a link to it
    for m in sorted(matches):
        if not os.path.isfile(m):
            continue
        key = os.path.realpath(m)
        if key not in chosen or (os.path.islink(chosen[key]) and not os.path.islink(m)):
            chosen[key] = m
    return sorted(Path(m) for m in chosen.values())


def _walk_pattern(pattern):
    parts = list(Path(pattern).parts)
    first = next(i for i, part in enumerate(parts) if _has_glob(part))
    root = os.path.join(*parts[:first]) if first else ""
    comps = parts[first:]
    found, visited = [], set()

    def join(d, name):
        return os.path.join(d, name) if d else name

    def visit(d, k):
        try:
            st = os.stat(d or ".")
        except OSError:
            return
        key = (st.st_dev, st.st_ino, k)
        if key in visited:
            return  # a loop, or a folder reached twice: once is enough
        visited.add(key)
        comp, last = comps[k], k == len(comps) - 1
        entries = _entries(d)
        if comp == "**":
            if last:
                found.extend(join(d, e.name) for e in entries if not e.name.startswith("."))
            else:
                visit(d, k + 1)  # ** matching no folder
            for e in entries:
                if not e.name.startswith(".") and _is_dir(e):
                    visit(join(d, e.name), k)
            return
        for e in entries:
            if e.name.startswith(".") and not comp.startswith("."):
                continue
            if not fnmatch.fnmatchcase(e.name, comp):
                continue
            if last:
                if _is_file(e):
                    found.append(join(d, e.name))
            elif _is_dir(e):
                visit(join(d, e.name), k + 1)

    visit(root, 0)
    return found


def expand_inputs(args):
    """Turn command-line arguments into ``[(argument, path or None, reason or None)]``.

    A file is taken as given (whatever its suffix: an unsupported one is reported
    when it is read). A folder contributes its image and video files (by suffix,
    not recursively, skipping hidden files, pixgmm's temporary files and names
    that look like pixgmm outputs, e.g. ``photo.mask.png``); a folder that cannot
    be read is one failed input. A pattern with ``*``, ``?`` or ``[`` is expanded
    (``**`` recurses, entering each folder once, so symbolic-link loops are
    skipped) with the same filter, each file once. An argument that matches
    nothing gives ``(argument, None, reason)``.
    """
    found = []
    for arg in args:
        try:
            found.extend(_expand_one(arg))
        except OSError as exc:  # e.g. a path inside a folder that cannot be entered
            found.append((arg, None, f"cannot read: {exc.strerror or exc}"))
    return found


def _expand_one(arg):
    path = Path(arg)
    if path.is_dir() and path.suffix.lower() == ".zarr":
        return [(arg, None, "a Zarr store: read it lazily with --chunks auto")]
    if path.is_dir():
        try:
            files = sorted(p for p in path.iterdir() if _is_candidate(p) and p.is_file())
        except OSError as exc:
            return [(arg, None, f"cannot read folder: {exc.strerror or exc}")]
        if not files:
            return [(arg, None, "folder holds no image or video files")]
        return [(arg, p, None) for p in files]
    if path.exists() or os.path.lexists(path):
        return [(arg, path, None)]
    if _has_glob(arg):
        matches = [m for m in glob_files(arg) if _is_candidate(m)]
        if not matches:
            return [(arg, None, "pattern matches no image or video files")]
        return [(arg, m, None) for m in matches]
    return [(arg, None, "no such file or folder")]


# -- reading ------------------------------------------------------------------

#: The way out named when an image is over the pixel limit (see :func:`check_size`).
_LAZY_WAY_OUT = (
    "process it in blocks with --chunks (TIFF and Zarr are read lazily), or raise the limit "
    "with --max-pixels N or PIXGMM_MAX_PIXELS=N"
)
_OTHER_WAY_OUT = (
    "raise the limit with --max-pixels N or PIXGMM_MAX_PIXELS=N, or convert it to a tiled "
    "TIFF and process it in blocks with --chunks"
)


def check_size(width, height, pages, max_pixels, suffix, total=None):
    """Raise :class:`InputError` before decoding an image over the pixel limit.

    The limit (:data:`pixgmm.bigimage.DEFAULT_MAX_PIXELS`, ``PIXGMM_MAX_PIXELS``,
    ``--max-pixels``) counts every page of a file read into memory together;
    ``total`` is that count when the pages differ in size (else width x height x pages).
    """
    from ..bigimage import _check_pixel_limit

    total = int(width) * int(height) * int(pages) if total is None else int(total)
    text = f"{width} x {height} pixels" + (f" x {pages} pages" if pages > 1 else "")
    way_out = _LAZY_WAY_OUT if suffix in TIFF_SUFFIXES else _OTHER_WAY_OUT
    try:
        _check_pixel_limit(text, total, max_pixels, way_out)
    except ValueError as exc:
        raise InputError(str(exc)) from None


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

    pages = []
    with tifffile.TiffFile(path) as tif:
        layouts = [_tiff_layout(s) for s in tif.series]
        if layouts:  # checked from the header, before any page is decoded
            _, h, w = layouts[0]
            n_pages = sum(n for n, _, _ in layouts)
            total = sum(n * hh * ww for n, hh, ww in layouts)
            check_size(w, h, n_pages, max_pixels, ".tif", total=total)
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


def _read_pillow(path, max_pixels=None):
    import imageio.v3 as iio
    from PIL import Image

    # Pillow's own decompression-bomb check is replaced by pixgmm's limit, checked
    # here from the header (Image.open reads nothing else) before anything is decoded.
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as im:
        width, height = im.size
        frames = int(getattr(im, "n_frames", 1) or 1)
    check_size(width, height, frames, max_pixels, Path(path).suffix.lower())
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


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_pages(path, max_pixels=None):
    """The images in ``path`` as a list of arrays (one per page or frame), RGB(A) order.

    Each page is (H, W) for greyscale or (H, W, C). Raises :class:`InputError`
    with the reason when the file cannot be read, or when its header declares
    more pixels than the limit (``max_pixels``; None: ``PIXGMM_MAX_PIXELS`` or
    the default), before decoding it.
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
            pages = _read_tiff(path, max_pixels)
        elif suffix == ".png":
            from .png16 import png_header, read_png16

            header = png_header(path)
            if header is not None and header[2] == 16:
                check_size(header[0], header[1], 1, max_pixels, suffix)
                pages = [read_png16(path)]
            else:
                pages = _read_pillow(path, max_pixels)
        else:
            pages = _read_pillow(path, max_pixels)
    except InputError:
        raise
    except MemoryError:
        raise InputError("not enough memory to decode the image") from None
    except OSError as exc:
        if exc.errno is not None:  # the file itself cannot be opened or read
            raise InputError(f"cannot read: {exc.strerror}") from None
        raise InputError(_decode_reason(exc, suffix)) from None
    except Exception as exc:  # every decoder has its own exception types
        raise InputError(_decode_reason(exc, suffix)) from None
    return pages


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

    A frame larger than the pixel limit is refused before any is decoded.
    """
    import imageio.v3 as iio

    try:
        meta = iio.immeta(path, plugin="FFMPEG")
    except Exception as exc:
        raise InputError(f"cannot open video: {_first_line(exc)}") from None
    size = meta.get("size") or meta.get("source_size")
    if size:
        check_size(size[0], size[1], 1, max_pixels, Path(path).suffix.lower())
    try:
        frames = iio.imiter(path, plugin="FFMPEG")
    except Exception as exc:
        raise InputError(f"cannot open video: {_first_line(exc)}") from None
    fps = float(meta.get("fps") or 25.0)

    def gen():
        try:
            yield from frames
        except Exception as exc:
            raise InputError(f"cannot decode video frame: {_first_line(exc)}") from None

    return fps, gen()


# -- writing ------------------------------------------------------------------


class OutputExists(Exception):
    """An output file exists and ``--overwrite`` was not given."""


def check_target(path, overwrite):
    """Raise :class:`OutputExists` if ``path`` exists and ``overwrite`` is false."""
    if not overwrite and os.path.lexists(path):
        raise OutputExists(f"{path} exists (pass --overwrite to replace it)")


def temp_name(path, pid=None, token=None):
    """The temporary file beside ``path`` that an output is written to before its rename.

    Hidden, and marked with :data:`TEMP_MARKER` and the writer's process id
    (``.photo.mask.png.pixgmm-tmp-8337-1f2e3d.png``): folder scans and patterns
    never take it as an input, and a later run removes it if its writer is gone.
    It keeps the output's suffix, by which writers choose the format.
    """
    import secrets

    path = Path(path)
    pid = os.getpid() if pid is None else pid
    token = secrets.token_hex(3) if token is None else token
    return path.with_name(f".{path.name}{TEMP_MARKER}{pid}-{token}{path.suffix}")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def remove_stale_temporaries(path):
    """Remove temporary files of ``path`` left by writers that no longer run (a killed run)."""
    path = Path(path)
    prefix = f".{path.name}{TEMP_MARKER}"
    for stale in path.parent.glob(glob.escape(prefix) + "*"):
        pid_text = stale.name[len(prefix) :].split("-", 1)[0]
        if pid_text.isdigit() and not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                stale.unlink()


def _os_reason(exc, folder):
    """The operating system's reason for a failed write, in its own words."""
    import errno as codes

    number = getattr(exc, "errno", None)
    if number in (codes.ENOSPC, codes.EDQUOT, codes.EACCES, codes.EPERM, codes.EROFS):
        return os.strerror(number)
    # Some writers report a full disk without its errno: numpy's "N requested and M
    # written", a broken pipe to ffmpeg. Ask the file system.
    with contextlib.suppress(OSError):
        st = os.statvfs(folder)
        if st.f_bavail * st.f_frsize < 65536:
            return os.strerror(codes.ENOSPC)
    return os.strerror(number) if number else _first_line(exc)


@contextlib.contextmanager
def atomic_target(path, overwrite):
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary name (:func:`temp_name`) keeps the suffix (writers choose the
    format by it), starts with a dot and carries pixgmm's marker. On any error,
    or interrupt, the temporary file is removed and ``path`` is untouched. An
    operating-system error while writing (a full disk, no permission) becomes
    :class:`OutputError`, whose message names ``path`` (not the temporary file)
    and the system's reason.
    """
    path = Path(path)
    check_target(path, overwrite)
    remove_stale_temporaries(path)
    tmp = temp_name(path)
    try:
        try:
            yield tmp
            if not overwrite and os.path.lexists(path):
                raise OutputExists(f"{path} appeared while it was being written; not replaced")
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_os_reason(exc, path.parent)}") from exc
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
            except Exception as close_exc:
                if exc_type is None:  # the close failed (a full disk): report it as the error
                    exc_type, exc, tb = type(close_exc), close_exc, close_exc.__traceback__
        return self._ctx.__exit__(exc_type, exc, tb)
