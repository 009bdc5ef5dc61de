"""Writing maps to Zarr stores chunk by chunk, with a completion marker.

:func:`write_zarr` sets the store's attribute ``pixgmm_complete`` to ``False``
before the first chunk is written and to ``True`` only after every chunk was
written and found in the store, so a run that fails or is interrupted leaves a
store that does not claim to be complete (:func:`is_complete`), and running the
same call again finishes it. A store without the attribute was not written by
pixgmm and is never written into without ``overwrite=True`` (:func:`store_status`).

Paths on a cluster: output paths are made absolute in the calling process
before any task is sent (a worker's working directory may differ), and each
task checks that the store it writes to is the one the call prepared.

Object storage: a store may be a URL (``s3://bucket/maps/photo.mask.zarr``),
written by zarr's fsspec store with the credentials of the environment (each
worker of a cluster uses its own). Every chunk is an object of its own, and the
marker is in the store's metadata object, rewritten in one PUT after every
chunk was written and listed, so the guarantees above hold there too: a store
whose run was killed says ``"unfinished"``, and the same call finishes it. Errors
of the object store (no such bucket, access denied, no connection) are
:class:`~pixgmm.io.OutputError` naming the store and the reason.
"""

from __future__ import annotations

import os

import numpy as np

from .cluster import compute
from .paths import absolute as _absolute
from .paths import occupied as _occupied
from .paths import translated as _translated

#: Attribute that :func:`write_zarr` sets to True once every chunk is written.
COMPLETE_ATTR = "pixgmm_complete"
#: Attribute naming the :func:`write_zarr` call that writes the store; its tasks check it.
RUN_ATTR = "pixgmm_run"


def is_complete(path):
    """True when :func:`write_zarr` finished writing the Zarr store at ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        The store: a local path or a URL (``s3://bucket/maps/photo.mask.zarr``).

    Returns
    -------
    bool
        True when :func:`store_status` says ``"complete"``; False for a missing,
        unfinished or foreign store.

    Raises
    ------
    TypeError, OutputError
        As :func:`store_status` raises them.

    Examples
    --------
    >>> import tempfile
    >>> from pixgmm.io import is_complete
    >>> is_complete(tempfile.mkdtemp() + "/missing.zarr")
    False
    """
    return store_status(path) == "complete"


def store_status(path):
    """What :func:`write_zarr` finds at ``path``: what it would do with it.

    Parameters
    ----------
    path : str or os.PathLike
        The store: a local path (made absolute in this process) or a URL
        (``s3://bucket/maps/photo.mask.zarr``).

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

    Raises
    ------
    TypeError
        ``path`` is not a str or os.PathLike.
    OutputError
        For a URL: the object store cannot be asked (no such bucket, access
        denied, no connection).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pixgmm.io import store_status, write_zarr
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
    with _translated(name, "write"):
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


def write_zarr(
    array,
    path,
    *,
    overwrite=False,
    attrs=None,
    compressors="auto",
    progress=None,
    zarr_format=3,
):
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
        The Zarr store: a directory, or a URL (``s3://bucket/maps/map.zarr``,
        ``gs://``, ``az://``; credentials from the environment, see
        :mod:`pixgmm.io.remote`).
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
    zarr_format : {3, 2}
        The Zarr format of a new store. GDAL before 3.11 reads version 2 only
        (rasterio's ``ZARR:"path"``); xarray and zarr read both. The array's
        dimensions are named ``y, x`` (and ``band`` for a third axis) in the
        metadata xarray and GDAL read (``dimension_names``, ``_ARRAY_DIMENSIONS``).

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
        marked complete. For a URL, :class:`~pixgmm.io.OutputError` (an
        ``OSError``) when the object store refuses (no such bucket, access
        denied, no connection), naming the store and the reason.

    Examples
    --------
    >>> import tempfile, numpy as np, dask.array as da, pixgmm
    >>> from pixgmm.io import write_zarr, is_complete
    >>> model = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> image = da.zeros((100, 80), chunks=32)
    >>> path = tempfile.mkdtemp() + "/map.zarr"
    >>> stored = write_zarr(pixgmm.log_density(image, model, channel_axis=None), path)
    >>> stored.shape, stored.chunks, is_complete(path)
    ((100, 80), (32, 32), True)
    """
    return write_zarr_many(
        [(array, path, attrs)],
        overwrite=overwrite,
        compressors=compressors,
        progress=progress,
        zarr_format=zarr_format,
    )[0]


def write_zarr_many(items, *, overwrite=False, compressors="auto", progress=None, zarr_format=3):
    """Compute several maps into their Zarr stores in one pass over their shared graph.

    Like :func:`write_zarr` for each item, but everything the maps share (reading
    the image, a log ratio that both a probability map and a mask derive from)
    is computed once. Every store is checked before any is created or
    changed; each is marked complete only after all of them are written, so
    when one fails none claims to be complete. While it writes, the call holds
    each local store's writer lock (:mod:`pixgmm.io.lock`): a second call on the
    same store meanwhile raises :class:`~pixgmm.io.lock.StoreBusy` (a
    ``FileExistsError``) naming the run that writes it, and changes nothing.

    Parameters
    ----------
    items : sequence of (array, path) or (array, path, attrs)
        The maps, their stores and optional extra attributes, as for :func:`write_zarr`.
    overwrite, compressors, progress, zarr_format
        As for :func:`write_zarr`, applied to every store.

    Returns
    -------
    list of zarr.Array
        The written stores, opened read-only, in the order of ``items``.

    Examples
    --------
    >>> import tempfile, dask.array as da, pixgmm
    >>> from pixgmm.io import write_zarr_many, is_complete
    >>> lr = pixgmm.log_ratio(da.zeros((64, 48, 3), chunks=16),
    ...                       pixgmm.models.jones_rehg_skin(), pixgmm.models.jones_rehg_nonskin())
    >>> folder = tempfile.mkdtemp()
    >>> stores = write_zarr_many([(lr, folder + "/lr.zarr"), (lr > 0, folder + "/mask.zarr")])
    >>> [s.dtype.name for s in stores], is_complete(folder + "/mask.zarr")
    (['float64', 'bool'], True)
    """
    import uuid

    import zarr

    from .lock import store_locks

    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}")
    items = [_unpack(item) for item in items]
    for _, path, _ in items:
        if not _is_path(path):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    names = [_absolute(path) for _, path, _ in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"several maps would be written to the same store: {duplicates}")
    with store_locks(names):  # one run writes a store at a time; then what is there decides
        plans = []
        for (array, path, attrs), name in zip(items, names):
            with _translated(name, "write"):
                plans.append(_check_store(array, path, attrs, overwrite=overwrite))
        run = uuid.uuid4().hex  # this call's mark on its stores; every task checks it
        prepared = []
        for plan in plans:
            with _translated(plan[1], "write"):
                prepared.append(
                    _open_store(*plan, run=run, compressors=compressors, zarr_format=zarr_format)
                )
        if prepared:
            writes = [_write_blocks(array, target, name, run) for array, target, name in prepared]
            counts = compute(*[w.sum() for w in writes], progress=progress)
            for (_, target, name), write, count in zip(prepared, writes, counts):
                _check_written(target, name, int(count), write.npartitions)
        for _, target, name in prepared:  # last: every chunk of every store is in place
            with _translated(name, "write"):
                target.attrs[COMPLETE_ATTR] = True
    return [zarr.open_array(name, mode="r") for _, _, name in prepared]


def _is_path(path):
    return isinstance(path, (str, os.PathLike))


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


#: Names of a map's axes in the stores' metadata: (y, x) and a trailing band axis.
DIMENSIONS = ("y", "x", "band")


def _open_store(array, name, attrs, existing, replace, *, run, compressors, zarr_format=3):
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
        dims = list(DIMENSIONS[: array.ndim]) if array.ndim <= len(DIMENSIONS) else None
        target = zarr.create_array(
            name,
            shape=tuple(array.shape),
            chunks=array.chunksize,
            dtype=array.dtype,
            compressors=compressors,
            overwrite=replace,
            zarr_format=zarr_format,
            **({"dimension_names": dims} if zarr_format == 3 and dims else {}),
        )
        if zarr_format == 2 and dims:
            attrs = {**(attrs or {}), "_ARRAY_DIMENSIONS": dims}
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

        from .paths import is_url

        where = (
            "the same store (the same endpoint and credentials in every worker's environment)"
            if is_url(name)
            else "the output at the same path, e.g. on a shared file system"
        )
        raise OSError(
            f"the Zarr store {name!r} seen by the worker on {socket.gethostname()} "
            f"(working directory {os.getcwd()}) is not the one this write prepared "
            f"({'no such store' if seen is None else 'another run'}); every worker must see "
            f"{where}"
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
