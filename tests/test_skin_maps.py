"""SkinDetector.maps: several maps in one pass, equal to the separate calls, on NumPy and Dask."""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
from pixgmm import quantize

RNG = np.random.default_rng(4)
RGB = RNG.integers(0, 256, (37, 53, 3), dtype=np.uint8)
RGB[:5, :5] = (200, 140, 110)  # skin


@pytest.mark.parametrize("pdtype", ["float32", "uint16", "uint8"])
@pytest.mark.parametrize("channels", [None, "BGR"])
def test_every_map_equals_its_separate_call(pdtype, channels):
    det = pixgmm.SkinDetector(prior=0.3)
    got = det.maps(RGB, ("mask", "logratio", "probability"), probability_dtype=pdtype,
                   probability=0.6, channels=channels)  # fmt: skip
    assert list(got) == ["logratio", "probability", "mask"]
    lr = det.log_ratio(RGB, channels=channels)
    np.testing.assert_array_equal(got["logratio"], lr.astype(np.float32))
    p = det.probability(RGB, channels=channels)
    np.testing.assert_array_equal(got["probability"], quantize.encode(p, pdtype))
    np.testing.assert_array_equal(got["mask"], det.mask(RGB, probability=0.6, channels=channels))
    assert got["probability"].dtype == np.dtype(pdtype) and got["mask"].dtype == bool
    assert got["mask"].any() and not got["mask"].all()


def test_float_images_with_nan_pixels_take_the_log_ratio_path():
    det = pixgmm.SkinDetector()
    img = RGB.astype(np.float32)
    img[3, 4, 1] = np.nan
    got = det.maps(img, ("probability", "mask"), probability_dtype="uint8", ratio=2.0)
    assert got["probability"][3, 4] == 255 and not got["mask"][3, 4]
    np.testing.assert_array_equal(
        got["probability"], quantize.encode(det.probability(img), "uint8"))  # fmt: skip
    np.testing.assert_array_equal(got["mask"], det.mask(img, ratio=2.0))


def test_dask_maps_equal_numpy_and_read_each_block_once():
    da = pytest.importorskip("dask.array")
    det = pixgmm.SkinDetector()
    image = da.from_array(RGB, chunks=(10, 17, 2))  # a split channel axis too
    lazy = det.maps(image, ("probability", "mask", "logratio"), probability_dtype="uint16")
    eager = det.maps(RGB, ("probability", "mask", "logratio"), probability_dtype="uint16")
    for name in eager:
        assert lazy[name].chunks == ((10, 10, 10, 7), (17, 17, 17, 2))
        np.testing.assert_array_equal(lazy[name].compute(), eager[name])
    import dask

    graph = {}
    for arr in lazy.values():
        graph.update(dict(arr.__dask_graph__()))
    per_block = [k for k in graph if isinstance(k, tuple) and k[0].startswith("pixgmm-skin-maps")]
    assert len(per_block) == 16  # one task computes every map of a block
    computed = dask.compute(*lazy.values())
    np.testing.assert_array_equal(computed[0], eager["logratio"])


def test_bad_arguments_are_clear_errors():
    det = pixgmm.SkinDetector()
    with pytest.raises(ValueError, match=r"choose one or more of logratio, probability, mask"):
        det.maps(RGB, ("density",))
    with pytest.raises(ValueError, match=r"probability_dtype='int8' is not one of"):
        det.maps(RGB, probability_dtype="int8")
    with pytest.raises(ValueError, match="pass one threshold"):
        det.maps(RGB, ratio=2.0, probability=0.5)
    xr = pytest.importorskip("xarray")
    with pytest.raises(TypeError, match="NumPy and Dask"):
        det.maps(xr.DataArray(RGB, dims=("y", "x", "band")))


def test_quantised_probabilities_decode_within_half_a_step():
    p = np.linspace(0, 1, 10001)
    for dtype, step in (("uint8", 1 / 254), ("uint16", 1 / 65534)):
        back = quantize.decode(quantize.encode(p, dtype))
        assert np.abs(back - p).max() <= step / 2 + 1e-12
        attrs = quantize.cf_attributes(dtype)
        packed = quantize.encode(np.array([np.nan, 0.25]), dtype)
        assert packed[0] == attrs["_FillValue"]
        assert packed[1] * attrs["scale_factor"] + attrs["add_offset"] == pytest.approx(
            0.25, abs=step
        )
    assert quantize.cf_attributes("float32") == {}


@pytest.mark.parametrize("pdtype", ["float32", "uint8"])
def test_large_images_take_the_tables_of_final_values_with_the_same_results(pdtype):
    """From 2**20 pixels the maps come from colour tables of their final values."""
    from pixgmm._engine.cache import TABLES

    det = pixgmm.SkinDetector(prior=0.4)
    big = np.random.default_rng(9).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    got = det.maps(big, ("probability", "mask", "logratio"), probability_dtype=pdtype, ratio=3.0)
    built = [key[0] for key in TABLES._items if str(key[0]).startswith("skin-")]
    assert set(built) >= {"skin-logratio", "skin-probability+mask"}  # one lookup for the two
    np.testing.assert_array_equal(got["logratio"], det.log_ratio(big).astype(np.float32))
    np.testing.assert_array_equal(got["probability"],
                                  quantize.encode(det.probability(big), pdtype))  # fmt: skip
    np.testing.assert_array_equal(got["mask"], det.mask(big, ratio=3.0))
    alone = det.maps(big, ("probability",), probability_dtype=pdtype)  # its own table
    np.testing.assert_array_equal(alone["probability"], got["probability"])
    mask = det.maps(big, ("mask",), ratio=3.0)["mask"]
    np.testing.assert_array_equal(mask, got["mask"])
    small = det.maps(big[:10, :10], ("probability",), probability_dtype=pdtype)  # cached: tables
    np.testing.assert_array_equal(small["probability"], got["probability"][:10, :10])


def test_a_combined_table_keeps_nan_probabilities_apart_from_the_mask():
    """A colour whose both densities are 0 has a NaN log ratio: probability NaN, mask False."""
    bins = 8
    skin = pixgmm.HistogramModel.fit(np.full((50, 3), 200, np.uint8), bins=bins, smoothing=0)
    other = pixgmm.HistogramModel.fit(np.full((50, 3), 20, np.uint8), bins=bins, smoothing=0)
    det = pixgmm.SkinDetector(skin, other)
    big = np.full((1024, 1024, 3), 120, np.uint8)  # in neither histogram: 0 / 0
    big[:5] = 200
    for pdtype in ("float32", "uint8", "uint16"):
        got = det.maps(big, ("probability", "mask"), probability_dtype=pdtype)
        want_p = quantize.encode(det.probability(big), pdtype)
        np.testing.assert_array_equal(got["probability"], want_p)
        np.testing.assert_array_equal(got["mask"], det.mask(big))
        assert not got["mask"][10:].any() and got["mask"][:5].all()
