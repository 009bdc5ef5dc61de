"""The engine ``method="auto"`` picks, row by row of the README's engine table.

Asked through the public :func:`pixgmm.explain` (which computes nothing, so the image sizes
at each threshold cost no memory: the images are zero-stride views), and, where a call is
cheap, confirmed by the DEBUG line the call itself logs on the ``pixgmm`` logger, so the
engine that actually ran is checked, not only the one explain() predicts.

The rule (``src/pixgmm/evaluate.py``, README "Engine rule"):

1. ``table``: uint8, at most 3 channels, density / log-density / log-ratio, when the colour
   table is already cached, or the image has at least 2**20 pixels (diagonal or spherical
   3-channel models, 3-channel HistogramModels) or 256**C pixels (any other model).
2. ``separable``: 8-bit integer images (signed or not) with at least 256 pixels and diagonal
   or spherical mixtures; 16-bit images go to ``direct`` unless ``method="separable"``.
3. ``direct``: everything else, and always for responsibilities and predict.
"""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
import reference as ref

explain = pixgmm.explain
DENSITY_FUNCTIONS = [pixgmm.density, pixgmm.log_density]
MEGAPIXEL = 2**20


def image(n_pixels, channels, dtype=np.uint8):
    """An (n_pixels, channels) image that occupies no memory (read-only, zero strides)."""
    return np.broadcast_to(np.zeros((), dtype), (n_pixels, channels))


def mixture(covariance_type, d, k=3, seed=0, hi=255.0):
    return ref.random_mixture(np.random.default_rng(seed), covariance_type, d, k, 0.0, hi)


def histogram(d, seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(500, d), dtype=np.uint8)
    return pixgmm.HistogramModel.fit(pixels, bins=8)


def ran(ran_engine, function, *args, **kwargs):
    """The engine a real call ran (from its DEBUG log line)."""
    return ran_engine(function, *args, **kwargs)[0]


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts without cached tables: a cached table changes what auto picks."""
    pixgmm.clear_cache()
    yield
    pixgmm.clear_cache()


# -- row 1: the colour table and its two size thresholds ---------------------------------------


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
@pytest.mark.parametrize("function", DENSITY_FUNCTIONS)
def test_diagonal_rgb_table_from_one_megapixel(function, covariance_type):
    model = mixture(covariance_type, 3)
    assert explain(function, image(MEGAPIXEL, 3), model) == "table"
    assert explain(function, image(MEGAPIXEL + 1, 3), model) == "table"
    # one pixel fewer: the per-channel tables, not the 16.7-million-colour one
    assert explain(function, image(MEGAPIXEL - 1, 3), model) == "separable"


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_full_covariance_rgb_table_from_256_cubed_pixels(covariance_type):
    model = mixture(covariance_type, 3)
    for function in DENSITY_FUNCTIONS:
        assert explain(function, image(256**3, 3), model) == "table"
        # a megapixel is not enough: this table costs a direct evaluation per colour
        assert explain(function, image(256**3 - 1, 3), model) == "direct"
        assert explain(function, image(MEGAPIXEL, 3), model) == "direct"


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 2])
def test_one_and_two_channel_table_from_256_to_the_c_pixels(d, covariance_type):
    model = mixture(covariance_type, d)
    below = "separable" if (covariance_type in ("diag", "spherical") and d == 2) else "direct"
    for function in DENSITY_FUNCTIONS:
        assert explain(function, image(256**d, d), model) == "table"
        assert explain(function, image(256**d - 1, d), model) == below
    assert explain(pixgmm.log_ratio, image(256**d, d), model, model) == "table"
    assert explain(pixgmm.log_ratio, image(256**d - 1, d), model, model) == below


def test_grayscale_without_channel_axis_table_from_256_pixels():
    model = mixture("spherical", 1)
    gray = np.zeros((16, 16), np.uint8)
    assert explain(pixgmm.log_density, gray, model, channel_axis=None) == "table"
    assert explain(pixgmm.log_density, gray[:, :15], model, channel_axis=None) == "direct"


def test_log_ratio_threshold_follows_the_costlier_model():
    diag, full = mixture("diag", 3), mixture("full", 3, seed=1)
    assert explain(pixgmm.log_ratio, image(MEGAPIXEL, 3), diag, diag) == "table"
    # one full-covariance model makes the table cost a direct evaluation per colour
    assert explain(pixgmm.log_ratio, image(MEGAPIXEL, 3), diag, full) == "direct"
    assert explain(pixgmm.log_ratio, image(256**3, 3), diag, full) == "table"
    assert explain(pixgmm.log_ratio, image(256**3 - 1, 3), full, diag) == "direct"


def test_four_channels_never_use_the_table():
    diag, full = mixture("diag", 4), mixture("full", 4)
    big = image(256**3, 4)
    assert explain(pixgmm.log_density, big, diag) == "separable"
    assert explain(pixgmm.log_density, big, full) == "direct"
    with pytest.raises(ValueError, match=r"method='table'.*at most 3 channels"):
        explain(pixgmm.log_density, big, diag, method="table")


@pytest.mark.parametrize("dtype", [np.int8, np.uint16, np.int16, np.float32, np.float64])
def test_only_uint8_images_use_the_table(dtype):
    model = mixture("diag", 3)
    big = image(MEGAPIXEL, 3, dtype)
    expected = "separable" if np.dtype(dtype).itemsize == 1 else "direct"
    assert explain(pixgmm.density, big, model) == expected
    with pytest.raises(ValueError, match=r"method='table'.*uint8"):
        explain(pixgmm.density, big, model, method="table")


# -- row 1: a cached table is used whatever the image size -------------------------------------


def test_cached_table_is_used_for_a_small_image(ran_engine):
    model = mixture("diag", 3)
    small = np.random.default_rng(1).integers(0, 256, size=(10, 10, 3), dtype=np.uint8)
    assert explain(pixgmm.log_density, small, model) == "direct"  # 100 pixels, nothing cached
    assert ran(ran_engine, pixgmm.log_density, small, model) == "direct"
    assert pixgmm.cache_info()["entries"] == 0
    expected = pixgmm.log_density(small, model, method="table")  # builds and caches the table
    assert pixgmm.cache_info()["entries"] == 1
    assert explain(pixgmm.log_density, small, model) == "table"
    assert ran(ran_engine, pixgmm.log_density, small, model) == "table"
    np.testing.assert_array_equal(pixgmm.log_density(small, model), expected)
    assert pixgmm.cache_info()["entries"] == 1  # looked up, not built again
    # the cached table is for this quantity, output dtype and model only
    assert explain(pixgmm.log_density, small, model, dtype=np.float32) == "direct"
    assert explain(pixgmm.density, small, model) == "direct"
    assert explain(pixgmm.log_density, small, mixture("diag", 3, seed=9)) == "direct"
    assert explain(pixgmm.log_density, small, model, normalized=False) == "direct"
    # and it never applies where the table engine does not
    assert explain(pixgmm.responsibilities, small, model) == "direct"
    assert explain(pixgmm.log_density, small.astype(np.uint16), model) == "direct"


def test_cached_table_is_used_after_a_large_image(ran_engine):
    model = mixture("full", 2)
    big = np.random.default_rng(2).integers(0, 256, size=(256, 256, 2), dtype=np.uint8)
    assert ran(ran_engine, pixgmm.log_density, big, model) == "table"
    assert ran(ran_engine, pixgmm.log_density, big[:4, :4], model) == "table"
    pixgmm.clear_cache()
    assert ran(ran_engine, pixgmm.log_density, big[:4, :4], model) == "direct"


def test_cached_log_ratio_table(ran_engine):
    a, b = mixture("diag", 3), mixture("diag", 3, seed=4)
    small = np.full((5, 3), 100, np.uint8)
    pixgmm.log_ratio(small, a, b, method="table")
    assert ran(ran_engine, pixgmm.log_ratio, small, a, b) == "table"
    assert explain(pixgmm.log_ratio, small, b, a) == "direct"  # the other ratio is not cached


# -- row 2: separable, 8-bit integer images --------------------------------------------------


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_separable_from_256_pixels_for_8_bit_images(dtype, covariance_type):
    model = mixture(covariance_type, 3)
    for function in (*DENSITY_FUNCTIONS, pixgmm.log_ratio):
        models = (model, model) if function is pixgmm.log_ratio else (model,)
        assert explain(function, image(256, 3, dtype), *models) == "separable"
        assert explain(function, image(255, 3, dtype), *models) == "direct"


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_separable_needs_diagonal_covariances(covariance_type):
    model = mixture(covariance_type, 3)
    assert explain(pixgmm.log_density, image(1000, 3, np.int8), model) == "direct"
    assert explain(pixgmm.log_density, image(1000, 3), model) == "direct"
    with pytest.raises(ValueError, match=r"method='separable'.*diagonal"):
        explain(pixgmm.log_density, image(1000, 3), model, method="separable")


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_16_bit_images_go_to_direct_unless_separable_is_forced(dtype, ran_engine):
    model = mixture("diag", 4, hi=60000.0)
    big = image(256**3, 4, dtype)
    assert explain(pixgmm.log_density, big, model) == "direct"
    assert explain(pixgmm.log_density, big, model, method="separable") == "separable"
    small = np.random.default_rng(3).integers(0, 30000, size=(300, 4)).astype(dtype)
    assert ran(ran_engine, pixgmm.log_density, small, model) == "direct"
    assert ran(ran_engine, pixgmm.log_density, small, model, method="separable") == ("separable")


@pytest.mark.parametrize("dtype", [np.int32, np.uint32, np.int64])
def test_wider_integer_images_only_direct(dtype):
    model = mixture("diag", 3)
    assert explain(pixgmm.log_density, image(MEGAPIXEL, 3, dtype), model) == "direct"
    for method in ("table", "separable"):
        with pytest.raises(ValueError, match=f"method='{method}'"):
            explain(pixgmm.log_density, image(10, 3, dtype), model, method=method)


# -- row 3: direct -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
def test_floating_images_use_direct(dtype, covariance_type):
    model = mixture(covariance_type, 3)
    for function in DENSITY_FUNCTIONS:
        assert explain(function, image(256**3, 3, dtype), model) == "direct"
    assert explain(pixgmm.log_ratio, image(256**3, 3, dtype), model, model) == "direct"


@pytest.mark.parametrize("function", [pixgmm.responsibilities, pixgmm.predict])
def test_responsibilities_and_predict_always_direct(function, ran_engine):
    model = mixture("diag", 3)
    assert explain(function, image(256**3, 3), model) == "direct"
    assert explain(function, image(300, 3, np.int8), model) == "direct"
    small = np.zeros((300, 3), np.uint8)
    pixgmm.log_density(small, model, method="table")  # a cached table does not change that
    assert ran(ran_engine, function, small, model) == "direct"
    for method in ("table", "separable"):
        with pytest.raises(ValueError, match=f"'auto' or 'direct', not '{method}'"):
            explain(function, small, model, method=method)


# -- HistogramModel ------------------------------------------------------------------------


def test_histogram_model_rgb_table_from_one_megapixel():
    hist = histogram(3)
    assert explain(pixgmm.log_density, image(MEGAPIXEL, 3), hist) == "table"
    # separable does not take a HistogramModel: below the threshold it is direct
    assert explain(pixgmm.log_density, image(MEGAPIXEL - 1, 3), hist) == "direct"
    assert explain(pixgmm.log_density, image(MEGAPIXEL, 3, np.float32), hist) == "direct"
    with pytest.raises(ValueError, match=r"method='separable'.*HistogramModel"):
        explain(pixgmm.log_density, image(MEGAPIXEL, 3), hist, method="separable")
    assert explain(pixgmm.log_density, image(10, 3), hist, method="table") == "table"


@pytest.mark.parametrize("d", [1, 2])
def test_histogram_model_one_and_two_channels_from_256_to_the_c(d):
    hist = histogram(d)
    assert explain(pixgmm.density, image(256**d, d), hist) == "table"
    assert explain(pixgmm.density, image(256**d - 1, d), hist) == "direct"


def test_histogram_against_mixture_ratio():
    hist, diag, full = histogram(3), mixture("diag", 3), mixture("full", 3)
    assert explain(pixgmm.log_ratio, image(MEGAPIXEL, 3), hist, diag) == "table"
    assert explain(pixgmm.log_ratio, image(MEGAPIXEL - 1, 3), hist, diag) == "direct"
    assert explain(pixgmm.log_ratio, image(MEGAPIXEL, 3), hist, full) == "direct"
    assert explain(pixgmm.log_ratio, image(256**3, 3), full, hist) == "table"


# -- forced methods --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["direct", "separable", "table"])
def test_a_forced_engine_that_applies_is_used_at_any_size(method, ran_engine):
    model = mixture("diag", 3)
    tiny = np.full((2, 3), 7, np.uint8)
    assert explain(pixgmm.log_density, tiny, model, method=method) == method
    assert explain(pixgmm.log_density, image(256**3, 3), model, method=method) == method
    assert ran(ran_engine, pixgmm.log_density, tiny, model, method=method) == method


def test_unknown_method_is_a_value_error():
    with pytest.raises(ValueError, match="method"):
        explain(pixgmm.log_density, image(10, 3), mixture("diag", 3), method="lookup")


# -- Dask: the choice is made for the whole image ----------------------------------------------


def test_dask_image_chooses_by_the_whole_image():
    da = pytest.importorskip("dask.array")
    model = mixture("diag", 3)
    whole = da.zeros((1024, 1024, 3), dtype=np.uint8, chunks=(256, 256, 3))  # 65536-pixel blocks
    assert explain(pixgmm.log_density, whole, model) == "table"
    block = np.zeros((256, 256, 3), np.uint8)
    assert explain(pixgmm.log_density, block, model) == "separable"  # one block alone
    one_short = da.zeros((1023, 1025, 3), dtype=np.uint8, chunks=(512, 512, 3))
    assert one_short.shape[0] * one_short.shape[1] == MEGAPIXEL - 1
    assert explain(pixgmm.log_density, one_short, model) == "separable"
    tiny_blocks = da.zeros((20, 20, 3), dtype=np.uint8, chunks=(5, 5, 3))  # 25-pixel blocks
    assert explain(pixgmm.log_density, tiny_blocks, model) == "separable"
    assert explain(pixgmm.responsibilities, whole, model) == "direct"
    assert explain(pixgmm.log_density, whole.astype(np.float32), model) == "direct"


def test_dask_blocks_run_the_engine_chosen_for_the_whole_image():
    da = pytest.importorskip("dask.array")
    model = mixture("full", 1)
    rng = np.random.default_rng(6)
    pixels = rng.integers(0, 256, size=(32, 32), dtype=np.uint8)  # 1024 >= 256**1 pixels
    lazy = da.from_array(pixels, chunks=(4, 4))  # 16-pixel blocks
    assert explain(pixgmm.log_density, lazy, model, channel_axis=None) == "table"
    got = pixgmm.log_density(lazy, model, channel_axis=None).compute(scheduler="synchronous")
    np.testing.assert_allclose(
        got, ref.log_density(pixels.reshape(-1, 1), model).reshape(32, 32), rtol=0, atol=1e-9
    )
    # the blocks built one 256-colour float64 table (direct would have cached nothing)
    assert pixgmm.cache_info()["entries"] == 1
    assert pixgmm.cache_info()["nbytes"] == 256 * 8
