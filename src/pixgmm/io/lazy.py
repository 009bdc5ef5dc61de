"""Opening images lazily as Dask arrays: TIFF tile by tile, Zarr chunk by chunk.

Needs the ``dask`` extra (``pip install pixgmm[dask]``: dask, distributed, zarr)
and, for TIFF, ``tifffile`` and ``imagecodecs`` (the ``io`` extra; imagecodecs
decodes LZW, JPEG and Zstandard tiles). Every task opens the file by its path
or URL, so a lazy image can be sent to a ``distributed`` cluster (a local file
must be at the same path on every worker; a URL is read by each worker with
the credentials of its own environment).

At a URL (``s3://bucket/scene.tif``): a TIFF is read by tifffile over an
fsspec file, each task fetching its tiles in blocks of
:data:`pixgmm.io.remote.BLOCK_SIZE` (every TIFF layout reads as it does from a
local file); a Zarr store by zarr's fsspec store; any other image whole,
through fsspec. A GeoTIFF or COG at a URL reads faster window by window through
GDAL: ``pixgmm.io.probe_geotiff(url).lazy_pages(chunks)``, which the command
line uses (about 1.5x the rate of tifffile over fsspec on a 4096 x 4096 COG
served by a local S3 server).
"""

from __future__ import annotations

import os

import numpy as np

from .errors import MissingInput
from .formats import LAZY_TIFF_SUFFIXES
from .formats import suffix as _suffix
from .limits import check_pixel_limit, pillow_limit_off
from .paths import (
    absolute,
    is_dir,
    is_file,
    missing_note,
    open_binary,
    open_source,
    require_file,
    rewind,
    stat_token,
    translated,
)


def parse_chunks(text):
    """Turn a ``--chunks`` option into a chunk specification for :func:`open_image_lazy`.

    ``"4096"`` -> ``4096`` (every spatial axis), ``"2048,4096"`` -> ``(2048, 4096)``,
    ``"auto"`` or ``None`` -> ``"auto"``.

    Parameters
    ----------
    text : str or None
        The option's value: ``"auto"`` (any case), one size for every spatial
        axis, or comma-separated sizes, one per axis; each size a whole number
        of at least 1. None: ``"auto"``.

    Returns
    -------
    int, tuple of int or str
        The size, the sizes, or ``"auto"``.

    Raises
    ------
    TypeError
        ``text`` is neither a str nor None.
    ValueError
        A size that is not a whole number, or is below 1.

    Examples
    --------
    >>> from pixgmm.io import parse_chunks
    >>> parse_chunks("4096"), parse_chunks("2048,4096"), parse_chunks(None)
    (4096, (2048, 4096), 'auto')
    """
    if text is None or (isinstance(text, str) and text.strip().lower() == "auto"):
        return "auto"
    if not isinstance(text, str):
        raise TypeError(f"chunks must be a string such as '4096' or '2048,4096', got {text!r}")
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(
            f"chunks={text!r} is not a chunk size; pass an integer such as 4096, "
            "one integer per axis such as 2048,4096, or auto"
        ) from None
    if any(s < 1 for s in sizes):
        raise ValueError(f"chunks={text!r} has a size below 1; chunk sizes must be positive")
    return sizes[0] if len(sizes) == 1 else sizes


def _normalize_chunks(chunks, ndim, channel_axis):
    """An int or a short tuple covers the spatial axes; the channel axis stays whole."""
    if chunks is None or chunks == "auto":
        spec = ["auto"] * ndim
    elif isinstance(chunks, (int, np.integer)):
        spec = [int(chunks)] * ndim
    elif isinstance(chunks, (tuple, list)):
        spec = list(chunks) + [-1] * (ndim - len(chunks))
        if len(spec) > ndim:
            raise ValueError(
                f"chunks={tuple(chunks)} has {len(chunks)} sizes but the image has {ndim} axes"
            )
    else:
        raise TypeError(f"chunks must be an int, a tuple of ints or 'auto', got {chunks!r}")
    if channel_axis is not None and ndim >= 3:
        spec[channel_axis % ndim] = -1
    return tuple(spec)


def open_image_lazy(
    path, chunks="auto", *, channel_axis=-1, component=None, series=0, max_pixels=None
):
    """Open an image on disk or in object storage as a lazy ``dask.array.Array``, reading
    nothing yet.

    TIFF and BigTIFF (``.tif``, ``.tiff``, ``.btf``, ``.svs``) are read through
    ``tifffile``'s Zarr interface, tile by tile or strip by strip, each task
    opening the file by its path (so the array can be sent to a ``distributed``
    cluster; the file must be at the same path on every worker), compressed or
    not (tifffile needs ``imagecodecs`` for LZW, JPEG and Zstandard: without it
    such a file is refused here, naming the package, not in a task); Zarr stores
    (a ``.zarr`` directory or any path or URL zarr opens) directly. Any other
    format is read whole into memory with ``imageio`` (16-bit PNG with
    ``imagecodecs``, keeping all 16 bits) and then chunked, after a check of its
    size against the pixel limit (read from the file's header, so a
    decompression bomb is refused before it is decoded).

    Parameters
    ----------
    path : str or os.PathLike
        The image file or Zarr store: a local path or a URL (``s3://bucket/img.zarr``,
        ``gs://``, ``az://``, ``https://``; credentials from the environment, see
        :mod:`pixgmm.io.remote`).
    chunks : int, tuple of int or "auto", default "auto"
        Chunk size along the spatial axes (``4096`` = 4096 x 4096 blocks). The
        channel axis is always one chunk, as pixgmm needs. ``"auto"``: dask's
        choice of about ``array.chunk-size`` (128 MiB) per chunk, in multiples
        of the file's own tiles or Zarr chunks, which read fastest. Prefer such
        multiples when you choose: a block smaller than a compressed Zarr chunk
        decompresses the whole chunk to use part of it.
    channel_axis : int or None, default -1
        The axis holding the channels (None: a grayscale image).
    component : str, optional
        The array inside a Zarr group (e.g. ``"0"``, the full resolution of a
        multiscale pyramid); a group holding a single array, or an array
        ``"0"``, needs none.
    series : int, default 0
        For TIFF: which image series of the file (tifffile's ``series``). A
        multi-page file whose pages share one shape is one series with leading
        page axes (``(pages, H, W, C)``); pages of different shapes are separate
        series.
    max_pixels : int, optional
        For formats read whole into memory (not TIFF or Zarr): refuse an image of
        more pixels than this, before decoding it (0: no limit). Default: the
        environment variable ``PIXGMM_MAX_PIXELS``, else :data:`DEFAULT_MAX_PIXELS`.

    Returns
    -------
    dask.array.Array

    Raises
    ------
    MissingInput
        Nothing is at ``path`` (a ``FileNotFoundError``; for a URL, the message
        says whether the bucket or the object is missing).
    ValueError
        An image read into memory is over the pixel limit; the message names its
        size and the way out.
    ImportError
        The file needs ``imagecodecs`` (a TIFF compressed with LZW, JPEG or
        Zstandard, a 16-bit PNG) or, for a URL, the ``cloud`` extra's package for
        it, and it is not installed; the message says how to install it.

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pixgmm.io import open_image_lazy
    >>> path = tempfile.mkdtemp() + "/tiles.tif"
    >>> tifffile.imwrite(path, np.zeros((300, 200, 3), np.uint8), tile=(64, 64))
    >>> image = open_image_lazy(path, chunks=128)
    >>> image.shape, image.chunksize
    ((300, 200, 3), (128, 128, 3))
    """
    import dask.array as da

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    name = os.fspath(path)
    lower = name.lower().rstrip("/")
    if lower.endswith(LAZY_TIFF_SUFFIXES):
        return _open_tiff_lazy(name, chunks, channel_axis, component, series)
    with translated(name, "read"):
        store = lower.endswith(".zarr") or is_dir(name)
    if store:
        import zarr

        with translated(name, "read"):
            try:
                # absolute: workers of a cluster resolve a relative path in their own folder
                node = zarr.open(absolute(name), mode="r")
            except FileNotFoundError:
                node = None
        if node is None:
            raise MissingInput(f"no Zarr store at {name!r}{missing_note(name)}")
        arr = _array_in(node, component, name)
    else:
        arr = _read_whole(name, lower, max_pixels)
    spec = _normalize_chunks(chunks, arr.ndim, channel_axis if arr.ndim >= 3 else None)
    if isinstance(arr, np.ndarray):
        return da.from_array(arr, chunks=spec)
    return da.from_zarr(arr, chunks=spec)


def _read_whole(name, lower, max_pixels):
    """An image that is not TIFF or Zarr, decoded into memory after its header's size check."""
    import imageio.v3 as iio

    from ._codecs import png_header, read_png

    require_file(name)
    # imageio closes a file object it reads: each step opens the source again
    with translated(name, "read"):
        with open_source(name) as source:
            header = png_header(source) if lower.endswith(".png") else None
        if header is not None and header.bit_depth == 16:  # Pillow would give 8 bits
            n_pixels = header.width * header.height
            check_pixel_limit(f"{header.height} x {header.width}", n_pixels, max_pixels)
            with open_source(name) as source:
                return read_png(source)
        with pillow_limit_off(), open_source(name) as source:  # pixgmm's limit replaces Pillow's
            props = iio.improps(source, extension=_suffix(name) or None)
        shape = tuple(props.shape)  # the header only: nothing decoded yet
        spatial = shape[:-1] if len(shape) >= 3 and shape[-1] <= 4 else shape
        n_pixels = int(np.prod(spatial, dtype=np.float64))
        check_pixel_limit(" x ".join(map(str, shape)), n_pixels, max_pixels)
        # the EXIF orientation applied, as the command line's reader does
        with pillow_limit_off(), open_source(name) as source:
            return np.asarray(iio.imread(source, plugin="pillow", rotate=True))


def _open_tiff_lazy(name, chunks, channel_axis, component, series=0):
    """A TIFF as a dask array whose tasks open the file by path and read one block each.

    tifffile's Zarr store holds an open file handle and a lock, which cannot be
    pickled: a dask array wrapping it could not be sent to a ``distributed``
    cluster. Here only the path or URL travels (a local file must be reachable
    at the same path on every worker), and no file handle stays open.
    """
    import dask.array as da
    import tifffile
    import zarr
    from dask.base import tokenize

    from ._codecs import check_tiff_codecs

    try:
        require_file(name)
    except MissingInput as exc:
        raise MissingInput(f"{exc}: {name!r}") from None
    path = absolute(name)
    if isinstance(series, bool) or not isinstance(series, (int, np.integer)):
        raise TypeError(f"series must be an int, got {type(series).__name__}")
    with translated(name, "read"), open_binary(path) as fh:
        with tifffile.TiffFile(fh) as tif:
            n_series = len(tif.series)
            if not 0 <= series < n_series:
                raise ValueError(
                    f"series={series} is not in {name!r}, which holds {n_series} series"
                )
            check_tiff_codecs([tif.series[series]])  # from the header: fail now, not in a task
        with tifffile.imread(rewind(fh), aszarr=True, series=int(series)) as store:
            arr = _array_in(zarr.open(store, mode="r"), component, name)
            shape, dtype, file_chunks = tuple(arr.shape), np.dtype(arr.dtype), arr.chunks
        version = stat_token(path)
    ndim = len(shape)
    spec = _normalize_chunks(chunks, ndim, channel_axis if ndim >= 3 else None)
    blocks = da.core.normalize_chunks(spec, shape, dtype=dtype, previous_chunks=file_chunks)
    token = tokenize(path, component, series, version, blocks)
    return da.map_blocks(
        _read_tiff_block,
        path,
        component,
        int(series),
        name=f"tiff-{token}",
        chunks=blocks,
        dtype=dtype,
        meta=np.empty((0,) * ndim, dtype),
    )


def _read_tiff_block(path, component, series=0, block_info=None):
    """Run in a task: open the TIFF at ``path`` (or URL) and read the block dask asks for."""
    import tifffile
    import zarr

    where = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with open_binary(path) as fh, tifffile.imread(fh, aszarr=True, series=series) as store:
        return _array_in(zarr.open(store, mode="r"), component, path)[where]


def _array_in(node, component, name):
    """The array of a Zarr node: itself, ``node[component]``, or a group's only/first level."""
    import zarr

    if isinstance(node, zarr.Array):
        if component is not None:
            raise ValueError(f"{name!r} is a single array; drop component={component!r}")
        return node
    keys = sorted(k for k, _ in node.arrays())
    if component is None:
        if len(keys) == 1:
            component = keys[0]
        elif "0" in keys:
            component = "0"
        else:
            raise ValueError(
                f"{name!r} is a Zarr group holding arrays {keys}; pass component= one of them"
            )
    if component not in keys:
        raise ValueError(f"component={component!r} is not an array in {name!r}; it holds {keys}")
    return node[component]


def open_pages_lazy(path, chunks="auto", *, max_pixels=None):
    """Every page of the image at ``path`` as a lazy (H, W[, C]) Dask array.

    The pages are those :func:`pixgmm.io.read_pages` gives, in its order: every
    series of a TIFF (pages of different sizes are separate series), with
    leading page axes read one page per block and band-interleaved (planar)
    RGB moved last; a Zarr store or any other image is one page.

    Parameters
    ----------
    path : str or os.PathLike
    chunks : int, (int, int) or "auto"
        Block size along the two spatial axes (see :func:`parse_chunks`).
    max_pixels : int, optional
        The pixel limit of formats read whole (not TIFF or Zarr).

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pixgmm.io import open_pages_lazy
    >>> path = tempfile.mkdtemp() + "/pages.tif"
    >>> tifffile.imwrite(path, np.zeros((3, 64, 48, 3), np.uint8), photometric="rgb", tile=(16, 16))
    >>> pages = open_pages_lazy(path, chunks=32)
    >>> len(pages), pages[0].shape, pages[0].chunksize
    (3, (64, 48, 3), (32, 32, 3))
    """
    name = os.fspath(path)
    if name.lower().endswith((".tif", ".tiff")):
        with translated(name, "read"):
            tiff = is_file(name)
        if tiff:
            return _tiff_pages_lazy(name, chunks, max_pixels)
    return [open_image_lazy(name, chunks, max_pixels=max_pixels)]


def _tiff_pages_lazy(path, chunk_spec, max_pixels):
    """The pages of a TIFF as lazy (H, W[, C]) arrays, in the order the in-memory reader gives."""
    import tifffile

    with translated(path, "read"), open_binary(path) as fh, tifffile.TiffFile(fh) as tif:
        layouts = [(s.axes, tuple(s.shape)) for s in tif.series]
    spatial = list(chunk_spec) if isinstance(chunk_spec, tuple) else [chunk_spec] * 2
    if len(spatial) != 2:
        raise ValueError(f"chunks takes one size or (rows, cols) for a TIFF, got {chunk_spec}")
    pages = []
    for index, (axes, shape) in enumerate(layouts):
        if len(shape) >= 3 and axes[-1] == "S":
            lead, planar, channel_axis = len(shape) - 3, False, -1
        elif len(shape) >= 3 and axes[-3] == "S" and shape[-3] in (3, 4):
            lead, planar, channel_axis = len(shape) - 3, True, len(shape) - 3
        else:
            lead, planar, channel_axis = len(shape) - 2, False, None
        spec = [1] * lead + ([-1] if planar else []) + spatial + ([-1] if axes[-1] == "S" else [])
        arr = open_image_lazy(
            path, tuple(spec), channel_axis=channel_axis, series=index, max_pixels=max_pixels
        )
        if planar:  # (..., S, Y, X) -> (..., Y, X, S), as the in-memory reader gives
            import dask.array as da

            arr = da.moveaxis(arr, lead, -1)
        if lead == 0:
            pages.append(arr)
        else:
            flat = arr.reshape((-1, *arr.shape[lead:]))
            pages.extend(flat[i] for i in range(flat.shape[0]))
    return pages
