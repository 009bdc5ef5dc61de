"""The table cache: least-recently-used eviction, and ``auto`` taking a table already cached.

``pixgmm.cache_info`` promises that the least recently used tables go first and
that a table larger than the limit is returned but not kept; the engine rule
promises that a small uint8 image whose colour table (same model, quantity and
output dtype) is cached uses that table. Both are checked here through the
cache itself and through the public functions (``pixgmm.explain`` and results).
"""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
from pixgmm._engine.cache import TableCache

TABLE_BYTES = 256**2 * 8  # a float64 colour table of a 2-channel model


@pytest.fixture
def fresh_cache():
    limit = pixgmm.cache_info()["limit"]
    pixgmm.clear_cache()
    yield
    pixgmm.set_cache_limit(limit)
    pixgmm.clear_cache()


def _array(nbytes, fill=0):
    return np.full(nbytes // 8, fill, dtype=np.float64)


def test_least_recently_used_goes_first_and_a_get_refreshes():
    cache = TableCache(limit=3 * 800)
    for key in "abc":
        cache.put(key, _array(800))
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("d", _array(800))  # over the limit: b, the least recently used, goes
    assert cache.get("b") is None
    for key in "dca":  # used in this order: d is now the least recent, a the most
        assert cache.get(key) is not None
    cache.put("e", _array(800))
    assert cache.get("d") is None
    for key in "cae":  # c is now the least recent
        assert cache.get(key) is not None
    cache.put("f", _array(800))
    assert cache.get("c") is None
    assert [k for k in "abcdef" if cache.get(k) is not None] == ["a", "e", "f"]
    assert cache.info() == {"entries": 3, "nbytes": 2400, "limit": 2400}


def test_a_table_larger_than_the_limit_is_returned_but_not_kept():
    cache = TableCache(limit=1000)
    small = cache.put("small", _array(400))
    big = _array(1600, fill=7)
    assert cache.put("big", big) is big
    assert cache.get("big") is None
    assert cache.get("small") is small  # nothing was evicted to make room for it
    assert cache.info()["nbytes"] == 400


def test_replacing_an_entry_counts_its_bytes_once():
    cache = TableCache(limit=1000)
    cache.put("k", _array(400))
    cache.put("k", _array(480))
    assert cache.info() == {"entries": 1, "nbytes": 480, "limit": 1000}
    cache.set_limit(200)  # shrinking evicts what no longer fits
    assert cache.info() == {"entries": 0, "nbytes": 0, "limit": 200}


def _model(rng):
    means = rng.uniform(40, 220, (2, 2))
    return pixgmm.Mixture([0.5, 0.5], means, rng.uniform(200, 900, (2, 2)), "diag")


def test_auto_takes_a_cached_colour_table_for_a_small_image(fresh_cache, rng):
    """A 100-pixel uint8 image uses the colour table once that exact table is cached."""
    model = _model(rng)
    small = rng.integers(0, 256, (10, 10, 2), dtype=np.uint8)
    explain = pixgmm.explain
    assert explain(pixgmm.density, small, model) != "table"  # too small to build one
    expected = pixgmm.density(small, model, method="direct")
    assert pixgmm.cache_info()["entries"] == 0

    pixgmm.density(small, model, method="table")  # builds and keeps the table
    assert pixgmm.cache_info()["entries"] == 1
    assert explain(pixgmm.density, small, model) == "table"
    np.testing.assert_allclose(pixgmm.density(small, model), expected, rtol=1e-12)
    assert pixgmm.cache_info()["entries"] == 1  # used, not built again
    # another quantity, output dtype or normalisation is another table: not cached
    assert explain(pixgmm.log_density, small, model) != "table"
    assert explain(pixgmm.density, small, model, dtype=np.float32) != "table"
    assert explain(pixgmm.density, small, model, normalized=False) != "table"
    # nor is an equal-looking model with other parameters
    assert explain(pixgmm.density, small, _model(rng)) != "table"


def test_lru_order_through_the_public_functions(fresh_cache, rng):
    """Room for two tables: using A before building C keeps A and evicts B."""
    pixgmm.set_cache_limit(2 * TABLE_BYTES + 1024)
    a, b, c = (_model(rng) for _ in range(3))
    small = rng.integers(0, 256, (10, 10, 2), dtype=np.uint8)

    def cached(model):
        return pixgmm.explain(pixgmm.density, small, model) == "table"

    pixgmm.density(small, a, method="table")
    pixgmm.density(small, b, method="table")
    pixgmm.density(small, a)  # auto takes A's cached table: A is now the most recent
    pixgmm.density(small, c, method="table")  # no room for three: B goes
    assert pixgmm.cache_info()["entries"] == 2
    assert cached(a) and cached(c) and not cached(b)
    np.testing.assert_allclose(
        pixgmm.density(small, b), pixgmm.density(small, b, method="direct"), rtol=1e-12
    )

    pixgmm.set_cache_limit(TABLE_BYTES // 2)  # smaller than one table: nothing is kept
    assert pixgmm.cache_info()["entries"] == 0
    got = pixgmm.density(small, a, method="table")
    np.testing.assert_allclose(got, pixgmm.density(small, a, method="direct"), rtol=1e-12)
    assert pixgmm.cache_info()["entries"] == 0 and not cached(a)
