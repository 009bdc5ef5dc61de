"""Compressed TIFF and 16-bit PNG through the ``pixgmm`` command line, run as a program.

The files are written by real encoders (tests/codec_files.py: tifffile with
imagecodecs, libpng, Pillow, ffmpeg); every command runs as a subprocess and its
outputs are compared with the Python API on the pixels the files hold. A
machine without imagecodecs is simulated in a subprocess that blocks the module
(``sys.modules["imagecodecs"] = None`` makes every ``import imagecodecs`` fail,
tifffile's included, which then falls back on its pure-Python codecs).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import pixgmm

pytest.importorskip("click")
tifffile = pytest.importorskip("tifffile")
pytest.importorskip("imagecodecs")

from codec_files import (  # noqa: E402
    png_is_interlaced,
    sample_rgb16,
    write_png,
    write_png_bomb,
    write_png_interlaced,
    write_tiffs,
)

#: A model wide enough to give finite log-densities to 8-bit and raw 16-bit pixels alike.
RGB_MODEL = pixgmm.Mixture(
    [0.6, 0.4],
    [[120, 80, 60], [30000, 20000, 40000]],
    [[900, 700, 800], [4e8, 3e8, 5e8]],
    "diag",
)
GREY_MODEL = pixgmm.Mixture([1.0], [[30000]], [[4e8]], "diag")

#: Run in the subprocess before the CLI: imagecodecs cannot be imported, and tifffile
#: is checked to have fallen back on its own codecs (so the block is real).
_BLOCK_IMAGECODECS = """\
import sys
sys.modules["imagecodecs"] = None
import tifffile.tifffile
assert tifffile.tifffile.imagecodecs.__name__.endswith("_imagecodecs"), "imagecodecs not blocked"
from pixgmm.cli.main import main
main(prog_name="pixgmm")
"""


def run_cli(*args, cwd, without_imagecodecs=False, preexec_fn=None):
    """``pixgmm ARGS`` as a subprocess (optionally on a simulated machine without imagecodecs)."""
    head = ["-c", _BLOCK_IMAGECODECS] if without_imagecodecs else ["-m", "pixgmm.cli"]
    return subprocess.run(
        [sys.executable, *head, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=preexec_fn,
    )


def _results(proc):
    return {r["input"]: r for r in json.loads(proc.stdout)["results"]}


@pytest.fixture(scope="module")
def tiffs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiffs")
    files = write_tiffs(folder)
    for path, original, lossless in files.values():
        decoded = tifffile.imread(path)
        assert decoded.shape == original.shape and decoded.dtype == original.dtype
        if lossless:
            np.testing.assert_array_equal(decoded, original)
        else:  # JPEG: close to what was written, not equal
            assert np.abs(decoded.astype(int) - original).mean() < 8
    return folder, files


@pytest.mark.parametrize("lazy", [False, True], ids=["in-memory", "chunks"])
def test_compressed_tiffs_match_the_api(tiffs, tmp_path, lazy):
    """LZW, Deflate, JPEG and Zstandard, tiled and stripped, uint8 and uint16 RGB."""
    folder, files = tiffs
    RGB_MODEL.save(tmp_path / "model.json")
    args = ["density", *sorted(files), "-m", tmp_path / "model.json", "--log", "--scale", "none"]
    args += ["--chunks", "24"] if lazy else ["--format", "npy"]
    proc = run_cli(*args, "-o", tmp_path / "out", "--json", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    results = _results(proc)
    assert sorted(results) == sorted(files) and len(files) == 14
    for name, (path, _, _) in files.items():
        assert results[name]["status"] == "ok", results[name]
        pixels = tifffile.imread(path)  # tifffile's own decode, JPEG losses included
        expected = pixgmm.log_density(pixels, RGB_MODEL).astype(np.float32)
        stem = name.removesuffix(".tif")
        if lazy:
            import zarr

            got = zarr.open_array(tmp_path / "out" / f"{stem}.logdensity.zarr", mode="r")[...]
        else:
            got = np.load(tmp_path / "out" / f"{stem}.logdensity.npy")
        assert np.isfinite(expected).all()
        np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def pngs16(tmp_path_factory):
    """16-bit PNGs, plain and interlaced, RGB and greyscale, and what they hold."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("png16")
    rgb = sample_rgb16()
    grey = rgb[..., 1].copy()
    write_png(folder / "rgb.png", rgb)
    write_png_interlaced(folder / "rgb-adam7.png", rgb)
    Image.fromarray(grey).save(folder / "grey-pillow.png")  # Pillow writes 16-bit greyscale
    write_png_interlaced(folder / "grey-adam7.png", grey)
    assert png_is_interlaced(folder / "rgb-adam7.png")
    assert png_is_interlaced(folder / "grey-adam7.png")
    assert not png_is_interlaced(folder / "rgb.png")
    return (
        folder,
        {"rgb.png": rgb, "rgb-adam7.png": rgb},
        {
            "grey-pillow.png": grey,
            "grey-adam7.png": grey,
        },
    )


def test_png16_plain_and_interlaced_keep_16_bits(pngs16, tmp_path):
    folder, colour, grey = pngs16
    for model, images, label in ((RGB_MODEL, colour, "rgb"), (GREY_MODEL, grey, "grey")):
        model.save(tmp_path / f"{label}.json")
        proc = run_cli(
            "density",
            *sorted(images),
            "-m",
            tmp_path / f"{label}.json",
            "--log",
            "--scale",
            "none",
            "--format",
            "npy",
            "-o",
            tmp_path / "out",
            "--json",
            cwd=folder,
        )
        assert proc.returncode == 0, proc.stderr
        assert "PNG warning" not in proc.stderr  # libpng's interlace note is not shown
        for name, original in images.items():
            # the pixels as encoded, not as some decoder gave them back: all 16 bits kept
            axis = None if original.ndim == 2 else -1
            expected = pixgmm.log_density(original, model, channel_axis=axis).astype(np.float32)
            got = np.load(tmp_path / "out" / f"{name.removesuffix('.png')}.logdensity.npy")
            np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=name)


def _address_space_limit():
    """In the child: at most 4 GiB of address space, so a decoded bomb could not be allocated."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS is Linux's")
def test_png16_bomb_is_refused_from_its_header(tmp_path):
    write_png_bomb(tmp_path / "bomb.png", 100_000, 100_000)  # 60 GB of 16-bit RGB declared
    assert (tmp_path / "bomb.png").stat().st_size < 200
    proc = run_cli(
        "skin", "bomb.png", "-o", "out", "--json", cwd=tmp_path, preexec_fn=_address_space_limit
    )
    assert proc.returncode == 1
    error = _results(proc)["bomb.png"]["error"]
    assert error.startswith(
        "the image is 100000 x 100000 pixels (10,000,000,000 pixels), over the limit of "
        "100,000,000 pixels read into memory at once"
    ), error
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # the same file with the limit off reaches the decoder, which cannot allocate it here:
    # so the refusal above came before decoding
    proc = run_cli(
        "skin",
        "bomb.png",
        "--max-pixels",
        "0",
        "-o",
        "out",
        "--json",
        cwd=tmp_path,
        preexec_fn=_address_space_limit,
    )
    assert proc.returncode == 1
    assert _results(proc)["bomb.png"]["error"] == "not enough memory to decode the image"


def test_without_imagecodecs_the_error_names_the_package(tiffs, pngs16, tmp_path):
    folder, files = tiffs
    (tmp_path / "in").mkdir()
    names = ["lzw-tiled-rgb8.tif", "jpeg-stripped-rgb8.tif", "zstd-tiled-rgb16.tif"]
    names += ["adobe_deflate-tiled-rgb16.tif"]  # tifffile decodes Deflate with zlib
    for name in names:
        (tmp_path / "in" / name).write_bytes((folder / name).read_bytes())
    (tmp_path / "in" / "rgb16.png").write_bytes((pngs16[0] / "rgb.png").read_bytes())
    for extra in ([], ["--chunks", "32"]):
        proc = run_cli(
            "skin",
            "in",
            "--save",
            "probability",
            "-o",
            "out",
            "--json",
            *extra,
            cwd=tmp_path,
            without_imagecodecs=True,
        )
        assert proc.returncode == 1, proc.stderr
        results = {k.split("/")[-1]: v for k, v in _results(proc).items()}
        assert results["adobe_deflate-tiled-rgb16.tif"]["status"] == "ok", extra
        for name, what in [
            ("lzw-tiled-rgb8.tif", "LZW compression"),
            ("jpeg-stripped-rgb8.tif", "JPEG compression"),
            ("zstd-tiled-rgb16.tif", "ZSTD compression"),
            ("rgb16.png", "16-bit PNG"),
        ]:
            error = results[name]["error"]
            assert what in error, (extra, error)
            assert "imagecodecs" in error and "pip install 'pixgmm[io]'" in error, error
            assert "ImportError" not in error, error  # the reason, not an exception's type
    # the Deflate file's map is the API's on tifffile's decode of it
    pixels = tifffile.imread(folder / "adobe_deflate-tiled-rgb16.tif")
    expected = pixgmm.SkinDetector().probability(pixels.astype(np.float64) * (255 / 65535))
    got = tifffile.imread(tmp_path / "out" / "adobe_deflate-tiled-rgb16.probability.tiff")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
