"""Every NumPy dtype an image may arrive in, through the public evaluation functions.

Issue 9 item 9: big-endian float16, long double and masked arrays passed validation
and then crashed inside numba. Each dtype must either work (converted; masked pixels
give NaN, ``predict`` -1) or be a ``TypeError`` naming ``image`` — for a dask image at
call time, before any task runs.
"""

from __future__ import annotations

import numpy as np
import pytest

import pixgmm
from pixgmm import Mixture

FUNCS = ("density", "log_density", "log_ratio", "responsibilities", "predict")

MODEL = Mixture(
    [0.5, 0.3, 0.2],
    [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0], [120.0, 120.0, 200.0]],
    [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0], [200.0, 200.0, 60.0]],
    "diag",
)
OTHER = Mixture([1.0, 1.0], [[100, 100, 100], [20, 200, 20]], [900.0, 500.0], "spherical")


def call(name, image, **kwargs):
    if name == "log_ratio":
        return pixgmm.log_ratio(image, MODEL, OTHER, **kwargs)
    return getattr(pixgmm, name)(image, MODEL, **kwargs)


def pixels(dtype=np.float64):
    """A 4 x 5 RGB image whose values every dtype below represents exactly."""
    values = np.random.default_rng(9).integers(0, 120, size=(4, 5, 3)).astype(np.float64) * 2
    return values.astype(dtype)


def assert_same(got, want):
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


# -- dtypes that are converted ----------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [">f2", "<f2", ">f4", ">f8", ">u2", ">i4", ">u8"])
def test_every_byte_order_gives_the_native_result(name, dtype):
    image = pixels(dtype)
    native = image.astype(np.dtype(dtype).newbyteorder("="))
    assert_same(call(name, image), call(name, native))


@pytest.mark.parametrize("name", FUNCS)
def test_big_endian_float16_equals_float32_of_its_values(name):
    """The README promises float16 in either byte order (was a numba NotImplementedError)."""
    image = pixels(">f2")
    got = call(name, image)
    assert_same(got, call(name, image.astype(np.float32)))
    if name != "predict":
        assert got.dtype == np.float32


@pytest.mark.parametrize("name", FUNCS)
def test_long_double_is_evaluated_in_float64(name):
    image = pixels(np.longdouble)
    got = call(name, image)
    assert_same(got, call(name, image.astype(np.float64)))
    if name != "predict":
        assert got.dtype == np.float64


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float16, np.float32, np.float64])
def test_masked_pixels_give_nan_and_label_minus_one(name, dtype):
    data = pixels(dtype)
    mask = np.zeros(data.shape, bool)
    mask[0, 0, 1] = True  # one channel masked masks the pixel
    mask[2, 3, :] = True
    image = np.ma.masked_array(data, mask=mask)
    got = call(name, image)
    expected_dtype = np.float32 if dtype in (np.float16, np.float32) else np.float64
    with_nan = data.astype(expected_dtype)
    with_nan[mask] = np.nan
    assert_same(got, call(name, with_nan))
    bad = mask.any(axis=-1)
    if name == "predict":
        assert (got[bad] == -1).all() and (got[~bad] >= 0).all()
    else:
        assert got.dtype == expected_dtype
        assert np.isnan(got[bad]).all() and not np.isnan(got[~bad]).any()
    # the values under the mask are never read
    scrambled = np.ma.masked_array(np.where(mask, data.max(), data).astype(dtype), mask=mask)
    assert_same(call(name, scrambled), got)


@pytest.mark.parametrize("name", FUNCS)
def test_masked_array_without_masked_values_equals_its_data(name):
    data = pixels(np.uint8)
    assert_same(call(name, np.ma.masked_array(data)), call(name, data))
    assert_same(call(name, np.ma.masked_array(data, mask=False)), call(name, data))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_matrix_subclass_is_viewed_as_a_plain_array():
    one = Mixture([1.0], [[0.0, 0.0]], [[1.0, 2.0]], "diag")
    image = np.matrix([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(
        pixgmm.log_density(image, one), pixgmm.log_density(np.asarray(image), one)
    )


# -- dtypes that are refused ------------------------------------------------------------------

REFUSED = {
    "bool": (lambda: pixels() > 100, "boolean dtype"),
    "complex": (lambda: pixels(np.complex128), "complex dtype"),
    "object": (lambda: pixels().astype(object), r"dtype object; if it holds numbers"),
    "datetime": (lambda: pixels().astype("datetime64[s]"), "dtype datetime64"),
    "timedelta": (lambda: pixels().astype("timedelta64[s]"), "dtype timedelta64"),
    "structured": (
        lambda: np.zeros((4, 5, 3), dtype=[("v", "f4")]),
        "structured_to_unstructured",
    ),
    "bytes": (lambda: pixels().astype("S4"), "strings are not pixel values"),
    "str": (lambda: pixels().astype("U4"), "strings are not pixel values"),
    "masked bool": (lambda: np.ma.masked_array(pixels() > 1, mask=False), "boolean dtype"),
}


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_non_numeric_dtypes_are_a_type_error_naming_image(name, case):
    make, match = REFUSED[case]
    with pytest.raises(TypeError, match=match) as info:
        call(name, make())
    assert str(info.value).startswith("image ")


# -- dask images: the same rule, at call time ---------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("case", ["object", "complex", "bool", "datetime", "structured"])
def test_dask_image_of_a_refused_dtype_fails_at_call_time(name, case):
    da = pytest.importorskip("dask.array")
    make, match = REFUSED[case]
    data = make()
    # from_array on a plain object array would keep references; build lazily from blocks
    image = da.from_array(data, chunks=(2, 5, 3))
    with pytest.raises(TypeError, match=match):
        call(name, image)  # no .compute(): the error comes before any task runs


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("dtype", [">f2", np.longdouble])
def test_dask_image_of_a_converted_dtype_equals_numpy(name, dtype):
    da = pytest.importorskip("dask.array")
    data = pixels(dtype)
    got = call(name, da.from_array(data, chunks=(3, 2, 3))).compute(scheduler="synchronous")
    assert_same(got, call(name, data))


@pytest.mark.parametrize("name", FUNCS)
def test_dask_masked_image_gives_nan(name):
    da = pytest.importorskip("dask.array")
    data = pixels(np.float64)
    mask = np.zeros(data.shape, bool)
    mask[1, 1, 0] = True
    image = da.ma.masked_array(da.from_array(data, chunks=(2, 5, 3)), mask=mask)
    got = call(name, image).compute(scheduler="synchronous")
    with_nan = data.copy()
    with_nan[mask] = np.nan
    assert_same(got, call(name, with_nan))


# -- infinite pixels: no posterior ------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_responsibilities_at_an_infinite_pixel_are_nan_like_a_nan_pixel(covariance_type):
    """Issue 9 item 7: an infinite pixel has density 0 under every component, so its posterior
    w_k N_k(x) / p(x) is 0/0: undefined. Its row is NaN, as a NaN pixel's is; every finite
    pixel's row sums to 1."""
    cov = {
        "full": [np.diag([300.0, 100.0, 150.0]) + 20.0, np.diag([400.0, 90.0, 150.0]) - 10.0],
        "diag": [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0]],
        "spherical": [300.0, 400.0],
        "tied": np.diag([300.0, 100.0, 150.0]) + 20.0,
    }[covariance_type]
    model = Mixture([0.4, 0.6], [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0]], cov, covariance_type)
    inf = np.inf
    image = np.array(
        [
            [inf, 150.0, 120.0],
            [-inf, 150.0, 120.0],
            [inf, -inf, inf],
            [np.nan, 150.0, 120.0],
            [200.0, 150.0, 120.0],
            [1e6, -1e6, 1e6],  # far, but finite: still a posterior
        ]
    )
    r = pixgmm.responsibilities(image, model)
    assert r.shape == (6, 2)
    assert np.isnan(r[:4]).all()
    np.testing.assert_allclose(r[4:].sum(axis=-1), 1.0, rtol=1e-12)
    r32 = pixgmm.responsibilities(image.astype(np.float32), model)
    assert np.isnan(r32[:4]).all()
    np.testing.assert_allclose(r32[4:].sum(axis=-1), 1.0, rtol=1e-6)
    # predict agrees: no most probable component where no posterior is defined
    labels = pixgmm.predict(image, model)
    np.testing.assert_array_equal(labels[:4], -1)
    assert (labels[4:] >= 0).all()


# -- a grayscale image given to a colour model ---------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
def test_grayscale_image_with_a_colour_model_says_it_looks_grayscale(name):
    gray = np.zeros((512, 512), np.uint8)
    with pytest.raises(ValueError) as info:
        call(name, gray)
    msg = str(info.value)
    assert msg.startswith(
        "image has shape (512, 512): it looks like a grayscale image, but the model needs "
        "3 channels; convert the image to colour first"
    )
    assert "512 channel" not in msg


def test_skin_detector_mask_of_a_grayscale_image():
    with pytest.raises(ValueError, match=r"image has shape \(64, 48\): it looks like a grayscale"):
        pixgmm.SkinDetector().mask(np.zeros((64, 48), np.uint8))


def test_grayscale_image_with_a_one_channel_model_suggests_channel_axis_none():
    one = Mixture([1.0], [[0.0]], [1.0], "spherical")
    with pytest.raises(ValueError, match=r"looks like a grayscale image without a channel axis; "
                       r"pass channel_axis=None"):  # fmt: skip
        pixgmm.log_density(np.zeros((10, 12)), one)
    np.testing.assert_array_equal(
        pixgmm.log_density(np.zeros((10, 12)), one, channel_axis=None).shape, (10, 12)
    )


@pytest.mark.parametrize(("shape", "match"), [
    ((10, 4), "the 4th channel is alpha"),
    ((10, 2), r"image has 2 channel\(s\) along channel_axis=-1"),
    ((3, 10), "pass channel_axis=0"),
])  # fmt: skip
def test_pixel_tables_keep_their_channel_messages(shape, match):
    with pytest.raises(ValueError, match=match):
        pixgmm.log_density(np.zeros(shape), MODEL)
