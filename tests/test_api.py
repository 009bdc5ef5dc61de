"""Input handling of the public evaluation API: density, log_density, log_ratio,
responsibilities and predict.

``tests/engine/test_engines.py`` checks the numbers of every engine against the references;
this file checks what the public layer does with what users pass: layouts, shapes,
channel names, dtypes, ``out``, model sources and bad input. Results here are compared
with the same call on a plain C-contiguous native array (or with a formula written out).
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
import pytest

import pixgmm
from pixgmm import Mixture

Kernel = namedtuple("Kernel", "mean covariance weight")

FUNCS = ("density", "log_density", "log_ratio", "responsibilities", "predict")
FLOAT_FUNCS = ("density", "log_density", "log_ratio", "responsibilities")


def rgb_model(covariance_type="diag", channels="RGB"):
    means = [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0], [120.0, 120.0, 200.0]]
    cov = {
        "diag": [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0], [200.0, 200.0, 60.0]],
        "spherical": [300.0, 400.0, 200.0],
        "full": [
            [[300.0, 80.0, 20.0], [80.0, 100.0, 10.0], [20.0, 10.0, 150.0]],
            [[400.0, -50.0, 0.0], [-50.0, 90.0, 30.0], [0.0, 30.0, 150.0]],
            np.diag([200.0, 200.0, 60.0]),
        ],
        "tied": [[300.0, 80.0, 20.0], [80.0, 100.0, 10.0], [20.0, 10.0, 150.0]],
    }[covariance_type]
    return Mixture([0.5, 0.3, 0.2], means, cov, covariance_type, channels=channels)


def other_model(channels="RGB"):
    return Mixture(
        [1.0, 1.0], [[100, 100, 100], [20, 200, 20]], [900.0, 500.0], "spherical", channels=channels
    )


def call(name, image, model=None, **kwargs):
    """Call one public function; log_ratio gets ``other_model()`` as its denominator."""
    model = rgb_model() if model is None else model
    b = kwargs.pop("model_b", None)
    if name == "log_ratio":
        if b is None:
            b = other_model(channels=getattr(model, "channels", None))
        return pixgmm.log_ratio(image, model, b, **kwargs)
    return getattr(pixgmm, name)(image, model, **kwargs)


def out_shape(name, spatial, k=3):
    return (*spatial, k) if name == "responsibilities" else tuple(spatial)


def assert_same(got, expected, name):
    assert got.shape == expected.shape, name
    assert got.dtype == expected.dtype, name
    if name == "predict":
        np.testing.assert_array_equal(got, expected, err_msg=name)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, err_msg=name)


@pytest.fixture
def img(rng):
    return rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)


# -- channel_axis and shapes -------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_channel_axis_anywhere(img, name, axis):
    expected = call(name, img)
    moved = np.moveaxis(img, -1, axis)
    got = call(name, moved, channel_axis=axis)
    assert_same(got, expected, name)


@pytest.mark.parametrize("name", FUNCS)
def test_channel_axis_none_for_grayscale(rng, name):
    gray = Mixture([0.4, 0.6], [[60.0], [180.0]], [400.0, 900.0], "spherical")
    image = rng.integers(0, 256, size=(5, 6), dtype=np.uint8)
    kw = (
        {"model_b": Mixture([1.0], [[128.0]], [2000.0], "spherical")} if name == "log_ratio" else {}
    )
    got = call(name, image, gray, channel_axis=None, **dict(kw))
    expected = call(name, image[..., None], gray, **dict(kw))
    assert_same(got, expected, name)
    assert got.shape == out_shape(name, (5, 6), 2)
    with pytest.raises(ValueError, match="channel_axis=None treats image as single-channel"):
        call(name, np.zeros((5, 6, 3)), rgb_model(), channel_axis=None)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("spatial", [(7, 9), (2, 4, 5), (11,), ()], ids=str)
def test_output_shape_is_the_image_shape_without_channels(rng, name, spatial):
    image = rng.uniform(0, 255, size=(*spatial, 3))
    got = call(name, image)
    assert got.shape == out_shape(name, spatial)
    flat = call(name, image.reshape(-1, 3))
    np.testing.assert_array_equal(np.asarray(got).reshape(flat.shape), flat)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 0, 3), (0, 3), (2, 0, 0, 3)], ids=str)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_empty_image_gives_an_empty_map(name, shape, dtype):
    image = np.zeros(shape, dtype=dtype)
    for method in ("auto", "direct"):
        got = call(name, image, method=method)
        assert got.shape == out_shape(name, shape[:-1]) and got.size == 0
    out = np.empty(out_shape(name, shape[:-1]), dtype=np.intp if name == "predict" else got.dtype)
    assert call(name, image, out=out) is out


def test_empty_image_with_a_forced_table_engine():
    image = np.zeros((0, 3), np.uint8)
    assert pixgmm.log_density(image, rgb_model(), method="table").shape == (0,)
    assert pixgmm.density(image, rgb_model(), method="separable").shape == (0,)


# -- layouts: views, byte order, read-only ------------------------------------------------------


def _layouts(base):
    """``base`` (H, W, 3) as views, copies and byte orders that all hold the same pixels."""
    h, w, _ = base.shape
    big = base.astype(base.dtype.newbyteorder(">"))
    ro = base.copy()
    ro.setflags(write=False)
    padded = np.zeros((2 * h, 3 * w, 5), dtype=base.dtype)
    padded[::2, ::3, 1:4] = base
    padded_big = padded.astype(big.dtype)
    flipped = np.ascontiguousarray(base[::-1, :, ::-1])
    return {
        "fortran": np.asfortranarray(base),
        "transposed view": base.transpose(1, 0, 2).copy().transpose(1, 0, 2),
        "strided view": padded[::2, ::3, 1:4],
        "negative strides": flipped[::-1, :, ::-1],
        "read-only": ro,
        "big-endian": big,
        "big-endian strided": padded_big[::2, ::3, 1:4],
        "broadcast": np.broadcast_to(base[:1, :1], base.shape),
    }


@pytest.mark.parametrize("dtype", ["u1", "<f8"])
@pytest.mark.parametrize("name", FUNCS)
def test_views_byte_orders_and_read_only_arrays(rng, dtype, name):
    base = rng.integers(0, 256, size=(6, 5, 3)).astype(dtype)
    for layout, image in _layouts(base).items():
        expected = call(name, np.ascontiguousarray(image).astype(base.dtype))
        got = call(name, image)
        assert_same(got, expected, f"{name} {layout} {dtype}")
        assert image.flags.writeable == (layout not in ("read-only", "broadcast"))
        if layout in ("fortran", "transposed view", "strided view", "negative strides"):
            assert not image.flags.c_contiguous, layout


def test_input_is_never_modified(rng):
    image = rng.uniform(0, 255, size=(6, 5, 3)).astype(">f4")
    image[1, 1, 1] = np.nan
    before = image.copy()
    for name in FUNCS:
        call(name, image)
    np.testing.assert_array_equal(image, before)
    assert image.dtype == np.dtype(">f4")


# -- channel names ------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied"])
@pytest.mark.parametrize("name", FUNCS)
def test_bgr_image_with_an_rgb_model_equals_the_flipped_image(img, name, covariance_type):
    model = rgb_model(covariance_type)
    bgr = np.ascontiguousarray(img[..., ::-1])
    got = call(name, bgr, model, channels="BGR")
    expected = call(name, img, model)
    assert_same(got, expected, name)
    # lower case and lists name the same order
    assert_same(call(name, bgr, model, channels=["b", "g", "r"]), expected, name)
    # and the right channels along another axis
    assert_same(
        call(name, np.moveaxis(bgr, -1, 0), model, channels="BGR", channel_axis=0), expected, name
    )


def test_log_ratio_reorders_each_named_model(img):
    a, b = rgb_model(), other_model()
    expected = pixgmm.log_ratio(img, a, b)
    b_bgr = b.with_channels("BGR")
    got = pixgmm.log_ratio(img, a, b_bgr, channels="RGB")
    np.testing.assert_allclose(got, expected, rtol=1e-13)
    # a model without names is taken to be in the image's order already
    b_plain = Mixture(b.weights, b.means, b.covariances, b.covariance_type)
    np.testing.assert_allclose(pixgmm.log_ratio(img, a, b_plain, channels="RGB"), expected)


def test_channels_with_an_unnamed_model_are_the_image_order(img):
    plain = rgb_model(channels=None)
    np.testing.assert_array_equal(
        pixgmm.log_density(img, plain, channels="BGR"), pixgmm.log_density(img, plain)
    )


@pytest.mark.parametrize("name", FUNCS)
def test_mismatched_channel_names(img, name):
    with pytest.raises(
        ValueError,
        match=r"channels='HSV' does not name the same channels as the "
        r"model \(channels='RGB'\).*channels='BGR'",
    ):
        call(name, img, channels="HSV")
    with pytest.raises(ValueError, match=r"channels='RG' names 2 channel\(s\) but the model has 3"):
        call(name, img, channels="RG")
    with pytest.raises(ValueError, match="names a channel twice"):
        call(name, img, channels="RRG")
    with pytest.raises(TypeError, match="channels must be a string such as 'RGB'"):
        call(name, img, channels=3)


def test_log_ratio_models_must_have_the_same_features(img):
    two = Mixture([1.0], [[0.0, 0.0]], [1.0], "spherical")
    with pytest.raises(ValueError, match="model_a has 3 features but model_b has 2"):
        pixgmm.log_ratio(img, rgb_model(), two)


@pytest.mark.parametrize("name", FUNCS)
def test_channel_count_mismatch(name):
    with pytest.raises(
        ValueError,
        match=r"has 4 channel\(s\).*model has 3 feature\(s\); if the "
        r"4th channel is alpha",
    ):
        call(name, np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="if the channels come first, pass channel_axis=0"):
        call(name, np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(ValueError, match=r"has 2 channel\(s\) along channel_axis=1"):
        call(name, np.zeros((5, 2, 3), np.uint8), channel_axis=1)


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"channel_axis": 3}, ValueError, "channel_axis=3 is out of range for an image with 3"),
        ({"channel_axis": -4}, ValueError, "channel_axis=-4 is out of range"),
        ({"channel_axis": 1.0}, TypeError, "channel_axis must be an integer or None"),
        ({"channel_axis": "last"}, TypeError, "channel_axis must be an integer or None"),
        ({"channel_axis": True}, TypeError, "channel_axis must be an integer or None"),
        ({"method": "fast"}, ValueError, "method must be one of 'auto', 'table'"),
        ({"normalized": "no"}, TypeError, "normalized must be True or False"),
        ({"normalized": None}, TypeError, "normalized must be True or False"),
    ],
)
def test_bad_keywords(img, name, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        call(name, img, **kwargs)


def test_channel_axis_accepts_numpy_integers(img):
    expected = pixgmm.log_density(img, rgb_model())
    got = pixgmm.log_density(np.moveaxis(img, -1, 0), rgb_model(), channel_axis=np.int64(0))
    np.testing.assert_array_equal(got, expected)


# -- image dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros((2, 2, 3), complex), "image has complex dtype complex128; pixel values must be"),
        (np.zeros((2, 2, 3), np.complex64), "complex dtype"),
        (np.zeros((2, 2, 3), object), "image must be a numeric array .* got dtype object"),
        (np.array([["1", "2", "3"]]), "image must be a numeric array"),
        (np.zeros((2, 3), "M8[s]"), "image must be a numeric array"),
        (np.zeros((2, 2, 3), bool), r"image has boolean dtype; pass the pixel values"),
        ([[1, 2, None]], "image must be a numeric array"),
    ],
    ids=["complex128", "complex64", "object", "str", "datetime", "bool", "list-with-None"],
)
def test_non_numeric_images_are_a_type_error(name, image, match):
    with pytest.raises(TypeError, match=match):
        call(name, image)


@pytest.mark.parametrize("name", FUNCS)
def test_scalar_image_is_refused(name):
    one = Mixture([1.0], [[0.0]], [1.0], "spherical")
    with pytest.raises(ValueError, match="image is a scalar"):
        call(name, np.float64(1.0), one, channel_axis=None, model_b=one)


def test_lists_are_images(img):
    np.testing.assert_array_equal(
        pixgmm.log_density(img.tolist(), rgb_model()),
        pixgmm.log_density(img.astype(np.int64), rgb_model()),
    )


# -- the output dtype rule ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image_dtype", "expected"),
    [
        ("u1", np.float64),
        ("<u2", np.float64),
        (">u2", np.float64),
        ("i1", np.float64),
        ("<i2", np.float64),
        ("<i4", np.float64),
        ("<u4", np.float64),
        ("<i8", np.float64),
        ("<f2", np.float32),
        ("<f4", np.float32),
        (">f4", np.float32),
        ("<f8", np.float64),
        (">f8", np.float64),
    ],
)
@pytest.mark.parametrize("name", FLOAT_FUNCS)
def test_output_dtype_rule(img, name, image_dtype, expected):
    image = img.astype(image_dtype)
    got = call(name, image)
    assert got.dtype == expected and got.dtype.isnative
    for forced in (np.float32, np.float64, "float32", "f8", float):
        assert call(name, image, dtype=forced).dtype == np.dtype(forced)
    assert call(name, image, dtype=None).dtype == expected


def test_predict_returns_intp(img):
    for dtype in ("u1", "<f2", ">f8"):
        assert pixgmm.predict(img.astype(dtype), rgb_model()).dtype == np.intp


@pytest.mark.parametrize("name", FLOAT_FUNCS)
@pytest.mark.parametrize(
    ("dtype", "exc", "match"),
    [
        (np.float16, ValueError, "dtype must be float32 or float64, got float16"),
        (np.int32, ValueError, "dtype must be float32 or float64, got int32"),
        (np.complex128, ValueError, "dtype must be float32 or float64"),
        ("fast", TypeError, "dtype must be float32 or float64, got 'fast'"),
    ],
)
def test_bad_dtype(img, name, dtype, exc, match):
    with pytest.raises(exc, match=match):
        call(name, img, dtype=dtype)


def test_float32_output_agrees_with_float64(img):
    for name in FLOAT_FUNCS:
        f64 = call(name, img, dtype=np.float64)
        f32 = call(name, img, dtype=np.float32)
        if name == "density":
            np.testing.assert_allclose(f32, f64, rtol=1e-5, atol=np.finfo(np.float32).tiny)
        else:
            np.testing.assert_allclose(f32, f64, rtol=1e-5, atol=1e-6)


# -- out= ------------------------------------------------------------------------------------------


def _out_variants(shape, dtype):
    padded = np.zeros(tuple(2 * n for n in shape), dtype=dtype)
    return {
        "C": np.empty(shape, dtype),
        "F": np.empty(shape, dtype, order="F"),
        "strided": padded[tuple(slice(None, None, 2) for _ in shape)],
        "big-endian": np.empty(shape, np.dtype(dtype).newbyteorder(">")),
    }


@pytest.mark.parametrize("name", FUNCS)
@pytest.mark.parametrize("out_dtype", [np.float32, np.float64])
def test_out_is_written_in_place_and_returned(img, name, out_dtype):
    if name == "predict":
        out_dtype = np.int32 if out_dtype == np.float32 else np.intp
    expected = call(name, img) if name == "predict" else call(name, img, dtype=out_dtype)
    shape = out_shape(name, img.shape[:2])
    for layout, out in _out_variants(shape, out_dtype).items():
        got = call(name, img, out=out)
        assert got is out, layout
        np.testing.assert_array_equal(out, expected.astype(out_dtype), err_msg=layout)


@pytest.mark.parametrize("name", FLOAT_FUNCS)
def test_out_errors(img, name):
    shape = out_shape(name, img.shape[:2])
    with pytest.raises(ValueError, match=r"out has shape \(9, 7.*but the result has shape \(7, 9"):
        call(name, img, out=np.empty((9, 7, *shape[2:])))
    with pytest.raises(ValueError, match="out must have dtype float32 or float64, got int32"):
        call(name, img, out=np.empty(shape, np.int32))
    with pytest.raises(ValueError, match="out must have dtype float32 or float64, got float16"):
        call(name, img, out=np.empty(shape, np.float16))
    with pytest.raises(ValueError, match=r"dtype=float64 disagrees with out\.dtype=float32"):
        call(name, img, out=np.empty(shape, np.float32), dtype=np.float64)
    readonly = np.empty(shape)
    readonly.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        call(name, img, out=readonly)
    with pytest.raises(TypeError, match=r"out must be a numpy\.ndarray, got list"):
        call(name, img, out=np.empty(shape).tolist())


def test_predict_out_errors(img):
    model = rgb_model()
    with pytest.raises(TypeError, match="signed integer"):
        pixgmm.predict(img, model, out=np.empty((7, 9)))
    with pytest.raises(TypeError, match="signed integer"):
        pixgmm.predict(img, model, out=np.empty((7, 9), np.uint8))
    with pytest.raises(ValueError, match=r"out has shape \(9, 7\)"):
        pixgmm.predict(img, model, out=np.empty((9, 7), np.intp))
    many = Mixture(np.ones(200), np.linspace(0, 255, 200)[:, None], np.ones(200), "spherical")
    with pytest.raises(ValueError, match="cannot hold component 199"):
        pixgmm.predict(img[..., 0], many, channel_axis=None, out=np.empty((7, 9), np.int8))


def test_out_keeps_values_not_written_elsewhere(img):
    """Writing into a strided view leaves the rest of the parent untouched."""
    parent = np.full((14, 18), -7.0)
    view = parent[::2, ::2]
    pixgmm.log_density(img, rgb_model(), out=view)
    assert np.all(parent[1::2] == -7.0) and np.all(parent[:, 1::2] == -7.0)
    np.testing.assert_array_equal(view, pixgmm.log_density(img, rgb_model()))


# -- model sources ----------------------------------------------------------------------------------


def test_model_as_kernels_gaussian_mixture_or_mixture(img):
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    model = rgb_model(channels=None)
    kernels = [
        Kernel(mu, np.diag(var), w)
        for mu, var, w in zip(model.means, model.covariances, model.weights)
    ]
    triples = [
        (mu.tolist(), var.tolist(), float(w))
        for mu, var, w in zip(model.means, model.covariances, model.weights)
    ]
    gmm = model.to_sklearn()
    assert isinstance(gmm, sklearn_mixture.GaussianMixture)
    expected = {name: call(name, img, model) for name in FUNCS if name != "log_ratio"}
    for source in (kernels, triples, tuple(triples), gmm):
        for name, value in expected.items():
            assert_same(call(name, img, source), value, f"{name} with {type(source).__name__}")
    lr = pixgmm.log_ratio(img, kernels, gmm)
    np.testing.assert_array_equal(lr, np.zeros(img.shape[:2]))


@pytest.mark.parametrize("name", FUNCS)
def test_bad_model_source(img, name):
    with pytest.raises(TypeError, match=r"must be a pixgmm\.Mixture, a sequence of"):
        call(name, img, {"weights": [1.0]})
    with pytest.raises(TypeError, match=r"kernels\[0\] must be a \(mean, covariance, weight\)"):
        call(name, img, [(1.0, 2.0)])


# -- integer images never overflow -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "lo", "hi"), [(np.uint8, 0, 255), (np.uint16, 0, 65535), (np.int8, -128, 127)]
)
@pytest.mark.parametrize("name", FUNCS)
def test_integer_images_equal_the_same_values_as_float64(rng, dtype, lo, hi, name):
    """(x - mu) is formed in floating point: 0 - 200 is -200, not 56 (uint8 wrap-around)."""
    model = Mixture(
        [0.5, 0.5],
        [[hi - 10.0] * 3, [lo + 10.0] * 3],
        [[30.0, 40.0, 50.0], [60.0, 5.0, 9.0]],
        "diag",
        channels="RGB",
    )
    image = rng.integers(lo, hi + 1, size=(20, 20, 3)).astype(dtype)  # 400 pixels: separable
    image[0, :4] = [[lo, lo, lo], [hi, hi, hi], [lo, hi, lo], [hi, lo, hi]]
    as_float = image.astype(np.float64)
    kw = {"model_b": other_model()} if name == "log_ratio" else {}
    expected = call(name, as_float, model, **dict(kw))
    methods = ["auto", "direct"]
    if name not in ("responsibilities", "predict"):
        methods.append("separable")
        if dtype == np.uint8:
            methods.append("table")
    for method in methods:
        got = call(name, image, model, method=method, **dict(kw))
        if name == "predict":
            np.testing.assert_array_equal(got, expected)
        elif name == "density":
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=np.finfo(float).tiny)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_wide_integer_extremes_equal_float64(dtype):
    info = np.iinfo(dtype)
    x = np.array([info.min, info.max, 0, 1], dtype=dtype)
    wide = Mixture([0.5, 0.5], [[0.0], [1e6]], [1e30, 1e38], "spherical")
    for name in FUNCS:
        kw = {"model_b": Mixture([1.0], [[5.0]], [1e36], "spherical")}
        got = call(name, x, wide, channel_axis=None, **kw)
        expected = call(name, x.astype(np.float64), wide, channel_axis=None, **kw)
        assert_same(got, expected, f"{name} {np.dtype(dtype)}")


# -- NaN pixels --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, ">f8"])
@pytest.mark.parametrize("name", FUNCS)
def test_nan_pixels_only_there(rng, dtype, name):
    image = rng.uniform(0, 255, size=(3, 8, 6)).astype(dtype)  # channels first
    image[1, 2, 3] = np.nan  # one channel of pixel (2, 3)
    image[:, 7, 5] = np.nan  # every channel of pixel (7, 5)
    mask = np.zeros((8, 6), bool)
    mask[2, 3] = mask[7, 5] = True
    got = call(name, image, channel_axis=0)
    if name == "predict":
        np.testing.assert_array_equal(got == -1, mask)
        assert np.all(got[~mask] >= 0)
    else:
        nan = np.isnan(got) if got.ndim == 2 else np.isnan(got).all(axis=-1)
        np.testing.assert_array_equal(nan, mask)
        assert not np.isnan(got[~mask]).any()


def test_nan_in_a_grayscale_image():
    one = Mixture([1.0], [[0.0]], [1.0], "spherical")
    x = np.array([[0.0, np.nan], [np.inf, -1.0]])
    got = pixgmm.log_density(x, one, channel_axis=None)
    assert np.isnan(got[0, 1]) and got[1, 0] == -np.inf
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    np.testing.assert_allclose(got[[0, 1], [0, 1]], [-half_log_2pi, -0.5 - half_log_2pi])


# -- the table cache ----------------------------------------------------------------------------------


def test_table_cache_limit(img):
    info = pixgmm.cache_info()
    try:
        pixgmm.clear_cache()
        pixgmm.set_cache_limit(0)  # nothing is kept, results are unchanged
        gray = Mixture([1.0], [[100.0]], [400.0], "spherical")
        x = img[..., 0]
        first = pixgmm.log_density(x, gray, channel_axis=None, method="table")
        assert pixgmm.cache_info()["entries"] == 0
        pixgmm.set_cache_limit(1e6)  # a float number of bytes is fine
        again = pixgmm.log_density(x, gray, channel_axis=None, method="table")
        np.testing.assert_array_equal(first, again)
        assert pixgmm.cache_info() == {"entries": 1, "nbytes": 256 * 8, "limit": 10**6}
        for bad, exc in (
            (-1, ValueError),
            (float("nan"), ValueError),
            (float("inf"), ValueError),
            ("1GB", TypeError),
            (None, TypeError),
            (True, TypeError),
        ):
            with pytest.raises(exc, match="nbytes must be"):
                pixgmm.set_cache_limit(bad)
    finally:
        pixgmm.set_cache_limit(info["limit"])
        pixgmm.clear_cache()


# -- the question this project grew from ---------------------------------------------------------------
#
# A user had an OpenCV image (H, W, 3) uint8 and a list of "kernels"
# ``namedtuple('Kernel', 'mean covariance weight')`` -- a mean vector, a diagonal
# covariance and a weight 0 < w < 1 -- and wanted ``compute_densities(image, kernels)``:
# sum_k w_k |Sigma_k|^(-1/2) exp(-1/2 (x - mu_k)^T Sigma_k^(-1) (x - mu_k)) at every pixel, the
# constant (2 pi)^(-3/2) dropped since only ratios mattered. The kernels were first written as
# column vectors (mean and the covariance's diagonal, shape (3, 1)) and then "fixed up" into
# (3, 3) diagonal matrices. The per-pixel loop in the question normalised by
# sqrt(norm(Sigma)); the vectorised answer uses the determinant, which is what normalises a
# Gaussian. The values are the first components of the Jones & Rehg (1999) skin model, as in the
# question (whose first kernel is mean (73.53, 29.94, 17.76), variances (765.40, 121.44, 112.80),
# weight 0.0294).

QUESTION_KERNELS = [
    Kernel(np.array([(73.53, 29.94, 17.76)]).T, np.array([(765.40, 121.44, 112.80)]).T, 0.0294),
    Kernel(np.array([(249.71, 233.94, 217.49)]).T, np.array([(39.94, 154.44, 396.05)]).T, 0.0331),
    Kernel(np.array([(161.68, 116.25, 96.95)]).T, np.array([(291.03, 60.48, 162.85)]).T, 0.0654),
    Kernel(np.array([(186.07, 136.62, 114.40)]).T, np.array([(274.95, 64.60, 198.27)]).T, 0.0756),
    Kernel(np.array([(189.26, 98.37, 51.18)]).T, np.array([(633.18, 222.40, 250.69)]).T, 0.0554),
]


def fixed_up(kernels):
    """The question's second form: each covariance as a (3, 3) diagonal matrix."""
    return [Kernel(k.mean, np.diag(k.covariance.ravel()), k.weight) for k in kernels]


def compute_densities(img, kernels):
    """The vectorised answer: all pixels at once per kernel, normalised by the determinant."""
    pixels = img.reshape(-1, 3).astype(np.float64)
    result = np.zeros(pixels.shape[0])
    for mean, covariance, weight in kernels:
        diff = pixels - mean.reshape(1, 3)
        inv = np.linalg.inv(covariance)
        maha = np.einsum("ij,jk,ik->i", diff, inv, diff)
        result += weight / np.sqrt(np.linalg.det(covariance)) * np.exp(-0.5 * maha)
    return result.reshape(img.shape[:2])


def compute_probabilities_loop(img, kernels, normaliser):
    """The question's per-pixel loop, with its normaliser passed in (det or the original norm)."""
    result = np.zeros(img.shape[:2])
    for r in range(img.shape[0]):
        for c in range(img.shape[1]):
            val = img[r, c].astype(np.float64).reshape(3, 1)
            prob = 0.0
            for mean, covariance, weight in kernels:
                d = val - mean
                cov_inv = np.where(covariance != 0, 1 / np.where(covariance != 0, covariance, 1), 0)
                tmp = (d.T @ cov_inv @ d).item()
                prob += weight / np.sqrt(normaliser(covariance)) * math.exp(-0.5 * tmp)
            result[r, c] = prob
    return result


@pytest.fixture
def question_image(rng):
    """An (H, W, 3) uint8 image with skin-like and far-away colours, as from cv2.imread (BGR)."""
    rgb = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
    rgb[0, :5] = [[73, 30, 18], [250, 234, 217], [162, 116, 97], [0, 255, 0], [255, 255, 255]]
    return rgb


def test_question_vectorised_answer_matches_pixgmm(question_image):
    img = question_image
    kernels = fixed_up(QUESTION_KERNELS)
    expected = compute_densities(img, kernels)
    for model in (kernels, QUESTION_KERNELS, Mixture.from_kernels(kernels)):
        for method in ("auto", "direct", "separable", "table"):
            got = pixgmm.density(img, model, normalized=False, method=method)
            assert got.shape == (24, 32) and got.dtype == np.float64
            np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-300)
    # with the constant the density is the proper mixture density
    np.testing.assert_allclose(
        pixgmm.density(img, kernels), expected * (2 * math.pi) ** -1.5, rtol=1e-11, atol=1e-300
    )


def test_question_loop_with_the_determinant_matches_and_the_norm_does_not(question_image):
    img = question_image[:6, :7]
    kernels = fixed_up(QUESTION_KERNELS)
    with_det = compute_probabilities_loop(img, kernels, np.linalg.det)
    np.testing.assert_allclose(with_det, compute_densities(img, kernels), rtol=1e-12)
    got = pixgmm.density(img, QUESTION_KERNELS, normalized=False)
    np.testing.assert_allclose(got, with_det, rtol=1e-11, atol=1e-300)
    with_norm = compute_probabilities_loop(img, kernels, np.linalg.norm)
    assert not np.allclose(got, with_norm, rtol=1e-3)


def test_question_with_an_opencv_bgr_image(question_image):
    """The image came from cv2.imread, so its channels are B, G, R; the kernels are R, G, B."""
    model = Mixture.from_kernels(QUESTION_KERNELS, channels="RGB")
    bgr = np.ascontiguousarray(question_image[..., ::-1])
    got = pixgmm.density(bgr, model, channels="BGR", normalized=False)
    expected = compute_densities(question_image, fixed_up(QUESTION_KERNELS))
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-300)
