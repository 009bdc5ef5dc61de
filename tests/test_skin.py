"""SkinDetector: log ratio, posterior, masks and thresholds."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pixgmm
import reference as ref
from pixgmm.metrics import tpr_at_fpr
from pixgmm.models import jones_rehg_nonskin, jones_rehg_skin

SKIN_RGB = [200, 140, 110]
SKY_RGB = [40, 90, 160]


def small_pair():
    skin = pixgmm.Mixture([0.7, 0.3], [[190, 130, 100], [120, 80, 60]],
                          [[300, 200, 200], [400, 300, 300]], "diag", channels="RGB")  # fmt: skip
    nonskin = pixgmm.Mixture([0.5, 0.5], [[60, 90, 150], [128, 128, 128]],
                             [[900, 900, 900], [3000, 3000, 3000]], "diag", channels="RGB")  # fmt: skip
    return skin, nonskin


def sigmoid_reference(z):
    """The posterior from the log odds with Python floats (exact enough, never 0/0)."""
    out = []
    for v in np.asarray(z, dtype=np.float64).reshape(-1):
        if math.isnan(v):
            out.append(math.nan)
        elif v >= 0:
            out.append(1.0 / (1.0 + math.exp(-v)))
        else:
            e = math.exp(v)
            out.append(e / (1.0 + e))
    return np.array(out).reshape(np.shape(z))


# -- construction ---------------------------------------------------------------------------


def test_defaults_are_jones_rehg():
    det = pixgmm.SkinDetector()
    assert det.skin == jones_rehg_skin()
    assert det.nonskin == jones_rehg_nonskin()
    assert det.prior == 0.5
    assert det.log_prior_odds == 0.0
    assert "SkinDetector(skin=Mixture(n_components=16" in repr(det)


def test_models_may_be_sklearn_kernels_or_histograms(rng):
    sk = pytest.importorskip("sklearn.mixture")
    X = rng.normal(150, 20, size=(300, 3))
    gmm = sk.GaussianMixture(2, covariance_type="full", random_state=0).fit(X)
    det = pixgmm.SkinDetector(gmm, [(np.full(3, 100.0), np.full(3, 400.0), 1.0)])
    assert det.skin == pixgmm.Mixture.from_sklearn(gmm)
    hist = pixgmm.HistogramModel.fit(X.clip(0, 255), bins=8)
    assert pixgmm.SkinDetector(hist, hist).skin is hist


def test_log_ratio_of_sklearn_mixtures_equals_score_samples_difference(rng):
    sk = pytest.importorskip("sklearn.mixture")
    skin_px = rng.normal([190, 130, 100], 20, size=(400, 3))
    other_px = rng.uniform(0, 255, size=(600, 3))
    a = sk.GaussianMixture(3, covariance_type="full", random_state=0).fit(skin_px)
    b = sk.GaussianMixture(4, covariance_type="diag", random_state=0).fit(other_px)
    det = pixgmm.SkinDetector(a, b, prior=0.3)
    X = rng.uniform(0, 255, size=(300, 3))
    expected = a.score_samples(X) - b.score_samples(X)
    np.testing.assert_allclose(det.log_ratio(X), expected, rtol=0, atol=1e-9)
    # the posterior is Bayes' rule on scikit-learn's densities
    pa, pb = np.exp(a.score_samples(X)), np.exp(b.score_samples(X))
    np.testing.assert_allclose(det.probability(X), 0.3 * pa / (0.3 * pa + 0.7 * pb), rtol=1e-9)


@pytest.mark.parametrize("prior", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_bad_prior_is_a_value_error_naming_prior(prior):
    with pytest.raises(ValueError, match=r"prior must be a probability in \(0, 1\)"):
        pixgmm.SkinDetector(prior=prior)


def test_prior_type_and_model_errors():
    with pytest.raises(TypeError, match="prior must be a number"):
        pixgmm.SkinDetector(prior="half")
    with pytest.raises(TypeError, match="prior must be a number"):
        pixgmm.SkinDetector(prior="0.5")
    with pytest.raises(TypeError, match="skin must be"):
        pixgmm.SkinDetector(skin="jones")
    two = pixgmm.Mixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
    with pytest.raises(ValueError, match="skin has 3 features but nonskin has 2"):
        pixgmm.SkinDetector(nonskin=two)


# -- log ratio and posterior ----------------------------------------------------------------


@pytest.mark.parametrize("method", ["auto", "direct", "separable", "table"])
def test_log_ratio_matches_reference(rng, method):
    det = pixgmm.SkinDetector()
    img = rng.integers(0, 256, size=(7, 9, 3), dtype=np.uint8)
    got = det.log_ratio(img, method=method)
    X = img.reshape(-1, 3)
    expected = ref.log_ratio(X, det.skin, det.nonskin, terms=ref.log_terms_scipy)
    np.testing.assert_allclose(got.reshape(-1), expected, rtol=0, atol=1e-9)
    assert got.shape == (7, 9) and got.dtype == np.float64


def test_channel_order_declared(rng):
    det = pixgmm.SkinDetector()
    rgb = rng.integers(0, 256, size=(5, 6, 3), dtype=np.uint8)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_allclose(det.log_ratio(bgr, channels="BGR"), det.log_ratio(rgb), atol=1e-9)
    chw = np.moveaxis(bgr, -1, 0)
    np.testing.assert_allclose(
        det.log_ratio(chw, channels="BGR", channel_axis=0), det.log_ratio(rgb), atol=1e-9
    )
    assert not np.allclose(det.log_ratio(bgr), det.log_ratio(rgb))
    with pytest.raises(ValueError, match="does not name the same channels"):
        det.log_ratio(rgb, channels="HSV")


@pytest.mark.parametrize("prior", [0.5, 0.1, 0.9, 1e-6])
def test_probability_is_sigmoid_of_log_odds(rng, prior):
    skin, nonskin = small_pair()
    det = pixgmm.SkinDetector(skin, nonskin, prior=prior)
    X = rng.uniform(0, 255, size=(200, 3))
    lr = det.log_ratio(X)
    p = det.probability(X)
    np.testing.assert_allclose(p, sigmoid_reference(lr + math.log(prior / (1 - prior))), rtol=1e-12)
    # Bayes' rule directly on the densities (where they do not underflow)
    ps, pn = pixgmm.density(X, skin), pixgmm.density(X, nonskin)
    np.testing.assert_allclose(p, prior * ps / (prior * ps + (1 - prior) * pn), rtol=1e-9)


def test_probability_far_from_both_models_is_never_nan():
    skin, nonskin = small_pair()
    det = pixgmm.SkinDetector(skin, nonskin)
    # far away both densities underflow to exactly 0, so the naive ratio is 0/0
    X = np.array([[1e6, 1e6, 1e6], [-1e6, -1e6, -1e6], [1e154, 0.0, 0.0]])
    assert (pixgmm.density(X, skin) == 0).all() and (pixgmm.density(X, nonskin) == 0).all()
    p = det.probability(X)
    assert np.isfinite(p).all()
    # the wider non-skin model wins far away
    np.testing.assert_array_equal(p, [0.0, 0.0, 0.0])
    # float32 output, extreme log ratios: exactly 0 and 1, no overflow warning
    with np.errstate(all="raise"):
        p32 = det.probability(np.array([[190.0, 130, 100], [1e5, 0, 0]], np.float32))
    assert p32.dtype == np.float32
    assert 0.5 < p32[0] < 1 and p32[1] == 0.0


def test_probability_with_infinite_and_nan_log_ratios():
    # unsmoothed histograms: zero density gives +-inf log ratios, and 0/0 gives NaN
    a = pixgmm.HistogramModel([[[1.0, 0.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]], smoothing=0)
    b = pixgmm.HistogramModel([[[0.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]], smoothing=0)
    det = pixgmm.SkinDetector(a, b, prior=0.3)
    X = np.array([[10, 10, 10], [10, 10, 200], [200, 200, 200], [200, 10, 10]], np.uint8)
    lr = det.log_ratio(X)
    assert lr[0] == np.inf and lr[1] == -np.inf and lr[2] == 0.0 and np.isnan(lr[3])
    p = det.probability(X)
    assert p[0] == 1.0 and p[1] == 0.0 and p[2] == pytest.approx(0.3) and np.isnan(p[3])
    assert det.mask(X).tolist() == [True, False, False, False]


def test_probability_out_and_read_only_input(rng):
    skin, nonskin = small_pair()
    det = pixgmm.SkinDetector(skin, nonskin, prior=0.2)
    X = rng.uniform(0, 255, size=(4, 5, 3))
    X.setflags(write=False)
    out = np.empty((4, 5))
    res = det.probability(X, out=out)
    assert res is out
    np.testing.assert_allclose(out, det.probability(X))
    assert det.probability(X, dtype=np.float32).dtype == np.float32


def test_nan_pixels():
    det = pixgmm.SkinDetector(*small_pair())
    X = np.array([[190.0, 130, 100], [np.nan, 0, 0]])
    assert np.isnan(det.log_ratio(X)[1]) and np.isnan(det.probability(X)[1])
    assert det.mask(X).tolist() == [True, False]
    assert det.mask(X, ratio=0).tolist() == [True, False]


# -- masks ----------------------------------------------------------------------------------


def test_mask_thresholds(rng):
    det = pixgmm.SkinDetector(*small_pair(), prior=0.25)
    X = rng.uniform(0, 255, size=(500, 3))
    lr = det.log_ratio(X)
    p = det.probability(X)
    # default: the Bayes decision under the prior, P(skin | x) >= 0.5
    np.testing.assert_array_equal(det.mask(X), lr + math.log(1 / 3) >= 0)
    np.testing.assert_array_equal(det.mask(X), p >= 0.5)
    for theta in (0.1, 1.0, 3.0, 250.0):
        np.testing.assert_array_equal(det.mask(X, ratio=theta), lr >= math.log(theta))
    for q in (0.05, 0.5, 0.9):
        got = det.mask(X, probability=q)
        away = np.abs(p - q) > 1e-9  # rounding may decide pixels within 1e-9 of q either way
        np.testing.assert_array_equal(got[away], (p >= q)[away])
    # the extremes
    assert det.mask(X, ratio=0).all()
    assert det.mask(X, probability=0).all()
    assert not det.mask(X, ratio=math.inf).any()
    assert not det.mask(X, probability=1).any()
    # a ratio threshold ignores the prior
    other = pixgmm.SkinDetector(*small_pair(), prior=0.9)
    np.testing.assert_array_equal(other.mask(X, ratio=2.0), det.mask(X, ratio=2.0))


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"ratio": 2.0, "probability": 0.5}, ValueError, "not ratio= and probability= together"),
        ({"ratio": -1.0}, ValueError, "ratio must be a likelihood ratio >= 0"),
        ({"ratio": float("nan")}, ValueError, "ratio must be"),
        ({"ratio": "2"}, TypeError, "ratio must be a number"),
        ({"probability": "0.5"}, TypeError, "probability must be a number"),
        ({"probability": True}, TypeError, "probability must be a number"),
        ({"ratio": [1, 2]}, TypeError, "ratio must be a number"),
        ({"probability": 1.5}, ValueError, r"probability must be a probability in \[0, 1\]"),
        ({"probability": -0.1}, ValueError, "probability must be"),
        ({"probability": None, "ratio": None, "channel_axis": 5}, ValueError, "channel_axis=5"),
    ],
)
def test_mask_bad_thresholds(kwargs, exc, match):
    det = pixgmm.SkinDetector()
    with pytest.raises(exc, match=match):
        det.mask(np.zeros((2, 2, 3), np.uint8), **kwargs)


def test_big_uint8_mask_through_boolean_table_equals_float_path(rng):
    det = pixgmm.SkinDetector()
    img = rng.integers(0, 256, size=(1024, 1024, 3), dtype=np.uint8)  # 2**20 pixels
    img[:8, :8] = SKIN_RGB[::-1]
    got = det.mask(img, channels="BGR", ratio=2.0)
    lr = det.log_ratio(img, channels="BGR")
    np.testing.assert_array_equal(got, lr >= math.log(2.0))
    assert got[:8, :8].all()
    # the boolean table is cached: a small image now uses it and agrees too
    small = img[:40, :50].copy()
    np.testing.assert_array_equal(
        det.mask(small, channels="BGR", ratio=2.0),
        det.log_ratio(small, channels="BGR", method="direct") >= math.log(2.0),
    )


def test_jones_rehg_classifies_obvious_colours():
    det = pixgmm.SkinDetector()
    rgb = np.array([[SKIN_RGB, SKY_RGB, [30, 160, 40]]], np.uint8)
    assert det.mask(rgb).tolist() == [[True, False, False]]
    assert det.mask(rgb[..., ::-1], channels="BGR").tolist() == [[True, False, False]]


# -- thresholds from labelled pixels --------------------------------------------------------


def labelled_pixels(rng, n=600):
    y = rng.random(n) < 0.4
    X = np.where(
        y[:, None],
        rng.normal([190, 130, 100], 18, size=(n, 3)),
        rng.normal([110, 110, 130], 50, size=(n, 3)),
    )
    return X.clip(0, 255).round().astype(np.uint8), y


@pytest.mark.parametrize("fpr", [0.0, 0.02, 0.05, 0.1, 0.5])
def test_threshold_for_fpr_reproduces_the_rate(rng, fpr):
    det = pixgmm.SkinDetector(*small_pair())
    X, y = labelled_pixels(rng)
    theta = det.threshold_for_fpr(X, y, fpr, method="direct")
    mask = det.mask(X, ratio=theta, method="direct")
    got_fpr = np.count_nonzero(mask & ~y) / np.count_nonzero(~y)
    got_tpr = np.count_nonzero(mask & y) / np.count_nonzero(y)
    assert got_fpr <= fpr
    expected_tpr, t = tpr_at_fpr(det.log_ratio(X, method="direct"), y, fpr)
    assert got_tpr == pytest.approx(expected_tpr)
    # theta is the ratio of the log-ratio threshold, rounded so that it never admits more
    assert theta >= 0
    if 0 < theta < math.inf:
        assert math.log(theta) <= t


def test_threshold_for_fpr_with_uci_style_labels(rng):
    det = pixgmm.SkinDetector(*small_pair())
    X, y = labelled_pixels(rng)
    labels12 = np.where(y, 1, 2)
    a = det.threshold_for_fpr(X, labels12, 0.05, positive=1, method="direct")
    b = det.threshold_for_fpr(X, y, 0.05, method="direct")
    assert a == b
    # an image and a mask of its spatial shape
    c = det.threshold_for_fpr(X.reshape(20, 30, 3), y.reshape(20, 30), 0.05, method="direct")
    assert c == b


def test_threshold_for_fpr_bad_labels(rng):
    det = pixgmm.SkinDetector(*small_pair())
    X, y = labelled_pixels(rng, n=20)
    with pytest.raises(ValueError, match="labels must be binary"):
        det.threshold_for_fpr(X, np.arange(20) % 3, 0.05)
    with pytest.raises(ValueError, match="labels has no negative"):
        det.threshold_for_fpr(X, np.ones(20, bool), 0.05)
    with pytest.raises(ValueError, match=r"labels has shape \(10,\) but pixels has spatial"):
        det.threshold_for_fpr(X, y[:10], 0.05)
    # a mask of the right size but the wrong shape (transposed) is refused, not reinterpreted
    with pytest.raises(ValueError, match=r"labels has shape \(5, 4\).*\(4, 5\)"):
        det.threshold_for_fpr(X.reshape(4, 5, 3), y.reshape(5, 4), 0.05)
    with pytest.raises(ValueError, match="fpr must be in"):
        det.threshold_for_fpr(X, y, 5)


def test_dask_image_is_not_computed_when_the_engine_is_chosen():
    da = pytest.importorskip("dask.array")
    calls = []

    def spy(block):
        calls.append(block.shape)
        return block

    img = np.random.default_rng(3).integers(0, 256, size=(64, 48, 3), dtype=np.uint8)
    lazy = da.from_array(img, chunks=(32, 24, 3)).map_blocks(spy, dtype=np.uint8)
    before = len(calls)
    det = pixgmm.SkinDetector()
    lr = det.log_ratio(lazy, channels="BGR")
    prob = det.probability(lazy, channels="BGR")
    assert len(calls) == before  # nothing computed yet
    np.testing.assert_allclose(lr.compute(), det.log_ratio(img, channels="BGR"), atol=1e-12)
    np.testing.assert_allclose(prob.compute(), det.probability(img, channels="BGR"), atol=1e-12)


def far_apart_pair():
    """1-D models whose log ratio reaches -+thousands: skin N(0, 1), non-skin N(0, 100)."""
    skin = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    nonskin = pixgmm.Mixture([1.0], [[0.0]], [100.0], "spherical")
    return pixgmm.SkinDetector(skin, nonskin)


def test_log_ratio_threshold_where_the_ratio_underflows():
    det = far_apart_pair()
    x = np.array([0.0, 0.5, 1.0, 3.0, 10.0, 40.0, 45.0, 50.0])
    y = np.array([1, 1, 1, 0, 0, 0, 1, 0], bool)
    lr = det.log_ratio(x, channel_axis=None)
    assert lr[6] < -745  # exp(lr) is 0.0 in float64
    # allowing 3 of 4 false positives puts the threshold at the positive at x=45
    t = det.threshold_for_fpr(x, y, 0.75, log=True, channel_axis=None)
    assert t == lr[6]
    mask = det.mask(x, log_ratio=t, channel_axis=None)
    assert mask.tolist() == [True] * 7 + [False]
    # as a plain ratio it would be 0.0 and admit x=50 as well: refused, pointing to log=True
    with pytest.raises(ValueError, match="pass log=True"):
        det.threshold_for_fpr(x, y, 0.75, channel_axis=None)


def test_log_ratio_threshold_where_the_ratio_overflows():
    det = far_apart_pair()
    # the same models swapped: now far pixels have log ratios in the thousands
    det = pixgmm.SkinDetector(det.nonskin, det.skin)
    x = np.array([0.0, 3.0, 40.0, 45.0, 50.0, 60.0])
    y = np.array([0, 0, 1, 0, 1, 1], bool)
    lr = det.log_ratio(x, channel_axis=None)
    assert lr[2] > 710  # exp(lr) overflows
    t = det.threshold_for_fpr(x, y, 0.0, log=True, channel_axis=None)
    assert t == lr[4]
    assert det.mask(x, log_ratio=t, channel_axis=None).tolist() == [False] * 4 + [True] * 2
    with pytest.raises(ValueError, match="pass log=True"):
        det.threshold_for_fpr(x, y, 0.0, channel_axis=None)
    # a threshold that needs no separation from a lower score is still returned as a ratio
    assert det.threshold_for_fpr(x, y, 1.0, channel_axis=None) == pytest.approx(math.exp(lr[0]))


def test_log_ratio_threshold_keyword(rng):
    det = pixgmm.SkinDetector(*small_pair())
    X = rng.uniform(0, 255, size=(300, 3))
    lr = det.log_ratio(X)
    for t in (-5.0, 0.0, 2.5, math.inf, -math.inf):
        np.testing.assert_array_equal(det.mask(X, log_ratio=t), lr >= t)
    np.testing.assert_array_equal(det.mask(X, log_ratio=math.log(3.0)), det.mask(X, ratio=3.0))
    with pytest.raises(ValueError, match="not probability= and log_ratio= together"):
        det.mask(X, log_ratio=0.0, probability=0.5)
    with pytest.raises(ValueError, match="log_ratio must be a number"):
        det.mask(X, log_ratio=float("nan"))
    with pytest.raises(TypeError, match="log_ratio must be a number"):
        det.mask(X, log_ratio="0")


def test_dask_log_ratio_and_probability_computed_together():
    # both graphs hold the same log-ratio blocks; the posterior must not overwrite them
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    det = pixgmm.SkinDetector(*small_pair(), prior=0.3)
    img = np.random.default_rng(4).uniform(0, 255, size=(40, 30, 3))
    lazy = da.from_array(img, chunks=(20, 15, 3))
    lr, p = dask.compute(det.log_ratio(lazy), det.probability(lazy))
    np.testing.assert_allclose(lr, det.log_ratio(img), rtol=1e-12)
    np.testing.assert_allclose(p, det.probability(img), rtol=1e-12)
