"""Decoding that needs ``imagecodecs``: 16-bit PNG, and TIFF compressions tifffile needs it for.

Pillow reads a 16-bit colour PNG as 8 bits, so pixgmm's readers decode 16-bit
PNG with ``imagecodecs.png_decode`` (libpng; interlaced files included), after
the image size has been read from the file's header and checked by the caller.
tifffile decodes LZW, JPEG, Zstandard (before Python 3.14), PNG, WebP and other
compressed TIFF only through imagecodecs; :func:`check_tiff_codecs` asks tifffile,
from the header, whether it can decode a file, so that a missing imagecodecs is
reported with the package to install before any pixel is read.

imagecodecs and tifffile are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from typing import NamedTuple

#: How to get imagecodecs, named by every error about its absence.
INSTALL = "install it with pip install 'pixgmm[io]' (or pip install imagecodecs)"

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class PNGHeader(NamedTuple):
    """The fields of a PNG file's IHDR chunk that the readers use."""

    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlace: int


def _binary(source):
    """``source`` opened for reading bytes: a path is opened (and closed after), a binary
    file object (a remote file) is read from its start and left open."""
    if hasattr(source, "read"):
        source.seek(0)
        return contextlib.nullcontext(source)
    return open(source, "rb")  # closed by the caller


def png_header(path):
    """The :class:`PNGHeader` of the PNG file at ``path``; None if it is not a PNG file.

    ``path`` may be a binary file object. Reads the first 29 bytes only
    (signature and IHDR chunk), so the size of a file is known before anything
    is decoded.
    """
    with _binary(path) as fh:
        head = fh.read(29)
    if len(head) < 29 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return PNGHeader(width, height, depth, ctype, interlace)


class _DropInterlaceWarning(logging.Filter):
    """Drops libpng's note that imagecodecs did not ask for interlace handling.

    libpng 1.6 turns the handling on itself when ``png_read_image`` meets an
    interlaced (Adam7) file and decodes it correctly; the note is noise to a user.
    """

    def filter(self, record):
        return "Interlace handling should be turned on" not in record.getMessage()


@contextlib.contextmanager
def _quiet_interlace_warning():
    logger = logging.getLogger("imagecodecs")
    quiet = _DropInterlaceWarning()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def read_png(path):
    """Decode the PNG at ``path`` with imagecodecs (libpng), into a native-endian array.

    Returns (H, W) for greyscale and (H, W, C) otherwise (C = 2, 3 or 4, alpha
    last); a 16-bit file gives uint16. Interlaced files are decoded too. The
    caller checks the size from :func:`png_header` first: this allocates the
    whole image.

    Raises
    ------
    ImportError
        imagecodecs is not installed; the message says how to install it.
    """
    try:
        import imagecodecs
    except ImportError:
        raise ImportError(f"reading a 16-bit PNG needs imagecodecs; {INSTALL}") from None
    with _binary(path) as fh:
        data = fh.read()
    with _quiet_interlace_warning():
        image = imagecodecs.png_decode(data)
    return apply_orientation(image, exif_orientation(path))


#: EXIF orientation -> the transposition Pillow's ``ImageOps.exif_transpose`` applies, as
#: array operations on (H, W[, C]): ``"T"`` swaps rows and columns, ``"V"``/``"H"`` flip them.
_ORIENT = {2: "H", 3: "VH", 4: "V", 5: "T", 6: "TH", 7: "TVH", 8: "TV"}


def exif_orientation(path):
    """The EXIF orientation tag (1..8) of the image at ``path`` as Pillow reads it; 1 if none."""
    from PIL import Image

    if hasattr(path, "seek"):
        path.seek(0)
    with contextlib.suppress(Exception), Image.open(path) as im:
        value = im.getexif().get(0x0112, 1)
        return value if value in _ORIENT else 1
    return 1


def apply_orientation(image, orientation):
    """``image`` (H, W[, C]) as viewers show it: the EXIF ``orientation`` undone, as Pillow's
    ``ImageOps.exif_transpose`` does (a view, no copy)."""
    for op in _ORIENT.get(orientation, ""):
        if op == "T":
            image = image.swapaxes(0, 1)
        elif op == "V":
            image = image[::-1]
        else:
            image = image[:, ::-1]
    return image


def check_tiff_codecs(series):
    """Raise :class:`ImportError` if tifffile cannot decode the pages of ``series`` here.

    ``series`` are tifffile ``TiffPageSeries`` of one open file; each level's
    first page (which holds the compression and predictor of the level) is
    checked from the header alone, by asking tifffile for the decoder it would
    use. Without imagecodecs, tifffile falls back on Python's own modules
    (zlib for Deflate, lzma) and refuses the rest, such as LZW, JPEG and
    Zstandard before Python 3.14. A compression tifffile does not know at all
    is left to tifffile's own error when the pixels are read.
    """
    from tifffile import COMPRESSION, PREDICTOR, TIFF

    seen = set()
    for s in series:
        for level in getattr(s, "levels", None) or [s]:
            page = level.keyframe
            if page is None:
                continue
            key = (int(page.compression), int(page.predictor))
            if key in seen:
                continue
            seen.add(key)
            if _wants_imagecodecs(TIFF.DECOMPRESSORS, key[0]):
                what = f"{_name(COMPRESSION, key[0])} compression"
            elif _wants_imagecodecs(TIFF.PREDICTORS, key[1]):
                what = f"the {_name(PREDICTOR, key[1])} predictor"
            else:
                continue
            raise ImportError(
                f"the TIFF uses {what}, which tifffile decodes only with the imagecodecs "
                f"package; {INSTALL}"
            )


def _wants_imagecodecs(table, value):
    """True when tifffile's ``table`` (decompressors or predictors) lacks ``value`` for want of
    imagecodecs."""
    try:
        codec = table[value]
    except KeyError as exc:  # "... requires the 'imagecodecs' package", or an unknown value
        return "imagecodecs" in str(exc)
    if getattr(codec, "__module__", "").endswith("_imagecodecs"):
        # tifffile's own fallback (imagecodecs missing): a wrapper around a standard
        # module that raises ImportError when called if Python was built without it
        try:
            codec(b"")
        except ImportError:
            return True
        except Exception:  # empty input is not valid data: the codec itself is there
            pass
    return False


def _name(enum, value):
    try:
        return enum(value).name
    except ValueError:
        return str(value)
