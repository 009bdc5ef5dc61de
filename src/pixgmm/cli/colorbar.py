"""A labelled colour bar beside a heatmap, and the PNG text that records the heatmap's scale.

The bar is drawn with Pillow (its built-in font) in a white panel appended to
the right of the heatmap: the heatmap's pixels are kept as they are, in the
top-left corner of the picture. Row by row the bar shows the colour map's 256
entries from ``vmax`` (top) to ``vmin`` (bottom), with ticks at ``vmin``,
``vmax`` and evenly between them, labelled with three significant digits; the
name of the mapped quantity runs up the right edge when there is room for it.
A one-pixel frame surrounds the bar (outside its colours).
The exact range is also written into the PNG's text chunks (:func:`png_text`).

Every size in the panel follows from the heatmap's height only, so every frame
of a video gets a panel of the same size.
"""

from __future__ import annotations

import numpy as np

#: The PNG text keywords pixgmm writes into a heatmap.
KEY_QUANTITY = "pixgmm:quantity"
KEY_VMIN = "pixgmm:vmin"
KEY_VMAX = "pixgmm:vmax"
KEY_CMAP = "pixgmm:colormap"
KEY_SIZE = "pixgmm:heatmap-size"
KEY_TICKS = "pixgmm:colorbar-ticks"

BACKGROUND = 255
INK = 0
#: The widest tick label ``tick_label`` makes: the panel reserves its width.
_WIDEST_LABEL = "-8.88e-88"


def tick_label(value):
    """A tick's text: three significant digits (``-0`` written as ``0``)."""
    text = f"{float(value):.3g}"
    return "0" if text == "-0" else text


def font_size(height):
    """The font size of the bar's labels for a heatmap ``height`` pixels high (10 to 40)."""
    return int(min(40, max(10, round(height / 50))))


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size)  # Pillow's built-in Aileron, when FreeType is there
    except (ImportError, OSError, TypeError, AttributeError):
        return ImageFont.load_default()  # Pillow's fixed-size bitmap font


class Layout:
    """Where the parts of the colour bar panel go, for a heatmap ``height`` pixels high.

    Attributes are pixel sizes and positions in the panel: ``width``, ``height``
    (at least the heatmap's height), the bar's columns ``bar_x0:bar_x1`` and
    rows ``bar_y0:bar_y1``, ``n_ticks``, and the ``font``.
    """

    def __init__(self, height):
        size = font_size(height)
        self.font = _font(size)
        left, top, right, bottom = self.font.getbbox("0123456789-.e+" + _WIDEST_LABEL)
        self.text_height = bottom - top
        label_width = self.font.getbbox(_WIDEST_LABEL)[2]
        self.pad = max(4, size // 2)
        self.tick = max(3, size // 3)
        bar_width = max(10, round(1.5 * size))
        self.bar_x0 = self.pad
        self.bar_x1 = self.bar_x0 + bar_width
        self.label_x = self.bar_x1 + self.tick + max(2, self.pad // 2)
        self.title_x = self.label_x + label_width + self.pad
        self.width = self.title_x + self.text_height + self.pad
        margin = self.text_height // 2 + self.pad  # room for the end labels
        self.height = max(height, 2 * margin + 4 * self.text_height)
        self.bar_y0 = margin
        self.bar_y1 = self.height - margin
        rows = self.bar_y1 - self.bar_y0
        # as many ticks (5, 3 or 2) as fit with two text heights between labels
        self.n_ticks = next(n for n in (5, 3, 2) if (n - 1) * 2 * self.text_height <= rows)

    def tick_rows(self):
        """Row of each tick in the panel, from ``vmin`` (bottom) to ``vmax`` (top)."""
        last = self.bar_y1 - 1 - self.bar_y0
        fractions = np.arange(self.n_ticks) / (self.n_ticks - 1)
        return [self.bar_y0 + round(last * (1 - f)) for f in fractions]

    def bar_indices(self):
        """The colour-map entry of each bar row, top (255) to bottom (0)."""
        last = self.bar_y1 - 1 - self.bar_y0
        rows = np.arange(self.bar_y1 - self.bar_y0)
        return np.round((last - rows) * (255.0 / last)).astype(np.intp)


def tick_values(vmin, vmax, n):
    """``n`` tick values from ``vmin`` to ``vmax``, evenly spaced, the ends exact."""
    vmin, vmax = float(vmin), float(vmax)
    values = [vmin + (vmax - vmin) * k / (n - 1) for k in range(n)]
    values[-1] = vmax
    return values


def with_colorbar(heat, lut, vmin, vmax, quantity=""):
    """``(picture, ticks)``: the heatmap with a labelled colour bar appended on its right.

    Parameters
    ----------
    heat : ndarray of uint8, shape (H, W, 3)
        The heatmap, as :func:`pixgmm.cli.render.heatmap` made it with ``lut``,
        ``vmin`` and ``vmax``.
    lut : ndarray of uint8, shape (256, 3)
        The colour map's table.
    vmin, vmax : float
        The values of the table's first and last entries.
    quantity : str
        The name of the mapped quantity, written up the panel's right edge
        when it fits.

    Returns
    -------
    picture : ndarray of uint8, shape (max(H, h), W + w, 3)
        ``picture[:H, :W]`` is ``heat`` unchanged; the rest is the panel (white).
    ticks : list of float
        The tick values, bottom to top.
    """
    from PIL import Image, ImageDraw

    heat = np.asarray(heat, dtype=np.uint8)
    h, w = heat.shape[:2]
    lay = Layout(h)
    panel = np.full((lay.height, lay.width, 3), BACKGROUND, dtype=np.uint8)
    colours = np.asarray(lut)[lay.bar_indices()]  # one per bar row, top to bottom
    panel[lay.bar_y0 : lay.bar_y1, lay.bar_x0 : lay.bar_x1] = colours[:, None, :]
    image = Image.fromarray(panel)
    draw = ImageDraw.Draw(image)
    ticks = tick_values(vmin, vmax, lay.n_ticks)
    ink = (INK, INK, INK)
    # a frame around (not over) the bar, so that a colour as light as the panel shows
    draw.rectangle([lay.bar_x0 - 1, lay.bar_y0 - 1, lay.bar_x1, lay.bar_y1], outline=ink)
    for value, row in zip(ticks, lay.tick_rows()):
        draw.line([(lay.bar_x1, row), (lay.bar_x1 + lay.tick - 1, row)], fill=ink)
        text = tick_label(value)
        top, bottom = lay.font.getbbox(text)[1::2]
        draw.text((lay.label_x, row - (top + bottom) / 2), text, fill=ink, font=lay.font)
    if quantity:
        left, top, right, bottom = lay.font.getbbox(quantity)
        if right <= lay.bar_y1 - lay.bar_y0:  # only when it fits beside the bar
            title = Image.new("RGB", (right, lay.text_height + 2), (BACKGROUND,) * 3)
            ImageDraw.Draw(title).text((0, -top + 1), quantity, fill=ink, font=lay.font)
            title = title.rotate(90, expand=True)  # reads bottom to top
            y = (lay.bar_y0 + lay.bar_y1 - title.height) // 2
            image.paste(title, (lay.title_x, y))
    out = np.full((lay.height, w + lay.width, 3), BACKGROUND, dtype=np.uint8)
    out[:h, :w] = heat
    out[:, w:] = np.asarray(image)
    return out, ticks


def png_text(quantity, vmin, vmax, cmap_name, heatmap_size, ticks=None):
    """The PNG text chunks recording a heatmap's scale (values as Python float reprs).

    ``heatmap_size`` is ``(width, height)`` of the heatmap itself (the top-left
    part of the picture when a colour bar is beside it).
    """
    text = {
        KEY_QUANTITY: quantity,
        KEY_VMIN: repr(float(vmin)),
        KEY_VMAX: repr(float(vmax)),
        KEY_CMAP: cmap_name,
        KEY_SIZE: f"{int(heatmap_size[0])}x{int(heatmap_size[1])}",
    }
    if ticks is not None:
        text[KEY_TICKS] = " ".join(repr(float(t)) for t in ticks)
    return text
