"""What ``pixgmm info`` prints: a readable summary of a Mixture or HistogramModel."""

from __future__ import annotations

import numpy as np


def _channel_names(model):
    ch = model.channels
    if ch is None:
        return [f"x{i}" for i in range(model.n_features)]
    return list(ch)


def _variances(model):
    """Per-component per-channel variances (the diagonal of each covariance)."""
    cov = np.asarray(model.covariances, dtype=np.float64)
    t = model.covariance_type
    k, d = model.n_components, model.n_features
    if t == "diag":
        return cov
    if t == "spherical":
        return np.repeat(cov[:, None], d, axis=1)
    if t == "tied":
        return np.broadcast_to(np.diagonal(cov), (k, d))
    return np.diagonal(cov, axis1=1, axis2=2)


def describe(model, source):
    """A JSON-ready dict describing ``model``."""
    from ..histogram import HistogramModel

    names = _channel_names(model)
    if isinstance(model, HistogramModel):
        return {
            "source": str(source),
            "kind": "histogram",
            "channels": model.channels
            if model.channels is None or isinstance(model.channels, str)
            else list(model.channels),
            "n_features": model.n_features,
            "bins": list(model.bins),
            "range": [list(map(float, r)) for r in model.range],
            "smoothing": float(model.smoothing),
            "n_samples": float(model.n_samples),
        }
    w = np.asarray(model.weights, dtype=np.float64)
    means = np.asarray(model.means, dtype=np.float64)
    sd = np.sqrt(_variances(model))
    return {
        "source": str(source),
        "kind": "mixture",
        "channels": model.channels
        if model.channels is None or isinstance(model.channels, str)
        else list(model.channels),
        "n_components": model.n_components,
        "n_features": model.n_features,
        "covariance_type": model.covariance_type,
        "weights_sum": float(w.sum()),
        "components": [
            {
                "weight": float(w[k]),
                "mean": dict(zip(names, map(float, means[k]))),
                "std": dict(zip(names, map(float, sd[k]))),
            }
            for k in np.argsort(-w, kind="stable")
        ],
    }


def render(summary):
    """The summary as aligned text."""
    lines = [f"{summary['source']}: {summary['kind']}"]
    ch = summary["channels"]
    ch_text = "unnamed" if ch is None else (ch if isinstance(ch, str) else ",".join(ch))
    if summary["kind"] == "histogram":
        lines += [
            f"  channels      {ch_text}",
            f"  bins          {' x '.join(map(str, summary['bins']))}",
            f"  range         {summary['range']}",
            f"  smoothing     {summary['smoothing']:g}",
            f"  samples       {summary['n_samples']:g}",
        ]
        return "\n".join(lines)
    lines += [
        f"  channels      {ch_text}",
        f"  components    {summary['n_components']} ({summary['covariance_type']} covariances)",
        f"  weights sum   {summary['weights_sum']:.6g}",
        "",
    ]
    comps = summary["components"]
    names = list(comps[0]["mean"])
    width = max(8, *(len(n) + 2 for n in names))
    header = "  weight    " + "".join(f"{'mean ' + n:>{width + 5}}" for n in names)
    header += "".join(f"{'sd ' + n:>{width + 3}}" for n in names)
    lines.append(header)
    for c in comps:
        row = f"  {c['weight']:<8.4f}  "
        row += "".join(f"{c['mean'][n]:>{width + 5}.2f}" for n in names)
        row += "".join(f"{c['std'][n]:>{width + 3}.2f}" for n in names)
        lines.append(row)
    lines.append("  (components sorted by weight)")
    return "\n".join(lines)
