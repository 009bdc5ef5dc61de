"""Images larger than memory: lazy reading, chunk-by-chunk Zarr writing, Dask clients.

Needs the ``dask`` extra (``pip install pixgmm[dask]``: dask, distributed, zarr)
and, for TIFF, ``tifffile`` (the ``io`` extra). Nothing here is imported by
``import pixgmm``.

A whole-slide image on disk becomes a density map on disk without ever being
in memory::

    from pixgmm import bigimage
    with bigimage.dask_client(workers=4):          # or scheduler="tcp://host:8786"
        image = bigimage.open_image_lazy("slide.tif", chunks=4096)
        bigimage.write_zarr(pixgmm.density(image, model), "density.zarr")

Completion marker: :func:`write_zarr` sets the store's attribute
``pixgmm_complete`` to ``False`` before the first chunk is written and to
``True`` only after the last one was, so a run that fails or is interrupted
leaves a store that does not claim to be complete (:func:`is_complete`).
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
    cluster; the file must be at the same path on every worker); Zarr stores
    (a ``.zarr`` directory or any path or URL zarr opens) directly. Any other
    format is read whole into memory with ``imageio`` and then chunked, after a
    check of its size against the pixel limit (read from the file's header, so a
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
            node = zarr.open(name, mode="r")
        except FileNotFoundError:
            raise FileNotFoundError(f"no Zarr store at {name!r}") from None
        arr = _array_in(node, component, name)
    else:
        import imageio.v3 as iio

        with _pillow_limit_off():  # pixgmm's own limit below replaces Pillow's
            props = iio.improps(name)  # the header only: nothing decoded yet
        shape = tuple(props.shape)
        spatial = shape[:-1] if len(shape) >= 3 and shape[-1] <= 4 else shape
        n_pixels = int(np.prod(spatial, dtype=np.float64))
        _check_pixel_limit(" x ".join(map(str, shape)), n_pixels, max_pixels)
        with _pillow_limit_off():
            arr = np.asarray(iio.imread(name))
    spec = _normalize_chunks(chunks, arr.ndim, channel_axis if arr.ndim >= 3 else None)
    if isinstance(arr, np.ndarray):
        return da.from_array(arr, chunks=spec)
    return da.from_zarr(arr, chunks=spec)


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

    if not Path(name).is_file():
        raise FileNotFoundError(f"no such TIFF file: {name!r}")
    path = os.path.abspath(name)
    with tifffile.TiffFile(path) as tif:
        n_series = len(tif.series)
    if isinstance(series, bool) or not isinstance(series, (int, np.integer)):
        raise TypeError(f"series must be an int, got {type(series).__name__}")
    if not 0 <= series < n_series:
        raise ValueError(f"series={series} is not in {name!r}, which holds {n_series} series")
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
    import zarr

    try:
        arr = zarr.open_array(os.fspath(path), mode="r")
    except (FileNotFoundError, ValueError):
        return False
    return arr.attrs.get(COMPLETE_ATTR) is True


def write_zarr(array, path, *, overwrite=False, attrs=None, compressors="auto", progress=None):
    """Compute ``array`` chunk by chunk into a Zarr store; mark it complete at the end.

    Only a few chunks are in memory at a time. The store's chunks are the
    array's (made regular if needed). The attribute ``pixgmm_complete`` is set
    to False before writing and to True after the last chunk, so a failed or
    interrupted run never leaves a store claiming to be complete; running the
    same call again rewrites it.

    Parameters
    ----------
    array : dask.array.Array or numpy.ndarray
        The map to write, e.g. ``pixgmm.density(lazy_image, model)``.
    path : str or os.PathLike
        The Zarr store (a directory, or a URL zarr understands).
    overwrite : bool, default False
        Replace a store that is already complete or whose shape or dtype
        differs. Without it, such a store is an error, while an unfinished
        store of the same shape and dtype (an interrupted run, or one created
        beforehand with the chunks and codecs you want) is written into.
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
    ValueError
        An existing store's shape or dtype differs from ``array``'s.
    FileExistsError
        The store is already complete and ``overwrite`` is False.

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
    is computed once. Every store is checked before anything is written; each
    is marked complete only after all of them are written.

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
    import dask.array as da
    import zarr

    prepared = [
        _prepare_store(*item, overwrite=overwrite, compressors=compressors) for item in items
    ]
    for _, target, _, attrs in prepared:
        target.attrs.update({**(attrs or {}), COMPLETE_ATTR: False})
    if prepared:
        stored = da.store(
            [array for array, *_ in prepared],
            [target for _, target, *_ in prepared],
            lock=False,
            compute=False,
        )
        compute(stored, progress=progress)
    for _, target, _, _ in prepared:
        target.attrs[COMPLETE_ATTR] = True
    return [zarr.open_array(name, mode="r") for _, _, name, _ in prepared]


def _prepare_store(array, path, attrs=None, *, overwrite, compressors):
    """Check ``array`` and its store; return ``(array in the store's chunks, store, name, attrs)``."""
    import dask.array as da
    import zarr

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    name = os.fspath(path)
    if isinstance(array, np.ndarray):
        array = da.from_array(array)
    elif not isinstance(array, da.Array):
        raise TypeError(f"array must be a dask or numpy array, got {type(array).__name__}")
    if any(np.isnan(c) for dim in array.chunks for c in dim):
        raise ValueError("array has unknown chunk sizes; call array.compute_chunk_sizes() first")
    shape, dtype = tuple(array.shape), np.dtype(array.dtype)

    try:
        existing = zarr.open_array(name, mode="r+")
    except FileNotFoundError:
        existing = None
    except ValueError as exc:
        if not overwrite:
            raise ValueError(
                f"{name!r} exists but is not a Zarr array ({exc}); choose another path, "
                "or pass overwrite=True to replace it"
            ) from None
        existing = None
    if existing is not None and not overwrite:
        if tuple(existing.shape) != shape or np.dtype(existing.dtype) != dtype:
            raise ValueError(
                f"the Zarr store {name!r} holds an array of shape {tuple(existing.shape)} and "
                f"dtype {existing.dtype}, but the result has shape {shape} and dtype {dtype}; "
                "choose another path, or pass overwrite=True to replace it"
            )
        if existing.attrs.get(COMPLETE_ATTR) is True:
            raise FileExistsError(
                f"the Zarr store {name!r} is already complete; pass overwrite=True to rewrite it"
            )
        return array.rechunk(existing.chunks), existing, name, attrs  # one writer per store chunk
    array = _regular(array)
    target = zarr.create_array(
        name,
        shape=shape,
        chunks=array.chunksize,
        dtype=dtype,
        compressors=compressors,
        overwrite=True,
    )
    return array, target, name, attrs


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
    The bar goes to stderr.

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
        if show:
            from distributed import progress as distributed_progress

            with contextlib.redirect_stdout(sys.stderr):
                distributed_progress(futures)
                print(file=sys.stderr)
        return tuple(client.gather(futures))
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
