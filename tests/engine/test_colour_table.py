"""The 8-bit colour table against direct evaluation on every one of the 256**3 colours.

Uses the Jones & Rehg (1999) skin and non-skin mixtures (16 diagonal components each)
that ship with the package (``pixgmm.models``), so these tests run everywhere. The
colours are evaluated in slices of 2**22 so memory stays bounded; the tables themselves
(at most 384 MiB at once) are dropped at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
import reference as ref

N_COLOURS = 256**3
SLICE = 2**22
F64_TINY = np.finfo(np.float64).tiny
F32_TINY = float(np.finfo(np.float32).tiny)


def colour_slices():
    """``(start, pixels)`` for all 256**3 RGB colours in table order (R major, B minor)."""
    for start in range(0, N_COLOURS, SLICE):
        codes = np.arange(start, start + SLICE, dtype=np.uint32)
        pixels = np.empty((SLICE, 3), dtype=np.uint8)
        pixels[:, 0] = codes >> 16
        pixels[:, 1] = (codes >> 8) & 255
        pixels[:, 2] = codes & 255
        yield start, pixels


@pytest.fixture
def fresh_cache():
    """Start without cached tables and drop the big ones afterwards."""
    pixgmm.clear_cache()
    yield
    pixgmm.clear_cache()


def test_colour_slices_cover_every_colour_once():
    starts = []
    for start, pixels in colour_slices():
        starts.append(start)
        p = pixels.astype(np.int64)
        codes = (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]
        np.testing.assert_array_equal(codes, np.arange(start, start + SLICE))
    assert starts == list(range(0, N_COLOURS, SLICE))


def _check_log(got, expected, dtype, what):
    assert got.dtype == dtype, what
    if dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=what)
    else:
        np.testing.assert_allclose(got.astype(np.float64), expected, rtol=1e-5, err_msg=what)


def _check_density(got, expected_log, dtype, what):
    assert got.dtype == dtype, what
    expected = np.exp(expected_log)
    # relative where the value is a normal number of the output type; subnormals are absolute
    rtol, atol = (1e-9, F64_TINY) if dtype == np.float64 else (1e-5, F32_TINY)
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=rtol, atol=atol, err_msg=what)


@pytest.mark.slow
@pytest.mark.parametrize("which", ["skin", "nonskin"])
def test_density_and_log_density_tables_on_every_colour(jones_rehg, which, fresh_cache):
    model = jones_rehg[0] if which == "skin" else jones_rehg[1]
    checked = 0
    for start, pixels in colour_slices():
        expected = pixgmm.log_density(pixels, model, method="direct")
        assert expected.dtype == np.float64 and np.isfinite(expected).all()
        where = f"{which}, colours {start}..{start + SLICE - 1}"
        for dtype in (np.float64, np.float32):
            got = pixgmm.log_density(pixels, model, method="table", dtype=dtype)
            _check_log(got, expected, dtype, f"log_density table {dtype.__name__}, {where}")
            got = pixgmm.density(pixels, model, method="table", dtype=dtype)
            _check_density(got, expected, dtype, f"density table {dtype.__name__}, {where}")
        checked += pixels.shape[0]
    assert checked == N_COLOURS


@pytest.mark.slow
def test_log_ratio_table_on_every_colour(jones_rehg, fresh_cache):
    skin, nonskin = jones_rehg
    for start, pixels in colour_slices():
        expected = pixgmm.log_ratio(pixels, skin, nonskin, method="direct")
        assert np.isfinite(expected).all()
        where = f"colours {start}..{start + SLICE - 1}"
        for dtype in (np.float64, np.float32):
            got = pixgmm.log_ratio(pixels, skin, nonskin, method="table", dtype=dtype)
            _check_log(got, expected, dtype, f"log_ratio table {dtype.__name__}, {where}")


def test_direct_engine_on_a_sample_of_colours_against_the_reference(jones_rehg, rng):
    """The direct evaluation above is itself checked against the slow reference."""
    skin, nonskin = jones_rehg
    pixels = rng.integers(0, 256, size=(3000, 3), dtype=np.uint8)
    pixels[:8] = np.array(np.meshgrid(*[[0, 255]] * 3, indexing="ij")).reshape(3, -1).T
    np.testing.assert_allclose(
        pixgmm.log_density(pixels, skin, method="direct"), ref.log_density(pixels, skin), atol=1e-9
    )
    np.testing.assert_allclose(
        pixgmm.log_ratio(pixels, skin, nonskin, method="direct"),
        ref.log_ratio(pixels, skin, nonskin),
        atol=1e-9,
    )


def test_auto_uses_the_table_for_a_large_uint8_image(jones_rehg, fresh_cache):
    """A 1-megapixel photo goes through the colour table and matches the direct engine."""
    skin, _ = jones_rehg
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)
    assert pixgmm.cache_info()["entries"] == 0
    auto = pixgmm.log_density(img, skin)
    assert pixgmm.cache_info()["entries"] == 1  # the table was built and kept
    np.testing.assert_allclose(auto, pixgmm.log_density(img, skin, method="direct"), atol=1e-9)
