"""``pixgmm fit IMAGE --training TRAINING``: class models from polygons, points or a label raster.

The user's files are real files written by rasterio and pyogrio
(``tests/landcover_scene.py``: a 6-band uint16 GeoTIFF with band descriptions);
the command runs as a subprocess. The pixels under each polygon are known from
NumPy, so a one-component model is checked against the mean and covariance of
exactly those pixels.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

import landcover_scene as scene  # noqa: E402
import pixgmm  # noqa: E402
from pixgmm.io import windows  # noqa: E402


def run_cli(*args, cwd, check_rc=0):
    cmd = [sys.executable, "-m", "pixgmm", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The scene, its training samples as polygons, points and a label raster, and in WGS 84."""
    d = tmp_path_factory.mktemp("training")
    scene.write_scene(d / "scene.tif")
    scene.write_polygons(d / "polygons.gpkg")
    labels = scene.label_raster()
    points, rows, cols = scene.pixel_centres(labels > 0)
    scene.write_vector(d / "points.gpkg", points, labels[rows, cols].astype(np.int64))
    scene.write_label_raster(d / "labels.tif", labels)
    from pixgmm.io.vector import read_features, write_features

    write_features(d / "wgs84.geojson", read_features(d / "polygons.gpkg").to_crs("EPSG:4326"))
    return d


def _models(folder):
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


@pytest.mark.parametrize(("k", "covariance"), [(1, "full"), (3, "diag")])
def test_polygons_points_a_label_raster_and_another_crs_give_the_same_models(files, k, covariance):
    d = files
    got = {}
    for name in ("polygons.gpkg", "points.gpkg", "labels.tif", "wgs84.geojson"):
        out = d / f"k{k}-{name.replace('.', '-')}"
        run_cli("fit", "scene.tif", "--training", name, "-k", k, "--covariance", covariance,
                "--scale", "none", "-o", f"{out.name}/{{label}}.json", "-q", cwd=d)  # fmt: skip
        got[name] = _models(out)
    assert sorted(got["polygons.gpkg"]) == ["1.json", "2.json", "3.json", "4.json"]
    for name in ("points.gpkg", "labels.tif", "wgs84.geojson"):
        assert got[name] == got["polygons.gpkg"], name  # bit for bit, the records too
    pixels = scene.scene_pixels().astype(np.float64)
    labels = scene.label_raster()
    for c in (1, 2, 3, 4):
        model = got["polygons.gpkg"][f"{c}.json"]
        assert model["version"] == 3 and model["channels"] == list(scene.BANDS)
        under = pixels[labels == c]
        assert model["training"]["n_pixels"] == under.shape[0]
        assert model["training"]["scale"] == "raw"
        if k == 1:  # the EM's one component is the pixels' mean and covariance (+ reg_covar 1)
            np.testing.assert_allclose(model["means"][0], under.mean(axis=0), rtol=1e-12)
            cov = np.cov(under, rowvar=False, bias=True) + np.eye(6)
            np.testing.assert_allclose(model["covariances"][0], cov, rtol=1e-9)


def test_the_api_reads_only_the_windows_with_samples(files, monkeypatch):
    d = files
    whole = pixgmm.fitting.fit_training(d / "scene.tif", d / "polygons.gpkg", 1, scale="none")
    from rasterio.env import get_gdal_config

    read = []
    cache = set()
    real = windows.WindowReader.read

    def spy(self, window, bands=None):
        read.append(window)
        cache.add(str(get_gdal_config("GDAL_CACHEMAX")))
        return real(self, window, bands)

    monkeypatch.setattr(windows, "WINDOW_BYTES", 32 * 32 * 12)  # one 32 x 32 block a window
    monkeypatch.setattr(windows.WindowReader, "read", spy)
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    small = pixgmm.fitting.fit_training(d / "scene.tif", d / "polygons.gpkg", 1, scale="none")
    labels = scene.label_raster()
    plan = windows.plan_windows(scene.H, scene.W, (32, 32), 12, 32 * 32 * 12)
    assert len(plan) == 20
    needed = [w for w in plan if labels[w.slices].any()]
    assert read == needed  # the windows with training pixels, each once
    # read under GDAL's cache of a few windows (GDAL_CACHEMAX is not set here)
    assert cache == {str(windows.CACHE_BYTES)}
    for c in whole:  # the same pixels, met in another order
        np.testing.assert_allclose(small[c].means, whole[c].means, rtol=1e-12)
        np.testing.assert_allclose(small[c].covariances, whole[c].covariances, rtol=1e-9)
        assert small[c].training == whole[c].training
    assert whole[1].channels == scene.BANDS and whole[1].training["scale"] == "raw"


def test_validation_holds_out_whole_polygons_seeded(files, tmp_path):
    d = files
    args = ["fit", d / "scene.tif", "--training", d / "polygons.gpkg", "-k", "1",
            "--validation-fraction", "0.5", "--random-state", "4", "--json"]  # fmt: skip
    proc = run_cli(*args, "-o", tmp_path / "a" / "{label}.json", cwd=tmp_path)
    summary = json.loads(proc.stdout)
    held_path = tmp_path / "a" / "polygons.validation.gpkg"
    assert summary["validation"]["path"] == str(held_path)
    assert summary["validation"]["features"] == 4
    from pixgmm.io.vector import read_features

    held = read_features(held_path)
    original = read_features(d / "polygons.gpkg")
    assert sorted(held.values) == [1, 2, 3, 4]  # one of the two polygons of each class
    # each held-out feature is one of the training polygons, whole
    matched = [int(np.flatnonzero(shapely.equals(original.geometries, g))[0])
               for g in held.geometries]  # fmt: skip
    kept = sorted(set(range(len(original.values))) - set(matched))
    labels = np.zeros((scene.H, scene.W), np.uint8)
    for i in kept:
        c, r0, r1, c0, c1 = scene.RECTANGLES[i]
        labels[r0:r1, c0:c1] = c
    for entry in summary["models"]:
        assert entry["pixels"] == int((labels == entry["class"]).sum())  # only the kept ones
        assert entry["features"] == 1
    # the same seed holds out the same polygons; another seed other ones
    proc = run_cli(*args, "-o", tmp_path / "b" / "{label}.json", cwd=tmp_path)
    again = read_features(tmp_path / "b" / "polygons.validation.gpkg")
    assert shapely.equals(again.geometries, held.geometries).all()
    args[args.index("4")] = "5"
    run_cli(*args, "--validation-out", tmp_path / "c.fgb", "-o", tmp_path / "c" / "{label}.json",
            cwd=tmp_path)  # fmt: skip
    other = read_features(tmp_path / "c.fgb")
    assert sorted(other.values) == [1, 2, 3, 4]
    assert not shapely.equals(other.geometries, held.geometries).all()


def _vector(d, file_name, geometries, values, **kw):
    return scene.write_vector(d / file_name, geometries, values, **kw)


def test_every_problem_with_the_samples_is_one_line_and_exit_2(files, tmp_path):
    d = files
    t = tmp_path
    outside = _vector(t, "outside.gpkg", [scene.rectangle(0, 5, 0, 5), shapely.box(0, 0, 50, 50)],
                      [1, 3])  # fmt: skip
    tiny = shapely.box(scene.X0 + 1, scene.Y0 - 4, scene.X0 + 4, scene.Y0 - 1)  # no pixel centre
    empty = _vector(t, "tiny.gpkg", [scene.rectangle(0, 5, 0, 5), tiny], [1, 5])
    nodata = _vector(t, "nodata.gpkg", [scene.rectangle(0, 5, 0, 5), scene.rectangle(0, 3, 140, 150)],
                     [1, 2])  # fmt: skip
    fields = _vector(t, "fields.gpkg", [scene.rectangle(0, 5, 0, 5)], [1],
                     name=np.array(["water"], dtype=object))  # fmt: skip
    fraction = _vector(t, "fraction.gpkg", [scene.rectangle(0, 5, 0, 5)] * 2, [1.0, 2.5])
    slash = _vector(t, "slash.gpkg", [scene.rectangle(0, 5, 0, 5)], np.array(["a/b"], dtype=object))
    with rasterio.open(t / "off.tif", "w", driver="GTiff", width=10, height=10, count=1,
                       dtype="uint8", crs=scene.CRS, transform=scene.transform()) as dst:  # fmt: skip
        dst.write(np.ones((1, 10, 10), np.uint8))
    on_nodata = np.zeros((scene.H, scene.W), np.uint8)
    on_nodata[0:5, 0:5], on_nodata[0:3, 140:150] = 1, 7
    raster = scene.write_label_raster(t / "on-nodata.tif", on_nodata)
    cases = [
        (["--training", outside], f"{outside}: feature 2 (class 3) lie(s) outside the image"),
        (
            ["--training", raster],
            f"{raster}: class 7 has no training pixels: all its 30 labelled pixels are on the "
            "image's nodata",
        ),
        (
            ["--training", empty],
            f"{empty}: class 5 has no training pixels: its 1 feature(s) cover "
            "no pixel centre of the image",
        ),
        (
            ["--training", nodata],
            "class 2 has no training pixels: its 1 feature(s) cover only pixels where the "
            "image has no data (30 pixels)",
        ),
        (
            ["--training", fields],
            "--field: " + f"{fields} has 2 fields (class, name); name the class field",
        ),
        (
            ["--training", fields, "--field", "klass"],
            "has no field 'klass'; its fields are class, name",
        ),
        (["--training", fraction], "field 'class' holds 2.5 (feature 2), which is not a class"),
        (["--training", slash], "class 'a/b' cannot be part of a file name"),
        (["--training", t / "off.tif"], "off.tif is not on the image's grid (10 x 10 pixels"),
        (
            ["--training", d / "labels.tif", "--validation-fraction", "0.3"],
            "--validation-fraction holds out whole features of a vector file",
        ),
        (
            ["--training", d / "polygons.gpkg", "--bands", "B2,B5"],
            "--bands names band 'B5', which is not in the image; its bands are B2, B3, B4, B8, "
            "B11, B12",
        ),
        (["--training", t / "absent.gpkg"], "absent.gpkg: no such file"),
        (["--field", "class"], "--field go(es) with --training"),
    ]
    for extra, message in cases:
        proc = run_cli("fit", d / "scene.tif", *extra, "-o", t / "m" / "{label}.json", cwd=t,
                       check_rc=2)  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("pixgmm: error: "), proc.stderr
        assert message in lines[0], (message, lines[0])
    proc = run_cli("fit", d / "scene.tif", d / "scene.tif", "--training", d / "polygons.gpkg",
                   "-o", t / "m.json", cwd=t, check_rc=2)  # fmt: skip
    assert "give exactly one IMAGE (got 2)" in proc.stderr
    assert not (t / "m").exists()


def test_bands_select_the_channels_and_text_classes_name_the_models(files, tmp_path):
    d = files
    names = np.array(["water", "forest", "crops", "urban"], dtype=object)
    path = _vector(tmp_path, "named.gpkg", [scene.rectangle(*r[1:]) for r in scene.RECTANGLES],
                   names[[r[0] - 1 for r in scene.RECTANGLES]], field="landcover")  # fmt: skip
    run_cli("fit", d / "scene.tif", "--training", path, "--bands", "B8,3,b11", "-k", "1",
            "--scale", "none", "-o", tmp_path / "m" / "{label}.json", "-q", cwd=tmp_path)  # fmt: skip
    water = pixgmm.Mixture.load(tmp_path / "m" / "water.json")
    assert water.channels == ("B8", "B4", "B11")
    pixels = scene.scene_pixels().astype(np.float64)[..., [3, 2, 4]]
    want = pixels[scene.label_raster() == 1].mean(axis=0)
    np.testing.assert_allclose(water.means[0], want, rtol=1e-12)
    assert sorted(p.stem for p in (tmp_path / "m").glob("*.json")) == sorted(names)
