"""What the engines need from a model: kernel parameters, and models evaluated from a table.

A :class:`~pixgmm.Mixture` reaches a kernel as four arrays, :func:`params`.
A model that marks itself with ``_pixgmm_table_model = True`` (a
:class:`~pixgmm.HistogramModel`) is evaluated from its own values instead; it
provides ``n_features``, ``_channels``, ``with_channels``, ``_fingerprint``,
``_log_density_pixels(X) -> float64 (N,)`` and ``_log_table(start, stop) ->
float64`` (the log-densities of the 8-bit colours with table indices
``start:stop``). ``normalized`` does not apply to it (its density is always
normalised).
"""

from __future__ import annotations

import numpy as np

#: Everything an engine can compute: log-density, density, log ratio of two models,
#: responsibilities (N, K), the most probable component and the squared Mahalanobis
#: distance to the nearest component.
QUANTITIES = ("log", "pdf", "ratio", "resp", "label", "mahal")
#: The quantities with one value per pixel computed from log-densities.
DENSITIES = ("log", "pdf", "ratio")


def params(model, normalized):
    """``(means, prec, coef, full)`` of a Mixture: the direct kernels' model arguments."""
    return (
        model.means,
        model.precisions_cholesky,
        model.log_normalizers(normalized),
        not model.is_diagonal,
    )


def is_table_model(model):
    return bool(getattr(model, "_pixgmm_table_model", False))


def has_table_model(models):
    return any(is_table_model(m) for m in models)


def combine_logs(quantity, logs, out):
    """Write ``quantity`` ("log", "pdf" or "ratio") from per-model log-densities into ``out``."""
    with np.errstate(invalid="ignore"):  # -inf - -inf (zero density in both) is NaN
        if quantity == "log":
            out[...] = logs[0]
        elif quantity == "pdf":
            out[...] = np.exp(logs[0])
        else:
            out[...] = logs[0] - logs[1]
