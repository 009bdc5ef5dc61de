"""Skin detection: a likelihood-ratio detector on two colour models (Jones & Rehg by default)."""

from __future__ import annotations

import math

import numpy as np

from . import _xarray, evaluate
from ._engine import table as _table
from ._skinmaps import posterior_copy as _posterior_copy
from ._skinmaps import posterior_inplace as _posterior_inplace
from ._validation import normalize_channels, pixels_view
from .histogram import HistogramModel
from .metrics import tpr_at_fpr
from .mixture import as_mixture

#: A uint8 image with at least this many pixels is masked through a cached boolean
#: colour table (one byte per colour) instead of thresholding a float log ratio.
MASK_TABLE_MIN_PIXELS = 2**20

__all__ = ["SkinDetector"]

_KEYWORDS = """channel_axis : int or None, default -1
        The axis holding the channels (as in :func:`pixgmm.log_ratio`).
    channels : str or sequence of str, optional
        The image's channel order, e.g. ``"BGR"`` for an OpenCV image. The
        built-in models are ``"RGB"``; declaring the order wrongly silently
        degrades detection, so declare it whenever it is not RGB.
    dtype : {None, numpy.float32, numpy.float64}
        Precision of the computation and of a float result; default float64
        for integer images (see :func:`pixgmm.log_ratio`).
    method : {"auto", "table", "separable", "direct"}
        Engine. ``"auto"`` uses the cached colour table for every uint8 image
        (built once per pair of models, about a second, then a lookup per
        pixel), so equal colours always get identical scores; otherwise the
        rule of :mod:`pixgmm.evaluate`."""


def _check_model(model, name):
    if isinstance(model, HistogramModel):
        return model
    return as_mixture(model, name)


def _as_real(value, name, what="a number"):
    """``float(value)`` for real numbers only: strings and bools are a TypeError."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be {what}, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be {what}, got {value!r}") from None


def _check_probability(value, name, *, closed):
    p = _as_real(value, name)
    ok = 0.0 <= p <= 1.0 if closed else 0.0 < p < 1.0
    if not ok:
        interval = "[0, 1]" if closed else "(0, 1), exclusive"
        raise ValueError(f"{name} must be a probability in {interval}, got {value!r}")
    return p


def _logit(p):
    if p == 0.0:
        return -math.inf
    if p == 1.0:
        return math.inf
    return math.log(p) - math.log1p(-p)


class SkinDetector:
    """Classify pixels as skin or not by the ratio of two colour densities.

    Parameters
    ----------
    skin, nonskin : Mixture, HistogramModel or anything :func:`pixgmm.as_mixture` accepts, optional
        The colour models of skin and of everything else. Default: the
        built-in Jones & Rehg mixtures (:func:`pixgmm.models.jones_rehg_skin`,
        :func:`pixgmm.models.jones_rehg_nonskin`), in RGB.
    prior : float, default 0.5
        Prior probability P(skin) of a pixel, in (0, 1). It enters
        :meth:`probability` and the default decision of :meth:`mask`, not
        :meth:`log_ratio`.

    Notes
    -----
    The log likelihood ratio ``L(x) = log p(x | skin) - log p(x | non-skin)``
    is computed in log space, so it is finite wherever the models are, even
    where both densities underflow to 0. The posterior is
    ``P(skin | x) = sigmoid(L(x) + log(prior / (1 - prior)))``, evaluated in a
    form that cannot overflow or divide 0 by 0.

    Three ways to set the decision threshold of :meth:`mask`, all with ">=":

    - ``ratio=theta``: skin where ``p(x | skin) / p(x | non-skin) >= theta``,
      the convention of Jones & Rehg (the prior does not enter); or the same
      in log space, ``log_ratio=log(theta)``;
    - ``probability=q``: skin where ``P(skin | x) >= q``;
    - from labelled pixels at a target false-positive rate:
      ``mask(image, ratio=detector.threshold_for_fpr(pixels, labels, 0.05))``.

    With none of these, ``probability=0.5``: the Bayes decision under ``prior``.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> detector = pixgmm.SkinDetector()
    >>> detector
    SkinDetector(skin=Mixture(n_components=16, ...), nonskin=Mixture(n_components=16, ...), prior=0.5)
    >>> bgr = np.array([[[110, 140, 200], [160, 90, 40]]], np.uint8)  # skin tone, sky blue (OpenCV order)
    >>> detector.mask(bgr, channels="BGR").tolist()
    [[True, False]]
    >>> detector.probability(bgr, channels="BGR").round(3).tolist()
    [[0.984, 0.0]]
    """

    __slots__ = ("_log_prior_odds", "_nonskin", "_prior", "_skin")

    def __init__(self, skin=None, nonskin=None, *, prior=0.5):
        from .models import jones_rehg_nonskin, jones_rehg_skin

        skin = jones_rehg_skin() if skin is None else _check_model(skin, "skin")
        nonskin = jones_rehg_nonskin() if nonskin is None else _check_model(nonskin, "nonskin")
        if skin.n_features != nonskin.n_features:
            raise ValueError(
                f"skin has {skin.n_features} features but nonskin has {nonskin.n_features}; "
                "both models must describe the same channels"
            )
        self._skin = skin
        self._nonskin = nonskin
        self._prior = _check_probability(prior, "prior", closed=False)
        self._log_prior_odds = _logit(self._prior)

    def __repr__(self):
        def short(m):
            r = repr(m)
            return r.split(",")[0] + ", ...)" if len(r) > 40 else r

        return (
            f"SkinDetector(skin={short(self._skin)}, nonskin={short(self._nonskin)}, "
            f"prior={self._prior!r})"
        )

    @property
    def skin(self):
        """The skin colour model."""
        return self._skin

    @property
    def nonskin(self):
        """The non-skin colour model."""
        return self._nonskin

    @property
    def prior(self):
        """Prior probability of skin, P(skin)."""
        return self._prior

    @property
    def log_prior_odds(self):
        """``log(prior / (1 - prior))``, added to the log ratio to get the log posterior odds."""
        return self._log_prior_odds

    def _method(self, image, method):
        if method != "auto" or self._skin.n_features > 3:
            return method
        # an array's own dtype: np.asarray would compute a whole dask array
        dtype = getattr(image, "dtype", None)
        if dtype is None:
            dtype = np.asarray(image).dtype
        return "table" if np.dtype(dtype) == np.uint8 else method

    def log_ratio(
        self, image, *, channel_axis=-1, channels=None, dtype=None, out=None, method="auto"
    ):
        return evaluate.log_ratio(
            image,
            self._skin,
            self._nonskin,
            channel_axis=channel_axis,
            channels=channels,
            dtype=dtype,
            out=out,
            method=self._method(image, method),
        )

    log_ratio.__doc__ = f"""Log likelihood ratio ``log p(x | skin) - log p(x | non-skin)`` per pixel.

    Parameters
    ----------
    image : array_like
        Pixels with channels along ``channel_axis``, any integer or float dtype.
    {_KEYWORDS}
    out : numpy.ndarray, optional
        Float array of the result's shape to write into.

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis. Positive where the colour
        is more likely under the skin model.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rgb = np.array([[200, 140, 110], [40, 90, 160]], np.uint8)
    >>> pixgmm.SkinDetector().log_ratio(rgb).round(2).tolist()
    [4.13, -31.95]
    """

    def probability(
        self, image, *, channel_axis=-1, channels=None, dtype=None, out=None, method="auto"
    ):
        if _xarray.is_dataarray(image):
            return _xarray.apply(
                self.probability, image, channel_axis=channel_axis, channels=channels,
                name="probability", dtype=dtype, out=out, method=method,
            )  # fmt: skip
        z = self.log_ratio(
            image,
            channel_axis=channel_axis,
            channels=channels,
            dtype=dtype,
            out=out,
            method=method,
        )
        if hasattr(z, "map_blocks") and not isinstance(z, np.ndarray):  # a dask array
            # never in place: the log-ratio block may be shared with another result
            # computed in the same graph (dask names equal computations alike)
            return z.map_blocks(_posterior_copy, self._log_prior_odds, dtype=z.dtype)
        if not z.flags.writeable:
            z = z.copy()
        return _posterior_inplace(z, self._log_prior_odds)

    probability.__doc__ = f"""Posterior probability P(skin | colour) per pixel.

    ``sigmoid(log_ratio + log(prior / (1 - prior)))``, computed without
    overflow and never as 0/0: it is exactly 1 (or 0) where the log ratio is
    +inf (or -inf), and NaN only at NaN pixels (or where both models give
    zero density, possible with unsmoothed histograms).

    Parameters
    ----------
    image : array_like
    {_KEYWORDS}
    out : numpy.ndarray, optional
        Float array of the result's shape to write into.

    Returns
    -------
    numpy.ndarray
        Values in [0, 1], the image's shape without the channel axis.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rgb = np.array([[200, 140, 110], [40, 90, 160]], np.uint8)
    >>> pixgmm.SkinDetector(prior=0.1).probability(rgb).round(3).tolist()
    [0.874, 0.0]
    """

    def mask(
        self,
        image,
        *,
        ratio=None,
        probability=None,
        log_ratio=None,
        channel_axis=-1,
        channels=None,
        dtype=None,
        method="auto",
    ):
        if _xarray.is_dataarray(image):
            return _xarray.apply(
                self.mask, image, channel_axis=channel_axis, channels=channels, name="mask",
                nodata=False, ratio=ratio, probability=probability, log_ratio=log_ratio,
                dtype=dtype, method=method,
            )  # fmt: skip
        log_threshold = self._log_threshold(ratio, probability, log_ratio)
        fast = self._table_mask(image, log_threshold, channel_axis, channels, dtype, method)
        if fast is not None:
            return fast
        lr = self.log_ratio(
            image, channel_axis=channel_axis, channels=channels, dtype=dtype, method=method
        )
        return lr >= lr.dtype.type(log_threshold)

    mask.__doc__ = f"""Boolean skin mask: True where the pixel is classified as skin.

    Parameters
    ----------
    image : array_like
    ratio : float, optional
        Likelihood-ratio threshold theta >= 0 (Jones & Rehg's convention):
        skin where ``p(x | skin) / p(x | non-skin) >= theta``. The prior does
        not enter. Use :meth:`threshold_for_fpr` to pick it from labelled pixels.
    probability : float, optional
        Posterior threshold q in [0, 1]: skin where ``P(skin | x) >= q``.
        Default (when no threshold is given): 0.5, the Bayes decision under
        the detector's ``prior``.
    log_ratio : float, optional
        The threshold in log space: skin where ``log_ratio(x) >= log_ratio``.
        Any float, also where ``exp(log_ratio)`` over- or underflows (fitted
        models can give log ratios in the thousands);
        ``threshold_for_fpr(..., log=True)`` returns one.
    {_KEYWORDS}

    Returns
    -------
    numpy.ndarray of bool
        The image's shape without the channel axis; False at NaN pixels.

    Raises
    ------
    ValueError
        More than one of ``ratio``, ``probability`` and ``log_ratio`` given,
        or a value out of range.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rgb = np.array([[200, 140, 110], [220, 190, 170], [40, 90, 160]], np.uint8)
    >>> detector = pixgmm.SkinDetector()
    >>> detector.log_ratio(rgb).round(2).tolist()
    [4.13, 0.44, -31.95]
    >>> detector.mask(rgb).tolist()  # posterior >= 0.5 with prior 0.5, i.e. ratio >= 1
    [True, True, False]
    >>> detector.mask(rgb, ratio=5.0).tolist()  # ratio >= 5: log ratio >= 1.61
    [True, False, False]
    >>> detector.mask(rgb, probability=0.7).tolist()
    [True, False, False]
    """

    def maps(
        self,
        image,
        maps=("probability", "mask"),
        *,
        ratio=None,
        probability=None,
        log_ratio=None,
        probability_dtype="float32",
        channel_axis=-1,
        channels=None,
    ):
        """Several maps of one image in one pass: log ratio, probability and mask.

        Each block of pixels is read once and every requested map is computed
        from it: for 8-bit colour images by one lookup per pixel in colour
        tables of the maps' final values (the probability already in
        ``probability_dtype``, the mask already thresholded), with no float64
        intermediate. On a Dask image one task per block computes all of them,
        so the maps share the reading of the image. The fast way to write
        several maps of a large image.

        Parameters
        ----------
        image : numpy.ndarray or dask.array.Array
            Pixels with channels along ``channel_axis``.
        maps : sequence of {"logratio", "probability", "mask"}
            The maps to compute.
        ratio, probability, log_ratio : float, optional
            The mask's threshold, as for :meth:`mask` (default: posterior >= 0.5).
        probability_dtype : {"float32", "uint16", "uint8"}
            How the probability is stored: float32, or packed as in
            :mod:`pixgmm.quantize` (``round(p * 254)`` in uint8 with 255 for no
            value; decode with :func:`pixgmm.quantize.decode` or the CF attributes
            of :func:`pixgmm.quantize.cf_attributes`).
        channel_axis, channels
            As for :meth:`log_ratio`.

        Returns
        -------
        dict
            ``{name: array}`` in the order of ``("logratio", "probability",
            "mask")``: the log ratio as float32, the probability in
            ``probability_dtype``, the mask as bool (False at NaN pixels); each
            of the image's shape without the channel axis, lazy for a Dask image.

        Examples
        --------
        >>> import numpy as np
        >>> import pixgmm
        >>> rgb = np.array([[200, 140, 110], [40, 90, 160]], np.uint8)
        >>> out = pixgmm.SkinDetector().maps(rgb, ("probability", "mask"), probability_dtype="uint8")
        >>> out["probability"].tolist(), out["mask"].tolist()
        ([250, 0], [True, False])
        """
        from . import _skinmaps, quantize

        names = _skinmaps.check_maps(maps)
        pdtype = quantize.check_dtype(probability_dtype)
        log_threshold = float(self._log_threshold(ratio, probability, log_ratio))
        if _xarray.is_dataarray(image):
            raise TypeError(
                "maps() takes NumPy and Dask arrays; for a DataArray call probability() and "
                "mask(), which keep its coordinates"
            )
        return _skinmaps.maps(self, image, names, log_threshold, pdtype, channel_axis, channels)

    def _table_mask(self, image, log_threshold, channel_axis, channels, dtype, method):
        """The mask through a cached boolean colour table, or None where it does not apply.

        The table is the float log-ratio colour table compared with the threshold,
        so the result is identical to thresholding :meth:`log_ratio`.
        """
        d = self._skin.n_features
        if (
            method not in ("auto", "table")
            or not isinstance(image, np.ndarray)
            or image.dtype != np.uint8
            or d > 3
        ):
            return None
        X, spatial = pixels_view(image, d, channel_axis)
        fdtype = np.dtype(np.float64 if dtype is None else dtype)
        key = (
            "skin-mask",
            self._skin._fingerprint,
            self._nonskin._fingerprint,
            normalize_channels(channels),
            X.shape[1],
            float(log_threshold),
            fdtype.str,
        )
        n = X.shape[0]
        if n < MASK_TABLE_MIN_PIXELS and _table.TABLES.get(key) is None:
            return None

        def build():
            lr = self.log_ratio(
                _table.all_colours(X.shape[1]), channels=channels, dtype=fdtype, method="table"
            )
            return lr >= lr.dtype.type(log_threshold)

        table = _table.cached(key, build)
        out = np.empty(spatial, dtype=bool)
        if n:
            _table.gather(X, table, out.reshape(-1))
        return out

    def _log_threshold(self, ratio, probability, log_ratio=None):
        given = [k for k, v in (("ratio", ratio), ("probability", probability),
                                ("log_ratio", log_ratio)) if v is not None]  # fmt: skip
        if len(given) > 1:
            raise ValueError(
                f"pass one threshold, not {' and '.join(f'{k}=' for k in given)} together "
                "(ratio= a likelihood ratio, log_ratio= its log, probability= a posterior)"
            )
        if log_ratio is not None:
            t = _as_real(log_ratio, "log_ratio")
            if math.isnan(t):
                raise ValueError("log_ratio must be a number or +-inf, got nan")
            return t
        if ratio is not None:
            theta = _as_real(ratio, "ratio", "a number >= 0")
            if not theta >= 0:
                raise ValueError(f"ratio must be a likelihood ratio >= 0, got {ratio!r}")
            return math.log(theta) if theta > 0 else -math.inf
        q = (
            0.5
            if probability is None
            else _check_probability(probability, "probability", closed=True)
        )
        return _logit(q) - self._log_prior_odds

    def threshold_for_fpr(
        self,
        pixels,
        labels,
        fpr,
        *,
        positive=None,
        log=False,
        channel_axis=-1,
        channels=None,
        dtype=None,
        method="auto",
    ):
        lr = self.log_ratio(
            pixels, channel_axis=channel_axis, channels=channels, dtype=dtype, method=method
        )
        if np.shape(labels) != lr.shape:
            raise ValueError(
                f"labels has shape {np.shape(labels)} but pixels has spatial shape {lr.shape} "
                f"(shape {np.shape(pixels)}, channel_axis={channel_axis}); pass one label per "
                "pixel, e.g. a mask of the image's height and width"
            )
        _, t = tpr_at_fpr(lr, labels, fpr, positive=positive)
        if log:
            return t
        # a ratio theta whose log lies in (next lower score, t]: mask(ratio=theta) then
        # selects exactly the pixels with log ratio >= t
        theta = _ratio_from_log(t)
        below = lr[lr < t]
        if below.size:
            log_theta = math.log(theta) if theta > 0 else -math.inf
            if not lr.dtype.type(log_theta) > below.max():
                raise ValueError(
                    f"the threshold's log ratio {t:.6g} has no float likelihood ratio that "
                    "separates the labelled pixels (exp over- or underflows); pass log=True "
                    "and use mask(log_ratio=...)"
                )
        return theta

    threshold_for_fpr.__doc__ = f"""The likelihood-ratio threshold for a target false-positive rate.

    Scores the labelled ``pixels`` and returns the smallest ratio theta whose
    false-positive rate on them is at most ``fpr``; pass it to
    :meth:`mask` as ``ratio=`` (or, with ``log=True``, its log as
    ``log_ratio=``). The true-positive rate it achieves is
    :func:`pixgmm.metrics.tpr_at_fpr` of :meth:`log_ratio` on the same pixels.

    Parameters
    ----------
    pixels : array_like
        Labelled pixels, e.g. (N, 3), or an image (H, W, 3).
    labels : array_like
        One label per pixel (the pixels' shape without the channel axis):
        bool or 0/1 with 1 = skin, or pass ``positive=`` the skin label
        (``positive=1`` for the UCI data, whose labels are 1 and 2).
    fpr : float
        Target false-positive rate in [0, 1].
    positive : scalar, optional
        The label of skin pixels when labels are not bool or 0/1.
    log : bool, default False
        Return the log-ratio threshold t instead, for ``mask(log_ratio=t)``;
        it is representable however large or small the ratio.
    {_KEYWORDS}

    Returns
    -------
    float
        theta >= 0 (``inf`` when even the highest-scoring colour exceeds the
        rate), or t with ``log=True``. ``mask(x, ratio=theta)`` on these
        pixels reproduces the rate.

    Raises
    ------
    ValueError
        Labels not binary, only one class present, labels whose shape is not
        the pixels' spatial shape, or NaN pixels; and, with ``log=False``, a
        threshold whose ratio over- or underflows a float (use ``log=True``).

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> rgb = np.array([[200, 140, 110], [230, 160, 150], [40, 90, 160], [180, 120, 90]], np.uint8)
    >>> labels = np.array([True, True, False, False])
    >>> detector = pixgmm.SkinDetector()
    >>> theta = detector.threshold_for_fpr(rgb, labels, fpr=0.0)
    >>> detector.mask(rgb, ratio=theta).tolist()
    [True, False, False, False]
    """


def _ratio_from_log(t):
    """The largest float theta with ``log(theta) <= t`` (exp(t) rounded down to be safe)."""
    if t == math.inf:
        return math.inf
    if t == -math.inf:
        return 0.0
    theta = math.exp(t) if t < 709.0 else math.inf
    if theta == math.inf:
        theta = np.finfo(np.float64).max
    while theta > 0.0 and math.log(theta) > t:
        theta = float(np.nextafter(theta, 0.0))
    return theta
