"""pixgmm.fit on dask arrays equals the in-memory fit, on a real distributed.LocalCluster.

Integer images go through a distributed colour histogram (per-block counts
merged by a tree reduction), float images through a distributed EM (the
statistics kernel mapped over blocks every iteration, partial sums reduced).
One module-scoped cluster of 2 worker processes on 127.0.0.1; tiny images.
"""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
from pixgmm import fitting

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

TIMEOUT = 60


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        timeout=TIMEOUT,
    )
    c = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)


def image(rng, shape=(45, 50), dtype=np.uint8):
    centres = np.array([[60.0, 90, 120], [180, 150, 100]])
    label = rng.random(shape) < 0.6
    img = rng.normal(centres[label.astype(int)], 12.0)
    return img.clip(0, 255).round().astype(dtype) if dtype == np.uint8 else img.astype(dtype)


START = pixgmm.Mixture(
    [0.5, 0.5], [[50, 80, 110], [170, 160, 90]], [[300.0] * 3, [400.0] * 3], "diag"
)


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_uint8_dask_histogram_equals_in_memory(client, rng, covariance_type):
    img = image(rng)
    lazy = da.from_array(img, chunks=(13, 17, 2))  # odd chunks, channel axis split
    got = fitting.fit_em(lazy, 2, covariance_type, init="k-means++")
    ref = fitting.fit_em(img, 2, covariance_type, init="k-means++")
    assert got.compression == "histogram" and got.n_points == ref.n_points
    assert got.n_samples == img.shape[0] * img.shape[1]
    assert got.mixture == ref.mixture  # the same histogram: the same EM, bit for bit


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
def test_float_distributed_em_equals_in_memory(client, rng, covariance_type):
    img = image(rng, dtype=np.float32)
    img[3, 4, 1] = np.nan
    lazy = da.from_array(img, chunks=(11, 23, 3))
    got = fitting.fit_em(lazy, 2, covariance_type, init=START, tol=0, max_iter=5)
    ref = fitting.fit_em(img, 2, covariance_type, init=START, tol=0, max_iter=5)
    assert got.n_nan == ref.n_nan == 1
    assert got.n_iter == 5
    np.testing.assert_allclose(got.mixture.weights, ref.mixture.weights, rtol=1e-10)
    np.testing.assert_allclose(got.mixture.means, ref.mixture.means, rtol=1e-10)
    np.testing.assert_allclose(got.mixture.covariances, ref.mixture.covariances, rtol=1e-9)
    np.testing.assert_allclose(got.lower_bounds, ref.lower_bounds, rtol=1e-12)
    assert got.bic == pytest.approx(ref.bic, rel=1e-12)


def test_float_dask_with_its_own_init_and_channel_axis(client, rng):
    img = image(rng, dtype=np.float64)
    lazy = da.from_array(np.moveaxis(img, -1, 0), chunks=(1, 20, 20))
    got = fitting.fit_em(lazy, 2, init="k-means++", channel_axis=0)
    assert got.converged and got.compression == "none"
    np.testing.assert_allclose(np.sort(got.mixture.means[:, 0]), [60, 180], atol=3)


def test_dask_errors(client, rng):
    lazy = da.from_array(image(rng, dtype=np.float64), chunks=(20, 20, 3))
    with pytest.raises(ValueError, match="not supported with a dask array"):
        fitting.fit(lazy, 2, max_samples=10)
    bad = lazy.copy()
    bad[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="1 infinite value"):
        fitting.fit(bad, 2, init="k-means++")


def test_block_histograms_dense_or_sorted_merge_to_the_in_memory_histogram(rng, monkeypatch):
    """Large blocks are counted into a dense array, small ones by sorting; the tree merges the
    blocks' sorted codes linearly. Whichever way, the histogram (and so the fit) is the one of
    the whole image in memory."""
    from pixgmm._engine import em as _em
    from pixgmm._engine import histfit

    # the linear merge against a merge by sorting, with shared, distinct and empty parts
    a = np.unique(rng.integers(0, 500, 300)).astype(np.int64)
    b = np.unique(rng.integers(250, 900, 400)).astype(np.int64)
    wa, wb = rng.random(a.shape[0]), rng.random(b.shape[0])
    codes, counts = _em.merge_counts(a, wa, b, wb)
    ref_codes, inverse = np.unique(np.concatenate([a, b]), return_inverse=True)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_allclose(counts, np.bincount(inverse, np.concatenate([wa, wb])), rtol=1e-15)
    empty = np.empty(0, np.int64)
    for x, y in ((a, empty), (empty, a)):
        c, n = _em.merge_counts(x, np.ones(x.shape[0]), y, np.ones(y.shape[0]))
        np.testing.assert_array_equal(c, a)
        assert (n == 1).all()

    # the bucketed RGB count against the dense one: scattered colours, one colour, the extremes
    for px in (
        rng.integers(0, 256, (50_000, 3), dtype=np.uint8),
        np.full((1000, 3), 7, np.uint8),
        np.array([[255, 255, 255], [0, 0, 0], [255, 0, 255], [0, 0, 0]], np.uint8),
    ):
        dense = np.zeros(2**24, np.uint32)
        _em.histogram8_count(px, dense)
        codes, n = _em.histogram8_sparse3(px)
        np.testing.assert_array_equal(codes, np.flatnonzero(dense))
        np.testing.assert_array_equal(n, dense[codes])

    # one step of the tree adds sparse and dense parts alike, and leaves its inputs as they were
    size = 1000
    parts = [(a, wa), np.arange(size, dtype=float), (b, wb), np.ones(size)]
    kept = [tuple(x.copy() for x in p) if isinstance(p, tuple) else p.copy() for p in parts]
    want = np.arange(size) + 1.0
    np.add.at(want, a, wa)
    np.add.at(want, b, wb)
    got = histfit._merge_histograms(*parts, size=size, dtype=np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-15)
    for p, k in zip(parts, kept):
        for x, y in zip(p if isinstance(p, tuple) else (p,), k if isinstance(k, tuple) else (k,)):
            np.testing.assert_array_equal(x, y)
    # integer counts in uint32 (an image of fewer than 2**32 pixels): the same sums, exactly
    ones = [(a, np.full(a.shape[0], 3.0)), (b, np.full(b.shape[0], 5.0))]
    got = histfit._merge_histograms(*ones, np.full(size, 7, np.uint32), size=size, dtype=np.uint32)
    want = np.full(size, 7)
    want[a] += 3
    want[b] += 5
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, want)

    img = image(rng, shape=(64, 80))
    ref = fitting.fit_em(img, 2, "full", init=START, tol=0, max_iter=3)
    expected_colours, expected_n = histfit.compress(img.reshape(-1, 3), None)[:2]
    # trees of any fan-in over the 12 blocks: groups of 2, 3 or 5, and a group of one passed on
    for fan_in in (2, 3, 5):
        monkeypatch.setattr(histfit, "TREE_FAN_IN", fan_in)
        for merge_fraction in (1, 10**12):  # every merge sparse, or every merge dense
            monkeypatch.setattr(histfit, "DENSE_MERGE_FRACTION", merge_fraction)
            colours, n = histfit.dask_histogram(da.from_array(img, chunks=(20, 30, 3)))
            np.testing.assert_array_equal(colours, expected_colours)
            np.testing.assert_array_equal(n, expected_n)
            assert n.dtype == np.float64
    # one colour counted more often than uint8 or uint16 could hold, through dense sums
    flat = np.zeros((300, 300, 3), np.uint8)
    colours, n = histfit.dask_histogram(da.from_array(flat, chunks=(100, 100, 3)))
    assert colours.tolist() == [[0, 0, 0]] and n.tolist() == [90000.0]
    monkeypatch.undo()
    # every block counted without sorting and every merge dense; or sorted blocks merged sparse
    for dense_from, merge_fraction in ((1, 10**12), (10**9, 1), (1, 1)):
        monkeypatch.setattr(histfit, "DENSE_HISTOGRAM_MIN", dense_from)
        monkeypatch.setattr(histfit, "DENSE_MERGE_FRACTION", merge_fraction)
        lazy = da.from_array(img, chunks=(20, 30, 3))
        colours, n = histfit.dask_histogram(lazy)
        np.testing.assert_array_equal(colours, expected_colours)
        np.testing.assert_array_equal(n, expected_n)
        with dask.config.set(scheduler="threads"):
            got = fitting.fit_em(lazy, 2, "full", init=START, tol=0, max_iter=3)
        assert got.mixture == ref.mixture
