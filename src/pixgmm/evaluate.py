"""Per-pixel evaluation: density, log-density, ratios, responsibilities, labels.

This public layer validates, decides the output dtype and layout, picks an
engine and calls a private kernel. The engine rule (``method="auto"``):

1. ``"table"`` — a uint8 image with at most 3 channels (density, log-density,
   log-ratio): when the colour table is already cached, or the image has at
   least ``TABLE_MIN_PIXELS`` pixels: 2**20 (a 1-megapixel photo) for diagonal
   3-channel models, whose table is one matrix product, and 256**C otherwise,
   whose table costs one direct evaluation per colour. The table is then kept
   in the table cache (see :func:`pixgmm.cache_info`) for the next image.
2. ``"separable"`` — an 8-bit integer image (signed or not) with at least 256
   pixels and diagonal or spherical covariances (density, log-density,
   log-ratio). 16-bit images go to ``"direct"``: their per-channel tables
   (65536 levels) miss the CPU caches for wide-ranged images and direct is
   faster there; ``method="separable"`` still accepts them.
3. ``"direct"`` — everything else: any dtype, any covariance type.

``method=`` forces an engine; a forced engine that does not apply is a
``ValueError``. All engines agree to within floating-point rounding.
"""

from __future__ import annotations

import functools

import numpy as np

from . import _kernels, _lut
from ._cache import TABLES
from ._validation import (
    check_bool,
    check_method,
    check_out,
    kernel_output,
    normalize_channels,
    pixels_view,
    resolve_dtype,
)
from .mixture import as_mixture

METHODS = ("auto", "table", "separable", "direct")
#: The diagonal 3-channel colour table is built when an image has at least this many pixels.
TABLE_MIN_PIXELS = 2**20

_DOC_PARAMS = """image : array_like
        Pixels with channels along ``channel_axis``: (H, W, C), (N, H, W, C),
        (N, C) or any other leading shape. Integer (uint8, uint16, ...) or
        floating dtypes, any byte order and strides; read-only arrays work.
    {models}
    normalized : bool, default True
        False drops only the constant (2 pi)^(-D/2); the determinant stays.
    channel_axis : int or None, default -1
        The axis holding the channels. None: the image has no channel axis
        (a grayscale image) and the model must have one feature.
    channels : str or sequence of str, optional
        The image's channel order, e.g. ``"BGR"`` for an OpenCV image. When the
        model names its order too (``Mixture(channels="RGB")``) the model is
        reordered to match; different channel names are an error.
    dtype : {{None, numpy.float32, numpy.float64}}
        Output dtype. Default: float32 for float16/float32 images, float64
        otherwise (``out``'s dtype when ``out`` is given).
    out : numpy.ndarray, optional
        Array of the result's shape to write into; it is returned.
    method : {{"auto", "table", "separable", "direct"}}
        Engine; see :mod:`pixgmm.evaluate` for the rule ``"auto"`` follows."""

_MODEL_PARAM = """model : Mixture, sequence of (mean, covariance, weight), or GaussianMixture
        The mixture; anything :func:`pixgmm.as_mixture` accepts, or a
        :class:`pixgmm.HistogramModel`."""


def _is_dask_array(image):
    """True for a dask array, checked without importing dask."""
    return type(image).__module__.split(".")[0] == "dask" and hasattr(image, "map_blocks")


def _dask_aware(n_models):
    """Decorator: a dask-array image goes to :func:`pixgmm._dask.evaluate`, lazily.

    ``func(image, *models, **kwargs)`` is what runs on each NumPy block; dask is
    imported only when a dask array arrives.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(image, *args, **kwargs):
            if _is_dask_array(image):
                from . import _dask

                return _dask.evaluate(func, image, args[:n_models], *args[n_models:], **kwargs)
            return func(image, *args, **kwargs)

        return wrapper

    return decorate


def _doc(text, models=_MODEL_PARAM):
    return text.replace("{params}", _DOC_PARAMS.format(models=models))


def _params(model, normalized):
    return (
        model.means,
        model.precisions_cholesky,
        model.log_normalizers(normalized),
        not model.is_diagonal,
    )


def _resolve_models(models, names, channels, n_channels):
    """Coerce to Mixture, check feature counts agree, reorder to the image's channels."""
    ms = [_as_model(m, name) for m, name in zip(models, names)]
    d = ms[0].n_features
    for m, name in zip(ms[1:], names[1:]):
        if m.n_features != d:
            raise ValueError(
                f"{names[0]} has {d} features but {name} has {m.n_features}; both models "
                "must describe the same channels"
            )
    img_names = normalize_channels(channels)
    if img_names is not None and len(img_names) != d:
        raise ValueError(
            f"channels={channels!r} names {len(img_names)} channel(s) but the model has {d} features"
        )
    if img_names is not None:
        ms = [m.with_channels(img_names) if m._channels is not None else m for m in ms]
    return ms


def _choose_engine(method, quantity, X, models):
    if _has_table_model(models):
        return _table_model_engine(method, quantity, X)
    n, c = X.shape
    dt = X.dtype
    table_ok = dt == np.uint8 and c <= 3 and quantity in ("log", "pdf", "ratio")
    sep_ok = (
        dt.kind in "ui"
        and dt.itemsize <= 2
        and all(m.is_diagonal for m in models)
        and quantity in ("log", "pdf", "ratio")
    )
    if method == "table":
        if not table_ok:
            raise ValueError(
                "method='table' needs a uint8 image with at most 3 channels and a density, "
                f"log-density or log-ratio (got {dt} with {c} channels); use method='auto'"
            )
        return "table"
    if method == "separable":
        if not sep_ok:
            raise ValueError(
                "method='separable' needs an 8- or 16-bit integer image, diagonal or spherical "
                f"covariances and a density, log-density or log-ratio (got {dt}, covariance "
                f"types {[m.covariance_type for m in models]}); use method='auto'"
            )
        return "separable"
    if method == "direct":
        return "direct"
    if table_ok:
        diag3 = c == 3 and all(m.is_diagonal for m in models)
        threshold = TABLE_MIN_PIXELS if diag3 else 256**c
        if n >= threshold:
            return "table"
    if sep_ok and dt.itemsize == 1 and n >= 256:
        return "separable"
    return "direct"


def _table(quantity, models, normalized, n_channels, dtype):
    """The colour table of ``quantity`` for 8-bit pixels, from the cache or built."""
    if _has_table_model(models):
        return _table_model_table(quantity, models, normalized, n_channels, dtype)
    fps = tuple(m._fingerprint for m in models)
    key = (*fps, quantity, bool(normalized) if quantity != "ratio" else None, dtype.str)
    table = TABLES.get(key)
    if table is not None:
        return table
    table = np.empty(256**n_channels, dtype=dtype)
    chunks = [_lut.log_table_chunks(_params(m, normalized), n_channels) for m in models]
    for parts in zip(*chunks):
        start = parts[0][0]
        values = parts[0][1]
        stop = start + values.shape[0]
        if quantity == "log":
            table[start:stop] = values
        elif quantity == "pdf":
            np.exp(values, out=values)
            table[start:stop] = values
        else:
            np.subtract(values, parts[1][1], out=values)
            table[start:stop] = values
    table.setflags(write=False)
    return TABLES.put(key, table)


def _separable(model, normalized, dtype):
    levels = 2 ** (8 * dtype.itemsize)
    offset = -int(np.iinfo(dtype).min)
    key = (model._fingerprint, "separable", bool(normalized), levels, offset)
    tables = TABLES.get(key)
    if tables is None:
        means, prec, coef, _ = _params(model, normalized)
        tables = _lut.separable_tables(means, prec, coef, levels, offset)
        for t in tables:
            t.setflags(write=False)
        tables = TABLES.put(key, tables)
    return offset, tables


def _shifts(n_channels):
    return np.array([8 * (n_channels - 1 - c) for c in range(n_channels)], dtype=np.int64)


# -- models evaluated from their own values (pixgmm.HistogramModel) ---------------------------
# Such a model marks itself with ``_pixgmm_table_model = True`` and provides ``n_features``,
# ``_channels``, ``with_channels``, ``_fingerprint``, ``_log_density_pixels(X) -> float64 (N,)``
# and ``_log_table(start, stop) -> float64`` (log-densities of the 8-bit colours with table
# indices start:stop). It goes through the same colour table and ``_lut.gather`` as a
# mixture; ``normalized`` does not apply to it (its density is always normalised).


def _is_table_model(model):
    return bool(getattr(model, "_pixgmm_table_model", False))


def _has_table_model(models):
    return any(_is_table_model(m) for m in models)


def _as_model(model, name):
    """A table model as is, anything else through :func:`as_mixture`."""
    return model if _is_table_model(model) else as_mixture(model, name)


def _table_model_engine(method, quantity, X):
    """The engine rule with a table model: the colour table for uint8 images, else direct."""
    n, c = X.shape
    table_ok = X.dtype == np.uint8 and c <= 3 and quantity in ("log", "pdf", "ratio")
    if method == "separable":
        raise ValueError(
            "method='separable' needs mixtures with diagonal covariances; a HistogramModel is "
            "evaluated with method='table' (uint8 images) or 'direct'; use method='auto'"
        )
    if method == "table" and not table_ok:
        raise ValueError(
            "method='table' needs a uint8 image with at most 3 channels and a density, "
            f"log-density or log-ratio (got {X.dtype} with {c} channels); use method='auto'"
        )
    if method == "table" or (
        method == "auto" and table_ok and n >= (TABLE_MIN_PIXELS if c == 3 else 256**c)
    ):
        return "table"
    return "direct"


def _table_model_logs(models, normalized, n_channels):
    """Yield ``(start, [log-values of each model])`` covering all 256**C colours in order."""
    n = 256**n_channels
    mix = [i for i, m in enumerate(models) if not _is_table_model(m)]
    if mix:  # at most one: a log ratio has two models and one of them is a table model
        chunks = _lut.log_table_chunks(_params(models[mix[0]], normalized), n_channels)
    else:
        chunks = ((start, None) for start in range(0, n, 1 << 20))
    for start, values in chunks:
        stop = start + values.shape[0] if values is not None else min(n, start + (1 << 20))
        yield (
            start,
            [values if i in mix else m._log_table(start, stop) for i, m in enumerate(models)],
        )


def _table_model_table(quantity, models, normalized, n_channels, dtype):
    key = (*(m._fingerprint for m in models), quantity, bool(normalized), dtype.str)
    table = TABLES.get(key)
    if table is not None:
        return table
    table = np.empty(256**n_channels, dtype=dtype)
    for start, logs in _table_model_logs(models, normalized, n_channels):
        _combine_logs(quantity, logs, table[start : start + logs[0].shape[0]])
    table.setflags(write=False)
    return TABLES.put(key, table)


def _table_model_direct(quantity, X, models, normalized, flat):
    logs = []
    for m in models:
        if _is_table_model(m):
            logs.append(m._log_density_pixels(X))
        else:
            values = np.empty(X.shape[0])
            _kernels.log_sum_exp(
                X, *_params(m, normalized), _kernels.MODE_LOG, values, _kernels.n_tasks(X.shape[0])
            )
            logs.append(values)
    _combine_logs(quantity, logs, flat)


def _combine_logs(quantity, logs, out):
    with np.errstate(invalid="ignore"):  # -inf - -inf (zero density in both) is NaN
        if quantity == "log":
            out[...] = logs[0]
        elif quantity == "pdf":
            out[...] = np.exp(logs[0])
        else:
            out[...] = logs[0] - logs[1]


def _run(quantity, image, models, names, *, normalized, channel_axis, channels, dtype, out, method):
    check_method(method, METHODS)
    check_bool(normalized, "normalized")
    first = _as_model(models[0], names[0])
    X, spatial = pixels_view(image, first.n_features, channel_axis)
    models = _resolve_models(models, names, channels, X.shape[1])
    if not normalized and len({_is_table_model(m) for m in models}) > 1:
        raise ValueError(
            "normalized=False drops (2 pi)^(-D/2) from a Mixture but a HistogramModel is always "
            "normalised, so their log ratio would be off by a constant; leave normalized=True"
        )
    odt = resolve_dtype(X.dtype, dtype, out)
    if out is not None:
        check_out(out, spatial, odt)
    result, copy_back = kernel_output(spatial, odt, out)
    flat = result.reshape(-1)
    n = X.shape[0]
    if n:
        engine = _choose_engine(method, quantity, X, models)
        ntasks = _kernels.n_tasks(n)
        if engine == "table":
            table = _table(quantity, models, normalized, X.shape[1], odt)
            _lut.gather(X, _shifts(X.shape[1]), table, flat, ntasks)
        elif engine == "separable":
            if quantity == "ratio":
                off, (fa, ga, aa) = _separable(models[0], normalized, X.dtype)
                _, (fb, gb, ab) = _separable(models[1], normalized, X.dtype)
                _lut.separable_log_ratio(X, off, fa, ga, aa, fb, gb, ab, flat, ntasks)
            else:
                off, (f, g, a) = _separable(models[0], normalized, X.dtype)
                mode = _kernels.MODE_LOG if quantity == "log" else _kernels.MODE_PDF
                _lut.separable_lse(X, off, f, g, a, mode, flat, ntasks)
        elif _has_table_model(models):
            _table_model_direct(quantity, X, models, normalized, flat)
        elif quantity == "ratio":
            _kernels.log_ratio(
                X, *_params(models[0], normalized), *_params(models[1], normalized), flat, ntasks
            )
        else:
            mode = _kernels.MODE_LOG if quantity == "log" else _kernels.MODE_PDF
            _kernels.log_sum_exp(X, *_params(models[0], normalized), mode, flat, ntasks)
    if copy_back:
        out[...] = result
        return out
    return result


@_dask_aware(1)
def density(
    image,
    model,
    *,
    normalized=True,
    channel_axis=-1,
    channels=None,
    dtype=None,
    out=None,
    method="auto",
):
    return _run(
        "pdf",
        image,
        (model,),
        ("model",),
        normalized=normalized,
        channel_axis=channel_axis,
        channels=channels,
        dtype=dtype,
        out=out,
        method=method,
    )


density.__doc__ = _doc("""Mixture density ``p(x) = sum_k w_k N(x; mu_k, Sigma_k)`` at every pixel.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis.

    Notes
    -----
    Computed in log space and exponentiated once per pixel, so it is exact
    wherever the density is representable; far from every component it
    underflows to 0 (use :func:`log_density` or :func:`log_ratio` there).

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> model = pixgmm.Mixture([1.0], [[128, 128, 128]], [[100, 100, 100]], "diag")
    >>> img = np.full((2, 3, 3), 128, dtype=np.uint8)
    >>> p = pixgmm.density(img, model)
    >>> p.shape, p.dtype
    ((2, 3), dtype('float64'))
    >>> bool(np.isclose(p[0, 0], (2 * np.pi * 100) ** -1.5))
    True
    """)


@_dask_aware(1)
def log_density(
    image,
    model,
    *,
    normalized=True,
    channel_axis=-1,
    channels=None,
    dtype=None,
    out=None,
    method="auto",
):
    return _run(
        "log",
        image,
        (model,),
        ("model",),
        normalized=normalized,
        channel_axis=channel_axis,
        channels=channels,
        dtype=dtype,
        out=out,
        method=method,
    )


log_density.__doc__ = _doc("""Natural log of the mixture density at every pixel, exact in the tails.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis; NaN at NaN pixels.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> model = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> pixgmm.log_density(np.array([0.0, 40.0]), model, channel_axis=None).round(3).tolist()
    [-0.919, -800.919]
    """)


@_dask_aware(2)
def log_ratio(
    image,
    model_a,
    model_b,
    *,
    normalized=True,
    channel_axis=-1,
    channels=None,
    dtype=None,
    out=None,
    method="auto",
):
    return _run(
        "ratio",
        image,
        (model_a, model_b),
        ("model_a", "model_b"),
        normalized=normalized,
        channel_axis=channel_axis,
        channels=channels,
        dtype=dtype,
        out=out,
        method=method,
    )


log_ratio.__doc__ = _doc(
    """``log p_a(x) - log p_b(x)`` at every pixel, computed in log space.

    Far from both mixtures both densities underflow to 0 and their ratio
    becomes 0/0; the difference of log-densities stays exact there.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> a = pixgmm.Mixture([1.0], [[0.0]], [1.0], "spherical")
    >>> b = pixgmm.Mixture([1.0], [[1.0]], [1.0], "spherical")
    >>> x = np.array([0.0, 1000.0])
    >>> pixgmm.log_ratio(x, a, b, channel_axis=None).tolist()  # p_a and p_b are both 0.0 at 1000
    [0.5, -999.5]
    """,
    models="""model_a, model_b : Mixture, kernel sequence, GaussianMixture or HistogramModel
        Numerator and denominator models, with the same number of features.""",
)


@_dask_aware(1)
def responsibilities(
    image,
    model,
    *,
    normalized=True,
    channel_axis=-1,
    channels=None,
    dtype=None,
    out=None,
    method="auto",
):
    check_method(method, METHODS)
    check_bool(normalized, "normalized")
    if method in ("table", "separable"):
        raise ValueError(f"responsibilities supports method='auto' or 'direct', not {method!r}")
    m = as_mixture(model, "model")
    X, spatial = pixels_view(image, m.n_features, channel_axis)
    m = _resolve_models((m,), ("model",), channels, X.shape[1])[0]
    odt = resolve_dtype(X.dtype, dtype, out)
    shape = (*spatial, m.n_components)
    if out is not None:
        check_out(out, shape, odt)
    result, copy_back = kernel_output(shape, odt, out)
    if X.shape[0]:
        _kernels.responsibilities(
            X,
            *_params(m, normalized),
            result.reshape(-1, m.n_components),
            _kernels.n_tasks(X.shape[0]),
        )
    if copy_back:
        out[...] = result
        return out
    return result


responsibilities.__doc__ = _doc("""Posterior probability of each component at every pixel.

    ``r_k(x) = w_k N(x; mu_k, Sigma_k) / p(x)``, computed in log space so that
    it stays defined far from every component.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray
        The image's shape without the channel axis, plus a trailing axis of
        length K; each pixel's values sum to 1 (NaN at NaN pixels).

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> m = pixgmm.Mixture([0.5, 0.5], [[0.0], [10.0]], [1.0, 1.0], "spherical")
    >>> pixgmm.responsibilities(np.array([[5.0], [200.0]]), m).round(3).tolist()
    [[0.5, 0.5], [0.0, 1.0]]
    """)


@_dask_aware(1)
def predict(
    image, model, *, normalized=True, channel_axis=-1, channels=None, out=None, method="auto"
):
    check_method(method, METHODS)
    check_bool(normalized, "normalized")
    if method in ("table", "separable"):
        raise ValueError(f"predict supports method='auto' or 'direct', not {method!r}")
    m = as_mixture(model, "model")
    X, spatial = pixels_view(image, m.n_features, channel_axis)
    m = _resolve_models((m,), ("model",), channels, X.shape[1])[0]
    odt = np.dtype(np.intp)
    if out is not None:
        if not isinstance(out, np.ndarray) or out.dtype.kind != "i":
            raise TypeError("out must be a signed integer numpy array for predict")
        if np.iinfo(out.dtype).max < m.n_components - 1:
            raise ValueError(f"out's dtype {out.dtype} cannot hold component {m.n_components - 1}")
        odt = out.dtype.newbyteorder("=")
        check_out(out, spatial, odt)
    result, copy_back = kernel_output(spatial, odt, out)
    if X.shape[0]:
        _kernels.predict(
            X, *_params(m, normalized), result.reshape(-1), _kernels.n_tasks(X.shape[0])
        )
    if copy_back:
        out[...] = result
        return out
    return result


predict.__doc__ = _doc("""Index of the most probable component at every pixel.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray of numpy.intp
        The image's shape without the channel axis; -1 at NaN pixels. Ties go
        to the lower index.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> m = pixgmm.Mixture([0.5, 0.5], [[0.0], [10.0]], [1.0, 1.0], "spherical")
    >>> pixgmm.predict(np.array([1.0, 9.0, np.nan]), m, channel_axis=None).tolist()
    [0, 1, -1]
    """).replace(
    """    dtype : {None, numpy.float32, numpy.float64}
        Output dtype. Default: float32 for float16/float32 images, float64
        otherwise (``out``'s dtype when ``out`` is given).
""",
    "",
)
