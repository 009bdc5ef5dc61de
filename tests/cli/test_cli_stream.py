"""GeoTIFF inputs streamed window by window: the same maps as the whole image, in bounded memory.

The window budget is made small (``pixgmm.io.windows.WINDOW_BYTES``) so that a
modest scene is read in dozens of windows; every output is compared with the
Python API on the whole image (read by rasterio), and the georeferencing and
nodata of every GeoTIFF output with the input's.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import pixgmm

rasterio = pytest.importorskip("rasterio")
pytest.importorskip("click")

from rasterio.transform import from_origin  # noqa: E402

from cli_run import invoke  # noqa: E402
from pixgmm.io import windows  # noqa: E402

CRS = "EPSG:32633"
TRANSFORM = from_origin(300000.0, 5000000.0, 20.0, 20.0)
SPECTRA = np.array([[900, 1200, 800, 3000], [2000, 1800, 2500, 900], [4000, 4200, 3900, 4100]])


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 4-band uint16 scene of three classes (blobs), striped (not tiled), with nodata 0."""
    d = tmp_path_factory.mktemp("stream")
    rng = np.random.default_rng(5)
    h, w = 700, 530
    yy, xx = np.mgrid[:h, :w]
    field = ((np.sin(yy / 37.0) + np.cos(xx / 23.0) > 0.3).astype(int)
             + (np.hypot(yy - 350, xx - 260) < 120))  # fmt: skip
    pixels = np.clip(SPECTRA[field] + rng.normal(0, 150, (h, w, 4)), 1, 65535).astype(np.uint16)
    invalid = np.zeros((h, w), bool)
    invalid[:40, :60] = True
    invalid[300, 10] = True  # one band only below
    pixels[:40, :60] = 0
    pixels[300, 10, 2] = 0
    with rasterio.open(d / "scene.tif", "w", driver="GTiff", width=w, height=h, count=4,
                       dtype="uint16", crs=CRS, transform=TRANSFORM, nodata=0) as dst:  # fmt: skip
        dst.write(np.moveaxis(pixels, -1, 0))
    specs = []
    for c in range(3):
        model = pixgmm.fit(pixels[(field == c) & ~invalid].astype(np.float64), 1, "full")
        model.save(d / f"c{c}.json")
        specs += ["-m", f"c{c}={d / f'c{c}.json'}"]
    return {"dir": d, "pixels": pixels, "invalid": invalid, "field": field, "specs": specs}


@pytest.fixture
def small_windows(monkeypatch):
    monkeypatch.setattr(windows, "WINDOW_BYTES", 64 * 1024)  # about 30 rows of this scene


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.profile, src.crs, src.transform


def test_the_plan_covers_the_raster_once_in_whole_blocks():
    for h, w, block, bpp, budget in [(700, 530, (1, 530), 8, 65536), (1000, 800, (256, 256), 20,
                                     2**20), (5490, 5490, (512, 512), 20, 2**25), (3, 2, (1, 2), 1, 1)]:  # fmt: skip
        plan = windows.plan_windows(h, w, block, bpp, budget)
        covered = np.zeros((h, w), np.int64)
        for win in plan:
            covered[win.slices] += 1
            assert win.row % block[0] == 0 and win.col % block[1] == 0  # whole blocks
        assert (covered == 1).all()
        if block[1] == w:
            assert all(win.width == w for win in plan)  # full-width bands of strips


def test_classify_streams_the_same_labels_and_confidence_as_the_whole_image(
    scene, small_windows, tmp_path
):
    d = scene["dir"]
    result = invoke("classify", d / "scene.tif", *scene["specs"], "--scale", "none",
                    "--chi2-level", "0.999", "--save", "labels,confidence,probability",
                    "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    labels, profile, crs, transform = read(tmp_path / "scene.labels.tif")
    confidence = read(tmp_path / "scene.confidence.tif")[0][0]
    classes = read(tmp_path / "scene.classes.tif")[0]
    assert crs.to_string() == CRS and transform == TRANSFORM and profile["nodata"] == 255

    clf = pixgmm.Classifier({c: pixgmm.Mixture.load(d / f"c{c}.json") for c in range(3)})
    invalid = scene["invalid"]
    pixels = scene["pixels"].astype(np.float64)
    pixels[invalid] = np.nan
    want, conf = clf.predict(pixels, fill=255, chi2_level=0.999, reject=254,
                             return_confidence=True)  # fmt: skip
    np.testing.assert_array_equal(labels[0], np.where(invalid, 255, want))
    np.testing.assert_allclose(confidence, conf, rtol=2e-7)
    assert np.isnan(confidence[invalid]).all()
    want_p = clf.probability(pixels).astype(np.float32)  # as the float32 GeoTIFF holds it
    np.testing.assert_allclose(np.moveaxis(classes, 0, -1), want_p, rtol=2e-6, atol=1e-37)
    agree = (labels[0] == scene["field"]) | invalid | (labels[0] == 254)
    assert agree.mean() > 0.99  # the classes are well apart: the maps are right, not only equal


def test_skin_and_density_stream_too(scene, small_windows, tmp_path):
    d = scene["dir"]
    model = d / "c1.json"
    result = invoke("density", d / "scene.tif", "-m", model, "--scale", "none", "--log",
                    "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    got = read(tmp_path / "scene.logdensity.tif")[0][0]
    pixels = scene["pixels"].astype(np.float64)
    pixels[scene["invalid"]] = np.nan
    want = pixgmm.log_density(pixels, pixgmm.Mixture.load(model)).astype(np.float32)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.isnan(got[scene["invalid"]]).all()


def test_memory_holds_a_few_windows_whatever_the_scene(tmp_path, monkeypatch):
    """A 48 MB scene in 256 KiB windows: NumPy's peak stays a few windows (tracemalloc)."""
    h, w = 3000, 2000
    rng = np.random.default_rng(1)
    with rasterio.open(tmp_path / "big.tif", "w", driver="GTiff", width=w, height=h, count=4,
                       dtype="uint16", crs=CRS, transform=TRANSFORM, tiled=True,
                       blockxsize=256, blockysize=256) as dst:  # fmt: skip
        for r in range(0, h, 500):
            block = rng.integers(500, 4500, (4, 500, w), dtype=np.uint16)
            dst.write(block, window=rasterio.windows.Window(0, r, w, 500))
    model = pixgmm.Mixture([1.0], [[2500.0] * 4], [[1e6] * 4], "diag")
    model.save(tmp_path / "m.json")
    monkeypatch.setattr(windows, "WINDOW_BYTES", 256 * 1024)
    # the kernels compiled first
    invoke("density", tmp_path / "big.tif", "-m", tmp_path / "m.json", "--scale", "none",
           "-o", tmp_path / "warm", cwd=tmp_path)  # fmt: skip
    tracemalloc.start()
    try:
        result = invoke("density", tmp_path / "big.tif", "-m", tmp_path / "m.json", "--scale",
                        "none", "-o", tmp_path / "out", cwd=tmp_path)  # fmt: skip
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert h * w * 4 * 2 == 48_000_000
    assert peak < 24 * 2**20, peak  # the scene is 48 MB and its density map 24 MB
    got = read(tmp_path / "out" / "big.density.tif")[0][0]
    assert got.shape == (h, w) and np.isfinite(got).all()


@pytest.mark.parametrize("user_setting", [None, "300"])
def test_gdal_block_cache_is_a_few_windows_unless_the_user_sets_it(
    scene, small_windows, tmp_path, monkeypatch, user_setting
):
    """GDAL's cache (where written tiles wait) is bounded while windows stream, then restored;
    a GDAL_CACHEMAX in the environment is the user's and stays."""
    from rasterio.env import get_gdal_config

    if user_setting is None:
        monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    else:
        monkeypatch.setenv("GDAL_CACHEMAX", user_setting)
    before = get_gdal_config("GDAL_CACHEMAX")
    seen = []
    real = windows.WindowWriter.put

    def put(self, window, array):
        seen.append(get_gdal_config("GDAL_CACHEMAX"))
        return real(self, window, array)

    monkeypatch.setattr(windows.WindowWriter, "put", put)
    result = invoke("classify", scene["dir"] / "scene.tif", *scene["specs"], "--scale", "none",
                    "--save", "labels,confidence", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(seen) > 10  # dozens of windows, two outputs each
    # (GDAL read the variable when this process started: the cache stays as it is)
    expected = windows.CACHE_BYTES if user_setting is None else before
    assert {str(v) for v in seen} == {str(expected)}
    assert get_gdal_config("GDAL_CACHEMAX") == before


def test_a_failure_in_a_window_leaves_no_output(scene, small_windows, tmp_path, monkeypatch):
    d = scene["dir"]
    calls = []
    real = windows.WindowWriter.put

    def fail_on_the_fifth(self, window, array):
        calls.append(window)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        return real(self, window, array)

    monkeypatch.setattr(windows.WindowWriter, "put", fail_on_the_fifth)
    result = invoke("classify", d / "scene.tif", *scene["specs"], "--scale", "none",
                    "--save", "labels", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 1
    assert "No space left on device" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no output, no temporary file
    monkeypatch.undo()
    result = invoke("classify", d / "scene.tif", *scene["specs"], "--scale", "none",
                    "--save", "labels", "-o", tmp_path, cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0 and (tmp_path / "scene.labels.tif").exists()


def test_float_scale_auto_looks_at_every_window(tmp_path, small_windows):
    """--scale auto for a float scene decides on the whole scene's range, as in memory."""
    h, w = 400, 300
    refl = np.full((h, w, 3), 0.2, np.float32)
    refl[390:, 290:] = 1.5  # one value out of [0, 1], in the last window only
    with rasterio.open(tmp_path / "refl.tif", "w", driver="GTiff", width=w, height=h, count=3,
                       dtype="float32", crs=CRS, transform=TRANSFORM) as dst:  # fmt: skip
        dst.write(np.moveaxis(refl, -1, 0))
    result = invoke("skin", tmp_path / "refl.tif", "--save", "probability", "--json",
                    "-o", tmp_path / "out", cwd=tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "not in [0, 1]" in result.output and "1.5" in result.output


def _vrt(path, tiles, width, height, count, dtype="UInt16", nodata=0):
    """A GDAL virtual mosaic of ``tiles`` ([(file, col offset)]), written by hand."""
    bands = []
    for b in range(1, count + 1):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="1">{name}</SourceFilename>'
            f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" '
            f'ySize="{height}"/><DstRect xOff="{off}" yOff="0" xSize="{w}" '
            f'ySize="{height}"/></SimpleSource>'
            for name, off, w in tiles
        )
        bands.append(f"<VRTRasterBand dataType=\"{dtype}\" band=\"{b}\"><NoDataValue>{nodata}"
                     f"</NoDataValue>{sources}</VRTRasterBand>")  # fmt: skip
    a, b_, c, d, e, f = tuple(TRANSFORM)[:6]
    from rasterio.crs import CRS as RioCRS

    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">'
        f"<SRS>{RioCRS.from_string(CRS).to_wkt()}</SRS>"
        f"<GeoTransform>{c}, {a}, {b_}, {f}, {d}, {e}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )


def test_a_vrt_mosaic_is_read_like_the_geotiff_it_stands_for(scene, small_windows, tmp_path):
    d, pixels = scene["dir"], scene["pixels"]
    h, w = pixels.shape[:2]
    cut = 300
    for name, sl in (("left.tif", np.s_[:, :cut]), ("right.tif", np.s_[:, cut:])):
        part = pixels[sl]
        off = 0 if name == "left.tif" else cut
        with rasterio.open(tmp_path / name, "w", driver="GTiff", width=part.shape[1], height=h,
                           count=4, dtype="uint16", crs=CRS, nodata=0,
                           transform=TRANSFORM * rasterio.Affine.translation(off, 0)) as dst:  # fmt: skip
            dst.write(np.moveaxis(part, -1, 0))
    _vrt(tmp_path / "mosaic.vrt", [("left.tif", 0, cut), ("right.tif", cut, w - cut)], w, h, 4)
    args = [*scene["specs"], "--scale", "none", "--save", "labels"]
    result = invoke("classify", d / "scene.tif", *args, "-o", tmp_path / "a", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    result = invoke("classify", tmp_path / "mosaic.vrt", *args, "-o", tmp_path / "b", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    whole, profile, crs, transform = read(tmp_path / "a" / "scene.labels.tif")
    mosaic, _, crs_v, transform_v = read(tmp_path / "b" / "mosaic.labels.tif")
    np.testing.assert_array_equal(mosaic, whole)
    assert crs_v == crs and transform_v == transform
    # a folder scan takes the mosaic as an input, beside its tiles
    from pixgmm.cli.inputs import expand_inputs

    found = sorted(path.name for _, path, _ in expand_inputs([str(tmp_path)]))
    assert found == ["left.tif", "mosaic.vrt", "right.tif"]


def test_cog_outputs_are_cloud_optimized_with_the_same_pixels(scene, small_windows, tmp_path):
    d = scene["dir"]
    args = [d / "scene.tif", *scene["specs"], "--scale", "none", "--save", "labels,confidence"]
    assert invoke("classify", *args, "-o", tmp_path / "plain", cwd=tmp_path).exit_code == 0
    result = invoke("classify", *args, "--cog", "-o", tmp_path / "cog", cwd=tmp_path)
    assert result.exit_code == 0, result.output
    for name in ("scene.labels.tif", "scene.confidence.tif"):
        with rasterio.open(tmp_path / "cog" / name) as src:
            assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
            assert src.overviews(1) == [2]  # down to one 512 x 512 tile
            assert src.block_shapes[0] == (512, 512) and src.crs.to_string() == CRS
            cog = src.read()
        plain = read(tmp_path / "plain" / name)[0]
        np.testing.assert_array_equal(cog, plain)
    # no temporary file left
    assert sorted(p.name for p in (tmp_path / "cog").iterdir()) == [
        "scene.confidence.tif", "scene.labels.tif"]  # fmt: skip
