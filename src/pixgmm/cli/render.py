"""Pictures for people: heatmaps, masks, overlays and label pictures (8-bit RGB arrays).

Colour maps come from the ``cmap`` package (in the ``io`` extra, no
dependencies): a name is looked up among matplotlib's maps first, then in the
rest of cmap's catalogue, and its 256-entry table is made 8-bit the way
matplotlib makes it (``colormap(range(256), bytes=True)``), so ``viridis`` is
exactly matplotlib's. Label pictures use the ``tab10`` palette from the same
source. A heatmap can carry a colour bar (:mod:`.colorbar`).
"""

from __future__ import annotations

import functools

import numpy as np

#: Colour map of heatmaps when none is chosen.
DEFAULT_CMAP = "viridis"

#: Where the names ``--cmap`` takes are listed.
CMAP_NAMES_HELP = (
    "Names are those of the cmap package's catalogue, matplotlib's first (viridis, magma, "
    "cividis, gray, RdBu, ...; append _r to reverse a map); list them with "
    'python -c "import cmap; print(sorted(cmap.Catalog().unique_keys()))" '
    "or see https://cmap-docs.readthedocs.io/en/latest/catalog/"
)

#: Colour that detected pixels are tinted towards in overlays (magenta: unlike any skin tone).
TINT = np.array([255, 0, 255], dtype=np.float32)
TINT_ALPHA = 0.55


def _to_bytes(rgba):
    """RGB uint8 of float RGBA colours in [0, 1], as matplotlib's ``bytes=True`` makes them."""
    return (np.asarray(rgba, dtype=np.float64)[..., :3] * 255).astype(np.uint8)


def _import_cmap():
    try:
        import cmap
    except ImportError:
        raise ImportError(
            "colour maps need the cmap package: pip install 'pixgmm[io]' (or pip install cmap)"
        ) from None
    return cmap


def _close_names(cmap, name):
    import difflib

    names = {k.lower(): k for k in cmap.Catalog().short_keys()}
    close = difflib.get_close_matches(name.lower(), list(names), n=3, cutoff=0.6)
    return [names[c] for c in close]


@functools.lru_cache(maxsize=16)
def colour_map(name=DEFAULT_CMAP):
    """``(catalogue_name, lut)``: colour map ``name`` and its 256 x 3 uint8 table.

    Parameters
    ----------
    name : str
        A name of the ``cmap`` package's catalogue: matplotlib's maps are looked
        up first (``"twilight"`` is matplotlib's), then the others
        (``"cmocean:thermal"``, ``"batlow"``); ``_r`` reverses a map.

    Returns
    -------
    catalogue_name : str
        The map's full name in the catalogue (``"bids:viridis"``).
    lut : ndarray of uint8, shape (256, 3)
        Entry ``i`` is the colour at ``i / 255`` of the way along the map.

    Raises
    ------
    ValueError
        If no map has that name; the message suggests close names and says
        where the names are listed.

    Examples
    --------
    >>> from pixgmm.cli.render import colour_map
    >>> name, lut = colour_map("viridis")
    >>> name, lut.shape, lut.dtype.name, lut[0].tolist()
    ('bids:viridis', (256, 3), 'uint8', [68, 1, 84])
    """
    cmap = _import_cmap()
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"colour map name must be a non-empty string, not {name!r}")
    found = None
    for candidate in (f"matplotlib:{name}", name):
        try:
            found = cmap.Colormap(candidate)
            break
        except (ValueError, KeyError):
            continue
    if found is None:
        close = _close_names(cmap, name)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ValueError(f"unknown colour map {name!r}.{hint} {CMAP_NAMES_HELP}")
    lut = _to_bytes(found.lut(256))
    lut.setflags(write=False)
    return found.name, lut


def colour_lut(name=DEFAULT_CMAP):
    """The 256 x 3 uint8 table of colour map ``name`` (see :func:`colour_map`)."""
    return colour_map(name)[1]


def heatmap(values, vmin, vmax, lut=None):
    """Colour ``values`` (H, W) with ``lut`` (default viridis) from ``vmin`` to ``vmax``; NaN is black.

    ``vmin`` takes entry 0 of the 256-entry table, ``vmax`` entry 255, and a
    value between them the nearest entry; values outside are clipped.
    """
    if lut is None:
        lut = colour_lut()
    values = np.asarray(values, dtype=np.float32)
    span = float(vmax) - float(vmin)
    scale = 255.0 / span if span > 0 else 0.0
    idx = (values - np.float32(vmin)) * np.float32(scale)
    finite = np.isfinite(idx)
    np.clip(idx, 0, 255, out=idx, where=finite)
    idx = np.where(finite, idx, 0)
    out = np.asarray(lut)[np.round(idx).astype(np.uint8)]
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


@functools.lru_cache(maxsize=1)
def label_palette():
    """The palette of label pictures: matplotlib's ``tab10`` as a 10 x 3 uint8 array."""
    stops = _import_cmap().Colormap("tab10").color_stops
    palette = _to_bytes(stops.color_array)
    palette.setflags(write=False)
    return palette


def __getattr__(name):
    if name == "PALETTE":  # loaded on first use, like the colour maps
        return label_palette()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def label_picture(labels):
    """Colour a label map (integer indices) with :func:`label_palette` (classes repeat after 10)."""
    palette = label_palette()
    return palette[np.asarray(labels) % len(palette)]


def heatmap_picture(values, vmin, vmax, *, cmap=DEFAULT_CMAP, colorbar=False, quantity=""):
    """``(picture, text)``: a heatmap, with a colour bar if asked, and its PNG text chunks.

    Parameters
    ----------
    values : array_like, shape (H, W)
        The mapped quantity.
    vmin, vmax : float
        The values given the colour map's first and last colours.
    cmap : str
        A colour map name (see :func:`colour_map`).
    colorbar : bool
        Append a labelled colour bar on the right (:func:`.colorbar.with_colorbar`);
        the heatmap's pixels stay as they are, in the top-left (H, W) corner.
    quantity : str
        The name of the mapped quantity, for the bar's label and the PNG text.

    Returns
    -------
    picture : ndarray of uint8, shape (H, W, 3) or wider (and taller for a
        heatmap too short for the bar's labels)
    text : dict of str
        PNG text chunks: quantity, vmin, vmax (exact float reprs), the colour
        map's catalogue name, the heatmap's size and the bar's tick values.
    """
    from .colorbar import png_text, with_colorbar

    name, lut = colour_map(cmap)
    picture = heatmap(values, vmin, vmax, lut)
    ticks = None
    height, width = picture.shape[:2]
    if colorbar:
        picture, ticks = with_colorbar(picture, lut, vmin, vmax, quantity)
    return picture, png_text(quantity, vmin, vmax, name, (width, height), ticks)
