"""The points an EM runs on: exact compression of integer pixels, and their statistics.

An EM on distinct values, each weighted by its number of pixels, is the same EM
as on every pixel (the sums over pixels are sums over values times counts). So
:func:`compress` turns

- 8-bit pixels with up to 3 channels into their colour histogram (distinct
  colours in code order and their counts): ``"histogram"``;
- other integer pixels into their distinct rows with counts, when that at
  least halves the rows: ``"unique"``;
- anything else (float pixels) into itself: ``"none"``.

:class:`Points` (in memory) and :class:`DaskPoints` (blocks of a dask array,
float pixels) answer the one question the EM loop asks: the summed sufficient
statistics for given parameters (:meth:`stats`). The kernels (:mod:`.em`,
:mod:`.emtable`) are imported where they run, so one Gaussian on points in
memory (:func:`one_component_stats`) loads no compiler.
"""

from __future__ import annotations

import functools

import numpy as np

#: Below this many pixels an 8-bit histogram is counted by sorting packed codes
#: instead of a dense 256**C array (the same histogram, cheaper for small inputs).
DENSE_HISTOGRAM_MIN = 1 << 20
#: Parts of a dense histogram scanned in parallel for its non-zero entries.
NONZERO_TASKS = 16


class Points:
    """Points (M, D) with weights (None: all 1), and what they came from."""

    def __init__(self, X, w, *, compression, n_pixels, n_nan, total_weight):
        self.X = X
        self.w = w
        self.compression = compression
        self.n_pixels = n_pixels  # non-NaN pixels they stand for
        self.n_nan = n_nan
        self.total_weight = total_weight
        self.n_features = X.shape[1]

    @property
    def n_points(self):
        return self.X.shape[0]

    def stats(self, means, prec, coef, full, second):
        if means.shape[0] == 1:  # one Gaussian: a few matrix products, no kernel to load
            return one_component_stats(self.X, self.w, means, prec, coef, second)
        return block_stats(self.X, self.w, means, prec, coef, full, second)


#: Points per NumPy chunk of :func:`one_component_sums`: its temporaries stay a few MB.
ONE_COMPONENT_CHUNK = 1 << 16


def one_component_sums(X, w, centre, prec=None, coef=0.0, moments=True):
    """``(nk (1,), sx (1, D), sxx (1, D, D), loglik_sum, weight_sum, n_nan)`` of points X
    (N, D) with weights ``w`` (None: all 1) about ``centre`` (D,), for one Gaussian.

    The sums of :func:`block_stats` with K = 1, in NumPy (rounded in another order), chunk
    by chunk; ``loglik_sum`` needs ``prec`` (the factor U, D x D) and ``coef`` (else 0).
    Without ``moments`` (a likelihood-only pass) ``nk``, ``sx`` and ``sxx`` stay 0, as the
    kernels leave them. A row with a NaN weighs 0 and is counted, as in the kernels.
    """
    n, dim = X.shape
    nk, sx, sxx = 0.0, np.zeros(dim), np.zeros((dim, dim))
    ll, wsum, n_nan = 0.0, 0.0, 0
    for start in range(0, n, ONE_COMPONENT_CHUNK):
        d = np.array(X[start : start + ONE_COMPONENT_CHUNK], dtype=np.float64)
        wb = (np.ones(d.shape[0]) if w is None
              else np.array(w[start : start + d.shape[0]], dtype=np.float64))  # fmt: skip
        bad = np.isnan(d).any(axis=1)
        if bad.any():
            d[bad] = 0.0
            wb[bad] = 0.0
            n_nan += int(bad.sum())
        d -= centre
        if prec is not None:
            y = d @ prec  # U^T (x - mu) for every point, as rows
            ll += float(wb @ (coef - 0.5 * np.einsum("ij,ij->i", y, y)))
        wsum += float(wb.sum())
        if moments:
            wd = d * wb[:, None]
            sx += wd.sum(axis=0)
            sxx += wd.T @ d
    nk = wsum if moments else 0.0
    return np.array([nk]), sx[None], sxx[None], ll, wsum, n_nan


def one_component_stats(X, w, means, prec, coef, second):
    """:func:`block_stats` for one Gaussian (:func:`one_component_sums`): a few matrix
    products instead of the kernels, whose first use in a process loads numba's compiler
    (about half a second)."""
    return one_component_sums(X, w, means[0], prec[0], coef[0], moments=second != 0)


def block_stats(X, w, means, prec, coef, full, second):
    """``(nk, sx, sxx, loglik_sum, weight_sum, n_nan)`` of points X (N, D), summed."""
    from . import em as _em
    from . import emtable as _emtable

    K, D = means.shape
    T = _em.n_tasks(X.shape[0])
    nk = np.empty((T, K))
    sx = np.empty((T, K, D))
    sxx = np.empty((T, K, D, D))
    out = np.empty((T, 3))
    has_w = w is not None
    ww = w if has_w else np.empty(1)
    if X.dtype == np.uint8 and D == 3 and not full:  # a colour histogram, diagonal covariances
        f, g, a = _emtable.tables(means, prec, coef)
        _emtable.em_stats_table(X, ww, has_w, f, g, a, means, second, nk, sx, sxx, out, T)
    else:
        _em.em_stats(X, ww, has_w, means, prec, coef, full, second, nk, sx, sxx, out, T)
    tot = out.sum(axis=0)
    return nk.sum(0), sx.sum(0), sxx.sum(0), float(tot[0]), float(tot[1]), int(tot[2])


def add_stats(*parts):
    """The statistics of several parts together (a tree-reduction step)."""
    return tuple(sum(x[1:], x[0]) for x in zip(*parts))


# -- compression ----------------------------------------------------------------------


def histogram_counts(px, w, counts=None, mask=None):
    """Add the pixels (N, C<=3, uint8) to dense float64 ``counts`` (256**C); return counts."""
    n_channels = px.shape[1]
    if counts is None:
        counts = np.zeros(256**n_channels)
    has_mask = mask is not None
    _hist_into(px, w, mask if has_mask else np.empty(1, bool), has_mask, counts)
    return counts


def _hist_into(px, w, mask, has_mask, counts):
    from . import em as _em

    has_w = w is not None
    _em.histogram8(px, w if has_w else np.empty(1), has_w, mask, has_mask, counts)


def packed_codes8(px):
    """``x_0 * 256**(C-1) + ... + x_{C-1}`` per row, as int64."""
    code = np.zeros(px.shape[0], dtype=np.int64)
    for c in range(px.shape[1]):
        code = code * 256 + px[:, c]
    return code


def from_counts(counts, n_channels):
    """Distinct colours (M, C) uint8 and counts (M,) float64 from a dense histogram."""
    from . import em as _em

    return _em.nonzero_counts(counts, n_channels, NONZERO_TASKS)


def compress(px, w):
    """``(X, w, compression)``: the points an EM on ``px`` (N, D) with weights ``w`` runs on."""
    n, d = px.shape
    if px.dtype == np.uint8 and d <= 3:
        from . import em as _em

        if n >= DENSE_HISTOGRAM_MIN and w is None and n < 2**32:
            dense = np.zeros(256**d, dtype=np.uint32)
            _em.histogram8_count(px, dense)
            colours, counts = from_counts(dense, d)
        elif n >= DENSE_HISTOGRAM_MIN:
            colours, counts = from_counts(histogram_counts(px, w), d)
        else:
            codes, inverse = np.unique(packed_codes8(px), return_inverse=True)
            counts = np.bincount(inverse.reshape(-1), weights=w, minlength=codes.shape[0])
            keep = counts > 0
            colours, counts = _em.decode8(codes[keep], d), counts[keep]
        return colours, counts, "histogram"
    if px.dtype.kind in "ui" and n > 1:
        packed = _pack_int_rows(px)
        if packed is not None:
            codes, lo, strides = packed
            uniq, inverse = np.unique(codes, return_inverse=True)
            if 2 * uniq.shape[0] <= n:
                counts = np.bincount(inverse.reshape(-1), weights=w, minlength=uniq.shape[0])
                keep = counts > 0
                rows = np.empty((int(keep.sum()), d), dtype=px.dtype)
                rest = uniq[keep]
                for c in range(d):
                    rows[:, c] = rest // strides[c] + lo[c]
                    rest = rest % strides[c]
                return rows, counts[keep], "unique"
    return px, w, "none"


def _pack_int_rows(px):
    """``(codes, lo, strides)`` packing integer rows into one int64 each, or None if too wide."""
    lo = px.min(axis=0).astype(np.int64)
    hi = px.max(axis=0).astype(np.int64)
    span = [int(h) - int(l) + 1 for l, h in zip(lo, hi)]
    total = 1
    for s in span:
        total *= s
    if total >= 2**62:
        return None
    strides = [1] * len(span)
    for c in range(len(span) - 2, -1, -1):
        strides[c] = strides[c + 1] * span[c + 1]
    codes = np.zeros(px.shape[0], dtype=np.int64)
    for c in range(px.shape[1]):
        codes += (px[:, c].astype(np.int64) - lo[c]) * strides[c]
    return codes, lo, strides


# -- dask -----------------------------------------------------------------------------


def _block_pixels(block):
    return block.reshape(-1, block.shape[-1])


def _block_histogram(block):
    """Sparse colour histogram of one block: sorted distinct codes (int64) and their counts.

    A large block is counted without sorting: RGB by :func:`~pixgmm._engine.em.histogram8_sparse3`
    (bucketed by the first channel, so the counts stay in the CPU cache), fewer channels
    into a dense 256**C array whose non-zero entries are then listed; a small block by
    sorting its packed codes.
    """
    from . import em as _em

    px = np.ascontiguousarray(_block_pixels(block))
    if px.shape[1] == 3 and px.shape[0] >= DENSE_HISTOGRAM_MIN:
        return _em.histogram8_sparse3(px)
    if px.shape[0] >= DENSE_HISTOGRAM_MIN and px.shape[0] < 2**32:
        dense = np.zeros(256 ** px.shape[1], dtype=np.uint32)
        _em.histogram8_count(px, dense)
        codes = np.flatnonzero(dense)
        return codes.astype(np.int64, copy=False), dense[codes].astype(np.float64)
    codes, counts = np.unique(packed_codes8(px), return_counts=True)
    return codes.astype(np.int64, copy=False), counts.astype(np.float64)


#: A merged histogram with more distinct codes than 1/8 of the possible ones is kept as a
#: dense array of counts: adding two of them is cheaper than merging their code lists.
DENSE_MERGE_FRACTION = 8

#: Partial histograms added by each step of the reduction tree. Several at once: a step
#: that ends dense allocates its array of 256**C counts once for all of them, where steps
#: by pairs allocate and copy one per pair.
TREE_FAN_IN = 8


def _merge_histograms(*parts, size, dtype):
    """Partial histograms added: each is ``(codes, counts)`` (sorted distinct codes) or a
    dense array of ``size`` counts in ``dtype`` (uint32 while the image has fewer than
    2**32 pixels: exact, and half the memory of float64). Sparse ones are merged linearly
    while their codes together stay few, otherwise the sum is dense. The inputs are not
    modified."""
    from . import em as _em

    sparse = [p for p in parts if isinstance(p, tuple)]
    dense = [p for p in parts if not isinstance(p, tuple)]
    if not dense and sum(p[0].shape[0] for p in sparse) <= size // DENSE_MERGE_FRACTION:
        codes, counts = sparse[0]
        for more in sparse[1:]:
            codes, counts = _em.merge_counts(codes, counts, *more)
        return codes, counts
    out = dense[0].copy() if dense else np.zeros(size, dtype)
    for more in dense[1:]:
        out += more
    for codes, counts in sparse:
        out[codes] += counts.astype(dtype)  # codes are distinct: a plain indexed add is exact
    return out


def _tree(parts, combine):
    """``combine`` over ``parts`` (dask objects) as a tree, :data:`TREE_FAN_IN` at a time."""
    import dask

    combine = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        groups = [parts[i : i + TREE_FAN_IN] for i in range(0, len(parts), TREE_FAN_IN)]
        parts = [combine(*g) if len(g) > 1 else g[0] for g in groups]
    return parts[0]


def dask_histogram(arr):
    """Distinct colours (M, C) uint8 and counts of a dask uint8 array (..., C), C <= 3."""
    import dask

    from . import em as _em

    size = 256 ** arr.shape[-1]
    dtype = np.uint32 if np.prod(arr.shape[:-1], dtype=np.float64) < 2**32 else np.float64
    blocks = [dask.delayed(_block_histogram, pure=True)(b) for b in arr.to_delayed().ravel()]
    merge = functools.partial(_merge_histograms, size=size, dtype=dtype)
    merged = dask.compute(_tree(blocks, merge))[0]
    if isinstance(merged, tuple):
        codes, counts = merged
    else:
        codes = np.flatnonzero(merged)
        counts = merged[codes].astype(np.float64)
    return _em.decode8(codes.astype(np.int64), arr.shape[-1]), counts


def _dask_block_stats(block, params):
    return block_stats(_block_pixels(block), None, *params)


def _dask_block_nonfinite(block):
    from . import em as _em

    px = _block_pixels(block)
    return _em.count_nonfinite(px, _em.n_tasks(px.shape[0]))


def _dask_block_sample(block, seed, fraction):
    """A Bernoulli sample of the block's non-NaN pixels, as float64."""
    px = _block_pixels(block)
    rng = np.random.default_rng(seed)
    take = rng.random(px.shape[0]) < fraction
    sample = np.asarray(px[take], dtype=np.float64)
    return sample[~np.isnan(sample).any(axis=1)]


class DaskPoints:
    """Float pixels in the blocks of a dask array (..., C): a distributed EM.

    Each call of :meth:`stats` maps :func:`block_stats` over the blocks (the
    parameters enter the graph once, as one key) and sums the partial
    statistics by a tree reduction. Blocks are persisted when the array is at
    most ``persist_bytes`` (otherwise every iteration recomputes them from
    their source).
    """

    compression = "none"

    def __init__(self, arr, persist_bytes):
        import dask

        if arr.nbytes <= persist_bytes:
            arr = arr.persist()
        self.arr = arr
        self.blocks = list(arr.to_delayed().ravel())
        self.n_features = arr.shape[-1]
        self.w = None
        parts = [dask.delayed(_dask_block_nonfinite, pure=True)(b) for b in self.blocks]
        counts = dask.compute(_tree(parts, add_stats))[0]
        self.n_nan, self.n_inf = int(counts[0]), int(counts[1])
        self.n_pixels = int(np.prod(arr.shape[:-1])) - self.n_nan
        self.total_weight = float(self.n_pixels)

    @property
    def n_points(self):
        return self.n_pixels

    def stats(self, means, prec, coef, full, second):
        import dask

        params = dask.delayed((means, prec, coef, full, second), pure=True)
        parts = [dask.delayed(_dask_block_stats, pure=True)(b, params) for b in self.blocks]
        return dask.compute(_tree(parts, add_stats))[0]

    def sample(self, size, seed):
        """About ``size`` pixels drawn uniformly (a Bernoulli sample per block), float64."""
        import dask

        fraction = min(1.0, size / max(self.n_pixels, 1))
        seeds = np.random.SeedSequence(seed).spawn(len(self.blocks))
        parts = [
            dask.delayed(_dask_block_sample, pure=True)(b, s.generate_state(1)[0], fraction)
            for b, s in zip(self.blocks, seeds)
        ]
        return np.concatenate(dask.compute(*parts))
