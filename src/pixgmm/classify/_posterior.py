"""The posterior of every class at every pixel, from the class scores.

Public layer, NumPy and Dask blocks alike: class scores ``log p(x | c) + log prior`` on a
trailing class axis become the log posterior (log-sum-exp) or the posterior.
"""

from __future__ import annotations

import numpy as np

from .. import evaluate
from .._validation import is_dask_array
from ._checks import bad_prior_message, pixel_priors


def log_posterior_block(s):
    """Normalise per-class scores (trailing axis) in log space, in place; NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore"):
        m = s.max(axis=-1, keepdims=True)
        finite = np.isfinite(m)
        shift = np.where(finite, m, 0)
        lse = np.log(np.exp(s - shift).sum(axis=-1, keepdims=True)) + shift
        s -= lse
    s[~np.broadcast_to(finite, s.shape)] = np.nan
    return s


def probability_block(s):
    return np.exp(log_posterior_block(s), out=s)


def copied(s, func):
    """``func`` on a copy: a dask block may be shared with another result of the same graph."""
    return func(np.array(s, copy=True))


def stack(cols):
    """Per-class maps stacked on a trailing class axis (one chunk for a dask array)."""
    if is_dask_array(cols[0]):
        import dask.array as da

        return da.stack(cols, axis=-1).rechunk({-1: -1})
    return np.stack(cols, axis=-1)


def log_pixel_priors(priors, labels, dtype):
    """``log(p_c / sum_c p_c)`` of per-pixel priors (..., C) in ``dtype``; -inf for every
    class of a pixel whose priors are all 0. NaN, infinite or negative values are errors."""
    p = np.asarray(priors, dtype=np.float64)
    if p.size and not (p.min() >= 0.0 and p.max() < np.inf):
        raise ValueError(bad_prior_message(p, labels))
    total = p.sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.log(p) - np.log(total)
    out[np.broadcast_to(total == 0, out.shape)] = -np.inf
    return out.astype(dtype, copy=False)


def add_pixel_priors(s, priors, labels):
    """Scores ``s`` (..., C) plus the log of the pixels' normalised priors (a new array)."""
    return s + log_pixel_priors(priors, labels, s.dtype)


def scores(models, labels, log_priors, image, channel_axis, channels, dtype, method, priors,
           prior_axis):  # fmt: skip
    """Per-class ``log p(x | class) + log prior``, stacked on a trailing axis.

    The prior is the class's, or the pixel's own (``priors``, normalised per pixel). For a
    dask image the result is a dask array whose class axis is one chunk, so every block
    holds all classes of its pixels.
    """
    cols = [
        evaluate.log_density(image, models[lab], channel_axis=channel_axis, channels=channels,
                             dtype=dtype, method=method)
        for lab in labels
    ]  # fmt: skip
    s = stack(cols)
    if priors is not None:
        pp = pixel_priors(priors, prior_axis, s.shape[:-1], labels, s)
        if is_dask_array(s):
            import dask.array as da

            if isinstance(pp, np.ndarray):
                pp = da.from_array(pp, chunks=s.chunks)
            return da.map_blocks(add_pixel_priors, s, pp.rechunk(s.chunks), labels, dtype=s.dtype)
        return add_pixel_priors(s, pp, labels)
    if is_dask_array(s):
        return s + log_priors.astype(s.dtype)
    s += log_priors.astype(s.dtype)
    return s
