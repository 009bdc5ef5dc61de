"""xarray DataArrays in and out: every evaluation function, the detector and the classifier.

Results are compared with the same call on the NumPy data; what a DataArray adds is
checked on its own: dimension names and coordinates kept, value attributes dropped,
nodata pixels masked, channel names matched, Dask-backed arrays staying lazy, and a
GeoTIFF written by rasterio keeping its georeferencing through rioxarray.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pixgmm

xr = pytest.importorskip("xarray")

RGB = pixgmm.Mixture(
    [0.6, 0.4],
    [[200, 140, 110], [80, 60, 50]],
    [[300, 200, 250], [400, 300, 350]],
    "diag",
    channels="RGB",
)
OTHER = pixgmm.Mixture([1.0], [[100, 110, 120]], [[900, 800, 700]], "diag", channels="RGB")


def _image(rng, shape=(3, 12, 17)):
    return rng.integers(1, 256, shape, dtype=np.uint8)  # no zeros: 0 is the nodata below


def _dataarray(data, band=("R", "G", "B"), **attrs):
    _, h, w = data.shape
    return xr.DataArray(
        data,
        dims=("band", "y", "x"),
        coords={
            "band": list(band),
            "y": np.arange(h) * -10.0 + 1000.0,
            "x": np.arange(w) * 10.0 + 500.0,
            "spatial_ref": 0,
        },
        attrs={"AREA_OR_POINT": "Area", **attrs},
        name="reflectance",
    )


CALLS = {
    "density": lambda f, img, **kw: f(img, RGB, **kw),
    "log_density": lambda f, img, **kw: f(img, RGB, **kw),
    "log_ratio": lambda f, img, **kw: f(img, RGB, OTHER, **kw),
    "responsibilities": lambda f, img, **kw: f(img, RGB, **kw),
    "predict": lambda f, img, **kw: f(img, RGB, **kw),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_evaluation_functions_keep_dims_coords_and_attrs(rng, name):
    data = _image(rng)
    img = _dataarray(data, _FillValue=0, units="DN", scale_factor=1.0, foo="kept")
    func = getattr(pixgmm, name)
    got = CALLS[name](func, img, channel_axis="band")
    expected = CALLS[name](func, np.moveaxis(data, 0, -1))
    assert isinstance(got, xr.DataArray)
    assert got.name == name
    assert got.dims[:2] == ("y", "x")
    np.testing.assert_array_equal(got["x"].values, img["x"].values)
    np.testing.assert_array_equal(got["y"].values, img["y"].values)
    assert "spatial_ref" in got.coords and "band" not in got.coords
    # the input's value attributes would be wrong on a density; the others stay
    assert got.attrs == {"AREA_OR_POINT": "Area", "foo": "kept"}
    if name == "responsibilities":
        assert got.dims == ("y", "x", "component")
        np.testing.assert_array_equal(got["component"].values, [0, 1])
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.values, expected)


def test_channel_axis_by_number_and_names_from_the_band_coordinate(rng):
    data = _image(rng)
    bgr = _dataarray(data, band=("B", "G", "R"))
    # the model names RGB, the bands name BGR: matched by name, as channels="BGR" would
    expected = pixgmm.log_density(np.moveaxis(data, 0, -1), RGB, channels="BGR")
    np.testing.assert_array_equal(pixgmm.log_density(bgr, RGB, channel_axis="band"), expected)
    np.testing.assert_array_equal(pixgmm.log_density(bgr, RGB, channel_axis=0), expected)
    # rioxarray keeps band descriptions in long_name, with integer band numbers
    described = _dataarray(data, band=(1, 2, 3), long_name=("B", "G", "R"))
    np.testing.assert_array_equal(pixgmm.log_density(described, RGB, channel_axis="band"), expected)
    # an explicit channels= wins over the names the array carries
    np.testing.assert_array_equal(
        pixgmm.log_density(bgr, RGB, channel_axis="band", channels="RGB"),
        pixgmm.log_density(np.moveaxis(data, 0, -1), RGB),
    )


def test_band_names_the_model_lacks_are_an_error(rng):
    img = _dataarray(_image(rng), band=("nir", "red", "green"))
    with pytest.raises(ValueError, match="channel"):
        pixgmm.log_density(img, RGB, channel_axis="band")


def test_nodata_pixels_give_nan_and_label_minus_one(rng):
    data = _image(rng)
    data[:, 2, 3] = 0  # every band nodata
    data[1, 5, 6] = 0  # one band nodata: the pixel cannot be evaluated either
    img = _dataarray(data, _FillValue=0)
    logp = pixgmm.log_density(img, RGB, channel_axis="band")
    assert np.isnan(logp.values[2, 3]) and np.isnan(logp.values[5, 6])
    assert np.isfinite(logp.values).sum() == logp.size - 2
    labels = pixgmm.predict(img, RGB, channel_axis="band")
    assert labels.dtype == np.intp
    assert labels.values[2, 3] == -1 and labels.values[5, 6] == -1
    resp = pixgmm.responsibilities(img, RGB, channel_axis="band")
    assert np.isnan(resp.values[2, 3]).all()
    # the same value given as an encoding (as xarray's decoders leave it) or as "nodata"
    for kind in ("encoding", "nodata"):
        other = _dataarray(data) if kind == "encoding" else _dataarray(data, nodata=0)
        if kind == "encoding":
            other.encoding["_FillValue"] = 0
        np.testing.assert_array_equal(
            pixgmm.log_density(other, RGB, channel_axis="band").values, logp.values
        )


def test_dask_backed_dataarray_stays_lazy(rng):
    da = pytest.importorskip("dask.array")
    data = _image(rng, (3, 40, 30))
    data[:, 7, 8] = 0
    img = _dataarray(data, _FillValue=0).chunk({"y": 16, "x": 10})
    for name in CALLS:
        got = CALLS[name](getattr(pixgmm, name), img, channel_axis="band")
        assert isinstance(got.data, da.Array), name
        expected = CALLS[name](getattr(pixgmm, name), _dataarray(data, _FillValue=0),
                               channel_axis="band")  # fmt: skip
        np.testing.assert_array_equal(got.compute().values, expected.values)


def test_errors_name_the_parameter(rng):
    img = _dataarray(_image(rng))
    with pytest.raises(ValueError, match=r"channel_axis='bands' is not a dimension.*'band'"):
        pixgmm.log_density(img, RGB, channel_axis="bands")
    with pytest.raises(TypeError, match="out= cannot be used"):
        pixgmm.log_density(img, RGB, channel_axis="band", out=np.empty((12, 17)))
    with pytest.raises(ValueError, match=r"channel_axis=5 is out of range.*band"):
        pixgmm.log_density(img, RGB, channel_axis=5)
    assert pixgmm.explain(pixgmm.log_density, img, RGB, channel_axis="band") == "direct"


def test_detector_and_classifier_methods(rng):
    data = _image(rng, (3, 30, 20))
    data[:, 0, 0] = 0
    img = _dataarray(data, _FillValue=0)
    rgb = np.moveaxis(data, 0, -1)
    det = pixgmm.SkinDetector()
    p = det.probability(img, channel_axis="band")
    np.testing.assert_array_equal(p.values[1:], det.probability(rgb)[1:])
    assert np.isnan(p.values[0, 0])
    mask = det.mask(img, channel_axis="band", probability=0.3)
    assert mask.dtype == bool and not mask.values[0, 0]
    np.testing.assert_array_equal(mask.values[1:], det.mask(rgb, probability=0.3)[1:])

    clf = pixgmm.Classifier({"skin": RGB, "other": OTHER})
    prob = clf.probability(img, channel_axis="band")
    assert prob.dims == ("y", "x", "class")
    assert list(prob["class"].values) == ["skin", "other"]
    np.testing.assert_allclose(prob.values[1:], clf.probability(rgb)[1:])
    with pytest.raises(ValueError, match=r"nodata value 0.*fill="):
        clf.predict(img, channel_axis="band")
    labels = clf.predict(img, channel_axis="band", fill="none")
    assert labels.values[0, 0] == "none"
    np.testing.assert_array_equal(labels.values[1:], clf.predict(rgb)[1:])
    conf = clf.confidence(img, channel_axis="band")
    np.testing.assert_allclose(conf.values[1:], clf.probability(rgb).max(axis=-1)[1:])
    assert np.isnan(conf.values[0, 0])


def test_import_pixgmm_does_not_import_xarray():
    code = "import sys, pixgmm; pixgmm.log_density; print('xarray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_geotiff_through_rioxarray_keeps_its_georeferencing(tmp_path, rng):
    rasterio = pytest.importorskip("rasterio")
    rioxarray = pytest.importorskip("rioxarray")
    from rasterio.transform import from_origin

    data = rng.integers(1, 256, (3, 24, 32), dtype=np.uint8)
    data[:, 5, 6] = 0
    path = tmp_path / "scene.tif"
    transform = from_origin(440720.0, 3751320.0, 30.0, 30.0)
    with rasterio.open(
        path, "w", driver="GTiff", width=32, height=24, count=3, dtype="uint8",
        crs="EPSG:32611", transform=transform, nodata=0,
    ) as dst:  # fmt: skip
        dst.write(data)
        dst.descriptions = ("R", "G", "B")
    img = rioxarray.open_rasterio(path)
    assert img.dims == ("band", "y", "x")
    logp = pixgmm.log_density(img, RGB, channel_axis="band")
    assert logp.rio.crs.to_epsg() == 32611
    assert logp.rio.transform() == transform
    assert np.isnan(logp.values[5, 6])
    expected = pixgmm.log_density(np.moveaxis(data, 0, -1), RGB)
    ok = np.ones((24, 32), bool)
    ok[5, 6] = False
    np.testing.assert_array_equal(logp.values[ok], expected[ok])
    # written back as a GeoTIFF with the same grid and a float nodata
    out = tmp_path / "logp.tif"
    logp.astype(np.float32).rio.write_nodata(np.nan).rio.to_raster(out)
    with rasterio.open(out) as src:
        assert src.crs.to_epsg() == 32611
        assert src.transform == transform
        back = src.read(1)
    np.testing.assert_allclose(back[ok], expected[ok].astype(np.float32))
