"""Dask-array images: the evaluation functions applied block by block, lazily.

:mod:`pixgmm.evaluate` sends a dask-array ``image`` here (see its ``_dask_aware``
decorator); this module is imported only then, so ``import pixgmm`` never
imports dask.

How a call becomes a graph:

1. Everything is validated on the client, before any task runs: the image's
   dtype, shape and channel axis against the real shape, the models (coerced to
   :class:`~pixgmm.Mixture` and reordered to the image's ``channels`` once),
   every keyword, by running the NumPy function on an empty sample of the image.
   (A :class:`~pixgmm.HistogramModel` is kept as it is.)
   That run also gives the output dtype (the NumPy rule, ``resolve_dtype``).
2. ``method="auto"`` is resolved once for the whole image, with the NumPy rule
   applied to the whole image's pixel count, so every block uses the engine the
   NumPy call on the whole image would use (a 1-gigapixel uint8 image chunked
   into small blocks still gets the colour table).
3. The channel axis is merged into one chunk when it is split (``rechunk``).
4. Each model enters the graph once, as a single key (``dask.delayed``); every
   block task refers to that key. With ``distributed`` a model reaches each
   worker once, however many tasks run there.
5. One ``blockwise`` task per spatial block runs the NumPy function on it. The
   output keeps the image's spatial chunks; ``responsibilities`` adds a trailing
   axis of length K in one chunk.

Colour and separable tables are not shipped: each worker *process* builds a
table the first time one of its tasks needs it and keeps it in its own table
cache (:func:`pixgmm.cache_info` is per process), so a table is built once per
process, under a lock so that the threads of one worker do not build it twice.
The cache must be large enough to hold the table (the default 512 MiB is),
otherwise every block rebuilds it.

``out=`` is not accepted with a dask image (``TypeError``): the result is lazy.
Store it with ``result.store(target)``, :func:`pixgmm.bigimage.write_zarr`, or
take ``result.compute()``.
"""

from __future__ import annotations

import inspect
import threading
from string import ascii_letters

import numba
import numpy as np

from . import evaluate as _ev
from ._validation import (
    check_image_dtype,
    native_kernel_dtype,
    normalize_channel_axis,
    pixels_view,
)

#: The quantity each table-capable public function computes (``evaluate._run``'s names).
_QUANTITY = {"density": "pdf", "log_density": "log", "log_ratio": "ratio"}
_MODEL_NAMES = {1: ("model",), 2: ("model_a", "model_b")}

_TABLE_LOCK = threading.Lock()
_KERNEL_LOCK = threading.Lock()


def evaluate(func, image, models, *args, **kwargs):
    """Apply ``func`` (an undecorated function of :mod:`pixgmm.evaluate`) to a dask image.

    Returns a lazy ``dask.array.Array``; see the module docstring.
    """
    import dask
    import dask.array as da

    name = func.__name__
    if kwargs.get("out") is not None:
        raise TypeError(
            f"out= cannot be used when image is a dask array: {name}() returns a lazy "
            "dask array. Drop out= and store the result chunk by chunk with "
            "result.store(target) or pixgmm.bigimage.write_zarr(result, path), or "
            "take result.compute()"
        )
    names = _MODEL_NAMES[len(models)]
    try:
        bound = inspect.signature(func).bind(image, *models, *args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{name}(): {exc}") from None
    bound.apply_defaults()
    kw = {k: v for k, v in bound.arguments.items() if k not in ("image", *names)}
    kw.pop("out", None)

    # 1. validation against the real shape, without touching the data
    check_image_dtype(image.dtype, "image")
    if any(np.isnan(c) for dim in image.chunks for c in dim):
        raise ValueError("image has unknown chunk sizes; call image.compute_chunk_sizes() first")
    ms = [_ev._as_model(m, n) for m, n in zip(models, names)]
    channel_axis = kw.get("channel_axis", -1)
    kdtype = native_kernel_dtype(image.dtype)
    whole = np.broadcast_to(np.zeros((), kdtype), image.shape)  # zero strides: no memory
    X, _ = pixels_view(whole, ms[0].n_features, channel_axis)
    ms = _ev._resolve_models(ms, names, kw.get("channels"), X.shape[1])
    kw["channels"] = None  # the models now follow the image's channel order
    axis = normalize_channel_axis(channel_axis, image.ndim)
    sample_shape = tuple(image.shape[i] if i == axis else 0 for i in range(image.ndim))
    sample = func(np.empty(sample_shape, image.dtype), *ms, **kw)
    odt = sample.dtype

    # 2. one engine for the whole image
    quantity = _QUANTITY.get(name)
    if quantity is not None and X.shape[0]:  # also checks that a forced engine applies
        kw["method"] = _ev._choose_engine(kw["method"], quantity, X, ms)

    # 3. the channel axis in one chunk
    if axis is not None and len(image.chunks[axis]) > 1:
        image = image.rechunk({axis: -1})

    # 4. each model once in the graph
    token = dask.base.tokenize(name, image.name, kw, *(m._fingerprint for m in ms))
    dmodels = [dask.delayed(m, pure=True, name=f"pixgmm-model-{m._fingerprint}") for m in ms]

    # 5. one task per spatial block
    in_ind = ascii_letters[: image.ndim]
    spatial = in_ind if axis is None else in_ind.replace(in_ind[axis], "")
    out_ind = spatial
    new_axes = None
    if sample.ndim == len(spatial) + 1:  # responsibilities: trailing K axis
        out_ind = spatial + "Z"
        new_axes = {"Z": sample.shape[-1]}
    table = None
    if kw.get("method") == "table":
        table = (quantity, bool(kw["normalized"]), X.shape[1], odt)
    return da.blockwise(
        _block,
        out_ind,
        image,
        in_ind,
        *[a for d in dmodels for a in (d, None)],
        fn=name,  # by name: a function object would be pickled by value into every task
        table=table,
        options=kw,
        name=f"pixgmm-{name}-{token}",
        dtype=odt,
        new_axes=new_axes,
        concatenate=True,
        meta=np.empty((0,) * len(out_ind), odt),
    )


def _block(block, *models, fn, table, options):
    """Run on a worker: one NumPy block through ``fn(block, *models, **options)``.

    ``fn`` is the name of a function of :mod:`pixgmm.evaluate`; its undecorated
    NumPy version runs here.
    """
    fn = inspect.unwrap(getattr(_ev, fn))
    if table is not None:
        quantity, normalized, n_channels, dtype = table
        with _TABLE_LOCK:  # one build per process, whatever the number of threads
            _ev._table(quantity, models, normalized, n_channels, dtype)
    if _serial_kernels():
        with _KERNEL_LOCK:
            return fn(block, *models, **options)
    return fn(block, *models, **options)


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
