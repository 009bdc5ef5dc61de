"""``pixgmm accuracy MAP --reference REFERENCE``: the report against an independent computation.

The map is written by ``pixgmm classify`` (or by rasterio directly), the
reference samples by pyogrio and rasterio; the figures are checked against
:func:`pixgmm.metrics.accuracy_report` on arrays read back here (the map's value
at each point's pixel, the map's pixel counts from ``numpy.unique``) and
against scikit-learn. The full recipe (fit from polygons, classify, accuracy)
runs on a generated 6-band uint16 GeoTIFF and a GeoPackage holding training
polygons and validation points.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

import landcover_scene as scene  # noqa: E402
import pixgmm  # noqa: E402
from pixgmm.metrics import accuracy_report  # noqa: E402


def run_cli(*args, cwd, check_rc=0):
    cmd = [sys.executable, "-m", "pixgmm", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def one_line_error(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pixgmm: error: "), proc.stderr
    return lines[0]


def read_map(path):
    with rasterio.open(path) as src:
        return src.read(1), src.nodata


def counts_of(labels, nodata):
    values, n = np.unique(labels[labels != nodata], return_counts=True)
    return dict(zip(values.tolist(), n.tolist()))


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    """A map of the scene by pixgmm classify, and reference points (some on nodata, outside)."""
    d = tmp_path_factory.mktemp("accuracy")
    scene.write_scene(d / "scene.tif")
    scene.write_polygons(d / "training.gpkg")
    models = pixgmm.fitting.fit_training(d / "scene.tif", d / "training.gpkg", 1, "full")
    specs = []
    for c, model in models.items():
        model.save(d / f"{c}.json")
        specs += ["-m", f"{c}={c}.json"]
    run_cli("classify", "scene.tif", *specs, "--save", "labels", "-o", "maps", cwd=d)
    names = ["water", "forest", "crops", "urban"]
    named = [a for c, n in zip((1, 2, 3, 4), names) for a in ("-m", f"{n}={c}.json")]
    run_cli("classify", "scene.tif", *named, "--save", "labels", "-o", "named", cwd=d)
    points, rows, cols, truth = scene.validation_points(150, seed=9)
    # three points on the nodata patch and two outside the scene
    nod = shapely.points(scene.X0 + np.array([1405.0, 1455.0, 1495.0]), scene.Y0 - 5.0)
    away = shapely.points([scene.X0 - 500.0, scene.X0 + 99999.0], scene.Y0 - 5.0)
    geoms = np.concatenate([points, nod, away])
    ref = np.concatenate([truth, [1, 2, 3], [1, 1]])
    scene.write_vector(d / "points.gpkg", geoms, ref)
    scene.write_vector(d / "names.gpkg", geoms, np.array(names, dtype=object)[ref - 1],
                       field="landcover")  # fmt: skip
    return {"dir": d, "rows": np.concatenate([rows, [0, 0, 0]]),
            "cols": np.concatenate([cols, [140, 145, 149]]), "ref": ref[:-2]}  # fmt: skip


def _strip(d):
    return {k: v for k, v in d.items() if k != "notes"}


def test_the_report_equals_accuracy_report_and_scikit_learn(mapped, tmp_path):
    d = mapped["dir"]
    proc = run_cli("accuracy", "maps/scene.labels.tif", "--reference", "points.gpkg", "--json",
                   cwd=d)  # fmt: skip
    got = json.loads(proc.stdout)
    labels, nodata = read_map(d / "maps" / "scene.labels.tif")
    at_points = labels[mapped["rows"], mapped["cols"]]
    want = accuracy_report(at_points, mapped["ref"], mapped_counts=counts_of(labels, nodata),
                           pixel_area=100.0, nodata=255)  # fmt: skip
    assert _strip(got) == _strip(json.loads(json.dumps(want.to_dict())))
    assert got["n_in_nodata"] == 3 and got["nodata"] == 255
    assert got["notes"][-2:] == [
        "153 reference point(s) on the map: one sample each",
        "2 reference feature(s) lie outside the map: not counted",
    ]
    assert "3 reference sample(s) fall on map nodata and are not counted" in got["notes"]
    strat = got["stratified"]
    assert strat["pixel_area_m2"] == 100.0
    assert [c["mapped_hectares"] for c in strat["per_class"]] == [
        counts_of(labels, nodata)[c] / 100 for c in (1, 2, 3, 4)
    ]
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    ok = at_points != 255
    m, r = at_points[ok], mapped["ref"][ok]
    np.testing.assert_array_equal(got["confusion_matrix"], confusion_matrix(r, m).T)
    assert got["kappa"] == pytest.approx(cohen_kappa_score(r, m), rel=1e-12)
    assert got["overall_accuracy"] == pytest.approx((m == r).mean(), rel=1e-15)
    # the text report, and names matched through the map's legend (pixgmm classify's)
    proc = run_cli("accuracy", "maps/scene.labels.tif", "-r", "points.gpkg", cwd=d)
    assert "Confusion matrix (sample counts; rows: map, columns: reference)" in proc.stdout
    assert "(3 more fell on map nodata and are not counted)" in proc.stdout
    proc = run_cli("accuracy", "named/scene.labels.tif", "-r", "names.gpkg", "--json", cwd=d)
    named = json.loads(proc.stdout)
    assert named["names"] == ["water", "forest", "crops", "urban"] and named["classes"] == [
        0,
        1,
        2,
        3,
    ]
    assert named["confusion_matrix"] == got["confusion_matrix"]
    proc = run_cli("accuracy", "maps/scene.labels.tif", "-r", "names.gpkg", cwd=d, check_rc=2)
    assert one_line_error(proc) == (
        "pixgmm: error: names.gpkg: class(es) 'crops', 'forest', 'urban', 'water' are not "
        "classes of the map maps/scene.labels.tif (its classes: '1', '2', '3', '4')"
    )


def test_polygons_and_a_raster_give_every_pixel_inside(mapped, tmp_path):
    d = mapped["dir"]
    labels, nodata = read_map(d / "maps" / "scene.labels.tif")
    truth = scene.classes()
    boxes = [(30, 40, 5, 20), (60, 75, 55, 70), (85, 100, 120, 140), (3, 8, 120, 145)]
    polygons = [scene.rectangle(*b) for b in boxes]
    ref_raster = np.zeros((scene.H, scene.W), np.uint8)
    for r0, r1, c0, c1 in boxes:
        ref_raster[r0:r1, c0:c1] = truth[r0:r1, c0:c1]
    values = [int(truth[b[0], b[2]]) for b in boxes]
    scene.write_vector(tmp_path / "poly.gpkg", polygons, values)
    scene.write_label_raster(tmp_path / "ref.tif", ref_raster)
    chosen = ref_raster > 0
    want = accuracy_report(labels[chosen], ref_raster[chosen], mapped_counts=counts_of(labels, 255),
                           pixel_area=100.0, nodata=255)  # fmt: skip
    for ref in ("poly.gpkg", "ref.tif"):
        proc = run_cli("accuracy", d / "maps" / "scene.labels.tif", "-r", ref, "--json",
                       cwd=tmp_path)  # fmt: skip
        got = json.loads(proc.stdout)
        assert _strip(got) == _strip(json.loads(json.dumps(want.to_dict())))
        assert got["n_samples"] == int(chosen.sum())
    assert got["notes"][-1] == f"{int(chosen.sum())} labelled pixels of the reference raster, one " \
                               "sample each"  # fmt: skip
    proc = run_cli("accuracy", d / "maps" / "scene.labels.tif", "-r", "poly.gpkg", cwd=tmp_path)
    assert "4 reference polygon(s) give" in proc.stdout and "are a cluster" in proc.stdout


def test_a_geographic_map_gives_pixels_and_report_files(mapped, tmp_path):
    d = mapped["dir"]
    labels, _ = read_map(d / "maps" / "scene.labels.tif")
    from rasterio.transform import from_origin

    with rasterio.open(tmp_path / "geo.tif", "w", driver="GTiff", width=scene.W, height=scene.H,
                       count=1, dtype="uint8", crs="EPSG:4326", nodata=255,
                       transform=from_origin(10.0, 50.0, 0.001, 0.001)) as dst:  # fmt: skip
        dst.write(labels[None])
    rows, cols = mapped["rows"][:150], mapped["cols"][:150]
    pts = shapely.points(10.0 + (cols + 0.5) * 0.001, 50.0 - (rows + 0.5) * 0.001)
    scene.write_vector(tmp_path / "pts.geojson", pts, mapped["ref"][:150], crs="EPSG:4326")
    out = tmp_path / "report"
    proc = run_cli("accuracy", "geo.tif", "-r", "pts.geojson", "-o", out, "--json", cwd=tmp_path)
    got = json.loads(proc.stdout)
    assert got["stratified"]["pixel_area_m2"] is None
    assert "mapped_hectares" not in got["stratified"]["per_class"][0]
    assert any("geographic (degrees)" in n for n in got["notes"])
    want = accuracy_report(labels[rows, cols], mapped["ref"][:150], mapped_counts=counts_of(labels, 255),
                           nodata=255)  # fmt: skip
    assert got["stratified"]["per_class"] == want.to_dict()["stratified"]["per_class"]
    assert sorted(p.name for p in out.iterdir()) == [
        "accuracy.json", "area-estimates.png", "confusion-matrix.csv", "confusion-matrix.png"]  # fmt: skip
    assert json.loads((out / "accuracy.json").read_text()) == got
    assert (out / "confusion-matrix.csv").read_text() == want.matrix_csv()
    for png in ("area-estimates.png", "confusion-matrix.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    proc = run_cli("accuracy", "geo.tif", "-r", "pts.geojson", "-o", out, cwd=tmp_path, check_rc=2)
    assert one_line_error(proc) == (f"pixgmm: error: {out / 'accuracy.json'} exists; pass "
                                    "--overwrite to replace the report")  # fmt: skip
    run_cli("accuracy", "geo.tif", "-r", "pts.geojson", "-o", out, "--overwrite", "-q",
            cwd=tmp_path)  # fmt: skip


def test_every_usage_error_is_one_line_and_exit_2(mapped, tmp_path):
    d = mapped["dir"]
    scene.write_vector(tmp_path / "away.gpkg", shapely.points([0.0, 1.0], [0.0, 1.0]), [1, 2])
    scene.write_vector(tmp_path / "two.gpkg", shapely.points([scene.X0 + 5], [scene.Y0 - 5]), [1],
                       other=np.array([2]))  # fmt: skip
    m = d / "maps" / "scene.labels.tif"
    labels, _ = read_map(m)
    with rasterio.open(
        tmp_path / "plain.tif",
        "w",
        driver="GTiff",
        width=scene.W,
        height=scene.H,
        count=1,
        dtype="uint8",
        crs=scene.CRS,
        nodata=255,
        transform=scene.transform(),
    ) as dst:  # a map without a legend
        dst.write(labels[None])
    cases = [
        ([tmp_path / "plain.tif", "-r", d / "names.gpkg"], "names its classes ('crops', "
         "'forest', 'urban', 'water') but the map"),
        ([m], "give the reference samples with --reference REFERENCE"),
        ([], "give the classified MAP"),
        ([tmp_path / "absent.tif", "-r", d / "points.gpkg"], "absent.tif: no such file"),
        ([m, "-r", tmp_path / "absent.gpkg"], "absent.gpkg: no such file"),
        ([d / "scene.tif", "-r", d / "points.gpkg"], "a classified map has one band (got 6)"),
        ([m, "-r", d / "points.gpkg", "--field", "kind"], "--field: " + f"{d / 'points.gpkg'} has "
                                                         "no field 'kind'; its fields are class"),
        ([m, "-r", tmp_path / "two.gpkg"], "has 2 fields (class, other); name the class field"),
        ([m, "-r", tmp_path / "away.gpkg"], "no reference sample of"),
        ([m, "-r", d / "points.gpkg", "--confidence", "2"], "Invalid value for '--confidence'"),
        ([m, "-r", d / "scene.tif"], "a label raster has one band"),
    ]  # fmt: skip
    for args, message in cases:
        proc = run_cli("accuracy", *args, cwd=tmp_path, check_rc=2)
        assert message in one_line_error(proc), (message, proc.stderr)


def test_the_three_command_recipe(tmp_path):
    """Fit from polygons, classify, assess: a sensible map of well-separated classes."""
    scene.write_scene(tmp_path / "scene.tif")
    scene.write_polygons(tmp_path / "samples.gpkg", layer="training")
    points, rows, cols, truth = scene.validation_points(300, seed=21)
    scene.write_vector(tmp_path / "samples.gpkg", points, truth, layer="validation")
    run_cli("fit", "scene.tif", "--training", "samples.gpkg", "--layer", "training",
            "--field", "class", "-k", "2", "--covariance", "full", "-o", "models/{label}.json",
            cwd=tmp_path)  # fmt: skip
    specs = [a for c in (1, 2, 3, 4) for a in ("-m", f"{c}=models/{c}.json")]
    run_cli("classify", "scene.tif", *specs, "--save", "labels,confidence,colour", "-o", "maps",
            cwd=tmp_path)  # fmt: skip
    proc = run_cli("accuracy", "maps/scene.labels.tif", "--reference", "samples.gpkg",
                   "--layer", "validation", "-o", "report", cwd=tmp_path)  # fmt: skip
    assert "overall accuracy" in proc.stdout
    report = json.loads((tmp_path / "report" / "accuracy.json").read_text())
    assert report["overall_accuracy"] > 0.9
    assert report["stratified"]["overall_accuracy"]["estimate"] > 0.9
    labels, _ = read_map(tmp_path / "maps" / "scene.labels.tif")
    want = accuracy_report(labels[rows, cols], truth, mapped_counts=counts_of(labels, 255),
                           pixel_area=100.0, nodata=255)  # fmt: skip
    assert _strip(report) == _strip(json.loads(json.dumps(want.to_dict())))
    for png in ("confusion-matrix.png", "area-estimates.png"):
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
