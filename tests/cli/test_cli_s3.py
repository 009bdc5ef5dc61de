"""The command line on ``s3://`` inputs and outputs, run as a program against a real S3 server.

The server is moto's, on 127.0.0.1 with IAM checks on (``s3`` in ``tests/conftest.py``);
each command is a subprocess that gets the standard AWS environment only (credentials
and ``AWS_ENDPOINT_URL``). What it writes to the bucket is read back and compared with
the Python API on the same pixels.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
zarr = pytest.importorskip("zarr")
rasterio = pytest.importorskip("rasterio")
Image = pytest.importorskip("PIL.Image")

from rasterio.transform import from_origin  # noqa: E402

from pixgmm import io as pxio  # noqa: E402

ASTRONAUT_JPG = Path(pixgmm.__file__).parent / "data" / "astronaut.jpg"


def cli(*args, cwd, check_rc=None):
    """Run ``pixgmm ARGS`` in ``cwd`` (with this test's environment); the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", "pixgmm.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def _keys(s3, prefix):
    s3.fs.invalidate_cache()
    return sorted(p[len(s3.name) + 1 :] for p in s3.fs.find(f"{s3.name}/{prefix}"))


@pytest.fixture(scope="module")
def photo():
    return pxio.read_image(ASTRONAUT_JPG)[:, :, :3]


# -- --chunks: Zarr in, Zarr out, and a run killed halfway ----------------------------


def test_a_killed_chunked_run_on_a_bucket_is_finished_by_the_same_command(s3, photo, tmp_path):
    image = np.ascontiguousarray(photo[:384, :320])
    zarr.create_array(f"{s3.url}/in/photo.zarr", data=image, chunks=(64, 64, 3))
    out = f"{s3.url}/out/"
    args = ["skin", f"{s3.url}/in/photo.zarr", "--chunks", "64", "--save", "mask,probability"]
    args += ["-o", out]
    stores = [f"{s3.url}/out/photo.mask.zarr", f"{s3.url}/out/photo.probability.zarr"]
    killed = subprocess.Popen(
        [sys.executable, "-m", "pixgmm.cli", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    try:
        while not [k for k in _keys(s3, "out") if "/c/" in k]:  # the first chunk is written
            assert killed.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk appeared"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    chunks = [k for k in _keys(s3, "out") if "/c/" in k]
    assert 0 < len(chunks) < 2 * 30  # 6 x 5 chunks per store
    assert [pxio.store_status(u) for u in stores] == ["unfinished", "unfinished"]
    assert [zarr.open_array(u, mode="r").attrs[pxio.COMPLETE_ATTR] for u in stores] == [
        False,
        False,
    ]

    rerun = cli(*args, "--json", cwd=tmp_path, check_rc=0)
    assert json.loads(rerun.stdout)["results"][0]["outputs"] == stores
    assert [pxio.store_status(u) for u in stores] == ["complete", "complete"]
    detector = pixgmm.SkinDetector()
    mask, prob = (zarr.open_array(u, mode="r")[:] for u in stores)
    np.testing.assert_allclose(prob, detector.probability(image), rtol=2e-6, atol=1e-7)
    np.testing.assert_array_equal(mask == 255, detector.mask(image))


# -- in memory: a prefix and a pattern of photos ------------------------------------------


def test_a_prefix_and_a_pattern_in_a_bucket_are_expanded_like_folders(s3, photo, tmp_path):
    local = tmp_path / "photos"
    local.mkdir()
    Image.fromarray(photo[:200, :240]).save(local / "face.jpg", quality=92)
    Image.fromarray(photo[200:380, 100:300]).save(local / "suit.png")
    for decoy in ("face.mask.png", ".hidden.png", ".suit.png.pixgmm-tmp-77-0a1b2c.png"):
        Image.fromarray(photo[:8, :8]).save(local / decoy)  # skipped, as in a local folder
    (local / "notes.txt").write_text("not a photo")
    s3.fs.put(f"{local}/", f"{s3.name}/in/", recursive=True)

    save = ["--save", "mask,probability", "-o", f"{s3.url}/out", "--json"]
    summary = json.loads(cli("skin", f"{s3.url}/in/", *save, cwd=tmp_path, check_rc=0).stdout)
    assert [r["input"] for r in summary["results"]] == [
        f"{s3.url}/in/face.jpg",
        f"{s3.url}/in/suit.png",
    ]
    assert _keys(s3, "out") == [
        f"out/{stem}.{kind}"
        for stem in ("face", "suit")
        for kind in ("mask.png", "probability.tiff")
    ]
    detector = pixgmm.SkinDetector()
    for stem, suffix in (("face", "jpg"), ("suit", "png")):
        rgb = pxio.read_image(local / f"{stem}.{suffix}")
        mask = pxio.read_image(f"{s3.url}/out/{stem}.mask.png")
        np.testing.assert_array_equal(mask == 255, detector.mask(rgb))
        prob = pxio.read_image(f"{s3.url}/out/{stem}.probability.tiff")
        np.testing.assert_allclose(prob, detector.probability(rgb), rtol=2e-6, atol=1e-7)

    # a pattern, rerun into the same folder: its photo's outputs are kept and reported
    rerun = cli("skin", f"{s3.url}/in/*.jpg", *save, cwd=tmp_path, check_rc=0)
    (result,) = json.loads(rerun.stdout)["results"]
    assert result["status"] == "skipped" and result["input"] == f"{s3.url}/in/face.jpg"
    assert result["skipped"] == [
        f"{s3.url}/out/face.mask.png",
        f"{s3.url}/out/face.probability.tiff",
    ]


# -- a GeoTIFF in, GeoTIFF and Zarr out -------------------------------------------------------


def test_density_of_a_cog_in_a_bucket(s3, photo, tmp_path):
    image = np.ascontiguousarray(photo[:300, :260])
    image[:20, :30] = 0  # nodata in every band
    transform = from_origin(500000, 4200000, 10, 10)
    with rasterio.open(
        tmp_path / "scene.tif",
        "w",
        driver="COG",
        width=260,
        height=300,
        count=3,
        dtype="uint8",
        crs="EPSG:32633",
        transform=transform,
        nodata=0,
        blocksize=128,
    ) as dst:
        dst.write(np.moveaxis(image, -1, 0))
    s3.fs.put_file(str(tmp_path / "scene.tif"), f"{s3.name}/in/scene.tif")
    model = pixgmm.models.jones_rehg_skin()
    expected = pixgmm.density(image, model).astype(np.float32)
    expected[(image == 0).any(axis=-1)] = np.nan  # a band equal to nodata: nodata

    url = f"{s3.url}/in/scene.tif"
    cli("density", url, "-m", "jones-rehg-skin", "-o", f"{s3.url}/maps/", cwd=tmp_path, check_rc=0)
    geo = pxio.probe_geotiff(f"{s3.url}/maps/scene.density.tif")
    assert geo.pages[0].crs_wkt is not None and geo.pages[0].transform == tuple(transform)[:6]
    np.testing.assert_allclose(geo.read()[0], expected, rtol=1e-6)

    args = ["density", url, "-m", "jones-rehg-skin", "--chunks", "128", "-o", f"{s3.url}/big/"]
    cli(*args, cwd=tmp_path, check_rc=0)
    stored = zarr.open_array(f"{s3.url}/big/scene.density.zarr", mode="r")
    assert stored.chunks == (128, 128) and stored.attrs["transform"] == list(transform)[:6]
    np.testing.assert_allclose(stored[:], expected, rtol=1e-6)


# -- errors: one line each, never a traceback --------------------------------------------


def test_missing_buckets_keys_and_refused_credentials_are_one_line_each(s3, photo, tmp_path):
    Image.fromarray(photo[:64, :64]).save(tmp_path / "photo.png")
    s3.fs.put_file(str(tmp_path / "photo.png"), f"{s3.name}/in/photo.png")
    nobucket = "s3://pixgmm-no-such-bucket"

    proc = cli("skin", f"{nobucket}/photo.png", f"{s3.url}/in/missing.png", "-o", "out",
               cwd=tmp_path, check_rc=1)  # fmt: skip
    assert proc.stderr.splitlines() == [
        f"pixgmm: error: {nobucket}/photo.png: no such file or folder (no such bucket "
        "'pixgmm-no-such-bucket')",
        f"pixgmm: error: {s3.url}/in/missing.png: no such file or folder",
        "pixgmm: 2 of 2 input(s) failed",
    ]

    proc = cli("skin", f"{s3.url}/in/photo.png", "-o", f"{nobucket}/out/", cwd=tmp_path, check_rc=2)
    assert f"cannot write {nobucket}/out: no such bucket 'pixgmm-no-such-bucket'" in proc.stderr
    assert "Traceback" not in proc.stderr and not _keys(s3, "out")

    wrong = {"AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    with pytest.MonkeyPatch.context() as env:
        for key, value in wrong.items():
            env.setenv(key, value)
        proc = cli("skin", f"{s3.url}/in/photo.png", "-o", "out", cwd=tmp_path, check_rc=1)
        (line, _) = proc.stderr.splitlines()
        assert line.startswith(f"pixgmm: error: {s3.url}/in/photo.png: access denied (")
        assert "AWS_ACCESS_KEY_ID" in line
        proc = cli("skin", "photo.png", "-o", f"{s3.url}/out/", cwd=tmp_path, check_rc=2)
        assert f"cannot write {s3.url}/out: access denied" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
