"""The ``pixgmm`` command line run as a real program on real files.

Every test here starts ``python -m pixgmm.cli`` in a subprocess (each pays the
numba import; the on-disk kernel cache keeps it to a second or two) on files
copied at test time from scikit-image's data and the bundled photo, then opens
what the command wrote and compares it with the Python API.
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

imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")
skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("click")
pytest.importorskip("imagecodecs")

from codec_files import write_png  # noqa: E402

SKIMAGE_DIR = Path(skimage_data.__file__).parent
ASTRONAUT_JPG = Path(pixgmm.__file__).parent / "data" / "astronaut.jpg"


def run_cli(*args, cwd, check_rc=None):
    """Run ``pixgmm ARGS`` in ``cwd``; return the CompletedProcess (text)."""
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


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A folder of real inputs: JPEG, PNG, 16-bit PNG, multi-page TIFF and broken files."""
    d = tmp_path_factory.mktemp("photos")
    shutil.copy(ASTRONAUT_JPG, d / "astronaut.jpg")
    shutil.copy(SKIMAGE_DIR / "coffee.png", d / "coffee.png")
    shutil.copy(SKIMAGE_DIR / "multipage_rgb.tif", d / "pages.tif")
    coffee = imageio.imread(d / "coffee.png")
    write_png(d / "coffee16.png", coffee.astype(np.uint16) * 257)  # libpng, via imagecodecs
    data = ASTRONAUT_JPG.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (d / "notes.png").write_text("this is not a picture\n")
    return d


def _rgb(path):
    return np.asarray(imageio.imread(path, plugin="pillow", rotate=True))[..., :3]


def test_help_lists_every_command(tmp_path):
    proc = run_cli("--help", cwd=tmp_path, check_rc=0)
    for command in ("skin", "demo", "density", "classify", "fit", "evaluate", "info"):
        assert f"  {command} " in proc.stdout, command
    proc = run_cli("classify", "--help", cwd=tmp_path, check_rc=0)
    assert "LABEL=MODEL.json" in proc.stdout


def test_the_program_keeps_its_exit_status_and_skips_the_last_collection(tmp_path):
    """``run`` (the console script, ``python -m pixgmm``) exits with the command's status
    and leaves the objects alive at exit in the collector's permanent generation."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from pixgmm.cli.main import run\n"
        "sys.argv[1:] = {args!r}\n"
        "run()\n"
    )
    for args, status, shown in ((["--version"], 0, "pixgmm, version"),
                                (["classify", "--no-such-option"], 2, "No such option")):  # fmt: skip
        proc = subprocess.run([sys.executable, "-c", code.format(args=args)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == status, (proc.stdout, proc.stderr)
        assert shown in proc.stdout + proc.stderr
        assert proc.stdout.strip().endswith("frozen True")


def test_skin_on_real_files_matches_the_python_api(photos, tmp_path):
    # one subprocess over seven inputs (about 2 s of CPU; longer on a busy machine)
    out = tmp_path / "out"
    names = ["astronaut.jpg", "coffee.png", "coffee16.png", "pages.tif", "truncated.jpg"]
    names += ["notes.png", "missing.jpg"]
    proc = run_cli(
        "skin",
        *[photos / n for n in names[:-1]],
        "missing.jpg",
        "--out",
        out,
        "--save",
        "mask,probability,overlay",
        "--json",
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["ok"], summary["failed"]) == (4, 3)
    by_name = {Path(r["input"]).name: r for r in summary["results"]}
    assert [by_name[n]["status"] for n in names] == ["ok"] * 4 + ["failed"] * 3
    # each failure reported with its path and reason, and the others processed
    assert "truncated" in by_name["truncated.jpg"]["error"]
    assert "not a readable PNG" in by_name["notes.png"]["error"]
    assert "no such file" in by_name["missing.jpg"]["error"]
    for name in ("truncated.jpg", "notes.png", "missing.jpg"):
        assert f"{name}: " in proc.stderr
    assert not list(out.glob("truncated.*")) and not list(out.glob("notes.*"))

    detector = pixgmm.SkinDetector()
    for stem, suffix in (("astronaut", "jpg"), ("coffee", "png")):
        rgb = _rgb(photos / f"{stem}.{suffix}")
        prob = tifffile.imread(out / f"{stem}.probability.tiff")
        assert prob.dtype == np.float32 and prob.shape == rgb.shape[:2]
        np.testing.assert_allclose(prob, detector.probability(rgb), rtol=2e-6, atol=1e-7)
        mask = imageio.imread(out / f"{stem}.mask.png")
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
        np.testing.assert_array_equal(mask == 255, detector.mask(rgb))
        overlay = imageio.imread(out / f"{stem}.overlay.png")
        assert overlay.shape == rgb.shape
        np.testing.assert_array_equal(overlay[mask == 0], rgb[mask == 0])
        assert (overlay[mask == 255] != rgb[mask == 255]).any()

    # 16-bit PNG: read at full depth and scaled to 0..255 for the 8-bit models
    p16 = tifffile.imread(out / "coffee16.probability.tiff")
    coffee = _rgb(photos / "coffee.png")
    np.testing.assert_allclose(p16, detector.probability(coffee.astype(np.float32)), atol=1e-5)

    # multi-page TIFF: one set of outputs per page; its float values in [0, 1] scaled to 0..255
    pages = tifffile.imread(photos / "pages.tif")  # planar RGB: (page, sample, y, x)
    assert pages.shape == (2, 3, 10, 10) and pages.dtype == np.float64 and pages.max() <= 1
    pages = np.moveaxis(pages, 1, -1)
    assert by_name["pages.tif"]["pages"] == len(pages) == 2
    assert by_name["pages.tif"]["scale"] == "float pixels in [0, 1] scaled to 0..255"
    assert by_name["coffee16.png"]["scale"] == "16-bit pixels scaled from 0..65535 to 0..255"
    assert "scale" not in by_name["coffee.png"]  # 8-bit: used as read, nothing to say
    for i, page in enumerate(pages, start=1):
        prob = tifffile.imread(out / f"pages.page{i}.probability.tiff")
        np.testing.assert_allclose(prob, detector.probability(page * 255), rtol=1e-5, atol=1e-6)


def test_no_overwrite_without_the_flag(photos, tmp_path):
    args = ["skin", photos / "coffee.png", "--out", tmp_path, "--save", "mask"]
    run_cli(*args, cwd=tmp_path, check_rc=0)
    target = tmp_path / "coffee.mask.png"
    target.write_bytes(b"sentinel")
    proc = run_cli(*args, cwd=tmp_path, check_rc=0)  # kept and reported as skipped
    assert "kept existing" in proc.stdout and "coffee.mask.png" in proc.stdout
    assert target.read_bytes() == b"sentinel"
    run_cli(*args, "--overwrite", "--quiet", cwd=tmp_path, check_rc=0)
    assert imageio.imread(target).shape == (400, 600)
    assert not list(tmp_path.glob(".*tmp*")), "a temporary file was left behind"


def test_unwritable_output_folder(photos, tmp_path):
    # tests run as root, where chmod does not stop writes: use a folder whose parent is a file
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run_cli(
        "skin", photos / "coffee.png", "--out", blocker / "sub", cwd=tmp_path, check_rc=1
    )
    assert "coffee.png: cannot create output folder" in proc.stderr


def test_video_round_trip(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(6, 48, 64, 3), dtype=np.uint8)
    frames[:, 10:30, 20:40] = (200, 140, 110)  # a skin-coloured patch
    imageio.imwrite(tmp_path / "clip.mp4", frames, plugin="FFMPEG", fps=10, macro_block_size=1)
    proc = run_cli(
        "skin",
        "clip.mp4",
        "--save",
        "overlay,probability",
        "--out",
        "out",
        "--json",
        cwd=tmp_path,
        check_rc=0,
    )
    result = json.loads(proc.stdout)["results"][0]
    assert result["frames"] == 6
    video = imageio.imread(tmp_path / "out" / "clip.overlay.mp4", plugin="FFMPEG")
    assert video.shape == (6, 48, 64, 3)
    prob = tifffile.imread(tmp_path / "out" / "clip.probability.tiff")
    assert prob.shape == (6, 48, 64) and prob.dtype == np.float32
    # the patch is skin-coloured in every frame (up to H.264 losses)
    assert (prob[:, 14:26, 24:36] > 0.5).mean() > 0.9


def test_density_outputs_match_log_density(photos, tmp_path):
    model = pixgmm.Mixture(
        [0.6, 0.4], [[120, 80, 60], [40, 60, 90]], [[400, 300, 300], [200, 200, 500]], "diag"
    )
    model.save(tmp_path / "model.json")
    run_cli(
        "density",
        photos / "coffee.png",
        "-m",
        "model.json",
        "--log",
        "--format",
        "tiff,npy,png",
        "-o",
        "out",
        "-q",
        cwd=tmp_path,
        check_rc=0,
    )
    rgb = _rgb(photos / "coffee.png")
    expected = pixgmm.log_density(rgb, model).astype(np.float32)
    np.testing.assert_array_equal(
        tifffile.imread(tmp_path / "out/coffee.logdensity.tiff"), expected
    )
    np.testing.assert_array_equal(np.load(tmp_path / "out/coffee.logdensity.npy"), expected)
    heat = imageio.imread(tmp_path / "out/coffee.logdensity.png")
    assert heat.shape == (*rgb.shape[:2], 3) and heat.dtype == np.uint8


def test_bad_model_file_is_a_usage_error_naming_the_field(photos, tmp_path):
    (tmp_path / "bad.json").write_text(
        json.dumps({"schema": "pixgmm.mixture", "weights": [1.0], "means": [[0, 0, 0]]})
    )
    proc = run_cli("density", photos / "coffee.png", "-m", "bad.json", cwd=tmp_path, check_rc=2)
    assert "$.covariances are missing" in proc.stderr
    assert "--model" in proc.stderr
    assert not list(tmp_path.glob("coffee.*"))


def test_fit_classify_evaluate_on_uci_pixels(shared_data, photos, tmp_path):
    # three subprocesses over the 245,057 UCI pixels: fit, classify with the fit, evaluate it
    uci = shared_data / "Skin_NonSkin.txt"
    if not uci.is_file():
        pytest.skip(f"{uci} is absent")
    proc = run_cli(
        "fit",
        "--pixels",
        uci,
        "--columns",
        "BGR",
        "-k",
        "3",
        "--max-samples",
        "20000",
        "-o",
        "uci.json",
        "--json",
        cwd=tmp_path,
        check_rc=0,
    )
    fitted = json.loads(proc.stdout)
    assert [m["class"] for m in fitted["models"]] == [1, 2]
    assert [m["pixels"] for m in fitted["models"]] == [50859, 194198]
    skin = pixgmm.Mixture.load(tmp_path / "uci.1.json")
    assert skin.channels == "BGR" and skin.n_components == 3

    # classify: labels, colour picture and per-class probabilities agree with Classifier
    proc = run_cli(
        "classify",
        photos / "astronaut.jpg",
        "-m",
        "skin=uci.1.json",
        "-m",
        "other=uci.2.json",
        "-o",
        "cls",
        "--json",
        cwd=tmp_path,
        check_rc=0,
    )
    summary = json.loads(proc.stdout)
    assert [c["label"] for c in summary["classes"]] == ["skin", "other"]
    clf = pixgmm.Classifier({"skin": skin, "other": pixgmm.Mixture.load(tmp_path / "uci.2.json")})
    rgb = _rgb(photos / "astronaut.jpg")
    labels = imageio.imread(tmp_path / "cls/astronaut.labels.png")
    expected = clf.predict(rgb, channels="RGB")
    np.testing.assert_array_equal(np.array(["skin", "other"])[labels], expected)
    probs = tifffile.imread(tmp_path / "cls/astronaut.classes.tiff")
    assert probs.shape == (2, *rgb.shape[:2]) and probs.dtype == np.float32
    np.testing.assert_allclose(
        np.moveaxis(probs, 0, -1), clf.probability(rgb, channels="RGB"), atol=1e-6
    )
    colour = imageio.imread(tmp_path / "cls/astronaut.labels-colour.png")
    assert colour.shape == rgb.shape
    assert len(np.unique(colour.reshape(-1, 3), axis=0)) == 2

    # evaluate: the table, the JSON and the plot
    proc = run_cli(
        "evaluate",
        "--pixels",
        uci,
        "--columns",
        "BGR",
        "-d",
        "jones-rehg",
        "-d",
        "uci=uci.1.json,uci.2.json",
        "--fpr",
        "0.05",
        "--plot",
        "roc.png",
        "--json",
        cwd=tmp_path,
        check_rc=0,
    )
    result = json.loads(proc.stdout)
    assert (result["pixels"], result["positive"]) == (245057, 50859)
    rows = {r["detector"]: r for r in result["detectors"]}
    from pixgmm.metrics import auc

    table = np.loadtxt(uci, dtype=np.uint8)
    scores = pixgmm.SkinDetector().log_ratio(table[:, :3], channels="BGR")
    assert rows["jones-rehg"]["auc"] == pytest.approx(auc(scores, table[:, 3] == 1), abs=1e-12)
    assert 0.9 < rows["jones-rehg"]["auc"] < rows["uci"]["auc"] <= 1.0
    plot = imageio.imread(tmp_path / "roc.png")
    assert plot.ndim == 3 and plot.shape[0] > 100


def test_skin_lazy_zarr_on_a_local_cluster(photos, tmp_path):
    # --workers starts a real one-process LocalCluster: a few seconds of start-up and shutdown
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("distributed")
    rgb = _rgb(photos / "astronaut.jpg")
    tifffile.imwrite(tmp_path / "tiled.tif", rgb, tile=(128, 128))
    proc = run_cli(
        "skin",
        "tiled.tif",
        "--workers",
        "1",
        "--chunks",
        "200",
        "--save",
        "mask,probability",
        "-o",
        "out",
        "--json",
        cwd=tmp_path,
        check_rc=0,
    )
    assert json.loads(proc.stdout)["results"][0]["outputs"] == [
        "out/tiled.mask.zarr",
        "out/tiled.probability.zarr",
    ]
    prob = zarr.open_array(tmp_path / "out/tiled.probability.zarr", mode="r")
    assert prob.chunks == (200, 200) and prob.attrs["pixgmm_complete"] is True
    detector = pixgmm.SkinDetector()
    np.testing.assert_allclose(prob[:], detector.probability(rgb), rtol=2e-6, atol=1e-7)
    mask = zarr.open_array(tmp_path / "out/tiled.mask.zarr", mode="r")[:]
    np.testing.assert_array_equal(mask == 255, detector.mask(rgb))
