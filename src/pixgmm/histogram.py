"""The :class:`HistogramModel`: a colour histogram used as a probability density.

A histogram model is evaluated by the same public functions as a
:class:`~pixgmm.Mixture` (:func:`pixgmm.log_density`, :func:`pixgmm.density`,
:func:`pixgmm.log_ratio`, including the ratio of a histogram to a mixture) and,
for 8-bit images, through the same cached colour table.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence

import numpy as np

from ._jsonio import (
    check_kind,
    identity_digest,
    plain_json,
    read_json,
    validate,
    write_json,
)
from ._validation import (
    as_image_array,
    channel_permutation,
    format_channels,
    normalize_channel_axis,
    normalize_channels,
)

__all__ = ["HistogramModel"]

SCHEMA = "pixgmm.histogram"
SCHEMA_VERSION = 1
#: The JSON Schema of version 1 files, in ``pixgmm/data/schema/``.
_SCHEMA_FILE = "histogram-1.json"
#: Pixels binned per step when evaluating non-integer images (bounds scratch memory).
_CHUNK = 1 << 20


def _normalize_range(value, d, name="range"):
    """``(lo, hi)`` or one pair per channel -> tuple of D float pairs."""
    arr = np.asarray(value, dtype=np.float64) if value is not None else None
    if arr is None or arr.shape not in ((2,), (d, 2)):
        raise ValueError(
            f"{name} must be a (low, high) pair or one pair per channel ({d}), got {value!r}"
        )
    if arr.ndim == 1:
        arr = np.broadcast_to(arr, (d, 2))
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= arr[:, 0]):
        raise ValueError(f"{name}={value!r}: every pair needs finite low < high")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def _normalize_smoothing(smoothing):
    try:
        value = float(smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"smoothing must be a number >= 0, got {smoothing!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"smoothing must be a finite number >= 0, got {smoothing!r}")
    return value


class HistogramModel:
    """A colour histogram as a piecewise-constant probability density.

    Each channel's ``range`` is cut into equal bins. The density in bin ``b`` is

        p(x) = (n_b + smoothing) / ((N + smoothing * B) * V)

    with ``n_b`` the bin's count, ``N`` the total count, ``B`` the number of
    bins and ``V`` a bin's volume in pixel-value units. It integrates to 1 over
    the range, so it is on the same scale as a :class:`~pixgmm.Mixture`'s
    density and ratios between the two are meaningful. Outside the range the
    density is 0 (log-density ``-inf``); NaN pixels give NaN.

    Parameters
    ----------
    counts : array_like, shape (B_1, ..., B_D)
        Non-negative bin counts, one axis per channel.
    range : (float, float) or sequence of D pairs, default (0, 256)
        Each channel's ``[low, high)``. The default suits 8-bit images: 32 bins
        per channel are 8 values wide, aligned with the integers.
    smoothing : float, default 1.0
        Additive (Laplace) pseudo-count per bin, so that a colour never seen
        in training gets a small positive density instead of 0. Pass 0 for
        the raw histogram (unseen colours then have log-density ``-inf``, and
        a log ratio of two zero densities is NaN).
    channels : str or sequence of str, optional
        The channel order of ``counts``' axes, e.g. ``"RGB"``; evaluation
        reorders the model for an image declared with another order, as for
        a :class:`~pixgmm.Mixture`.

    See Also
    --------
    HistogramModel.fit : build one from pixels.

    Notes
    -----
    Jones and Rehg (1999) found a 32-bins-per-channel RGB histogram a slightly
    better skin detector than their mixtures on about a billion labelled
    pixels. With fewer training pixels, smoothing matters more.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> pixels = np.array([[10, 20, 30], [12, 22, 31], [200, 200, 200]], np.uint8)
    >>> hist = pixgmm.HistogramModel.fit(pixels, bins=32, channels="RGB")
    >>> hist
    HistogramModel(bins=(32, 32, 32), range=(0.0, 256.0), smoothing=1.0, channels='RGB')
    >>> p = pixgmm.density(np.array([[11, 21, 30], [90, 90, 90]], np.uint8), hist)
    >>> (p / p[1]).round(9).tolist()  # two training pixels plus one pseudo-count vs one pseudo-count
    [3.0, 1.0]
    """

    __slots__ = (
        "_channels",
        "_counts",
        "_fingerprint",
        "_log_bins",
        "_permuted",
        "_range",
        "_smoothing",
    )

    #: Marks models that :mod:`pixgmm.evaluate` evaluates from their own values.
    _pixgmm_table_model = True

    def __init__(self, counts, *, range=(0, 256), smoothing=1.0, channels=None):
        try:
            c = np.array(counts, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"counts must be an array of numbers, got {counts!r:.80}") from None
        if c.ndim == 0 or c.size == 0:
            raise ValueError(
                f"counts must have one axis per channel and at least one bin, got shape {c.shape}"
            )
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("counts must be finite and non-negative")
        d = c.ndim
        rng = _normalize_range(range, d)
        alpha = _normalize_smoothing(smoothing)
        names = normalize_channels(channels)
        if names is not None and len(names) != d:
            raise ValueError(
                f"channels={channels!r} names {len(names)} channel(s) but counts has {d} axes"
            )
        total = c.sum() + alpha * c.size
        if total <= 0:
            raise ValueError(
                "counts are all zero and smoothing is 0: the histogram is empty; fit it on "
                "some pixels or pass smoothing > 0"
            )
        volume = math.prod((hi - lo) / n for (lo, hi), n in zip(rng, c.shape))
        with np.errstate(divide="ignore"):
            log_bins = np.log(c + alpha) - math.log(total) - math.log(volume)
        c.setflags(write=False)
        log_bins.setflags(write=False)
        set_ = object.__setattr__
        set_(self, "_counts", c)
        set_(self, "_range", rng)
        set_(self, "_smoothing", alpha)
        set_(self, "_channels", names)
        set_(self, "_log_bins", log_bins)
        set_(self, "_fingerprint", identity_digest(SCHEMA, self._defining_fields()))
        set_(self, "_permuted", {})

    # -- immutability ---------------------------------------------------------
    def __setattr__(self, name, value):
        raise AttributeError("HistogramModel is immutable; build a new one instead")

    def _defining_fields(self):
        """Every field that defines the histogram: its identity and its file (see :meth:`to_dict`).

        ``counts`` carries the bins (its shape); a new defining field is added
        here, and so enters both ``__eq__`` / ``__hash__`` / cache keys and the file.
        """
        return {
            "bins": tuple(self._counts.shape),
            "range": self._range,
            "smoothing": self._smoothing,
            "channels": self._channels,
            "counts": self._counts,
        }

    def __eq__(self, other):
        return isinstance(other, HistogramModel) and other._fingerprint == self._fingerprint

    def __hash__(self):
        return hash(self._fingerprint)

    def __reduce__(self):
        return (_rebuild, (self.to_dict(),))

    def __repr__(self):
        rng = self._range[0] if len(set(self._range)) == 1 else self._range
        ch = "" if self._channels is None else f", channels={self.channels!r}"
        return f"HistogramModel(bins={self.bins}, range={rng}, smoothing={self._smoothing!r}{ch})"

    # -- attributes -------------------------------------------------------------
    @property
    def counts(self):
        """Bin counts, one axis per channel (read-only)."""
        return self._counts

    @property
    def bins(self):
        """Number of bins per channel, a tuple."""
        return self._counts.shape

    @property
    def range(self):
        """Each channel's ``(low, high)``, a tuple of pairs."""
        return self._range

    @property
    def smoothing(self):
        return self._smoothing

    @property
    def channels(self):
        """The model's channel order (e.g. ``'RGB'``), or None."""
        return format_channels(self._channels)

    @property
    def n_features(self):
        return self._counts.ndim

    @property
    def n_samples(self):
        """Total count (the number of training pixels for a fitted histogram)."""
        return float(self._counts.sum())

    @property
    def log_bin_densities(self):
        """The log-density in every bin, shape ``bins`` (read-only)."""
        return self._log_bins

    # -- construction ---------------------------------------------------------
    @classmethod
    def fit(cls, pixels, bins=32, *, range=(0, 256), smoothing=1.0, channels=None, channel_axis=-1):
        """Count pixels into a histogram.

        Parameters
        ----------
        pixels : array_like, or an iterable of arrays
            Training pixels, channels along ``channel_axis``: (N, C), or an
            image (H, W, C) (select labelled pixels with ``image[mask]``).
            Integer or floating dtype; NaN is an error. Many images: a list or
            tuple of NumPy arrays, or any iterator (a generator reading files
            one by one), is counted array by array into one histogram, so
            memory does not grow with the number of images.
        bins : int or sequence of int, default 32
            Bins per channel.
        range, smoothing, channels
            As in :class:`HistogramModel`.
        channel_axis : int or None, default -1
            Axis of ``pixels`` holding the channels; None for single-channel
            pixels without a channel axis.

        Returns
        -------
        HistogramModel

        Raises
        ------
        ValueError
            No pixels, NaN pixels, or pixels outside ``range``.

        Examples
        --------
        >>> import numpy as np
        >>> import pixgmm
        >>> pixels = np.random.default_rng(0).integers(0, 256, size=(1000, 3), dtype=np.uint8)
        >>> hist = pixgmm.HistogramModel.fit(pixels, bins=16, smoothing=0)
        >>> hist.bins, hist.n_samples
        ((16, 16, 16), 1000.0)
        >>> batches = (pixels[i : i + 100] for i in range(0, 1000, 100))  # e.g. one per file
        >>> pixgmm.HistogramModel.fit(batches, bins=16, smoothing=0) == hist
        True
        """
        if not _is_many(pixels):
            counts = _count(pixels, bins, range, channel_axis, "pixels")
        else:
            counts = None
            for i, part in enumerate(pixels):
                c = _count(part, bins, range, channel_axis, f"pixels[{i}]", allow_empty=True)
                if counts is not None and c.shape != counts.shape:
                    raise ValueError(
                        f"pixels[{i}] has {c.ndim} channel(s) but the arrays before it have "
                        f"{counts.ndim}; every array must have the same channels"
                    )
                counts = c if counts is None else counts + c
            if counts is None or not counts.any():
                raise ValueError("pixels holds no pixels; a histogram needs at least one pixel")
        rng = _normalize_range(range, counts.ndim)
        return cls(counts, range=rng, smoothing=smoothing, channels=channels)

    def with_channels(self, channels):
        """The same histogram with its axes reordered to ``channels``.

        Examples
        --------
        >>> import pixgmm
        >>> h = pixgmm.HistogramModel([[[1.0], [2.0]]], range=(0, 1), channels="RGB")
        >>> h.with_channels("BGR").bins
        (1, 2, 1)
        """
        names = normalize_channels(channels)
        if names is None:
            return HistogramModel(self._counts, range=self._range, smoothing=self._smoothing)
        if self._channels is None:
            return HistogramModel(
                self._counts, range=self._range, smoothing=self._smoothing, channels=names
            )
        perm = channel_permutation(self._channels, names)
        if perm is None:
            return self
        key = tuple(perm)
        cached = self._permuted.get(key)
        if cached is None:
            cached = HistogramModel(
                np.transpose(self._counts, perm),
                range=[self._range[i] for i in perm],
                smoothing=self._smoothing,
                channels=names,
            )
            self._permuted[key] = cached
        return cached

    # -- persistence ----------------------------------------------------------
    def to_dict(self):
        """The JSON schema as a dict (see :meth:`save`)."""
        ch = self.channels
        as_json = {
            "bins": list,
            "range": lambda pairs: [list(p) for p in pairs],
            "smoothing": float,
            "channels": lambda _: ch if ch is None or isinstance(ch, str) else list(ch),
            "counts": lambda c: c.reshape(-1).tolist(),  # flat, C order; "bins" gives the shape
        }
        out = {"schema": SCHEMA, "version": SCHEMA_VERSION}
        for name, value in self._defining_fields().items():
            out[name] = as_json[name](value)
        return out

    @classmethod
    def from_dict(cls, data, *, source="histogram"):
        """Inverse of :meth:`to_dict`, validated like a model file (see :meth:`save`).

        Raises
        ------
        ValueError
            ``data`` does not follow the schema, or its values do not make a
            histogram; the message starts with ``source`` and names the field.
        """
        data = plain_json(data, source)
        check_kind(data, SCHEMA, SCHEMA_VERSION, source)
        validate(data, _SCHEMA_FILE, source)
        bins = data["bins"]
        n = math.prod(bins)
        if n != len(data["counts"]):
            raise ValueError(
                f"{source}: field $.counts has {len(data['counts'])} values but $.bins "
                f"{_short_list(bins)} needs {n} (their product)"
            )
        try:
            return cls(
                np.asarray(data["counts"], dtype=np.float64).reshape(bins),
                range=data["range"],
                smoothing=data.get("smoothing", 1.0),
                channels=data.get("channels"),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{source}: {exc}") from None

    def save(self, path):
        """Write the histogram as JSON (never pickle), atomically.

        The file format is version 1 of the JSON Schema shipped as
        ``pixgmm/data/schema/histogram-1.json``: an object with exactly the
        fields ``"schema": "pixgmm.histogram"``, ``"version": 1``, ``"bins"``
        (list of int), ``"range"`` (one ``[low, high]`` per channel),
        ``"counts"`` (flat, C order) and the optional ``"smoothing"`` (default
        1.0) and ``"channels"``. :meth:`load` refuses anything else, as
        :meth:`pixgmm.Mixture.load` does. Written atomically.

        Examples
        --------
        >>> import os, tempfile
        >>> import pixgmm
        >>> h = pixgmm.HistogramModel([[3.0, 1.0], [0.0, 2.0]], channels=["nir", "red"])
        >>> path = os.path.join(tempfile.mkdtemp(), "h.json")
        >>> h.save(path)
        >>> pixgmm.HistogramModel.load(path) == h
        True
        """
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path):
        """Read a histogram file (see :meth:`save` for its schema).

        Raises
        ------
        FileNotFoundError, IsADirectoryError, PermissionError, OSError
            The file is missing, a directory or unreadable.
        ValueError
            The file is not UTF-8 JSON or does not follow the schema; the
            message names the file and the field.
        """
        data, source = read_json(path)
        return cls.from_dict(data, source=source)

    # -- evaluation protocol used by pixgmm.evaluate ------------------------------
    def _padded_log_bins(self):
        """Log-densities with one extra bin per axis holding -inf (outside the range)."""
        pad = np.pad(self._log_bins, [(0, 1)] * self.n_features, constant_values=-np.inf)
        return pad.reshape(-1), pad.shape

    def _log_density_pixels(self, X):
        """Log-density of every row of the (N, C) array ``X``; float64 (N,)."""
        n = X.shape[0]
        out = np.empty(n, dtype=np.float64)
        flat_pad, shape = self._padded_log_bins()
        if X.dtype.kind in "ui" and X.dtype.itemsize <= 2:
            luts = self._level_luts(X.dtype, shape)
            for s in range(0, n, _CHUNK):
                block = X[s : s + _CHUNK]
                idx = luts[0][block[:, 0].astype(np.intp) - luts[1]]
                for c in range(1, block.shape[1]):
                    idx += luts[2 * c][block[:, c].astype(np.intp) - luts[2 * c + 1]]
                out[s : s + _CHUNK] = flat_pad[idx]
            return out
        strides = _strides(shape)
        for s in range(0, n, _CHUNK):
            block = X[s : s + _CHUNK]
            idx = np.zeros(block.shape[0], dtype=np.intp)
            nan = np.zeros(block.shape[0], dtype=bool)
            for c, ((lo, hi), nb) in enumerate(zip(self._range, self.bins)):
                x = block[:, c].astype(np.float64)
                nan |= np.isnan(x)
                idx += _channel_bins(x, nb, lo, hi, nb) * strides[c]
            vals = flat_pad[idx]
            vals[nan] = np.nan
            out[s : s + _CHUNK] = vals
        return out

    def _level_luts(self, dtype, shape):
        """Per channel: (padded-bin offset per integer level, level offset), flattened."""
        info = np.iinfo(dtype)
        levels = np.arange(int(info.min), int(info.max) + 1, dtype=np.float64)
        strides = _strides(shape)
        luts = []
        for c, ((lo, hi), nb) in enumerate(zip(self._range, self.bins)):
            luts.append(_channel_bins(levels, nb, lo, hi, nb) * strides[c])
            luts.append(int(info.min))
        return luts

    def _log_table(self, start, stop):
        """Log-densities of the 8-bit colours with table indices ``start:stop`` (float64)."""
        flat_pad, shape = self._padded_log_bins()
        luts = self._level_luts(np.dtype(np.uint8), shape)
        d = self.n_features
        idx = np.arange(start, stop, dtype=np.intp)
        flat = np.zeros(stop - start, dtype=np.intp)
        for c in range(d):
            flat += luts[2 * c][(idx >> (8 * (d - 1 - c))) & 255]
        return flat_pad[flat]


def _is_many(pixels):
    """True for several arrays: an iterator, or a list/tuple whose items are all ndarrays."""
    if isinstance(pixels, Iterator):
        return True
    return (
        isinstance(pixels, (list, tuple))
        and len(pixels) > 0
        and all(isinstance(p, np.ndarray) for p in pixels)
    )


def _count(pixels, bins, range, channel_axis, name, allow_empty=False):
    """Bin counts of one array of pixels, shaped (bins of each channel)."""
    arr = as_image_array(pixels, name)
    if arr.ndim == 0:
        raise ValueError(f"{name} is a scalar; pass an (N, C) array of pixels")
    axis = normalize_channel_axis(channel_axis, arr.ndim)
    if axis is None:
        X = arr.reshape(-1, 1)
    else:
        X = np.moveaxis(arr, axis, -1).reshape(-1, arr.shape[axis])
    d = X.shape[1]
    if X.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty; a histogram needs at least one pixel")
    nb = _normalize_bins(bins, d)
    rng = _normalize_range(range, d)
    if X.dtype.kind == "f" and np.isnan(X).any():
        raise ValueError(
            f"{name} contains NaN values (a masked array's masked values count as NaN); "
            "drop those pixels first "
            "(pixels[~np.isnan(pixels).any(axis=-1)])"
        )
    flat, inside = _bin_index(X, nb, rng)
    if not inside.all():
        n_out = int(X.shape[0] - np.count_nonzero(inside))
        raise ValueError(
            f"{n_out} pixel(s) lie outside range={range!r} in {name}; pass a range that covers "
            "the data, e.g. range=(0, 65536) for 16-bit images"
        )
    return np.bincount(flat, minlength=math.prod(nb)).reshape(nb)


def _normalize_bins(bins, d):
    if isinstance(bins, Sequence) and not isinstance(bins, str):
        values = list(bins)
    else:
        values = [bins] * d
    try:
        values = [operator.index(b) for b in values]
    except TypeError:
        raise TypeError(f"bins must be an int or a sequence of ints, got {bins!r}") from None
    if len(values) != d or any(b < 1 for b in values):
        raise ValueError(f"bins must be a positive int or {d} positive ints, got {bins!r}")
    return tuple(values)


def _strides(shape):
    strides = [1] * len(shape)
    for i in reversed(range(len(shape) - 1)):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


def _channel_bins(x, nb, lo, hi, outside):
    """Bin of every float64 value ``x``; ``outside`` for values outside ``[lo, hi)`` or NaN."""
    inside = (x >= lo) & (x < hi)
    with np.errstate(invalid="ignore"):
        b = np.floor((x - lo) * nb / (hi - lo))
    b = np.where(inside, np.minimum(b, nb - 1), outside)
    return b.astype(np.intp)


def _bin_index(X, nb, rng):
    """Flat bin index of every row of X (for fitting) and whether the row is inside the range."""
    flat = np.zeros(X.shape[0], dtype=np.intp)
    inside = np.ones(X.shape[0], dtype=bool)
    strides = _strides(nb)
    for c, ((lo, hi), n) in enumerate(zip(rng, nb)):
        b = _channel_bins(X[:, c].astype(np.float64), n, lo, hi, -1)
        inside &= b >= 0
        flat += np.where(b >= 0, b, 0) * strides[c]
    return flat, inside


def _short_list(values, limit=8):
    return str(values) if len(values) <= limit else f"[{', '.join(map(str, values[:limit]))}, ...]"


def _rebuild(data):
    return HistogramModel.from_dict(data)
