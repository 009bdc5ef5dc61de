"""Atomic outputs: a hidden temporary file beside the target, renamed into place.

Every output pixgmm writes to a local file goes to a hidden temporary file in
the destination folder and is then renamed over the target
(:func:`os.replace`), so an interrupted run never leaves a half-written file
under an output's name, and a later run removes the temporaries of writers that
are gone. (Zarr stores use a completion marker instead: :mod:`.zarrstore`.)

An output at a URL (``s3://bucket/maps/photo.mask.png``) is written to a local
temporary file and uploaded whole when the writer is done
(:func:`pixgmm.io.remote.upload_target`): object stores make an object visible
only once its upload is complete, so a partial object never appears under the
output's name either.
"""

from __future__ import annotations

import contextlib
import glob
import os
from pathlib import Path

from .errors import OutputError, OutputExists
from .errors import first_line as _first_line
from .paths import exists as _exists
from .paths import is_url as _is_url

#: Marker in the name of every temporary file pixgmm writes (``.photo.mask.png.pixgmm-tmp-...``).
TEMP_MARKER = ".pixgmm-tmp-"


def is_temporary(name):
    """True for the name of a temporary output file (hidden, with :data:`TEMP_MARKER`)."""
    return TEMP_MARKER in str(name)


def check_target(path, overwrite):
    """Raise :class:`OutputExists` if ``path`` exists and ``overwrite`` is false."""
    if not overwrite and _exists(path):
        raise OutputExists(
            f"{path} exists; pass overwrite=True (--overwrite on the command line) to replace it"
        )


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
    and the system's reason. For a URL the temporary file is local and is
    uploaded to ``path`` at the end (:func:`pixgmm.io.remote.upload_target`).

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output.
    overwrite : bool
        Replace an existing ``path``; without it an existing one is an
        :class:`OutputExists` (before anything is written).

    Yields
    ------
    pathlib.Path
        The temporary file to write; it becomes ``path`` when the block ends
        without an error.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from pixgmm.io import atomic_target
    >>> folder = Path(tempfile.mkdtemp())
    >>> with atomic_target(folder / "report.txt", overwrite=False) as tmp:
    ...     _ = tmp.write_text("done")
    ...     print(tmp.name.startswith(".report.txt.pixgmm-tmp-"), (folder / "report.txt").exists())
    True False
    >>> (folder / "report.txt").read_text(), [p.name for p in folder.iterdir()]
    ('done', ['report.txt'])
    """
    if _is_url(path):
        from .remote import upload_target

        with upload_target(str(path), overwrite) as tmp:
            yield Path(tmp)
        return
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
        except (OutputExists, OutputError):  # already said which output and why
            raise
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_os_reason(exc, path.parent)}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
