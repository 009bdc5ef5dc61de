"""The Classifier: Bayes classification of every pixel among classes, one model per class."""

from __future__ import annotations

import types
from collections.abc import Mapping

import numpy as np

from .. import _xarray
from .._validation import check_bool, is_dask_array
from . import _call, _checks, _docs, _posterior, _separability
from ._docs import FAST, KEYWORDS, MAP_DTYPE, PRIORS, REJECT

__all__ = ["Classifier"]


class Classifier:
    """Bayes classification of every pixel among classes, one colour model per class.

    Parameters
    ----------
    models : mapping of label to model
        ``{label: model}``; a model is a :class:`~pixgmm.Mixture`, a
        :class:`~pixgmm.HistogramModel` or anything :func:`pixgmm.as_mixture`
        accepts. Labels may be ints, strings or any hashable; :meth:`predict`
        returns ``numpy.asarray(list(models))[index]`` (integer labels in the
        smallest integer dtype that holds them).
    priors : mapping of label to float, sequence of float or "counts", optional
        Prior probability of each class (positive; divided by their sum).
        Default: equal priors, i.e. maximum-likelihood classification.
        ``"counts"``: proportional to each class's training-pixel count
        (``FitResult.n_samples``, ``HistogramModel.n_samples``, or
        ``Mixture.training["n_pixels"]`` of a file written by ``pixgmm fit``).
        Per-pixel priors are given to each call instead (``priors=`` of
        :meth:`classify` and the other methods).

    Raises
    ------
    ValueError
        No classes, models with different numbers of features, priors that
        are not positive or whose keys differ from the classes.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> water = pixgmm.Mixture([1.0], [[20.0, 10.0]], [[25.0, 25.0]], "diag", channels=["nir", "red"])
    >>> crops = pixgmm.Mixture([1.0], [[120.0, 40.0]], [[400.0, 100.0]], "diag", channels=["nir", "red"])
    >>> clf = pixgmm.Classifier({"water": water, "crops": crops}, priors={"water": 0.2, "crops": 0.8})
    >>> img = np.array([[[22, 12], [110, 35]]], np.uint8)  # (H, W, [nir, red])
    >>> clf.predict(img).tolist()
    [['water', 'crops']]
    >>> clf.probability(img).round(3).tolist()
    [[[1.0, 0.0], [0.0, 1.0]]]
    """

    __slots__ = ("_labels", "_log_priors", "_models", "_priors")

    def __init__(self, models, priors=None):
        if not isinstance(models, Mapping):
            raise TypeError(f"models must be a dict {{label: model}}, got {type(models).__name__}")
        if len(models) == 0:
            raise ValueError("models is empty; pass at least one {label: model}")
        labels = tuple(models)
        if isinstance(priors, str):
            if priors != "counts":
                raise ValueError(f"priors must be 'counts', a dict or a sequence, got {priors!r}")
            priors = {lab: _checks.training_count(m, lab) for lab, m in models.items()}
        checked = {
            lab: _checks.check_model(
                m.mixture if _checks.is_fit_result(m) else m, f"models[{lab!r}]"
            )
            for lab, m in models.items()
        }
        d = checked[labels[0]].n_features
        for lab in labels[1:]:
            if checked[lab].n_features != d:
                raise ValueError(
                    f"models[{labels[0]!r}] has {d} features but models[{lab!r}] has "
                    f"{checked[lab].n_features}; every class must describe the same channels"
                )
        p = _checks.class_priors(priors, labels)
        self._labels = labels
        self._models = types.MappingProxyType(checked)
        self._priors = p
        self._log_priors = np.log(p)

    def __repr__(self):
        return f"Classifier(labels={list(self._labels)!r}, priors={self._priors.round(4).tolist()})"

    @property
    def labels(self):
        """The class labels, in the order of the class axis."""
        return self._labels

    @property
    def models(self):
        """Read-only mapping ``{label: model}``."""
        return self._models

    @property
    def priors(self):
        """Class priors (summing to 1), in the order of :attr:`labels`."""
        return self._priors.copy()

    # -- the posterior of every class ------------------------------------------------------

    def _posterior(self, func, name, image, channel_axis, channels, dtype, method, priors,
                   prior_axis):  # fmt: skip
        if _xarray.is_dataarray(image):
            data, axis, channels, dim = _xarray.unwrap(image, channel_axis, channels)
            priors, prior_axis = _checks.xarray_priors(image, dim, priors, prior_axis)
            result = self._posterior(
                func, name, data, axis, channels, dtype, method, priors, prior_axis
            )
            return _xarray.wrap(
                result, image, dim, name=name, extra_dim="class", extra_coords=list(self._labels)
            )
        s = _posterior.scores(self._models, self._labels, self._log_priors, image, channel_axis,
                              channels, dtype, method, priors, prior_axis)  # fmt: skip
        if is_dask_array(s):
            return s.map_blocks(_posterior.copied, func, dtype=s.dtype)
        return func(s)

    def log_posterior(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
                      priors=None, prior_axis=-1):  # fmt: skip
        return self._posterior(
            _posterior.log_posterior_block, "log_posterior", image, channel_axis, channels,
            dtype, method, priors, prior_axis,
        )  # fmt: skip

    log_posterior.__doc__ = f"""Log posterior ``log P(class | x)`` of every class at every pixel.

    Parameters
    ----------
    image : array_like
        Pixels with channels along ``channel_axis``.
    {KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}
        Output dtype (the rule of :func:`pixgmm.log_density`).
    {PRIORS}

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis plus a trailing class axis
        in the order of :attr:`labels`. Normalised in log space (log-sum-exp),
        so it is exact far from every model. NaN where no class is defined: a
        NaN pixel, or zero density (or a zero prior) under every class.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> clf = pixgmm.Classifier({{0: a, 1: b}})
    >>> clf.log_posterior(np.array([2.0, 1000.0]), channel_axis=None).round(3).tolist()
    [[-0.693, -0.693], [-3992.0, 0.0]]
    """

    def probability(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
                    priors=None, prior_axis=-1):  # fmt: skip
        return self._posterior(
            _posterior.probability_block, "probability", image, channel_axis, channels, dtype,
            method, priors, prior_axis,
        )  # fmt: skip

    probability.__doc__ = f"""Posterior probability ``P(class | x)`` of every class at every pixel.

    Parameters
    ----------
    image : array_like
    {KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}
    {PRIORS}

    Returns
    -------
    numpy.ndarray
        As :meth:`log_posterior`, exponentiated; each pixel's values sum to 1.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> pixgmm.Classifier({{0: a, 1: b}}, priors=[3, 1]).probability(
    ...     np.array([2.0]), channel_axis=None).round(12).tolist()
    [[0.75, 0.25]]
    >>> pixgmm.Classifier({{0: a, 1: b}}).probability(  # per-pixel priors: 3:1, then 0:1
    ...     np.array([2.0, 2.0]), channel_axis=None, priors=[[3, 1], [0, 5]]).round(12).tolist()
    [[0.75, 0.25], [0.0, 1.0]]
    """

    # -- the per-pixel maps, in one pass ---------------------------------------------------

    def classify(self, image, outputs=("labels", "confidence"), *, channel_axis=-1,
                 channels=None, dtype=None, method="auto", priors=None, prior_axis=-1,
                 fill=None, min_probability=None, chi2_level=None, reject=None):  # fmt: skip
        outputs = _checks.check_outputs(outputs)
        options = {
            "dtype": dtype, "method": method, "fill": fill, "min_probability": min_probability,
            "chi2_level": chi2_level, "reject": reject,
        }  # fmt: skip
        if not _xarray.is_dataarray(image):
            return self._maps(image, outputs, channel_axis, channels, priors, prior_axis, **options)
        data, axis, channels, dim = _xarray.unwrap(image, channel_axis, channels)
        nodata = _xarray.nodata_value(image)
        if "labels" in outputs and fill is None and nodata is not None:
            raise ValueError(
                f"image has the nodata value {nodata!r}; its pixels cannot be classified: "
                "pass fill= a label for them, e.g. fill=-1"
            )
        priors, prior_axis = _checks.xarray_priors(image, dim, priors, prior_axis)
        maps = self._maps(data, outputs, axis, channels, priors, prior_axis, **options)
        return {
            name: _xarray.wrap(
                value, image, dim, name="class" if name == "labels" else name,
                fill=fill if name == "labels" else np.nan,
            )
            for name, value in maps.items()
        }  # fmt: skip

    classify.__doc__ = f"""Several per-pixel maps of the classification, from one pass.

    {FAST}

    Parameters
    ----------
    image : array_like, dask.array.Array or xarray.DataArray
        Pixels with channels along ``channel_axis``.
    outputs : str or sequence of str, default ("labels", "confidence")
        The maps to compute, any of:

        ``"labels"``
            The winning class's label (:meth:`predict`), with the reject
            options and ``fill`` below.
        ``"confidence"``
            The winning posterior ``max_c P(c | x)`` (:meth:`confidence`).
        ``"margin"``
            The winning posterior minus the second best (:meth:`margin`).
        ``"entropy"``
            ``-sum_c P(c | x) log P(c | x)`` in nats (:meth:`entropy`).
    {KEYWORDS}
    {MAP_DTYPE}
    {PRIORS}
    {REJECT}

    Returns
    -------
    dict
        ``{{name: map}}`` in the order of ``outputs``; each map has the image's
        shape without the channel axis (NumPy, Dask or xarray like the image).
        Labels have the dtype of :meth:`predict`; the float maps are NaN where
        no class is defined (and are not changed by the reject options).

    Raises
    ------
    ValueError
        Unclassifiable pixels and no ``fill`` (with ``"labels"``); a reject
        option without ``reject``; per-pixel priors of the wrong shape.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> clf = pixgmm.Classifier({{1: a, 2: b}})
    >>> maps = clf.classify(np.array([0.5, 2.0, 30.0]), ("labels", "margin", "entropy"),
    ...                     channel_axis=None, chi2_level=0.999, reject=0)
    >>> maps["labels"].tolist(), maps["labels"].dtype
    ([1, 1, 0], dtype('uint8'))
    >>> print(maps["margin"].round(3), maps["entropy"].round(3))  # float32 maps
    [0.995 0.    1.   ] [0.017 0.693 0.   ]
    """

    def predict(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
                fill=None, min_probability=None, chi2_level=None, reject=None,
                return_confidence=False, priors=None, prior_axis=-1):  # fmt: skip
        both = check_bool(return_confidence, "return_confidence")
        maps = self.classify(
            image, ("labels", "confidence") if both else ("labels",), channel_axis=channel_axis,
            channels=channels, dtype=dtype, method=method, priors=priors, prior_axis=prior_axis,
            fill=fill, min_probability=min_probability, chi2_level=chi2_level, reject=reject,
        )  # fmt: skip
        return (maps["labels"], maps["confidence"]) if both else maps["labels"]

    predict.__doc__ = f"""The most probable class at every pixel, as a label map.

    ``classify(image, ("labels",), ...)["labels"]``; with ``return_confidence``
    the confidence map too, from the same pass. Ask :meth:`classify` for the
    margin and entropy maps in that pass.

    Parameters
    ----------
    image : array_like
    {KEYWORDS}
    {MAP_DTYPE}
    {REJECT}
    return_confidence : bool, default False
        Also return the confidence map (:meth:`confidence`), computed in the
        same pass: ``(labels, confidence)``.
    {PRIORS}

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        The image's shape without the channel axis, holding labels:
        ``numpy.asarray(labels)[argmax]``, in the smallest integer dtype that
        holds every label, ``fill`` and ``reject`` when they are all integers
        (unsigned when none is negative), else NumPy's (a string array for
        string labels). Ties go to the class listed first. An xarray image
        gives a DataArray named ``"class"``; its nodata pixels get ``fill``.

    Raises
    ------
    ValueError
        Unclassifiable pixels and no ``fill``; a reject option without
        ``reject``.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> clf = pixgmm.Classifier({{10: a, 20: b}})
    >>> clf.predict(np.array([0.5, 3.5, np.nan]), channel_axis=None, fill=-1).tolist()
    [10, 20, -1]
    >>> x = np.array([0.5, 2.0, 3.5, 30.0])  # 2.0: a tie; 30.0: far from both classes
    >>> clf.predict(x, channel_axis=None, min_probability=0.9, reject=0).tolist()
    [10, 0, 20, 20]
    >>> clf.predict(x, channel_axis=None, chi2_level=0.999, reject=0).tolist()
    [10, 10, 20, 0]
    >>> clf.predict(x, channel_axis=None, priors=[[1, 1], [1, 3], [1, 0], [1, 1]]).tolist()
    [10, 20, 10, 20]
    """

    def confidence(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
                   priors=None, prior_axis=-1):  # fmt: skip
        return self._one_map("confidence", image, channel_axis, channels, dtype, method, priors,
                             prior_axis)  # fmt: skip

    confidence.__doc__ = _docs.one_map("confidence")

    def margin(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
               priors=None, prior_axis=-1):  # fmt: skip
        return self._one_map("margin", image, channel_axis, channels, dtype, method, priors,
                             prior_axis)  # fmt: skip

    margin.__doc__ = _docs.one_map("margin")

    def entropy(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto",
                priors=None, prior_axis=-1):  # fmt: skip
        return self._one_map("entropy", image, channel_axis, channels, dtype, method, priors,
                             prior_axis)  # fmt: skip

    entropy.__doc__ = _docs.one_map("entropy")

    def _one_map(self, name, image, channel_axis, channels, dtype, method, priors, prior_axis):
        return self.classify(
            image, (name,), channel_axis=channel_axis, channels=channels, dtype=dtype,
            method=method, priors=priors, prior_axis=prior_axis,
        )[name]  # fmt: skip

    def _maps(self, image, outputs, channel_axis, channels, priors, prior_axis, **options):
        """:meth:`classify` on NumPy or Dask data."""
        return _call.maps(self._models, self._labels, self._log_priors, image, outputs,
                          channel_axis, channels, priors, prior_axis, **options)  # fmt: skip

    # -- before classifying ----------------------------------------------------------------

    def separability(self, metric="jeffries-matusita"):
        """Pairwise separability of the classes: the check to run before classifying.

        Each class is summarised by one Gaussian with its mixture's mean and
        covariance (exact for one-component classes; a moment-matched summary
        for mixtures, which can hide overlap between their components).

        Parameters
        ----------
        metric : {"jeffries-matusita", "bhattacharyya"}
            Bhattacharyya distance ``B = (m1 - m2)^T S^-1 (m1 - m2) / 8 +
            log(det S / sqrt(det S1 det S2)) / 2`` with ``S = (S1 + S2) / 2``, or
            the Jeffries-Matusita distance ``2 (1 - exp(-B))``, from 0 (the same
            distribution) to 2 (fully separable). Pairs below about 1.9 are
            often confused.

        Returns
        -------
        numpy.ndarray
            (C, C) symmetric, zero diagonal, rows and columns in the order of
            :attr:`labels`.

        Examples
        --------
        >>> import pixgmm
        >>> a = pixgmm.Mixture([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
        >>> b = pixgmm.Mixture([1.0], [[4.0, 0.0]], [[1.0, 1.0]], "diag")
        >>> pixgmm.Classifier({"a": a, "b": b}).separability("bhattacharyya").round(3).tolist()
        [[0.0, 2.0], [2.0, 0.0]]
        """
        return _separability.separability(self._models, self._labels, metric)

    def summary(self):
        """A dict describing the classes: labels, priors, components, separability.

        ``"jeffries_matusita"`` holds the matrix of :meth:`separability` and
        ``"least_separable"`` the pair with the smallest value (both None when a
        class is a HistogramModel or there is one class).

        Examples
        --------
        >>> import pixgmm
        >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
        >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
        >>> s = pixgmm.Classifier({"a": a, "b": b}).summary()
        >>> s["least_separable"]["pair"], round(s["least_separable"]["jeffries_matusita"], 3)
        (('a', 'b'), 1.729)
        """
        return _separability.summary(self._models, self._labels, self._priors)
