"""What the command line reads: the pixel scale, labelled-pixel tables, the pixel limit, patterns.

Real files written by tifffile, Pillow and imageio; commands run in process
(click's CliRunner) where that is enough and as subprocesses where a hang, a
crash or another user must be seen for real.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
imageio = pytest.importorskip("imageio.v3")
tifffile = pytest.importorskip("tifffile")


from cli_run import invoke  # noqa: E402
from pixgmm.cli import main  # noqa: E402
from pixgmm.cli.inputs import expand_inputs  # noqa: E402

SRC = Path(pixgmm.__file__).resolve().parents[1]


def run_cli(*args, cwd, timeout=300, env=None, prefix=()):
    """``pixgmm ARGS`` as a subprocess (optionally under ``prefix``, e.g. setpriv)."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "pixgmm.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def scene(tmp_path):
    """A photo (skin-coloured square on blue, with noise), its mask, and float/16-bit copies."""
    rng = np.random.default_rng(7)
    image = np.empty((60, 80, 3), np.float64)
    image[:] = (40, 90, 160)
    mask = np.zeros((60, 80), np.uint8)
    mask[15:45, 20:60] = 255
    image[mask > 0] = (200, 140, 110)
    image += rng.normal(0, 12, image.shape)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    for name in ("u8", "f32", "u16", "masks"):
        (tmp_path / name).mkdir()
    imageio.imwrite(tmp_path / "u8" / "scene.png", image)
    tifffile.imwrite(
        tmp_path / "f32" / "scene.tif", image.astype(np.float32) / 255, photometric="rgb"
    )
    tifffile.imwrite(
        tmp_path / "u16" / "scene.tif", image.astype(np.uint16) * 257, photometric="rgb"
    )
    imageio.imwrite(tmp_path / "masks" / "scene.png", mask)
    return tmp_path, image, mask


# -- one pixel scale for every command (issue 9, item 4) ---------------------------


def test_float_tiff_in_unit_range_is_scaled_by_every_command(scene):
    tmp, image, mask = scene
    detector = pixgmm.SkinDetector()
    want = detector.probability(image)
    assert want[mask > 0].mean() > 0.9  # the square is skin at 0..255

    # skin: the float image gives the 8-bit answer, and the summary says why
    result = invoke("skin", "f32/scene.tif", "--save", "probability", "-o", "s", "--json", cwd=tmp)
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout)["results"][0]
    assert entry["scale"] == "float pixels in [0, 1] scaled to 0..255"
    np.testing.assert_allclose(tifffile.imread(tmp / "s/scene.probability.tiff"), want, atol=1e-4)
    result = invoke("skin", "f32/scene.tif", "--save", "mask", "-o", "s", cwd=tmp)
    assert "float pixels in [0, 1] scaled to 0..255" in result.stdout  # the text summary too

    # --scale none overrides: the values as read (no skin at 0..1), and says so
    result = invoke(
        "skin",
        "f32/scene.tif",
        "--save",
        "probability",
        "--scale",
        "none",
        "-o",
        "n",
        "--json",
        cwd=tmp,
    )
    assert json.loads(result.stdout)["results"][0]["scale"].endswith("(--scale none)")
    raw = tifffile.imread(tmp / "n/scene.probability.tiff")
    np.testing.assert_allclose(raw, detector.probability(image / 255.0), atol=1e-6)
    assert raw[mask > 0].mean() < 0.5

    # density: float, 16-bit and 8-bit images give the same map under one rule
    model = pixgmm.models.jones_rehg_skin()
    maps = {}
    for folder in ("u8", "f32", "u16"):
        name = next((tmp / folder).iterdir()).name
        result = invoke(
            "density",
            f"{folder}/{name}",
            "-m",
            "jones-rehg-skin",
            "--log",
            "-o",
            f"d-{folder}",
            "--json",
            cwd=tmp,
        )
        assert result.exit_code == 0, result.output
        maps[folder] = tifffile.imread(tmp / f"d-{folder}/scene.logdensity.tiff")
        note = json.loads(result.stdout)["results"][0].get("scale")
        assert (
            note
            == {
                "u8": None,
                "f32": "float pixels in [0, 1] scaled to 0..255",
                "u16": "16-bit pixels scaled from 0..65535 to 0..255",
            }[folder]
        )
    exact = pixgmm.log_density(image, model).astype(np.float32)
    np.testing.assert_allclose(maps["u8"], exact, rtol=1e-6)
    np.testing.assert_allclose(maps["f32"], exact, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(maps["u16"], exact, rtol=1e-4, atol=1e-3)

    # classify: the same labels as for the 8-bit image
    labels = {}
    for folder in ("u8", "f32"):
        name = next((tmp / folder).iterdir()).name
        result = invoke(
            "classify",
            f"{folder}/{name}",
            "-m",
            "skin=jones-rehg-skin",
            "-m",
            "other=jones-rehg-nonskin",
            "--save",
            "labels",
            "-o",
            f"c-{folder}",
            cwd=tmp,
        )
        assert result.exit_code == 0, result.output
        labels[folder] = imageio.imread(tmp / f"c-{folder}/scene.labels.png")
    np.testing.assert_array_equal(labels["f32"], labels["u8"])
    assert (labels["u8"][mask > 0] == 0).mean() > 0.9

    # fit and evaluate from images with masks: the float image is fitted on 0..255
    result = invoke(
        "fit", "f32/scene.tif", "--masks", "masks", "-k", "1", "-o", "f.json", "--json", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["scale"] == "float pixels in [0, 1] scaled to 0..255"
    fitted = pixgmm.Mixture.load(tmp / "f.json")
    np.testing.assert_allclose(fitted.means[0], image[mask > 0].mean(0), rtol=1e-4)
    aucs = {}
    for folder in ("u8", "f32"):
        result = invoke("evaluate", folder, "--masks", "masks", "--json", cwd=tmp)
        assert result.exit_code == 0, result.output
        aucs[folder] = json.loads(result.stdout)["detectors"][0]["auc"]
    assert aucs["f32"] == pytest.approx(aucs["u8"], abs=1e-3) and aucs["u8"] > 0.95


def test_float_tiff_scaled_with_chunks_too(scene):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask")
    tmp, image, _ = scene
    tifffile.imwrite(
        tmp / "tiled.tif", image.astype(np.float32) / 255, tile=(32, 32), photometric="rgb"
    )
    result = invoke(
        "skin", "tiled.tif", "--chunks", "32", "--save", "probability", "-o", "z", "--json", cwd=tmp
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["scale"] == (
        "float pixels in [0, 1] scaled to 0..255"
    )
    got = zarr.open_array(tmp / "z/tiled.probability.zarr", mode="r")[:]
    np.testing.assert_allclose(got, pixgmm.SkinDetector().probability(image), atol=1e-4)


def test_pixel_rule_decisions():
    from pixgmm.io.pixels import PixelRule

    out, note = PixelRule(3)(np.array([[[0.0, 2.0, 300.0]]], np.float32))
    assert out.tolist() == [[[0.0, 2.0, 300.0]]] and "not in [0, 1]" in note
    out, note = PixelRule(3, "unit")(np.array([[[0.0, 0.5, 1.5]]], np.float64))
    assert out.tolist() == [[[0.0, 127.5, 382.5]]] and "--scale unit" in note
    out, note = PixelRule(3)(np.full((1, 1, 4), 65535, np.uint16))  # alpha dropped
    assert out.shape == (1, 1, 3) and out.max() == 255 and note.startswith("16-bit")
    out, note = PixelRule(1)(np.array([[np.nan, 0.25]], np.float32))  # NaN ignored
    assert out.shape == (1, 2, 1) and out[0, 1, 0] == 63.75 and "[0, 1]" in note
    with pytest.raises(ValueError, match="greyscale"):
        PixelRule(3)(np.zeros((4, 4), np.uint8))


def test_to_8bit_contradicting_scale_none_is_a_usage_error(tmp_path):
    result = invoke(
        "density", "x.png", "-m", "jones-rehg-skin", "--to-8bit", "--scale", "none", cwd=tmp_path
    )
    assert result.exit_code == 2 and "--scale none" in result.output


# -- labelled-pixel tables (items 5 and 6) ---------------------------------------------


@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_pixel_table_without_columns_is_a_usage_error(tmp_path, command):
    np.savetxt(tmp_path / "px.txt", [[10, 20, 30, 1], [40, 50, 60, 2]], fmt="%d")
    extra = ["-o", "m.json"] if command == "fit" else []
    result = invoke(command, "--pixels", "px.txt", *extra, cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert "--pixels needs --columns" in result.output and "BGR" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["px.txt"]


def test_fit_table_reports_nan_rows_per_class_and_names_an_emptied_class(tmp_path):
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(3)
    one = np.c_[rng.normal(100, 5, (40, 3)), np.ones(40)]
    one[:3, 1] = np.nan  # three rows of class 1 lose a value
    two = np.c_[rng.normal(30, 5, (20, 3)), np.full(20, 2)]
    two[:, 0] = np.nan  # every row of class 2 does
    np.savetxt(tmp_path / "px.txt", np.vstack([one, two]), fmt="%.3f")
    result = invoke(
        "fit",
        "--pixels",
        "px.txt",
        "--columns",
        "RGB",
        "-k",
        "1",
        "-o",
        "m.json",
        "--json",
        cwd=tmp_path,
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    models = {m["class"]: m for m in summary["models"]}
    assert list(models) == [1, 2]
    assert models[1]["status"] == "ok" and models[1]["pixels"] == 37
    assert models[1]["dropped_nan"] == 3
    assert models[2]["status"] == "failed" and models[2]["dropped_nan"] == 20
    assert "class 2: all 20 row(s) have a NaN" in models[2]["error"]
    assert "class 2: all 20 row(s) have a NaN" in result.stderr
    assert "class 1: 3 row(s) with a NaN pixel value left out" in result.stderr
    assert (tmp_path / "m.1.json").is_file() and not (tmp_path / "m.2.json").exists()


def test_fit_with_all_zero_masks_says_so(scene):
    pytest.importorskip("sklearn")
    tmp, _, mask = scene
    imageio.imwrite(tmp / "masks" / "scene.png", np.zeros_like(mask))
    result = invoke("fit", "u8/scene.png", "--masks", "masks", "-o", "m.json", cwd=tmp)
    assert result.exit_code == 1
    assert "every mask is all 0" in result.output
    assert not (tmp / "m.json").exists()


# -- smaller things (issue 9) --------------------------------------------------------


def test_evaluate_checks_the_plot_before_reading_anything(tmp_path, monkeypatch):
    # --pixels names a file that does not exist: a check after loading would report that
    args = ["evaluate", "--pixels", "absent.txt", "--columns", "BGR"]
    (tmp_path / "blocker").write_text("a file where the plot's folder should be")
    result = invoke(*args, "--plot", "blocker/roc.png", cwd=tmp_path)
    assert result.exit_code == 1
    assert "cannot write blocker/roc.png" in result.output and "absent.txt" not in result.output

    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real(name, *a),
    )
    result = invoke(*args, "--plot", "roc.png", cwd=tmp_path)
    assert result.exit_code == 1
    assert 'pip install "pixgmm[plot]"' in result.output and "absent.txt" not in result.output
    assert not (tmp_path / "roc.png").exists()


def test_evaluate_quiet_prints_nothing(scene):
    tmp, _, _ = scene
    loud = invoke("evaluate", "u8", "--masks", "masks", cwd=tmp)
    assert loud.exit_code == 0 and "AUC" in loud.output
    quiet = invoke("evaluate", "u8", "--masks", "masks", "-q", cwd=tmp)
    assert quiet.exit_code == 0 and quiet.output == ""


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("jones-rehg", "did you mean jones-rehg-skin or jones-rehg-nonskin?"),
        ("jones-rehg-skn", "did you mean jones-rehg-skin"),
        ("missing.json", "no such file (built-in models: jones-rehg-skin, jones-rehg-nonskin)"),
    ],
)
def test_unknown_model_names_are_reported_with_a_suggestion(tmp_path, spec, hint):
    result = invoke("info", spec, cwd=tmp_path)
    assert result.exit_code == 2
    assert f"cannot read model file {spec}" in result.output and hint in result.output


# -- unreadable folders, for real as an unprivileged user (item 10; item 12 permissions) ----


def _nobody_prefix():
    """``setpriv`` (or ``su``) arguments that run a command as nobody, or a reason to skip."""
    if os.geteuid() != 0:
        return None, "not root: cannot switch to the unprivileged user nobody"
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None, "setpriv is not installed"
    prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = subprocess.run(
        [*prefix, sys.executable, "-c", "import pixgmm.cli, numba, tifffile"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": _pythonpath()},
        cwd="/",
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"nobody cannot run {sys.executable} with pixgmm ({reason})"
    return prefix, None


def _pythonpath():
    """pixgmm's source folder and this interpreter's site-packages, for another user."""
    import site

    return os.pathsep.join([str(SRC), *site.getsitepackages()])


def test_unreadable_folder_fails_alone_for_an_unprivileged_user():
    prefix, why = _nobody_prefix()
    if prefix is None:
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="pixgmm-nobody-"))
    try:
        root.chmod(0o777)
        for name in ("good", "locked", "out", "readonly"):
            (root / name).mkdir()
        rng = np.random.default_rng(0)
        picture = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        imageio.imwrite(root / "good" / "a.png", picture)
        imageio.imwrite(root / "locked" / "b.png", picture)
        (root / "locked").chmod(0o000)
        (root / "out").chmod(0o777)
        (root / "readonly").chmod(0o755)  # owned by root: nobody cannot write there
        # the numba on-disk cache beside the package may not be writable for nobody:
        # compile in memory instead (PIXGMM_NUMBA_CACHE=0)
        env = {
            **os.environ,
            "PYTHONPATH": _pythonpath(),
            "PIXGMM_NUMBA_CACHE": "0",
            "HOME": str(root),
        }
        proc = run_cli(
            "skin",
            "good",
            "locked",
            "locked/b.png",
            "--save",
            "mask",
            "-o",
            "out",
            "--json",
            cwd=root,
            env=env,
            prefix=prefix,
        )
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        results = {r["input"]: r for r in json.loads(proc.stdout)["results"]}
        assert results["good/a.png"]["status"] == "ok"
        assert results["locked"]["error"] == "cannot read folder: Permission denied"
        assert results["locked/b.png"]["error"] == "cannot read: Permission denied"
        assert (root / "out" / "a.mask.png").is_file()

        # an output folder nobody cannot write to: the OS's reason and the output's name
        proc = run_cli(
            "skin", "good", "--save", "mask", "-o", "readonly", cwd=root, env=env, prefix=prefix
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert "cannot write readonly/a.mask.png: Permission denied" in proc.stderr
        assert "pixgmm-tmp" not in proc.stderr
    finally:
        for p in (root / "locked",):
            if p.exists():
                p.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


# -- quoted ** patterns and symbolic-link loops (item 13) ------------------------------


def test_double_star_pattern_visits_each_file_once_across_symlink_loops(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/a.png", "d/sub/b.png"):
        imageio.imwrite(tmp_path / name, np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "d" / "self").symlink_to(".")  # d/self -> d
    (tmp_path / "d" / "sub" / "up").symlink_to("..")  # d/sub/up -> d: a second loop
    (tmp_path / "d" / "sub" / "b-again.png").symlink_to("b.png")
    code = (
        "import json, sys; from pixgmm.cli.inputs import expand_inputs; "
        "print(json.dumps([str(p) for _, p, _ in expand_inputs(sys.argv[1:])]))"
    )
    proc = subprocess.run(  # a loop followed would not finish: a subprocess with a timeout
        [sys.executable, "-c", code, "d/**/*.png", "d/**"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["d/a.png", "d/sub/b.png"] * 2


def test_patterns_and_folders_skip_temporary_and_output_files(tmp_path):
    imageio.imwrite(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    imageio.imwrite(tmp_path / "a.mask.png", np.zeros((4, 4), np.uint8))
    stale = tmp_path / ".a.overlay.png.pixgmm-tmp-8337-0a1b2c.png"  # left by a killed writer
    imageio.imwrite(stale, np.zeros((4, 4), np.uint8))
    imageio.imwrite(tmp_path / ".hidden.png", np.zeros((4, 4), np.uint8))
    for arg in (str(tmp_path), str(tmp_path / "*.png"), str(tmp_path / "**" / "*.png")):
        assert [p.name for _, p, _ in expand_inputs([arg])] == ["a.png"], arg
    from pixgmm.io.atomic import temp_name  # the name the writers give their temporary files

    assert temp_name(tmp_path / "a.overlay.png", 8337, "0a1b2c") == stale


# -- the pixel limit (item 14) ----------------------------------------------------------


def _png_bomb(path, size, depth):
    """A valid all-zero PNG of ``size`` x ``size`` RGB pixels, compressed row by row (small)."""

    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        return struct.pack(">I", len(body)) + kind + body + crc

    comp = zlib.compressobj(9)
    block = bytes(1 + size * 3 * depth // 8) * 500
    parts = [comp.compress(block) for _ in range(size // 500)] + [comp.flush()]
    header = struct.pack(">IIBBBBB", size, size, depth, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
    Path(path).write_bytes(data + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    d = tmp_path_factory.mktemp("bombs")
    _png_bomb(d / "deep.png", 14000, 16)  # 14000 x 14000 16-bit: 1.1 MB, 1.2 GB decoded
    _png_bomb(d / "wide.png", 11000, 8)  # 11000 x 11000 8-bit: Pillow's path
    tifffile.imwrite(d / "huge.tif", shape=(40000, 40000, 3), dtype=np.uint8)  # sparse
    return d


def test_decompression_bombs_are_refused_before_decoding(bombs):
    assert (bombs / "deep.png").stat().st_size < 2_000_000
    assert (bombs / "huge.tif").stat().st_blocks * 512 < 100_000  # sparse on disk
    proc = run_cli(
        "skin", "deep.png", "wide.png", "huge.tif", "-o", "out", "--json", cwd=bombs, timeout=120
    )
    assert proc.returncode == 1
    results = {r["input"]: r["error"] for r in json.loads(proc.stdout)["results"]}
    assert results["deep.png"].startswith(
        "the image is 14000 x 14000 pixels (196,000,000 pixels), over the limit of "
        "100,000,000 pixels"
    )
    assert "11000 x 11000 pixels (121,000,000 pixels)" in results["wide.png"]
    assert "40000 x 40000 pixels (1,600,000,000 pixels)" in results["huge.tif"]
    for error in results.values():
        assert "--max-pixels" in error and "PIXGMM_MAX_PIXELS" in error and "--chunks" in error
    assert "process it in blocks with --chunks" in results["huge.tif"]
    assert not (bombs / "out").exists() or not list((bombs / "out").iterdir())


@pytest.mark.parametrize("command", ["skin", "density", "classify", "fit", "evaluate"])
def test_a_refusal_advises_only_options_the_command_has(bombs, command, tmp_path):
    """Every command's pixel-limit refusal (and its --help) names options it has, only."""
    import re

    (tmp_path / "masks").mkdir()
    for name in ("wide", "huge"):
        imageio.imwrite(tmp_path / "masks" / f"{name}.png", np.zeros((2, 2), np.uint8))
    out = str(tmp_path / "out")
    extra = {
        "skin": ["-o", out],
        "density": ["-m", "jones-rehg-skin", "-o", out],
        "classify": ["-m", "a=jones-rehg-skin", "-m", "b=jones-rehg-nonskin", "-o", out],
        "fit": ["-k", "2", "-o", str(tmp_path / "m.json")],
        "evaluate": ["--masks", str(tmp_path / "masks")],
    }[command]
    params = main.commands[command].params
    options = {o for p in params for o in (*p.opts, *getattr(p, "secondary_opts", ()))}
    assert "--max-pixels" in options
    for bomb in ("wide.png", "huge.tif"):
        proc = run_cli(command, bombs / bomb, *extra, cwd=tmp_path, timeout=120)
        assert proc.returncode in (1, 2), proc.stderr
        assert "over the limit of 100,000,000" in proc.stdout + proc.stderr
        advised = set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", proc.stdout + proc.stderr))
        assert "--max-pixels" in advised
        assert advised <= options, (command, bomb, advised - options)
    cmd = main.commands[command]
    texts = [cmd.help or "", cmd.epilog or "", *(getattr(p, "help", "") or "" for p in cmd.params)]
    lines = [line for t in texts for line in t.splitlines() if "pixgmm " not in line]  # examples
    helped = set(re.findall(r"(--[a-z][a-z0-9-]*[a-z0-9])", "\n".join(lines)))
    assert helped <= options | {"--help"}, (command, helped - options)


def test_lazy_reader_refuses_a_bomb_read_into_memory(bombs):
    pytest.importorskip("dask")
    from pixgmm.io import open_image_lazy

    with pytest.raises(ValueError, match=r"11000 x 11000 x 3 \(121,000,000 pixels\)"):
        open_image_lazy(bombs / "wide.png")
    lazy = open_image_lazy(bombs / "huge.tif", chunks=4096)  # TIFF: lazy, not limited
    assert lazy.shape == (40000, 40000, 3)


def test_the_pixel_limit_is_one_setting_for_every_reader(scene, monkeypatch):
    tmp, image, _ = scene
    tifffile.imwrite(
        tmp / "two.tif", np.stack([image, image]), photometric="rgb"
    )  # two pages: 9600 pixels
    shutil.copy(tmp / "u16/scene.tif", tmp / "deep.tif")
    args = ["skin", "u8/scene.png", "two.tif", "deep.tif", "--save", "mask", "--json"]
    result = invoke(*args, "--max-pixels", "4000", "-o", "a", cwd=tmp)
    assert result.exit_code == 1
    errors = [r["error"] for r in json.loads(result.stdout)["results"]]
    assert "80 x 60 pixels (4,800 pixels), over the limit of 4,000" in errors[0]
    assert "80 x 60 pixels x 2 pages (9,600 pixels)" in errors[1]
    assert "(4,800 pixels)" in errors[2]
    result = invoke(*args, "-o", "b", cwd=tmp, env={"PIXGMM_MAX_PIXELS": "5000"})
    assert [r["status"] for r in json.loads(result.stdout)["results"]] == ["ok", "failed", "ok"]
    result = invoke(
        *args, "--max-pixels", "0", "-o", "c", cwd=tmp, env={"PIXGMM_MAX_PIXELS": "5000"}
    )
    assert result.exit_code == 0, result.output
    result = invoke(*args, "-o", "d", cwd=tmp, env={"PIXGMM_MAX_PIXELS": "lots"})
    assert result.exit_code == 2 and "PIXGMM_MAX_PIXELS" in result.output
    # fit and evaluate read images through the same limit
    result = invoke("evaluate", "u8", "--masks", "masks", "--max-pixels", "4000", cwd=tmp)
    assert result.exit_code == 1 and "over the limit of 4,000" in result.output


def test_video_frames_are_held_to_the_pixel_limit(tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    frames = np.zeros((3, 48, 64, 3), np.uint8)
    imageio.imwrite(tmp_path / "clip.mp4", frames, plugin="FFMPEG", fps=10, macro_block_size=1)
    result = invoke("skin", "clip.mp4", "--max-pixels", "1000", "-o", "out", cwd=tmp_path)
    assert result.exit_code == 1
    assert "64 x 48 pixels (3,072 pixels), over the limit of 1,000" in result.output
    assert not (tmp_path / "out" / "clip.overlay.mp4").exists()


# -- --chunks on multi-page TIFFs (item 14) ----------------------------------------------


def test_chunks_process_every_page_of_a_multi_page_tiff(scene):
    zarr = pytest.importorskip("zarr")
    pytest.importorskip("dask")
    tmp, image, _ = scene
    pages = np.stack([image, image[::-1], 255 - image])
    tifffile.imwrite(
        tmp / "stack.tif", pages, tile=(32, 32), photometric="rgb"
    )  # one series (3, 60, 80, 3)
    with tifffile.TiffWriter(tmp / "mixed.tif") as tif:  # pages of two sizes: two series
        tif.write(image, photometric="rgb")
        tif.write(image[:40, :50], photometric="rgb")
    planar = np.moveaxis(pages[:2], -1, 1).astype(np.float32) / 255  # (2, 3, H, W), [0, 1]
    tifffile.imwrite(tmp / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    result = invoke(
        "skin",
        "stack.tif",
        "mixed.tif",
        "planar.tif",
        "--chunks",
        "32",
        "--save",
        "probability",
        "-o",
        "z",
        "--json",
        cwd=tmp,
    )
    assert result.exit_code == 0, result.output
    pages_of = {Path(r["input"]).name: r.get("pages") for r in json.loads(result.stdout)["results"]}
    assert pages_of == {"stack.tif": 3, "mixed.tif": 2, "planar.tif": 2}
    det = pixgmm.SkinDetector()
    expected = {
        "stack": [det.probability(p) for p in pages],
        "mixed": [det.probability(image), det.probability(image[:40, :50])],
        "planar": [det.probability(pages[0]), det.probability(pages[1])],
    }
    for stem, wanted in expected.items():
        for i, want in enumerate(wanted, start=1):
            got = zarr.open_array(tmp / f"z/{stem}.page{i}.probability.zarr", mode="r")[:]
            np.testing.assert_allclose(got, want, atol=1e-4, err_msg=f"{stem} page {i}")
