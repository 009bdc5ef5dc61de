"""The built-in Jones & Rehg (1999) skin and non-skin mixtures."""

from __future__ import annotations

import json
from importlib import resources

import numpy as np
import pytest

import pixgmm
from pixgmm.models import jones_rehg_nonskin, jones_rehg_skin


def package_data():
    text = resources.files("pixgmm").joinpath("data", "jones_rehg_1999.json").read_text("utf-8")
    return json.loads(text)


def test_package_data_equals_shared_file(shared_data):
    path = shared_data / "jones_rehg_1999.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    assert package_data() == json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("func", "total"), [(jones_rehg_skin, 0.9992), (jones_rehg_nonskin, 0.9996)]
)
def test_shape_channels_and_published_weights(func, total):
    m = func()
    assert isinstance(m, pixgmm.Mixture)
    assert (m.n_components, m.n_features, m.covariance_type) == (16, 3, "diag")
    assert m.channels == "RGB"
    assert m.weights.sum() == pytest.approx(total, abs=1e-12)
    r = func(renormalize=True)
    assert r.weights.sum() == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(r.weights, m.weights / total)
    np.testing.assert_array_equal(r.means, m.means)
    np.testing.assert_array_equal(r.covariances, m.covariances)
    # renormalising shifts every log-density by the same constant
    x = np.array([[200, 140, 110], [40, 90, 160], [0, 0, 0]], np.uint8)
    diff = pixgmm.log_density(x, r, method="direct") - pixgmm.log_density(x, m, method="direct")
    np.testing.assert_allclose(diff, -np.log(total), rtol=0, atol=1e-12)


def test_values_from_the_table():
    data = package_data()
    assert data["color_order"] == "RGB" and data["covariance_type"] == "diag"
    skin, nonskin = jones_rehg_skin(), jones_rehg_nonskin()
    np.testing.assert_array_equal(skin.weights, data["skin"]["weights"])
    np.testing.assert_array_equal(nonskin.means, data["nonskin"]["means"])
    # variances are sigma squared (tens to thousands), not standard deviations
    assert skin.covariances.min() > 30 and nonskin.covariances.max() > 2500
    # spot checks against the published table (first skin kernel; disputed weight kept at 0.11)
    np.testing.assert_array_equal(skin.means[0], [73.53, 29.94, 17.76])
    np.testing.assert_array_equal(skin.covariances[0], [765.40, 121.44, 112.80])
    assert skin.weights[0] == 0.0294
    assert skin.weights[10] == 0.1100
    # the two-decimal non-skin variances, not the five-significant-digit rounding
    assert nonskin.covariances[5, 0] == 2502.24
    assert nonskin.covariances[5, 1] == 1383.53
    assert nonskin.covariances[6, 1] == 1766.94
    assert nonskin.covariances[6, 2] == 1582.52


def test_models_are_cached_and_immutable():
    assert jones_rehg_skin() is jones_rehg_skin()
    with pytest.raises(ValueError):
        jones_rehg_skin().means[0, 0] = 1.0
    with pytest.raises(AttributeError):
        jones_rehg_skin().foo = 1


def test_renormalize_must_be_bool():
    with pytest.raises(TypeError, match="renormalize must be True or False"):
        jones_rehg_skin(renormalize="yes")
    with pytest.raises(TypeError, match="renormalize"):
        jones_rehg_nonskin(renormalize=1)


def test_skin_tone_beats_sky_in_both_channel_orders():
    rgb = np.array([[200, 140, 110], [40, 90, 160]], np.uint8)
    lr = pixgmm.log_ratio(rgb, jones_rehg_skin(), jones_rehg_nonskin())
    assert lr[0] > 0 > lr[1]
    bgr = rgb[:, ::-1]
    lr_bgr = pixgmm.log_ratio(bgr, jones_rehg_skin(), jones_rehg_nonskin(), channels="BGR")
    np.testing.assert_allclose(lr_bgr, lr, rtol=1e-12)
