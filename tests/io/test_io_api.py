"""The I/O layer as the library's users meet it: ``pixgmm.io``'s readers, writers and errors.

Real files written by Pillow, tifffile and rasterio; the errors are the built-in
exceptions a caller catches anyway, with the reason in words.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import pixgmm
import pixgmm.io as pxio

tifffile = pytest.importorskip("tifffile")
Image = pytest.importorskip("PIL.Image")


def test_the_package_face_defines_nothing_and_loads_lazily():
    import subprocess
    import sys

    code = (
        "import sys, pixgmm.io\n"
        "heavy = {'numpy', 'tifffile', 'rasterio', 'zarr', 'dask', 'PIL', 'imageio'}\n"
        "print(sorted(heavy & set(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert sorted(dir(pxio)) == sorted(pxio.__all__)
    for name in pxio.__all__:
        assert getattr(pxio, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        pxio.nothing  # noqa: B018
    assert pixgmm.io is pxio


def test_the_former_bigimage_module_names_the_io_layers_objects():
    from pixgmm import bigimage

    for name in bigimage.__all__:
        assert getattr(bigimage, name) is getattr(pxio, name, None) or name == "RUN_ATTR", name


def test_read_image_and_pages_from_files_written_by_pillow_and_tifffile(tmp_path):
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    tifffile.imwrite(tmp_path / "b.tif", np.stack([rgb, rgb[::-1]]), photometric="rgb")
    np.testing.assert_array_equal(pxio.read_image(tmp_path / "a.png"), rgb)
    pages = pxio.read_pages(tmp_path / "b.tif")
    assert len(pages) == 2
    np.testing.assert_array_equal(pages[1], rgb[::-1])
    np.testing.assert_array_equal(pxio.read_image(tmp_path / "b.tif", page=-1), rgb[::-1])
    with pytest.raises(ValueError, match=r"page=2 is not in .*b\.tif, which holds 2 page"):
        pxio.read_image(tmp_path / "b.tif", page=2)


def test_read_errors_are_the_exceptions_a_caller_catches(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file") as missing:
        pxio.read_pages(tmp_path / "missing.png")
    assert isinstance(missing.value, pxio.ReadError)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(pxio.ReadError, match="cannot decode image") as broken:
        pxio.read_pages(tmp_path / "broken.png")
    assert isinstance(broken.value, OSError) and isinstance(broken.value, ValueError)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported file type '\.txt'"):
        pxio.read_pages(tmp_path / "notes.txt")


def test_the_pixel_limit_refuses_before_decoding_and_says_the_api_way_out(tmp_path):
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(tmp_path / "a.jpg")
    with pytest.raises(pxio.PixelLimitError) as refused:
        pxio.read_image(tmp_path / "a.jpg", max_pixels=1000)
    text = str(refused.value)
    assert "40 x 30 pixels (1,200 pixels), over the limit of 1,000" in text
    assert "max_pixels=" in text and "--" not in text  # the library names its own arguments
    assert isinstance(refused.value, ValueError)
    again = pickle.loads(pickle.dumps(refused.value))  # raised on a Dask worker, seen here
    assert type(again) is pxio.PixelLimitError and str(again) == text
    other = refused.value.with_way_out("use a smaller image")
    assert str(other).endswith("; use a smaller image") and other.n_pixels == 1200
    assert pxio.read_image(tmp_path / "a.jpg", max_pixels=0).shape == (30, 40, 3)


def test_atomic_writers_refuse_an_existing_output_and_leave_no_partial_file(tmp_path):
    target = tmp_path / "map.tiff"
    pxio.write_float(target, np.ones((4, 5), np.float64))
    assert tifffile.imread(target).dtype == np.float32
    with pytest.raises(FileExistsError, match="overwrite=True") as exists:
        pxio.write_float(target, np.zeros((4, 5)))
    assert isinstance(exists.value, pxio.OutputExists)
    np.testing.assert_array_equal(tifffile.imread(target), 1)
    with (
        pytest.raises(RuntimeError, match="interrupted"),
        pxio.atomic_target(tmp_path / "half.png", False) as tmp,
    ):
        tmp.write_bytes(b"partial")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["map.tiff"]


def test_geotiff_round_trip_keeps_crs_transform_and_nodata(tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import from_origin

    scene = np.arange(2 * 6 * 8, dtype=np.uint16).reshape(2, 6, 8)
    scene[:, 0, 0] = 9999
    with rasterio.open(
        tmp_path / "scene.tif", "w", driver="GTiff", width=8, height=6, count=2,
        dtype="uint16", crs="EPSG:32633", nodata=9999,
        transform=from_origin(500000, 4200000, 20, 20),
    ) as dst:  # fmt: skip
        dst.write(scene)
        dst.set_band_description(1, "B4")
        dst.set_band_description(2, "B8")
    geo = pxio.probe_geotiff(tmp_path / "scene.tif")
    page = geo.pages[0]
    assert (page.width, page.height, page.count, page.nodata) == (8, 6, 2, 9999)
    (read,) = pxio.read_pages(tmp_path / "scene.tif")
    np.testing.assert_array_equal(read, np.moveaxis(scene, 0, -1))

    values = np.linspace(0, 1, 48, dtype=np.float64).reshape(6, 8)
    pxio.write_geotiff(tmp_path / "p.tif", values, page)
    labels = np.full((6, 8), 3, np.uint8)
    pxio.write_geotiff(tmp_path / "l.tif", labels, page)
    with rasterio.open(tmp_path / "p.tif") as src, rasterio.open(tmp_path / "l.tif") as lab:
        assert src.crs.to_epsg() == lab.crs.to_epsg() == 32633
        assert tuple(src.transform)[:6] == tuple(lab.transform)[:6] == page.transform
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert lab.dtypes[0] == "uint8" and lab.nodata == 255
        np.testing.assert_allclose(src.read(1), values.astype(np.float32))
    with pytest.raises(ValueError, match=r"7 x 6 pixels but the grid .* is 8 x 6"):
        pxio.write_geotiff(tmp_path / "bad.tif", np.zeros((6, 7)), page)
    assert not (tmp_path / "bad.tif").exists()


def test_plain_tiffs_and_other_files_are_not_georeferenced(tmp_path):
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((4, 4), np.uint8))
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a.png")
    assert pxio.probe_geotiff(tmp_path / "plain.tif") is None
    assert pxio.probe_geotiff(tmp_path / "a.png") is None
    assert pxio.probe_geotiff(tmp_path / "missing.tif") is None


def test_lazy_pages_equal_the_pages_read_into_memory(tmp_path):
    pytest.importorskip("dask")
    rng = np.random.default_rng(3)
    pages = rng.integers(0, 255, (3, 50, 70, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", pages, photometric="rgb", tile=(16, 16))
    planar = rng.integers(0, 60000, (3, 40, 30), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    for name in ("stack.tif", "planar.tif"):
        lazy = pxio.open_pages_lazy(tmp_path / name, chunks=(32, 24))
        eager = pxio.read_pages(tmp_path / name)
        assert len(lazy) == len(eager)
        for a, b in zip(lazy, eager):
            assert a.chunksize[:2] == (32, 24)
            np.testing.assert_array_equal(a.compute(), b)


def test_the_command_lines_scale_names_are_the_pixel_rules():
    from pixgmm.cli.options import SCALES
    from pixgmm.io.pixels import SCALES as RULE_SCALES

    assert SCALES == RULE_SCALES


def test_windowed_passes_bound_gdals_cache_and_restore_it(monkeypatch):
    """bounded_cache: GDAL's cache at a few windows inside, as it was after (also nested in
    another rasterio.Env); a GDAL_CACHEMAX the caller's rasterio.Env sets is kept."""
    rasterio = pytest.importorskip("rasterio")
    from rasterio.env import get_gdal_config

    from pixgmm.io.windows import CACHE_BYTES, bounded_cache

    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    before = get_gdal_config("GDAL_CACHEMAX")
    assert before != CACHE_BYTES
    with bounded_cache():
        assert get_gdal_config("GDAL_CACHEMAX") == CACHE_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == before
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        with bounded_cache():
            assert get_gdal_config("GDAL_CACHEMAX") == CACHE_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == before
    with rasterio.Env(GDAL_CACHEMAX=3 * CACHE_BYTES):
        with bounded_cache():
            assert get_gdal_config("GDAL_CACHEMAX") == 3 * CACHE_BYTES
    assert get_gdal_config("GDAL_CACHEMAX") == before
