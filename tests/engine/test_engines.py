"""Every engine against the slow references and scipy.stats.

Engines: ``direct`` (any image), ``separable`` (8/16-bit integer images, diagonal or
spherical covariances), ``table`` (uint8 images with at most 3 channels) and ``auto``.
Float64 results must match the float64 reference to 1e-9 (relative for densities,
absolute for log-densities and log-ratios); float32 results to 1e-5.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pixgmm
import reference as ref

F32_TINY = float(np.finfo(np.float32).tiny)
F64_TINY = float(np.finfo(np.float64).tiny)


# -- comparison helpers --------------------------------------------------------------------


def assert_log_close(got, expected, dtype=np.float64, what="log-density"):
    """float64: |got - expected| <= 1e-9; float32: <= 1e-5 * max(1, |expected|).

    ``expected`` is the float64 reference; -inf, +inf and NaN must match exactly. Beyond
    |expected| = 1e5 float64 cannot resolve 1e-9 (its spacing there is 1.5e-11 and grows),
    so the float64 tolerance becomes 1e-14 relative, a few units in the last place.
    """
    got = np.asarray(got)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.dtype == np.dtype(dtype), (what, got.dtype, dtype)
    assert got.shape == expected.shape, (what, got.shape, expected.shape)
    g = got.astype(np.float64)
    np.testing.assert_array_equal(np.isnan(g), np.isnan(expected), err_msg=f"{what}: NaN mask")
    fin = np.isfinite(expected)
    np.testing.assert_array_equal(g[~fin], expected[~fin], err_msg=f"{what}: infinities")
    if np.dtype(dtype) == np.float64:
        tol = np.maximum(1e-9, 1e-14 * np.abs(expected))
    else:
        tol = 1e-5 * np.maximum(1.0, np.abs(expected))
    with np.errstate(invalid="ignore"):
        err = np.abs(g - expected)
    bad = fin & ~(err <= tol)
    if np.any(bad):
        i = np.flatnonzero(bad.reshape(-1))[0]
        raise AssertionError(
            f"{what} ({np.dtype(dtype)}): {bad.sum()} of {bad.size} values off; first at flat "
            f"index {i}: got {g.reshape(-1)[i]!r}, expected {expected.reshape(-1)[i]!r}, "
            f"max error {np.max(err[fin]):.3g}"
        )


def assert_density_close(got, expected_log, dtype=np.float64, what="density"):
    """Density vs exp(reference log-density) cast to ``dtype``: rtol 1e-9 (float64) or 1e-5
    (float32), with the dtype's smallest normal number as the absolute tolerance (values below
    it have lost relative precision to underflow in that dtype)."""
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype), (what, got.dtype, dtype)
    with np.errstate(over="ignore", under="ignore"):
        expected = np.exp(np.asarray(expected_log, dtype=np.float64))
    if np.dtype(dtype) == np.float64:
        rtol, atol = 1e-9, F64_TINY
    else:
        rtol, atol = 1e-5, F32_TINY
        with np.errstate(over="ignore", under="ignore"):
            expected = expected.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(
        got.astype(np.float64), expected, rtol=rtol, atol=atol, equal_nan=True, err_msg=what
    )


def assert_resp_close(got, expected, dtype=np.float64):
    got = np.asarray(got)
    assert got.dtype == np.dtype(dtype)
    atol = 1e-9 if np.dtype(dtype) == np.float64 else 1e-5
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=0, atol=atol, equal_nan=True)


def assert_predict_ok(labels, X, model, normalized=True):
    """``labels`` picks a component whose log-term is the largest up to rounding (ties allowed);
    -1 exactly at NaN pixels."""
    labels = np.asarray(labels).reshape(-1)
    lt = ref.predict_terms(X, model, normalized)
    nan = np.any(np.isnan(lt), axis=1)
    assert np.all(labels[nan] == -1)
    ok = ~nan
    assert np.all((labels[ok] >= 0) & (labels[ok] < model.n_components))
    if np.any(ok):
        chosen = lt[ok][np.arange(ok.sum()), labels[ok]]
        best = lt[ok].max(axis=1)
        both_inf = (best == -np.inf) & (chosen == -np.inf)
        assert np.all(both_inf | (chosen >= best - 1e-9 * np.maximum(1.0, np.abs(best))))
    exact = ref.predict(X, model, normalized)
    # away from near-ties the reference argmax is unique and must be reproduced exactly
    srt = np.sort(lt[ok], axis=1)
    clear = np.ones(ok.sum(), bool) if lt.shape[1] == 1 else (srt[:, -1] - srt[:, -2] > 1e-6)
    np.testing.assert_array_equal(labels[ok][clear], exact[ok][clear])


def engines_for(image_dtype, n_channels, models, quantity="log"):
    """The engines that apply to this input, by the documented rule."""
    dt = np.dtype(image_dtype)
    out = ["direct", "auto"]
    if quantity in ("log", "pdf", "ratio"):
        if dt.kind in "ui" and dt.itemsize <= 2 and all(m.is_diagonal for m in models):
            out.append("separable")
        if dt == np.uint8 and n_channels <= 3:
            out.append("table")
    return out


def check_all(image, model, model_b, *, channel_axis=-1, methods=None, normalized=True):
    """Every public function, every applicable engine, against the numpy reference."""
    X = ref.as_pixels(image, channel_axis)
    shape = ref.spatial_shape(image, channel_axis)
    img_dt = np.asarray(image).dtype.newbyteorder("=")
    odt = np.float32 if img_dt in (np.float16, np.float32) else np.float64
    lp = ref.log_density(X, model, normalized).reshape(shape)
    lr = ref.log_ratio(X, model, model_b, normalized).reshape(shape)
    kw = {"channel_axis": channel_axis, "normalized": normalized}
    for method in methods or engines_for(img_dt, X.shape[1], [model]):
        got = pixgmm.log_density(image, model, method=method, **kw)
        assert_log_close(got, lp, odt, f"log_density[{method}]")
        got = pixgmm.density(image, model, method=method, **kw)
        assert_density_close(got, lp, odt, f"density[{method}]")
    for method in methods or engines_for(img_dt, X.shape[1], [model, model_b]):
        got = pixgmm.log_ratio(image, model, model_b, method=method, **kw)
        assert_log_close(got, lr, odt, f"log_ratio[{method}]")
    for method in ("direct", "auto"):
        r = pixgmm.responsibilities(image, model, method=method, **kw)
        assert r.shape == (*shape, model.n_components)
        exp_r = ref.responsibilities(X, model, normalized).reshape(r.shape)
        assert_resp_close(r, exp_r, odt)
        labels = pixgmm.predict(image, model, method=method, **kw)
        assert labels.shape == shape and labels.dtype == np.intp
        assert_predict_ok(labels, X, model, normalized)


# -- the references agree with each other ----------------------------------------------------


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 3, 5])
def test_references_agree(rng, covariance_type, d):
    model = ref.random_mixture(rng, covariance_type, d, 6)
    X = rng.uniform(-20, 275, size=(40, d))
    loop = ref.log_density_loop(X, model)
    np.testing.assert_allclose(ref.log_density(X, model), loop, rtol=0, atol=1e-10)
    scipy_lp = ref.log_density(X, model, terms=ref.log_terms_scipy)
    np.testing.assert_allclose(scipy_lp, loop, rtol=1e-12, atol=1e-10)
    un = ref.log_density_loop(X, model, normalized=False)
    np.testing.assert_allclose(un - loop, 0.5 * d * math.log(2 * math.pi), rtol=1e-13)


# -- each engine, each covariance type, against the loop and scipy ---------------------------


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("normalized", [True, False])
def test_direct_uint8_rgb_against_loop_and_scipy(rng, covariance_type, normalized):
    model = ref.random_mixture(rng, covariance_type, 3, 5)
    img = rng.integers(0, 256, size=(9, 7, 3), dtype=np.uint8)
    X = ref.as_pixels(img)
    loop = ref.log_density_loop(X, model, normalized).reshape(9, 7)
    sp = ref.log_density(X, model, normalized, terms=ref.log_terms_scipy).reshape(9, 7)
    np.testing.assert_allclose(loop, sp, rtol=1e-12, atol=1e-10)
    for method in engines_for(np.uint8, 3, [model]):
        got = pixgmm.log_density(img, model, normalized=normalized, method=method)
        assert_log_close(got, loop, np.float64, f"log_density[{method}] vs loop")
        assert_log_close(got, sp, np.float64, f"log_density[{method}] vs scipy")
        got = pixgmm.density(img, model, normalized=normalized, method=method)
        assert_density_close(got, loop, np.float64, f"density[{method}] vs loop")


@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
@pytest.mark.parametrize("d", [1, 2, 4, 6])
def test_direct_float_images_all_functions(rng, covariance_type, d):
    """Unit-scale float64 and float32 images, D up to 6, K up to 32."""
    for k, dtype in ((1, np.float64), (32, np.float64), (9, np.float32)):
        model = ref.random_mixture(rng, covariance_type, d, k, -1.0, 1.0, zero_weight=True)
        other = ref.random_mixture(rng, "full", d, 3, -1.0, 1.0)
        img = rng.uniform(-1.2, 1.2, size=(5, 11, d)).astype(dtype)
        check_all(img, model, other)


def test_scipy_reference_per_component(rng):
    """The direct engine reproduces scipy.stats.multivariate_normal.pdf summed over components."""
    model = ref.random_mixture(rng, "full", 4, 3, 0, 255)
    X = rng.uniform(0, 255, size=(100, 4))
    expected = sum(
        w * scipy.stats.multivariate_normal(mu, cov).pdf(X)
        for w, mu, cov in zip(model.weights, model.means, model.full_covariances())
    )
    got = pixgmm.density(X, model, method="direct")
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=F64_TINY)


# -- separable engine --------------------------------------------------------------------------


SEPARABLE_CASES = [
    (np.uint8, 0, 255),
    (np.uint16, 0, 3000),
    (np.int8, -128, 127),
    (np.int16, -1000, 1000),
]


@pytest.mark.parametrize(("dtype", "lo", "hi"), SEPARABLE_CASES)
@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_separable_integer_images(rng, dtype, lo, hi, covariance_type):
    for d, k in ((1, 1), (3, 16), (4, 5)):
        model = ref.random_mixture(rng, covariance_type, d, k, lo, hi, zero_weight=True)
        other = ref.random_mixture(rng, "diag", d, 4, lo, hi)
        img = rng.integers(lo, hi + 1, size=(13, 8, d)).astype(dtype)
        # the dtype's extreme values, far from every component
        info = np.iinfo(dtype)
        img[0, 0] = info.min
        img[0, 1] = info.max
        X = ref.as_pixels(img)
        lp = ref.log_density(X, model).reshape(13, 8)
        for out_dtype in (np.float64, np.float32):
            got = pixgmm.log_density(img, model, method="separable", dtype=out_dtype)
            assert_log_close(got, lp, out_dtype, "separable log_density")
            got = pixgmm.density(img, model, method="separable", dtype=out_dtype)
            assert_density_close(got, lp, out_dtype, "separable density")
        lr = ref.log_ratio(X, model, other).reshape(13, 8)
        got = pixgmm.log_ratio(img, model, other, method="separable")
        assert_log_close(got, lr, np.float64, "separable log_ratio")


def test_separable_far_tail_recomputed_exactly():
    """Where every scaled per-channel product underflows the engine falls back to log-sum-exp."""
    model = pixgmm.Mixture([0.5, 0.5], [[0.0, 0.0], [10.0, 10.0]], [1.0, 1.0], "spherical")
    img = np.array([[255, 255], [0, 255], [255, 0], [5, 5], [0, 0]], dtype=np.uint8)
    lp = ref.log_density_loop(img, model)
    assert lp.min() < -30000  # exp of this is 0 in float64
    got = pixgmm.log_density(img, model, method="separable")
    assert_log_close(got, lp)
    got = pixgmm.log_density(img.astype(np.uint16) * 200, model, method="separable")
    assert_log_close(got, ref.log_density_loop(img.astype(np.float64) * 200, model))


# -- colour-table engine ------------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
def test_table_small_channel_counts(rng, d, covariance_type):
    """C = 1, 2: the table holds every one of 256**C colours; check all of them."""
    model = ref.random_mixture(rng, covariance_type, d, 7, zero_weight=True)
    other = ref.random_mixture(rng, "diag", d, 3)
    grids = np.meshgrid(*[np.arange(256)] * d, indexing="ij")
    img = np.stack(grids, axis=-1).reshape(-1, d).astype(np.uint8)
    X = ref.as_pixels(img)
    lp = ref.log_density(X, model)
    for out_dtype in (np.float64, np.float32):
        got = pixgmm.log_density(img, model, method="table", dtype=out_dtype)
        assert_log_close(got, lp, out_dtype, "table log_density")
        got = pixgmm.density(img, model, method="table", dtype=out_dtype)
        assert_density_close(got, lp, out_dtype, "table density")
    got = pixgmm.log_ratio(img, model, other, method="table")
    assert_log_close(got, ref.log_ratio(X, model, other), np.float64, "table log_ratio")


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_table_rgb(rng, covariance_type):
    """C = 3 (16.7M-colour table): a sample of colours incl. the cube's corners, every quantity."""
    model = ref.random_mixture(rng, covariance_type, 3, 4)
    other = ref.random_mixture(rng, "spherical", 3, 2)
    img = rng.integers(0, 256, size=(31, 17, 3), dtype=np.uint8)
    corners = np.array(np.meshgrid([0, 255], [0, 255], [0, 255], indexing="ij")).reshape(3, -1).T
    img[0, :8] = corners
    X = ref.as_pixels(img)
    lp = ref.log_density(X, model).reshape(31, 17)
    got = pixgmm.log_density(img, model, method="table")
    assert_log_close(got, lp, np.float64, "table log_density")
    got = pixgmm.density(img, model, method="table")
    assert_density_close(got, lp, np.float64, "table density")
    lr = ref.log_ratio(X, model, other).reshape(31, 17)
    got = pixgmm.log_ratio(img, model, other, method="table")
    assert_log_close(got, lr, np.float64, "table log_ratio")
    got = pixgmm.log_density(img, model, method="table", dtype=np.float32)
    assert_log_close(got, lp, np.float32, "table log_density float32")


def test_table_reused_from_cache(rng):
    model = ref.random_mixture(rng, "diag", 2, 3)
    img = rng.integers(0, 256, size=(50, 2), dtype=np.uint8)
    first = pixgmm.log_density(img, model, method="table")
    again = pixgmm.log_density(img, model, method="table")
    np.testing.assert_array_equal(first, again)
    pixgmm.clear_cache()
    np.testing.assert_array_equal(pixgmm.log_density(img, model, method="table"), first)


# -- auto and forced engines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "shape", "covariance_type", "engine"),
    [
        (np.uint8, (300, 3), "diag", "separable"),  # >= 256 pixels, diagonal: separable
        (np.int8, (300, 3), "spherical", "separable"),  # signed 8-bit too
        (np.uint8, (70000, 2), "full", "table"),  # >= 256**2 pixels with C=2: table
        (np.uint8, (256, 1), "tied", "table"),  # >= 256**1 pixels with C=1: table
        (np.uint8, (2**20, 3), "diag", "table"),  # a megapixel, diagonal RGB: table
        (np.uint16, (300, 4), "diag", "direct"),  # 16-bit: direct
        (np.uint8, (255, 3), "diag", "direct"),  # fewer than 256 pixels: direct
        (np.float32, (40, 3), "tied", "direct"),  # floating point: direct
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_auto_agrees_with_direct(rng, dtype, shape, covariance_type, engine, ran_engine):
    """``auto`` runs the engine the rule names, and that engine agrees with direct and the
    reference (for the direct rows only the reference comparison says anything)."""
    pixgmm.clear_cache()  # a cached table would change the choice
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "ui" else None
    lo, hi = (max(info.min, -100), min(info.max, 2000)) if info else (0, 2000)
    model = ref.random_mixture(rng, covariance_type, shape[1], 5, lo, hi)
    img = rng.integers(lo, hi + 1, size=shape).astype(dtype)
    assert pixgmm.explain(pixgmm.log_density, img, model) == engine
    ran, auto = ran_engine(pixgmm.log_density, img, model)
    assert ran == engine
    X = ref.as_pixels(img)
    assert_log_close(auto, ref.log_density(X, model), auto.dtype, f"auto ({engine})")
    if engine != "direct":
        direct = pixgmm.log_density(img, model, method="direct")
        assert auto.dtype == direct.dtype
        tol = 1e-9 if direct.dtype == np.float64 else 1e-5
        np.testing.assert_allclose(auto, direct, rtol=tol, atol=tol)
    pixgmm.clear_cache()


def test_auto_engine_rule_by_dtype(rng):
    # 8-bit images with a diagonal model use the separable tables, 16-bit images the direct
    # kernel (their 65536-level tables miss the caches); a forced separable still applies
    model = ref.random_mixture(rng, "diag", 3, 4, 0, 255)
    u8 = np.zeros((300, 3), np.uint8)
    u16 = np.zeros((70000, 3), np.uint16)
    explain = pixgmm.explain
    assert explain(pixgmm.log_density, u8, model) == "separable"
    assert explain(pixgmm.log_density, u8[:255], model) == "direct"
    assert explain(pixgmm.log_density, u16, model) == "direct"
    assert explain(pixgmm.log_density, u16, model, method="separable") == "separable"


@pytest.mark.parametrize(
    ("method", "dtype", "d", "covariance_type"),
    [
        ("table", np.float64, 3, "diag"),
        ("table", np.uint16, 3, "diag"),
        ("table", np.int8, 1, "diag"),
        ("table", np.uint8, 4, "diag"),
        ("separable", np.uint8, 3, "full"),
        ("separable", np.uint8, 3, "tied"),
        ("separable", np.float32, 3, "diag"),
        ("separable", np.int32, 2, "diag"),
        ("separable", np.uint32, 1, "spherical"),
    ],
)
def test_forced_engine_that_does_not_apply_raises(rng, method, dtype, d, covariance_type):
    model = ref.random_mixture(rng, covariance_type, d, 2)
    img = np.zeros((4, 4, d), dtype=dtype)
    for func in (pixgmm.log_density, pixgmm.density):
        with pytest.raises(ValueError, match=f"method='{method}'"):
            func(img, model, method=method)
    with pytest.raises(ValueError, match=f"method='{method}'"):
        pixgmm.log_ratio(img, model, model, method=method)


@pytest.mark.parametrize("method", ["table", "separable"])
def test_table_engines_refused_for_responsibilities_and_predict(method):
    model = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    img = np.zeros((4, 1), np.uint8)
    with pytest.raises(ValueError, match="method"):
        pixgmm.responsibilities(img, model, method=method)
    with pytest.raises(ValueError, match="method"):
        pixgmm.predict(img, model, method=method)


def test_separable_refused_for_a_mix_of_diagonal_and_full_models(rng):
    a = ref.random_mixture(rng, "diag", 3, 2)
    b = ref.random_mixture(rng, "full", 3, 2)
    img = np.zeros((4, 3), np.uint8)
    with pytest.raises(ValueError, match="method='separable'"):
        pixgmm.log_ratio(img, a, b, method="separable")
    lr = pixgmm.log_ratio(img, a, b, method="table")
    assert_log_close(lr, ref.log_ratio(img, a, b))


# -- NaN pixels and the far tails -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("covariance_type", ref.COVARIANCE_TYPES)
def test_nan_pixel_gives_nan_at_that_pixel_only(rng, dtype, covariance_type):
    model = ref.random_mixture(rng, covariance_type, 3, 4, 0, 1)
    img = rng.uniform(0, 1, size=(6, 300, 3)).astype(dtype)  # several blocks of pixels
    img[2, 5, 1] = np.nan
    img[4, 299, :] = np.nan
    nan_mask = np.zeros((6, 300), bool)
    nan_mask[2, 5] = nan_mask[4, 299] = True
    for func in (pixgmm.log_density, pixgmm.density):
        res = func(img, model, method="direct")
        np.testing.assert_array_equal(np.isnan(res), nan_mask)
    res = pixgmm.log_ratio(img, model, model, method="direct")
    np.testing.assert_array_equal(np.isnan(res), nan_mask)
    assert np.all(res[~nan_mask] == 0)
    r = pixgmm.responsibilities(img, model)
    np.testing.assert_array_equal(np.isnan(r).any(axis=-1), nan_mask)
    assert np.all(np.isnan(r[nan_mask]))
    labels = pixgmm.predict(img, model)
    np.testing.assert_array_equal(labels == -1, nan_mask)
    X = ref.as_pixels(img)
    lp = ref.log_density(X, model).reshape(6, 300)
    assert_log_close(pixgmm.log_density(img, model), lp, dtype)
    # the same image with the NaN pixels replaced is finite everywhere
    filled = np.where(nan_mask[..., None], 0, img).astype(dtype)
    assert np.isfinite(pixgmm.log_density(filled, model)).all()


def test_log_density_exact_far_in_the_tail():
    n01 = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    x = np.array([0.0, 40.0, -40.0, 1e3, 1e150])
    half_log_2pi = 0.5 * math.log(2 * math.pi)
    expected = np.array([0.0, -800.0, -800.0, -5e5, -5e299]) - half_log_2pi
    for method in ("direct", "auto"):
        got = pixgmm.log_density(x, n01, channel_axis=None, method=method)
        np.testing.assert_allclose(got, expected, rtol=1e-15, atol=0)
        assert got[1] == pytest.approx(-800.9189385332046727, abs=1e-12)
    # density underflows to exactly 0 there, but is exact where representable
    p = pixgmm.density(x, n01, channel_axis=None)
    assert p[0] == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-15)
    assert p[1] == pytest.approx(math.exp(-800.9189385332046727), rel=1e-12, abs=0)
    assert p[3] == 0.0 and p[4] == 0.0


def test_log_density_minus_inf_beyond_float64():
    """(x - mu)**2 overflows: the log-density is -inf (the correctly rounded value), not NaN."""
    for covariance_type, cov in (("spherical", [1.0]), ("diag", [[1.0, 4.0]])):
        d = 1 if covariance_type == "spherical" else 2
        model = pixgmm.Mixture([1.0], [[0.0] * d], cov, covariance_type)
        img = np.array([[1e200] * d, [-1e200] * d, [np.inf] * d, [-np.inf] * d])
        for method in ("direct", "auto"):
            got = pixgmm.log_density(img, model, method=method)
            np.testing.assert_array_equal(got, -np.inf)
            np.testing.assert_array_equal(pixgmm.density(img, model, method=method), 0.0)


def test_full_covariance_far_away_is_minus_inf():
    model = ref.random_mixture(np.random.default_rng(3), "full", 3, 2, 0, 1)
    img = np.array([[1e200, 1e200, 1e200], [1e150, -1e150, 3.0]])
    got = pixgmm.log_density(img, model)
    assert_log_close(got, ref.log_density(img, model))
    assert got[0] == -np.inf and np.isfinite(got[1])


def test_log_ratio_finite_and_exact_where_density_underflows():
    a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    b = pixgmm.Mixture([1.0], [[1.0]], [1.0], "spherical")
    x = np.array([1000.0, -1000.0, 3e5])
    assert np.all(pixgmm.density(x, a, channel_axis=None) == 0)
    assert np.all(pixgmm.density(x, b, channel_axis=None) == 0)
    # log N(x; 0, 1) - log N(x; 1, 1) = (1 - 2x) / 2
    expected = (1 - 2 * x) / 2
    for method in ("direct", "auto"):
        got = pixgmm.log_ratio(x, a, b, channel_axis=None, method=method)
        np.testing.assert_array_equal(got, expected)
    # the same on 16-bit pixels through the separable engine
    xi = np.array([[60000], [0], [65535]], dtype=np.uint16)
    got = pixgmm.log_ratio(xi, a, b, method="separable")
    np.testing.assert_array_equal(got, (1 - 2 * xi[:, 0].astype(np.float64)) / 2)


def test_log_ratio_of_mixtures_far_away(rng):
    skin_like = ref.random_mixture(rng, "diag", 3, 16, 100, 250, spread=(0.02, 0.05))
    other = ref.random_mixture(rng, "full", 3, 8, 0, 60, spread=(0.02, 0.05))
    img = np.array([[[0, 0, 255], [255, 0, 0], [0, 255, 0], [128, 128, 128]]], dtype=np.uint8)
    X = ref.as_pixels(img)
    lr = ref.log_ratio(X, skin_like, other)
    assert np.all(np.isfinite(lr))
    assert np.all(pixgmm.density(img, skin_like, method="direct").reshape(-1)[:3] < 1e-200)
    for method in engines_for(np.uint8, 3, [skin_like, other]):
        if method == "separable":
            continue
        got = pixgmm.log_ratio(img, skin_like, other, method=method)
        assert_log_close(got, lr.reshape(1, 4), np.float64, f"log_ratio[{method}]")


def test_responsibilities_far_from_every_component():
    m = pixgmm.Mixture([0.5, 0.5], [[0.0], [10.0]], [1.0, 1.0], "spherical")
    x = np.array([[-1000.0], [1000.0], [5.0]])
    r = pixgmm.responsibilities(x, m)
    np.testing.assert_allclose(r, [[1, 0], [0, 1], [0.5, 0.5]], atol=1e-15)
    np.testing.assert_array_equal(pixgmm.predict(x, m), [0, 1, 0])
    np.testing.assert_allclose(r.sum(axis=-1), 1.0, rtol=1e-15)


# -- hypothesis: random models, dtypes, layouts, channel axes and shapes ---------------------

DTYPES = ["<f4", ">f4", "<f8", ">f8", "u1", "u2", "i2", "f2"]
LAYOUTS = ["C", "F", "strided", "reversed", "readonly"]
VALUE_RANGES = {"u1": (0, 255), "u2": (0, 3000), "i2": (-1000, 1000)}


def _leading_shape(draw):
    kind = draw(st.sampled_from(["N", "HW", "BHW"]))
    if kind == "N":
        return (draw(st.integers(0, 300)),)
    if kind == "HW":
        return (draw(st.integers(0, 12)), draw(st.integers(1, 12)))
    return (draw(st.integers(1, 3)), draw(st.integers(0, 6)), draw(st.integers(1, 6)))


def _apply_layout(arr, layout):
    """``arr`` has channels last; return a view/copy with the requested memory layout."""
    if layout == "F":
        return np.asfortranarray(arr)
    if layout == "strided":
        idx = (*tuple(slice(i % 2, None, 2 + i % 2) for i in range(arr.ndim - 1)), slice(None))
        return arr[idx]
    if layout == "reversed":
        return arr[..., ::-1]
    if layout == "readonly":
        arr = arr.copy()
        arr.setflags(write=False)
        return arr
    return np.ascontiguousarray(arr)


@st.composite
def cases(draw):
    covariance_type = draw(st.sampled_from(ref.COVARIANCE_TYPES))
    d = draw(st.integers(1, 6))
    k = draw(st.integers(1, 32))
    dtype = draw(st.sampled_from(DTYPES))
    layout = draw(st.sampled_from(LAYOUTS))
    lead = _leading_shape(draw)
    seed = draw(st.integers(0, 2**32 - 1))
    ndim = len(lead) + 1
    axes = [-1, 0, 1] + ([None] if d == 1 else [])
    channel_axis = draw(st.sampled_from(axes))
    if channel_axis is not None and channel_axis >= ndim:
        channel_axis = -1
    unit_scale = draw(st.booleans())
    return covariance_type, d, k, dtype, layout, lead, seed, channel_axis, unit_scale


def _make_image(rng, dtype, layout, lead, d, channel_axis, lo, hi):
    dt = np.dtype(dtype)
    # enlarge the spatial axes so that strided views keep roughly the drawn size
    big = tuple(2 * n + 1 if (layout == "strided" and n) else n for n in lead)
    values = rng.uniform(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo), size=(*big, d))
    if dt.kind in "ui":
        info = np.iinfo(dt)
        values = np.clip(np.rint(values), info.min, info.max)
    arr = _apply_layout(values.astype(dt), layout)
    if channel_axis is None:
        arr = arr[..., 0]
    elif channel_axis != -1:
        arr = np.moveaxis(arr, -1, channel_axis)
    return arr


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_property_every_engine_matches_reference(case):
    covariance_type, d, k, dtype, layout, lead, seed, channel_axis, unit_scale = case
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        lo, hi = VALUE_RANGES[dt.str[1:]]
    else:
        lo, hi = (-1.0, 1.0) if unit_scale else (0.0, 255.0)
    model = ref.random_mixture(rng, covariance_type, d, k, lo, hi, zero_weight=k > 2)
    other = ref.random_mixture(rng, rng.choice(ref.COVARIANCE_TYPES), d, 3, lo, hi)
    img = _make_image(rng, dtype, layout, lead, d, channel_axis, lo, hi)
    methods = None
    if dt == np.uint8 and d == 3:
        # the 16.7M-colour table is exercised by test_table_rgb and test_colour_table.py
        methods = [m for m in engines_for(dt, d, [model, other]) if m != "table"]
    check_all(img, model, other, channel_axis=channel_axis, methods=methods)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    covariance_type=st.sampled_from(ref.COVARIANCE_TYPES),
    d=st.integers(1, 4),
    k=st.integers(1, 8),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_gram_covariances_against_scipy(covariance_type, d, k, seed):
    """Covariances drawn as A A^T + eps I; direct engine against scipy.stats, unit and pixel scale."""
    rng = np.random.default_rng(seed)
    scale = 1.0 if seed % 2 else 40.0
    means = rng.uniform(0, 1, size=(k, d)) * (1.0 if seed % 2 else 255.0)
    if covariance_type == "full":
        cov = np.array([ref.random_spd_gram(rng, d, scale) for _ in range(k)])
    elif covariance_type == "tied":
        cov = ref.random_spd_gram(rng, d, scale)
    elif covariance_type == "diag":
        cov = rng.uniform(0.2, 1.0, size=(k, d)) * scale**2
    else:
        cov = rng.uniform(0.2, 1.0, size=k) * scale**2
    model = pixgmm.Mixture(rng.uniform(0.1, 1, k), means, cov, covariance_type)
    X = means[rng.integers(k, size=64)] + rng.normal(size=(64, d)) * scale
    expected = ref.log_density(X, model, terms=ref.log_terms_scipy)
    assert_log_close(pixgmm.log_density(X, model, method="direct"), expected)
    assert_density_close(pixgmm.density(X, model, method="direct"), expected)
