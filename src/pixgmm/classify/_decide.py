"""A classification's per-pixel maps in one pass: NumPy images block by block, Dask images
one task per block.

Public layer: :class:`Plan` holds what every block needs, decided once per call by
:class:`pixgmm.Classifier`; :func:`run_numpy` and :func:`run_dask` apply it. Either way,
each block of pixels goes once through one kernel of :mod:`pixgmm._engine.classes`, which
writes the class codes (label, no class, rejected) and the requested float maps; the codes
become labels by one lookup (:func:`labels_from_codes`).
"""

from __future__ import annotations

import math

import numpy as np

from .. import evaluate
from .._engine import classes as _classes
from .._engine.direct import n_tasks
from .._validation import native_kernel_dtype, resolve_dtype
from ._checks import bad_prior_message

#: Pixels per block on a NumPy image: the kernel's outputs are written straight into the
#: result; the block bounds the codes (and, off the one-pass kernel, the class scores).
DECIDE_BLOCK = 1 << 18

#: The float maps, in the order the kernels take them.
MAPS = ("confidence", "margin", "entropy")


class Plan:
    """Everything a block needs, fixed for one call.

    ``fused``: one kernel scores every class from the pixels (``stacked`` holds the
    stacked ``(means, prec, coef, full, starts)``); otherwise ``models`` (resolved to the
    image's channel order) are evaluated per class with the engines ``methods`` at
    ``score_dtype``, and :func:`~pixgmm._engine.classes.decide_scores` decides.
    """

    __slots__ = (
        "chi2_max", "fused", "labels", "log_priors", "maps", "methods", "min_prob", "models",
        "odt", "score_dtype", "stacked",
    )  # fmt: skip

    def __init__(self, *, fused, stacked, models, methods, score_dtype, log_priors, labels,
                 chi2_max, min_prob, maps, odt):  # fmt: skip
        self.fused = fused
        self.stacked = stacked
        self.models = models
        self.methods = methods
        self.score_dtype = score_dtype
        self.log_priors = log_priors
        self.labels = labels
        self.chi2_max = math.inf if chi2_max is None else float(chi2_max)
        self.min_prob = 0.0 if min_prob is None else float(min_prob)
        self.maps = maps  # the float maps to write, a subset of MAPS
        self.odt = odt

    def token(self):
        """What the blocks' results depend on besides the pixels and priors (a dask name)."""
        import dask.base

        params = self.stacked if self.fused else [m._fingerprint for m in self.models]
        return dask.base.tokenize(
            self.fused, params, self.methods, str(self.score_dtype), self.log_priors,
            self.chi2_max, self.min_prob, self.maps, self.odt.str,
        )  # fmt: skip


def _checked_priors(plan, priors):
    """A block of per-pixel priors (n, C) as the kernels read it, or an empty (0, C) one."""
    c = len(plan.log_priors)
    if priors is None:
        return np.empty((0, c))
    p = np.ascontiguousarray(priors.reshape(-1, c), dtype=np.float64)
    if not _classes.check_prior_block(p):
        raise ValueError(bad_prior_message(p, plan.labels))
    return p


def _scores(plan, X):
    """Per-class log-densities (C, n) and, with a chi-square reject, distances (C, n)."""
    c = len(plan.models)
    sdt = resolve_dtype(X.dtype, plan.score_dtype)
    S = np.empty((c, X.shape[0]), dtype=sdt)
    for k, (m, method) in enumerate(zip(plan.models, plan.methods)):
        evaluate.log_density(X, m, dtype=sdt, out=S[k], method=method)
    D2 = np.empty((0, c))
    if plan.chi2_max < math.inf:
        D2 = np.stack([evaluate.min_mahalanobis(X, m, dtype=np.float64) for m in plan.models], 1)
    # the kernel reads one pixel's classes together: (n, C), C-contiguous
    return np.ascontiguousarray(S.T), D2


def run_block(plan, X, priors, codes, out):
    """Run one block: pixels ``X`` (n, D) (or, off the one-pass kernel, their class
    scores ``(S, D2)`` (n, C) each) and ``priors`` into ``codes`` and the maps ``out``."""
    empty = np.empty(0, plan.odt)
    conf, margin, entropy = (out.get(name, empty) for name in MAPS)
    P = _checked_priors(plan, priors)
    n = codes.shape[0]
    if not n:
        return
    if plan.fused:
        means, prec, coef, full, starts = plan.stacked
        kernel = _classes.pixels_kernel(X.shape[1])
        kernel(X, means, prec, coef, full, starts, plan.log_priors, P, plan.chi2_max,
               plan.min_prob, codes, conf, margin, entropy, n_tasks(n))  # fmt: skip
    else:
        S, D2 = X
        _classes.decide_scores(S, D2, plan.log_priors, P, plan.chi2_max, plan.min_prob,
                               codes, conf, margin, entropy, n_tasks(n))  # fmt: skip


def labels_from_codes(codes, lut, fill_missing, out=None):
    """Labels from the kernels' codes; ``fill_missing``: pixels without a class are an error."""
    if fill_missing:
        n = int(np.count_nonzero(codes == _classes.CODE_UNDEFINED))
        if n:
            raise ValueError(
                f"{n} pixel(s) cannot be classified (a NaN value, a nodata value, zero "
                "density under every model, or a zero prior for every class); pass fill= a "
                "label for them, e.g. fill=-1"
            )
    return np.take(lut, codes, out=out, mode="clip")


def run_numpy(plan, X, spatial, priors, outputs, lut, fill_missing):
    """The maps of ``outputs`` for NumPy pixels ``X`` (N, D) in any dtype, ``DECIDE_BLOCK``
    at a time; each block is converted to the kernels' dtype on its own."""
    n = X.shape[0]
    c = len(plan.log_priors)
    result = {name: np.empty(n, plan.odt) for name in plan.maps}
    labels = np.empty(n, lut.dtype) if "labels" in outputs else None
    codes = np.empty(min(n, DECIDE_BLOCK), np.int32)
    flat_priors = None if priors is None else priors.reshape(n, c)
    kdt = native_kernel_dtype(X.dtype)
    for start in range(0, n, DECIDE_BLOCK):
        stop = min(n, start + DECIDE_BLOCK)
        xb = X[start:stop]
        if xb.dtype != kdt:
            xb = xb.astype(kdt)
        data = xb if plan.fused else _scores(plan, xb)
        pb = None if flat_priors is None else flat_priors[start:stop]
        cb = codes[: stop - start]
        run_block(plan, data, pb, cb, {k: v[start:stop] for k, v in result.items()})
        if labels is not None:
            labels_from_codes(cb, lut, fill_missing, out=labels[start:stop])
    if labels is not None:
        result["labels"] = labels
    return {name: result[name].reshape(spatial) for name in outputs}


# -- Dask ----------------------------------------------------------------------------------


def _raw_block(data, d2, priors, plan, nd):
    """One Dask block: ``data`` (pixels (..., D), or class scores (..., C) with the
    distances ``d2``) -> ``(codes, *maps)`` with the block's spatial shape."""
    from .._engine.blocks import _KERNEL_LOCK, _serial_kernels

    spatial = data.shape[:nd]
    n = math.prod(spatial)
    flat = data.reshape(n, data.shape[-1])
    if plan.fused:
        kdt = native_kernel_dtype(flat.dtype)
        X = flat if flat.dtype == kdt else flat.astype(kdt)
    else:
        D2 = np.empty((0, flat.shape[1])) if d2 is None else d2.reshape(n, -1)
        X = (flat, np.ascontiguousarray(D2, dtype=np.float64))
    codes = np.empty(n, np.int32)
    out = {name: np.empty(n, plan.odt) for name in plan.maps}
    if _serial_kernels():
        with _KERNEL_LOCK:
            run_block(plan, X, priors, codes, out)
    else:
        run_block(plan, X, priors, codes, out)
    return (codes.reshape(spatial), *(out[name].reshape(spatial) for name in plan.maps))


def _labels_block(codes, lut, fill_missing):
    return labels_from_codes(codes, lut, fill_missing)


def _leaf(tmp, index, name, dtype):
    """Output ``index`` of the tuple-valued blocks of ``tmp``, as its own dask array."""
    import operator

    import dask.array as da
    from dask.core import flatten
    from dask.highlevelgraph import HighLevelGraph

    keys = list(flatten(tmp.__dask_keys__()))
    dsk = {(name, *key[1:]): (operator.getitem, key, index) for key in keys}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[tmp])
    return da.Array(graph, name, chunks=tmp.chunks, dtype=dtype)


def run_dask(plan, data, d2, priors, outputs, lut, fill_missing):
    """The maps of ``outputs`` as dask arrays, from one task per block.

    ``data`` is the image with its channels last in one chunk (or, off the one-pass
    kernel, the class scores with the classes last in one chunk, and ``d2`` the distances
    alike or None); ``priors`` a NumPy or dask array (..., C) on the image's grid, or None.
    The tasks' name is a token of their inputs and of ``plan``, so maps asked of the same
    image with the same arguments in two calls share them when computed together.
    """
    import dask
    import dask.array as da

    nd = data.ndim - 1
    spatial_chunks = data.chunks[:nd]
    c = len(plan.log_priors)
    if priors is not None:
        if isinstance(priors, np.ndarray):
            priors = da.from_array(priors, chunks=(*spatial_chunks, c))
        else:
            priors = priors.rechunk((*spatial_chunks, c))
    ind = "abcdefghijklmnopqrstuvwxyz"[:nd]
    token = dask.base.tokenize(
        data.name, None if d2 is None else d2.name, None if priors is None else priors.name,
        plan.token(),
    )  # fmt: skip
    dplan = dask.delayed(plan, pure=True, name=f"pixgmm-classify-plan-{token}")
    # the channel (or class) axis and the class axis: one chunk each, contracted per block
    args = [data, ind + "Z", d2, None if d2 is None else ind + "Y"]
    args += [priors, None if priors is None else ind + "Y"]
    metas = (np.empty((0,) * nd, np.int32), *(np.empty((0,) * nd, plan.odt) for _ in plan.maps))
    tmp = da.blockwise(
        _raw_block, ind, *args, dplan, None, nd, None, concatenate=True, meta=metas,
        name=f"pixgmm-best-class-{token}",
    )  # fmt: skip
    result = {}
    for i, name in enumerate(plan.maps, start=1):
        result[name] = _leaf(tmp, i, f"pixgmm-{name}-{token}", plan.odt)
    if "labels" in outputs:
        codes = _leaf(tmp, 0, f"pixgmm-codes-{token}", np.int32)
        result["labels"] = codes.map_blocks(
            _labels_block, lut, fill_missing, dtype=lut.dtype, meta=np.empty((0,) * nd, lut.dtype)
        )
    return {name: result[name] for name in outputs}
