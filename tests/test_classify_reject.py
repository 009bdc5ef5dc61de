"""Classification as remote-sensing users run it: reject options, confidence, count priors,
separability. Every number is checked against an independent computation (SciPy, NumPy
loops, numerical integration), not against pixgmm itself."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.integrate
import scipy.spatial.distance
import scipy.stats

import pixgmm
from pixgmm.evaluate import min_mahalanobis


def _classes(rng, d=3):
    def spd():
        a = rng.normal(size=(d, d))
        return a @ a.T + d * np.eye(d)

    water = pixgmm.Mixture([1.0], [np.full(d, 20.0)], [spd() * 4], "full")
    crops = pixgmm.Mixture(
        [0.3, 0.7], [np.full(d, 90.0), np.full(d, 120.0)], [spd() * 9, spd() * 16], "full"
    )
    urban = pixgmm.Mixture([1.0], [np.full(d, 200.0)], [np.full(d, 300.0)], "diag")
    return {"water": water, "crops": crops, "urban": urban}


def _reference_d2(x, model):
    """Squared Mahalanobis distance to the nearest component, by SciPy, pixel by pixel."""
    covs = model.full_covariances()
    out = np.empty(len(x))
    for i, p in enumerate(x):
        out[i] = min(
            scipy.spatial.distance.mahalanobis(p, mu, np.linalg.inv(c)) ** 2
            for mu, c in zip(model.means, covs)
        )
    return out


def test_min_mahalanobis_against_scipy(rng):
    models = _classes(rng)
    x = rng.uniform(0, 255, (300, 3))
    for m in models.values():
        np.testing.assert_allclose(min_mahalanobis(x, m), _reference_d2(x, m), rtol=1e-9)
    x[3, 1] = np.nan
    assert np.isnan(min_mahalanobis(x, models["water"])[3])


def test_confidence_is_the_winning_posterior(rng):
    clf = pixgmm.Classifier(_classes(rng), priors=[1, 2, 3])
    x = rng.uniform(0, 255, (500, 3))
    x[7] = np.nan
    prob = clf.probability(x)
    conf = clf.confidence(x, dtype=np.float64)
    np.testing.assert_allclose(conf[np.arange(500) != 7], prob.max(axis=-1)[np.arange(500) != 7])
    assert np.isnan(conf[7])
    assert conf.dtype == np.float64
    default = clf.confidence(x)  # float32 unless asked
    assert default.dtype == np.float32
    np.testing.assert_array_equal(default, conf.astype(np.float32))


def test_min_probability_rejects_exactly_the_unsure_pixels(rng):
    clf = pixgmm.Classifier(_classes(rng))
    x = rng.uniform(0, 255, (2000, 3))
    plain = clf.predict(x)
    conf = clf.probability(x).max(axis=-1)
    for p in (0.6, 0.9, 0.999):
        got = clf.predict(x, min_probability=p, reject="unclassified")
        unsure = conf < p
        assert unsure.any() and (~unsure).any()
        assert (got[unsure] == "unclassified").all()
        np.testing.assert_array_equal(got[~unsure], plain[~unsure])


def test_chi2_level_rejects_pixels_beyond_the_contour_of_their_class(rng):
    models = _classes(rng)
    clf = pixgmm.Classifier(models)
    x = np.concatenate([rng.uniform(0, 255, (1500, 3)), [[20.0, 20.0, 20.0]]])
    plain = clf.predict(x)
    level = 0.99
    got = clf.predict(x, chi2_level=level, reject="far")
    threshold = scipy.stats.chi2.ppf(level, 3)
    d2 = np.array([_reference_d2(x[i : i + 1], models[lab])[0] for i, lab in enumerate(plain)])
    far = d2 > threshold
    assert far.any() and (~far).any()
    assert (got[far] == "far").all()
    np.testing.assert_array_equal(got[~far], plain[~far])
    assert got[-1] == "water"  # a class mean is never rejected


def test_chi2_level_rejects_about_one_minus_level_of_a_class_own_pixels(rng):
    # the definition behind i.maxlik's reject threshold, for a one-component class
    water = _classes(rng)["water"]
    clf = pixgmm.Classifier({"water": water})
    x = rng.multivariate_normal(water.means[0], water.covariances[0], size=200_000)
    rejected = clf.predict(x, chi2_level=0.95, reject="r") == "r"
    assert abs(rejected.mean() - 0.05) < 0.003


def test_reject_options_are_checked(rng):
    clf = pixgmm.Classifier(_classes(rng))
    x = rng.uniform(0, 255, (5, 3))
    with pytest.raises(ValueError, match="pass reject="):
        clf.predict(x, min_probability=0.5)
    with pytest.raises(ValueError, match=r"0 < min_probability <= 1"):
        clf.predict(x, min_probability=0.0, reject=-1)
    with pytest.raises(ValueError, match=r"0 < chi2_level < 1"):
        clf.predict(x, chi2_level=1.0, reject=-1)
    with pytest.raises(TypeError, match="min_probability must be a number"):
        clf.predict(x, min_probability="high", reject=-1)
    hist = pixgmm.HistogramModel.fit(rng.integers(0, 256, (500, 3)), bins=8)
    mixed = pixgmm.Classifier({"h": hist, "m": _classes(rng)["urban"]})
    with pytest.raises(ValueError, match="chi2_level needs Gaussian mixtures; class 'h'"):
        mixed.predict(x, chi2_level=0.9, reject=-1)
    # min_probability works with any model
    assert mixed.predict(x, min_probability=0.5, reject="?").shape == (5,)


def test_reject_and_confidence_on_dask_equal_numpy(rng):
    da = pytest.importorskip("dask.array")
    clf = pixgmm.Classifier(_classes(rng))
    img = rng.uniform(0, 255, (37, 41, 3))
    img[3, 4, 1] = np.nan
    lazy = da.from_array(img, chunks=(10, 9, 3))
    kw = {"min_probability": 0.8, "chi2_level": 0.99, "reject": "r", "fill": "nan"}
    got = clf.predict(lazy, **kw)
    assert isinstance(got, da.Array)
    np.testing.assert_array_equal(got.compute(), clf.predict(img, **kw))
    np.testing.assert_array_equal(clf.confidence(lazy).compute(), clf.confidence(img))


def test_priors_from_training_counts(rng):
    from pixgmm import fitting

    a = rng.normal(50, 5, (3000, 2))
    b = rng.normal(150, 5, (1000, 2))
    pixels = np.concatenate([a, b])
    labels = np.repeat(["a", "b"], [3000, 1000])
    results = fitting.fit_classes_em(pixels, labels, 1, init="random")
    clf = pixgmm.Classifier(results, priors="counts")
    np.testing.assert_allclose(clf.priors, [0.75, 0.25])
    assert clf.models["a"] == results["a"].mixture
    hist = {
        "a": pixgmm.HistogramModel.fit(a, bins=8),
        "b": pixgmm.HistogramModel.fit(b, bins=8),
    }
    np.testing.assert_allclose(pixgmm.Classifier(hist, priors="counts").priors, [0.75, 0.25])
    with pytest.raises(TypeError, match=r"priors='counts'.*models\['a'\] \(Mixture\)"):
        pixgmm.Classifier({lab: r.mixture for lab, r in results.items()}, priors="counts")
    with pytest.raises(ValueError, match="priors must be 'counts'"):
        pixgmm.Classifier(results, priors="count")


def _bhattacharyya_by_integration_1d(m1, v1, m2, v2):
    def f(x):
        return np.sqrt(
            scipy.stats.norm.pdf(x, m1, np.sqrt(v1)) * scipy.stats.norm.pdf(x, m2, np.sqrt(v2))
        )

    bc, _ = scipy.integrate.quad(f, -np.inf, np.inf, epsabs=1e-13, epsrel=1e-12, limit=200)
    return -np.log(bc)


@pytest.mark.parametrize(("m2", "v2"), [(4.0, 1.0), (1.0, 9.0), (10.0, 0.25)])
def test_bhattacharyya_against_numerical_integration(m2, v2):
    a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    b = pixgmm.Mixture([1.0], [[m2]], [v2], "spherical")
    clf = pixgmm.Classifier({"a": a, "b": b})
    expected = _bhattacharyya_by_integration_1d(0.0, 1.0, m2, v2)
    got = clf.separability("bhattacharyya")
    np.testing.assert_allclose(got[0, 1], expected, rtol=1e-8)
    np.testing.assert_allclose(clf.separability()[0, 1], 2 * (1 - np.exp(-expected)), rtol=1e-8)


def test_separability_in_three_dimensions_against_monte_carlo(rng):
    classes = _classes(rng)
    water, urban = classes["water"], classes["urban"]
    clf = pixgmm.Classifier({"water": water, "urban": pixgmm.Mixture(
        [1.0], [[40.0, 30.0, 25.0]], [[60.0, 50.0, 40.0]], "diag")})  # fmt: skip
    # Bhattacharyya coefficient = E_p[sqrt(q(x) / p(x))] for x ~ p
    p = scipy.stats.multivariate_normal(water.means[0], water.covariances[0])
    q = scipy.stats.multivariate_normal([40.0, 30.0, 25.0], np.diag([60.0, 50.0, 40.0]))
    x = p.rvs(size=400_000, random_state=np.random.default_rng(5))
    bc = np.mean(np.exp(0.5 * (q.logpdf(x) - p.logpdf(x))))
    np.testing.assert_allclose(clf.separability("bhattacharyya")[0, 1], -np.log(bc), rtol=0.02)
    jm = pixgmm.Classifier(classes).separability()
    assert jm.shape == (3, 3)
    np.testing.assert_array_equal(jm, jm.T)
    assert (np.diag(jm) == 0).all() and ((jm >= 0) & (jm <= 2)).all()
    assert jm[0, 2] > 1.99  # water and urban: far apart
    assert urban.n_features == 3


def test_summary_names_the_least_separable_pair(rng):
    classes = _classes(rng)
    close = pixgmm.Mixture([1.0], [[25.0, 22.0, 21.0]], [[30.0, 30.0, 30.0]], "diag")
    clf = pixgmm.Classifier({**classes, "shallow": close})
    s = clf.summary()
    assert s["least_separable"]["pair"] == ("water", "shallow")
    jm = np.array(s["jeffries_matusita"])
    assert s["least_separable"]["jeffries_matusita"] == jm[np.triu_indices(4, 1)].min()
    assert [c["label"] for c in s["classes"]] == ["water", "crops", "urban", "shallow"]
    assert s["classes"][1]["n_components"] == 2
    with pytest.raises(ValueError, match="metric must be"):
        clf.separability("euclid")


def test_predict_runs_in_bounded_blocks_with_the_whole_image_engine(rng, monkeypatch):
    from pixgmm import evaluate
    from pixgmm.classify import _decide

    models = {
        "a": pixgmm.Mixture([1.0], [[60, 60, 60]], [[400, 400, 400]], "diag"),
        "b": pixgmm.Mixture([1.0], [[180, 170, 160]], [[300, 300, 300]], "diag"),
    }
    clf = pixgmm.Classifier(models)
    img = rng.integers(0, 256, (1030, 1020, 3), dtype=np.uint8)  # >= 2**20 pixels: "table"
    whole = {"labels": clf.predict(img), "confidence": clf.confidence(img)}
    seen = []
    original = evaluate.log_density

    def spy(image, model, **kw):
        seen.append((np.shape(image)[0], kw.get("method")))
        return original(image, model, **kw)

    monkeypatch.setattr(evaluate, "log_density", spy)
    monkeypatch.setattr(_decide, "DECIDE_BLOCK", 100_003)
    labels = clf.predict(img)
    assert max(n for n, _ in seen) == 100_003 and len(seen) == 2 * 11
    assert {m for _, m in seen} == {"table"}  # the whole image's engine in every block
    np.testing.assert_array_equal(labels, whole["labels"])
    np.testing.assert_array_equal(clf.confidence(img), whole["confidence"])


def test_return_confidence_gives_both_maps_from_one_pass(rng):
    clf = pixgmm.Classifier(_classes(rng))
    img = rng.uniform(0, 255, (23, 29, 3))
    img[1, 2, 0] = np.nan
    kw = {"fill": "none", "min_probability": 0.7, "reject": "r"}
    labels, conf = clf.predict(img, return_confidence=True, **kw)
    np.testing.assert_array_equal(labels, clf.predict(img, **kw))
    np.testing.assert_array_equal(conf, clf.confidence(img))
    da = pytest.importorskip("dask.array")
    lazy = da.from_array(img, chunks=(8, 8, 3))
    dl, dc = clf.predict(lazy, return_confidence=True, **kw)
    np.testing.assert_array_equal(dl.compute(), labels)
    np.testing.assert_array_equal(dc.compute(), conf)
    with pytest.raises(TypeError, match="return_confidence"):
        clf.predict(img, return_confidence="yes")


def test_the_reject_threshold_is_the_chi_square_quantile_of_scipy_stats():
    """chi2_level's threshold (from scipy.special, a light import) equals scipy.stats's quantile."""
    scipy_stats = pytest.importorskip("scipy.stats")
    from pixgmm.classify._call import chi2_threshold

    for d in (1, 3, 10, 14):
        models = {"a": pixgmm.Mixture([1.0], [np.zeros(d)], [np.ones(d)], "diag")}
        for level in (0.5, 0.9, 0.999, 0.999999):
            want = scipy_stats.chi2.ppf(level, d)
            assert chi2_threshold(models, ["a"], level) == pytest.approx(want, rel=1e-12)
