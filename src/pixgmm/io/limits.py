"""The pixel limit of images decoded into memory, checked from the header before decoding.

An image larger than :data:`DEFAULT_MAX_PIXELS` (all pages of a file together)
is refused before it is decoded, so a decompression bomb or a gigapixel scan
cannot exhaust memory. ``max_pixels=`` (the command line's ``--max-pixels``) or
the environment variable ``PIXGMM_MAX_PIXELS`` set another limit (0 or
``none``: no limit). Formats read lazily in blocks (TIFF, Zarr) are not subject
to it.
"""

from __future__ import annotations

import contextlib
import os

#: The largest image, in pixels (all pages of a file together), that pixgmm's readers
#: decode into memory: 100 megapixels (a 10000 x 10000 image).
DEFAULT_MAX_PIXELS = 100_000_000

#: Environment variable that sets the pixel limit (a number of pixels; 0 or ``none``: no limit).
MAX_PIXELS_ENV = "PIXGMM_MAX_PIXELS"

#: The way out that the library's own refusals advise (the command line names its options).
API_WAY_OUT = (
    "TIFF and Zarr images are read lazily in blocks (pixgmm.io.open_image_lazy), so convert "
    f"it to one of them, or raise the limit with max_pixels= or {MAX_PIXELS_ENV}"
)


def pixel_limit(max_pixels=None):
    """The pixel limit in force: ``max_pixels`` if given, else ``PIXGMM_MAX_PIXELS``, else
    :data:`DEFAULT_MAX_PIXELS`; None means no limit (``0`` or ``"none"``).

    Examples
    --------
    >>> from pixgmm.io.limits import pixel_limit
    >>> pixel_limit(0) is None, pixel_limit(5_000)
    (True, 5000)
    """
    import numpy as np

    if max_pixels is None:
        text = os.environ.get(MAX_PIXELS_ENV, "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        if text.lower() == "none":
            return None
        try:
            max_pixels = int(float(text))
        except ValueError:
            raise ValueError(
                f"environment variable {MAX_PIXELS_ENV}={text!r} must be a number of pixels "
                f"(e.g. 400000000), or 0 or none for no limit"
            ) from None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)):
        raise TypeError(f"max_pixels must be an int, got {type(max_pixels).__name__}")
    if max_pixels < 0:
        raise ValueError(f"max_pixels must be >= 0 (0: no limit), got {max_pixels}")
    return None if max_pixels == 0 else int(max_pixels)


def check_pixel_limit(size, n_pixels, max_pixels=None, way_out=None):
    """Raise :class:`~pixgmm.io.PixelLimitError` if an image of ``n_pixels`` is over the limit.

    Called before decoding. ``size`` describes the image (``"14000 x 14000
    pixels"``); ``way_out`` says how to process it anyway (default: the API's ways).
    """
    from .errors import PixelLimitError

    limit = pixel_limit(max_pixels)
    if limit is None or n_pixels <= limit:
        return
    raise PixelLimitError(size, int(n_pixels), limit, API_WAY_OUT if way_out is None else way_out)


def check_size(width, height, pages, max_pixels=None, total=None):
    """:func:`check_pixel_limit` for an image of ``pages`` pages of ``width`` x ``height``.

    ``total`` is the pixel count of all pages when they differ in size (else
    width x height x pages).
    """
    total = int(width) * int(height) * int(pages) if total is None else int(total)
    text = f"{width} x {height} pixels" + (f" x {pages} pages" if pages > 1 else "")
    check_pixel_limit(text, total, max_pixels)


@contextlib.contextmanager
def pillow_limit_off():
    """Pillow's decompression-bomb check off for a block (pixgmm's own limit applies instead)."""
    try:
        from PIL import Image
    except ImportError:
        yield
        return
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved
