"""Finding the command line's inputs: files, folders and patterns, and the names they skip.

A folder contributes its image and video files; a pattern with ``*``, ``?`` or
``[`` is expanded (``**`` recurses without following loops). Hidden files,
pixgmm's temporary files and names that look like pixgmm outputs
(``photo.mask.png``) are skipped, so a second run over a folder does not take the
first run's pictures as new photos. A URL (``s3://bucket/photos/``,
``s3://bucket/photos/*.jpg``, ``gs://...``) is expanded the same way, through
:mod:`pixgmm.io.remote`: an object is taken as given, a prefix is a folder.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from pathlib import Path

from ..io.atomic import is_temporary
from ..io.errors import ReadError as InputError
from ..io.formats import IMAGE_SUFFIXES, VIDEO_SUFFIXES, is_zarr
from ..io.paths import URLPath, is_url

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
    "confidence",
)


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


def expand_inputs(args, *, zarr_stores=False):
    """Turn command-line arguments into ``[(argument, path or None, reason or None)]``.

    A file is taken as given (whatever its suffix: an unsupported one is reported
    when it is read). A folder contributes its image and video files (by suffix,
    not recursively, skipping hidden files, pixgmm's temporary files and names
    that look like pixgmm outputs, e.g. ``photo.mask.png``); a folder that cannot
    be read is one failed input. A pattern with ``*``, ``?`` or ``[`` is expanded
    (``**`` recurses, entering each folder once, so symbolic-link loops are
    skipped) with the same filter, each file once. An argument that matches
    nothing gives ``(argument, None, reason)``.

    ``zarr_stores``: a Zarr store (a folder named ``*.zarr`` or holding Zarr
    metadata) is one input (for ``--chunks``); without it, it is refused with
    the advice to read it lazily.

    A URL is expanded the same way (an object as given, a prefix as a folder, a
    pattern with fsspec's glob), its path a :class:`~pixgmm.io.paths.URLPath`;
    an object store's refusal (no such bucket, access denied, no connection, the
    ``cloud`` extra missing) is that argument's reason.
    """
    found = []
    for arg in args:
        try:
            if is_url(arg):
                found.extend(_expand_url(arg, zarr_stores))
            else:
                found.extend(_expand_one(arg, zarr_stores))
        except OSError as exc:  # e.g. a path inside a folder that cannot be entered
            found.append((arg, None, f"cannot read: {exc.strerror or exc}"))
    return found


_ZARR_REFUSED = "a Zarr store: read it lazily with --chunks auto"


def _expand_one(arg, zarr_stores=False):
    if zarr_stores and is_zarr(arg):
        return [(arg, Path(arg), None)]
    path = Path(arg)
    if path.is_dir() and path.suffix.lower() == ".zarr":
        return [(arg, None, _ZARR_REFUSED)]
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


def _expand_url(arg, zarr_stores):
    """:func:`expand_inputs` for one URL, through :mod:`pixgmm.io.remote`."""
    from ..io import paths as _paths
    from ..io import remote as _remote

    try:
        with _paths.translated(arg, "read"):
            if zarr_stores and is_zarr(arg):
                return [(arg, URLPath(arg), None)]
            kind = _remote.kind(arg)
            if kind == "file":
                return [(arg, URLPath(arg), None)]
            if kind == "folder":
                if URLPath(arg).suffix.lower() == ".zarr":
                    return [(arg, None, _ZARR_REFUSED)]
                files = [p for p in map(URLPath, _remote.files_in(arg)) if _is_candidate(p)]
                if not files:
                    return [(arg, None, "folder holds no image or video files")]
                return [(arg, p, None) for p in files]
            if _has_glob(arg):
                matches = [p for p in map(URLPath, _remote.glob(arg)) if _is_candidate(p)]
                if not matches:
                    return [(arg, None, "pattern matches no image or video files")]
                return [(arg, m, None) for m in matches]
            return [(arg, None, f"no such file or folder{_paths.missing_note(arg)}")]
    except (InputError, ImportError) as exc:
        return [(arg, None, str(exc))]


def way_out(path, lazy):
    """What a refusal over the pixel limit advises for ``path``: the options the command has.

    ``lazy``: the command has ``--chunks`` (``skin``, ``density``, ``classify``), with
    which TIFF and Zarr images are read in blocks and the limit does not apply.
    """
    raise_it = "raise the limit with --max-pixels N or PIXGMM_MAX_PIXELS=N"
    if not lazy:
        return raise_it
    if Path(path).suffix.lower() in (".tif", ".tiff", ".zarr"):
        return f"process it in blocks with --chunks (TIFF and Zarr are read lazily), or {raise_it}"
    return f"{raise_it}, or convert it to a tiled TIFF and process it in blocks with --chunks"
