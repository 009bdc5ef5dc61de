"""Object storage: a URL turned into what each library needs, and its errors in one line.

pixgmm reads and writes ``s3://``, ``gs://``, ``az://`` (``abfs://``) and
``https://`` URLs wherever it takes a path. This module is the one place that
knows how:

============================  ===================================================================
fsspec (PNG/JPEG/TIFF bytes,  :func:`filesystem` gives the fsspec filesystem and path of a URL
listing, uploads)             (``s3fs``, ``gcsfs``, ``adlfs``, or fsspec's HTTP); :func:`open_binary`
                              a seekable file read in blocks of :data:`BLOCK_SIZE`
zarr                          a URL string, which zarr opens with fsspec (``zarr.open(url)``)
GDAL (rasterio)               :func:`gdal_path` (``s3://b/k`` -> ``/vsis3/b/k``) and
                              :func:`gdal_env` (the endpoint settings GDAL needs, below)
single-file outputs           written to a local temporary file and uploaded whole
                              (:func:`upload_target`): a partial object never appears
============================  ===================================================================

**Credentials and endpoints come from the standard environment only**, never
from pixgmm's options or files: for S3 ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` /
``AWS_DEFAULT_REGION``, ``AWS_PROFILE`` (and ``~/.aws/``), and the endpoint of an
S3-compatible store (MinIO, Ceph, a local test server) in ``AWS_ENDPOINT_URL``
or ``AWS_ENDPOINT_URL_S3``; for Google Cloud Storage and Azure what gcsfs and
adlfs read (``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_ACCOUNT_NAME``,
``AZURE_STORAGE_CONNECTION_STRING``, ...); fsspec's configuration files and
``FSSPEC_*`` variables apply as well. botocore (under s3fs) reads
``AWS_ENDPOINT_URL`` itself; GDAL does not, so :func:`gdal_env` translates it
into GDAL's settings: ``AWS_S3_ENDPOINT`` (host and port), ``AWS_HTTPS``
(``NO`` for an ``http://`` endpoint) and ``AWS_VIRTUAL_HOSTING=FALSE`` (path-style
requests, which S3-compatible stores expect). GDAL's own variables, when set,
win. Workers of a Dask cluster read the same variables in their own
environment: a local cluster inherits them; on a remote one, set them there.

The packages come with the ``cloud`` extra (``pip install "pixgmm[cloud]"``:
s3fs, gcsfs, adlfs, and fsspec with them). Without them, a URL is refused with
an ImportError naming the extra. fsspec is imported on first use.
"""

from __future__ import annotations

import contextlib
import os

#: How to get the object-storage packages, named by every error about their absence.
CLOUD_EXTRA = 'pip install "pixgmm[cloud]"'
#: Block size of remote files opened for reading: each request fetches at least this
#: much ahead, so a TIFF's tiles, read in file order, cost few requests.
BLOCK_SIZE = 4 * 2**20
#: The package fsspec needs for each protocol.
PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "http": "aiohttp",
    "https": "aiohttp",
}
#: GDAL's virtual file system prefix for each protocol.
_GDAL_PREFIX = {
    "s3": "/vsis3/",
    "s3a": "/vsis3/",
    "gs": "/vsigs/",
    "gcs": "/vsigs/",
    "az": "/vsiaz/",
    "abfs": "/vsiaz/",
    "abfss": "/vsiaz/",
}
#: Where each protocol's credentials come from, for "access denied" messages.
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and "
    "AWS_ENDPOINT_URL for a store other than AWS",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or gcloud's default credentials",
    "az": "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY, or "
    "AZURE_STORAGE_CONNECTION_STRING",
}
_CREDENTIALS.update(s3a=_CREDENTIALS["s3"], gcs=_CREDENTIALS["gs"])
_CREDENTIALS.update(abfs=_CREDENTIALS["az"], abfss=_CREDENTIALS["az"])


def protocol(url):
    """The protocol of ``url`` (``"s3"``), lower case."""
    return str(url).split("://", 1)[0].lower()


def filesystem(url):
    """``(fsspec filesystem, path)`` for ``url``, e.g. ``(S3FileSystem, "bucket/key")``.

    Credentials and endpoints come from the environment (see the module's
    notes); filesystems are cached by fsspec, so this is cheap after the first call.

    Raises
    ------
    ImportError
        fsspec or the protocol's package (s3fs, gcsfs, adlfs) is not installed;
        the message names the ``cloud`` extra.

    Examples
    --------
    >>> from pixgmm.io.remote import filesystem
    >>> fs, path = filesystem("memory://demo/photo.png")
    >>> type(fs).__name__, path
    ('MemoryFileSystem', '/demo/photo.png')
    """
    name = str(url)
    scheme = protocol(name)
    package = PACKAGES.get(scheme, "fsspec")
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise ImportError(
            f"{scheme}:// URLs need fsspec and {package}, which are not installed; {CLOUD_EXTRA}"
        ) from None
    try:
        return url_to_fs(name)
    except ImportError as exc:
        what = package if scheme in PACKAGES else f"a package fsspec names ({exc})"
        raise ImportError(
            f"{scheme}:// URLs need {what}, which is not installed; {CLOUD_EXTRA}"
        ) from None
    except ValueError as exc:  # an unknown protocol
        raise ValueError(f"cannot read or write {name}: {exc}") from None


def _url(fs, path):
    """The URL of ``path`` on ``fs``, with its protocol (``"s3://bucket/key"``)."""
    return fs.unstrip_protocol(path)


def kind(url):
    """``"file"``, ``"folder"`` (a prefix holding objects) or None (nothing there).

    Examples
    --------
    >>> import fsspec
    >>> from pixgmm.io.remote import kind
    >>> fsspec.filesystem("memory").pipe("/kind/photos/a.png", b"...")
    >>> kind("memory://kind/photos/a.png"), kind("memory://kind/photos"), kind("memory://kind/b")
    ('file', 'folder', None)
    """
    fs, path = filesystem(url)
    try:
        info = fs.info(path.rstrip("/"))
    except FileNotFoundError:
        return None
    return "folder" if info.get("type") == "directory" else "file"


def exists(url):
    """True when an object or a prefix holding objects is at ``url``."""
    return kind(url) is not None


def stat_token(url):
    """``(size, ETag or modification time)`` of the object at ``url``: what changes with it."""
    fs, path = filesystem(url)
    info = fs.info(path)
    version = next(
        (info[k] for k in ("ETag", "etag", "md5Hash", "LastModified", "mtime") if k in info), None
    )
    return int(info.get("size") or 0), str(version)


def open_binary(url):
    """The object at ``url`` as a seekable binary file, read ahead in blocks of :data:`BLOCK_SIZE`.

    Examples
    --------
    >>> import fsspec
    >>> from pixgmm.io.remote import open_binary
    >>> fsspec.filesystem("memory").pipe("/open/a.bin", b"0123456789")
    >>> with open_binary("memory://open/a.bin") as fh:
    ...     _ = fh.seek(4)
    ...     print(fh.read(3))
    b'456'
    """
    fs, path = filesystem(url)
    return fs.open(path, "rb", block_size=BLOCK_SIZE, cache_type="readahead")


def is_zarr(url):
    """True when ``url`` is a Zarr store: a prefix named ``*.zarr``, or holding Zarr metadata."""
    fs, path = filesystem(url)
    path = path.rstrip("/")
    if kind(url) != "folder":
        return False
    if path.lower().endswith(".zarr"):
        return True
    return any(fs.exists(f"{path}/{meta}") for meta in ("zarr.json", ".zarray", ".zgroup"))


def files_in(url):
    """The URLs of the objects directly under the prefix ``url`` (not recursive), sorted.

    Examples
    --------
    >>> import fsspec
    >>> from pixgmm.io.remote import files_in
    >>> fs = fsspec.filesystem("memory")
    >>> for key in ("b.jpg", "a.png", "more/c.png"):
    ...     fs.pipe(f"/list/{key}", b"...")
    >>> files_in("memory://list")
    ['memory:///list/a.png', 'memory:///list/b.jpg']
    """
    fs, path = filesystem(url)
    entries = fs.ls(path.rstrip("/"), detail=True)
    return sorted(_url(fs, e["name"]) for e in entries if e.get("type") == "file")


def glob(url):
    """The URLs of the objects matching the pattern ``url`` (``*``, ``?``, ``[``, ``**``), sorted.

    Examples
    --------
    >>> import fsspec
    >>> from pixgmm.io.remote import glob
    >>> fs = fsspec.filesystem("memory")
    >>> for key in ("b.jpg", "a.png", "more/c.png"):
    ...     fs.pipe(f"/glob/{key}", b"...")
    >>> glob("memory://glob/*.png"), glob("memory://glob/**/*.png")
    (['memory:///glob/a.png'], ['memory:///glob/a.png', 'memory:///glob/more/c.png'])
    """
    fs, path = filesystem(url)
    found = fs.glob(path, detail=True)
    return sorted(_url(fs, name) for name, e in found.items() if e.get("type") == "file")


def _bucket(url):
    """The bucket (or container, or host) of ``url``: the first part of its path."""
    return str(url).split("://", 1)[1].split("/", 1)[0]


def check_bucket(url):
    """Raise :class:`~pixgmm.io.OutputError` unless outputs can go under ``url``.

    Object stores have no folders to make: this checks that the bucket exists
    and answers with these credentials (one request), so an output folder in a
    missing bucket or with wrong credentials fails before any input is read.
    """
    from .errors import OutputError

    scheme = protocol(url)
    if scheme in ("http", "https"):
        raise OutputError(f"cannot write {url}: {scheme}:// URLs are read-only")
    with translated(url, "write"):
        fs, _ = filesystem(url)
        fs.info(_bucket(url))


def upload(local, url):
    """Copy the local file ``local`` to ``url`` (one PUT, or a multipart upload that
    appears only when complete)."""
    fs, path = filesystem(url)
    fs.put_file(os.fspath(local), path)


@contextlib.contextmanager
def upload_target(url, overwrite):
    """Yield a local temporary path; upload it to ``url`` if the block succeeds.

    The temporary file keeps ``url``'s suffix (writers choose the format by it)
    and lives in its own temporary folder, removed on the way out; nothing
    appears at ``url`` unless the block completes and the upload succeeds.

    Examples
    --------
    >>> import fsspec
    >>> from pixgmm.io.remote import upload_target
    >>> with upload_target("memory://up/maps/a.txt", overwrite=False) as tmp:
    ...     with open(tmp, "w") as fh:
    ...         _ = fh.write("written locally, uploaded whole")
    >>> fsspec.filesystem("memory").cat("/up/maps/a.txt")
    b'written locally, uploaded whole'
    """
    import posixpath
    import shutil
    import tempfile

    from .errors import OutputError, OutputExists

    with translated(url, "write"):
        if not overwrite and exists(url):
            raise OutputExists(
                f"{url} exists; pass overwrite=True (--overwrite on the command line) to replace it"
            )
    folder = tempfile.mkdtemp(prefix="pixgmm-upload-")
    try:
        tmp = os.path.join(folder, f"output{posixpath.splitext(str(url))[1]}")
        try:
            yield tmp
        except OSError as exc:
            if isinstance(exc, (OutputError, OutputExists)):
                raise
            raise OutputError(f"cannot write {url}: {exc.strerror or exc}") from exc
        with translated(url, "write"):
            if not overwrite and exists(url):
                raise OutputExists(f"{url} appeared while it was being written; not replaced")
            upload(tmp, url)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fetch(url, folder):
    """Download the object at ``url`` into ``folder``; the local path (for readers that need
    a file on disk, such as ffmpeg's)."""
    fs, path = filesystem(url)
    local = os.path.join(folder, os.path.basename(path.rstrip("/")) or "download")
    fs.get_file(path, local)
    return local


# -- GDAL ---------------------------------------------------------------------------


def gdal_path(name):
    """What GDAL (rasterio) opens for ``name``: ``/vsis3/bucket/key`` for ``s3://bucket/key``,
    ``/vsigs/``, ``/vsiaz/``, ``/vsicurl/https://...``; a local path as it is.

    Examples
    --------
    >>> from pixgmm.io.remote import gdal_path
    >>> gdal_path("s3://bucket/scene.tif"), gdal_path("https://host/a.tif")
    ('/vsis3/bucket/scene.tif', '/vsicurl/https://host/a.tif')
    """
    text = os.fspath(name)
    if "://" not in text:
        return text
    scheme, rest = text.split("://", 1)
    scheme = scheme.lower()
    if scheme in _GDAL_PREFIX:
        return _GDAL_PREFIX[scheme] + rest
    if scheme in ("http", "https"):
        return f"/vsicurl/{text}"
    raise ValueError(f"GDAL cannot open {scheme}:// URLs ({text})")


def gdal_config(environ=None):
    """GDAL settings for the S3 endpoint named in the environment, as GDAL needs them.

    botocore (s3fs) reads ``AWS_ENDPOINT_URL_S3`` or ``AWS_ENDPOINT_URL``; GDAL
    does not. This gives GDAL the same endpoint: ``AWS_S3_ENDPOINT`` (host,
    port and path), ``AWS_HTTPS`` (``NO`` for ``http://``) and
    ``AWS_VIRTUAL_HOSTING=FALSE``. A setting already in the environment (GDAL
    reads its own variables too) is left to it. Empty without an endpoint.

    Examples
    --------
    >>> from pixgmm.io.remote import gdal_config
    >>> gdal_config({"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    {'AWS_S3_ENDPOINT': '127.0.0.1:9000', 'AWS_HTTPS': 'NO', 'AWS_VIRTUAL_HOSTING': 'FALSE'}
    >>> gdal_config({})
    {}
    """
    from urllib.parse import urlsplit

    env = os.environ if environ is None else environ
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if not endpoint:
        return {}
    parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    config = {
        "AWS_S3_ENDPOINT": parts.netloc + parts.path.rstrip("/"),
        "AWS_HTTPS": "NO" if parts.scheme == "http" else "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    return {k: v for k, v in config.items() if k not in env}


def gdal_env(name):
    """A ``rasterio.Env`` in which GDAL reads ``name``: for a URL, the endpoint of
    :func:`gdal_config` and no listing of the "folder" (``GDAL_DISABLE_READDIR_ON_OPEN``:
    no side-car files looked for); for a local path, nothing changes."""
    if "://" not in os.fspath(name):
        return contextlib.nullcontext()
    import rasterio

    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", **gdal_config())


# -- errors -------------------------------------------------------------------------

#: Names of exception classes (anywhere in an exception's type hierarchy or chain) that
#: mean the store could not be reached.
_CONNECTION_ERRORS = (
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ClientOSError",
    "ConnectionError",
    "ConnectionRefusedError",
    "gaierror",
)


def _chain(exc):
    """``exc`` and the exceptions it was raised from (as a traceback shows them)."""
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    return seen


def _names(exc):
    return {cls.__name__ for cls in type(exc).__mro__}


def _first_line(exc):
    from .errors import first_line

    return first_line(exc)


def _bucket_missing(url):
    """True when the bucket of ``url`` does not exist (asked only when something is missing)."""
    try:
        fs, _ = filesystem(url)
        return not fs.exists(_bucket(url))
    except Exception:
        return False


def describe(exc, url=None):
    """The reason an object store gave for ``exc`` in one line, or None if it is not one of
    the object store's errors (a missing bucket or object, refused credentials, no connection).

    Examples
    --------
    >>> from pixgmm.io.remote import describe
    >>> describe(PermissionError("Forbidden"), "s3://bucket/key")[:35]
    'access denied (Forbidden); the cred'
    >>> describe(ValueError("bad pixel")) is None
    True
    """
    scheme = protocol(url) if url is not None else "s3"
    for link in _chain(exc):
        names = _names(link)
        if "NoCredentialsError" in names:
            return f"no credentials found; set {_CREDENTIALS.get(scheme, 'the credentials')}"
        if names & set(_CONNECTION_ERRORS) and not isinstance(
            link, (FileNotFoundError, PermissionError)
        ):
            return f"cannot connect to the object store ({_first_line(link)})"
        if isinstance(link, PermissionError):
            hint = _CREDENTIALS.get(scheme)
            where = f"; the credentials come from {hint}" if hint else ""
            return f"access denied ({_first_line(link)}){where}"
        if isinstance(link, FileNotFoundError) and url is not None and "://" in str(url):
            if _bucket_missing(url):
                return f"no such bucket {_bucket(url)!r}"
            return "no such object"
    return None


def missing_bucket(url):
    """``" (no such bucket 'b')"`` when the bucket of ``url`` does not exist, else ``""``: what
    a "not found" message adds for a URL."""
    return f" (no such bucket {_bucket(url)!r})" if _bucket_missing(url) else ""


def _is_missing(exc):
    return any(isinstance(link, FileNotFoundError) for link in _chain(exc))


@contextlib.contextmanager
def translated(url, action):
    """Errors of the object store inside the block become pixgmm's I/O errors (one line).

    ``action`` ``"read"``: :class:`~pixgmm.io.MissingInput` (no such bucket or
    object) or :class:`~pixgmm.io.ReadError`; ``"write"``:
    :class:`~pixgmm.io.OutputError` (``"cannot write s3://...: reason"``).
    pixgmm's own errors and a missing package (ImportError) pass unchanged;
    anything :func:`describe` does not recognise too.
    """
    from .errors import MissingInput, OutputError, OutputExists, ReadError

    filesystem(url)  # the package for the URL is installed, or an ImportError naming the extra
    try:
        yield
    except (ReadError, OutputError, OutputExists, ImportError):
        raise
    except Exception as exc:
        why = describe(exc, url)
        if why is None:
            raise
        if action == "read":
            raise (MissingInput if _is_missing(exc) else ReadError)(why) from None
        raise OutputError(f"cannot write {url}: {why}") from None
