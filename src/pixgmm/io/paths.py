"""Paths and URLs: one name for a local file and an object in a bucket, and what is at it.

Every reader and writer of :mod:`pixgmm.io` takes a local path or a URL
(``s3://bucket/key``, ``gs://``, ``az://``, ``https://``). The functions here
answer the questions the I/O layer asks of either (does it exist? is it a
folder? open it for reading; make the output folder) with the standard
library for a local path and through :mod:`.remote` (fsspec) for a URL, so the
readers and writers ask instead of knowing which.

Tasks run in worker processes whose working directory may differ (on a
cluster, always may), so every local output path is made absolute in the
calling process before any task is sent (:func:`absolute`).

This module imports only the standard library; fsspec is imported on first
use of a URL.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from pathlib import Path

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(name):
    """True when ``name`` is a URL (``s3://``, ``gs://``, ``https://``, ...), not a local path.

    Examples
    --------
    >>> from pixgmm.io.paths import is_url
    >>> is_url("s3://bucket/scene.tif"), is_url("photos/scene.tif")
    (True, False)
    """
    return bool(_SCHEME.match(os.fspath(name)))


class URLPath(str):
    """A URL that joins and splits like a :class:`pathlib.PurePosixPath`: the command line's
    name for an input or ``--out`` in a bucket.

    It *is* the URL string (a ``str`` subclass), so every function of
    :mod:`pixgmm.io` takes it where it takes a URL; ``/``, :attr:`name`,
    :attr:`suffix`, :attr:`stem` and :attr:`parent` work on its key as on a
    path. It has no ``__fspath__``: code that would treat it as a local file
    fails instead of writing to a folder named ``s3:``.

    Examples
    --------
    >>> from pixgmm.io.paths import URLPath
    >>> out = URLPath("s3://bucket/maps/")
    >>> out / "scene.mask.zarr"
    URLPath('s3://bucket/maps/scene.mask.zarr')
    >>> (out / "scene.mask.zarr").suffix, URLPath("s3://bucket/a/b.tif").parent
    ('.zarr', URLPath('s3://bucket/a'))
    """

    def __new__(cls, url):
        text = str(url)
        if not is_url(text):
            raise ValueError(f"{text!r} is not a URL (scheme://...)")
        scheme, rest = text.split("://", 1)
        rest = rest.rstrip("/")
        return super().__new__(cls, f"{scheme}://{rest}")

    def __repr__(self):
        return f"URLPath({str.__repr__(self)})"

    def __str__(self):
        return str.__str__(self)

    def __truediv__(self, other):
        return URLPath(f"{self}/{str(other).lstrip('/')}")

    @property
    def _key(self):
        return self.split("://", 1)[1]

    @property
    def name(self):
        key = self._key
        return posixpath.basename(key) if "/" in key else ""

    @property
    def suffix(self):
        return posixpath.splitext(self.name)[1]

    @property
    def stem(self):
        return posixpath.splitext(self.name)[0]

    @property
    def parent(self):
        head = posixpath.dirname(self._key)
        return URLPath(f"{self.split('://', 1)[0]}://{head or self._key}")


def as_path(name):
    """A command-line argument as a name the I/O layer takes: a :class:`URLPath` or a ``Path``.

    Examples
    --------
    >>> from pixgmm.io.paths import as_path
    >>> as_path("s3://bucket/out"), as_path("out")
    (URLPath('s3://bucket/out'), PosixPath('out'))
    """
    if isinstance(name, URLPath):
        return name
    text = os.fspath(name)
    return URLPath(text) if is_url(text) else Path(text)


def absolute(path):
    """``path`` as a string; a local path made absolute in *this* process's folder.

    Tasks run in worker processes whose working directory may differ (on a
    cluster, always may): a relative path would name another store there. A
    URL is returned as it is (without a trailing slash).
    """
    name = os.fspath(path)
    if is_url(name):
        return str(name).rstrip("/")
    return os.path.abspath(os.path.expanduser(name))


def _remote():
    from . import remote

    return remote


def exists(name):
    """True when something is at ``name`` (a local path, even a broken link, or a URL)."""
    if is_url(name):
        return _remote().exists(name)
    return os.path.lexists(name)


def is_file(name):
    """True when ``name`` is a file (a local one, or an object in a bucket)."""
    if is_url(name):
        return _remote().kind(name) == "file"
    return os.path.isfile(name)


def is_dir(name):
    """True when ``name`` is a folder (a local one, or a prefix holding objects)."""
    if is_url(name):
        return _remote().kind(name) == "folder"
    return os.path.isdir(name)


def occupied(name):
    """True when ``name`` exists as anything but an empty folder (or, for a URL, a prefix
    holding no object)."""
    if is_url(name):
        return _remote().exists(name)
    if not os.path.lexists(name):
        return False
    return not (os.path.isdir(name) and not os.path.islink(name) and not os.listdir(name))


def require_file(name):
    """Raise :class:`~pixgmm.io.MissingInput` or :class:`~pixgmm.io.ReadError` unless
    ``name`` is a file (a local one, or an object in a bucket) that can be read.

    The reason is one line: ``"no such file"``, ``"not a file"``, ``"no such bucket
    'b'"``, ``"access denied (...)"``, ``"cannot connect to the object store (...)"``.
    """
    from .errors import MissingInput, ReadError

    if not is_url(name):
        if not os.path.isfile(name):
            if os.path.exists(name):
                raise ReadError("not a file")
            raise MissingInput("no such file")
        return
    remote = _remote()
    with remote.translated(name, "read"):
        found = remote.kind(name)
        if found is None:
            raise FileNotFoundError(name)  # told apart (bucket or key) by translated()
    if found != "file":
        raise ReadError("not a file (a prefix holding objects)")


def missing_note(name):
    """What a "not found" message adds for ``name``: ``" (no such bucket 'b')"`` for a URL
    whose bucket does not exist, else ``""``."""
    return _remote().missing_bucket(name) if is_url(name) else ""


def stat_token(name):
    """What identifies the current content of ``name``: ``(size, modification time or ETag)``."""
    if is_url(name):
        return _remote().stat_token(name)
    st = os.stat(name)
    return st.st_size, st.st_mtime_ns


def open_binary(name):
    """``name`` opened for reading bytes (a seekable file object); use it as a context manager."""
    if is_url(name):
        return _remote().open_binary(name)
    return open(name, "rb")  # the caller closes it


def open_source(name):
    """What the decoders read, as a context manager: a local path as it is, a URL as a
    seekable remote file (:func:`open_binary`). Decoders read either; with
    :func:`rewind` between two readers of the same file object."""
    if is_url(name):
        return open_binary(name)
    return contextlib.nullcontext(name)


def rewind(source):
    """``source`` ready to be read from its start: a path as it is, a file object seeked to 0."""
    if hasattr(source, "seek"):
        source.seek(0)
    return source


def make_folder(name):
    """Make the local folder ``name`` (and its parents); for a URL, check that its bucket
    can be reached (object stores have no folders to make).

    Raises :class:`~pixgmm.io.OutputError` naming ``name`` and the reason.
    """
    from .errors import OutputError

    if is_url(name):
        _remote().check_bucket(name)
        return
    try:
        os.makedirs(name, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {name}: {exc.strerror or exc}") from exc


def translated(name, action):
    """A context in which errors of a URL's object store become pixgmm's I/O errors.

    ``action`` is ``"read"`` (:class:`~pixgmm.io.ReadError`, or
    :class:`~pixgmm.io.MissingInput` for a missing bucket or key) or ``"write"``
    (:class:`~pixgmm.io.OutputError` naming ``name``); the message gives the reason
    in one line (no such bucket, access denied, no connection, a missing package).
    For a local path it changes nothing.
    """
    if is_url(name):
        return _remote().translated(name, action)
    return contextlib.nullcontext()
