"""How the maps of ``bench_peers.py`` agree: with the truth, with each other, and their rejects.

Each contender's label map is read back into class values (1..6), with the pixels it left
unclassified (nodata) and those it rejected kept apart:

- GRASS: ``i.maxlik``'s classes 1..6 (the training map's categories, in order), nodata 255;
  its reject map holds, per pixel, the first of 16 fixed chi-square levels the pixel's
  squared Mahalanobis distance reaches (category 1: distance >= 18.465).
- OTB: class values 1..6 everywhere, nodata pixels included (no mask is given to it).
- pixgmm's API recipe: classes 1..6, ``fill=0`` at nodata, ``reject=255``.
- pixgmm's command line: nodata 255 (declared in the file), rejected 254; the classes are
  either indices in ``--model`` order (0..5) or the class values (1..6). Which one is read
  from the map itself: every class covers part of the scene, so index maps hold a 0 and no
  6, value maps a 6 and no 0; anything else is reported as unreadable.
"""

from __future__ import annotations

import numpy as np

from _peers_tools import CLASS_VALUES


def read_band(path):
    import rasterio

    with rasterio.open(path) as src:
        return src.read(1), src.nodata


def decode(contender, path):
    """``(classes uint8 with 0 = none, rejected bool, how it was read)`` of a label map."""
    data, nodata = read_band(path)
    classes = np.zeros(data.shape, np.uint8)
    rejected = np.zeros(data.shape, bool)
    if contender == "grass":
        ok = np.isin(data, CLASS_VALUES)
        how = "class values 1..6 (GRASS categories), nodata 255"
    elif contender == "otb":
        ok = np.isin(data, CLASS_VALUES)
        how = "class values 1..6; nodata pixels classified too (no mask given)"
    elif contender in ("pixgmm-api", "pixgmm-dask"):
        ok = np.isin(data, CLASS_VALUES)
        rejected = data == 255
        how = "class values 1..6, 0 at nodata (fill=0), 255 rejected"
    elif contender == "pixgmm-cli":
        rejected = data == 254
        valid = ~rejected & (data != (255 if nodata is None else int(nodata)))
        seen = set(np.unique(data[valid]).tolist())
        n = len(CLASS_VALUES)
        if 0 in seen and n not in seen and seen <= set(range(n)):
            data = np.where(valid, data + 1, 0).astype(np.uint8)
            how = "class indices 0..5 in --model order (+1 = class value), nodata 255, 254 rejected"
        elif 0 not in seen and seen <= set(CLASS_VALUES):
            how = "class values 1..6, nodata 255, 254 rejected"
        else:
            return classes, rejected, f"unreadable: values {sorted(seen)}"
        ok = valid & np.isin(data, CLASS_VALUES)
    else:
        raise ValueError(contender)
    classes[ok] = data[ok]
    return classes, rejected, how


def points(path, transform, shape):
    """``(rows, cols, classes)`` of the validation points that fall inside a grid."""
    import pyogrio.raw
    import shapely

    meta, _, geometry, fields = pyogrio.raw.read(str(path))
    cls = np.asarray(fields[list(meta["fields"]).index("class")])
    xy = shapely.get_coordinates(shapely.from_wkb(geometry))
    inv = ~transform
    cols, rows = inv * (xy[:, 0], xy[:, 1])
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = (rows >= 0) & (rows < shape[0]) & (cols >= 0) & (cols < shape[1])
    return rows[inside], cols[inside], cls[inside]


def compare(maps, truth, valid_points):
    """Agreement figures for ``{key: (contender, labels path)}`` on one grid.

    Returns ``{"tools": {key: ...}, "pairs": [...]}``: per tool the share of the truth's
    pixels it classified, rejected and left out, its agreement with the truth over the
    pixels it classified, and its overall accuracy at the validation points it classified;
    per pair the share of the pixels both classified where they give the same class.
    """
    valid = truth != 0
    n_valid = int(valid.sum())
    decoded, tools = {}, {}
    for key, (contender, path) in maps.items():
        classes, rejected, how = decode(contender, path)
        decoded[key] = classes
        cl = valid & (classes != 0)
        rows, cols, ref = valid_points
        at = classes[rows, cols]
        tools[key] = {
            "read_as": how,
            "classified": int(cl.sum()),
            "classified_share": float(cl.sum() / n_valid),
            "rejected": int((valid & rejected).sum()),
            "rejected_share": float((valid & rejected).sum() / n_valid),
            "nodata_pixels_given_a_class": int((~valid & (classes != 0)).sum()),
            "truth_agreement": float((classes[cl] == truth[cl]).mean()) if cl.any() else None,
            "points_classified": int((at != 0).sum()),
            "points_accuracy": float((at[at != 0] == ref[at != 0]).mean()) if (at != 0).any()
            else None,
        }  # fmt: skip
    keys = list(decoded)
    pairs = []
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            both = valid & (decoded[a] != 0) & (decoded[b] != 0)
            same = int((decoded[a][both] == decoded[b][both]).sum())
            n = int(both.sum())
            pairs.append({"a": a, "b": b, "pixels": n, "differ": n - same,
                          "agreement": same / n if n else None})  # fmt: skip
    return {"valid_pixels": n_valid, "tools": tools, "pairs": pairs}, decoded


def confidence_difference(path_a, path_b, classes_a, classes_b):
    """Largest |confidence_a - confidence_b| over the pixels both classified."""
    a, _ = read_band(path_a)
    b, _ = read_band(path_b)
    both = (classes_a != 0) & (classes_b != 0)
    if not both.any():
        return None
    return float(np.nanmax(np.abs(a[both].astype(np.float64) - b[both].astype(np.float64))))


def grass_reject(reject_path, truth, decoded_pixgmm=None, rejected_pixgmm=None):
    """GRASS's reject categories against the chi-square law, and pixgmm's rejects inside them."""
    from scipy.stats import chi2

    data, _ = read_band(reject_path)
    valid = truth != 0
    d = 10
    out = {
        "category_1_share": float((data[valid] == 1).mean()),
        "category_1_threshold": 18.465,
        "category_1_expected_share_10_bands": float(chi2.sf(18.465, d)),
        "category_1_level_4_bands": float(chi2.cdf(18.465, 4)),
        "category_1_level_10_bands": float(chi2.cdf(18.465, d)),
        "pixgmm_threshold_0_999": float(chi2.ppf(0.999, d)),
    }
    if rejected_pixgmm is not None:
        rej = valid & rejected_pixgmm
        out["pixgmm_rejected_in_category_1"] = float((data[rej] == 1).mean()) if rej.any() else None
    return out


def reject_sets(grass_reject_path, rejected, truth):
    """How GRASS's category 1 and a pixgmm reject set at the same level coincide."""
    data, _ = read_band(grass_reject_path)
    valid = truth != 0
    g = valid & (data == 1)
    p = valid & rejected
    return {
        "grass_category_1": int(g.sum()),
        "pixgmm_rejected": int(p.sum()),
        "only_grass": int((g & ~p).sum()),
        "only_pixgmm": int((p & ~g).sum()),
        "agreement": float((g == p)[valid].mean()),
    }


def signature_difference(grass_sig, models):
    """GRASS's ``i.gensig`` signature against pixgmm's fitted models, class by class.

    ``models``: ``{class value: (mean, covariance)}``. Reports the largest relative
    difference of the means and of the covariances, raw and after putting GRASS's
    covariance on pixgmm's footing (the maximum-likelihood divisor n instead of n - 1,
    plus pixgmm's ``reg_covar`` of 1.0 for integer pixels).
    """
    worst = {"mean": 0.0, "covariance": 0.0, "covariance_ml_reg": 0.0}
    for k, (n, mean, cov) in grass_sig.items():
        m, c = models[k]
        scale = np.abs(cov).max()
        worst["mean"] = max(worst["mean"], float(np.max(np.abs(m - mean) / np.abs(mean))))
        worst["covariance"] = max(worst["covariance"], float(np.abs(c - cov).max() / scale))
        adj = cov * (n - 1) / n + np.eye(cov.shape[0])
        worst["covariance_ml_reg"] = max(worst["covariance_ml_reg"],
                                         float(np.abs(c - adj).max() / scale))  # fmt: skip
    return worst
