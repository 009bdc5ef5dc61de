"""Images larger than memory: lazy reading, chunk-by-chunk Zarr writing, Dask clients.

Needs the ``dask`` extra (``pip install pixgmm[dask]``: dask, distributed, zarr)
and, for TIFF, ``tifffile`` and ``imagecodecs`` (the ``io`` extra; imagecodecs
decodes LZW, JPEG and Zstandard tiles and 16-bit PNG). Nothing here is imported
by ``import pixgmm``.

A whole-slide image on disk becomes a density map on disk without ever being
in memory::

    from pixgmm import bigimage
    with bigimage.dask_client(workers=4):          # or scheduler="tcp://host:8786"
        image = bigimage.open_image_lazy("slide.tif", chunks=4096)
        bigimage.write_zarr(pixgmm.density(image, model), "density.zarr")

Completion marker: :func:`write_zarr` sets the store's attribute
``pixgmm_complete`` to ``False`` before the first chunk is written and to
``True`` only after every chunk was written and found in the store, so a run
that fails or is interrupted leaves a store that does not claim to be complete
(:func:`is_complete`), and running the same call again finishes it. A store
without the attribute was not written by pixgmm and is never written into
without ``overwrite=True`` (:func:`store_status`).

Paths on a cluster: output paths are made absolute in the calling process
before any task is sent (a worker's working directory may differ), and each
task checks that the store it writes to is the one the call prepared.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import os
import sys
from pathlib import Path

import numpy as np

#: Attribute that :func:`write_zarr` sets to True once every chunk is written.
COMPLETE_ATTR = "pixgmm_complete"
#: Attribute naming the :func:`write_zarr` call that writes the store; its tasks check it.
RUN_ATTR = "pixgmm_run"

_TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8", ".svs", ".ome.tif", ".ome.tiff")
_PROGRESS = contextvars.ContextVar("pixgmm_progress", default=False)


def parse_chunks(text):
    """Turn a ``--chunks`` option into a chunk specification for :func:`open_image_lazy`.

    ``"4096"`` -> ``4096`` (every spatial axis), ``"2048,4096"`` -> ``(2048, 4096)``,
    ``"auto"`` or ``None`` -> ``"auto"``.

    Examples
    --------
    >>> from pixgmm.bigimage import parse_chunks
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


#: The largest image, in pixels (all pages of a file together), that pixgmm's readers
#: decode into memory: 100 megapixels (a 10000 x 10000 image). Larger files are
#: refused before decoding, with the way out: read TIFF and Zarr lazily in blocks,
#: or raise the limit (``max_pixels=``, ``--max-pixels``, ``PIXGMM_MAX_PIXELS``).
DEFAULT_MAX_PIXELS = 100_000_000

#: Environment variable that sets the pixel limit (a number of pixels; 0 or ``none``: no limit).
MAX_PIXELS_ENV = "PIXGMM_MAX_PIXELS"


def _pixel_limit(max_pixels=None):
    """The pixel limit in force: ``max_pixels`` if given, else ``PIXGMM_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`; None means no limit (``0`` or ``"none"``)."""
    if max_pixels is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        if text.lower() == "none":
            return None
        try:
            max_pixels = int(float(text))
        except ValueError:
            raise ValueError(
                f"environment variable {MAX_PIXELS_ENV}={text!r} must be a number of pixels "
                f"(e.g. 400000000), or 0 or none for no limit"
            ) from None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"max_pixels must be an int, got {type(max_pixels).__name__}")
    if max_pixels < 0:
        raise ValueError(f"max_pixels must be >= 0 (0: no limit), got {max_pixels}")
    return None if max_pixels == 0 else int(max_pixels)


def _check_pixel_limit(shape_text, n_pixels, max_pixels=None, way_out=None):
    """Raise ValueError if an image of ``n_pixels`` is over the limit; before decoding it.

    ``shape_text`` describes the size (``"14000 x 14000 pixels"``); ``way_out``
    is the sentence that says how to process it anyway (a default for the API).
    """
    limit = _pixel_limit(max_pixels)
    if limit is None or n_pixels <= limit:
        return
    if way_out is None:
        way_out = (
            "TIFF and Zarr images are read lazily in blocks (open_image_lazy), so convert "
            f"it to one of them, or raise the limit with max_pixels= or {MAX_PIXELS_ENV}"
        )
    raise ValueError(
        f"the image is {shape_text} ({n_pixels:,} pixels), over the limit of {limit:,} "
        f"pixels read into memory at once; {way_out}"
    )


@contextlib.contextmanager
def _pillow_limit_off():
    """Pillow's decompression-bomb check off for a block (pixgmm's own limit applies instead)."""
    try:
        from PIL import Image
    except ImportError:
        yield
        return
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def open_image_lazy(
    path, chunks="auto", *, channel_axis=-1, component=None, series=0, max_pixels=None
):
    """Open an image on disk as a lazy ``dask.array.Array``, reading nothing yet.

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
        The image file or Zarr store.
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
    ValueError
        An image read into memory is over the pixel limit; the message names its
        size and the way out.
    ImportError
        The file needs ``imagecodecs`` (a TIFF compressed with LZW, JPEG or
        Zstandard, a 16-bit PNG) and it is not installed; the message says how
        to install it.

    Examples
    --------
    >>> import tempfile, numpy as np, tifffile
    >>> from pixgmm.bigimage import open_image_lazy
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
    if lower.endswith(_TIFF_SUFFIXES):
        return _open_tiff_lazy(name, chunks, channel_axis, component, series)
    if lower.endswith(".zarr") or Path(name).is_dir() or "://" in name:
        import zarr

        try:
            # absolute: workers of a cluster resolve a relative path in their own folder
            node = zarr.open(_absolute(name), mode="r")
        except FileNotFoundError:
            raise FileNotFoundError(f"no Zarr store at {name!r}") from None
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

    header = png_header(name) if lower.endswith(".png") else None
    if header is not None and header.bit_depth == 16:  # Pillow would give 8 bits
        n_pixels = header.width * header.height
        _check_pixel_limit(f"{header.height} x {header.width}", n_pixels, max_pixels)
        return read_png(name)
    with _pillow_limit_off():  # pixgmm's own limit below replaces Pillow's
        props = iio.improps(name)  # the header only: nothing decoded yet
    shape = tuple(props.shape)
    spatial = shape[:-1] if len(shape) >= 3 and shape[-1] <= 4 else shape
    n_pixels = int(np.prod(spatial, dtype=np.float64))
    _check_pixel_limit(" x ".join(map(str, shape)), n_pixels, max_pixels)
    with _pillow_limit_off():  # the EXIF orientation applied, as the command line's reader does
        return np.asarray(iio.imread(name, plugin="pillow", rotate=True))


def _open_tiff_lazy(name, chunks, channel_axis, component, series=0):
    """A TIFF as a dask array whose tasks open the file by path and read one block each.

    tifffile's Zarr store holds an open file handle and a lock, which cannot be
    pickled: a dask array wrapping it could not be sent to a ``distributed``
    cluster. Here only the path travels (the file must be reachable at the same
    path on every worker), and no file handle stays open.
    """
    import dask.array as da
    import tifffile
    import zarr
    from dask.base import tokenize

    from ._codecs import check_tiff_codecs

    if not Path(name).is_file():
        raise FileNotFoundError(f"no such TIFF file: {name!r}")
    path = os.path.abspath(name)
    if isinstance(series, bool) or not isinstance(series, (int, np.integer)):
        raise TypeError(f"series must be an int, got {type(series).__name__}")
    with tifffile.TiffFile(path) as tif:
        n_series = len(tif.series)
        if not 0 <= series < n_series:
            raise ValueError(f"series={series} is not in {name!r}, which holds {n_series} series")
        check_tiff_codecs([tif.series[series]])  # from the header: fail now, not in a task
    with tifffile.imread(path, aszarr=True, series=int(series)) as store:
        arr = _array_in(zarr.open(store, mode="r"), component, name)
        shape, dtype, file_chunks = tuple(arr.shape), np.dtype(arr.dtype), arr.chunks
    ndim = len(shape)
    spec = _normalize_chunks(chunks, ndim, channel_axis if ndim >= 3 else None)
    blocks = da.core.normalize_chunks(spec, shape, dtype=dtype, previous_chunks=file_chunks)
    stat = os.stat(path)
    token = tokenize(path, component, series, stat.st_size, stat.st_mtime_ns, blocks)
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
    """Run in a task: open the TIFF at ``path`` and read the block dask asks for."""
    import tifffile
    import zarr

    where = tuple(slice(a, b) for a, b in block_info[None]["array-location"])
    with tifffile.imread(path, aszarr=True, series=series) as store:
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


def is_complete(path):
    """True when :func:`write_zarr` finished writing the Zarr store at ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pixgmm.bigimage import is_complete
    >>> is_complete(tempfile.mkdtemp() + "/missing.zarr")
    False
    """
    return store_status(path) == "complete"


def store_status(path):
    """What :func:`write_zarr` finds at ``path``: what it would do with it.

    Returns
    -------
    str
        ``"missing"``: nothing there (or an empty folder); written without asking.
        ``"complete"``: a store pixgmm finished; rewritten only with ``overwrite=True``.
        ``"unfinished"``: a store pixgmm started and did not finish (a run that
        failed or was interrupted); the same call writes it again, in full.
        ``"foreign"``: anything else (a Zarr array or group pixgmm did not
        write, another file or folder); replaced only with ``overwrite=True``,
        and only if it is a Zarr store (a folder of other files never is).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pixgmm.bigimage import store_status, write_zarr
    >>> path = tempfile.mkdtemp() + "/map.zarr"
    >>> store_status(path)
    'missing'
    >>> _ = write_zarr(np.zeros((4, 4)), path)
    >>> store_status(path)
    'complete'
    """
    import zarr

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    name = _absolute(path)
    try:
        arr = zarr.open_array(name, mode="r")
    except FileNotFoundError:
        return "foreign" if _occupied(name) else "missing"
    except ValueError:  # a group, or metadata zarr cannot read
        return "foreign"
    marker = arr.attrs.get(COMPLETE_ATTR)
    if marker is True:
        return "complete"
    return "unfinished" if marker is False else "foreign"


def _absolute(path):
    """``path`` as a string; a local path made absolute in *this* process's folder.

    Tasks run in worker processes whose working directory may differ (on a
    cluster, always may): a relative path would name another store there.
    """
    name = os.fspath(path)
    if "://" in name:
        return name
    return os.path.abspath(os.path.expanduser(name))


def _occupied(name):
    """True when a local ``name`` exists as anything but an empty folder."""
    if "://" in name or not os.path.lexists(name):
        return False
    return not (os.path.isdir(name) and not os.path.islink(name) and not os.listdir(name))


def write_zarr(array, path, *, overwrite=False, attrs=None, compressors="auto", progress=None):
    """Compute ``array`` chunk by chunk into a Zarr store; mark it complete at the end.

    Only a few chunks are in memory at a time. The store's chunks are the
    array's (made regular if needed). The attribute ``pixgmm_complete`` is set
    to False before writing and to True only after every chunk was written and
    found in the store, so a failed or interrupted run never leaves a store
    claiming to be complete; running the same call again writes it in full.

    A relative ``path`` is this process's: it is made absolute before any task
    is sent, so workers of a ``distributed`` cluster (whose working directory
    may differ) write there. The store must be at the same path for every
    worker (a shared file system or an object store URL); each task checks
    that the store it writes to is the one this call prepared, so a worker
    that sees another store, or none, fails the write instead of writing
    elsewhere.

    Parameters
    ----------
    array : dask.array.Array or numpy.ndarray
        The map to write, e.g. ``pixgmm.density(lazy_image, model)``.
    path : str or os.PathLike
        The Zarr store (a directory, or a URL zarr understands).
    overwrite : bool, default False
        Replace a store that is complete, that pixgmm did not write, or whose
        shape or dtype differs. A folder or file that is not a Zarr store is
        never replaced. Without it, only a missing store (or an empty folder)
        or an unfinished one of the same shape and dtype is written; see
        :func:`store_status`.
    attrs : dict, optional
        Extra attributes to record (JSON-serialisable), e.g. the model used.
    compressors : default "auto"
        Passed to ``zarr.create_array`` for a new store (zarr's default: Zstandard).
    progress : bool, optional
        Show a progress bar on stderr. Default: as set by :func:`dask_client`
        (off outside one).

    Returns
    -------
    zarr.Array
        The written store, opened read-only.

    Raises
    ------
    FileExistsError
        The store is already complete, or something pixgmm did not write is at
        ``path``, and ``overwrite`` is False; or ``path`` is a file or folder
        that is not a Zarr store.
    ValueError
        An unfinished store's shape or dtype differs from ``array``'s.
    OSError
        A task found another store (or none) at ``path``, or chunks are missing
        from the store after every task wrote its block; the store is not
        marked complete.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, pixgmm
    >>> from pixgmm.bigimage import write_zarr, is_complete
    >>> model = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> image = da.zeros((100, 80), chunks=32)
    >>> path = tempfile.mkdtemp() + "/map.zarr"
    >>> stored = write_zarr(pixgmm.log_density(image, model, channel_axis=None), path)
    >>> stored.shape, stored.chunks, is_complete(path)
    ((100, 80), (32, 32), True)
    """
    return write_zarr_many(
        [(array, path, attrs)], overwrite=overwrite, compressors=compressors, progress=progress
    )[0]


def write_zarr_many(items, *, overwrite=False, compressors="auto", progress=None):
    """Compute several maps into their Zarr stores in one pass over their shared graph.

    Like :func:`write_zarr` for each item, but everything the maps share (reading
    the image, a log ratio that both a probability map and a mask derive from)
    is computed once. Every store is checked before any is created or
    changed; each is marked complete only after all of them are written, so
    when one fails none claims to be complete.

    Parameters
    ----------
    items : sequence of (array, path) or (array, path, attrs)
        The maps, their stores and optional extra attributes, as for :func:`write_zarr`.
    overwrite, compressors, progress
        As for :func:`write_zarr`, applied to every store.

    Returns
    -------
    list of zarr.Array
        The written stores, opened read-only, in the order of ``items``.

    Examples
    --------
    >>> import tempfile, dask.array as da, pixgmm
    >>> from pixgmm.bigimage import write_zarr_many, is_complete
    >>> lr = pixgmm.log_ratio(da.zeros((64, 48, 3), chunks=16),
    ...                       pixgmm.models.jones_rehg_skin(), pixgmm.models.jones_rehg_nonskin())
    >>> folder = tempfile.mkdtemp()
    >>> stores = write_zarr_many([(lr, folder + "/lr.zarr"), (lr > 0, folder + "/mask.zarr")])
    >>> [s.dtype.name for s in stores], is_complete(folder + "/mask.zarr")
    (['float64', 'bool'], True)
    """
    import uuid

    import zarr

    plans = [_check_store(*_unpack(item), overwrite=overwrite) for item in items]
    names = [plan[1] for plan in plans]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"several maps would be written to the same store: {duplicates}")
    run = uuid.uuid4().hex  # this call's mark on its stores; every task checks it
    prepared = [_open_store(*plan, run=run, compressors=compressors) for plan in plans]
    if prepared:
        writes = [_write_blocks(array, target, name, run) for array, target, name in prepared]
        counts = compute(*[w.sum() for w in writes], progress=progress)
        for (_, target, name), write, count in zip(prepared, writes, counts):
            _check_written(target, name, int(count), write.npartitions)
    for _, target, _ in prepared:
        target.attrs[COMPLETE_ATTR] = True
    return [zarr.open_array(name, mode="r") for _, _, name in prepared]


def _unpack(item):
    if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
        raise TypeError(f"each item must be (array, path) or (array, path, attrs), got {item!r}")
    return tuple(item) + (None,) * (3 - len(item))


def _check_store(array, path, attrs=None, *, overwrite):
    """Check ``array`` and what is at ``path``, changing nothing.

    Returns ``(array, absolute name, attrs, existing array to write into or None,
    replace)``.
    """
    import dask.array as da
    import zarr

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if attrs is not None and not isinstance(attrs, dict):
        raise TypeError(f"attrs must be a dict of JSON-serialisable values, got {attrs!r}")
    name = _absolute(path)
    if isinstance(array, np.ndarray):
        array = da.from_array(array)
    elif not isinstance(array, da.Array):
        raise TypeError(f"array must be a dask or numpy array, got {type(array).__name__}")
    if any(np.isnan(c) for dim in array.chunks for c in dim):
        raise ValueError("array has unknown chunk sizes; call array.compute_chunk_sizes() first")
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)

    try:
        existing = zarr.open_array(name, mode="r+")
    except FileNotFoundError:  # nothing zarr can read: nothing, an empty folder, or other files
        if _occupied(name):
            raise FileExistsError(
                f"{name!r} exists and is not a Zarr store; pixgmm never replaces other files "
                "or folders (overwrite=True neither): choose another path or remove it"
            ) from None
        return array, name, attrs, None, False
    except ValueError as exc:  # a group, or metadata zarr cannot read
        if not overwrite:
            raise FileExistsError(
                f"{name!r} exists but is not a Zarr array ({exc}); choose another path, "
                "or pass overwrite=True to replace it"
            ) from None
        return array, name, attrs, None, True
    if overwrite:
        return array, name, attrs, None, True
    marker = existing.attrs.get(COMPLETE_ATTR)
    if marker is True:
        raise FileExistsError(
            f"the Zarr store {name!r} is already complete; pass overwrite=True to rewrite it"
        )
    if marker is not False:
        raise FileExistsError(
            f"the Zarr store {name!r} was not written by pixgmm (it has no {COMPLETE_ATTR!r} "
            "attribute); choose another path, or pass overwrite=True to replace it"
        )
    if tuple(existing.shape) != shape or np.dtype(existing.dtype) != dtype:
        raise ValueError(
            f"the unfinished Zarr store {name!r} holds an array of shape "
            f"{tuple(existing.shape)} and dtype {existing.dtype}, but the result has shape "
            f"{shape} and dtype {dtype}; choose another path, or pass overwrite=True to replace it"
        )
    if getattr(existing, "shards", None) is not None:
        raise ValueError(
            f"the Zarr store {name!r} is sharded, which pixgmm does not write into; "
            "pass overwrite=True to replace it with an unsharded store"
        )
    return array, name, attrs, existing, False


def _open_store(array, name, attrs, existing, replace, *, run, compressors):
    """Create (or reuse) the store and mark it unfinished; ``(array, target, name)``.

    The target writes every chunk, even one equal to the fill value, so that
    :func:`_check_written` can find each chunk in the store.
    """
    import zarr

    if existing is not None:
        array = array.rechunk(existing.chunks)  # one writer per store chunk
        target = existing
    else:
        array = _regular(array)
        target = zarr.create_array(
            name,
            shape=tuple(array.shape),
            chunks=array.chunksize,
            dtype=array.dtype,
            compressors=compressors,
            overwrite=replace,
        )
    target.attrs.update({**(attrs or {}), COMPLETE_ATTR: False, RUN_ATTR: run})
    return array, target.with_config({"write_empty_chunks": True}), name


def _write_blocks(array, target, name, run):
    """A lazy array of ones, one per block of ``array``, each written into ``target``."""
    import dask
    from dask.array.core import ArraySliceDep
    from dask.base import tokenize

    return array.map_blocks(
        _write_block,
        dask.delayed(target, pure=True),  # one key in the graph, not a copy per task
        name,
        run,
        ArraySliceDep(array.chunks),
        chunks=tuple((1,) * len(c) for c in array.chunks),
        dtype=np.int64,
        meta=np.empty((0,) * array.ndim, np.int64),
        name=f"pixgmm-write-{tokenize(run, name)}",
    )


def _write_block(block, target, name, run, where):
    """Run in a task: write one block into ``target`` if it is the store this call prepared."""
    import zarr

    try:
        seen = zarr.open_array(store=target.store, path=target.path, mode="r").attrs.get(RUN_ATTR)
    except (FileNotFoundError, ValueError):
        seen = None
    if seen != run:
        import socket

        raise OSError(
            f"the Zarr store {name!r} seen by the worker on {socket.gethostname()} "
            f"(working directory {os.getcwd()}) is not the one this write prepared "
            f"({'no such store' if seen is None else 'another run'}); every worker must see "
            "the output at the same path, e.g. on a shared file system"
        )
    target[where] = block
    return np.ones((1,) * block.ndim, np.int64)


def _check_written(target, name, blocks_written, blocks):
    """Raise OSError unless every block was written and every chunk is in the store."""
    found = target.nchunks_initialized
    if blocks_written != blocks or found != target.nchunks:
        raise OSError(
            f"the Zarr store {name!r} holds {found} of its {target.nchunks} chunks after "
            f"{blocks_written} of {blocks} blocks were written: the workers wrote somewhere "
            "else (the output must be at the same path on every worker); it is not marked "
            "complete"
        )


def _regular(array):
    """Rechunk so every chunk but the last along each axis has one size (Zarr's layout)."""
    sizes = []
    regular = True
    for dim in array.chunks:
        first = dim[0]
        sizes.append(first)
        if any(c != first for c in dim[:-1]) or dim[-1] > first:
            regular = False
    if regular:
        return array
    return array.rechunk(tuple(max(dim) for dim in array.chunks))


def compute(*collections, progress=None):
    """``dask.compute`` on the current client (if any), with an optional progress bar.

    With a ``distributed`` client active (e.g. inside :func:`dask_client`) the
    work goes to its cluster and ``distributed``'s progress bar is shown;
    otherwise dask's local scheduler runs it under ``dask.diagnostics.ProgressBar``.
    The bar goes to stderr. When the computation fails or is interrupted
    (Ctrl-C), its tasks still on the cluster are cancelled before the
    exception propagates: none starts afterwards (one already running
    finishes its block).

    Examples
    --------
    >>> import dask.array as da
    >>> from pixgmm.bigimage import compute
    >>> compute(da.ones(10, chunks=3).sum())
    (np.float64(10.0),)
    """
    import dask

    show = _PROGRESS.get() if progress is None else bool(progress)
    client = _current_client()
    if client is not None:
        futures = client.compute(list(collections))
        try:
            if show:
                from distributed import progress as distributed_progress

                with contextlib.redirect_stdout(sys.stderr):
                    distributed_progress(futures)
                    print(file=sys.stderr)
            return tuple(client.gather(futures))
        except BaseException:
            # a failure or Ctrl-C here must not leave the cluster writing on behind our back
            client.cancel(futures)
            raise
    if show:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*collections)
    return dask.compute(*collections)


def _current_client():
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


@contextlib.contextmanager
def dask_client(workers=None, scheduler=None, *, threads_per_worker=1, progress=True, timeout=30):
    """Run the Dask work in its block on a local cluster, a remote one, or locally.

    - ``scheduler="tcp://host:8786"``: connect to an existing cluster.
    - ``workers=N``: start a ``distributed.LocalCluster`` of N worker
      processes on 127.0.0.1 (no dashboard) and close it on exit.
    - neither: no cluster; dask's local threaded scheduler runs the work.

    Inside the block :func:`write_zarr` and :func:`compute` show progress
    (``progress=False`` silences them).

    Parameters
    ----------
    workers : int, optional
        Worker processes of a local cluster. Each runs ``threads_per_worker``
        Dask tasks at a time; pixgmm's kernels are themselves multi-threaded.
    scheduler : str, optional
        Address of a running scheduler.
    threads_per_worker : int, default 1
    progress : bool, default True
    timeout : float, default 30
        Seconds to wait for the scheduler or the local workers to come up.

    Yields
    ------
    distributed.Client or None
        The client (set as the default for the block), or None for the local
        scheduler.

    Examples
    --------
    >>> import dask.array as da
    >>> from pixgmm.bigimage import dask_client, compute
    >>> with dask_client(progress=False) as client:
    ...     print(client, compute(da.ones(4, chunks=2).sum()))
    None (np.float64(4.0),)
    """
    if workers is not None and scheduler is not None:
        raise ValueError(
            "pass workers= (start a local cluster) or scheduler= (use a running one), not both"
        )
    if workers is not None:
        try:
            workers = operator.index(workers)
        except TypeError:
            raise TypeError(f"workers must be an integer, got {workers!r}") from None
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(
            f"scheduler must be an address string such as 'tcp://10.0.0.5:8786', got {scheduler!r}"
        )
    token = _PROGRESS.set(bool(progress))
    try:
        if scheduler is not None:
            from distributed import Client

            with Client(scheduler, timeout=timeout) as client:
                yield client
        elif workers is not None:
            from distributed import Client, LocalCluster

            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    timeout=timeout,
                ) as cluster,
                Client(cluster, timeout=timeout) as client,
            ):
                yield client
        else:
            yield None
    finally:
        _PROGRESS.reset(token)
