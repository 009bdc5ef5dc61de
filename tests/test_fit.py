"""pixgmm.fit and pixgmm.fit_classes: behaviour, arguments, and scikit-learn's defaults.

The EM engine itself is checked in detail (reference step, scikit-learn from the
same start, weights, compression, degenerate cases) in ``test_em.py``.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import pixgmm
from pixgmm import fitting

sklearn_mixture = pytest.importorskip("sklearn.mixture")
GaussianMixture = sklearn_mixture.GaussianMixture
sklearn_exceptions = pytest.importorskip("sklearn.exceptions")


def two_blobs(rng, n=600, d=3):
    a = rng.normal(60.0, 6.0, size=(n // 2, d))
    b = rng.normal(170.0, 9.0, size=(n - n // 2, d))
    return np.concatenate([a, b])


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
def test_fit_matches_sklearn(rng, covariance_type):
    X = two_blobs(rng)
    got = pixgmm.fit(X, 2, covariance_type, init="kmeans")
    # the same k-means start (scikit-learn's KMeans, same seed), the same EM and stopping rule
    ref = GaussianMixture(2, covariance_type=covariance_type, reg_covar=1e-6, random_state=0).fit(X)
    assert got.covariance_type == covariance_type
    np.testing.assert_allclose(got.weights, ref.weights_, rtol=1e-9)
    np.testing.assert_allclose(got.means, ref.means_, rtol=1e-9)
    np.testing.assert_allclose(got.covariances, ref.covariances_, rtol=1e-9)
    # and the fitted mixture evaluates like scikit-learn's score_samples
    np.testing.assert_allclose(
        pixgmm.log_density(X, got, method="direct"), ref.score_samples(X), rtol=1e-10
    )


def test_fit_returns_mixture_with_channels(rng):
    m = pixgmm.fit(two_blobs(rng), 2, channels="BGR")
    assert isinstance(m, pixgmm.Mixture)
    assert m.channels == "BGR"
    assert m.n_components == 2 and m.n_features == 3


def test_uint8_fit_equals_the_float64_fit_of_the_same_pixels(rng):
    image = rng.integers(0, 256, size=(30, 40, 3)).astype(np.uint8)
    start = pixgmm.fit(image[:10], 3, init="k-means++")
    r8 = fitting.fit_em(image, 3, init=start, reg_covar=1.0)
    r64 = fitting.fit_em(image.astype(np.float64).reshape(-1, 3), 3, init=start, reg_covar=1.0)
    assert (r8.compression, r64.compression) == ("histogram", "none")
    assert r8.n_samples == r64.n_samples == 1200
    # no wrap-around: the sum of squares of uint8 values would overflow in uint8
    np.testing.assert_allclose(r8.mixture.means, r64.mixture.means, rtol=1e-10)
    np.testing.assert_allclose(r8.mixture.covariances, r64.mixture.covariances, rtol=1e-10)


def test_reg_covar_auto_depends_on_the_dtype(rng):
    X = rng.normal(100, 5, size=(300, 1))
    assert pixgmm.fit(X, 1).covariances[0, 0] == pytest.approx(X.var() + 1e-6, rel=1e-12)
    U = X.round().astype(np.uint16)
    assert pixgmm.fit(U, 1).covariances[0, 0] == pytest.approx(U.var() + 1.0, rel=1e-12)


def test_image_and_pixel_list_agree_any_channel_axis(rng):
    image = two_blobs(rng, n=20 * 30).reshape(20, 30, 3)
    a = pixgmm.fit(image, 2)
    b = pixgmm.fit(image.reshape(-1, 3), 2)
    c = pixgmm.fit(np.moveaxis(image, -1, 0), 2, channel_axis=0)
    assert a == b == c


def test_single_channel_without_channel_axis(rng):
    gray = rng.normal(100, 5, size=(20, 25))
    m = pixgmm.fit(gray, 1, channel_axis=None)
    assert m.n_features == 1
    np.testing.assert_allclose(m.means[0, 0], gray.mean())
    np.testing.assert_allclose(m.covariances[0, 0], gray.var() + 1e-6)


def test_nan_pixels_are_dropped(rng):
    X = two_blobs(rng)
    Xn = X.copy()
    Xn[::7, 1] = np.nan
    got = fitting.fit_em(Xn, 2)
    ref = fitting.fit_em(X[~np.isnan(Xn).any(axis=1)], 2)
    assert got.mixture == ref.mixture
    assert got.n_nan == len(range(0, X.shape[0], 7))
    assert got.n_samples == X.shape[0] - got.n_nan


def test_infinite_pixels_are_an_error(rng):
    X = two_blobs(rng)
    X[3, 0] = np.inf
    with pytest.raises(ValueError, match="pixels contains 1 infinite"):
        pixgmm.fit(X, 2)


def test_every_pixel_by_default_subsample_only_when_asked(rng):
    X = two_blobs(rng, n=5000)
    assert fitting.fit_em(X, 2).n_samples == 5000
    a = fitting.fit_em(X, 2, max_samples=400)
    b = fitting.fit_em(X, 2, max_samples=400)
    c = fitting.fit_em(X, 2, max_samples=400, random_state=1)
    assert a.n_samples == c.n_samples == 400
    assert a.mixture == b.mixture
    assert a.mixture != c.mixture
    # and it is uniform enough that both clusters are found
    np.testing.assert_allclose(np.sort(c.mixture.means[:, 0]), [60, 170], atol=3)


def test_random_state_generator_accepted(rng):
    X = two_blobs(rng, n=2000)
    a = pixgmm.fit(X, 2, max_samples=300, random_state=np.random.default_rng(5))
    b = pixgmm.fit(X, 2, max_samples=300, random_state=np.random.default_rng(5))
    assert a == b


def test_em_options_match_sklearn(rng):
    X = two_blobs(rng)
    with pytest.warns(fitting.ConvergenceWarning, match="max_iter=3"):
        got = pixgmm.fit(X, 4, init="kmeans", max_iter=3, n_init=2, tol=1e-9)
    ref = GaussianMixture(4, covariance_type="diag", reg_covar=1e-6, random_state=0, max_iter=3,
                          n_init=2, tol=1e-9)  # fmt: skip
    with pytest.warns(sklearn_exceptions.ConvergenceWarning):
        ref.fit(X)
    np.testing.assert_allclose(got.means, ref.means_, rtol=1e-9)
    with pytest.raises(TypeError, match="not_a_keyword"):
        pixgmm.fit(X, 2, not_a_keyword=1)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"n_components": 0}, ValueError, "n_components must be >= 1"),
        ({"n_components": 2.5}, TypeError, "n_components must be an integer"),
        ({"n_components": 2, "max_samples": 0}, ValueError, "max_samples must be >= 1"),
        ({"n_components": 2, "covariance_type": "diagonal"}, ValueError, "covariance_type"),
        ({"n_components": 2, "reg_covar": -1}, ValueError, "reg_covar"),
        ({"n_components": 2, "random_state": "zero"}, TypeError, "random_state"),
        ({"n_components": 50}, ValueError, "fewer than n_components=50"),
        ({"n_components": 5, "max_samples": 3}, ValueError, "has 3 usable"),
        ({"n_components": 2, "max_iter": 0}, ValueError, "max_iter must be >= 1"),
        ({"n_components": 2, "tol": -1}, ValueError, "tol must be"),
        ({"n_components": 2, "n_init": 0}, ValueError, "n_init must be >= 1"),
        ({"n_components": 2, "init": "kmean"}, ValueError, "init must be a pixgmm.Mixture"),
        ({"n_components": [2, 2]}, ValueError, "repeats a count"),
        ({"n_components": 2, "criterion": "aicc"}, ValueError, "criterion"),
        ({"n_components": 2, "sample_weight": np.ones(3)}, ValueError, "sample_weight has shape"),
        ({"n_components": 2, "sample_weight": -np.ones(40)}, ValueError, "sample_weight must be"),
        ({"n_components": 2, "sample_weight": np.zeros(40)}, ValueError, "total weight 0"),
    ],
)
def test_fit_bad_arguments(rng, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pixgmm.fit(rng.normal(size=(40, 3)), **kwargs)


def test_fit_bad_pixels():
    with pytest.raises(TypeError, match="pixels"):
        pixgmm.fit(np.zeros((4, 4, 3), bool), 1)
    with pytest.raises(ValueError, match="channel_axis=3"):
        pixgmm.fit(np.zeros((4, 4, 3)), 1, channel_axis=3)
    with pytest.raises(
        ValueError, match=r"channels='RG' names 2 channel\(s\) but the pixels have 3"
    ):
        pixgmm.fit(np.random.default_rng(0).normal(size=(20, 3)), 1, channels="RG")
    with pytest.raises(TypeError, match="channels must be a string"):
        pixgmm.fit(np.random.default_rng(0).normal(size=(20, 3)), 1, channels=3)


def test_missing_sklearn_names_the_extra(monkeypatch, rng):
    X = rng.normal(size=(20, 3))
    monkeypatch.setitem(sys.modules, "sklearn.cluster", None)
    with pytest.raises(ImportError, match=r'pip install "pixgmm\[fit\]".*k-means\+\+'):
        pixgmm.fit(X, 1, init="kmeans")
    # the EM, the default (numba k-means) and the NumPy initialisations need no scikit-learn
    assert pixgmm.fit(X, 2).n_components == 2
    assert pixgmm.fit(X, 2, init="k-means++").n_components == 2
    assert pixgmm.fit(X, 2, init="random").n_components == 2


# -- fit_classes -----------------------------------------------------------


def labelled_image(rng, shape=(30, 40)):
    mask = np.zeros(shape, bool)
    mask[:, shape[1] // 2 :] = True
    image = rng.normal(60, 6, size=(*shape, 3))
    image[mask] = rng.normal(170, 9, size=(int(mask.sum()), 3))
    return image, mask


def test_fit_classes_one_model_per_class(rng):
    image, mask = labelled_image(rng)
    models = pixgmm.fit_classes(image, mask, 2, channels="RGB")
    assert list(models) == [False, True]
    assert models[True] == pixgmm.fit(image[mask], 2, channels="RGB")
    assert models[False] == pixgmm.fit(image[~mask], 2, channels="RGB")


def test_fit_classes_pixels_and_label_vector_with_strings(rng):
    image, mask = labelled_image(rng)
    X = image.reshape(-1, 3)
    y = np.where(mask.reshape(-1), "skin", "other")
    models = pixgmm.fit_classes(X, y, {"skin": 2, "other": 1})
    assert list(models) == ["other", "skin"]
    assert models["skin"].n_components == 2 and models["other"].n_components == 1
    assert models["skin"] == pixgmm.fit(X[y == "skin"], 2)


def test_fit_classes_list_of_images_and_classes_subset(rng):
    (a, ma), (b, mb) = labelled_image(rng), labelled_image(rng, (10, 12))
    la = ma.astype(int)
    lb = mb.astype(int)
    lb[0, 0] = -1  # unlabelled pixel: ignored when classes excludes it
    models = pixgmm.fit_classes([a, b], [la, lb], 1, classes=[1, 0])
    assert list(models) == [1, 0]
    both = np.concatenate([a[la == 1], b[lb == 1]])
    np.testing.assert_allclose(models[1].means[0], both.mean(axis=0))


def test_fit_classes_channel_axis(rng):
    image, mask = labelled_image(rng)
    a = pixgmm.fit_classes(image, mask, 1)
    b = pixgmm.fit_classes(np.moveaxis(image, -1, 0), mask, 1, channel_axis=0)
    assert a == b


def test_fit_classes_errors(rng):
    image, mask = labelled_image(rng)
    with pytest.raises(ValueError, match=r"labels has shape \(40, 30\).*spatial shape \(30, 40\)"):
        pixgmm.fit_classes(image, mask.T, 1)
    with pytest.raises(ValueError, match="class 2 has no pixels"):
        pixgmm.fit_classes(image, mask.astype(int), 1, classes=[0, 1, 2])
    few = mask.astype(int)
    few[:] = 0
    few[0, :3] = 1
    with pytest.raises(ValueError, match=r"class 1 has 3 usable .* n_components=5"):
        pixgmm.fit_classes(image, few, 5)
    with pytest.raises(ValueError, match="one label mask per image"):
        pixgmm.fit_classes([image, image], mask, 1)
    with pytest.raises(ValueError, match=r"images\[1\] has 4 channel"):
        pixgmm.fit_classes([image, np.zeros((2, 2, 4))], [mask, np.zeros((2, 2))], 1)
    with pytest.raises(ValueError, match="n_components has no entry"):
        pixgmm.fit_classes(image, mask, {True: 1})
    with pytest.raises(ValueError, match=r"channels='RGBA' names 4"):
        pixgmm.fit_classes(image, mask, 1, channels="RGBA")
    with pytest.raises(ValueError, match="classes is empty"):
        pixgmm.fit_classes(image, mask, 1, classes=[])
