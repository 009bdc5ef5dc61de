"""Training records in mixture files (issue 11: priors from training-sample counts).

A mixture may record how it was trained (``Mixture.training``: the training-pixel
count and the fit's diagnostics), written by ``pixgmm fit`` as the optional
``training`` block of a version 2 model file. Version 1 files, written before,
still load; ``Classifier(..., priors="counts")`` works from loaded files.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import pixgmm
from pixgmm import Mixture
from pixgmm.fitting import ClassHistograms, fit_classes_em

MIXTURE = Mixture(
    [0.25, 0.75],
    [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0]],
    [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0]],
    "diag",
    channels="RGB",
)

#: A model file as pixgmm wrote it before training records existed (version 1).
OLD_FILE = """{
 "schema": "pixgmm.mixture",
 "version": 1,
 "covariance_type": "diag",
 "channels": "RGB",
 "weights": [0.25, 0.75],
 "means": [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0]],
 "covariances": [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0]]
}
"""


def test_a_version_1_file_still_loads_without_a_record(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(OLD_FILE)
    m = Mixture.load(path)
    assert m == MIXTURE and m.training is None
    m.save(tmp_path / "again.json")  # no record: still written as version 1
    assert json.loads((tmp_path / "again.json").read_text())["version"] == 1


def test_a_record_round_trips_through_a_version_2_file(tmp_path):
    record = {
        "n_pixels": 5000,
        "converged": False,
        "n_iter": 7,
        "log_likelihood": -12.5,
        "compression": "histogram",
        "candidates": [{"n_components": 2, "bic": 10.5}, {"n_components": 3, "bic": 9.25}],
    }
    m = MIXTURE.with_training(record)
    assert m == MIXTURE and hash(m) == hash(MIXTURE)  # not part of the identity
    assert m.training == record and MIXTURE.training is None
    m.training["n_pixels"] = 1  # a copy: the mixture stays as it was
    assert m.training["n_pixels"] == 5000
    m.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["version"] == 2 and data["training"] == record
    loaded = Mixture.load(tmp_path / "m.json")
    assert loaded == MIXTURE and loaded.training == record
    # derived mixtures describe the same training pixels
    assert pickle.loads(pickle.dumps(m)).training == record
    assert m.with_channels("BGR").training == record
    assert m.renormalized().training == record
    assert m.with_training(None).training is None


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: {**d, "training": {"n_pixel": 5}}, r"unknown field 'n_pixel' \(did you mean"),
        (lambda d: {**d, "training": {"n_pixels": 0}}, r"\$\.training\.n_pixels must be"),
        (lambda d: {**d, "training": {"n_pixels": 2.5}}, r"\$\.training\.n_pixels must be"),
        (lambda d: {**d, "training": {}}, r"field \$\.training\.n_pixels is missing"),
        (
            lambda d: {**d, "training": {"n_pixels": 5, "converged": 1}},
            r"\$\.training\.converged must be true or false",
        ),
        (
            lambda d: {**d, "version": 1, "training": {"n_pixels": 5}},
            r'\$\.training needs "version": 2',
        ),
    ],
)
def test_bad_records_name_the_field(tmp_path, edit, match):
    doc = edit({**MIXTURE.to_dict(), "version": 2})
    path = tmp_path / "m.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=match):
        Mixture.load(path)
    if "training" in doc and doc["version"] == 2:
        with pytest.raises(ValueError, match=match):
            MIXTURE.with_training(doc["training"])


def test_with_training_needs_a_mapping():
    with pytest.raises(TypeError, match="training must be a dict"):
        MIXTURE.with_training(5000)


def _two_classes():
    rng = np.random.default_rng(5)
    image = rng.normal(120, 30, size=(50, 60, 3)).clip(0, 255).astype(np.uint8)
    labels = np.where(image[..., 0] > 140, "bright", "dark")
    return image, labels


def test_count_priors_from_loaded_files_equal_those_of_the_fit_results(tmp_path):
    image, labels = _two_classes()
    results = fit_classes_em(image, labels, 2, init="k-means++")
    for c, r in results.items():
        r.mixture.with_training({"n_pixels": int(r.n_samples)}).save(tmp_path / f"{c}.json")
    loaded = {c: Mixture.load(tmp_path / f"{c}.json") for c in results}
    from_files = pixgmm.Classifier(loaded, priors="counts")
    from_results = pixgmm.Classifier(results, priors="counts")
    counts = np.array([np.sum(labels == c) for c in from_files.labels], float)
    np.testing.assert_allclose(from_files.priors, counts / counts.sum(), rtol=1e-15)
    np.testing.assert_array_equal(from_files.priors, from_results.priors)
    np.testing.assert_array_equal(from_files.predict(image), from_results.predict(image))
    # a mixture without a record cannot give a count, and says where one comes from
    with pytest.raises(TypeError, match=r"models\['dark'\].*Mixture\.with_training"):
        pixgmm.Classifier({**loaded, "dark": loaded["dark"].with_training(None)}, priors="counts")


def test_class_histograms_fit_a_chosen_subset_of_classes():
    image, labels = _two_classes()
    acc = ClassHistograms().add(image, labels)
    both = acc.fit_em(2, init="k-means++")
    one = acc.fit_em(2, init="k-means++", classes=["dark"])
    assert list(one) == ["dark"] and one["dark"].mixture == both["dark"].mixture
    assert one["dark"].bic == both["dark"].bic
    with pytest.raises(ValueError, match=r"among the classes counted \(\['bright', 'dark'\]\)"):
        acc.fit_em(2, classes=["grey"])
    with pytest.raises(ValueError, match="classes is empty"):
        acc.fit_em(2, classes=[])
    with pytest.raises(TypeError, match="sequence of labels"):
        acc.fit_em(2, classes="dark")
