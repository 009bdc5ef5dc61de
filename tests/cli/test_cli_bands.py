"""No silent wrong map: bands matched by name, ``--bands``, the models' value scale, label values.

A 6-band uint16 GeoTIFF with band descriptions (``tests/landcover_scene.py``),
written again with its bands in another order, under other names, without
names and with two more bands; models fitted on its raw values. Every map is
compared with the Python API on the original pixels (NaN at nodata).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pyogrio")

import landcover_scene as scene  # noqa: E402
import pixgmm  # noqa: E402

ORDER = [4, 0, 5, 2, 1, 3]  # the shuffled file's bands: B11, B2, B12, B4, B3, B8


def run_cli(*args, cwd, check_rc=0):
    cmd = [sys.executable, "-m", "pixgmm", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def read(path):
    """``(band 1, profile, colour table or None, band 1's tags)`` of a GeoTIFF output."""
    with rasterio.open(path) as src:
        try:
            colormap = src.colormap(1)
        except ValueError:  # no colour table (a float map)
            colormap = None
        return src.read(1), src.profile, colormap, src.tags(1)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bands")
    pixels = scene.scene_pixels()
    scene.write_scene(d / "scene.tif", pixels)
    scene.write_scene(d / "shuffled.tif", pixels, order=ORDER)
    scene.write_scene(d / "nonames.tif", pixels, descriptions=False)
    with rasterio.open(d / "renamed.tif", "w", driver="GTiff", width=scene.W, height=scene.H,
                       count=6, dtype="uint16", crs=scene.CRS, transform=scene.transform(),
                       nodata=0) as dst:  # fmt: skip
        dst.write(np.moveaxis(pixels, -1, 0))
        for band, name in enumerate(("blue", "green", "red", "nir", "swir1", "swir2"), start=1):
            dst.set_band_description(band, name)
    wider = np.concatenate([pixels, pixels[..., :2] // 2 + 1], axis=-1)  # B1 and B9 besides
    names = ("B1", "B2", "B3", "B4", "B8", "B9", "B11", "B12")
    order = [6, 0, 1, 2, 3, 7, 4, 5]
    with rasterio.open(d / "wider.tif", "w", driver="GTiff", width=scene.W, height=scene.H,
                       count=8, dtype="uint16", crs=scene.CRS, transform=scene.transform(),
                       nodata=0) as dst:  # fmt: skip
        dst.write(np.moveaxis(wider[..., order], -1, 0))
        for band, name in enumerate(names, start=1):
            dst.set_band_description(band, name)
    scene.write_polygons(d / "polygons.gpkg")
    models = pixgmm.fitting.fit_training(d / "scene.tif", d / "polygons.gpkg", 2, "full",
                                         scale="none")  # fmt: skip
    (d / "models").mkdir()
    specs = []
    for c, model in models.items():
        model.save(d / "models" / f"{c}.json")
        specs += ["-m", f"{c}=models/{c}.json"]
    raw = pixels.astype(np.float64)
    raw[scene.nodata_mask()] = np.nan
    clf = pixgmm.Classifier(models)
    want = clf.predict(raw, channels=list(scene.BANDS), fill=255)
    return {"dir": d, "specs": specs, "models": models, "raw": raw, "want": want}


def test_bands_in_another_order_give_the_same_map(files, tmp_path):
    d, specs = files["dir"], files["specs"]
    for name in ("scene", "shuffled"):
        proc = run_cli("classify", f"{name}.tif", *specs, "--save", "labels,confidence",
                       "-o", tmp_path, "--json", cwd=d)  # fmt: skip
        note = json.loads(proc.stdout)["results"][0]["scale"]
        if name == "shuffled":
            assert note.startswith("bands B2, B3, B4, B8, B11, B12 (2, 5, 4, 6, 1, 3) matched to "
                                   "the models by name")  # fmt: skip
        assert "uint16 pixels used as read (the models were fitted on raw values)" in note
    labels, profile, colormap, tags = read(tmp_path / "scene.labels.tif")
    np.testing.assert_array_equal(labels, files["want"])  # the class values 1..4, 255 at nodata
    assert profile["dtype"] == "uint8" and profile["nodata"] == 255
    np.testing.assert_array_equal(read(tmp_path / "shuffled.labels.tif")[0], labels)
    np.testing.assert_array_equal(read(tmp_path / "shuffled.confidence.tif")[0],
                                  read(tmp_path / "scene.confidence.tif")[0])  # fmt: skip
    assert (labels == scene.classes())[~scene.nodata_mask()].mean() > 0.95
    # the in-memory path (a heatmap needs the whole map) matches by name too
    model = "models/3.json"
    for name in ("scene", "shuffled"):
        run_cli("density", f"{name}.tif", "-m", model, "--log", "--format", "tiff,png",
                "-o", tmp_path / "d", cwd=d)  # fmt: skip
    got = read(tmp_path / "d" / "shuffled.logdensity.tif")[0]
    np.testing.assert_array_equal(got, read(tmp_path / "d" / "scene.logdensity.tif")[0])
    want = pixgmm.log_density(files["raw"], files["models"][3]).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_other_band_names_are_refused_with_both_lists(files, tmp_path):
    d, specs = files["dir"], files["specs"]
    proc = run_cli("classify", "renamed.tif", *specs, "-o", tmp_path, cwd=d, check_rc=1)
    assert ("the bands are BLUE, GREEN, RED, NIR, SWIR1, SWIR2 but the models' channels are "
            "B2, B3, B4, B8, B11, B12") in proc.stderr  # fmt: skip
    proc = run_cli("density", "renamed.tif", "-m", "models/1.json", "-o", tmp_path, cwd=d,
                   check_rc=1)  # fmt: skip
    assert "BLUE, GREEN" in proc.stderr and "B2, B3, B4" in proc.stderr
    assert not list(tmp_path.iterdir())


def test_bands_select_a_models_bands_from_a_wider_scene(files, tmp_path):
    d, specs = files["dir"], files["specs"]
    proc = run_cli("classify", "wider.tif", *specs, "--save", "labels", "-o", tmp_path, cwd=d,
                   check_rc=1)  # fmt: skip
    assert ("the bands are B1, B2, B3, B4, B8, B9, B11, B12 but the models' channels are B2, "
            "B3, B4, B8, B11, B12; select the models' bands in their order with --bands "
            "B2,B3,B4,B8,B11,B12") in proc.stderr  # fmt: skip
    want = files["want"]
    for i, bands in enumerate(["B2,B3,B4,B8,B11,B12", "b12,B11,B8,B4,B3,B2", "2,3,4,5,7,8"]):
        run_cli("classify", "wider.tif", *specs, "--bands", bands, "--save", "labels",
                "-o", tmp_path / str(i), cwd=d)  # fmt: skip
        np.testing.assert_array_equal(read(tmp_path / str(i) / "wider.labels.tif")[0], want)
    # numbers select bands by position, and the names of the bands chosen are still checked
    proc = run_cli("classify", "wider.tif", *specs, "--bands", "1,2,3,4,5,6", "-o", tmp_path,
                   cwd=d, check_rc=1)  # fmt: skip
    assert "the bands selected by --bands are B1, B2, B3, B4, B8, B9" in proc.stderr
    # a file without band names is read in its order; names cannot select its bands
    run_cli("classify", "nonames.tif", *specs, "--save", "labels", "-o", tmp_path / "n", cwd=d)
    np.testing.assert_array_equal(read(tmp_path / "n" / "nonames.labels.tif")[0], want)
    proc = run_cli("classify", "nonames.tif", *specs, "--bands", "B2,B3,B4,B8,B11,B12",
                   "-o", tmp_path, cwd=d, check_rc=1)  # fmt: skip
    assert "the image's bands have no descriptions (names); select them by number" in proc.stderr
    proc = run_cli("classify", "scene.tif", *specs, "--bands", "1,2,3", cwd=d, check_rc=2)
    assert "selects 3 band(s) but the models have 6 channel(s)" in proc.stderr


def test_scale_auto_follows_the_models_and_refuses_to_guess(files, tmp_path):
    d, specs = files["dir"], files["specs"]
    run_cli("classify", "scene.tif", *specs, "--save", "labels", "--scale", "none",
            "-o", tmp_path / "none", cwd=d)  # fmt: skip
    run_cli("classify", "scene.tif", *specs, "--save", "labels", "-o", tmp_path / "auto", cwd=d)
    auto = read(tmp_path / "auto" / "scene.labels.tif")[0]
    np.testing.assert_array_equal(auto, read(tmp_path / "none" / "scene.labels.tif")[0])
    np.testing.assert_array_equal(auto, files["want"])  # raw values, not scaled to 0..255
    # an explicit --scale that contradicts the models, or models that disagree: one line, exit 2
    proc = run_cli("classify", "scene.tif", *specs, "--scale", "unit", cwd=d, check_rc=2)
    assert proc.stderr.strip().splitlines() == [
        "pixgmm: error: --scale unit scales pixels to 0..255, but the models were fitted on the "
        "raw scale (1=models/1.json, 2=models/2.json, 3=models/3.json, 4=models/4.json); leave "
        "--scale out: auto follows the models"
    ]
    colour = files["models"][4].with_training({"n_pixels": 10, "scale": "0..255"})
    colour.save(tmp_path / "colour.json")
    proc = run_cli("classify", "scene.tif", *specs[:6], "-m", f"4={tmp_path / 'colour.json'}",
                   cwd=d, check_rc=2)  # fmt: skip
    assert proc.stderr.strip().splitlines() == [
        f"pixgmm: error: the models were fitted on different value scales (0..255: "
        f"4={tmp_path / 'colour.json'}; raw: 1=models/1.json, 2=models/2.json, 3=models/3.json); "
        "fit them all on one scale (pixgmm fit --scale)"
    ]
    proc = run_cli("density", "scene.tif", "-m", tmp_path / "colour.json", "--scale", "none",
                   cwd=d, check_rc=2)  # fmt: skip
    assert "--scale none reads values as they are, but the models were fitted on the 0..255" in (
        proc.stderr
    )
    # models that record no scale (6 channels): auto reads no 16-bit image, and says what to do
    old = files["models"][1].with_training(None)
    old.save(tmp_path / "old.json")
    proc = run_cli("density", "scene.tif", "-m", tmp_path / "old.json", "-o", tmp_path / "o",
                   cwd=d, check_rc=1)  # fmt: skip
    assert "the models record no value scale" in proc.stderr
    assert "pass --scale none if the models were fitted on raw values" in proc.stderr
    run_cli("density", "scene.tif", "-m", tmp_path / "old.json", "--scale", "none",
            "-o", tmp_path / "o", cwd=d)  # fmt: skip
    got = read(tmp_path / "o" / "scene.density.tif")[0]
    np.testing.assert_allclose(got, pixgmm.density(files["raw"], old).astype(np.float32),
                               rtol=1e-6)  # fmt: skip


def test_label_values_names_and_reserved_values(files, tmp_path):
    d = files["dir"]
    want = files["want"]
    names = ["water", "forest", "crops", "urban"]
    specs = [a for c, n in zip((1, 2, 3, 4), names) for a in ("-m", f"{n}=models/{c}.json")]
    proc = run_cli("classify", "scene.tif", *specs, "--save", "labels", "-o", tmp_path / "n",
                   "--json", cwd=d)  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["label_values"] == "indices"
    assert [(e["value"], e["label"]) for e in summary["classes"]] == list(enumerate(names))
    labels, profile, colormap, tags = read(tmp_path / "n" / "scene.labels.tif")
    np.testing.assert_array_equal(labels, np.where(want == 255, 255, want - 1))
    assert tags["categories"].split(",")[:4] == names
    assert tags["categories"].split(",")[255] == "unclassified"
    assert colormap[0][:3] == tuple(int(summary["classes"][0]["colour"][i:i + 2], 16)
                                    for i in (1, 3, 5))  # fmt: skip
    assert colormap[255] == (0, 0, 0, 0)
    # integer labels are written as they are, or as indices with --label-values index
    ints = files["specs"]
    run_cli("classify", "scene.tif", *ints, "--label-values", "index", "--save", "labels",
            "-o", tmp_path / "i", cwd=d)  # fmt: skip
    np.testing.assert_array_equal(read(tmp_path / "i" / "scene.labels.tif")[0], labels)
    # class values beyond 253 make a uint16 map: 65535 unclassified (its nodata), 65534 rejected
    big = ["-m", "1=models/1.json", "-m", "300=models/2.json", "-m", "3=models/3.json",
           "-m", "4=models/4.json"]  # fmt: skip
    proc = run_cli("classify", "scene.tif", *big, "--min-probability", "0.999",
                   "--save", "labels", "-o", tmp_path / "u", "--json", cwd=d)  # fmt: skip
    summary = json.loads(proc.stdout)
    assert (summary["unclassified"], summary["rejected"]) == (65535, 65534)
    labels, profile, colormap, _ = read(tmp_path / "u" / "scene.labels.tif")
    assert profile["dtype"] == "uint16" and profile["nodata"] == 65535
    clf = pixgmm.Classifier({v: files["models"][c] for v, c in ((1, 1), (300, 2), (3, 3), (4, 4))})
    expect = clf.predict(files["raw"], channels=list(scene.BANDS), fill=65535,
                         min_probability=0.999, reject=65534)  # fmt: skip
    np.testing.assert_array_equal(labels, expect)
    assert (labels == 300).any() and (labels == 65534).any() and colormap[300][3] == 255
    # a reject label that is a class value is refused
    proc = run_cli("classify", "scene.tif", *files["specs"], "--min-probability", "0.9",
                   "--reject-label", "3", cwd=d, check_rc=2)  # fmt: skip
    assert "3 is the value of class '3' in the label map" in proc.stderr
