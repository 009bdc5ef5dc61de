"""Videos: masks and label maps decode to exactly the values written (lossless FFV1 .mkv).

The input is a real H.264 video of an odd frame size, written by imageio's
ffmpeg plugin; the command line runs as a subprocess; its videos are decoded
with imageio's ffmpeg plugin and compared, frame by frame, with what the API
computes for the decoded input frames. A run is really killed mid-video and
rerun.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
pytest.importorskip("imageio_ffmpeg")
iio = pytest.importorskip("imageio.v3")
matplotlib = pytest.importorskip("matplotlib")

from pixgmm.io.write import StreamWriter  # noqa: E402

H, W = 47, 63  # odd: H.264's yuv420p could not hold it unpadded


def cli(*args):
    return [sys.executable, "-m", "pixgmm.cli", *map(str, args)]


def run_cli(*args, cwd):
    return subprocess.run(cli(*args), cwd=cwd, capture_output=True, text=True, timeout=300)


def make_clip(path, n_frames, seed=0):
    """Noise with a moving skin-coloured patch and a green and a blue block, as H.264 .mp4."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, size=(n_frames, H, W, 3), dtype=np.uint8)
    for i, f in enumerate(frames):
        x = (3 * i) % (W - 20)
        f[8:28, x : x + 20] = np.array([200, 140, 110]) + rng.integers(-12, 13, size=(20, 20, 3))
        f[30:44, 5:25] = (60, 190, 70)
        f[30:44, 35:60] = (40, 60, 200)
    # yuv444p: H.264 with an odd frame size and no chroma subsampling
    iio.imwrite(path, frames, plugin="FFMPEG", fps=10, macro_block_size=1, pixelformat="yuv444p")


def decode(path):
    return iio.imread(path, plugin="FFMPEG")


def one_channel(video):
    """A grey video decoded as RGB: the channels agree; return one."""
    assert (video == video[..., :1]).all()
    return video[..., 0]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("video")
    make_clip(folder / "clip.mp4", 8)
    return folder, decode(folder / "clip.mp4")


def test_skin_mask_video_is_exact(clip):
    folder, frames = clip
    assert frames.shape == (8, H, W, 3)
    proc = run_cli(
        "skin", "clip.mp4", "--save", "mask,heatmap,overlay", "-o", "out", "--json", cwd=folder
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    names = sorted(p.rsplit("/", 1)[-1] for p in result["outputs"])
    assert names == ["clip.heatmap.mp4", "clip.mask.mkv", "clip.overlay.mp4"]
    assert result["frames"] == 8

    mask = one_channel(decode(folder / "out" / "clip.mask.mkv"))
    det = pixgmm.SkinDetector()
    expected = np.stack([np.where(det.mask(f, channels="RGB"), 255, 0) for f in frames])
    assert mask.shape == (8, H, W)  # the odd size kept, not padded
    np.testing.assert_array_equal(mask, expected)
    assert 0.02 < (expected == 255).mean() < 0.9  # both values occur
    meta = iio.immeta(folder / "out" / "clip.mask.mkv", plugin="FFMPEG")
    assert meta["codec"].startswith("ffv1") and meta["fps"] == 10
    # pictures for the eye stay H.264 (an odd size padded by a pixel)
    overlay = decode(folder / "out" / "clip.overlay.mp4")
    assert overlay.shape == (8, H + 1, W + 1, 3)
    assert iio.immeta(folder / "out" / "clip.overlay.mp4", plugin="FFMPEG")["codec"].startswith(
        "h264"
    )


def test_classify_label_video_is_exact(clip):
    folder, frames = clip
    models = {
        "skin": pixgmm.Mixture([1.0], [[200, 140, 110]], [[300, 300, 300]], "diag"),
        "grass": pixgmm.Mixture([1.0], [[60, 190, 70]], [[300, 300, 300]], "diag"),
        "sky": pixgmm.Mixture([1.0], [[40, 60, 200]], [[300, 300, 300]], "diag"),
        "other": pixgmm.Mixture([1.0], [[128, 128, 128]], [[5000, 5000, 5000]], "diag"),
    }
    args = []
    for name, model in models.items():
        model.save(folder / f"{name}.json")
        args += ["-m", f"{name}={name}.json"]
    proc = run_cli(
        "classify", "clip.mp4", *args, "--save", "labels,colour", "-o", "cls", cwd=folder
    )
    assert proc.returncode == 0, proc.stderr

    labels = one_channel(decode(folder / "cls" / "clip.labels.mkv"))
    clf = pixgmm.Classifier(models)
    order = {lab: i for i, lab in enumerate(clf.labels)}
    expected = np.stack(
        [np.vectorize(order.__getitem__)(clf.predict(f, channels="RGB")) for f in frames]
    ).astype(np.uint8)
    assert labels.shape == (8, H, W)
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(expected)) == {0, 1, 2, 3}  # every class occurs
    # the label picture is exact too: each class in its legend colour (tab10)
    tab10 = matplotlib.colormaps["tab10"](np.arange(10), bytes=True)[:, :3]
    colour = decode(folder / "cls" / "clip.labels-colour.mkv")
    np.testing.assert_array_equal(colour, tab10[expected])


def test_a_killed_video_run_is_finished_by_the_same_command(tmp_path):
    make_clip(tmp_path / "long.mp4", 300, seed=1)
    args = ["skin", "long.mp4", "--save", "mask,overlay", "-o", "out", "--json"]
    proc = subprocess.Popen(
        cli(*args), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    out = tmp_path / "out"
    deadline = time.monotonic() + 240
    try:
        # frames are being written: the writers' hidden temporary files exist
        while not list(out.glob(".long.mask.mkv.pixgmm-tmp-*")):
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    time.sleep(0.5)  # the killed run's ffmpeg sees its input closed and exits
    names = ["long.mask.mkv", "long.overlay.mp4"]
    done = [n for n in names if (out / n).exists()]
    assert len(done) < 2  # killed before the end
    assert list(out.glob(".long.*.pixgmm-tmp-*"))  # what the killed writers left

    rerun = run_cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)["results"][0]
    assert sorted(p.rsplit("/", 1)[-1] for p in result.get("skipped", [])) == done
    assert sorted(p.rsplit("/", 1)[-1] for p in result["outputs"]) == sorted(set(names) - set(done))
    assert sorted(p.name for p in out.iterdir()) == names  # the temporary files are gone
    # whatever was under an output name after the kill was complete, and so is the rest
    frames = decode(tmp_path / "long.mp4")
    assert decode(out / "long.overlay.mp4").shape == (300, H + 1, W + 1, 3)
    mask = one_channel(decode(out / "long.mask.mkv"))
    det = pixgmm.SkinDetector()
    np.testing.assert_array_equal(
        mask, np.stack([np.where(det.mask(f, channels="RGB"), 255, 0) for f in frames])
    )
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads(again.stdout)["skipped"] == 1


# -- the writer itself ------------------------------------------------------------------


def test_lossless_stream_keeps_every_value_at_odd_sizes(tmp_path):
    ramp = np.arange(256, dtype=np.uint8)
    grey = [np.resize(np.roll(ramp, 37 * i), (17, 15)) for i in range(4)]  # all 256 values
    rng = np.random.default_rng(3)
    rgb = [rng.integers(0, 256, size=(9, 13, 3), dtype=np.uint8) for _ in range(4)]
    for name, frames in (("grey.mkv", grey), ("rgb.mkv", rgb)):
        with StreamWriter(tmp_path / name, "lossless", overwrite=False, fps=5) as w:
            for f in frames:
                w.append(f)
        video = decode(tmp_path / name)
        expected = np.stack(frames)
        if expected.ndim == 3:
            video = one_channel(video)
        np.testing.assert_array_equal(video, expected, err_msg=name)


def test_stream_writer_failing_halfway_leaves_nothing(tmp_path):
    target = tmp_path / "clip.mask.mkv"
    with pytest.raises(RuntimeError, match="stop"):
        with StreamWriter(target, "lossless", overwrite=False) as w:
            w.append(np.zeros((11, 7), np.uint8))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="uint8"), StreamWriter(target, "lossless", False) as w:
        w.append(np.zeros((11, 7), np.uint16))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="kind must be one of"):
        StreamWriter(target, "h265", False)
