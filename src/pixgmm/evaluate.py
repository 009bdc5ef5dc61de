"""Per-pixel evaluation: density, log-density, ratios, responsibilities, labels.

This public layer validates, decides the output dtype and layout, asks
:mod:`pixgmm._engine.dispatch` for an engine and lets it compute (NumPy
images), or hands the validated call to :mod:`pixgmm._engine.blocks` (Dask
arrays: one task per block, lazily). :func:`explain` names the engine a call
would use. The engine rule (``method="auto"``):

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
Responsibilities and labels always use ``"direct"``.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import _xarray
from ._engine import dispatch
from ._engine.params import is_table_model
from ._engine.table import TABLE_MIN_PIXELS as TABLE_MIN_PIXELS  # the rule's threshold
from ._validation import (
    check_bool,
    check_image_dtype,
    check_method,
    check_out,
    is_dask_array,
    kernel_output,
    native_kernel_dtype,
    normalize_channel_axis,
    normalize_channels,
    pixels_view,
    resolve_dtype,
)
from ._xarray import is_dataarray
from .mixture import as_mixture

__all__ = [
    "density",
    "explain",
    "log_density",
    "log_ratio",
    "min_mahalanobis",
    "predict",
    "responsibilities",
]

METHODS = dispatch.METHODS
#: The public function computing each quantity.
_FUNCTIONS = {
    "pdf": "density",
    "log": "log_density",
    "ratio": "log_ratio",
    "resp": "responsibilities",
    "label": "predict",
    "mahal": "min_mahalanobis",
}
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


def _doc(text, models=_MODEL_PARAM):
    return text.replace("{params}", _DOC_PARAMS.format(models=models))


def _as_model(model, name):
    """A table model (HistogramModel) as is, anything else through :func:`as_mixture`."""
    return model if is_table_model(model) else as_mixture(model, name)


def _resolve_models(models, names, channels):
    """Coerce to models, check feature counts agree, reorder to the image's channels."""
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


def _check_call(quantity, models, names, normalized, method):
    check_method(method, METHODS)
    check_bool(normalized, "normalized")
    if quantity in ("resp", "label", "mahal"):
        if method in ("table", "separable"):
            raise ValueError(
                f"{_FUNCTIONS[quantity]} supports method='auto' or 'direct', not {method!r}"
            )
        models = (as_mixture(models[0], names[0]),)
    return models


def _output(quantity, X, spatial, models, dtype, out):
    """The result's shape and dtype, with ``out`` checked against them."""
    if quantity == "label":
        odt = np.dtype(np.intp)
        if out is not None:
            if not isinstance(out, np.ndarray) or out.dtype.kind != "i":
                raise TypeError("out must be a signed integer numpy array for predict")
            k = models[0].n_components
            if np.iinfo(out.dtype).max < k - 1:
                raise ValueError(f"out's dtype {out.dtype} cannot hold component {k - 1}")
            odt = out.dtype.newbyteorder("=")
    else:
        odt = resolve_dtype(X.dtype, dtype, out)
    shape = tuple(spatial)
    if quantity == "resp":
        shape += (models[0].n_components,)
    if out is not None:
        check_out(out, shape, odt)
    return shape, odt


def _check_mixed_normalization(models, normalized):
    if not normalized and len({is_table_model(m) for m in models}) > 1:
        raise ValueError(
            "normalized=False drops (2 pi)^(-D/2) from a Mixture but a HistogramModel is always "
            "normalised, so their log ratio would be off by a constant; leave normalized=True"
        )


def _evaluate(
    quantity, image, models, names, *, normalized, channel_axis, channels, dtype, out, method,
    explain=False,
):  # fmt: skip
    """Validate a call, choose its engine and compute (or, for a Dask array, build the graph)."""
    models = _check_call(quantity, models, names, normalized, method)
    if is_dataarray(image):
        return _evaluate_xarray(
            quantity, image, models, names, normalized, channel_axis, channels, dtype, out,
            method, explain,
        )  # fmt: skip
    if is_dask_array(image):
        return _evaluate_dask(
            quantity, image, models, names, normalized, channel_axis, channels, dtype, out,
            method, explain,
        )  # fmt: skip
    first = _as_model(models[0], names[0])
    X, spatial = pixels_view(image, first.n_features, channel_axis)
    models = _resolve_models(models, names, channels)
    _check_mixed_normalization(models, normalized)
    shape, odt = _output(quantity, X, spatial, models, dtype, out)
    engine = dispatch.choose(method, quantity, X, models, normalized, odt)
    if explain:
        return engine.NAME
    result, copy_back = kernel_output(shape, odt, out)
    flat = result.reshape(X.shape[0], shape[-1]) if quantity == "resp" else result.reshape(-1)
    dispatch.evaluate(engine, quantity, X, models, normalized, flat)
    if copy_back:
        out[...] = result
        return out
    return result


def _evaluate_xarray(
    quantity, image, models, names, normalized, channel_axis, channels, dtype, out, method,
    explain,
):  # fmt: skip
    """A DataArray: computed on its NumPy or Dask data, returned as a DataArray."""
    if out is not None:
        raise TypeError(
            f"out= cannot be used when image is an xarray.DataArray: {_FUNCTIONS[quantity]}() "
            "returns a new DataArray with the image's coordinates; drop out="
        )
    data, axis, channels, dim = _xarray.unwrap(image, channel_axis, channels)
    result = _evaluate(
        quantity, data, models, names, normalized=normalized, channel_axis=axis,
        channels=channels, dtype=dtype, out=None, method=method, explain=explain,
    )  # fmt: skip
    if explain:
        return result
    extra = {}
    if quantity == "resp":
        extra = {"extra_dim": "component", "extra_coords": np.arange(result.shape[-1])}
    return _xarray.wrap(
        result, image, dim, name=_FUNCTIONS[quantity], fill=-1 if quantity == "label" else np.nan,
        **extra,
    )  # fmt: skip


def _evaluate_dask(
    quantity, image, models, names, normalized, channel_axis, channels, dtype, out, method,
    explain,
):  # fmt: skip
    """Everything validated on the client, before any task runs; then one task per block."""
    name = _FUNCTIONS[quantity]
    if out is not None:
        raise TypeError(
            f"out= cannot be used when image is a dask array: {name}() returns a lazy "
            "dask array. Drop out= and store the result chunk by chunk with "
            "result.store(target) or pixgmm.io.write_zarr(result, path), or "
            "take result.compute()"
        )
    check_image_dtype(image.dtype, "image")
    if any(np.isnan(c) for dim in image.chunks for c in dim):
        raise ValueError("image has unknown chunk sizes; call image.compute_chunk_sizes() first")
    first = _as_model(models[0], names[0])
    # the whole image's pixels as a view with zero strides: its shape without its memory
    whole = np.broadcast_to(np.zeros((), native_kernel_dtype(image.dtype)), image.shape)
    X, spatial = pixels_view(whole, first.n_features, channel_axis)
    models = _resolve_models(models, names, channels)
    _check_mixed_normalization(models, normalized)
    _, odt = _output(quantity, X, spatial, models, dtype, None)
    # one engine for the whole image, chosen as for the NumPy call on the whole image
    engine = dispatch.choose(method, quantity, X, models, normalized, odt)
    if explain:
        return engine.NAME
    from ._engine import blocks

    return blocks.evaluate(
        name,
        quantity,
        engine.NAME,
        image,
        models,
        normalized=bool(normalized),
        channel_axis=normalize_channel_axis(channel_axis, image.ndim),
        dtype=odt,
    )


def min_mahalanobis(image, model, *, channel_axis=-1, channels=None, dtype=None):
    """Squared Mahalanobis distance from every pixel to the nearest component of ``model``.

    ``min_k (x - mu_k)^T Sigma_k^-1 (x - mu_k)``: for a one-component model the
    statistic that follows a chi-square distribution with D degrees of freedom
    for pixels drawn from the model, used by :meth:`pixgmm.Classifier.predict`'s
    ``chi2_level`` reject option. NaN at NaN pixels. Keywords as in
    :func:`log_density`.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> from pixgmm.evaluate import min_mahalanobis
    >>> m = pixgmm.Mixture([0.5, 0.5], [[0.0], [10.0]], [4.0, 1.0], "spherical")
    >>> min_mahalanobis(np.array([2.0, 8.0, np.nan]), m, channel_axis=None).tolist()
    [1.0, 4.0, nan]
    """
    return _evaluate(
        "mahal", image, (model,), ("model",), normalized=True, channel_axis=channel_axis,
        channels=channels, dtype=dtype, out=None, method="auto",
    )  # fmt: skip


def explain(function, image, *models, **options):
    """The engine ``function(image, *models, **options)`` would use, without computing.

    Parameters
    ----------
    function : callable
        One of :func:`density`, :func:`log_density`, :func:`log_ratio`,
        :func:`responsibilities`, :func:`predict`.
    image, *models, **options
        The arguments of that call (a Dask array gives the engine of its blocks).

    Returns
    -------
    str
        ``"table"``, ``"separable"`` or ``"direct"``: the rule is in
        :mod:`pixgmm.evaluate`. The same choice is logged at DEBUG level on the
        ``pixgmm`` logger by every evaluation.

    Examples
    --------
    >>> import numpy as np
    >>> import pixgmm
    >>> m = pixgmm.Mixture([1.0], [[128, 128, 128]], [[100, 100, 100]], "diag")
    >>> pixgmm.explain(pixgmm.log_density, np.zeros((2000, 1000, 3), np.uint8), m)
    'table'
    >>> pixgmm.explain(pixgmm.log_density, np.zeros((20, 20, 3), np.uint8), m)
    'separable'
    >>> pixgmm.explain(pixgmm.log_density, np.zeros((20, 10, 3), np.float32), m)
    'direct'
    """
    quantity = {v: k for k, v in _FUNCTIONS.items()}.get(getattr(function, "__name__", None))
    if quantity is None or getattr(function, "__module__", None) != __name__ or quantity == "mahal":
        raise TypeError(
            "function must be one of pixgmm.density, log_density, log_ratio, "
            f"responsibilities or predict; got {function!r}"
        )
    try:
        bound = inspect.signature(function).bind(image, *models, **options)
    except TypeError as exc:
        raise TypeError(f"{function.__name__}(): {exc}") from None
    bound.apply_defaults()
    kwargs = dict(bound.arguments)
    image = kwargs.pop("image")
    names = tuple(n for n in ("model", "model_a", "model_b") if n in kwargs)
    models = tuple(kwargs.pop(n) for n in names)
    kwargs.setdefault("dtype", None)
    return _evaluate(quantity, image, models, names, explain=True, **kwargs)


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
    return _evaluate(
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
    return _evaluate(
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
    return _evaluate(
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
    return _evaluate(
        "resp",
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


def predict(
    image, model, *, normalized=True, channel_axis=-1, channels=None, out=None, method="auto"
):
    return _evaluate(
        "label",
        image,
        (model,),
        ("model",),
        normalized=normalized,
        channel_axis=channel_axis,
        channels=channels,
        dtype=None,
        out=out,
        method=method,
    )


predict.__doc__ = _doc("""Index of the most probable component at every pixel.

    Parameters
    ----------
    {params}

    Returns
    -------
    numpy.ndarray of numpy.intp
        The image's shape without the channel axis; -1 at NaN or infinite pixels. Ties go
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
