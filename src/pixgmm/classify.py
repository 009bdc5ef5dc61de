"""Per-pixel Bayes classification with one colour model per class."""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence

import numpy as np

from . import evaluate
from ._validation import is_dask_array as _is_dask_array
from .histogram import HistogramModel
from .mixture import as_mixture

__all__ = ["Classifier"]

_KEYWORDS = """channel_axis : int or None, default -1
        The axis holding the channels (as in :func:`pixgmm.log_density`).
    channels : str or sequence of str, optional
        The image's channel order, e.g. ``"BGR"``; models that name their
        channels are reordered to match.
    method : {"auto", "table", "separable", "direct"}
        Engine for each class's log-density (see :mod:`pixgmm.evaluate`)."""


def _log_posterior_block(s):
    """Normalise per-class scores (trailing axis) in log space, in place; NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s.max(axis=-1, keepdims=True)
        finite = np.isfinite(m)
        shift = np.where(finite, m, 0)
        lse = np.log(np.exp(s - shift).sum(axis=-1, keepdims=True)) + shift
        s -= lse
    s[~np.broadcast_to(finite, s.shape)] = np.nan
    return s


def _probability_block(s):
    return np.exp(_log_posterior_block(s), out=s)


def _predict_block(s, labels, fill):
    """Label of the best-scoring class per pixel; ``fill`` (or an error) where none is defined."""
    with np.errstate(invalid="ignore"):
        best = s.max(axis=-1)
        bad = ~(best > -math.inf)
    index = np.argmax(s, axis=-1)
    labels = list(labels)
    if bad.any():
        if fill is None:
            raise ValueError(
                f"{int(bad.sum())} pixel(s) cannot be classified (a NaN value, or zero "
                "density under every model); pass fill= a label for them, e.g. fill=-1"
            )
        index[bad] = len(labels)
        labels.append(fill)
    return np.asarray(labels)[index]


def _copied(s, func):
    """``func`` on a copy: a dask block may be shared with another result of the same graph."""
    return func(np.array(s, copy=True))


def _predict_dask_block(s, labels, fill, dtype):
    return _predict_block(s, labels, fill).astype(dtype, copy=False)


def _label_dtype(labels, fill):
    """The dtype :func:`_predict_block` returns, known before any block is computed."""
    labels = list(labels) + ([] if fill is None else [fill])
    return np.asarray(labels).dtype


def _check_model(model, name):
    if isinstance(model, HistogramModel):
        return model
    return as_mixture(model, name)


def _check_priors(priors, labels):
    n = len(labels)
    if priors is None:
        return np.full(n, 1.0 / n)
    if isinstance(priors, Mapping):
        keys = set(priors)
        if keys != set(labels):
            missing = [lab for lab in labels if lab not in keys]
            extra = [k for k in priors if k not in set(labels)]
            raise ValueError(
                "priors must have exactly the classes of models as keys"
                + (f"; missing {missing}" if missing else "")
                + (f"; unknown {extra}" if extra else "")
            )
        values = [priors[lab] for lab in labels]
    elif isinstance(priors, Sequence) or isinstance(priors, np.ndarray):
        values = list(np.asarray(priors).reshape(-1)) if np.ndim(priors) else [priors]
        if len(values) != n:
            raise ValueError(
                f"priors has {len(values)} value(s) but there are {n} classes; pass one per "
                "class, in the order of models, or a dict {label: prior}"
            )
    else:
        raise TypeError(
            f"priors must be None, a dict {{label: prior}} or a sequence, got {type(priors).__name__}"
        )
    try:
        p = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"priors must be numbers, got {values!r}") from None
    bad = ~(np.isfinite(p) & (p > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"priors must be finite and positive; the prior of class {labels[i]!r} is {p[i]}"
        )
    return p / p.sum()


class Classifier:
    """Bayes classification of every pixel among classes, one colour model per class.

    Parameters
    ----------
    models : mapping of label to model
        ``{label: model}``; a model is a :class:`~pixgmm.Mixture`, a
        :class:`~pixgmm.HistogramModel` or anything :func:`pixgmm.as_mixture`
        accepts. Labels may be ints, strings or any hashable; :meth:`predict`
        returns ``numpy.asarray(list(models))[index]``.
    priors : mapping of label to float, or sequence of float, optional
        Prior probability of each class (positive; divided by their sum).
        Default: equal priors, i.e. maximum-likelihood classification.

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
        checked = {lab: _check_model(m, f"models[{lab!r}]") for lab, m in models.items()}
        d = checked[labels[0]].n_features
        for lab in labels[1:]:
            if checked[lab].n_features != d:
                raise ValueError(
                    f"models[{labels[0]!r}] has {d} features but models[{lab!r}] has "
                    f"{checked[lab].n_features}; every class must describe the same channels"
                )
        p = _check_priors(priors, labels)
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

    def _scores(self, image, channel_axis, channels, dtype, method):
        """Per-class ``log p(x | class) + log prior``, stacked on a trailing axis.

        For a dask image the result is a dask array whose class axis is one chunk,
        so every block holds all classes of its pixels.
        """
        cols = [
            evaluate.log_density(
                image,
                self._models[lab],
                channel_axis=channel_axis,
                channels=channels,
                dtype=dtype,
                method=method,
            )
            for lab in self._labels
        ]
        if _is_dask_array(cols[0]):
            import dask.array as da

            scores = da.stack(cols, axis=-1).rechunk({-1: -1})
            return scores + self._log_priors.astype(scores.dtype)
        scores = np.stack(cols, axis=-1)
        scores += self._log_priors.astype(scores.dtype)
        return scores

    def log_posterior(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto"):
        s = self._scores(image, channel_axis, channels, dtype, method)
        if _is_dask_array(s):
            return s.map_blocks(_copied, _log_posterior_block, dtype=s.dtype)
        return _log_posterior_block(s)

    log_posterior.__doc__ = f"""Log posterior ``log P(class | x)`` of every class at every pixel.

    Parameters
    ----------
    image : array_like
        Pixels with channels along ``channel_axis``.
    {_KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}
        Output dtype (the rule of :func:`pixgmm.log_density`).

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis plus a trailing class axis
        in the order of :attr:`labels`. Normalised in log space (log-sum-exp),
        so it is exact far from every model. NaN where no class is defined: a
        NaN pixel, or zero density under every model.

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

    def probability(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto"):
        s = self._scores(image, channel_axis, channels, dtype, method)
        if _is_dask_array(s):
            return s.map_blocks(_copied, _probability_block, dtype=s.dtype)
        return _probability_block(s)

    probability.__doc__ = f"""Posterior probability ``P(class | x)`` of every class at every pixel.

    Parameters
    ----------
    image : array_like
    {_KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}

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
    """

    def predict(
        self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto", fill=None
    ):
        s = self._scores(image, channel_axis, channels, dtype, method)
        if _is_dask_array(s):
            # every block must give the same dtype, so it is fixed by the labels and fill
            dt = _label_dtype(self._labels, fill)
            return s.map_blocks(
                _predict_dask_block, self._labels, fill, dt, drop_axis=s.ndim - 1, dtype=dt
            )
        return _predict_block(s, self._labels, fill)

    predict.__doc__ = f"""The most probable class at every pixel, as a label map.

    Parameters
    ----------
    image : array_like
    {_KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}
        Precision of the log-densities compared.
    fill : scalar, optional
        Label for pixels that cannot be classified (a NaN value, or zero
        density under every model, possible with unsmoothed histograms).
        Without it such pixels are an error (for a dask image, raised when
        the result is computed).

    Returns
    -------
    numpy.ndarray or dask.array.Array
        The image's shape without the channel axis, holding labels:
        ``numpy.asarray(labels)[argmax]`` (an int array for int labels, a
        string array for string labels). Ties go to the class listed first.

    Raises
    ------
    ValueError
        Unclassifiable pixels and no ``fill``.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> clf = pixgmm.Classifier({{10: a, 20: b}})
    >>> clf.predict(np.array([0.5, 3.5, np.nan]), channel_axis=None, fill=-1).tolist()
    [10, 20, -1]
    """
