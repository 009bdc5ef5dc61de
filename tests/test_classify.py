"""Classifier: per-pixel Bayes classification over mixtures and histograms."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special

import pixgmm
import reference as ref


def three_classes():
    water = pixgmm.Mixture(
        [1.0], [[20.0, 10.0, 60.0]], [[25.0, 25.0, 80.0]], "diag", channels="RGB"
    )
    crops = pixgmm.Mixture(
        [0.6, 0.4], [[120.0, 40.0, 30.0], [90.0, 60.0, 40.0]], [[400.0, 100.0, 90.0], [200.0, 150.0, 90.0]],
        "diag", channels="RGB",
    )  # fmt: skip
    urban = pixgmm.Mixture(
        [1.0], [[128.0, 128.0, 128.0]], [[[900.0, 300.0, 0.0], [300.0, 900.0, 0.0], [0.0, 0.0, 900.0]]],
        "full", channels="RGB",
    )  # fmt: skip
    return {"water": water, "crops": crops, "urban": urban}


def reference_log_posterior(X, models, priors):
    scores = np.stack(
        [
            np.log(p) + ref.log_density(X, m, terms=ref.log_terms_scipy)
            for m, p in zip(models.values(), priors)
        ],
        axis=-1,
    )
    return scores - scipy.special.logsumexp(scores, axis=-1, keepdims=True)


@pytest.mark.parametrize("priors", [None, [0.2, 0.5, 0.3], {"urban": 2, "water": 1, "crops": 1}])
def test_log_posterior_matches_reference(rng, priors):
    models = three_classes()
    clf = pixgmm.Classifier(models, priors=priors)
    if priors is None:
        p = np.full(3, 1 / 3)
    elif isinstance(priors, dict):
        p = np.array([priors[k] for k in models], float) / 4
    else:
        p = np.array(priors)
    np.testing.assert_allclose(clf.priors, p)
    X = rng.uniform(0, 255, size=(6, 7, 3))
    lp = clf.log_posterior(X)
    assert lp.shape == (6, 7, 3)
    expected = reference_log_posterior(X.reshape(-1, 3), models, p)
    np.testing.assert_allclose(lp.reshape(-1, 3), expected, rtol=1e-9, atol=1e-9)
    prob = clf.probability(X)
    np.testing.assert_allclose(prob.sum(axis=-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(prob, np.exp(lp))
    labels = clf.predict(X)
    np.testing.assert_array_equal(labels, np.asarray(clf.labels)[np.argmax(lp, axis=-1)])
    assert labels.dtype.kind == "U"


def test_matches_sklearn_quadratic_discriminant_analysis(rng):
    da = pytest.importorskip("sklearn.discriminant_analysis")
    X = np.concatenate(
        [
            rng.multivariate_normal([60, 80, 90], [[90, 30, 0], [30, 80, 10], [0, 10, 60]], 300),
            rng.multivariate_normal(
                [150, 110, 70], [[200, -40, 0], [-40, 100, 0], [0, 0, 50]], 150
            ),
            rng.multivariate_normal([100, 100, 160], np.diag([300, 300, 100]), 100),
        ]
    )
    y = np.repeat([0, 1, 2], [300, 150, 100])
    qda = da.QuadraticDiscriminantAnalysis(store_covariance=True).fit(X, y)
    models = {
        c: pixgmm.Mixture([1.0], qda.means_[i][None], qda.covariance_[i][None], "full")
        for i, c in enumerate(qda.classes_)
    }
    clf = pixgmm.Classifier(models, priors=qda.priors_)
    test = rng.uniform(0, 255, size=(500, 3))
    np.testing.assert_allclose(clf.probability(test), qda.predict_proba(test), atol=1e-9)
    np.testing.assert_array_equal(clf.predict(test), qda.predict(test))


def test_matches_per_class_sklearn_gaussian_mixtures(rng):
    mixture = pytest.importorskip("sklearn.mixture")
    X = rng.uniform(0, 255, size=(400, 3))
    y = (X[:, 0] > X[:, 2]).astype(int)
    gmms = {
        c: mixture.GaussianMixture(3, covariance_type="full", random_state=0).fit(X[y == c])
        for c in (0, 1)
    }
    priors = np.bincount(y) / y.size
    clf = pixgmm.Classifier(gmms, priors=priors)
    scores = np.stack([gmms[c].score_samples(X) + np.log(priors[c]) for c in (0, 1)], axis=-1)
    expected = scores - scipy.special.logsumexp(scores, axis=-1, keepdims=True)
    np.testing.assert_allclose(clf.log_posterior(X), expected, atol=1e-9)


def test_uint8_engines_agree(rng):
    clf = pixgmm.Classifier(three_classes())
    img = rng.integers(0, 256, size=(20, 30, 3), dtype=np.uint8)
    direct = clf.log_posterior(img, method="direct")
    np.testing.assert_allclose(clf.log_posterior(img), direct, atol=1e-9)
    np.testing.assert_array_equal(clf.predict(img), clf.predict(img, method="direct"))
    f32 = clf.probability(img, dtype=np.float32, method="direct")
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, np.exp(direct), atol=1e-5)


def test_channel_order_and_axis(rng):
    clf = pixgmm.Classifier(three_classes())
    rgb = rng.uniform(0, 255, size=(5, 6, 3))
    bgr = rgb[..., ::-1]
    expected = clf.log_posterior(rgb)
    np.testing.assert_allclose(clf.log_posterior(bgr, channels="BGR"), expected, atol=1e-12)
    np.testing.assert_allclose(
        clf.log_posterior(np.moveaxis(bgr, -1, 0), channels="BGR", channel_axis=0),
        expected,
        atol=1e-12,
    )


def test_far_from_every_class_is_exact():
    a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    clf = pixgmm.Classifier({0: a, 1: b})
    x = np.array([1e3, -1e3, 2.0])
    # densities underflow to 0 at +-1000, yet the posterior is exact in log space
    assert (pixgmm.density(x, a, channel_axis=None)[:2] == 0).all()
    lp = clf.log_posterior(x, channel_axis=None)
    np.testing.assert_allclose(lp[0], [-(1e3**2 - 996**2) / 2, 0.0])
    np.testing.assert_allclose(lp[1], [0.0, -(1004**2 - 1e3**2) / 2])
    np.testing.assert_allclose(lp[2], np.log([0.5, 0.5]))
    assert clf.predict(x, channel_axis=None).tolist() == [1, 0, 0]  # a tie goes to the first


def test_histograms_and_mixtures_together(rng):
    px = rng.integers(0, 256, size=(2000, 3), dtype=np.uint8)
    hist = pixgmm.HistogramModel.fit(px[px[:, 0] > 128], bins=16, smoothing=1.0, channels="RGB")
    mix = pixgmm.Mixture(
        [1.0], [[60.0, 128.0, 128.0]], [[900.0, 4000.0, 4000.0]], "diag", channels="RGB"
    )
    clf = pixgmm.Classifier({"bright": hist, "dark": mix})
    X = px[:50]
    scores = np.stack([pixgmm.log_density(X, hist), pixgmm.log_density(X, mix)], axis=-1) + np.log(
        0.5
    )
    expected = scores - scipy.special.logsumexp(scores, axis=-1, keepdims=True)
    np.testing.assert_allclose(clf.log_posterior(X), expected, atol=1e-12)
    np.testing.assert_array_equal(
        clf.predict(X), np.array(["bright", "dark"])[np.argmax(expected, axis=-1)]
    )


def test_unclassifiable_pixels():
    # unsmoothed histograms: a colour in no bin of any class, and NaN pixels
    a = pixgmm.HistogramModel([[1.0, 0.0], [0.0, 0.0]], smoothing=0)
    b = pixgmm.HistogramModel([[0.0, 1.0], [0.0, 0.0]], smoothing=0)
    clf = pixgmm.Classifier({1: a, 2: b})
    X = np.array([[10.0, 10.0], [10.0, 200.0], [200.0, 200.0], [np.nan, 10.0]])
    lp = clf.log_posterior(X)
    np.testing.assert_array_equal(lp[:2], [[0.0, -np.inf], [-np.inf, 0.0]])
    assert np.isnan(lp[2:]).all()
    assert np.isnan(clf.probability(X)[2:]).all()
    with pytest.raises(ValueError, match=r"2 pixel\(s\) cannot be classified.*fill="):
        clf.predict(X)
    assert clf.predict(X, fill=0).tolist() == [1, 2, 0, 0]


@pytest.mark.parametrize(
    ("priors", "exc", "match"),
    [
        ([0.5, 0.0, 0.5], ValueError, "the prior of class 'crops' is 0.0"),
        ([0.5, -1.0, 0.5], ValueError, "priors must be finite and positive"),
        ([0.5, np.nan, 0.5], ValueError, "finite and positive"),
        ({"water": 1, "crops": 1}, ValueError, r"missing \['urban'\]"),
        ({"water": 1, "crops": 1, "urban": 1, "sea": 1}, ValueError, r"unknown \['sea'\]"),
        ([0.5, 0.5], ValueError, "priors has 2 value"),
        (["a", "b", "c"], TypeError, "priors must be numbers"),
        (0.5, TypeError, "priors must be None, a dict"),
    ],
)
def test_bad_priors(priors, exc, match):
    with pytest.raises(exc, match=match):
        pixgmm.Classifier(three_classes(), priors=priors)


def test_bad_models():
    with pytest.raises(TypeError, match="models must be a dict"):
        pixgmm.Classifier([pixgmm.models.jones_rehg_skin()])
    with pytest.raises(ValueError, match="models is empty"):
        pixgmm.Classifier({})
    with pytest.raises(TypeError, match=r"models\['b'\] must be"):
        pixgmm.Classifier({"a": pixgmm.models.jones_rehg_skin(), "b": "skin"})
    two = pixgmm.Mixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
    with pytest.raises(ValueError, match=r"models\['a'\] has 3 features but models\['b'\] has 2"):
        pixgmm.Classifier({"a": pixgmm.models.jones_rehg_skin(), "b": two})


def test_attributes_are_read_only():
    clf = pixgmm.Classifier(three_classes(), priors=[1, 1, 2])
    assert clf.labels == ("water", "crops", "urban")
    with pytest.raises(TypeError):
        clf.models["sea"] = None
    clf.priors[0] = 99.0
    np.testing.assert_allclose(clf.priors, [0.25, 0.25, 0.5])
    assert repr(clf) == "Classifier(labels=['water', 'crops', 'urban'], priors=[0.25, 0.25, 0.5])"


def spectral_classes(rng, d=5):
    """Four classes of d bands, one per covariance type, with different component counts."""
    out = {}
    for label, (k, kind) in zip(
        (3, 1, 7, 2), ((2, "full"), (1, "diag"), (3, "spherical"), (2, "tied"))
    ):
        means = rng.uniform(500, 3500, (k, d))
        a = rng.normal(0, 1, (d, d))
        full = (a @ a.T + d * np.eye(d)) * rng.uniform(2e3, 2e4)
        cov = {
            "full": np.stack([full * (1 + j) for j in range(k)]),
            "diag": rng.uniform(1e3, 3e4, (k, d)),
            "spherical": rng.uniform(1e3, 3e4, k),
            "tied": full,
        }[kind]
        out[label] = pixgmm.Mixture(rng.dirichlet(np.ones(k)), means, cov, kind)
    return out


@pytest.mark.parametrize("dtype", [np.uint16, np.float32, np.float64])
def test_one_pass_over_every_class_matches_reference(rng, dtype, monkeypatch):
    """Predict and confidence on images the direct engine takes compute every class in one
    kernel (_engine.classes.pixels_kernel); they must equal the per-class reference."""
    from pixgmm._engine import classes

    models = spectral_classes(rng)
    priors = {3: 0.4, 1: 0.3, 7: 0.3, 2: 1e-300}  # a tiny prior: that class never wins
    clf = pixgmm.Classifier(models, priors=priors)
    X = rng.uniform(0, 4000, (37, 29, 5)).astype(dtype)
    if dtype != np.uint16:
        X[3, 4, 2] = np.nan
    calls = []
    real = classes.pixels_kernel
    monkeypatch.setattr(classes, "pixels_kernel", lambda d: calls.append(d) or real(d))
    labels, conf = clf.predict(X, fill=-1, return_confidence=True, dtype=np.float64)
    assert calls == [5], "the one-pass kernel was not used"
    p = np.array([priors[k] for k in models])
    with np.errstate(divide="ignore"):
        expected = reference_log_posterior(X.reshape(-1, 5).astype(float), models, p)
    flat_labels, flat_conf = labels.reshape(-1), conf.reshape(-1)
    ok = ~np.isnan(X.reshape(-1, 5)).any(axis=1)
    np.testing.assert_array_equal(
        flat_labels[ok], np.asarray(clf.labels)[np.argmax(expected[ok], axis=-1)]
    )
    assert (flat_labels[~ok] == -1).all() and np.isnan(flat_conf[~ok]).all()
    assert 2 not in set(flat_labels.tolist())
    assert labels.dtype == np.int8 and conf.dtype == np.float64
    np.testing.assert_allclose(flat_conf[ok], np.exp(expected[ok].max(axis=-1)), rtol=1e-12)
    # and the same as the per-class path (one log_density per class, then the scores)
    lp = clf.log_posterior(X).reshape(-1, 4)
    np.testing.assert_array_equal(
        flat_labels[ok], np.asarray(clf.labels)[np.argmax(lp[ok], axis=-1)]
    )
    # (a float32 log_posterior is rounded before the exp; the one pass rounds only at the end)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(flat_conf[ok], np.exp(lp[ok].max(axis=-1)), rtol=rtol)
    # the default map dtype is float32: the float64 map, rounded once
    default = clf.confidence(X)
    assert default.dtype == np.float32
    np.testing.assert_array_equal(default, conf.astype(np.float32))
