"""Skin detectors on the UCI Skin Segmentation data: built-in, fitted mixtures, histograms.

Data: ``../shared/data/Skin_NonSkin.txt`` (UCI Machine Learning Repository, "Skin
Segmentation", Bhatt & Dhall): 245,057 pixels, one per row, columns **B G R label**
(label 1 = skin, 2 = non-skin), so the colour order is BGR.

Split: 50/50, stratified by label, seeded. For each class separately the row
indices are shuffled with ``numpy.random.default_rng(SEED)`` (one generator,
skin first, then non-skin) and the first half (rounded down) goes to the test
split, the rest to the training split. ``SEED = 0``.

Detectors, all scored by the log likelihood ratio on the held-out split:

1. the built-in Jones & Rehg (1999) mixtures with ``channels="BGR"`` declared;
2. the same mixtures with the order declared wrongly (the BGR pixels read as RGB);
3. a 16-component diagonal mixture per class fitted with :func:`pixgmm.fit_classes`
   on the training split (defaults: ``reg_covar=1e-6``, at most 1,000,000 pixels,
   ``random_state=0``), and the same with ``reg_covar=1`` (see the note in the output);
4. a 32-bins-per-channel :class:`pixgmm.HistogramModel` per class (smoothing 1)
   counted on the training split.

Reported: AUC, the true-positive rate at 1%, 5% and 10% false positives, and the
false-positive rate at 80% true positives, on the test split (thresholds read off
the test split's own ROC curve).

Usage::

    python benchmarks/uci_skin.py            # prints the table, writes benchmarks/uci_results.md
    python benchmarks/uci_skin.py --data PATH --out PATH
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

import pixgmm
from _machine import cpu_model
from pixgmm.metrics import auc, roc_curve, tpr_at_fpr

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = (HERE.parent / ".." / "shared" / "data" / "Skin_NonSkin.txt").resolve()
SEED = 0
SKIN, NONSKIN = 1, 2
FPRS = (0.01, 0.05, 0.10)
#: Jones & Rehg reported their detectors at about this detection rate.
TPR_POINT = 0.80


def load(path):
    """``(pixels (N, 3) uint8 in BGR order, labels (N,) int)``."""
    data = np.loadtxt(path, dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 4:
        raise SystemExit(f"{path}: expected 4 columns (B G R label), got shape {data.shape}")
    pixels = data[:, :3]
    if pixels.min() < 0 or pixels.max() > 255:
        raise SystemExit(f"{path}: colour values outside 0..255")
    return pixels.astype(np.uint8), data[:, 3]


def colour_codes(pixels):
    """One integer per 8-bit colour."""
    p = pixels.astype(np.int64)
    return (p[:, 0] << 16) | (p[:, 1] << 8) | p[:, 2]


def stratified_split(labels, seed=SEED):
    """Boolean test mask: half of every class (rounded down), chosen by a seeded shuffle."""
    rng = np.random.default_rng(seed)
    test = np.zeros(labels.shape[0], dtype=bool)
    for c in (SKIN, NONSKIN):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test[idx[: idx.size // 2]] = True
    return test


def score(name, detector, pixels, labels, channels, seconds=None):
    lr = detector.log_ratio(pixels, channels=channels)
    row = {"name": name, "auc": auc(lr, labels, positive=SKIN)}
    for f in FPRS:
        row[f] = tpr_at_fpr(lr, labels, f, positive=SKIN)[0]
    fpr, tpr, _ = roc_curve(lr, labels, positive=SKIN)
    row["fpr_at_tpr"] = float(fpr[np.argmax(tpr >= TPR_POINT)])
    row["seconds"] = seconds
    return row


def run(data_path):
    pixels, labels = load(data_path)
    test = stratified_split(labels)
    x_tr, y_tr = pixels[~test], labels[~test]
    x_te, y_te = pixels[test], labels[test]
    info = {
        "n": labels.size,
        "n_skin": int(np.count_nonzero(labels == SKIN)),
        "n_train": int(y_tr.size),
        "n_test": int(y_te.size),
        "n_test_skin": int(np.count_nonzero(y_te == SKIN)),
        "n_colours": int(np.unique(pixels, axis=0).shape[0]),
        "seen": float(np.isin(colour_codes(x_te), colour_codes(x_tr)).mean()),
    }
    rows = []
    jr = pixgmm.SkinDetector()
    rows.append(score('Jones & Rehg mixtures, `channels="BGR"` (correct)', jr, x_te, y_te, "BGR"))
    rows.append(score("Jones & Rehg mixtures, BGR read as RGB (wrong)", jr, x_te, y_te, "RGB"))

    for reg in (1e-6, 1.0):
        t0 = time.perf_counter()
        models = pixgmm.fit_classes(x_tr, y_tr, 16, "diag", reg_covar=reg, channels="BGR")
        seconds = time.perf_counter() - t0
        det = pixgmm.SkinDetector(models[SKIN], models[NONSKIN])
        name = f"16-component diagonal mixtures fitted on train (`reg_covar={reg:g}`)"
        rows.append(score(name, det, x_te, y_te, "BGR", seconds))
        if reg == 1e-6:
            info["min_var_skin"] = float(models[SKIN].covariances.min())
            info["min_var_nonskin"] = float(models[NONSKIN].covariances.min())

    t0 = time.perf_counter()
    hist = {
        c: pixgmm.HistogramModel.fit(x_tr[y_tr == c], bins=32, channels="BGR")
        for c in (SKIN, NONSKIN)
    }
    seconds = time.perf_counter() - t0
    det = pixgmm.SkinDetector(hist[SKIN], hist[NONSKIN])
    rows.append(
        score("32-bins-per-channel histograms counted on train", det, x_te, y_te, "BGR", seconds)
    )
    return rows, info


def table(rows):
    lines = [
        "| detector (scored on the held-out half) | AUC | TPR at 1% FPR | TPR at 5% FPR "
        "| TPR at 10% FPR | FPR at 80% TPR | fit time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        fit_time = "built in" if r["seconds"] is None else f"{r['seconds']:.2f} s"
        lines.append(
            f"| {r['name']} | {r['auc']:.4f} | {r[0.01]:.4f} | {r[0.05]:.4f} | {r[0.10]:.4f} "
            f"| {r['fpr_at_tpr']:.4f} | {fit_time} |"
        )
    return "\n".join(lines)


def machine():
    cpu = cpu_model()
    import os

    return (
        f"{cpu}, {os.cpu_count()} logical CPU(s), Python {platform.python_version()}, "
        f"NumPy {np.__version__}, pixgmm {pixgmm.__version__}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE / "uci_results.md")
    args = parser.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"{args.data} not found; pass --data PATH to Skin_NonSkin.txt")
    rows, info = run(args.data)
    text = "\n".join(
        [
            "# Skin detection on the UCI Skin Segmentation data",
            "",
            "Produced by `python benchmarks/uci_skin.py`. Data: `Skin_NonSkin.txt`, "
            f"{info['n']:,} pixels ({info['n_skin']:,} skin), {info['n_colours']:,} distinct "
            "colours, columns B G R label. Split: 50/50 stratified by label, "
            f"`numpy.random.default_rng({SEED})`; {info['n_train']:,} training and "
            f"{info['n_test']:,} test pixels ({info['n_test_skin']:,} skin). Score: the log "
            "likelihood ratio; TPR at a given FPR is read off the test split's ROC curve.",
            "",
            table(rows),
            "",
            f"With `reg_covar=1e-6` the smallest fitted variance is {info['min_var_skin']:.3g} "
            f"(skin) and {info['min_var_nonskin']:.3g} (non-skin): a component can collapse "
            "onto a single 8-bit colour that recurs many times in the data. `reg_covar=1` "
            "keeps every variance at least 1.",
            "",
            f"The halves share colours: {info['seen']:.1%} of the test pixels have a colour "
            "(exact B, G, R) that also occurs in the training half, so the held-out scores of "
            "the fitted models and histograms measure how well they describe this data set, "
            "not how well they generalise to other images.",
            "",
            f"Machine: {machine()}.",
            "",
        ]
    )
    print(text)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
