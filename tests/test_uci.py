"""The built-in detector, fitting and metrics on real labelled pixels: the UCI Skin Segmentation data.

``../shared/data/Skin_NonSkin.txt``: 245,057 rows, columns B G R label (1 = skin,
2 = non-skin). The tests use a seeded subsample so they stay fast; they skip when
the shared data directory is absent.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import pixgmm
import reference as ref
from pixgmm.metrics import auc, tpr_at_fpr

SKIN = 1


@pytest.fixture(scope="module")
def uci(uci_file):
    """``(pixels (N, 3) uint8 in BGR order, labels (N,) in {1, 2})``, 20,000 rows, seeded."""
    data = np.loadtxt(uci_file, dtype=np.int64)
    assert data.shape == (245_057, 4)
    idx = np.random.default_rng(7).choice(data.shape[0], 20_000, replace=False)
    sub = data[idx]
    return sub[:, :3].astype(np.uint8), sub[:, 3]


def test_data_as_documented(uci):
    pixels, labels = uci
    assert set(np.unique(labels).tolist()) == {1, 2}
    assert 0.15 < np.mean(labels == SKIN) < 0.25  # 50,859 of 245,057 are skin


def test_declared_bgr_order_beats_wrong_order(uci):
    pixels, labels = uci
    det = pixgmm.SkinDetector()
    right = auc(det.log_ratio(pixels, channels="BGR"), labels, positive=SKIN)
    wrong = auc(det.log_ratio(pixels), labels, positive=SKIN)  # BGR read as RGB
    assert right > 0.98
    assert right - wrong > 0.5
    # the same as reversing the pixels and declaring nothing
    same = auc(det.log_ratio(np.ascontiguousarray(pixels[:, ::-1])), labels, positive=SKIN)
    assert same == right


def test_posterior_log_ratio_and_mask_agree_with_scipy_reference(uci):
    pixels, labels = uci
    X = pixels[:3000]
    prior = 0.2
    det = pixgmm.SkinDetector(prior=prior)
    lr = det.log_ratio(X, channels="BGR")
    rgb = X[:, ::-1]
    expected = ref.log_ratio(rgb, det.skin, det.nonskin, terms=ref.log_terms_scipy)
    np.testing.assert_allclose(lr, expected, rtol=0, atol=1e-9)

    z = expected + math.log(prior / (1 - prior))
    expected_p = np.where(
        z >= 0, 1 / (1 + np.exp(-np.abs(z))), np.exp(-np.abs(z)) / (1 + np.exp(-np.abs(z)))
    )
    p = det.probability(X, channels="BGR")
    np.testing.assert_allclose(p, expected_p, rtol=1e-9, atol=1e-300)

    away = np.abs(expected) > 1e-6  # pixels at the threshold could round either way
    np.testing.assert_array_equal(
        det.mask(X, channels="BGR", ratio=1.0)[away], (expected >= 0)[away]
    )
    away_p = np.abs(p - 0.5) > 1e-9
    np.testing.assert_array_equal(det.mask(X, channels="BGR")[away_p], (expected_p >= 0.5)[away_p])
    for q in (0.1, 0.9):
        np.testing.assert_array_equal(
            det.mask(X, channels="BGR", probability=q)[np.abs(p - q) > 1e-9],
            (p >= q)[np.abs(p - q) > 1e-9],
        )
    theta = 4.0
    np.testing.assert_array_equal(
        det.mask(X, channels="BGR", ratio=theta)[np.abs(expected - math.log(theta)) > 1e-6],
        (expected >= math.log(theta))[np.abs(expected - math.log(theta)) > 1e-6],
    )


@pytest.mark.parametrize("fpr", [0.01, 0.05, 0.10])
def test_threshold_for_fpr_on_real_pixels(uci, fpr):
    pixels, labels = uci
    det = pixgmm.SkinDetector()
    theta = det.threshold_for_fpr(pixels, labels, fpr, positive=SKIN, channels="BGR")
    mask = det.mask(pixels, channels="BGR", ratio=theta)
    skin = labels == SKIN
    got_fpr = np.count_nonzero(mask & ~skin) / np.count_nonzero(~skin)
    got_tpr = np.count_nonzero(mask & skin) / np.count_nonzero(skin)
    tpr, _ = tpr_at_fpr(det.log_ratio(pixels, channels="BGR"), labels, fpr, positive=SKIN)
    assert got_fpr <= fpr
    assert got_tpr == pytest.approx(tpr)


def test_fitted_models_and_histograms_on_a_held_out_half(uci):
    pixels, labels = uci
    train = np.arange(labels.size) % 2 == 0
    models = pixgmm.fit_classes(
        pixels[train], labels[train], 4, reg_covar=1.0, max_samples=4000, channels="BGR"
    )
    assert set(models) == {1, 2}
    fitted = pixgmm.SkinDetector(models[1], models[2])
    hist = pixgmm.SkinDetector(
        *(
            pixgmm.HistogramModel.fit(pixels[train][labels[train] == c], channels="BGR")
            for c in (1, 2)
        )
    )
    test_px, test_y = pixels[~train], labels[~train]
    for det in (fitted, hist):
        # the models know their order: declaring the pixels' order (BGR) or nothing agrees
        s = det.log_ratio(test_px, channels="BGR")
        np.testing.assert_allclose(s, det.log_ratio(test_px), atol=1e-9)
        assert auc(s, test_y, positive=SKIN) > 0.99
    # a Classifier over the same models predicts the UCI labels
    clf = pixgmm.Classifier(models, priors={1: 0.2, 2: 0.8})
    assert np.mean(clf.predict(test_px, channels="BGR") == test_y) > 0.97


def test_bad_labels_on_real_pixels(uci):
    pixels, labels = uci
    det = pixgmm.SkinDetector()
    with pytest.raises(ValueError, match=r"labels must be binary.*positive="):
        det.threshold_for_fpr(pixels, labels, 0.05, channels="BGR")
    with pytest.raises(ValueError, match=r"labels has shape \(10,\)"):
        pixgmm.fit_classes(pixels[:20], labels[:10], 1)
