"""``pixgmm.Mixture``: construction, validation, derived models, scikit-learn and JSON round trips."""

from __future__ import annotations

import json
import math
import pickle
from collections import namedtuple

import numpy as np
import pytest
import scipy.stats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pixgmm
from pixgmm import Mixture

Kernel = namedtuple("Kernel", "mean covariance weight")

#: One valid (weights, means, covariances) per covariance type; K=2, D=3.
MEANS = [[10.0, 20.0, 30.0], [200.0, 150.0, 100.0]]
VALID = {
    "full": [
        [[40.0, 12.0, -5.0], [12.0, 30.0, 4.0], [-5.0, 4.0, 25.0]],
        [[100.0, 0.0, 0.0], [0.0, 50.0, 20.0], [0.0, 20.0, 60.0]],
    ],
    "diag": [[40.0, 30.0, 25.0], [100.0, 50.0, 60.0]],
    "spherical": [40.0, 90.0],
    "tied": [[40.0, 12.0, -5.0], [12.0, 30.0, 4.0], [-5.0, 4.0, 25.0]],
}
COVARIANCE_TYPES = tuple(VALID)


def build(covariance_type, **kwargs):
    return Mixture([0.3, 0.7], MEANS, VALID[covariance_type], covariance_type, **kwargs)


def expected_full(covariance_type):
    cov = np.asarray(VALID[covariance_type], dtype=float)
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.stack([cov, cov])
    if covariance_type == "diag":
        return np.stack([np.diag(v) for v in cov])
    return np.stack([np.eye(3) * v for v in cov])


def scipy_log_density(X, weights, means, covs):
    terms = [
        math.log(w) + scipy.stats.multivariate_normal(mu, c).logpdf(X)
        for w, mu, c in zip(weights, means, covs)
    ]
    return scipy.special.logsumexp(np.stack(terms), axis=0)


# -- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_construction_every_covariance_type(covariance_type):
    m = build(covariance_type, channels="RGB")
    assert (m.n_components, m.n_features, m.covariance_type) == (2, 3, covariance_type)
    assert m.channels == "RGB"
    assert m.is_diagonal == (covariance_type in ("diag", "spherical"))
    np.testing.assert_array_equal(m.weights, [0.3, 0.7])
    np.testing.assert_array_equal(m.means, MEANS)
    np.testing.assert_array_equal(m.covariances, VALID[covariance_type])
    assert m.covariances.dtype == np.float64
    np.testing.assert_array_equal(m.full_covariances(), expected_full(covariance_type))
    # U U^T is the precision matrix and U is upper-triangular
    u = m.precisions_cholesky
    assert u.shape == (2, 3, 3)
    assert np.all(np.tril(u, -1) == 0)
    for k in range(2):
        np.testing.assert_allclose(
            u[k] @ u[k].T, np.linalg.inv(expected_full(covariance_type)[k]), rtol=1e-12
        )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_log_normalizer_uses_the_determinant(covariance_type):
    m = build(covariance_type)
    covs = expected_full(covariance_type)
    expected = [
        math.log(w) - 1.5 * math.log(2 * math.pi) - 0.5 * math.log(np.linalg.det(c))
        for w, c in zip([0.3, 0.7], covs)
    ]
    np.testing.assert_allclose(m.log_normalizers(), expected, rtol=1e-13)
    np.testing.assert_allclose(
        m.log_normalizers(normalized=False) - m.log_normalizers(), 1.5 * math.log(2 * math.pi)
    )


def test_determinant_not_norm_against_scipy():
    """A correlated covariance whose determinant and Frobenius norm differ a lot."""
    cov = np.array([[900.0, 850.0, 100.0], [850.0, 900.0, 80.0], [100.0, 80.0, 400.0]])
    det, norm = np.linalg.det(cov), np.linalg.norm(cov)
    assert abs(math.log(det) - 2 * math.log(norm)) > 1.0  # the two normalisers differ
    m = Mixture([1.0], [[120.0, 110.0, 90.0]], [cov], "full")
    X = np.array([[120.0, 110.0, 90.0], [100.0, 130.0, 70.0], [0.0, 255.0, 255.0]])
    expected = scipy.stats.multivariate_normal([120.0, 110.0, 90.0], cov).logpdf(X)
    np.testing.assert_allclose(pixgmm.log_density(X, m), expected, rtol=1e-12)
    np.testing.assert_allclose(pixgmm.density(X, m), np.exp(expected), rtol=1e-12)
    with_norm = expected + 0.5 * math.log(det) - 0.5 * math.log(norm)
    assert not np.allclose(pixgmm.log_density(X, m), with_norm)


def test_mixture_against_scipy_every_type(rng):
    X = rng.uniform(0, 255, size=(50, 3))
    for covariance_type in COVARIANCE_TYPES:
        m = build(covariance_type)
        expected = scipy_log_density(X, [0.3, 0.7], MEANS, expected_full(covariance_type))
        np.testing.assert_allclose(pixgmm.log_density(X, m), expected, rtol=1e-12)


def test_weights_used_as_given_not_renormalised():
    m = Mixture([1.0, 3.0], [[0.0], [1.0]], [1.0, 2.0], "spherical")
    x = np.array([0.3])
    expected = 1.0 * scipy.stats.norm(0, 1).pdf(0.3) + 3.0 * scipy.stats.norm(1, math.sqrt(2)).pdf(
        0.3
    )
    assert pixgmm.density(x, m, channel_axis=None)[0] == pytest.approx(expected, rel=1e-13)
    r = m.renormalized()
    np.testing.assert_array_equal(r.weights, [0.25, 0.75])
    assert pixgmm.density(x, r, channel_axis=None)[0] == pytest.approx(expected / 4, rel=1e-13)


def test_single_component_means_may_be_one_dimensional():
    m = Mixture([1.0], [1.0, 2.0], [1.0, 3.0], "diag")
    assert m.means.shape == (1, 2)
    assert m.covariances.shape == (1, 2)
    assert Mixture([1.0], [1.0, 2.0], [[1.0, 3.0]], "diag") == m
    full = Mixture([1.0], [1.0, 2.0], [[1.0, 0.0], [0.0, 3.0]], "full")
    assert full.covariances.shape == (1, 2, 2)
    np.testing.assert_array_equal(full.full_covariances(), m.full_covariances())
    assert Mixture([1.0], [1.0, 2.0], 2.0, "spherical").covariances.shape == (1,)
    with pytest.raises(ValueError, match="means must have shape"):
        Mixture([0.5, 0.5], [1.0, 2.0], [1.0, 1.0], "spherical")


def test_integer_and_array_inputs_are_converted():
    m = Mixture(np.array([1, 1]), np.array([[0, 0], [1, 1]], np.int32), [1, 2], "spherical")
    assert m.weights.dtype == m.means.dtype == m.covariances.dtype == np.float64


# -- reg_covar ----------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_reg_covar_adds_to_the_diagonal(covariance_type):
    reg = 0.5
    m = build(covariance_type, reg_covar=reg)
    np.testing.assert_allclose(
        m.full_covariances(), expected_full(covariance_type) + reg * np.eye(3), rtol=1e-15
    )


def test_reg_covar_makes_a_zero_variance_usable():
    with pytest.raises(ValueError, match="reg_covar"):
        Mixture([1.0], [[0.0, 0.0]], [[0.0, 1.0]], "diag")
    m = Mixture([1.0], [[0.0, 0.0]], [[0.0, 1.0]], "diag", reg_covar=1e-6)
    np.testing.assert_array_equal(m.covariances, [[1e-6, 1.0 + 1e-6]])
    singular = [[[1.0, 1.0], [1.0, 1.0]]]
    with pytest.raises(ValueError, match="not positive definite"):
        Mixture([1.0], [[0.0, 0.0]], singular, "full")
    Mixture([1.0], [[0.0, 0.0]], singular, "full", reg_covar=1e-6)
    # from_kernels takes it too, as the error message suggests
    Mixture.from_kernels([([0.0, 0.0], [0.0, 1.0], 1.0)], reg_covar=1e-6)


@pytest.mark.parametrize(
    ("reg_covar", "exc", "match"),
    [
        (-1e-6, ValueError, "reg_covar must be a finite number >= 0"),
        (float("nan"), ValueError, "reg_covar must be a finite number"),
        (float("inf"), ValueError, "reg_covar must be a finite number"),
        ("small", TypeError, "reg_covar must be a number"),
        (None, TypeError, "reg_covar must be a number"),
        (True, TypeError, "reg_covar must be a number"),
        ("1e-6", TypeError, "reg_covar must be a number"),
    ],
)
def test_bad_reg_covar(reg_covar, exc, match):
    with pytest.raises(exc, match=match):
        build("diag", reg_covar=reg_covar)


# -- immutability, equality, repr -------------------------------------------------------------


def test_immutable():
    m = build("full", channels="RGB")
    with pytest.raises(AttributeError, match="immutable"):
        m.weights = [1.0, 1.0]
    with pytest.raises(AttributeError, match="immutable"):
        m.anything = 1
    with pytest.raises(AttributeError, match="immutable"):
        del m.weights
    for arr in (m.weights, m.means, m.covariances, m.precisions_cholesky, m.log_normalizers()):
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0
    # the caller's arrays are copied, not aliased
    w = np.array([0.3, 0.7])
    m2 = Mixture(w, MEANS, VALID["diag"], "diag")
    w[0] = 99.0
    assert m2.weights[0] == 0.3
    # full_covariances() is a fresh array the caller may change
    full = m.full_covariances()
    full[...] = 0
    np.testing.assert_array_equal(m.full_covariances(), expected_full("full"))


def test_equality_hash_and_pickle():
    a, b = build("tied", channels="RGB"), build("tied", channels="RGB")
    assert a == b and hash(a) == hash(b)
    assert a != build("tied")  # channel names are part of the model
    assert a != build("full", channels="RGB")
    assert a != "not a mixture"
    again = pickle.loads(pickle.dumps(a))
    assert again == a and again.channels == "RGB"


def test_identity_covers_shapes_not_only_bytes():
    """Issue 9 item 1: the same 21 numbers read as K=7, D=1 and as K=3, D=3 are two models."""
    a = Mixture([1.0] * 7, np.arange(7.0).reshape(7, 1), np.ones((7, 1)), "diag")
    flat = np.concatenate([a.weights, a.means.ravel(), a.covariances.ravel()])
    b = Mixture(flat[:3], flat[3:12].reshape(3, 3), flat[12:].reshape(3, 3), "diag")
    b_flat = np.concatenate([b.weights, b.means.ravel(), b.covariances.ravel()])
    assert b_flat.tobytes() == flat.tobytes()  # the parameters' bytes alone cannot tell them apart
    assert a != b and b != a
    assert a._fingerprint != b._fingerprint
    assert len({a, b}) == 2


@pytest.mark.parametrize("method", ["table", "separable", "auto"])
def test_same_bytes_other_shape_evaluates_its_own_parameters(method):
    """A cached table of one model is never read for the other (was a wrong value or a segfault)."""
    from reference import as_pixels
    from reference import log_density as ref_log_density

    a = Mixture([1.0] * 7, np.arange(7.0).reshape(7, 1) * 30, np.full((7, 1), 50.0), "diag")
    flat = np.concatenate([a.weights, a.means.ravel(), a.covariances.ravel()])
    b = Mixture(flat[:3], flat[3:12].reshape(3, 3), flat[12:].reshape(3, 3), "diag")
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    colour = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    pixgmm.clear_cache()
    for model, img, axis in ((a, gray, None), (b, colour, -1), (a, gray, None)):
        got = pixgmm.log_density(img, model, channel_axis=axis, method=method)
        want = ref_log_density(as_pixels(img, axis), model).reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_identity_of_reordered_and_renamed_models(covariance_type):
    m = build(covariance_type, channels="RGB")
    bgr = m.with_channels("BGR")
    assert bgr != m and bgr._fingerprint != m._fingerprint
    direct = Mixture(
        bgr.weights, bgr.means, bgr.covariances, covariance_type, channels="BGR"
    )  # the same model built from its parameters is equal to it
    assert direct == bgr and direct._fingerprint == bgr._fingerprint and hash(direct) == hash(bgr)
    assert m.with_channels(None) != m and m.with_channels(None) == build(covariance_type)
    assert bgr.with_channels("RGB") == m
    names = Mixture([0.3, 0.7], MEANS, VALID[covariance_type], covariance_type, channels="XYZ")
    assert names != m  # same numbers, other channel names


_SIZES = {
    "full": lambda k, d: k * d * d,
    "diag": lambda k, d: k * d,
    "spherical": lambda k, d: k,
    "tied": lambda k, d: d * d,
}
_SHAPES = {
    "full": lambda k, d: (k, d, d),
    "diag": lambda k, d: (k, d),
    "spherical": lambda k, d: (k,),
    "tied": lambda k, d: (d, d),
}
_KD = [(k, d) for k in range(1, 9) for d in range(1, 5)]


def _n_numbers(ctype, k, d):
    return k + k * d + _SIZES[ctype](k, d)


def _mixture_from_pool(pool, ctype, k, d, channels):
    """The mixture whose weights, means and covariances are the first numbers of ``pool``."""
    flat = np.asarray(pool[: _n_numbers(ctype, k, d)], dtype=np.float64)
    cov = flat[k + k * d :].reshape(_SHAPES[ctype](k, d))
    if ctype in ("full", "tied"):  # make it symmetric positive definite
        mats = cov.reshape(-1, d, d)
        mats = np.triu(mats) + np.swapaxes(np.triu(mats, 1), 1, 2)
        mats += np.eye(d) * (np.abs(mats).sum(axis=2, keepdims=True) + 1.0)
        cov = mats.reshape(_SHAPES[ctype](k, d))
    return Mixture(flat[:k], flat[k : k + k * d].reshape(k, d), cov, ctype, channels=channels)


@st.composite
def mixture_pairs(draw):
    """Two mixtures built from one pool of numbers: often the same values, and often the same
    number of parameters in other shapes (the same concatenated bytes: K=3, D=1 and K=1, D=4)."""
    pool = draw(st.lists(st.sampled_from([1.0, 2.0, 4.0]), min_size=168, max_size=168))
    ctype = draw(st.sampled_from(COVARIANCE_TYPES))
    k, d = draw(st.sampled_from(_KD))
    specs = [(ctype, k, d)]
    same_size = [
        kd for kd in _KD if kd != (k, d) and _n_numbers(ctype, *kd) == _n_numbers(ctype, k, d)
    ]
    if same_size and draw(st.booleans()):
        specs.append((ctype, *draw(st.sampled_from(same_size))))
    else:
        specs.append((draw(st.sampled_from(COVARIANCE_TYPES)), *draw(st.sampled_from(_KD))))
    out = []
    for ctype, k, d in specs:
        channels = draw(st.sampled_from([None, "ABCD"[:d], "WXYZ"[:d]]))
        out.append(_mixture_from_pool(pool, ctype, k, d, channels))
    return out


def _same_definition(a, b):
    return (
        a.covariance_type == b.covariance_type
        and a.channels == b.channels
        and all(
            getattr(a, f).shape == getattr(b, f).shape
            and np.array_equal(getattr(a, f), getattr(b, f))
            for f in ("weights", "means", "covariances")
        )
    )


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(mixture_pairs())
def test_fingerprint_equal_exactly_when_the_definition_is(pair):
    a, b = pair
    same = _same_definition(a, b)
    assert (a._fingerprint == b._fingerprint) is same
    assert (a == b) is same
    if same:
        assert hash(a) == hash(b)
    again = Mixture(a.weights, a.means, a.covariances, a.covariance_type, channels=a.channels)
    assert again == a and again._fingerprint == a._fingerprint


def test_every_defining_field_is_in_the_file_and_the_identity():
    m = build("full", channels="RGB")
    assert set(m.to_dict()) == {"schema", "version", *m._defining_fields()}


def test_repr():
    assert repr(build("spherical")) == (
        "Mixture(n_components=2, n_features=3, covariance_type='spherical')"
    )
    assert repr(build("diag", channels="bgr")) == (
        "Mixture(n_components=2, n_features=3, covariance_type='diag', channels='BGR')"
    )
    m = Mixture([1.0], [[0.0, 0.0]], [1.0], "spherical", channels=["nir", "red"])
    assert repr(m).endswith("channels=('NIR', 'RED'))")


# -- derived models --------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_renormalized(covariance_type):
    m = Mixture([2.0, 6.0], MEANS, VALID[covariance_type], covariance_type, channels="RGB")
    r = m.renormalized()
    np.testing.assert_allclose(r.weights, [0.25, 0.75])
    np.testing.assert_array_equal(r.covariances, m.covariances)
    assert r.channels == "RGB" and r.covariance_type == covariance_type
    X = np.array([[20.0, 25.0, 30.0]])
    np.testing.assert_allclose(
        pixgmm.log_density(X, r), pixgmm.log_density(X, m) - math.log(8.0), rtol=1e-14
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_with_channels_reorders_every_parameter(covariance_type, rng):
    m = build(covariance_type, channels="RGB")
    bgr = m.with_channels("BGR")
    assert bgr.channels == "BGR"
    np.testing.assert_array_equal(bgr.means, np.asarray(MEANS)[:, ::-1])
    np.testing.assert_array_equal(bgr.full_covariances(), m.full_covariances()[:, ::-1, ::-1])
    X = rng.uniform(0, 255, size=(20, 3))
    np.testing.assert_allclose(
        pixgmm.log_density(X[:, ::-1], bgr), pixgmm.log_density(X, m), rtol=1e-13
    )
    assert m.with_channels("RGB") is m
    assert m.with_channels("bgr") is bgr  # cached, and names are case-insensitive


def test_with_channels_names_and_errors():
    m = build("diag")
    named = m.with_channels("RGB")
    assert named.channels == "RGB" and named.means is not None
    np.testing.assert_array_equal(named.means, m.means)  # naming an unnamed model reorders nothing
    assert named.with_channels(None).channels is None
    with pytest.raises(ValueError, match="does not name the same channels"):
        named.with_channels("HSV")
    with pytest.raises(ValueError, match="names 2 channel"):
        m.with_channels("RG")
    with pytest.raises(ValueError, match="names a channel twice"):
        m.with_channels("RGR")
    with pytest.raises(TypeError, match="channels must be a string"):
        m.with_channels(3)


def test_channels_validated_at_construction():
    with pytest.raises(ValueError, match=r"channels='RG' names 2 channel\(s\) but the model has 3"):
        build("diag", channels="RG")
    with pytest.raises(ValueError, match="names a channel twice"):
        build("diag", channels="RRG")
    with pytest.raises(TypeError, match="channels must be a string"):
        build("diag", channels=123)
    with pytest.raises(ValueError, match="no empty names"):
        Mixture([1.0], [[0.0, 0.0]], [1.0], "spherical", channels=["a", " "])


# -- from_kernels ------------------------------------------------------------------------------

MEAN = np.array([73.53, 29.94, 17.76])
VAR = np.array([765.40, 121.44, 112.80])


@pytest.mark.parametrize(
    "mean", [MEAN, MEAN.reshape(1, 3), MEAN.reshape(3, 1), MEAN.tolist()], ids=str
)
@pytest.mark.parametrize(
    "covariance",
    [VAR, VAR.reshape(1, 3), VAR.reshape(3, 1), np.diag(VAR), np.diag(VAR).tolist()],
    ids=["(D,)", "(1,D)", "(D,1)", "(D,D)", "list"],
)
def test_from_kernels_shapes(mean, covariance):
    kernels = [Kernel(mean, covariance, 0.0294), (MEAN + 100, VAR * 2, 0.5)]
    m = Mixture.from_kernels(kernels)
    assert m.covariance_type == "diag"
    np.testing.assert_array_equal(m.means, [MEAN, MEAN + 100])
    np.testing.assert_array_equal(m.covariances, [VAR, VAR * 2])
    np.testing.assert_array_equal(m.weights, [0.0294, 0.5])


def test_from_kernels_full_when_any_covariance_has_off_diagonals():
    cov = np.diag(VAR)
    cov[0, 1] = cov[1, 0] = 50.0
    m = Mixture.from_kernels([Kernel(MEAN, cov, 0.3), Kernel(MEAN, VAR, 0.7)], channels="RGB")
    assert m.covariance_type == "full" and m.channels == "RGB"
    np.testing.assert_array_equal(m.covariances, [cov, np.diag(VAR)])


def test_from_kernels_accepts_objects_iterables_and_numpy_weights():
    class K:
        def __init__(self, mean, covariance, weight):
            self.mean, self.covariance, self.weight = mean, covariance, weight

    m = Mixture.from_kernels(iter([K(MEAN, VAR, np.float32(0.5)), K(MEAN, VAR, np.array([0.5]))]))
    np.testing.assert_array_equal(m.weights, [0.5, 0.5])
    assert pixgmm.as_mixture([Kernel(MEAN, VAR, 1.0)]) == Mixture([1.0], [MEAN], [VAR], "diag")


@pytest.mark.parametrize(
    ("kernels", "exc", "match"),
    [
        ([], ValueError, "kernels is empty"),
        (5, TypeError, "kernels must be a sequence"),
        ([(MEAN, VAR)], TypeError, r"kernels\[0\] must be a \(mean, covariance, weight\) triple"),
        ([(MEAN, VAR, "heavy")], TypeError, r"kernels\[0\]\.weight must be a number"),
        ([(MEAN, VAR, [0.2, 0.3])], TypeError, r"kernels\[0\]\.weight must be a number"),
        ([(np.ones((2, 3)), VAR, 1.0)], ValueError, r"kernels\[0\]\.mean must have shape"),
        ([(MEAN, np.ones((2, 3)), 1.0)], ValueError, r"kernels\[0\]\.covariance must be"),
        ([(MEAN, VAR, 1.0), (MEAN[:2], VAR[:2], 1.0)], ValueError, r"kernels\[1\]\.mean has 2"),
        ([(MEAN, [1.0, 0.0, 1.0], 1.0)], ValueError, "channel 1.*reg_covar"),
        ([(MEAN, VAR, -0.1)], ValueError, "weights must be non-negative"),
        ([([np.nan, 0.0, 0.0], VAR, 1.0)], ValueError, r"kernels\[0\]\.mean\[0\] is nan"),
    ],
)
def test_from_kernels_errors(kernels, exc, match):
    with pytest.raises(exc, match=match):
        Mixture.from_kernels(kernels)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("covariance_type", "covariances", "match"),
    [
        (
            "diag",
            [[40.0, 30.0, 25.0], [100.0, 0.0, 60.0]],
            r"component 1 has variance 0 in channel 1",
        ),
        (
            "diag",
            [[40.0, 30.0, -2.0], [100.0, 50.0, 60.0]],
            r"component 0 has variance -2 in channel 2",
        ),
        ("spherical", [40.0, 0.0], r"component 1 has variance 0"),
        ("spherical", [-1.0, 5.0], r"component 0 has variance -1"),
    ],
)
def test_non_positive_variance(covariance_type, covariances, match):
    with pytest.raises(ValueError, match=match) as info:
        Mixture([0.3, 0.7], MEANS, covariances, covariance_type)
    assert "reg_covar=" in str(info.value)


@pytest.mark.parametrize(
    ("covariance_type", "covariances", "match"),
    [
        (
            "full",
            [VALID["tied"], [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]],
            r"covariances\[1\] is not positive definite; smallest eigenvalue -1",
        ),
        (
            "full",
            [VALID["tied"], [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]]],
            r"covariances\[1\] is not positive definite \(variance 0 in channel 1\)",
        ),
        (
            "tied",
            [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            "the tied covariance is not positive definite",
        ),
        (
            "full",
            [VALID["tied"], [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]],
            r"covariances\[1\] is not symmetric",
        ),
        (
            "tied",
            [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
            "tied covariance is not symm",
        ),
    ],
)
def test_not_positive_definite(covariance_type, covariances, match):
    with pytest.raises(ValueError, match=match) as info:
        Mixture([0.3, 0.7], MEANS, covariances, covariance_type)
    if "definite" in match:
        assert "reg_covar=" in str(info.value)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.3, -0.7], r"weights must be non-negative; weights\[1\] = -0.7"),
        ([0.0, 0.0], "weights are all zero"),
        ([0.3, np.nan], r"weights\[1\] is nan; every value must be finite"),
        ([np.inf, 0.3], r"weights\[0\] is inf"),
        ([0.3, 0.3, 0.4], "weights has 3 entries but means has 2 rows"),
        ([[0.3, 0.7]], "weights must be 1-dimensional"),
    ],
)
def test_bad_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        Mixture(weights, MEANS, VALID["diag"], "diag")


def test_zero_weight_component_is_allowed():
    m = Mixture([0.0, 1.0], MEANS, VALID["diag"], "diag")
    assert m.log_normalizers()[0] == -np.inf
    assert np.isfinite(pixgmm.log_density(np.array(MEANS[1]), m))


@pytest.mark.parametrize(
    ("means", "exc", "match"),
    [
        (
            [[10.0, np.nan, 30.0], MEANS[1]],
            ValueError,
            r"means\[0, 1\] is nan; every value must be",
        ),
        ([MEANS[0], [np.inf, 1.0, 2.0]], ValueError, r"means\[1, 0\] is inf"),
        ([MEANS[0], [1.0, 2.0]], ValueError, "means is ragged"),
        (
            [[10.0, 20.0], [1.0, 2.0]],
            ValueError,
            r"shape \(2, 2\) \(n_components=2, n_features=2\)",
        ),
        ([[[10.0, 20.0, 30.0]]] * 2, ValueError, r"means must have shape \(n_components, n_feat"),
        ([[1j, 0, 0], [0, 0, 0]], TypeError, "means must be an array of real numbers"),
        ("RGB", TypeError, "means must be an array of real numbers"),
    ],
)
def test_bad_means(means, exc, match):
    with pytest.raises(exc, match=match):
        Mixture([0.3, 0.7], means, VALID["diag"], "diag")


@pytest.mark.parametrize(
    ("covariance_type", "covariances", "match"),
    [
        ("full", VALID["diag"], r"covariance_type='full' must have shape \(2, 3, 3\)"),
        ("diag", VALID["spherical"], r"covariance_type='diag' must have shape \(2, 3\)"),
        ("spherical", [1.0, 2.0, 3.0], r"covariance_type='spherical' must have shape \(2,\)"),
        ("tied", VALID["full"], r"covariance_type='tied' must have shape \(3, 3\)"),
        ("diag", [[1.0, 1.0, np.inf], [1.0, 1.0, 1.0]], r"covariances\[0, 2\] is inf"),
    ],
)
def test_inconsistent_covariance_shape(covariance_type, covariances, match):
    with pytest.raises(ValueError, match=match):
        Mixture([0.3, 0.7], MEANS, covariances, covariance_type)


def test_no_components_or_features():
    with pytest.raises(ValueError, match="means must have shape"):
        Mixture([], [], [], "spherical")
    with pytest.raises(ValueError, match="at least one component and one feature"):
        Mixture([1.0], np.zeros((1, 0)), np.zeros((1, 0)), "diag")


@pytest.mark.parametrize(
    ("covariance_type", "exc"),
    [
        ("diagonal", ValueError),
        ("FULL", ValueError),
        ("", ValueError),
        (None, TypeError),
        (["diag"], TypeError),
    ],
)
def test_wrong_covariance_type(covariance_type, exc):
    with pytest.raises(
        exc, match="covariance_type must be one of 'full', 'diag', 'spherical', 'tied'"
    ):
        Mixture([0.3, 0.7], MEANS, VALID["diag"], covariance_type)


def test_as_mixture_rejects_other_things():
    for bad in (None, "model.json", {"weights": [1.0]}, np.zeros((2, 3)), 3.0):
        with pytest.raises(TypeError, match=r"model must be a pixgmm\.Mixture"):
            pixgmm.as_mixture(bad)
    m = build("diag")
    assert pixgmm.as_mixture(m) is m


# -- scikit-learn ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sk_data():
    rng = np.random.default_rng(7)
    a = rng.multivariate_normal([60, 90, 120], [[400, 150, 50], [150, 300, 80], [50, 80, 200]], 400)
    b = rng.multivariate_normal([200, 160, 140], [[100, -40, 0], [-40, 150, 30], [0, 30, 90]], 300)
    return np.concatenate([a, b])


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_from_sklearn_equals_score_samples(sk_data, covariance_type):
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    gmm = sklearn_mixture.GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    gmm.fit(sk_data)
    m = Mixture.from_sklearn(gmm, channels="RGB")
    assert m.covariance_type == covariance_type and m.channels == "RGB"
    X = np.concatenate([sk_data[::7], [[0.0, 0.0, 0.0], [255.0, 255.0, 255.0]]])
    lp = pixgmm.log_density(X, m)
    assert lp.dtype == np.float64
    np.testing.assert_allclose(lp, gmm.score_samples(X), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(pixgmm.responsibilities(X, m), gmm.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(pixgmm.predict(X, m), gmm.predict(X))
    # uint8 pixels: evaluated on the same values as float64
    img = np.clip(sk_data[:60], 0, 255).astype(np.uint8).reshape(6, 10, 3)
    np.testing.assert_allclose(
        pixgmm.log_density(img, m).reshape(-1),
        gmm.score_samples(img.reshape(-1, 3).astype(np.float64)),
        rtol=1e-12,
        atol=1e-10,
    )


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_to_sklearn_round_trip(sk_data, covariance_type):
    pytest.importorskip("sklearn")
    # weights that do not sum to 1, as published models often have
    m = Mixture([0.25, 0.74], MEANS[::-1], VALID[covariance_type], covariance_type)
    gmm = m.to_sklearn()
    assert gmm.covariance_type == covariance_type and gmm.n_components == 2
    np.testing.assert_allclose(
        gmm.score_samples(sk_data), pixgmm.log_density(sk_data, m), rtol=1e-12
    )
    np.testing.assert_array_equal(gmm.predict(sk_data), pixgmm.predict(sk_data, m))
    assert Mixture.from_sklearn(gmm) == m


def test_from_sklearn_bayesian_and_unfitted(sk_data):
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    bgm = sklearn_mixture.BayesianGaussianMixture(n_components=2, random_state=0).fit(sk_data)
    m = Mixture.from_sklearn(bgm)
    # the mixture with the posterior-mean weights_ (BayesianGaussianMixture.score_samples
    # weighs components by expected log weights instead, which do not sum to 1)
    X = sk_data[:50]
    expected = scipy_log_density(X, bgm.weights_, bgm.means_, bgm.covariances_)
    np.testing.assert_allclose(pixgmm.log_density(X, m), expected, rtol=1e-12)
    with pytest.raises(TypeError, match=r"no weights_, means_, covariances_.*call \.fit first"):
        Mixture.from_sklearn(sklearn_mixture.GaussianMixture(2))
    with pytest.raises(TypeError, match=r"call \.fit first"):
        pixgmm.density(sk_data, sklearn_mixture.GaussianMixture(2))


# -- JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_save_load_round_trip_is_exact(tmp_path, covariance_type, rng):
    cov = np.asarray(VALID[covariance_type]) * (1 + 1e-13)  # values with all 17 digits
    m = Mixture([1 / 3, 2 / 3], np.asarray(MEANS) / 7, cov, covariance_type, channels="BGR")
    path = tmp_path / "model.json"
    m.save(path)
    back = Mixture.load(path)
    assert back == m and back.channels == "BGR"
    for name in ("weights", "means", "covariances"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name))
    data = json.loads(path.read_text())
    assert data["schema"] == "pixgmm.mixture" and data["version"] == 1
    assert data["covariance_type"] == covariance_type and data["channels"] == "BGR"
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temporary left behind


def test_save_load_channel_name_list(tmp_path):
    m = Mixture([1.0], [[0.0, 1.0]], [1.0], "spherical", channels=["nir", "red"])
    m.save(tmp_path / "m.json")
    assert Mixture.load(tmp_path / "m.json").channels == ("NIR", "RED")


def _good_dict():
    return build("diag", channels="RGB").to_dict()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("weights"), r"field \$\.weights is missing"),
        (lambda d: d.pop("means"), r"field \$\.means is missing"),
        (lambda d: d.pop("covariances"), r"field \$\.covariances is missing"),
        (lambda d: d.update(schema="other"), r"field \$\.schema must be \"pixgmm\.mixture\""),
        (
            lambda d: d.update(version=4),
            r"field \$\.version is 4; this pixgmm reads versions 1 to 3",
        ),
        (
            lambda d: d.update(covariance_type="diagonal"),
            r"field \$\.covariance_type must be one of",
        ),
        (lambda d: d.update(covariance_type=None), r"covariance_type must be one of .*; got null"),
        (
            lambda d: d.update(weights=[0.5, -0.5]),
            r"field \$\.weights\[1\] must be a number >= 0, got -0\.5",
        ),
        (lambda d: d.update(means="abc"), r"field \$\.means must be an array of K arrays"),
        (lambda d: d.update(means=[[1, 2, 3], [1, 2]]), "means is ragged"),
        (lambda d: d.update(covariances=[[1, 2, 3]]), r"covariances for covariance_type='diag'"),
        (
            lambda d: d.update(covariances=[[1, 2, 3], [1, 0, 1]]),
            r"\$\.covariances\[1\]\[1\] must be a variance > 0",
        ),
        (lambda d: d.update(channels=7), r"field \$\.channels must be null, a string"),
    ],
)
def test_load_malformed_names_the_field(tmp_path, edit, match):
    data = _good_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match) as info:
        Mixture.load(path)
    assert str(path) in str(info.value)


def test_load_not_an_object_or_not_json(tmp_path):
    path = tmp_path / "m.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object, got array"):
        Mixture.load(path)
    path.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        Mixture.load(path)
    path.write_text(
        '{"schema": "pixgmm.mixture", "version": 1, "weights": [NaN], "means": [[0]], '
        '"covariances": [1], "covariance_type": "spherical"}'
    )
    with pytest.raises(ValueError, match=r"field \$\.weights\[0\]: NaN is not a finite number"):
        Mixture.load(path)
    with pytest.raises(FileNotFoundError, match=r"cannot read model file .*missing\.json"):
        Mixture.load(tmp_path / "missing.json")


def test_save_into_a_missing_directory_names_the_path(tmp_path):
    target = tmp_path / "no" / "such" / "m.json"
    with pytest.raises(OSError, match="cannot write model file") as info:
        build("diag").save(target)
    assert str(target) in str(info.value)
