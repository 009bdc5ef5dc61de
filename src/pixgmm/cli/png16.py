"""A reader for 16-bit PNG files, which Pillow truncates to 8 bits.

Pillow decodes a 16-bit RGB or RGBA PNG as an 8-bit image, so the command line
reads those files here: the chunks are parsed in Python, the image data is
inflated by :mod:`zlib` and the five PNG row filters are undone by a small numba
kernel. Only non-interlaced files are supported (interlaced 16-bit files are
rare; they get a clear error). 8-bit files are left to Pillow.
"""

from __future__ import annotations

import struct
import zlib

import numba
import numpy as np

from .._engine.config import NUMBA_FLAGS

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: PNG colour type -> samples per pixel (palette images are never 16-bit).
_SAMPLES = {0: 1, 2: 3, 4: 2, 6: 4}


class PNGError(ValueError):
    """The file is not a PNG this reader can decode; the message says why."""


def png_header(path):
    """``(width, height, bit_depth, colour_type, interlace)`` from the IHDR chunk, or None.

    None when the file does not start with the PNG signature.
    """
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return width, height, depth, ctype, interlace


@numba.njit(**NUMBA_FLAGS)
def _unfilter(raw, height, stride, bpp, out):
    """Undo the PNG row filters of ``raw`` into ``out`` (height, stride) uint8.

    Returns -1 on success, else the index of the first row with an unknown filter type.
    """
    for y in range(height):
        row = y * (stride + 1)
        ftype = raw[row]
        if ftype > 4:
            return y
        for x in range(stride):
            v = np.int32(raw[row + 1 + x])
            a = np.int32(out[y, x - bpp]) if x >= bpp else np.int32(0)
            b = np.int32(out[y - 1, x]) if y > 0 else np.int32(0)
            c = np.int32(out[y - 1, x - bpp]) if (y > 0 and x >= bpp) else np.int32(0)
            if ftype == 1:
                v += a
            elif ftype == 2:
                v += b
            elif ftype == 3:
                v += (a + b) >> 1
            elif ftype == 4:
                p = a + b - c
                pa = abs(p - a)
                pb = abs(p - b)
                pc = abs(p - c)
                if pa <= pb and pa <= pc:
                    v += a
                elif pb <= pc:
                    v += b
                else:
                    v += c
            out[y, x] = v & 255
    return -1


def read_png16(path):
    """Decode a non-interlaced 16-bit PNG into a native-endian uint16 array.

    Returns (H, W) for greyscale and (H, W, C) otherwise (C = 2, 3 or 4, alpha last).
    Raises :class:`PNGError` naming what is wrong with a damaged or unsupported file.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.startswith(_SIGNATURE):
        raise PNGError("not a PNG file (bad signature)")
    pos = len(_SIGNATURE)
    header = None
    idat = []
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise PNGError(f"file is truncated (chunk {kind.decode('latin-1')!r} is cut short)")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13])
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise PNGError("file is truncated (no IEND chunk)")
    if header is None:
        raise PNGError("no IHDR chunk")
    width, height, depth, ctype, _, _, interlace = header
    if depth != 16 or ctype not in _SAMPLES:
        raise PNGError(f"expected a 16-bit PNG, got bit depth {depth}, colour type {ctype}")
    if interlace:
        raise PNGError("interlaced 16-bit PNG files are not supported; save it non-interlaced")
    samples = _SAMPLES[ctype]
    bpp = 2 * samples
    stride = width * bpp
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PNGError(f"image data is corrupt ({exc})") from None
    if len(raw) < height * (stride + 1):
        raise PNGError("image data is truncated")
    raw = np.frombuffer(raw, dtype=np.uint8, count=height * (stride + 1))
    out = np.empty((height, stride), dtype=np.uint8)
    bad = _unfilter(raw, height, stride, bpp, out)
    if bad >= 0:
        raise PNGError(f"row {bad} has an unknown filter type; the file is corrupt")
    image = out.view(">u2").astype(np.uint16).reshape(height, width, samples)
    return image[..., 0] if samples == 1 else image
