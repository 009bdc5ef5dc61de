"""Pictures for people: heatmaps, masks and overlays (8-bit RGB arrays).

Heatmaps use matplotlib's perceptually uniform ``viridis`` colour map when
matplotlib is installed (the ``plot`` extra) and otherwise a 256-entry table
interpolated from 17 samples of viridis (at most 2 levels away from
matplotlib's), so the pictures need nothing beyond the ``io`` extra.
"""

from __future__ import annotations

import functools

import numpy as np

#: viridis at 0, 1/16, ..., 1 (matplotlib's values rounded to 8 bits).
_VIRIDIS_17 = (
    (68, 1, 84),
    (72, 24, 106),
    (71, 45, 123),
    (66, 64, 134),
    (59, 82, 139),
    (51, 99, 141),
    (44, 114, 142),
    (38, 130, 142),
    (33, 145, 140),
    (31, 160, 136),
    (40, 174, 128),
    (63, 188, 115),
    (94, 201, 98),
    (132, 212, 75),
    (173, 220, 48),
    (216, 226, 25),
    (253, 231, 37),
)

#: Colour that detected pixels are tinted towards in overlays (magenta: unlike any skin tone).
TINT = np.array([255, 0, 255], dtype=np.float32)
TINT_ALPHA = 0.55


def fallback_lut():
    """The 256 x 3 uint8 viridis table built without matplotlib."""
    anchors = np.array(_VIRIDIS_17, dtype=np.float64)
    x = np.linspace(0.0, 1.0, len(anchors))
    t = np.linspace(0.0, 1.0, 256)
    lut = np.stack([np.interp(t, x, anchors[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


@functools.lru_cache(maxsize=1)
def colour_lut():
    """``(lut, source)``: the 256 x 3 uint8 viridis table and where it came from."""
    try:
        from matplotlib import colormaps
    except ImportError:
        return fallback_lut(), "builtin"
    rgba = colormaps["viridis"](np.linspace(0.0, 1.0, 256))
    return np.round(rgba[:, :3] * 255).astype(np.uint8), "matplotlib"


def heatmap(values, vmin, vmax):
    """Colour ``values`` (H, W) from ``vmin`` (dark purple) to ``vmax`` (yellow); NaN is black."""
    values = np.asarray(values, dtype=np.float32)
    span = float(vmax) - float(vmin)
    scale = 255.0 / span if span > 0 else 0.0
    idx = (values - np.float32(vmin)) * np.float32(scale)
    finite = np.isfinite(idx)
    np.clip(idx, 0, 255, out=idx, where=finite)
    idx = np.where(finite, idx, 0)
    out = colour_lut()[0][np.round(idx).astype(np.uint8)]
    out[np.isnan(values)] = 0
    return out


def log_range(log_values):
    """``(vmin, vmax)`` for a log-density heatmap: 1st percentile to maximum of the finite values."""
    finite = log_values[np.isfinite(log_values)]
    if finite.size == 0:
        return 0.0, 1.0
    lo = float(np.percentile(finite, 1.0))
    hi = float(finite.max())
    return lo, hi if hi > lo else lo + 1.0


def to_display(image):
    """An (H, W, 3) uint8 picture of an image as read: 16-bit scaled, grey expanded, alpha dropped."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] in (2, 4):  # grey+alpha, RGBA
        img = img[..., :-1]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.dtype == np.uint8:
        return img
    if img.dtype.kind in "ui":
        info = np.iinfo(img.dtype)
        scaled = (img.astype(np.float64) - info.min) * (255.0 / (info.max - info.min))
    else:
        scaled = np.nan_to_num(img.astype(np.float64))
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def mask_picture(mask):
    """A boolean mask as a uint8 picture: 255 where True, 0 elsewhere."""
    return np.where(mask, np.uint8(255), np.uint8(0))


def overlay(picture, mask):
    """The picture with the pixels where ``mask`` is True tinted magenta."""
    out = np.array(picture, dtype=np.uint8, copy=True)
    m = np.asarray(mask, dtype=bool)
    tinted = out[m].astype(np.float32)  # only the tinted pixels go through float
    tinted *= np.float32(1.0 - TINT_ALPHA)
    tinted += TINT * np.float32(TINT_ALPHA)
    out[m] = np.round(tinted).astype(np.uint8)
    return out


#: A palette for label maps (classes 0..9 repeat after 10): tab10 as 8-bit RGB.
PALETTE = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ],
    dtype=np.uint8,
)


def label_picture(labels):
    """Colour a label map (integer indices) with :data:`PALETTE`."""
    return PALETTE[np.asarray(labels) % len(PALETTE)]
