"""Dask-array images: the engines applied block by block, lazily.

:mod:`pixgmm.evaluate` validates a call on a dask-array ``image`` on the
client and hands it here; this module is imported only then, so ``import
pixgmm`` never imports dask, and it never imports :mod:`pixgmm.evaluate`.

How a call becomes a graph:

1. (In :mod:`pixgmm.evaluate`.) Everything is validated on the client, before
   any task runs: the image's dtype, shape and channel axis against the real
   shape, the models (coerced to :class:`~pixgmm.Mixture` and reordered to the
   image's ``channels`` once; a :class:`~pixgmm.HistogramModel` is kept as it
   is), every keyword, the output dtype.
2. (In :mod:`pixgmm.evaluate`.) ``method="auto"`` is resolved once for the
   whole image, with the NumPy rule applied to the whole image's pixel count,
   so every block uses the engine the NumPy call on the whole image would use
   (a 1-gigapixel uint8 image chunked into small blocks still gets the colour
   table).
3. The channel axis is merged into one chunk when it is split (``rechunk``).
4. Each model enters the graph once, as a single key (``dask.delayed``); every
   block task refers to that key. With ``distributed`` a model reaches each
   worker once, however many tasks run there.
5. One ``blockwise`` task per spatial block runs the chosen engine on it. The
   output keeps the image's spatial chunks; ``responsibilities`` adds a trailing
   axis of length K in one chunk.

Colour and separable tables are not shipped: each worker *process* builds a
table the first time one of its tasks needs it and keeps it in its own table
cache (:func:`pixgmm.cache_info` is per process), so a table is built once per
process, under a lock so that the threads of one worker do not build it twice.
The cache must be large enough to hold the table (the default 512 MiB is),
otherwise every block rebuilds it.

``out=`` is not accepted with a dask image (``TypeError``): the result is lazy.
Store it with ``result.store(target)``, :func:`pixgmm.io.write_zarr`, or
take ``result.compute()``.
"""

from __future__ import annotations

import threading
from string import ascii_letters

import numba
import numpy as np

from .._validation import pixels_view
from . import dispatch, table

_TABLE_LOCK = threading.Lock()
_KERNEL_LOCK = threading.Lock()


def evaluate(name, quantity, engine, image, models, *, normalized, channel_axis, dtype):
    """The lazy result of ``quantity`` on a dask ``image``, block by block.

    Everything is validated by the caller: ``models`` are resolved to the
    image's channel order, ``engine`` is the name of the engine every block
    uses, ``channel_axis`` is non-negative (or None) and ``dtype`` the output
    dtype. ``name`` is the public function's name, for the graph's keys.
    """
    import dask
    import dask.array as da

    # 3. the channel axis in one chunk
    axis = channel_axis
    if axis is not None and len(image.chunks[axis]) > 1:
        image = image.rechunk({axis: -1})

    # 4. each model once in the graph
    fingerprints = [m._fingerprint for m in models]
    token = dask.base.tokenize(
        name, quantity, engine, image.name, normalized, axis, np.dtype(dtype).str, *fingerprints
    )
    dmodels = [
        dask.delayed(m, pure=True, name=f"pixgmm-model-{fp}") for m, fp in zip(models, fingerprints)
    ]

    # 5. one task per spatial block
    in_ind = ascii_letters[: image.ndim]
    spatial = in_ind if axis is None else in_ind.replace(in_ind[axis], "")
    out_ind = spatial
    new_axes = None
    if quantity == "resp":  # trailing K axis in one chunk
        out_ind = spatial + "Z"
        new_axes = {"Z": models[0].n_components}
    return da.blockwise(
        _block,
        out_ind,
        image,
        in_ind,
        *[a for d in dmodels for a in (d, None)],
        quantity=quantity,
        engine=engine,  # by name: a module cannot be pickled into a task
        normalized=normalized,
        channel_axis=axis,
        out_dtype=np.dtype(dtype),
        name=f"pixgmm-{name}-{token}",
        dtype=dtype,
        new_axes=new_axes,
        concatenate=True,
        meta=np.empty((0,) * len(out_ind), dtype),
    )


def _block(block, *models, quantity, engine, normalized, channel_axis, out_dtype):
    """Run on a worker: one NumPy block through the engine named ``engine``."""
    X, spatial = pixels_view(block, models[0].n_features, channel_axis)
    shape = tuple(spatial)
    if quantity == "resp":
        shape += (models[0].n_components,)
    out = np.empty(shape, dtype=out_dtype)
    flat = out.reshape(X.shape[0], shape[-1]) if quantity == "resp" else out.reshape(-1)
    if engine == "table" and X.shape[0]:
        with _TABLE_LOCK:  # one build per process, whatever the number of threads
            table.colour_table(quantity, models, normalized, X.shape[1], out_dtype)
    run = dispatch.ENGINES[engine]
    if _serial_kernels():
        with _KERNEL_LOCK:
            dispatch.evaluate(run, quantity, X, models, normalized, flat)
    else:
        dispatch.evaluate(run, quantity, X, models, normalized, flat)
    return out


def _serial_kernels():
    """True when numba's parallel kernels must not be entered by two threads at once.

    numba's ``workqueue`` threading layer (used when neither TBB nor OpenMP is
    available) aborts on concurrent parallel launches; ``omp`` and ``tbb`` do
    not. Before the first parallel launch the layer is unknown: serialise.
    """
    try:
        return numba.threading_layer() == "workqueue"
    except ValueError:
        return True
