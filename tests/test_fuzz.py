"""Fuzz the edges of the public API: a right answer or a clear error, never anything else.

Random valid and invalid models (``Mixture`` and ``HistogramModel`` constructor
arguments), random images (every dtype, byte order, strided and read-only views, empty
images, channel axes) and random model files (mutated valid documents, truncated text,
random bytes). Each example asserts only that pixgmm either

* gives the answer of ``tests/reference.py``'s slow reference, or
* raises ``TypeError`` or ``ValueError`` with a non-empty message,

and never another exception, a crash or a hang. Only the public API is called. The
examples are derandomized (the same on every run and in CI) and bounded in number.
"""

from __future__ import annotations

import json
import math
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pixgmm
import reference as ref

FUNCS = ("density", "log_density", "log_ratio", "responsibilities", "predict")
CLEAR_ERRORS = (TypeError, ValueError)


def fuzz_settings(max_examples):
    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )


def clear_error_or(func, *args, **kwargs):
    """``func(*args, **kwargs)``, or None when it raised a clear TypeError/ValueError.

    Any other exception propagates and fails the test.
    """
    try:
        return func(*args, **kwargs)
    except CLEAR_ERRORS as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a message"
        return None


# -- models ----------------------------------------------------------------------------------

SPECIAL = [0.0, -0.0, -1.0, 1e-300, 1e300, math.nan, math.inf, -math.inf]
JUNK = [None, "1.0", "abc", b"x", True, {}, {"a": 1}, object(), [[1.0], [1.0, 2.0]], [], 1j]


def numbers(shape, lo=-300.0, hi=300.0):
    """Arrays of ``shape``: mostly ordinary values, sometimes special ones."""
    n = math.prod(shape)
    elements = st.one_of(
        st.floats(lo, hi, allow_nan=False, allow_infinity=False),
        st.sampled_from(SPECIAL),
    )
    return st.lists(elements, min_size=n, max_size=n).map(
        lambda v: np.array(v, dtype=np.float64).reshape(shape)
    )


@st.composite
def mixture_arguments(draw):
    """Constructor arguments for Mixture: valid, slightly wrong, or nonsense."""
    k = draw(st.integers(0, 4))
    d = draw(st.integers(0, 4))
    ctype = draw(
        st.one_of(
            st.sampled_from(["full", "diag", "spherical", "tied"]),
            st.sampled_from(["Full", "diagonal", "", None, 3, b"diag"]),
        )
    )
    weights = draw(
        st.one_of(
            st.builds(lambda v: np.abs(v) + 0.1, numbers((k,), 0, 1).filter(_finite)),
            numbers((k,)),
            numbers((draw(st.integers(0, 5)),)),
            st.sampled_from(JUNK),
        )
    )
    means = draw(st.one_of(numbers((k, d), -300, 300), numbers((d,)), st.sampled_from(JUNK)))
    shapes = {"full": (k, d, d), "diag": (k, d), "spherical": (k,), "tied": (d, d)}
    shape = shapes.get(ctype, (k, d))
    valid_cov = draw(st.booleans())
    if valid_cov and ctype in ("full", "tied"):
        a = draw(numbers((max(k, 1), d, d), -3, 3).filter(_finite))
        c = a @ np.swapaxes(a, 1, 2) + np.eye(d) * draw(st.floats(0.5, 50))
        cov = c if ctype == "full" else c[0]
    elif valid_cov:
        cov = np.abs(draw(numbers(shape, 0.5, 400).filter(_finite))) + 0.5
    else:
        cov = draw(st.one_of(numbers(shape, -50, 50), numbers((d, k)), st.sampled_from(JUNK)))
    channels = draw(
        st.one_of(
            st.none(),
            st.text(alphabet="RGBXYZ ", min_size=0, max_size=5),
            st.lists(st.text(alphabet="rgbnir", max_size=3), max_size=5),
            st.sampled_from([3, ["R", 1], b"RGB"]),
        )
    )
    reg = draw(st.one_of(st.just(0.0), st.sampled_from([1e-6, -1.0, math.nan, "1e-6", True])))
    return weights, means, cov, ctype, channels, reg


def _finite(a):
    return bool(np.all(np.isfinite(a)))


@fuzz_settings(300)
@given(mixture_arguments())
def test_fuzz_mixture_construction(args):
    weights, means, cov, ctype, channels, reg = args
    m = clear_error_or(pixgmm.Mixture, weights, means, cov, ctype, channels=channels, reg_covar=reg)
    if m is None:
        return
    # a model that constructs is finite, positive definite and evaluates like the reference
    assert np.all(np.isfinite(m.log_normalizers()))
    again = pixgmm.Mixture(
        m.weights, m.means, m.covariances, m.covariance_type, channels=m.channels
    )
    assert again == m and hash(again) == hash(m)
    assert pixgmm.Mixture.from_dict(m.to_dict()) == m
    rng = np.random.default_rng(0)
    X = m.means[rng.integers(m.n_components, size=7)] + rng.normal(size=(7, m.n_features))
    got = pixgmm.log_density(X, m)
    want = ref.log_density(X, m)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-7)


@st.composite
def histogram_arguments(draw):
    d = draw(st.integers(0, 3))
    bins = draw(st.lists(st.integers(0, 4), min_size=d, max_size=d))
    counts = draw(
        st.one_of(
            numbers(tuple(bins), 0, 50),
            st.builds(np.abs, numbers(tuple(bins), 0, 50)),
            st.sampled_from([*JUNK, 3.0]),
        )
    )
    rng = draw(
        st.one_of(
            st.just((0, 256)),
            st.tuples(st.floats(-10, 10), st.floats(-10, 300)),
            st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 300)), max_size=4),
            st.sampled_from(JUNK),
        )
    )
    smoothing = draw(st.one_of(st.floats(0, 3), st.sampled_from([-1.0, math.nan, math.inf, "1"])))
    channels = draw(st.one_of(st.none(), st.text(alphabet="RGB", max_size=4)))
    return counts, rng, smoothing, channels


@fuzz_settings(300)
@given(histogram_arguments())
def test_fuzz_histogram_construction(args):
    counts, rng, smoothing, channels = args
    h = clear_error_or(
        pixgmm.HistogramModel, counts, range=rng, smoothing=smoothing, channels=channels
    )
    if h is None:
        return
    assert pixgmm.HistogramModel.from_dict(h.to_dict()) == h
    pixels = np.zeros((3, h.n_features))
    out = pixgmm.log_density(pixels, h)
    assert out.shape == (3,) and not np.any(np.isnan(out)) and not np.any(out == np.inf)


# -- images ---------------------------------------------------------------------------------

IMAGE_DTYPES = [
    "<f2", ">f2", "<f4", ">f4", "<f8", ">f8", "u1", "u2", "i1", "i2", "u4", "i4", "i8",
    "longdouble", "bool", "object",
]  # fmt: skip
MODELS = {
    (ctype, d): ref.random_mixture(np.random.default_rng(7 + d), ctype, d, 3, 0.0, 255.0)
    for ctype in ("full", "diag", "spherical", "tied")
    for d in (1, 3)
}
OTHER = {d: ref.random_mixture(np.random.default_rng(99), "diag", d, 2, 0.0, 255.0) for d in (1, 3)}


def _pixel_values(dtype, n):
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        return st.lists(st.one_of(st.integers(0, 255), st.integers(lo, hi)), min_size=n, max_size=n)
    finite = st.floats(-1e3, 1e3, allow_nan=False, width=16 if dtype.itemsize == 2 else 32)
    special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0])
    return st.lists(st.one_of(finite, finite, finite, special), min_size=n, max_size=n)


@st.composite
def images(draw):
    """``(image, channel_axis, model_key, dtype name)``: any dtype, layout and size."""
    ctype = draw(st.sampled_from(["full", "diag", "spherical", "tied"]))
    d = draw(st.sampled_from([1, 3]))
    name = draw(st.sampled_from(IMAGE_DTYPES))
    spatial = draw(st.sampled_from([(0,), (5,), (2, 3), (0, 4), (3, 0, 2), (4, 4)]))
    step = draw(st.sampled_from([1, 2]))  # a strided view of a larger array
    full_spatial = (spatial[0] * step, *spatial[1:])
    storage = np.dtype(np.float64 if name in ("bool", "object") else name)
    n = math.prod(full_spatial) * d
    values = np.array(draw(_pixel_values(storage, n)), dtype=np.float64 if n == 0 else None)
    if storage.kind in "ui":
        base = values.astype(storage).reshape(*full_spatial, d)
    else:
        base = values.astype(np.float64).astype(storage).reshape(*full_spatial, d)
    if name == "bool":
        base = base > 100
    elif name == "object":
        base = base.astype(object)
    image = base[::step]
    axis = draw(st.sampled_from([-1, 0] if image.ndim > 1 else [-1]))
    if d == 1 and draw(st.booleans()):
        image, axis = image[..., 0], None
    elif axis == 0:
        image = np.moveaxis(image, -1, 0)
    if draw(st.booleans()):
        image = image.view()
        image.flags.writeable = False
    return image, axis, (ctype, d), name


def _reference(func, X, model, other):
    if func == "log_density":
        return ref.log_density(X, model)
    if func == "density":
        return np.exp(ref.log_density(X, model))
    if func == "log_ratio":
        return ref.log_ratio(X, model, other)
    if func == "responsibilities":
        return ref.responsibilities(X, model)
    return ref.predict_terms(X, model)


def _check(func, got, X, model, other, out_dtype):
    """``got`` (flattened to pixels) against the reference; infinite pixels by their limit."""
    n = X.shape[0]
    k = model.n_components
    got = got.reshape(n, k) if func == "responsibilities" else got.reshape(n)
    nan_px = np.isnan(X).any(axis=1)
    inf_px = np.isinf(X).any(axis=1) & ~nan_px
    ok = ~nan_px & ~inf_px
    f64 = out_dtype == np.float64
    if func == "predict":
        # NaN and infinite pixels: no component is defined (every log-term is NaN or -inf)
        assert np.all(got[nan_px | inf_px] == -1)
        assert np.all((got[ok] >= 0) & (got[ok] < model.n_components))
        lt = ref.predict_terms(X[ok], model)
        if lt.shape[0]:
            chosen = lt[np.arange(lt.shape[0]), got[ok]]
            best = lt.max(axis=1)
            assert np.all(chosen >= best - 1e-7 * np.maximum(1.0, np.abs(best)))
        return
    g = got.astype(np.float64)
    assert np.isnan(g[nan_px]).all()
    # an infinite pixel: density 0 under every component, so no posterior and no ratio
    limit = {"log_density": -np.inf, "density": 0.0, "log_ratio": np.nan}.get(func, np.nan)
    if inf_px.any():
        np.testing.assert_array_equal(g[inf_px], np.full_like(g[inf_px], limit))
    want = _reference(func, X[ok], model, other)
    with np.errstate(over="ignore", under="ignore"):
        if func == "density":
            rtol, atol = (1e-9, 1e-300) if f64 else (1e-5, float(np.finfo(np.float32).tiny))
            want = want if f64 else want.astype(np.float32).astype(np.float64)
            np.testing.assert_allclose(g[ok], want, rtol=rtol, atol=atol, equal_nan=True)
        elif func == "responsibilities":
            np.testing.assert_allclose(
                g[ok], want, rtol=0, atol=1e-9 if f64 else 1e-5, equal_nan=True
            )
        else:
            want = want if f64 else want.astype(np.float32).astype(np.float64)
            fin = np.isfinite(want)
            np.testing.assert_array_equal(g[ok][~fin], want[~fin])
            tol = (
                1e-9 + 1e-12 * np.abs(want[fin]) if f64 else 1e-5 * np.maximum(1, np.abs(want[fin]))
            )
            assert np.all(np.abs(g[ok][fin] - want[fin]) <= tol)


@fuzz_settings(150)
@given(images(), st.sampled_from(FUNCS), st.sampled_from(["auto", "direct"]))
def test_fuzz_images_right_answer_or_clear_error(case, func, method):
    image, axis, key, name = case
    model, other = MODELS[key], OTHER[key[1]]
    args = (image, model, other) if func == "log_ratio" else (image, model)
    kwargs = (
        {"channel_axis": axis} if method == "auto" else {"channel_axis": axis, "method": method}
    )
    got = clear_error_or(getattr(pixgmm, func), *args, **kwargs)
    if name in ("bool", "object"):
        assert got is None, f"{name} image accepted"
        return
    assert got is not None, "a valid image was refused"
    X = ref.as_pixels(image, axis)  # float64 (long double rounds as pixgmm rounds it)
    kernel_dtype = np.dtype(image.dtype)
    out_dtype = (
        np.float32 if kernel_dtype.kind == "f" and kernel_dtype.itemsize <= 4 else np.float64
    )
    if func != "predict":
        assert got.dtype == out_dtype
    spatial = ref.spatial_shape(image, axis) if axis is not None else image.shape
    k = (model.n_components,) if func == "responsibilities" else ()
    assert got.shape == (*spatial, *k)
    _check(func, got, X, model, other, out_dtype)


@fuzz_settings(25)
@given(images())
def test_fuzz_dask_images_fail_at_call_time_or_agree(case):
    da = pytest.importorskip("dask.array")
    image, axis, key, name = case
    model = MODELS[key]
    lazy = da.from_array(np.asarray(image), chunks=2)
    got = clear_error_or(pixgmm.log_density, lazy, model, channel_axis=axis)
    if name in ("bool", "object"):
        assert got is None, f"{name} dask image accepted"
        return
    assert got is not None
    np.testing.assert_array_equal(
        got.compute(scheduler="synchronous"), pixgmm.log_density(image, model, channel_axis=axis)
    )


# -- model files ------------------------------------------------------------------------------

DOCS = {
    "mixture": MODELS[("full", 3)].to_dict(),
    "diag": pixgmm.Mixture([1.0], [[0.0, 1.0]], [[1.0, 2.0]], "diag", channels="XY").to_dict(),
    "histogram": pixgmm.HistogramModel(np.arange(8.0).reshape(2, 2, 2), channels="RGB").to_dict(),
}
WRONG_VALUES = [None, True, False, "1", "", "full", 0, -1, 1.5, 10**400, [], [[]], {}, [1, "a"]]


def _paths(doc, prefix=()):
    """Every (path, value) of a JSON document."""
    yield prefix, doc
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, (*prefix, i))


def _replace(doc, path, value):
    if not path:
        return value
    out = dict(doc) if isinstance(doc, dict) else list(doc)
    out[path[0]] = _replace(doc[path[0]], path[1:], value)
    return out


@st.composite
def model_files(draw):
    """Bytes of a model file: valid, mutated, truncated or random."""
    kind = draw(st.sampled_from(sorted(DOCS)))
    doc = DOCS[kind]
    how = draw(st.sampled_from(["valid", "value", "rename", "drop", "add", "truncate", "bytes"]))
    if how == "bytes":
        return kind, draw(st.binary(max_size=200))
    paths = list(_paths(doc))
    path, _ = draw(st.sampled_from(paths))
    if how == "value":
        doc = _replace(doc, path, draw(st.sampled_from(WRONG_VALUES)))
    elif how == "rename" and path and isinstance(path[-1], str):
        new = draw(st.text(alphabet=string.ascii_lowercase + "_-", min_size=1, max_size=16))
        parent = dict(_get(doc, path[:-1]))
        parent[new] = parent.pop(path[-1])
        doc = _replace(doc, path[:-1], parent)
    elif how == "drop" and path:
        parent = _get(doc, path[:-1])
        parent = (
            {k: v for k, v in parent.items() if k != path[-1]}
            if isinstance(parent, dict)
            else [v for i, v in enumerate(parent) if i != path[-1]]
        )
        doc = _replace(doc, path[:-1], parent)
    elif how == "add":
        doc = {**doc, draw(st.sampled_from(["chanels", "prior", "covariance-type", "x"])): 1}
    text = json.dumps(doc)
    if how == "truncate":
        text = text[: draw(st.integers(0, len(text)))]
    return kind, text.encode("utf-8")


def _get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@fuzz_settings(400)
@given(model_files())
def test_fuzz_model_files_load_or_clear_error(tmp_path_factory, case):
    kind, raw = case
    path = tmp_path_factory.mktemp("fuzz") / "model.json"
    path.write_bytes(raw)
    cls = pixgmm.HistogramModel if kind == "histogram" else pixgmm.Mixture
    model = clear_error_or(cls.load, path)
    if model is None:
        with pytest.raises(ValueError) as info:  # and the error names the file
            cls.load(path)
        assert str(info.value).startswith(f"{path}: ")
        return
    # a file that loads holds only fields the model writes, with the values it writes: no
    # field was ignored (a misspelled key) or reinterpreted (a numeric string)
    parsed, written = json.loads(raw), model.to_dict()
    if isinstance(parsed.get("range"), list) and len(parsed["range"]) == 2:
        if not isinstance(parsed["range"][0], list):
            parsed["range"] = [parsed["range"]] * model.n_features
    for key, value in parsed.items():
        assert key in written, f"field {key!r} was ignored"
        if key == "channels":
            assert _channel_names(value) == _channel_names(written[key])
        else:
            assert _same_json(value, written[key]), (key, value, written[key])
    model.save(path)
    assert cls.load(path) == model


def _same_json(a, b):
    """Equal as JSON values, 1 and 1.0 alike; a boolean is not a number."""
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _channel_names(value):
    return None if value is None else tuple(str(c).strip().upper() for c in value)
