"""Image files written by real encoders, for the tests of compressed TIFF and 16-bit PNG.

Compressed TIFF: tifffile with imagecodecs (LZW, Adobe Deflate, JPEG, Zstandard),
tiled and stripped. 16-bit PNG: imagecodecs (libpng) and Pillow for plain files,
and the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships for interlaced
(Adam7) ones, which neither libpng through imagecodecs nor Pillow writes.
"""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

#: The TIFF compressions the readers are tested on, as tifffile names them.
COMPRESSIONS = ("lzw", "adobe_deflate", "jpeg", "zstd")
#: The shape of the test images: several 32 x 32 tiles and 16-row strips, cut at the edges.
SHAPE = (70, 90)


def sample_rgb8(seed=0):
    """A uint8 RGB image: smooth gradients (which JPEG keeps close) plus noise."""
    rng = np.random.default_rng(seed)
    h, w = SHAPE
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([60 + 2 * y, 40 + 1.5 * x, 200 - x - y], axis=-1).astype(np.float64)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def sample_rgb16(seed=1):
    """A uint16 RGB image whose low bytes matter (a reader keeping 8 bits would be caught)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65536, (*SHAPE, 3), dtype=np.uint16)


#: Every TIFF case ``(compression, layout, kind)``; JPEG for uint8 only, the one
#: depth baseline JPEG holds.
TIFF_CASES = [
    (compression, layout, kind)
    for compression in COMPRESSIONS
    for layout in ("tiled", "stripped")
    for kind in ("rgb8", "rgb16")
    if not (compression == "jpeg" and kind == "rgb16")
]


def tiff_name(compression, layout, kind):
    return f"{compression}-{layout}-{kind}.tif"


def write_tiffs(folder):
    """Every case of :data:`TIFF_CASES` as a file in ``folder``.

    Returns ``{file name: (path, original pixels, lossless)}``.
    """
    import tifffile

    folder = Path(folder)
    images = {"rgb8": sample_rgb8(), "rgb16": sample_rgb16()}
    files = {}
    for compression, layout, kind in TIFF_CASES:
        path = folder / tiff_name(compression, layout, kind)
        where = {"tile": (32, 32)} if layout == "tiled" else {"rowsperstrip": 16}
        tifffile.imwrite(path, images[kind], photometric="rgb", compression=compression, **where)
        files[path.name] = (path, images[kind], compression != "jpeg")
    return files


def write_png(path, image):
    """A non-interlaced PNG written by libpng through ``imagecodecs.png_encode``."""
    import imagecodecs

    Path(path).write_bytes(imagecodecs.png_encode(image))


def write_png_interlaced(path, image):
    """An interlaced (Adam7) 16-bit PNG written by ffmpeg's PNG encoder.

    ffmpeg writes Adam7 when asked for interlaced coding (``-flags +ildct``).
    ``image`` is (H, W) grey or (H, W, 3) RGB, uint16.
    """
    import imageio_ffmpeg

    assert image.dtype == np.uint16
    fmt = "gray16be" if image.ndim == 2 else {3: "rgb48be", 4: "rgba64be"}[image.shape[2]]
    h, w = image.shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{w}x{h}", "-i", "-"]
    cmd += ["-flags", "+ildct", "-frames:v", "1", "-pix_fmt", fmt, str(path)]
    subprocess.run(cmd, input=image.astype(">u2").tobytes(), check=True, capture_output=True)


def png_is_interlaced(path):
    """Pillow's reading of the IHDR interlace flag of ``path``."""
    from PIL import Image

    with Image.open(path) as im:
        return im.info.get("interlace") == 1


def write_png_bomb(path, width, height):
    """A real 8 x 8 16-bit RGB PNG whose IHDR is changed to declare ``width`` x ``height``.

    The chunk's CRC is recomputed, so the header is valid; the image data is
    far too short for the declared size, which only a decoder would notice.
    """
    import imagecodecs

    data = bytearray(imagecodecs.png_encode(np.zeros((8, 8, 3), np.uint16)))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    Path(path).write_bytes(bytes(data))
