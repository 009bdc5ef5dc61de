"""Training and reference samples in the I/O layer: vector files read by pyogrio, rasterised on a grid.

Real files written by pyogrio and rasterio (``tests/landcover_scene.py``); the
pixels every polygon and point selects are computed here with NumPy from the
pixel-centre rule, independently of GDAL.
"""

from __future__ import annotations

import numpy as np
import pytest

rasterio = pytest.importorskip("rasterio")
pyogrio = pytest.importorskip("pyogrio")
shapely = pytest.importorskip("shapely")

import landcover_scene as scene  # noqa: E402
from pixgmm.io import probe_geotiff  # noqa: E402
from pixgmm.io.errors import MissingInput, ReadError  # noqa: E402
from pixgmm.io.samples import RasterSamples, VectorSamples, open_samples, pixel_area  # noqa: E402
from pixgmm.io.vector import FieldError, LayerError, read_features, write_features  # noqa: E402
from pixgmm.io.windows import plan_windows  # noqa: E402


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    d = tmp_path_factory.mktemp("samples")
    scene.write_scene(d / "scene.tif")
    return d, probe_geotiff(d / "scene.tif").pages[0]


def _whole(samples, page, plan=None):
    """The codes of every pixel, assembled from the windows with samples (small windows)."""
    plan = plan or plan_windows(page.height, page.width, (16, 16), 6 * 2, budget=16 * 16 * 12)
    out = np.zeros((page.height, page.width), np.int32)
    listed = samples.windows(plan)
    for window in listed:
        out[window.slices] = samples.labels(window)
    return out, listed, plan


# -- reading vector files -------------------------------------------------------------------


def test_class_values_are_integers_or_names(tmp_path):
    boxes = [scene.rectangle(0, 2, 0, 2), scene.rectangle(2, 4, 0, 2), scene.rectangle(4, 6, 0, 2)]
    cases = {
        "int": (np.array([3, 1, 3]), (3, 1, 3)),
        "float": (np.array([3.0, 1.0, 3.0]), (3, 1, 3)),
        "digits": (np.array(["3", "1", "3"], dtype=object), (3, 1, 3)),
        "names": (np.array(["water", " forest", "water"], dtype=object), ("water", "forest", "water")),
        "padded": (np.array(["03", "1", "3"], dtype=object), ("03", "1", "3")),
    }  # fmt: skip
    for name, (values, want) in cases.items():
        path = scene.write_vector(tmp_path / f"{name}.gpkg", boxes, values)
        f = read_features(path)
        assert f.values == want, name
        assert f.classes == tuple(sorted(set(want)))
        assert f.codes.tolist() == [f.classes.index(v) + 1 for v in want]
        assert f.field == "class" and "32633" in f.crs_wkt


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.array([1.0, 2.5, 1.0]), r"holds 2\.5 \(feature 2\), which is not a class value"),
        (np.array([1.0, np.nan, 1.0]), r"no class value \(null\) for feature\(s\) 2"),
        (np.array(["a", None, "b"], dtype=object), r"no class value \(null\) for feature\(s\) 2"),
        (np.array([True, False, True]), r"is of type bool .*not a class value"),
    ],
)
def test_fields_that_are_not_class_values_name_file_field_and_feature(tmp_path, values, message):
    boxes = [scene.rectangle(0, 2, 0, 2)] * 3
    path = scene.write_vector(tmp_path / "bad.gpkg", boxes, values, field="landcover")
    with pytest.raises(ValueError, match=message) as info:
        read_features(path)
    assert str(path) in str(info.value) and "'landcover'" in str(info.value)


def test_missing_field_layer_file_and_bad_geometries(tmp_path):
    path = scene.write_vector(tmp_path / "two.gpkg", [scene.rectangle(0, 2, 0, 2)], [1],
                              name=np.array(["x"], dtype=object))  # fmt: skip
    with pytest.raises(FieldError, match=r"has 2 fields \(class, name\); name the class field"):
        read_features(path)
    with pytest.raises(FieldError, match=r"no field 'Class' \(did you mean 'class'\?\); its "
                                         r"fields are class, name"):  # fmt: skip
        read_features(path, "Class")
    assert read_features(path, "name").values == ("x",)
    scene.write_vector(path, [scene.rectangle(0, 2, 0, 2)], [2], layer="other")
    with pytest.raises(LayerError, match=r"holds 2 layers \(two, other\)"):
        read_features(path, "class")
    assert read_features(path, "class", layer="other").values == (2,)
    with pytest.raises(LayerError, match="no layer 'nope'"):
        read_features(path, "class", layer="nope")
    with pytest.raises(MissingInput, match="no such file"):
        read_features(tmp_path / "absent.gpkg")
    (tmp_path / "junk.gpkg").write_text("not a vector file")
    with pytest.raises(ReadError, match="cannot read it as a vector file"):
        read_features(tmp_path / "junk.gpkg")
    line = scene.write_vector(tmp_path / "line.gpkg", [shapely.LineString([(0, 0), (1, 1)])], [1])
    with pytest.raises(ValueError, match="feature 1 is a LineString; samples are points or"):
        read_features(line)


def test_write_features_round_trips_geometries_values_and_crs(tmp_path):
    polygons = scene.write_polygons(tmp_path / "p.gpkg")
    f = read_features(polygons)
    for suffix in (".gpkg", ".geojson", ".fgb"):
        write_features(tmp_path / f"copy{suffix}", f.subset([0, 3, 5]))
        back = read_features(tmp_path / f"copy{suffix}")
        assert back.values == tuple(f.values[i] for i in (0, 3, 5))
        assert shapely.equals(back.geometries, f.geometries[[0, 3, 5]]).all()
        assert rasterio.crs.CRS.from_user_input(back.crs_wkt).to_epsg() == 32633
    with pytest.raises(FileExistsError):
        write_features(tmp_path / "copy.gpkg", f)
    with pytest.raises(ValueError, match="write features to a"):
        write_features(tmp_path / "copy.shp", f)


# -- on the image's grid ----------------------------------------------------------------------


def test_polygons_points_and_a_label_raster_select_the_same_pixels(grid, tmp_path):
    d, page = grid
    want = scene.label_raster()
    polygons = open_samples(scene.write_polygons(tmp_path / "p.gpkg"), page)
    got, listed, plan = _whole(polygons, page)
    np.testing.assert_array_equal(got, want)  # codes = classes 1..4 here
    assert 0 < len(listed) < len(plan)  # only the windows with samples are listed
    # points at every labelled pixel centre, in a CSV-like text field
    points, rows, cols = scene.pixel_centres(want > 0)
    path = scene.write_vector(
        tmp_path / "pts.fgb", points, want[rows, cols].astype(str).astype(object)
    )
    pts = open_samples(path, page)
    np.testing.assert_array_equal(_whole(pts, page)[0], want)
    r, c, codes, owner = pts.point_pixels()
    order = np.lexsort((c, r))  # FlatGeobuf stores features in its spatial index's order
    np.testing.assert_array_equal(r[order], rows)
    np.testing.assert_array_equal(c[order], cols)
    np.testing.assert_array_equal(codes[order], want[rows, cols])
    # the label raster: 0 and nodata (9) unlabelled
    labels = want.copy()
    labels[60:62, :] = 9
    raster = open_samples(scene.write_label_raster(tmp_path / "labels.tif", labels, nodata=9), page)
    assert isinstance(raster, RasterSamples) and raster.scan(plan) == (1, 2, 3, 4)
    expect = np.where(labels == 9, 0, labels)
    np.testing.assert_array_equal(_whole(raster, page, plan)[0], expect)


def test_features_in_another_crs_are_reprojected_onto_the_grid(grid, tmp_path):
    d, page = grid
    f = read_features(scene.write_polygons(tmp_path / "utm.gpkg"))
    lonlat = f.to_crs("EPSG:4326")
    assert abs(lonlat.geometries[0].bounds[0] - 15.0) < 1  # EPSG:32633 is around 15 E
    write_features(tmp_path / "wgs84.gpkg", lonlat)
    samples = open_samples(tmp_path / "wgs84.gpkg", page)
    assert samples.notes == [f"{tmp_path / 'wgs84.gpkg'} reprojected into the image's CRS"]
    np.testing.assert_array_equal(_whole(samples, page)[0], scene.label_raster())


def test_outside_features_and_pixel_area(grid, tmp_path):
    d, page = grid
    inside, edge, away = scene.rectangle(0, 2, 0, 2), scene.rectangle(-5, 3, -5, 3), shapely.box(
        0, 0, 10, 10)  # fmt: skip
    samples = VectorSamples(read_features(scene.write_vector(tmp_path / "o.gpkg",
                            [inside, edge, away], [1, 2, 3])), page)  # fmt: skip
    assert samples.outside().tolist() == [2]  # partly inside counts as inside
    got = _whole(samples, page)[0]
    assert (got[:3, :3] == 2).all() and (got[3:] == 0).all()  # the later feature wins
    assert pixel_area(page) == (100.0, None)
    scene.write_scene(tmp_path / "geo.tif")
    with rasterio.open(tmp_path / "geo.tif", "r+") as dst:
        dst.crs = "EPSG:4326"
    area, why = pixel_area(probe_geotiff(tmp_path / "geo.tif").pages[0])
    assert area is None and "geographic" in why


def test_a_label_raster_off_the_grid_is_refused(grid, tmp_path):
    d, page = grid
    with rasterio.open(tmp_path / "shifted.tif", "w", driver="GTiff", width=scene.W,
                       height=scene.H, count=1, dtype="uint8", crs=scene.CRS,
                       transform=scene.transform() * rasterio.Affine.translation(1, 0)) as dst:  # fmt: skip
        dst.write(scene.label_raster()[None])
    with pytest.raises(ReadError, match="is not on the image's grid"):
        open_samples(tmp_path / "shifted.tif", page)
    with pytest.raises(MissingInput):
        open_samples(tmp_path / "absent.tif", page)
    path = scene.write_label_raster(tmp_path / "frac.tif", scene.label_raster() * np.float32(1.5))
    samples = open_samples(path, page)
    with pytest.raises(ValueError, match=r"holds the value 1\.5, which is not a class"):
        samples.scan(plan_windows(page.height, page.width, (16, 16), 12))
