"""pixgmm.io against a real S3 server: the same reads and writes at ``s3://`` URLs as at paths.

The server is moto's, on 127.0.0.1, with IAM checks on (``s3_server`` and ``s3`` in
``tests/conftest.py``); files are written by the libraries users write them with
(Pillow, tifffile, rasterio's COG driver, zarr) and uploaded with s3fs. Every result
read from the bucket is compared with the same read of the local file.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

import pixgmm

da = pytest.importorskip("dask.array")
zarr = pytest.importorskip("zarr")
tifffile = pytest.importorskip("tifffile")
rasterio = pytest.importorskip("rasterio")
Image = pytest.importorskip("PIL.Image")

from rasterio.transform import from_origin  # noqa: E402

from pixgmm import io as pxio  # noqa: E402
from pixgmm.io import remote  # noqa: E402

MODEL = pixgmm.Mixture(
    [0.3, 0.7], [[200, 150, 120], [60, 90, 120]], [[300, 300, 300], [900, 600, 400]], "diag"
)


@pytest.fixture
def image(rng):
    """A 300 x 260 RGB image with smooth structure and noise."""
    yy, xx = np.mgrid[0:300, 0:260]
    base = np.stack([xx * 0.8, yy * 0.7, (xx + yy) * 0.4], axis=-1)
    return np.clip(base + rng.integers(0, 40, base.shape), 0, 255).astype(np.uint8)


def _write_cog(path, image):
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=image.shape[1],
        height=image.shape[0],
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=from_origin(500000, 4200000, 10, 10),
        blocksize=128,
        compress="deflate",
    ) as dst:
        dst.write(np.moveaxis(image, -1, 0))


@pytest.fixture
def files(tmp_path, image):
    """The same image as PNG, JPEG, tiled TIFF, COG and Zarr, in a local folder."""
    folder = tmp_path / "local"
    folder.mkdir()
    Image.fromarray(image).save(folder / "photo.png")
    Image.fromarray(image).save(folder / "photo.jpg", quality=90)
    tifffile.imwrite(folder / "tiles.tif", image, tile=(64, 64), compression="zlib")
    _write_cog(folder / "scene.tif", image)
    zarr.create_array(folder / "image.zarr", data=image, chunks=(100, 100, 3))
    return folder


@pytest.fixture
def uploaded(s3, files):
    """``files`` uploaded to ``s3://bucket/in/`` with s3fs; ``(local folder, URL prefix)``."""
    s3.fs.put(f"{files}/", f"{s3.name}/in/", recursive=True)
    return files, f"{s3.url}/in"


# -- reading ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.png", "photo.jpg", "tiles.tif", "scene.tif"])
def test_images_in_a_bucket_read_as_the_local_files(uploaded, name):
    local, prefix = uploaded
    url = f"{prefix}/{name}"
    expected = pxio.read_pages(local / name)
    got = pxio.read_pages(url)
    assert len(got) == len(expected) == 1
    np.testing.assert_array_equal(got[0], expected[0])
    lazy = pxio.open_image_lazy(url, chunks=128)
    assert lazy.chunks == ((128, 128, 44), (128, 128, 4), (3,))
    np.testing.assert_array_equal(lazy.compute(), expected[0])
    pages = pxio.open_pages_lazy(url, chunks=128)
    np.testing.assert_array_equal(pages[0].compute(), expected[0])


def test_a_zarr_store_in_a_bucket_reads_lazily_as_the_local_one(uploaded, image):
    local, prefix = uploaded
    lazy = pxio.open_image_lazy(f"{prefix}/image.zarr", chunks=100)
    assert lazy.chunks == ((100, 100, 100), (100, 100, 60), (3,))
    np.testing.assert_array_equal(lazy.compute(), image)
    np.testing.assert_allclose(
        pixgmm.density(lazy, MODEL).compute(), pixgmm.density(image, MODEL), rtol=1e-12
    )
    assert pxio.is_complete(f"{prefix}/image.zarr") is False  # not written by write_zarr


def test_a_cog_in_a_bucket_keeps_its_georeferencing_and_reads_window_by_window(uploaded, image):
    local, prefix = uploaded
    here, there = pxio.probe_geotiff(local / "scene.tif"), pxio.probe_geotiff(f"{prefix}/scene.tif")
    assert there.path == f"{prefix}/scene.tif"
    assert there.pages[0].source.startswith("/vsis3/")  # GDAL's name for the object
    mine, theirs = here.pages[0], there.pages[0]
    assert (theirs.crs_wkt, theirs.transform, theirs.width, theirs.height, theirs.count) == (
        mine.crs_wkt,
        mine.transform,
        mine.width,
        mine.height,
        mine.count,
    )
    (lazy,) = there.lazy_pages(128)  # rasterio windows, one task per block
    assert lazy.chunks == ((128, 128, 44), (128, 128, 4), (3,))
    assert lazy.name.startswith("geotiff-window")
    np.testing.assert_array_equal(lazy.compute(), image)
    np.testing.assert_array_equal(there.read()[0], image)


# -- writing ---------------------------------------------------------------------------


def test_zarr_stores_written_to_a_bucket_and_an_unfinished_one_finished(s3, image):
    lazy_image = da.from_array(image, chunks=(128, 128, 3))
    density = pixgmm.density(lazy_image, MODEL)
    url = f"{s3.url}/maps/photo.density.zarr"
    assert pxio.store_status(url) == "missing"
    stored = pxio.write_zarr(density, url, attrs={"model": "two"})
    assert pxio.store_status(url) == "complete"
    back = zarr.open_array(url, mode="r")
    np.testing.assert_allclose(back[:], pixgmm.density(image, MODEL), rtol=1e-12)
    assert back.attrs["model"] == "two" and stored.chunks == (128, 128)
    with pytest.raises(FileExistsError, match="already complete"):
        pxio.write_zarr(density, url)

    # a write that fails halfway leaves a store that says so; the same call finishes it
    def fail_on_the_last(block, block_info=None):
        if block_info[None]["chunk-location"] == (2, 2):
            raise OSError("the connection broke")
        return block

    broken = density.map_blocks(fail_on_the_last, dtype=density.dtype)
    target = f"{s3.url}/maps/unfinished.zarr"
    with pytest.raises(OSError, match="connection broke"):
        pxio.write_zarr(broken, target)
    assert pxio.store_status(target) == "unfinished"
    assert zarr.open_array(target, mode="r").attrs[pxio.COMPLETE_ATTR] is False
    pxio.write_zarr(density, target)
    assert pxio.store_status(target) == "complete"
    np.testing.assert_array_equal(zarr.open_array(target, mode="r")[:], back[:])

    # several stores in one pass; objects pixgmm did not write are never written into
    lr = pixgmm.log_ratio(lazy_image, pixgmm.models.jones_rehg_skin(), MODEL)
    pair = [(lr, f"{s3.url}/maps/lr.zarr"), (lr > 0, f"{s3.url}/maps/mask.zarr")]
    pxio.write_zarr_many(pair)
    assert [pxio.store_status(u) for _, u in pair] == ["complete", "complete"]
    s3.fs.pipe(f"{s3.name}/maps/other.zarr/notes.txt", b"not a store")
    assert pxio.store_status(f"{s3.url}/maps/other.zarr") == "foreign"
    with pytest.raises(FileExistsError, match="not a Zarr store"):
        pxio.write_zarr(density, f"{s3.url}/maps/other.zarr", overwrite=True)


def test_single_file_outputs_are_uploaded_whole(s3, image, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the local copies go
    out = f"{s3.url}/out"
    pxio.write_png(f"{out}/photo.mask.png", image[..., 0], text={"pixgmm": "mask"})
    prob = np.linspace(0, 1, image[..., 0].size, dtype=np.float32).reshape(image.shape[:2])
    pxio.write_float(f"{out}/photo.probability.tiff", prob)
    pxio.write_float(f"{out}/photo.probability.npy", np.dstack([prob, 1 - prob]))
    _write_cog(tmp_path / "grid.tif", image)
    grid = pxio.probe_geotiff(tmp_path / "grid.tif").pages[0]
    pxio.write_geotiff(f"{out}/photo.probability.tif", prob, grid)
    assert sorted(s3.fs.ls(f"{s3.name}/out")) == [
        f"{s3.name}/out/photo.{n}"
        for n in ("mask.png", "probability.npy", "probability.tif", "probability.tiff")
    ]
    np.testing.assert_array_equal(pxio.read_image(f"{out}/photo.mask.png"), image[..., 0])
    np.testing.assert_array_equal(pxio.read_image(f"{out}/photo.probability.tiff"), prob)
    with s3.fs.open(f"{s3.name}/out/photo.probability.npy", "rb") as fh:
        np.testing.assert_array_equal(np.load(fh), np.dstack([prob, 1 - prob]))
    geo = pxio.probe_geotiff(f"{out}/photo.probability.tif")
    assert geo.pages[0].crs_wkt == grid.crs_wkt and geo.pages[0].transform == grid.transform
    np.testing.assert_array_equal(geo.read()[0], prob)

    with pytest.raises(pxio.OutputExists, match="exists; pass overwrite=True"):
        pxio.write_png(f"{out}/photo.mask.png", image)
    pxio.write_png(f"{out}/photo.mask.png", image, overwrite=True)
    np.testing.assert_array_equal(pxio.read_image(f"{out}/photo.mask.png"), image)

    # a writer that fails halfway: nothing under the output's name, no local copy left
    with pytest.raises(OSError, match="disk full"), pxio.atomic_target(f"{out}/x.png", False) as t:
        t.write_bytes(b"\x89PNG half")
        raise OSError("disk full")
    assert not s3.fs.exists(f"{s3.name}/out/x.png")
    assert list(tmp_path.glob("pixgmm-upload-*")) == []


def test_a_video_streams_to_a_bucket_and_back(s3, image, tmp_path, monkeypatch):
    pytest.importorskip("imageio_ffmpeg")
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the local copies go
    url = f"{s3.url}/clips/masks.mkv"
    frames = [np.ascontiguousarray(image[i : i + 64, :64, 0]) for i in range(0, 40, 10)]
    with pxio.StreamWriter(url, "lossless", fps=5) as video:  # FFV1: decodes exactly
        for frame in frames:
            video.append(frame)
    assert s3.fs.exists(f"{s3.name}/clips/masks.mkv")
    fps, got = pxio.video_frames(url)
    got = [np.asarray(f)[..., 0] if np.ndim(f) == 3 else f for f in got]
    assert fps == 5 and len(got) == len(frames)
    for a, b in zip(got, frames):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("pixgmm-")) == []


# -- errors ----------------------------------------------------------------------------


def test_missing_bucket_or_object_and_refused_credentials_are_one_line(uploaded, s3, monkeypatch):
    _, prefix = uploaded
    for call in (pxio.read_image, pxio.open_image_lazy):
        with pytest.raises(pxio.MissingInput, match="no such bucket 'pixgmm-no-such-bucket'"):
            call("s3://pixgmm-no-such-bucket/photo.png")
        with pytest.raises(pxio.MissingInput, match="no such object"):
            call(f"{prefix}/missing.png")
    with pytest.raises(pxio.MissingInput, match=r"no Zarr store at .* \(no such bucket"):
        pxio.open_image_lazy("s3://pixgmm-no-such-bucket/image.zarr")
    with pytest.raises(pxio.OutputError, match=r"cannot write s3://pixgmm-no-such-bucket/m\.zarr"):
        pxio.write_zarr(np.zeros((4, 4)), "s3://pixgmm-no-such-bucket/m.zarr")
    with pytest.raises(pxio.OutputError, match="no such bucket"):
        pxio.write_png("s3://pixgmm-no-such-bucket/m.png", np.zeros((4, 4), np.uint8))

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    remote.filesystem(prefix)[0].clear_instance_cache()
    for call in (pxio.read_image, pxio.open_image_lazy):
        for name in ("photo.png", "tiles.tif", "scene.tif"):
            with pytest.raises(pxio.ReadError, match=r"^access denied \(.*AWS_ACCESS_KEY_ID"):
                call(f"{prefix}/{name}")
    with pytest.raises(pxio.ReadError, match="access denied"):
        pxio.open_image_lazy(f"{prefix}/image.zarr")
    with pytest.raises(pxio.OutputError, match=r"cannot write s3://.*/m.zarr: access denied"):
        pxio.write_zarr(np.zeros((4, 4)), f"{s3.url}/m.zarr")


def test_no_connection_is_one_line(monkeypatch, s3):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore's own retries, standard variable
    remote.filesystem(s3.url)[0].clear_instance_cache()
    with pytest.raises(pxio.ReadError, match=r"^cannot connect to the object store"):
        pxio.read_image(f"{s3.url}/photo.png")
    with pytest.raises(pxio.OutputError, match=r"cannot write .*: cannot connect"):
        pxio.write_png(f"{s3.url}/photo.png", np.zeros((4, 4), np.uint8))


def test_without_the_cloud_extra_a_url_names_it(monkeypatch):
    pytest.importorskip("fsspec")
    registry = sys.modules["fsspec.registry"]._registry  # the classes fsspec has imported
    monkeypatch.delitem(registry, "s3", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # as if s3fs were not installed
    for call in (pxio.read_image, pxio.open_image_lazy, pxio.store_status):
        with pytest.raises(ImportError, match=r"need s3fs.*pip install \"pixgmm\[cloud\]\""):
            call("s3://bucket/photo.png")


def test_gdal_gets_the_endpoint_of_the_environment():
    config = remote.gdal_config
    assert config({"AWS_ENDPOINT_URL": "https://minio.example.org:9000/"}) == {
        "AWS_S3_ENDPOINT": "minio.example.org:9000",
        "AWS_HTTPS": "YES",
        "AWS_VIRTUAL_HOSTING": "FALSE",
    }
    both = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_S3": "http://b:2"}
    assert config(both)["AWS_S3_ENDPOINT"] == "b:2"  # the S3-specific one wins, as in botocore
    own = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_S3_ENDPOINT": "c:3"}
    assert "AWS_S3_ENDPOINT" not in config(own)  # GDAL's own setting is left to it
    assert remote.gdal_path("az://container/a.tif") == "/vsiaz/container/a.tif"
    assert remote.gdal_path("gs://b/a.tif") == "/vsigs/b/a.tif"


# -- a Dask cluster ---------------------------------------------------------------------


def test_a_local_cluster_reads_and_writes_the_bucket(uploaded, s3, image):
    distributed = pytest.importorskip("distributed")
    _, prefix = uploaded
    expected = pixgmm.density(image, MODEL)
    with pxio.dask_client(workers=2, progress=False) as client:
        endpoints = client.run(os.getenv, "AWS_ENDPOINT_URL")  # inherited from this process
        assert set(endpoints.values()) == {s3.server.endpoint}
        inputs = {
            "zarr": pxio.open_image_lazy(f"{prefix}/image.zarr", chunks=128),
            "tiff": pxio.open_image_lazy(f"{prefix}/tiles.tif", chunks=128),
            "cog": pxio.probe_geotiff(f"{prefix}/scene.tif").lazy_pages(128)[0],
        }
        items = [(pixgmm.density(a, MODEL), f"{s3.url}/maps/{k}.zarr") for k, a in inputs.items()]
        with distributed.get_task_stream(client) as tasks:
            pxio.write_zarr_many(items)
    # every task (reading a block, evaluating it, writing it: fused) ran in a worker process
    blocks = sum(a.npartitions for a, _ in items)
    assert len(tasks.data) >= blocks
    assert {t["worker"] for t in tasks.data} <= set(endpoints)
    for _, url in items:
        assert pxio.is_complete(url)
        np.testing.assert_allclose(zarr.open_array(url, mode="r")[:], expected, rtol=1e-12)
