"""``pixgmm classify``: reject options, the confidence map and the separability report.

The outputs of the command (run as a subprocess on a PNG written by imageio)
are compared with :class:`pixgmm.Classifier` on the same pixels; the option
errors run in process (click's CliRunner), which is fast.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
pytest.importorskip("scipy")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")


from cli_run import invoke  # noqa: E402

SKY, SKIN = (100, 120, 150), (130, 120, 120)


def run_cli(*args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "pixgmm.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """Two overlapping colour classes, a blend between them and a far-off green patch."""
    d = tmp_path_factory.mktemp("reject")
    rng = np.random.default_rng(3)
    h, w = 60, 90
    truth = np.zeros((h, w), np.intp)
    truth[:, 45:] = 1
    image = np.where(truth[..., None] == 0, SKY, SKIN).astype(float)
    image[20:40, 40:50] = np.add(SKY, SKIN) / 2  # a blend: doubtful between the two classes
    image += rng.normal(0, 10, image.shape)
    image[5:12, 5:12] = (20, 240, 20)  # far from both classes: outside their chi-square contours
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    imageio.imwrite(d / "scene.png", image)
    models = {}
    for c, name in enumerate(("sky", "skin")):
        ok = truth == c
        ok[20:40, 40:50] = ok[5:12, 5:12] = False
        models[name] = pixgmm.fit(image[ok], 1, "full", channels="RGB", reg_covar=1.0)
        models[name].save(d / f"{name}.json")
    pixgmm.HistogramModel.fit(image.reshape(-1, 3), bins=8, channels="RGB").save(d / "hist.json")
    return d, image, models


def test_reject_and_confidence_equal_the_api(scene, tmp_path):
    d, image, models = scene
    proc = run_cli("classify", d / "scene.png", "-m", f"sky={d / 'sky.json'}",
                   "-m", f"skin={d / 'skin.json'}", "--min-probability", "0.9",
                   "--chi2-level", "0.999", "--save", "labels,colour,confidence,probability",
                   "-o", tmp_path, "--json", cwd=tmp_path)  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["rejected"] == 254 and summary["unclassified"] == 255

    clf = pixgmm.Classifier({0: models["sky"], 1: models["skin"]})
    want, confidence = clf.predict(image, fill=255, min_probability=0.9, chi2_level=0.999,
                                   reject=254, return_confidence=True)  # fmt: skip
    labels = imageio.imread(tmp_path / "scene.labels.png")
    np.testing.assert_array_equal(labels, want)
    # both options reject pixels of their own: the blend by probability, the green patch by
    # chi-square (its winning posterior is about 1)
    by_probability = clf.predict(image, fill=255, min_probability=0.9, reject=254) == 254
    by_chi2 = clf.predict(image, fill=255, chi2_level=0.999, reject=254) == 254
    assert (by_probability & ~by_chi2).sum() > 20 and (by_chi2 & ~by_probability).sum() >= 49
    assert (labels[5:12, 5:12] == 254).all()

    conf = tifffile.imread(tmp_path / "scene.confidence.tiff")
    assert conf.dtype == np.float32
    np.testing.assert_array_equal(conf, confidence.astype(np.float32))
    prob = tifffile.imread(tmp_path / "scene.classes.tiff")  # one page per class
    np.testing.assert_allclose(np.moveaxis(prob, 0, -1), clf.probability(image), rtol=1e-6)
    np.testing.assert_allclose(conf, prob.max(axis=0), rtol=1e-6)

    colour = imageio.imread(tmp_path / "scene.labels-colour.png")
    assert (colour[labels == 254] == 255).all()  # rejected pixels are white


def test_separability_report_without_inputs(scene, tmp_path):
    d, _, models = scene
    proc = run_cli("classify", "-m", f"sky={d / 'sky.json'}", "-m", f"skin={d / 'skin.json'}",
                   "--separability", "--json", cwd=tmp_path)  # fmt: skip
    got = json.loads(proc.stdout)["separability"]
    want = pixgmm.Classifier(models).summary()
    np.testing.assert_allclose(got["jeffries_matusita"], want["jeffries_matusita"], rtol=1e-12)
    assert got["least_separable"]["pair"] == ["sky", "skin"]
    assert got["least_separable"]["jeffries_matusita"] == pytest.approx(
        want["least_separable"]["jeffries_matusita"], rel=1e-12
    )
    proc = run_cli("classify", "-m", f"sky={d / 'sky.json'}", "-m", f"skin={d / 'skin.json'}",
                   "--separability", cwd=tmp_path)  # fmt: skip
    value = want["least_separable"]["jeffries_matusita"]
    assert f"least separable: sky and skin ({value:.4f})" in proc.stdout
    assert not list(tmp_path.iterdir())  # nothing written


def test_reject_label_255_and_min_probability_alone(scene, tmp_path):
    d, image, models = scene
    result = invoke("classify", d / "scene.png", "-m", f"sky={d / 'sky.json'}",
                    "-m", f"skin={d / 'skin.json'}", "--min-probability", "0.99",
                    "--reject-label", "255", "--save", "labels", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "255 = rejected" in result.stdout
    clf = pixgmm.Classifier({0: models["sky"], 1: models["skin"]})
    want = clf.predict(image, fill=255, min_probability=0.99, reject=255)
    np.testing.assert_array_equal(imageio.imread(tmp_path / "scene.labels.png"), want)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--chi2-level", "1.5"], "1.5 is not in the range 0.0<x<1.0"),
        (["--chi2-level", "0"], "--chi2-level"),
        (["--min-probability", "0"], "--min-probability"),
        (["--min-probability", "1.2"], "--min-probability"),
        (["--min-probability", "abc"], "'abc' is not a valid float"),
        (["--min-probability", "0.9", "--reject-label", "1"], "1 is the index of class 'skin'"),
        (["--min-probability", "0.9", "--reject-label", "256"], "--reject-label"),
        (["--reject-label", "200"], "give one of them too"),
        (["--save", "labels,confidnce"], "confidnce"),
    ],
)
def test_bad_option_values_are_usage_errors(scene, tmp_path, args, message):
    d = scene[0]
    result = invoke("classify", d / "scene.png", "-m", f"sky={d / 'sky.json'}",
                    "-m", f"skin={d / 'skin.json'}", *args, "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not list(tmp_path.iterdir())


def test_chi2_level_with_a_histogram_class_and_no_inputs(scene, tmp_path):
    d = scene[0]
    result = invoke("classify", d / "scene.png", "-m", f"sky={d / 'sky.json'}",
                    "-m", f"h={d / 'hist.json'}", "--chi2-level", "0.99", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 2
    assert "class 'h' is a HistogramModel; use --min-probability" in result.output
    result = invoke("classify", "-m", f"sky={d / 'sky.json'}", cwd=tmp_path)
    assert result.exit_code == 2 and "no INPUTS" in result.output
    result = invoke("classify", "-m", f"sky={d / 'sky.json'}", "-m", f"h={d / 'hist.json'}",
                    "--separability", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0 and "HistogramModel" in result.output
