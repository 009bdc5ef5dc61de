"""The one rule that turns an image as read into the pixels a colour model sees.

Every command that reads images (``skin``, ``density``, ``classify``, ``fit``,
``evaluate``; in memory and with ``--chunks``) goes through :class:`PixelRule`
(by :func:`page_pixels`, which sets a GeoTIFF's nodata pixels aside first):
it drops an alpha channel, gives a greyscale page a channel axis for a
one-feature model, and brings the values to the 0..255 scale of 8-bit colour
models, the way scikit-image users expect (``skimage.util.img_as_ubyte``'s
reading of dtypes):

``--scale auto`` (the default)
    8-bit images are used as read. Integer images of more bits (16-bit PNG and
    TIFF) are scaled from their dtype's full range to 0..255. A float image whose
    values all lie in [0, 1] (NaN ignored) is multiplied by 255; a float image
    with values outside [0, 1] is taken to be on the 0..255 scale already and is
    used as read.
``--scale none``
    Values as read, whatever the dtype (0..65535 for 16-bit images): for models
    fitted to raw 16-bit or float values.
``--scale unit``
    Float images are on the 0..1 scale (multiplied by 255) even where a value
    lies outside [0, 1]; integer images as with ``auto``.

Each decision that changes or might surprise is returned as a short note, which
the command prints with the input's summary line and puts in the ``--json``
summary (``"scale"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The values of ``--scale`` (the ``scale`` of :class:`PixelRule`).
SCALES = ("auto", "none", "unit")


def _int_plan(dtype):
    """``(offset, factor, note)`` that maps an integer dtype wider than 8 bits to 0..255."""
    info = np.iinfo(dtype)
    factor = np.float32(255.0 / (info.max - info.min))
    note = f"{8 * dtype.itemsize}-bit pixels scaled from {info.min}..{info.max} to 0..255"
    return np.float32(info.min), factor, note


def decide(dtype, scale, value_range=None):
    """The rule for one page: ``(offset, factor, note)``, or ``(None, None, note)`` for as read.

    Parameters
    ----------
    dtype : numpy.dtype
        The page's dtype as read.
    scale : {"auto", "none", "unit"}
        The ``--scale`` option.
    value_range : callable, optional
        Returns ``(min, max)`` of the page's non-NaN values; called only for a float
        page under ``auto`` (so a lazy image is read for it only then).

    Returns
    -------
    offset, factor : numpy.float32 or None
        The pixels are ``(page - offset) * factor``; None: used as read.
    note : str or None
        What was done, for the summary; None when nothing worth saying was done
        (an 8-bit image).
    """
    dtype = np.dtype(dtype)
    if scale not in SCALES:
        raise ValueError(f"--scale {scale!r} is not one of {', '.join(SCALES)}")
    if dtype.kind in "ui" and dtype.itemsize == 1:
        return None, None, None
    if scale == "none":
        return None, None, f"{dtype.name} pixels used as read (--scale none)"
    if dtype.kind in "ui":
        return _int_plan(dtype)
    if dtype.kind != "f":
        return None, None, None  # bool, complex, ...: the evaluation rejects them by name
    if scale == "unit":
        return (
            np.float32(0),
            np.float32(255),
            "float pixels scaled from 0..1 to 0..255 (--scale unit)",
        )
    lo, hi = value_range()
    if lo is None or (lo >= 0.0 and hi <= 1.0):
        return np.float32(0), np.float32(255), "float pixels in [0, 1] scaled to 0..255"
    return (
        None,
        None,
        (
            f"float pixels used as read (values from {lo:.4g} to {hi:.4g}, not in [0, 1]: taken "
            "as 0..255; pass --scale unit if they are 0..1)"
        ),
    )


def _numpy_range(img):
    finite = img[~np.isnan(img)]
    if finite.size == 0:
        return None, None
    return float(finite.min()), float(finite.max())


def _dask_range(img):
    import dask.array as da

    lo, hi = da.compute(da.nanmin(img), da.nanmax(img))
    if np.isnan(lo):
        return None, None
    return float(lo), float(hi)


def _fit_channels(img, n_features, alpha=None):
    """Drop an alpha channel, give a greyscale page a channel axis; check the channel count.

    ``alpha``: whether the page's last channel is alpha, when the file says (a
    GeoTIFF's colour interpretation); None guesses it from the channel count, as
    for photos (RGBA, grey + alpha). A 4th band that is not alpha (near infrared)
    is never dropped: the model's channel count must then match.
    """
    guess = n_features in (1, 3) if alpha is None else alpha
    if img.ndim == 3 and img.shape[-1] == n_features + 1 and guess:
        img = img[..., :n_features]  # alpha
    if img.ndim == 2 and n_features == 1:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] != n_features:
        got = "a greyscale image" if img.ndim == 2 else f"an image of shape {tuple(img.shape)}"
        raise ValueError(
            f"got {got} but the model needs {n_features} channel(s) per pixel"
            + ("; convert it to RGB first" if img.ndim == 2 and n_features == 3 else "")
        )
    return img


@dataclass(frozen=True)
class PixelRule:
    """Turn a page as read (NumPy or Dask) into ``(pixels, note)`` for a model of ``n_features``.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.io.pixels import PixelRule
    >>> pixels, note = PixelRule(3)(np.full((2, 2, 3), 0.5, np.float32))
    >>> float(pixels[0, 0, 0]), note
    (127.5, 'float pixels in [0, 1] scaled to 0..255')
    """

    n_features: int = 3
    scale: str = "auto"

    def __call__(self, page, alpha=None):
        lazy = not isinstance(page, np.ndarray) and hasattr(page, "dask")
        img = page if lazy else np.asarray(page)
        img = _fit_channels(img, self.n_features, alpha)
        ranged = _dask_range if lazy else _numpy_range
        offset, factor, note = decide(img.dtype, self.scale, lambda: ranged(img))
        return _apply(img, offset, factor), note

    def fixed(self, dtype, value_range=None):
        """This rule with its decision taken once, for an image read window by window.

        ``value_range`` returns ``(min, max)`` of the whole image's non-NaN values
        (model channels only); it is called only for a float image under
        ``"auto"``. The result turns each window as read into ``(pixels, note)``
        exactly as :meth:`__call__` would turn the whole image.

        Examples
        --------
        >>> import numpy as np
        >>> from pixgmm.io.pixels import PixelRule
        >>> rule = PixelRule(3).fixed(np.dtype(np.uint16))
        >>> pixels, note = rule(np.full((2, 2, 3), 65535, np.uint16))
        >>> float(pixels.max()), note
        (255.0, '16-bit pixels scaled from 0..65535 to 0..255')
        """
        offset, factor, note = decide(np.dtype(dtype), self.scale, value_range)
        return FixedRule(self.n_features, offset, factor, note)

    def channels(self, page, alpha=None):
        """``page`` with its alpha channel dropped and a channel axis, as the model sees it."""
        return _fit_channels(page, self.n_features, alpha)


@dataclass(frozen=True)
class FixedRule:
    """A :class:`PixelRule` whose scale decision is taken (:meth:`PixelRule.fixed`)."""

    n_features: int
    offset: object
    factor: object
    note: str | None

    def __call__(self, page, alpha=None):
        img = _fit_channels(page, self.n_features, alpha)
        return _apply(img, self.offset, self.factor), self.note


def _apply(img, offset, factor):
    """``(img - offset) * factor`` in float32 (float64 stays float64); None: as read."""
    if factor is None:
        return img
    if img.dtype.kind in "ui":
        return (img.astype(np.float32) - offset) * factor
    work = np.result_type(img.dtype, np.float32)
    return img.astype(work, copy=False) * work.type(factor)


def page_pixels(geo, index, page, rule):
    """``(pixels, note, invalid)``: page ``index`` of an input through the pixel ``rule``.

    For a GeoTIFF (``geo`` from :func:`pixgmm.io.probe_geotiff`) its nodata values are set aside first
    (:meth:`pixgmm.io.geotiff.Georef.prepare`; ``invalid`` marks those pixels) and a 4th band counts as
    alpha only if the file says so; for any other input (``geo`` None) ``invalid``
    is None. The one path of every command from a page as read to model pixels.
    """
    if geo is None:
        return (*rule(page), None)
    page, invalid = geo.prepare(index, page)
    return (*rule(page, geo.pages[index].alpha), invalid)
