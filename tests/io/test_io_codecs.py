"""``pixgmm.io.open_image_lazy`` on compressed TIFF and 16-bit PNG written by real encoders.

Each lazy array is computed block by block (blocks that straddle the file's
tiles and strips) and compared with tifffile's own decode of the file, and with
the pixels written where the compression is lossless. A machine without
imagecodecs is simulated in a subprocess (``sys.modules["imagecodecs"] = None``).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("dask")
tifffile = pytest.importorskip("tifffile")
imagecodecs = pytest.importorskip("imagecodecs")

from codec_files import (  # noqa: E402
    TIFF_CASES,
    png_is_interlaced,
    sample_rgb8,
    sample_rgb16,
    tiff_name,
    write_png,
    write_png_bomb,
    write_png_interlaced,
    write_tiffs,
)
from pixgmm.io import open_image_lazy  # noqa: E402


@pytest.fixture(scope="module")
def tiffs(tmp_path_factory):
    return write_tiffs(tmp_path_factory.mktemp("tiffs"))


@pytest.mark.parametrize(("compression", "layout", "kind"), TIFF_CASES)
def test_compressed_tiff_blocks_equal_tifffiles_decode(tiffs, compression, layout, kind):
    path, original, lossless = tiffs[tiff_name(compression, layout, kind)]
    with tifffile.TiffFile(path) as tif:  # the file holds what the name says
        page = tif.pages[0]
        assert page.compression.name == compression.upper()
        assert page.is_tiled == (layout == "tiled")
    lazy = open_image_lazy(path, chunks=24)
    assert lazy.chunks[0] == (24, 24, 22) and lazy.chunks[2] == (3,)
    assert lazy.dtype == original.dtype
    got = lazy.compute()
    np.testing.assert_array_equal(got, tifffile.imread(path))
    if lossless:
        np.testing.assert_array_equal(got, original)


def test_jpeg_pyramid_level(tmp_path):
    """A whole-slide-like file: JPEG tiles with a half-size level in a SubIFD."""
    image = sample_rgb8()
    path = tmp_path / "slide.tif"
    with tifffile.TiffWriter(path) as tif:
        opts = {"photometric": "rgb", "compression": "jpeg", "tile": (32, 32)}
        tif.write(image, subifds=1, **opts)
        tif.write(image[::2, ::2], subfiletype=1, **opts)
    with tifffile.TiffFile(path) as tif:
        full = tif.series[0].levels[0].asarray()
        half = tif.series[0].levels[1].asarray()
    np.testing.assert_array_equal(open_image_lazy(path, chunks=40).compute(), full)
    np.testing.assert_array_equal(open_image_lazy(path, chunks=16, component="1").compute(), half)


def test_png16_plain_and_interlaced_keep_16_bits(tmp_path):
    rgb = sample_rgb16()
    write_png(tmp_path / "rgb.png", rgb)
    write_png_interlaced(tmp_path / "adam7.png", rgb)
    assert png_is_interlaced(tmp_path / "adam7.png")
    for name in ("rgb.png", "adam7.png"):
        lazy = open_image_lazy(tmp_path / name, chunks=32)
        assert lazy.dtype == np.uint16 and lazy.chunks[2] == (3,)
        np.testing.assert_array_equal(lazy.compute(), rgb)


class _DecoderReached(Exception):
    pass


def test_png16_bomb_is_refused_before_decoding(tmp_path, monkeypatch):
    write_png_bomb(tmp_path / "bomb.png", 100_000, 100_000)

    def decoder(*args, **kwargs):
        raise _DecoderReached

    monkeypatch.setattr(imagecodecs, "png_decode", decoder)
    with pytest.raises(ValueError, match=r"100000 x 100000 \(10,000,000,000 pixels\), over"):
        open_image_lazy(tmp_path / "bomb.png")  # refused, the decoder never asked
    with pytest.raises(_DecoderReached):  # under a raised limit it is asked
        open_image_lazy(tmp_path / "bomb.png", max_pixels=10**11)


def test_without_imagecodecs_a_clear_import_error(tiffs, tmp_path):
    """In a subprocess that cannot import imagecodecs: refused when opened, naming the package."""
    write_png(tmp_path / "rgb16.png", sample_rgb16())
    deflate, _, _ = tiffs["adobe_deflate-tiled-rgb16.tif"]
    cases = {
        tiffs[tiff_name(c, layout, "rgb8")][0]: f"{c.upper()} compression"
        for c in ("lzw", "jpeg", "zstd")
        for layout in ("tiled", "stripped")
    }
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["imagecodecs"] = None
        import numpy as np, tifffile
        assert tifffile.tifffile.imagecodecs.__name__.endswith("_imagecodecs")
        from pixgmm.io import open_image_lazy
        for path, what in {[(str(p), w) for p, w in cases.items()]!r} + [
            ({str(tmp_path / "rgb16.png")!r}, "16-bit PNG")
        ]:
            try:
                open_image_lazy(path, chunks=24)
            except ImportError as exc:
                message = str(exc)
                assert what in message and "pip install 'pixgmm[io]'" in message, message
                assert "imagecodecs" in message, message
                print("refused", path)
            else:
                raise SystemExit(f"{{path}} was opened without imagecodecs")
        # Deflate needs only zlib: read, and equal to the file's pixels
        got = open_image_lazy({str(deflate)!r}, chunks=24).compute()
        np.save({str(tmp_path / "deflate.npy")!r}, got)
        print("read deflate")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("refused") == len(cases) + 1
    np.testing.assert_array_equal(np.load(tmp_path / "deflate.npy"), tifffile.imread(deflate))


# -- EXIF orientation: outputs line up with the picture as viewers show it --------------------


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_is_undone_as_pillow_does(orientation):
    from PIL import Image, ImageOps

    from pixgmm.io._codecs import apply_orientation

    rgb = np.random.default_rng(orientation).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    im.getexif()[0x0112] = orientation
    expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(rgb, orientation), expected)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_16_bit_png_and_a_jpeg_keep_their_exif_orientation(tmp_path, orientation):
    """A 16-bit PNG (decoded by imagecodecs, which ignores EXIF) and an 8-bit file read lazily
    come out as viewers show them, like the command line's in-memory reader."""
    from PIL import Image, ImageOps

    from pixgmm.io import read_pages

    grey = np.random.default_rng(1).integers(0, 65536, (6, 9), dtype=np.uint16)
    exif = Image.Exif()
    exif[0x0112] = orientation
    png = tmp_path / "grey16.png"
    Image.fromarray(grey).save(png, exif=exif)  # Pillow writes 16-bit greyscale with eXIf
    with Image.open(png) as im:
        assert im.getexif()[0x0112] == orientation
        expected = np.asarray(ImageOps.exif_transpose(im)).astype(np.uint16)
    assert expected.shape != grey.shape or orientation == 3
    np.testing.assert_array_equal(read_pages(png)[0], expected)
    np.testing.assert_array_equal(open_image_lazy(png).compute(), expected)

    rgb = np.random.default_rng(2).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    bmp = tmp_path / "photo.webp"
    Image.fromarray(rgb).save(bmp, exif=exif, lossless=True)
    np.testing.assert_array_equal(open_image_lazy(bmp).compute(), read_pages(bmp)[0])
    assert read_pages(bmp)[0].shape[:2] == expected.shape
