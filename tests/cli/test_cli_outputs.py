"""What the command line writes: reruns after a kill, atomic outputs, full disks, thresholds.

A run is really killed (SIGKILL) and rerun; a writer is made to fail halfway;
a disk is really filled (a small tmpfs, where the tests run as root); the mask
options are compared with :meth:`pixgmm.SkinDetector.mask` in memory and with
``--chunks``.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")


from cli_run import invoke  # noqa: E402

ASTRONAUT_JPG = Path(pixgmm.__file__).parent / "data" / "astronaut.jpg"
SKIN_ARGS = ["--save", "mask,probability,heatmap,overlay"]


def cli_command(*args):
    return [sys.executable, "-m", "pixgmm.cli", *map(str, args)]


def _rgb(path):
    return np.asarray(imageio.imread(path, plugin="pillow", rotate=True))[..., :3]


def _temporaries(folder):
    return sorted(p.name for p in Path(folder).rglob("*") if ".pixgmm-tmp-" in p.name)


# -- a killed run is finished by running it again (issue 9, item 11) -------------------


@pytest.fixture
def photo_folder(tmp_path):
    """Five photos (crops of the bundled one) in a folder that also receives the outputs."""
    rgb = _rgb(ASTRONAUT_JPG)
    folder = tmp_path / "work"
    folder.mkdir()
    for i in range(5):
        imageio.imwrite(folder / f"img{i}.png", np.ascontiguousarray(rgb[i * 20 : i * 20 + 400]))
    return folder


def test_a_killed_run_is_finished_by_the_same_command(photo_folder, tmp_path):
    args = ["skin", photo_folder, *SKIN_ARGS, "-o", photo_folder]  # outputs beside the inputs
    proc = subprocess.Popen(
        cli_command(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 240
    try:
        while not list(photo_folder.glob("*.mask.png")):  # the first output is in place
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no output appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    kinds = ("mask.png", "probability.tiff", "heatmap.png", "overlay.png")
    names = [f"img{i}.{k}" for i in range(5) for k in kinds]
    present = [n for n in names if (photo_folder / n).exists()]
    assert 0 < len(present) < len(names)
    if not any(
        0 < sum((photo_folder / f"img{i}.{k}").exists() for k in kinds) < 4 for i in range(5)
    ):
        (photo_folder / present[-1]).unlink()  # make one input half done, as a kill can
        present.pop()
    # what a writer killed mid-write leaves behind: a hidden temporary file (a picture, so
    # that taking it as an input would show)
    missing = next(n for n in names if n not in present and n.endswith(".png"))
    stale = photo_folder / f".{missing}.pixgmm-tmp-{proc.pid}-0a1b2c.png"  # as io.temp_name
    imageio.imwrite(stale, np.zeros((8, 8, 3), np.uint8))
    before = {n: (photo_folder / n).read_bytes() for n in present}

    rerun = subprocess.run(
        cli_command(*args, "--json"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert rerun.returncode == 0, rerun.stderr
    summary = json.loads(rerun.stdout)
    assert [Path(r["input"]).name for r in summary["results"]] == [f"img{i}.png" for i in range(5)]
    assert summary["failed"] == 0
    skipped = sorted(Path(s).name for r in summary["results"] for s in r.get("skipped", []))
    written = sorted(Path(s).name for r in summary["results"] for s in r["outputs"])
    assert skipped == sorted(present)
    assert written == sorted(set(names) - set(present))
    for n, data in before.items():  # kept as they were
        assert (photo_folder / n).read_bytes() == data, n
    assert _temporaries(photo_folder) == []  # the killed writer's file is gone
    # the finished set is what one uninterrupted run writes
    clean = tmp_path / "clean"
    subprocess.run(
        cli_command("skin", photo_folder, *SKIN_ARGS, "-o", clean),
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert sorted(p.name for p in clean.iterdir()) == sorted(names)
    for n in names:
        read = tifffile.imread if n.endswith(".tiff") else imageio.imread
        np.testing.assert_array_equal(read(photo_folder / n), read(clean / n), err_msg=n)

    # and once more: nothing to do, everything skipped, still exit 0
    again = subprocess.run(
        cli_command(*args, "--json"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0
    counts = json.loads(again.stdout)
    assert (counts["ok"], counts["skipped"], counts["failed"]) == (0, 5, 0)


# -- atomic outputs (issue 12) ------------------------------------------------------------


def test_a_write_failing_halfway_leaves_the_old_output_or_nothing(tmp_path, monkeypatch):
    rgb = _rgb(ASTRONAUT_JPG)[:200, :300]
    imageio.imwrite(tmp_path / "photo.png", rgb)
    result = invoke("skin", "photo.png", "--save", "mask", "-o", "out", cwd=tmp_path)
    assert result.exit_code == 0
    old = (tmp_path / "out" / "photo.mask.png").read_bytes()

    real_imwrite = imageio.imwrite

    def half_then_full_disk(uri, image, **kwargs):
        """Write the first half of the real file, then fail as a full disk does."""
        buffer = io.BytesIO()
        real_imwrite(buffer, image, **{**kwargs, "extension": ".png"})
        data = buffer.getvalue()
        with open(uri, "wb") as fh:
            fh.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(uri))

    monkeypatch.setattr(imageio, "imwrite", half_then_full_disk)
    for args, final in (
        (["--save", "mask", "--overwrite"], "photo.mask.png"),  # replacing an old output
        (["--save", "overlay"], "photo.overlay.png"),  # a new output
    ):
        result = invoke("skin", "photo.png", *args, "-o", "out", "--json", cwd=tmp_path)
        assert result.exit_code == 1
        error = json.loads(result.stdout)["results"][0]["error"]
        assert error == f"cannot write out/{final}: No space left on device"
    assert (tmp_path / "out" / "photo.mask.png").read_bytes() == old  # the old content
    assert not (tmp_path / "out" / "photo.overlay.png").exists()  # or nothing
    assert _temporaries(tmp_path / "out") == []


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 64 KiB tmpfs (needs root, as in CI); skips with the reason otherwise."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a small tmpfs needs root and mount(8) to fill a disk for real")
    folder = tmp_path / "small"
    folder.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_full_disk_names_the_output_and_the_reason(tmp_path, full_disk):
    shutil.copy(ASTRONAUT_JPG, tmp_path / "photo.jpg")
    proc = subprocess.run(
        cli_command("skin", "photo.jpg", *SKIN_ARGS, "-o", full_disk, "--json"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    failed_output = result["error"].split(": ")[0].removeprefix("cannot write ")
    assert result["error"] == f"cannot write {failed_output}: No space left on device"
    assert Path(failed_output).parent == full_disk and ".pixgmm-tmp-" not in failed_output
    # outputs written before the disk filled are whole; the failed one is absent
    assert not Path(failed_output).exists()
    for written in result["outputs"]:
        assert imageio.imread(written).shape[:2] == (512, 512)
    assert _temporaries(full_disk) == []


# -- --threshold and --ratio change the mask as they should (issue 12) ---------------------


@pytest.fixture(scope="module")
def skin_photo(tmp_path_factory):
    d = tmp_path_factory.mktemp("thresholds")
    rgb = _rgb(ASTRONAUT_JPG)
    imageio.imwrite(d / "photo.png", rgb)
    tifffile.imwrite(d / "tiled.tif", rgb, tile=(128, 128), photometric="rgb")
    return d, rgb


@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        (["--threshold", "0.95"], {"probability": 0.95}),
        (["--threshold", "0.05"], {"probability": 0.05}),
        (["--ratio", "30"], {"ratio": 30.0}),
        (["--ratio", "0.02"], {"ratio": 0.02}),
        (["--threshold", "0.5", "--prior", "0.05"], {"probability": 0.5, "prior": 0.05}),
    ],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "chunks"])
def test_threshold_and_ratio_set_the_mask(skin_photo, options, kwargs, lazy):
    folder, rgb = skin_photo
    kwargs = dict(kwargs)
    detector = pixgmm.SkinDetector(prior=kwargs.pop("prior", 0.5))
    want = detector.mask(rgb, channels="RGB", **kwargs)
    default = pixgmm.SkinDetector().mask(rgb, channels="RGB")
    assert want.sum() != default.sum()  # so a command ignoring the option fails here
    out = f"out-{'-'.join(options)}-{lazy}"
    if lazy:
        zarr = pytest.importorskip("zarr")
        pytest.importorskip("dask")
        result = invoke(
            "skin",
            "tiled.tif",
            "--chunks",
            "200",
            "--save",
            "mask",
            *options,
            "-o",
            out,
            cwd=folder,
        )
        assert result.exit_code == 0, result.output
        got = zarr.open_array(folder / out / "tiled.mask.zarr", mode="r")[:]
    else:
        result = invoke("skin", "photo.png", "--save", "mask", *options, "-o", out, cwd=folder)
        assert result.exit_code == 0, result.output
        got = imageio.imread(folder / out / "photo.mask.png")
    np.testing.assert_array_equal(got == 255, want)


def test_chunks_refuses_a_zarr_store_pixgmm_did_not_write(tmp_path, rng):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask")
    tifffile.imwrite(tmp_path / "t.tif", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    target = tmp_path / "out" / "t.density.zarr"
    theirs = zarr.create_array(str(target), shape=(40, 50), dtype="f4", fill_value=7.0)
    theirs[:] = 7.0
    args = ["density", tmp_path / "t.tif", "-m", "jones-rehg-skin", "--chunks", "16",
            "--out", tmp_path / "out"]  # fmt: skip
    result = invoke(*args, cwd=tmp_path)
    assert result.exit_code == 1
    assert "was not written by pixgmm" in result.output and "--overwrite" in result.output
    assert (zarr.open_array(str(target), mode="r")[:] == 7.0).all()  # left as it was
    assert invoke(*args, "--overwrite", cwd=tmp_path).exit_code == 0
    assert zarr.open_array(str(target), mode="r").attrs["pixgmm_complete"] is True
    # a rerun skips the store pixgmm completed
    again = invoke(*args, "--json", cwd=tmp_path)
    assert again.exit_code == 0 and "skipped" in again.output
