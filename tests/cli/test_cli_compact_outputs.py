"""Compact and GDAL-readable outputs: packed probabilities (--probability-dtype), Zarr version 2."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import pixgmm
from pixgmm import quantize

rasterio = pytest.importorskip("rasterio")
Image = pytest.importorskip("PIL.Image")


def run_cli(*args, cwd, check_rc=0):
    proc = subprocess.run([sys.executable, "-m", "pixgmm", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("packed")
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    rgb[10:40, 20:60] = (205, 145, 115)
    Image.fromarray(rgb).save(d / "photo.png")
    return d, rgb


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
def test_a_packed_tiff_reads_back_as_probabilities_in_gdal(photo, dtype, tmp_path):
    d, rgb = photo
    run_cli("skin", d / "photo.png", "--save", "probability", "--probability-dtype", dtype,
            "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    want = pixgmm.SkinDetector().probability(rgb)
    with rasterio.open(tmp_path / "photo.probability.tiff") as src:
        assert src.dtypes[0] == dtype
        assert src.nodata == quantize.cf_attributes(dtype)["_FillValue"]
        back = src.read(1).astype(np.float64) * src.scales[0] + src.offsets[0]
    step = 1 / (254 if dtype == "uint8" else 65534)
    assert np.abs(back - want).max() <= step / 2 + 1e-9


def test_packed_zarr_stores_decode_in_xarray(photo, tmp_path):
    pytest.importorskip("dask")
    zarr = pytest.importorskip("zarr")
    xr = pytest.importorskip("xarray")
    d, rgb = photo
    import tifffile

    tifffile.imwrite(tmp_path / "slide.tif", rgb, tile=(32, 32), photometric="rgb")
    run_cli("skin", tmp_path / "slide.tif", "--chunks", "32", "--save", "probability,mask",
            "--probability-dtype", "uint8", "-o", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    store = zarr.open_array(tmp_path / "out" / "slide.probability.zarr", mode="r")
    assert store.dtype == np.uint8
    attrs = dict(store.attrs)
    assert attrs["scale_factor"] == 1 / 254 and attrs["_FillValue"] == 255
    decoded = xr.conventions.decode_cf_variable(
        "p", xr.Variable(("y", "x"), store[:], attrs={k: attrs[k] for k in
                                                       ("scale_factor", "add_offset", "_FillValue")}))  # fmt: skip
    want = pixgmm.SkinDetector().probability(rgb)
    assert np.abs(decoded.values - want).max() <= 0.5 / 254 + 1e-9
    mask = zarr.open_array(tmp_path / "out" / "slide.mask.zarr", mode="r")[:]
    np.testing.assert_array_equal(mask, np.where(pixgmm.SkinDetector().mask(rgb), 255, 0))


def test_a_geotiff_probability_marks_nodata_with_the_packed_code(tmp_path):
    from rasterio.transform import from_origin

    rgb = np.full((3, 40, 50), 120, np.uint8)
    rgb[:, 5:25, 5:30] = np.array([205, 145, 115], np.uint8)[:, None, None]
    rgb[:, :3, :3] = 0  # nodata
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", width=50, height=40, count=3,
                       dtype="uint8", crs="EPSG:32633", nodata=0,
                       transform=from_origin(0, 0, 10, 10)) as dst:  # fmt: skip
        dst.write(rgb)
    run_cli("skin", tmp_path / "scene.tif", "--save", "probability", "--probability-dtype",
            "uint16", "-o", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    with rasterio.open(tmp_path / "out" / "scene.probability.tif") as src:
        packed = src.read(1)
        assert src.dtypes[0] == "uint16" and src.nodata == 65535 and src.crs.to_epsg() == 32633
        masked = src.read(1, masked=True)
        assert src.scales[0] == pytest.approx(1 / 65534)
    assert (packed[:3, :3] == 65535).all() and masked.mask[:3, :3].all()
    want = pixgmm.SkinDetector().probability(np.moveaxis(rgb, 0, -1))
    np.testing.assert_array_equal(packed[3:, 3:], quantize.encode(want, "uint16")[3:, 3:])


def test_packed_probabilities_need_a_file_that_says_how_to_unpack_them(photo, tmp_path):
    d, _ = photo
    proc = run_cli("skin", d / "photo.png", "--save", "probability", "--probability-dtype",
                   "uint8", "--float-format", "npy", "-o", tmp_path, cwd=tmp_path,
                   check_rc=2)  # fmt: skip
    assert "--probability-dtype" in proc.stderr and "--float-format tiff" in proc.stderr
    imageio = pytest.importorskip("imageio.v3")
    pytest.importorskip("imageio_ffmpeg")
    imageio.imwrite(tmp_path / "clip.mp4", np.zeros((2, 32, 32, 3), np.uint8), plugin="FFMPEG",
                    fps=5, macro_block_size=1)  # fmt: skip
    proc = run_cli("skin", tmp_path / "clip.mp4", "--save", "probability", "--json",
                   "--probability-dtype", "uint8", "-o", tmp_path, cwd=tmp_path,
                   check_rc=1)  # fmt: skip
    assert "leave out --probability-dtype" in json.loads(proc.stdout)["results"][0]["error"]


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_zarr_format_2_stores_open_in_gdal_with_their_crs(tmp_path):
    pytest.importorskip("dask")
    from rasterio.transform import from_origin

    rgb = np.full((3, 64, 48), 120, np.uint8)
    rgb[:, 8:40, 8:30] = np.array([205, 145, 115], np.uint8)[:, None, None]
    with rasterio.open(tmp_path / "scene.tif", "w", driver="GTiff", width=48, height=64, count=3,
                       dtype="uint8", crs="EPSG:32633", tiled=True, blockxsize=16,
                       blockysize=16, transform=from_origin(0, 0, 10, 10)) as dst:  # fmt: skip
        dst.write(rgb)
    run_cli("skin", tmp_path / "scene.tif", "--chunks", "32", "--zarr-format", "2", "--save",
            "probability,mask", "-o", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    want = pixgmm.SkinDetector().probability(np.moveaxis(rgb, 0, -1)).astype(np.float32)
    with rasterio.open(f'ZARR:"{tmp_path / "out" / "scene.probability.zarr"}"') as src:
        np.testing.assert_array_equal(src.read(1), want)
        assert src.crs.to_epsg() == 32633
    with rasterio.open(f'ZARR:"{tmp_path / "out" / "scene.mask.zarr"}"') as src:
        assert src.dtypes[0] == "uint8" and src.read(1).max() == 1
    proc = run_cli("skin", tmp_path / "scene.tif", "--zarr-format", "2", "-o", tmp_path / "x",
                   cwd=tmp_path, check_rc=2)  # fmt: skip
    assert "--zarr-format applies to the Zarr stores written with --chunks" in proc.stderr
