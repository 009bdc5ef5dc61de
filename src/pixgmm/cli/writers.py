"""Writing the command line's outputs atomically: a temporary file, renamed into place.

Every output is written to a hidden temporary file in the destination folder
and then renamed over the target (:func:`os.replace`), so an interrupted run
never leaves a half-written file under an output's name, and a later run
removes the temporaries of writers that are gone.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

import numpy as np

from .inputs import TEMP_MARKER
from .inputs import first_line as _first_line


class OutputError(Exception):
    """An output that cannot be written; the message names the output and the OS's reason."""


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


def write_png(path, array, overwrite, text=None):
    """Write a uint8 (H, W) or (H, W, 3) array as PNG, atomically.

    ``text`` (a dict of str) is written as the PNG's text chunks (tEXt).
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
    """

    def __init__(self, path, kind, overwrite, fps=25.0):
        if kind not in (*VIDEO_KINDS, "tiff"):
            raise ValueError(
                f"kind must be one of {', '.join([*VIDEO_KINDS, 'tiff'])}, not {kind!r}"
            )
        self.path = Path(path)
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
