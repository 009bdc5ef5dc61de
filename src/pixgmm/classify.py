"""Per-pixel Bayes classification with one colour model per class."""

from __future__ import annotations

import types
from collections.abc import Mapping, Sequence

import numpy as np

from . import _xarray, evaluate
from ._engine import direct as _direct
from ._engine.params import params as _params
from ._validation import check_bool, normalize_channel_axis, pixels_view, resolve_dtype
from ._validation import is_dask_array as _is_dask_array
from .histogram import HistogramModel
from .mixture import Mixture, as_mixture

__all__ = ["Classifier"]

_LOG_DENSITY = evaluate.log_density  # what explain() is asked about

#: Pixels per block when :meth:`Classifier.predict` and ``confidence`` run on a NumPy image.
DECIDE_BLOCK = 1 << 18

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


def _best(s):
    """``(index, confidence)`` of per-class scores ``s`` (..., C): the winning column (-1
    where no class is defined) and its softmax share (NaN there)."""
    flat = np.ascontiguousarray(s.reshape(-1, s.shape[-1]), dtype=np.float64)
    index = np.empty(flat.shape[0], dtype=np.intp)
    confidence = np.empty(flat.shape[0], dtype=s.dtype)
    if flat.shape[0]:
        _direct.best_of_scores(flat, index, confidence, _direct.n_tasks(flat.shape[0]))
    return index.reshape(s.shape[:-1]), confidence.reshape(s.shape[:-1])


def _decide_block(s, d2, labels, fill, min_probability, chi2_max, reject, want):
    """Labels (or the winning posterior) from per-class scores ``s`` (..., C).

    See :func:`_finish` for the arguments.
    """
    index, confidence = _best(s)
    return _finish(index, confidence, d2, labels, fill, min_probability, chi2_max, reject, want)


def _finish(index, confidence, d2, labels, fill, min_probability, chi2_max, reject, want):
    """Labels (or the winning posterior) from the winning class index and its posterior.

    ``d2`` (..., C) holds each class's squared Mahalanobis distance to its nearest
    component (only with ``chi2_max``). A pixel whose winning posterior is below
    ``min_probability``, or whose distance to its class exceeds ``chi2_max``, gets
    ``reject``; a pixel with no defined class (index -1) gets ``fill`` (or is an error).
    ``want`` is "labels", "confidence" or "both" (a tuple).
    """
    bad = index < 0
    if want == "confidence":
        return confidence
    labels = list(labels)
    if bad.any():
        if fill is None:
            raise ValueError(
                f"{int(bad.sum())} pixel(s) cannot be classified (a NaN value, a nodata "
                "value, or zero density under every model); pass fill= a label for them, "
                "e.g. fill=-1"
            )
        index[bad] = len(labels)
        labels.append(fill)
    rejected = np.zeros(index.shape, dtype=bool)
    if min_probability is not None:
        rejected |= confidence < min_probability
    if chi2_max is not None:
        winner = np.minimum(index, d2.shape[-1] - 1)[..., None]
        rejected |= np.take_along_axis(d2, winner, -1)[..., 0] > chi2_max
    rejected &= ~bad
    if rejected.any():
        index[rejected] = len(labels)
        labels.append(reject)
    if want == "both":
        return np.asarray(labels)[index], confidence
    return np.asarray(labels)[index]


def _decide_dask_block(s, d2, labels, fill, min_probability, chi2_max, reject, want, dtype):
    out = _decide_block(s, d2, labels, fill, min_probability, chi2_max, reject, want)
    return out.astype(dtype, copy=False)


def _best_block(block, means, prec, coef, full, starts, log_priors):
    """One dask block (..., D) -> (..., 2): the winning class index and its posterior."""
    X, spatial = pixels_view(block, means.shape[1], -1)
    index = np.empty(X.shape[0], dtype=np.intp)
    confidence = np.empty(X.shape[0])
    if X.shape[0]:
        _direct.best_class(
            X, means, prec, coef, full, starts, log_priors, index, confidence,
            _direct.n_tasks(X.shape[0]),
        )  # fmt: skip
    out = np.empty((*spatial, 2))
    out[..., 0] = index.reshape(spatial)
    out[..., 1] = confidence.reshape(spatial)
    return out


def _finish_packed(best, labels, fill, min_probability, chi2_max, reject, odt, dtype):
    """Labels of one block of :meth:`Classifier._best_dask`'s output."""
    index = best[..., 0].astype(np.intp)
    confidence = best[..., 1].astype(odt)
    out = _finish(
        index, confidence, None, labels, fill, min_probability, chi2_max, reject, "labels"
    )
    return out.astype(dtype, copy=False)


def _copied(s, func):
    """``func`` on a copy: a dask block may be shared with another result of the same graph."""
    return func(np.array(s, copy=True))


def _stack(cols):
    """Per-class maps stacked on a trailing class axis (one chunk for a dask array)."""
    if _is_dask_array(cols[0]):
        import dask.array as da

        return da.stack(cols, axis=-1).rechunk({-1: -1})
    return np.stack(cols, axis=-1)


def _check_unit(value, name, *, open_low=False):
    """A probability in (0, 1) (``open_low``: (0, 1])."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number between 0 and 1, got {value!r}")
    value = float(value)
    ok = 0.0 < value <= 1.0 if open_low else 0.0 < value < 1.0
    if not ok:
        bounds = "0 < {} <= 1" if open_low else "0 < {} < 1"
        raise ValueError(f"{name} must satisfy {bounds.format(name)}, got {value}")
    return value


def _label_dtype(labels, *extra):
    """The dtype :func:`_decide_block` returns, known before any block is computed."""
    labels = list(labels) + [v for v in extra if v is not None]
    return np.asarray(labels).dtype


def _check_model(model, name):
    if isinstance(model, HistogramModel):
        return model
    return as_mixture(model, name)


def _is_fit_result(value):
    return type(value).__name__ == "FitResult" and hasattr(value, "mixture")


def _training_count(model, label):
    """The number of training pixels a model records (``priors="counts"``)."""
    if _is_fit_result(model) or isinstance(model, HistogramModel):
        return model.n_samples
    training = model.training if isinstance(model, Mixture) else None
    if training is not None:
        return training["n_pixels"]
    raise TypeError(
        f"priors='counts' needs each class's training-pixel count, which models[{label!r}] "
        f"({type(model).__name__}) does not record; pass fit results "
        "(pixgmm.fitting.fit_classes_em), HistogramModels, mixtures that record it "
        "(Mixture.training: files written by pixgmm fit, or Mixture.with_training), or "
        "priors={label: count}"
    )


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
    priors : mapping of label to float, sequence of float or "counts", optional
        Prior probability of each class (positive; divided by their sum).
        Default: equal priors, i.e. maximum-likelihood classification.
        ``"counts"``: proportional to each class's training-pixel count
        (``FitResult.n_samples``, ``HistogramModel.n_samples``, or
        ``Mixture.training["n_pixels"]`` of a file written by ``pixgmm fit``).

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
            priors = {lab: _training_count(m, lab) for lab, m in models.items()}
        checked = {
            lab: _check_model(m.mixture if _is_fit_result(m) else m, f"models[{lab!r}]")
            for lab, m in models.items()
        }
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
        scores = _stack(cols)
        if _is_dask_array(scores):
            return scores + self._log_priors.astype(scores.dtype)
        scores += self._log_priors.astype(scores.dtype)
        return scores

    def log_posterior(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto"):
        if _xarray.is_dataarray(image):
            return _xarray.apply(
                self.log_posterior, image, channel_axis=channel_axis, channels=channels,
                name="log_posterior", extra=("class", list(self._labels)), dtype=dtype,
                method=method,
            )  # fmt: skip
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
        if _xarray.is_dataarray(image):
            return _xarray.apply(
                self.probability, image, channel_axis=channel_axis, channels=channels,
                name="probability", extra=("class", list(self._labels)), dtype=dtype,
                method=method,
            )  # fmt: skip
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
        self,
        image,
        *,
        channel_axis=-1,
        channels=None,
        dtype=None,
        method="auto",
        fill=None,
        min_probability=None,
        chi2_level=None,
        reject=None,
        return_confidence=False,
    ):
        want = "both" if check_bool(return_confidence, "return_confidence") else "labels"
        if _xarray.is_dataarray(image):
            if want == "both":
                labels = self.predict(
                    image, channel_axis=channel_axis, channels=channels, dtype=dtype,
                    method=method, fill=fill, min_probability=min_probability,
                    chi2_level=chi2_level, reject=reject,
                )  # fmt: skip
                conf = self.confidence(
                    image, channel_axis=channel_axis, channels=channels, dtype=dtype,
                    method=method,
                )  # fmt: skip
                return labels, conf
            nodata = _xarray.nodata_value(image)
            if fill is None and nodata is not None:
                raise ValueError(
                    f"image has the nodata value {nodata!r}; its pixels cannot be classified: "
                    "pass fill= a label for them, e.g. fill=-1"
                )
            return _xarray.apply(
                self.predict, image, channel_axis=channel_axis, channels=channels,
                name="class", nodata=fill, dtype=dtype, method=method, fill=fill,
                min_probability=min_probability, chi2_level=chi2_level, reject=reject,
            )  # fmt: skip
        return self._decide(
            want, image, channel_axis, channels, dtype, method, fill, min_probability,
            chi2_level, reject,
        )  # fmt: skip

    def confidence(self, image, *, channel_axis=-1, channels=None, dtype=None, method="auto"):
        if _xarray.is_dataarray(image):
            return _xarray.apply(
                self.confidence, image, channel_axis=channel_axis, channels=channels,
                name="confidence", dtype=dtype, method=method,
            )  # fmt: skip
        return self._decide(
            "confidence", image, channel_axis, channels, dtype, method, None, None, None, None
        )

    confidence.__doc__ = f"""The winning class's posterior ``max_c P(c | x)`` at every pixel.

    The confidence map of remote-sensing classifiers (Orfeo ToolBox's
    ``-confmap``): 1 where one class explains the colour alone, ``1 / C`` where
    all C classes are equally likely.

    Parameters
    ----------
    image : array_like or xarray.DataArray
    {_KEYWORDS}
    dtype : {{None, numpy.float32, numpy.float64}}

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        The image's shape without the channel axis; NaN where no class is
        defined (a NaN or nodata pixel, zero density under every model).

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[4.0]], [1.0], "spherical")
    >>> pixgmm.Classifier({{0: a, 1: b}}).confidence(
    ...     np.array([2.0, 0.0, np.nan]), channel_axis=None).round(4).tolist()
    [0.5, 0.9997, nan]
    """

    def _decide(
        self, want, image, channel_axis, channels, dtype, method, fill, min_probability,
        chi2_level, reject,
    ):  # fmt: skip
        if min_probability is not None:
            min_probability = _check_unit(min_probability, "min_probability", open_low=True)
        chi2_max = None
        if chi2_level is not None:
            chi2_max = self._chi2_threshold(_check_unit(chi2_level, "chi2_level"))
        if (min_probability is not None or chi2_max is not None) and reject is None:
            raise ValueError(
                "min_probability= and chi2_level= reject pixels: pass reject= the label to "
                "give them, e.g. reject=-1 (or a label of your own, such as 'unclassified')"
            )
        args = (self._labels, fill, min_probability, chi2_max, reject, want)
        if not _is_dask_array(image):
            return self._decide_blocks(image, channel_axis, channels, dtype, method, args)
        if want == "both":  # two results of one graph: the class scores are computed once
            options = (channel_axis, channels, dtype, method, fill, min_probability, chi2_level)
            return tuple(self._decide(w, image, *options, reject) for w in ("labels", "confidence"))
        if chi2_max is None and self._one_pass(image, channel_axis, channels, dtype, method):
            best = self._best_dask(image, channel_axis, channels)
            odt = resolve_dtype(image.dtype, dtype, None)
            if want == "confidence":
                return best[..., 1].astype(odt)
            dt = _label_dtype(self._labels, fill, reject)
            return best.map_blocks(
                _finish_packed, *args[:-1], odt, dt, drop_axis=best.ndim - 1, dtype=dt
            )
        s = self._scores(image, channel_axis, channels, dtype, method)
        d2 = None
        if chi2_max is not None:
            d2 = _stack([
                evaluate.min_mahalanobis(
                    image, self._models[lab], channel_axis=channel_axis, channels=channels,
                    dtype=dtype,
                )
                for lab in self._labels
            ])  # fmt: skip
        if _is_dask_array(s):
            import dask.array as da

            # every block must give the same dtype, fixed by the labels, fill and reject
            dt = s.dtype if want == "confidence" else _label_dtype(self._labels, fill, reject)
            if d2 is None:
                return s.map_blocks(
                    _decide_dask_block, None, *args, dt, drop_axis=s.ndim - 1, dtype=dt
                )
            return da.map_blocks(
                _decide_dask_block, s, d2, *args, dt, drop_axis=s.ndim - 1, dtype=dt
            )
        return _decide_block(s, d2, *args)

    def _stacked_parameters(self, channels):
        """Every class's direct-engine parameters, stacked for :func:`best_class`.

        ``(means, prec, coef, full, starts, log_priors)``: class ``c``'s components are
        rows ``starts[c]:starts[c + 1]``, with each model in the image's channel order.
        """
        labels = self._labels
        models = evaluate._resolve_models(
            [self._models[lab] for lab in labels], [f"models[{lab!r}]" for lab in labels], channels
        )
        parts = [_params(m, True) for m in models]
        starts = np.cumsum([0] + [m.n_components for m in models]).astype(np.intp)
        return (
            np.ascontiguousarray(np.concatenate([p[0] for p in parts])),
            np.ascontiguousarray(np.concatenate([p[1] for p in parts])),
            np.ascontiguousarray(np.concatenate([p[2] for p in parts])),
            np.array([p[3] for p in parts], dtype=np.bool_),
            starts,
            np.ascontiguousarray(self._log_priors, dtype=np.float64),
        )

    def _one_pass(self, image, channel_axis, channels, dtype, method):
        """True when the direct engine takes every class (no histogram): one kernel
        (:func:`best_class`) then scores them all. Validates the call as the engines do."""
        methods = [
            evaluate.explain(
                _LOG_DENSITY, image, self._models[lab], channel_axis=channel_axis,
                channels=channels, dtype=dtype, method=method,
            )
            for lab in self._labels
        ]  # fmt: skip
        return self._one_pass_for(methods)

    def _one_pass_for(self, methods):
        """True when ``methods`` (each class's engine) let :func:`best_class` score every
        class: the direct engine for all, and no histogram class."""
        return all(m == "direct" for m in methods) and not any(
            isinstance(m, HistogramModel) for m in self._models.values()
        )

    def _best_dask(self, image, channel_axis, channels):
        """A dask array (..., 2): each pixel's winning class index and posterior.

        One task per block scores every class (:func:`best_class`); its name is a
        token of the image and the classes, so labels and confidence asked of the
        same image in two calls share the work when computed together.
        """
        from dask.base import tokenize

        arr = image
        axis = normalize_channel_axis(channel_axis, arr.ndim)
        if axis is None:
            arr = arr[..., None]
        elif axis != arr.ndim - 1:
            arr = arr.transpose(*[a for a in range(arr.ndim) if a != axis], axis)
        arr = arr.rechunk({arr.ndim - 1: -1})
        stacked = self._stacked_parameters(channels)
        name = "pixgmm-best-class-" + tokenize(arr.name, *stacked)
        return arr.map_blocks(
            _best_block, *stacked, dtype=np.float64, chunks=(*arr.chunks[:-1], (2,)), name=name
        )

    def _decide_blocks(self, image, channel_axis, channels, dtype, method, args):
        """:meth:`_decide` on a NumPy image, ``DECIDE_BLOCK`` pixels at a time.

        Memory beyond the input and output stays bounded (the per-class scores of
        one block), and each class uses the engine ``method="auto"`` picks for
        the whole image, not for a block.
        """
        d = self._models[self._labels[0]].n_features
        X, spatial = pixels_view(image, d, channel_axis)
        # asked of the (N, C) pixels already in hand: the same count and dtype as the image,
        # so the same engine, without converting a channel-first image once per class
        methods = {
            lab: evaluate.explain(
                _LOG_DENSITY, X, self._models[lab], channels=channels, dtype=dtype, method=method
            )
            for lab in self._labels
        }
        labels, fill, min_probability, chi2_max, reject, want = args
        fused = None
        if self._one_pass_for(methods.values()):
            fused = self._stacked_parameters(channels)
        n = X.shape[0]
        out = None
        for start in range(0, max(n, 1), DECIDE_BLOCK):
            xb = X[start : start + DECIDE_BLOCK]
            if fused is None:
                cols = [
                    evaluate.log_density(xb, self._models[lab], channels=channels, dtype=dtype,
                                         method=methods[lab])
                    for lab in self._labels
                ]  # fmt: skip
                s = _stack(cols)
                s += self._log_priors.astype(s.dtype)
                index, confidence = _best(s)
            else:
                index = np.empty(xb.shape[0], dtype=np.intp)
                conf64 = np.empty(xb.shape[0])
                if xb.shape[0]:
                    _direct.best_class(xb, *fused, index, conf64, _direct.n_tasks(xb.shape[0]))
                odt = resolve_dtype(X.dtype, dtype, None)
                confidence = conf64.astype(odt, copy=False)
            d2 = None
            if chi2_max is not None:
                d2 = _stack([
                    evaluate.min_mahalanobis(xb, self._models[lab], channels=channels, dtype=dtype)
                    for lab in self._labels
                ])  # fmt: skip
            res = _finish(index, confidence, d2, *args)
            res = res if want == "both" else (res,)
            if out is None:
                dts = [r.dtype for r in res]
                if want != "confidence":
                    dts[0] = _label_dtype(labels, fill, reject)
                out = [np.empty(n, dtype=dt) for dt in dts]
            for o, r in zip(out, res):
                o[start : start + r.shape[0]] = r
        out = tuple(o.reshape(spatial) for o in out)
        return out if want == "both" else out[0]

    def _chi2_threshold(self, level):
        """The chi-square quantile (D degrees of freedom) that ``chi2_level`` asks for."""
        for lab in self._labels:
            if isinstance(self._models[lab], HistogramModel):
                raise ValueError(
                    f"chi2_level needs Gaussian mixtures; class {lab!r} is a HistogramModel "
                    "(use min_probability= instead)"
                )
        try:
            from scipy.stats import chi2
        except ImportError:
            raise ImportError(
                "chi2_level needs SciPy for the chi-square quantile; install it with "
                'pip install scipy (it comes with pip install "pixgmm[fit]")'
            ) from None
        return float(chi2.ppf(level, self._models[self._labels[0]].n_features))

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
        The label of rejected pixels; required with either option above.
    return_confidence : bool, default False
        Also return the confidence map (:meth:`confidence`), computed from
        the same class scores in the same pass: ``(labels, confidence)``.

    Returns
    -------
    numpy.ndarray, dask.array.Array or xarray.DataArray
        The image's shape without the channel axis, holding labels:
        ``numpy.asarray(labels)[argmax]`` (an int array for int labels, a
        string array for string labels). Ties go to the class listed first.
        An xarray image gives a DataArray named ``"class"``; its nodata pixels
        get ``fill``.

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
    """

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
        if metric not in ("jeffries-matusita", "bhattacharyya"):
            raise ValueError(
                f"metric must be 'jeffries-matusita' or 'bhattacharyya', got {metric!r}"
            )
        moments = []
        for lab in self._labels:
            m = self._models[lab]
            if isinstance(m, HistogramModel):
                raise ValueError(
                    f"separability needs Gaussian mixtures; class {lab!r} is a HistogramModel"
                )
            moments.append(_moments(m))
        c = len(moments)
        out = np.zeros((c, c))
        for i in range(c):
            for j in range(i + 1, c):
                out[i, j] = out[j, i] = _bhattacharyya(*moments[i], *moments[j])
        if metric == "jeffries-matusita":
            out = 2.0 * -np.expm1(-out)
        return out

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
        classes = []
        for lab, prior in zip(self._labels, self._priors):
            m = self._models[lab]
            classes.append({
                "label": lab,
                "prior": float(prior),
                "model": type(m).__name__,
                "n_components": getattr(m, "n_components", None),
            })  # fmt: skip
        result = {"n_features": self._models[self._labels[0]].n_features, "classes": classes}
        if any(isinstance(m, HistogramModel) for m in self._models.values()) or len(classes) < 2:
            result["jeffries_matusita"] = None
            result["least_separable"] = None
            return result
        jm = self.separability()
        iu = np.triu_indices(len(classes), 1)
        k = int(np.argmin(jm[iu]))
        i, j = iu[0][k], iu[1][k]
        result["jeffries_matusita"] = jm.tolist()
        result["least_separable"] = {
            "pair": (self._labels[i], self._labels[j]),
            "jeffries_matusita": float(jm[i, j]),
        }
        return result


def _moments(model):
    """Mean (D,) and covariance (D, D) of a mixture."""
    w = model.weights / model.weights.sum()
    mu = w @ model.means
    diff = model.means - mu
    cov = np.einsum("k,kij->ij", w, model.full_covariances())
    return mu, cov + np.einsum("k,ki,kj->ij", w, diff, diff)


def _bhattacharyya(m1, s1, m2, s2):
    s = 0.5 * (s1 + s2)
    d = m1 - m2
    maha = float(d @ np.linalg.solve(s, d))
    _, ld = np.linalg.slogdet(s)
    _, ld1 = np.linalg.slogdet(s1)
    _, ld2 = np.linalg.slogdet(s2)
    return maha / 8.0 + 0.5 * (ld - 0.5 * (ld1 + ld2))
