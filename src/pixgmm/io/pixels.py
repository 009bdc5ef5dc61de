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

Under ``auto`` the rule also follows the value scale the models were fitted on
(``models``: the scale recorded in their files, :data:`MODEL_SCALES`): models
fitted on ``"raw"`` values get every image's values as read, models fitted on
``"0..1"`` get the 0..255 reading above divided by 255, and models whose scale
is unknown (``None``: files that record none, see :mod:`pixgmm.cli.match`) get
8-bit images as read and no other image: the rule refuses to guess, with a
``ValueError`` that says which ``--scale`` to give.

:class:`BandMatch` chooses which of an image's bands a model reads, and in
which order: by the bands' names (a GeoTIFF's band descriptions) where both the
image and the models name them, by the numbers or names the user selected
(``--bands``), and refuses names that do not match.

Each decision that changes or might surprise is returned as a short note, which
the command prints with the input's summary line and puts in the ``--json``
summary (``"scale"``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

#: The values of ``--scale`` (the ``scale`` of :class:`PixelRule`).
SCALES = ("auto", "none", "unit")
#: The value scales a model can be fitted on (``PixelRule.models``; None: unknown).
MODEL_SCALES = ("raw", "0..255", "0..1")


def _int_plan(dtype):
    """``(offset, factor, note)`` that maps an integer dtype wider than 8 bits to 0..255."""
    info = np.iinfo(dtype)
    factor = np.float32(255.0 / (info.max - info.min))
    note = f"{8 * dtype.itemsize}-bit pixels scaled from {info.min}..{info.max} to 0..255"
    return np.float32(info.min), factor, note


def decide(dtype, scale, value_range=None, models="0..255"):
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
    models : {"0..255", "raw", "0..1"} or None, default "0..255"
        The value scale the models were fitted on, which ``auto`` follows; None:
        unknown (8-bit pages are read as they are, others refused).

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
    if models is not None and models not in MODEL_SCALES:
        raise ValueError(f"models={models!r} is not one of {', '.join(MODEL_SCALES)} or None")
    if scale == "auto" and models != "0..255":
        return _follow(dtype, models, value_range)
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


def _follow(dtype, models, value_range):
    """``decide`` under ``auto`` for models fitted on raw values, on 0..1, or of unknown scale."""
    eight_bit = dtype.kind in "ui" and dtype.itemsize == 1
    if models == "raw" or (models is None and eight_bit) or dtype.kind not in "uif":
        note = None if eight_bit or dtype.kind not in "uif" else (
            f"{dtype.name} pixels used as read (the models were fitted on raw values)"
        )  # fmt: skip
        return None, None, note
    if models is None:
        raise ValueError(
            f"the models record no value scale (files written before pixgmm recorded it, or "
            f"fitted through the Python API without scale=), so --scale auto cannot tell "
            f"whether these {dtype.name} pixels are to be used as read or scaled; pass "
            "--scale none if the models were fitted on raw values, --scale unit if on the "
            "0..255 scale of 8-bit colours (pixgmm fit records the scale in new model files)"
        )
    offset, factor, _ = decide(dtype, "auto", value_range)  # the 0..255 reading, then /255
    if eight_bit:
        return np.float32(0), np.float32(1 / 255), "8-bit pixels scaled to 0..1 (the models' scale)"
    if factor is None:  # float values outside [0, 1], taken as 0..255
        lo, hi = value_range()
        return (
            np.float32(0),
            np.float32(1 / 255),
            f"float pixels from {lo:.4g} to {hi:.4g} (not in [0, 1]) taken as 0..255 and "
            "scaled to 0..1 (the models' scale)",
        )
    if dtype.kind == "f":  # in [0, 1]: already on the models' scale
        return None, None, "float pixels in [0, 1] used as read (the models' scale)"
    info = np.iinfo(dtype)
    note = f"{8 * dtype.itemsize}-bit pixels scaled from {info.min}..{info.max} to 0..1"
    return offset, np.float32(factor / np.float32(255)), note + " (the models' scale)"


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


def _normal(name):
    return str(name).strip().upper()


#: Band descriptions that name the channels R, G and B of a colour model.
_RGB_ALIASES = {"RED": "R", "GREEN": "G", "BLUE": "B"}


def _described(descriptions, count, model_names):
    """The bands' names (normalised), or None unless every band has its own name.

    ``descriptions`` None (not a GeoTIFF: a photo, read in RGB order) names the
    first three channels R, G, B when the models are named with those letters.
    """
    rgb = model_names is not None and set(model_names) == set("RGB")
    if descriptions is None:
        return ("R", "G", "B") if rgb and count >= 3 else None
    names = tuple(_normal(d) for d in descriptions)
    if len(names) != count or not all(names) or len(set(names)) != len(names):
        return None
    if rgb:
        names = tuple(_RGB_ALIASES.get(n, n) for n in names)
    return names


def _listed(names):
    return ", ".join(names)


@dataclass(frozen=True)
class BandMatch:
    """Which bands of an image a model reads, in the model's channel order.

    ``wanted`` are the bands the user selected (1-based numbers or names, e.g.
    ``--bands B2,B3,B4``), None for every band; ``names`` the models' channel
    names (None: unnamed); ``option`` names the selection in messages. Where the
    selected bands and the models both have names, the bands are put in the
    models' order by name; names that differ are refused, with both lists.

    Examples
    --------
    >>> from pixgmm.io.pixels import BandMatch
    >>> match = BandMatch(names=("B4", "B3", "B2"))
    >>> match.resolve(3, ("B2", "B3", "B4"))
    ((2, 1, 0), 'bands B4, B3, B2 (3, 2, 1) matched to the models by name')
    >>> BandMatch(wanted=(4, 3)).resolve(4, ("", "", "", ""))
    ((3, 2), 'bands 4, 3 selected')
    """

    wanted: tuple | None = None
    names: tuple | None = None
    option: str = "--bands"

    def resolve(self, count, descriptions=None, alpha=None):
        """``(indices or None, note)``: the 0-based bands to read, in model order.

        ``count`` bands, ``descriptions`` their names (a GeoTIFF's; None for a
        photo), ``alpha`` whether the last is an alpha band (None: unknown).
        None: read the page as it is (the pixel rule then drops an alpha band).

        Raises
        ------
        ValueError
            A selected band that is not in the image, or names that do not match
            the models' (both lists in the message).
        """
        model = None if self.names is None else tuple(_normal(n) for n in self.names)
        image = _described(descriptions, count, model)
        picked = None
        if self.wanted is not None:
            picked = [self._index(item, count, image) for item in self.wanted]
            if len(set(picked)) != len(picked):
                raise ValueError(f"{self.option} selects a band twice ({self._text()})")
        if picked is not None:
            chosen = picked
        elif image is not None:  # every named band but an alpha band
            chosen = list(range(min(len(image), count - 1 if alpha else count)))
        else:
            chosen = list(range(count))
        if model is None or image is None:
            return (None if picked is None else tuple(picked)), self._note(picked, None)
        names = tuple(image[i] for i in chosen)
        if len(names) != len(model) or set(names) != set(model):
            how = "the bands selected by " + self.option if picked is not None else "the bands"
            fix = (
                f"select the models' bands in their order with {self.option} {','.join(model)}"
                if set(model) <= set(image)
                else "name the bands as the models do (the models' channel names come from "
                "the band descriptions of the image they were fitted on)"
            )
            raise ValueError(
                f"{how} are {_listed(names)} but the models' channels are {_listed(model)}; {fix}"
            )
        order = tuple(chosen[names.index(m)] for m in model)
        if picked is None and order == tuple(range(count)):
            return None, None
        # a photo (no descriptions) is put in the models' order silently, as the API does
        return order, (self._note(order, model) if descriptions is not None else None)

    def _index(self, item, count, image):
        if isinstance(item, (int, np.integer)):
            if not 1 <= item <= count:
                raise ValueError(
                    f"{self.option} selects band {item}, but the image has {count} band(s) "
                    f"(numbered 1 to {count})"
                )
            return int(item) - 1
        if image is None:
            raise ValueError(
                f"{self.option} names band {item!r}, but the image's bands have no "
                "descriptions (names); select them by number, e.g. "
                f"{self.option} {','.join(str(i + 1) for i in range(min(count, 3)))}"
            )
        name = _normal(item)
        if name not in image:
            raise ValueError(
                f"{self.option} names band {item!r}, which is not in the image; its bands "
                f"are {_listed(image)}"
            )
        return image.index(name)

    def _text(self):
        return ",".join(str(w) for w in self.wanted)

    @staticmethod
    def _note(indices, names):
        if indices is None:
            return None
        numbers = ", ".join(str(i + 1) for i in indices)
        if names is None:
            return f"bands {numbers} selected"
        return f"bands {_listed(names)} ({numbers}) matched to the models by name"


def _select(img, indices):
    """The bands ``indices`` of a page (NumPy or Dask), as (H, W, len(indices))."""
    if img.ndim == 2:
        img = img[..., None]
    return img[..., list(indices)]


def _join(*notes):
    notes = [n for n in notes if n]
    return "; ".join(notes) if notes else None


@dataclass(frozen=True)
class PixelRule:
    """Turn a page as read (NumPy or Dask) into ``(pixels, note)`` for a model of ``n_features``.

    ``scale`` is the ``--scale`` option; ``models`` the value scale the models
    were fitted on, which ``"auto"`` follows (see :func:`decide`); ``bands`` a
    :class:`BandMatch` choosing the bands the models read (None: every band, in
    the file's order).

    Parameters
    ----------
    n_features : int, default 3
        The channels per pixel the models read. A greyscale page gets a channel
        axis for 1 feature; one band more is dropped as alpha (when the page says
        its last band is alpha, or, when it does not say, for 1 or 3 features);
        any other channel count is a ``ValueError`` when the rule is called.
    scale : {"auto", "none", "unit"}, default "auto"
        The ``--scale`` option (:data:`SCALES`; see the module's docstring).
    models : {"0..255", "raw", "0..1"} or None, default "0..255"
        The value scale the models were fitted on (:data:`MODEL_SCALES`), which
        ``"auto"`` follows; None: unknown (8-bit pages are used as read, others
        refused).
    bands : BandMatch, optional
        The bands the models read, in their order. Default: every band, in the
        file's order.

    Examples
    --------
    >>> import numpy as np
    >>> from pixgmm.io.pixels import PixelRule
    >>> pixels, note = PixelRule(3)(np.full((2, 2, 3), 0.5, np.float32))
    >>> float(pixels[0, 0, 0]), note
    (127.5, 'float pixels in [0, 1] scaled to 0..255')
    >>> pixels, note = PixelRule(2, models="raw")(np.full((2, 2, 2), 900, np.uint16))
    >>> float(pixels[0, 0, 0]), note
    (900.0, 'uint16 pixels used as read (the models were fitted on raw values)')
    """

    n_features: int = 3
    scale: str = "auto"
    models: str | None = "0..255"
    bands: BandMatch | None = None

    def __call__(self, page, alpha=None, descriptions=None):
        """``(pixels, note)``: ``page`` (NumPy or Dask) as the models read it, and what was done.

        ``alpha`` says whether the page's last band is alpha (None: guessed from
        the band count, as for photos); ``descriptions`` are the bands' names (a
        GeoTIFF's; None for a photo), by which ``bands`` selects them.
        """
        lazy = not isinstance(page, np.ndarray) and hasattr(page, "dask")
        img = page if lazy else np.asarray(page)
        indices, chosen = self.select(img.shape[-1] if img.ndim == 3 else 1, descriptions, alpha)
        if indices is not None:
            img, alpha = _select(img, indices), False
        img = _fit_channels(img, self.n_features, alpha)
        ranged = _dask_range if lazy else _numpy_range
        offset, factor, note = decide(img.dtype, self.scale, lambda: ranged(img), self.models)
        return _apply(img, offset, factor), _join(chosen, note)

    def select(self, count, descriptions=None, alpha=None):
        """``(indices or None, note)``: the bands to read (0-based, model order); see :class:`BandMatch`."""
        if self.bands is None:
            return None, None
        return self.bands.resolve(count, descriptions, alpha)

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
        offset, factor, note = decide(np.dtype(dtype), self.scale, value_range, self.models)
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
    info = geo.pages[index]
    alpha = info.alpha
    indices, chosen = rule.select(info.count, info.descriptions, alpha)
    if indices is not None:  # only the bands read count for nodata, as when streamed
        page, alpha = _select(page, indices), False
        rule = dataclasses.replace(rule, bands=None)
    page, invalid = geo.prepare(index, page)
    pixels, note = rule(page, alpha)
    return pixels, _join(chosen, note), invalid
