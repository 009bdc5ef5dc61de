"""GeoTIFF on the command line: real GeoTIFFs written by rasterio, the CLI as a subprocess.

Each input is a multiband GeoTIFF in EPSG:32633 with a transform and a nodata
value (uint8, uint16, float32, pixel- and band-interleaved). The outputs are
opened with rasterio (GeoTIFFs) or zarr + rioxarray (``--chunks``) and compared
with the Python API on the same pixels: the API reads the input through
rioxarray, so its own nodata rule (NaN, ``fill``) is the reference.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pixgmm

rasterio = pytest.importorskip("rasterio")
rioxarray = pytest.importorskip("rioxarray")
pytest.importorskip("click")
pytest.importorskip("tifffile")

from rasterio.transform import from_origin  # noqa: E402

README = Path(__file__).resolve().parents[2] / "README.md"
CRS = "EPSG:32633"
TRANSFORM = from_origin(300000.0, 5000000.0, 10.0, 10.0)


def run_cli(*args, cwd, check_rc=0, prelude=None):
    """``pixgmm ARGS`` in a subprocess; ``prelude`` is Python run first (e.g. hiding rasterio)."""
    if prelude is None:
        cmd = [sys.executable, "-m", "pixgmm.cli", *map(str, args)]
    else:
        code = f"{prelude}\nimport sys, runpy\nsys.argv = ['pixgmm', *sys.argv[1:]]\n"
        code += "runpy.run_module('pixgmm.cli', run_name='__main__')"
        cmd = [sys.executable, "-c", code, *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def write_geotiff(path, bands, nodata, **options):
    """Write (bands, H, W) with rasterio, georeferenced in EPSG:32633."""
    count, h, w = bands.shape
    profile = {"driver": "GTiff", "width": w, "height": h, "count": count,
               "dtype": bands.dtype.name, "crs": CRS, "transform": TRANSFORM, "nodata": nodata}  # fmt: skip
    with rasterio.open(path, "w", **profile, **options) as dst:
        dst.write(bands)


def as_xarray(path):
    """The input as the API user reads it: rioxarray, (band, y, x), nodata from the file."""
    return rioxarray.open_rasterio(path)


def read_geotiff(path):
    """``(bands (H, W) or (K, H, W), dataset profile)`` of an output, checked georeferenced."""
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 32633, path
        assert src.transform == TRANSFORM, path
        data = src.read()
        return (data[0] if data.shape[0] == 1 else data), src.profile


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three GeoTIFFs over the same grid and a nodata region, and the class of each pixel."""
    d = tmp_path_factory.mktemp("geo")
    rng = np.random.default_rng(11)
    h, w = 64, 96
    field = np.zeros((h, w), np.intp)  # three classes in bands of columns
    field[:, 32:64], field[:, 64:] = 1, 2
    invalid = np.zeros((h, w), bool)
    invalid[:6, :9] = True  # nodata in every band
    invalid[40, 50] = invalid[20, 70] = True  # nodata in one band only

    # 1. RGB uint8, pixel-interleaved: a skin-coloured block on blue, nodata 0
    rgb = np.empty((h, w, 3))
    rgb[:] = (40, 90, 160)
    rgb[16:48, 24:72] = (200, 140, 110)
    rgb = np.clip(np.round(rgb + rng.normal(0, 12, rgb.shape)), 1, 255).astype(np.uint8)
    rgb[:6, :9] = 0
    rgb[40, 50, 1] = rgb[20, 70, 2] = 0
    write_geotiff(d / "rgb8.tif", np.moveaxis(rgb, -1, 0), 0)

    # 2. four-band uint16, band-interleaved and tiled, nodata 0
    spectra16 = np.array([[9000, 12000, 8000, 30000], [20000, 18000, 25000, 9000],
                          [40000, 42000, 39000, 41000]], float)  # fmt: skip
    ms = np.clip(spectra16[field] + rng.normal(0, 800, (h, w, 4)), 1, 65535).astype(np.uint16)
    ms[:6, :9] = 0
    ms[40, 50, 3] = ms[20, 70, 0] = 0
    write_geotiff(d / "ms16.tif", np.moveaxis(ms, -1, 0), 0, interleave="band", tiled=True,
                  blockxsize=32, blockysize=32)  # fmt: skip

    # 3. five-band float32 reflectances in [0, 1], band-interleaved, nodata -9999
    spectra = np.array([[0.05, 0.08, 0.04, 0.30, 0.20], [0.10, 0.12, 0.15, 0.35, 0.30],
                        [0.30, 0.28, 0.27, 0.32, 0.35]])  # fmt: skip
    refl = np.clip(spectra[field] + rng.normal(0, 0.01, (h, w, 5)), 0.001, 1).astype(np.float32)
    refl[24:30, 80:86] = (0.9, 0.02, 0.9, 0.02, 0.9)  # far from every class: rejected
    refl[:6, :9] = -9999
    refl[40, 50, 4] = refl[20, 70, 1] = -9999
    write_geotiff(d / "refl32.tif", np.moveaxis(refl, -1, 0), -9999, interleave="band")

    models = {}
    for c in range(3):
        ok = (field == c) & ~invalid
        models[c] = pixgmm.fit(refl[ok].astype(np.float64), 1, "full", reg_covar=1e-6)
        models[c].save(d / f"class{c}.json")
    scaled = refl[(field == 1) & ~invalid].astype(np.float32) * np.float32(255)
    # fitted on the 0..255 scale, and recorded so: --scale auto scales reflectances for it
    pixgmm.fit(scaled.astype(np.float64), 1, "full", reg_covar=1e-3, scale="0..255").save(
        d / "class1x255.json"
    )
    models16 = pixgmm.fit(ms[~invalid].astype(np.float64), 3, "diag", reg_covar=1.0)
    models16.save(d / "ms16.json")
    return {"dir": d, "rgb": rgb, "ms": ms, "refl": refl, "invalid": invalid, "field": field,
            "models": models, "ms_model": models16}  # fmt: skip


def test_skin_on_a_geotiff_writes_georeferenced_mask_and_probability(scenes, tmp_path):
    d, invalid = scenes["dir"], scenes["invalid"]
    proc = run_cli("skin", d / "rgb8.tif", "--save", "mask,probability,overlay", "-o", tmp_path,
                   "--json", cwd=tmp_path)  # fmt: skip
    outputs = json.loads(proc.stdout)["results"][0]["outputs"]
    assert [p.rsplit("/", 1)[1] for p in outputs] == [
        "rgb8.mask.tif", "rgb8.probability.tif", "rgb8.overlay.png"]  # fmt: skip

    mask, profile = read_geotiff(tmp_path / "rgb8.mask.tif")
    assert profile["dtype"] == "uint8" and profile["nodata"] == 255
    det = pixgmm.SkinDetector()
    api_mask = det.mask(as_xarray(d / "rgb8.tif"), channel_axis="band").values
    assert (mask[invalid] == 255).all()
    np.testing.assert_array_equal(mask[~invalid], api_mask[~invalid].astype(np.uint8))
    assert set(np.unique(mask)) == {0, 1, 255}

    prob, profile = read_geotiff(tmp_path / "rgb8.probability.tif")
    assert profile["dtype"] == "float32" and np.isnan(profile["nodata"])
    api = det.probability(as_xarray(d / "rgb8.tif"), channel_axis="band").values
    assert np.isnan(api[invalid]).all()
    np.testing.assert_allclose(prob, api.astype(np.float32), rtol=1e-6, atol=0)
    assert np.isnan(prob[invalid]).all() and not np.isnan(prob[~invalid]).any()

    # a rerun finds the GeoTIFFs under their names and keeps them
    proc = run_cli("skin", d / "rgb8.tif", "--save", "mask,probability,overlay", "-o", tmp_path,
                   "--json", cwd=tmp_path)  # fmt: skip
    assert json.loads(proc.stdout)["results"][0]["status"] == "skipped"


def test_density_on_a_band_interleaved_uint16_geotiff(scenes, tmp_path):
    d, invalid = scenes["dir"], scenes["invalid"]
    model = scenes["ms_model"]
    run_cli("density", d / "ms16.tif", "-m", d / "ms16.json", "--scale", "none",
            "--format", "tiff,npy,png", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    got, profile = read_geotiff(tmp_path / "ms16.density.tif")
    assert profile["count"] == 1 and profile["dtype"] == "float32"
    api = pixgmm.density(as_xarray(d / "ms16.tif"), model, channel_axis="band").values
    np.testing.assert_allclose(got, api.astype(np.float32), rtol=1e-6, atol=0)
    assert np.isnan(got[invalid]).all() and (got[~invalid] > 0).all()
    # the .npy asked for is written as .npy (no georeferencing), nodata pixels NaN too
    np.testing.assert_array_equal(np.load(tmp_path / "ms16.density.npy"), got)
    # the heatmap is a picture for people: a PNG
    assert (tmp_path / "ms16.density.png").read_bytes()[:4] == b"\x89PNG"
    # GeoTIFF outputs are streamed window by window: the pixel limit does not apply to them
    run_cli("density", d / "ms16.tif", "-m", d / "ms16.json", "--scale", "none",
            "--max-pixels", "1000", "-o", tmp_path / "limit", cwd=tmp_path)  # fmt: skip
    np.testing.assert_array_equal(read_geotiff(tmp_path / "limit" / "ms16.density.tif")[0], got)
    # outputs held in memory (.npy) or made from the whole map (the heatmap) are held to it
    for fmt in ("npy", "png"):
        proc = run_cli("density", d / "ms16.tif", "-m", d / "ms16.json", "--format", fmt,
                       "--max-pixels", "1000", "-o", tmp_path / fmt, cwd=tmp_path,
                       check_rc=1)  # fmt: skip
        assert "96 x 64" in proc.stderr and "--max-pixels" in proc.stderr
        assert not (tmp_path / fmt).exists() or not list((tmp_path / fmt).iterdir())


def test_a_multi_page_geotiff_gives_georeferenced_outputs_per_page(scenes, tmp_path):
    import tifffile

    d = scenes["dir"]
    with tifffile.TiffFile(d / "rgb8.tif") as tif:  # the GeoTIFF tags of a rasterio file
        geotags = [(t.code, t.dtype, t.count, t.value, True) for t in tif.pages[0].tags.values()
                   if t.code in (33550, 33922, 34735, 34736, 34737, 42113)]  # fmt: skip
    rgb = scenes["rgb"]
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tif:
        for page in (rgb, rgb[::-1].copy()):
            tif.write(page, photometric="rgb", extratags=geotags)
    run_cli("skin", "pages.tif", "--save", "mask", "-o", "out", cwd=tmp_path)
    det = pixgmm.SkinDetector()
    for name, page in (("pages.page1.mask.tif", rgb), ("pages.page2.mask.tif", rgb[::-1])):
        mask, profile = read_geotiff(tmp_path / "out" / name)
        invalid = (page == 0).any(axis=-1)
        want = np.where(invalid, 255, det.mask(page)).astype(np.uint8)
        np.testing.assert_array_equal(mask, want)
        assert profile["nodata"] == 255 and invalid.any()


def test_classify_a_float32_geotiff_with_reject_and_confidence(scenes, tmp_path):
    d, invalid, models = scenes["dir"], scenes["invalid"], scenes["models"]
    proc = run_cli("classify", d / "refl32.tif", *[f"-m{c}=class{c}.json" for c in range(3)],
                   "--scale", "none", "--chi2-level", "0.999", "--reject-label", "200",
                   "--save", "labels,confidence,probability,colour", "-o", tmp_path, "--json",
                   cwd=d)  # fmt: skip
    summary = json.loads(proc.stdout)
    assert summary["rejected"] == 200 and summary["unclassified"] == 255

    clf = pixgmm.Classifier(models)
    image = as_xarray(d / "refl32.tif")
    labels, confidence = clf.predict(image, channel_axis="band", fill=255, chi2_level=0.999,
                                     reject=200, return_confidence=True)  # fmt: skip
    got, profile = read_geotiff(tmp_path / "refl32.labels.tif")
    assert profile["dtype"] == "uint8" and profile["nodata"] == 255
    np.testing.assert_array_equal(got, labels.values.astype(np.uint8))
    assert (got[invalid] == 255).all()
    assert (got[24:30, 80:86] == 200).all()  # the far-off patch is rejected
    field = scenes["field"]
    ok = (got != 200) & ~invalid
    assert (got[ok] == field[ok]).mean() > 0.99

    conf, profile = read_geotiff(tmp_path / "refl32.confidence.tif")
    assert profile["dtype"] == "float32" and np.isnan(profile["nodata"])
    np.testing.assert_allclose(conf, confidence.values.astype(np.float32), rtol=1e-6)
    assert np.isnan(conf[invalid]).all()

    prob, profile = read_geotiff(tmp_path / "refl32.classes.tif")
    assert profile["count"] == 3
    api = clf.probability(image, channel_axis="band").values
    np.testing.assert_allclose(np.moveaxis(prob, 0, -1), api.astype(np.float32), rtol=1e-6)
    assert np.isnan(prob[:, invalid]).all()
    assert (tmp_path / "refl32.labels-colour.png").exists()


def _zarr_map(path):
    """A Zarr store written by ``--chunks`` as the README reads it back: a georeferenced DataArray."""
    import dask.array as da
    import xarray as xr
    import zarr

    z = zarr.open_array(path, mode="r")
    return xr.DataArray(da.from_zarr(z), dims=("y", "x"), attrs=dict(z.attrs))


def _readme_recipe():
    """The README's Python block that reads a ``--chunks`` Zarr store back with rioxarray."""
    import re

    text = README.read_text(encoding="utf-8")
    start = text.index("**On the command line** (with the `geo` extra)")
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_chunks_zarr_stores_keep_the_georeferencing(scenes, tmp_path, monkeypatch):
    pytest.importorskip("zarr")
    pytest.importorskip("dask")
    d, invalid = scenes["dir"], scenes["invalid"]
    shutil.copy(d / "refl32.tif", tmp_path / "scene.tif")
    # band-interleaved float32 with a nodata value, --scale auto: the nodata values are not
    # counted as values outside [0, 1], so the reflectances are scaled from 0..1
    proc = run_cli("density", "scene.tif", "-m", d / "class1x255.json", "--chunks", "32",
                   "--json", cwd=tmp_path)  # fmt: skip
    assert (
        json.loads(proc.stdout)["results"][0]["scale"] == "float pixels in [0, 1] scaled to 0..255"
    )
    density = _zarr_map(tmp_path / "scene.density.zarr")
    assert density.rio.crs.to_epsg() == 32633 and density.rio.transform() == TRANSFORM
    assert np.isnan(density.rio.nodata)
    assert density.attrs["GeoTransform"] == " ".join(map(str, TRANSFORM.to_gdal()))
    refl = np.where(invalid[..., None], np.float32(np.nan), scenes["refl"])
    model = pixgmm.Mixture.load(d / "class1x255.json")
    api = pixgmm.density(refl * np.float32(255), model)  # the CLI's scaling, in float32
    np.testing.assert_allclose(density.values, api.astype(np.float32), rtol=1e-6)
    assert np.isnan(density.values[invalid]).all() and (density.values[~invalid] > 0).any()

    # the README's recipe, as written: the store read back and written as a GeoTIFF
    monkeypatch.chdir(tmp_path)
    exec(compile(_readme_recipe(), "README.md", "exec"), {})
    again, profile = read_geotiff(tmp_path / "scene.density.tif")
    assert np.isnan(profile["nodata"])
    np.testing.assert_array_equal(again, density.values)

    # a skin mask: 0/1 with nodata 255, read back by rioxarray and written as a GeoTIFF
    run_cli("skin", d / "rgb8.tif", "--save", "mask,probability", "--chunks", "24",
            "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    mask = _zarr_map(tmp_path / "rgb8.mask.zarr")
    assert mask.rio.nodata == 255 and mask.rio.crs.to_epsg() == 32633
    api_mask = pixgmm.SkinDetector().mask(as_xarray(d / "rgb8.tif"), channel_axis="band").values
    want = np.where(invalid, 255, api_mask).astype(np.uint8)
    np.testing.assert_array_equal(mask.values, want)
    mask.rio.to_raster(tmp_path / "mask-again.tif")
    again, profile = read_geotiff(tmp_path / "mask-again.tif")
    assert profile["nodata"] == 255
    np.testing.assert_array_equal(again, want)


def test_without_rasterio_a_geotiff_is_a_plain_tiff_with_one_note(scenes, tmp_path):
    d = scenes["dir"]
    hide = "import sys; sys.modules['rasterio'] = None"
    (tmp_path / "a.tif").write_bytes((d / "rgb8.tif").read_bytes())
    (tmp_path / "b.tif").write_bytes((d / "rgb8.tif").read_bytes())
    proc = run_cli("skin", "a.tif", "b.tif", "--save", "mask,probability", "-o", "out",
                   cwd=tmp_path, prelude=hide)  # fmt: skip
    assert proc.stderr.count("georeferencing") == 1, proc.stderr
    assert 'pip install "pixgmm[geo]"' in proc.stderr
    import imageio.v3 as iio
    import tifffile

    mask = iio.imread(tmp_path / "out" / "a.mask.png")  # the plain outputs: PNG 0/255, TIFF
    want = pixgmm.SkinDetector().mask(scenes["rgb"])
    np.testing.assert_array_equal(mask, np.where(want, 255, 0))
    prob = tifffile.imread(tmp_path / "out" / "b.probability.tiff")
    assert prob.shape == mask.shape and not np.isnan(prob).any()
    assert not (tmp_path / "out" / "a.mask.tif").exists()
    # --quiet: not even the note
    proc = run_cli("skin", "a.tif", "--save", "mask", "-o", "quiet", "--quiet",
                   cwd=tmp_path, prelude=hide)  # fmt: skip
    assert proc.stderr == ""


def test_a_fourth_band_is_dropped_only_when_the_file_calls_it_alpha(scenes, tmp_path):
    """RGB + near infrared is not RGBA: a 3-channel model refuses it instead of dropping the
    NIR band; the same bands marked red, green, blue, alpha drop the 4th as alpha."""
    from rasterio.enums import ColorInterp

    rgb = np.moveaxis(scenes["rgb"], -1, 0)
    four = np.concatenate([rgb, np.full((1, *rgb.shape[1:]), 200, np.uint8)])
    write_geotiff(tmp_path / "rgbn.tif", four, 0, photometric="MINISBLACK")  # 4 plain bands
    write_geotiff(tmp_path / "rgba.tif", four, 0)  # GDAL's default for 4 bytes: RGBA
    with rasterio.open(tmp_path / "rgbn.tif") as src:
        assert src.colorinterp[-1] != ColorInterp.alpha
    with rasterio.open(tmp_path / "rgba.tif") as src:
        assert src.colorinterp[-1] == ColorInterp.alpha
    proc = run_cli("skin", tmp_path / "rgbn.tif", "-o", tmp_path / "out", "--save", "probability",
                   cwd=tmp_path, check_rc=1)  # fmt: skip
    assert "model needs 3 channel(s)" in proc.stderr + proc.stdout, proc.stderr
    assert not (tmp_path / "out" / "rgbn.probability.tif").exists()
    run_cli("skin", tmp_path / "rgba.tif", "-o", tmp_path / "out", "--save", "probability",
            cwd=tmp_path)  # fmt: skip
    got, _ = read_geotiff(tmp_path / "out" / "rgba.probability.tif")
    expected = pixgmm.SkinDetector().probability(scenes["rgb"])
    ok = ~scenes["invalid"]
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-6)


def test_fit_on_a_geotiff_leaves_its_nodata_pixels_out(scenes, tmp_path):
    """pixgmm fit on a GeoTIFF with nodata: the model is the API's fit of the valid pixels only
    (a nodata pixel is not a colour of the class), and the count says how many were left out."""
    from pixgmm.fitting import fit_em

    src = scenes["dir"] / "rgb8.tif"
    proc = run_cli("fit", src, "-k", "3", "-o", tmp_path / "m.json", "--json", cwd=tmp_path)
    (entry,) = json.loads(proc.stdout)["models"]
    valid = ~scenes["invalid"]
    api = fit_em(scenes["rgb"][valid], 3, channels="RGB")
    assert entry["pixels"] == int(valid.sum()) == api.n_samples
    assert pixgmm.Mixture.load(tmp_path / "m.json") == api.mixture
    assert f"{int((~valid).sum())} nodata pixel(s) left out" in proc.stdout + proc.stderr
