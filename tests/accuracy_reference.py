"""A slow, obviously-correct reference for the accuracy report, sample by sample.

Written independently of :mod:`pixgmm.metrics._estimators`: no confusion matrix,
no ``p_ij``. Every quantity is a stratified mean (or a ratio of two) of a 0/1
indicator per sample, with the textbook variances of stratified random sampling
(Cochran 1977, sections 5.3 and 6.11; Stehman 2014, Int. J. Remote Sens. 35,
4923-4939, eqs. 2-3 and 27-28, without the finite-population correction):

- a mean  Y = sum_h W_h ybar_h,                V(Y) = sum_h W_h^2 s2_yh / n_h;
- a ratio R = Y / X,  V(R) = (1 / X^2) sum_h W_h^2 (s2_yh + R^2 s2_xh - 2 R s_xyh) / n_h,
  where the bracket is the sample variance of the residuals y - R x in stratum h,

with ``s2`` the sample variances (divisor n_h - 1) inside stratum h, computed by
loops. Olofsson et al. (2014) derive their eqs. 5-7 and 10 from these, with the
strata equal to the map classes.
"""

from __future__ import annotations

import math


def _mean(values):
    return sum(values) / len(values)


def _cov(a, b):
    """Sample covariance with divisor n - 1 (NaN for a single value)."""
    n = len(a)
    if n < 2:
        return math.nan
    ma, mb = _mean(a), _mean(b)
    return sum((x - ma) * (y - mb) for x, y in zip(a, b)) / (n - 1)


def _strata(map_values, pixels):
    total = sum(pixels.values())
    members = {h: [] for h in pixels}
    for s, m in enumerate(map_values):
        members[m].append(s)
    return {h: (pixels[h] / total, idx) for h, idx in members.items() if pixels[h] > 0}


def stratified_mean(indicator, map_values, pixels):
    """(estimate, variance) of the population mean of ``indicator`` (one value per sample)."""
    est = var = 0.0
    for w, idx in _strata(map_values, pixels).values():
        if not idx:
            return math.nan, math.nan
        y = [indicator[s] for s in idx]
        est += w * _mean(y)
        var += w * w * _cov(y, y) / len(y)
    return est, var


def stratified_ratio(numerator, denominator, map_values, pixels):
    """(estimate, variance) of the ratio of the population means of two indicators."""
    y_hat, _ = stratified_mean(numerator, map_values, pixels)
    x_hat, _ = stratified_mean(denominator, map_values, pixels)
    if not x_hat > 0:
        return math.nan, math.nan
    r = y_hat / x_hat
    var = 0.0
    for w, idx in _strata(map_values, pixels).values():
        # s2_y + R^2 s2_x - 2 R s_xy, as the variance of the residuals y - R x (no cancellation)
        d = [numerator[s] - r * denominator[s] for s in idx]
        var += w * w * _cov(d, d) / len(idx)
    return r, var / (x_hat * x_hat)


def olofsson(map_values, reference_values, pixels):
    """Every stratified estimate of the report, by class, as plain floats.

    ``pixels`` maps every map class (stratum) to its pixel count; returns a dict of
    ``overall`` (estimate, variance) and, per class, ``users``, ``producers``,
    ``area`` (estimate, variance of the area proportion).
    """
    m, r = list(map_values), list(reference_values)
    classes = sorted(set(m) | set(r) | set(pixels))
    pixels = {c: pixels.get(c, 0) for c in classes}
    correct = [1.0 if a == b else 0.0 for a, b in zip(m, r)]
    out = {"overall": stratified_mean(correct, m, pixels)}
    for c in classes:
        is_ref = [1.0 if b == c else 0.0 for b in r]
        hit = [1.0 if a == c and b == c else 0.0 for a, b in zip(m, r)]
        out[c] = {
            "area": stratified_mean(is_ref, m, pixels),
            "producers": stratified_ratio(hit, is_ref, m, pixels),
        }
        # user's accuracy is a mean inside stratum c only: the share of its samples that are c
        mine = [b for a, b in zip(m, r) if a == c]
        if mine:
            y = [1.0 if b == c else 0.0 for b in mine]
            out[c]["users"] = (_mean(y), _cov(y, y) / len(y))
        else:
            out[c]["users"] = (math.nan, math.nan)
    return out
