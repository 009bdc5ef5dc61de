"""Docstring fragments shared by the :class:`pixgmm.Classifier` methods."""

KEYWORDS = """channel_axis : int or None, default -1
        The axis holding the channels (as in :func:`pixgmm.log_density`).
    channels : str or sequence of str, optional
        The image's channel order, e.g. ``"BGR"``; models that name their
        channels are reordered to match.
    method : {"auto", "table", "separable", "direct"}
        Engine for each class's log-density (see :mod:`pixgmm.evaluate`)."""

PRIORS = """priors : array_like, optional
        Per-pixel priors, one band per class in the order of :attr:`labels`:
        the image's shape without its channel axis, plus the class axis
        ``prior_axis`` (a previous land-cover map, a terrain mask). They
        replace the classifier's priors at every pixel; each pixel's are
        divided by their sum (they need not sum to 1); a 0 forbids a class at
        that pixel, and a pixel whose priors are all 0 has no class (NaN maps,
        the ``fill`` label). NaN, infinite and negative values are errors.
        NumPy or Dask (rechunked to a Dask image's chunks); with an xarray
        image, a DataArray with the image's spatial dimensions.
    prior_axis : int or str, default -1
        The class axis of ``priors`` (a dimension name for a DataArray)."""

MAP_DTYPE = """dtype : {None, numpy.float32, numpy.float64}
        The dtype of the confidence, margin and entropy maps: float32 by
        default, float64 when asked (the one-pass kernel computes in float64
        either way; the per-class engines compute in float32 only when asked)."""

REJECT = """fill : scalar, optional
        Label for pixels that cannot be classified (a NaN value, zero density
        under every model, possible with unsmoothed histograms, or a zero
        per-pixel prior for every class). Without it such pixels are an error
        (for a dask image, raised when the result is computed).
    min_probability : float in (0, 1], optional
        Reject a pixel whose winning posterior (:meth:`confidence`) is below
        this.
    chi2_level : float in (0, 1), optional
        Reject a pixel that lies outside the ``chi2_level`` chi-square contour
        (D degrees of freedom) of every component of its winning class: its
        squared Mahalanobis distance to the nearest component
        (:func:`pixgmm.evaluate.min_mahalanobis`) exceeds the chi-square
        quantile, as GRASS ``i.maxlik``'s reject threshold for one-component
        classes. ``chi2_level=0.999`` rejects about 0.1% of a class's own
        pixels. Needs SciPy and Gaussian-mixture classes.
    reject : scalar, optional
        The label of rejected pixels; required with either option above."""

FAST = """The fast call is :meth:`classify` with every map needed at once: one pass
    over the pixels computes them all. When every class is a Gaussian mixture
    that the direct engine takes (anything but 8-bit colour; always with
    ``chi2_level``), one numba kernel scores every class per block of pixels
    and writes the maps and the reject decision; otherwise each class's
    engine scores a block and one kernel decides. On a NumPy image this runs
    through blocks of 2**18 pixels (memory beyond input and outputs stays
    bounded); on Dask, one task per block computes every map asked for, and
    maps asked of the same image with the same arguments in two calls share
    those tasks when computed together."""

_ONE_MAP = {
    "confidence": (
        "The winning class's posterior ``max_c P(c | x)`` at every pixel.",
        """The confidence map of remote-sensing classifiers (Orfeo ToolBox's
    ``-confmap``): 1 where one class explains the colour alone, ``1 / C`` where
    all C classes are equally likely.""",
        """>>> conf = clf.confidence(np.array([2.0, 0.0, np.nan]), channel_axis=None)
    >>> print(conf.round(4), conf.dtype)
    [0.5    0.9997    nan] float32""",
    ),
    "margin": (
        "The best posterior minus the second best at every pixel.",
        """``max_c P(c | x) - second_c P(c | x)``, from 0 (two classes tie for the
    lead) to 1 (one class takes all): the uncertainty of a label map as the
    two contenders see it. With one class: its posterior, 1.""",
        """>>> print(clf.margin(np.array([2.0, 1.5, 0.0, np.nan]), channel_axis=None).round(4))
    [0.     0.7616 0.9993    nan]""",
    ),
    "entropy": (
        "The entropy of the posterior over the classes at every pixel, in nats.",
        """``H = -sum_c P(c | x) log P(c | x)`` with the natural logarithm: 0 where
    one class takes all, ``log C`` (its maximum) where all C classes are
    equally likely; divide by ``log(2)`` for bits or by ``log(C)`` for a 0..1
    scale.""",
        """>>> h = clf.entropy(np.array([2.0, 40.0]), channel_axis=None)
    >>> print(h.round(4), round(float(np.log(2)), 4))
    [0.6931 0.    ] 0.6931""",
    ),
}


def one_map(name):
    """The docstring of :meth:`pixgmm.Classifier.confidence`, ``margin`` or ``entropy``."""
    title, text, example = _ONE_MAP[name]
    return f"""{title}

    {text}

    The same as ``classify(image, ("{name}",))["{name}"]``; ask :meth:`classify`
    for several maps in one pass.

    Parameters
    ----------
    image : array_like, dask.array.Array or xarray.DataArray
    {KEYWORDS}
    {MAP_DTYPE}
    {PRIORS}

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        The image's shape without the channel axis; NaN where no class is
        defined (a NaN or nodata pixel, zero density or a zero prior under
        every class).

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> clf = pixgmm.Classifier({{0: a, 1: b}})
    {example}
    """
