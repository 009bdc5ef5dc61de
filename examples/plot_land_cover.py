"""
Land cover: train, classify, assess
===================================

The land-cover workflow on a generated six-band scene (reflectance x 10000 in
uint16, as Sentinel-2 bands B2, B3, B4, B8, B11, B12 would hold it): one
Gaussian mixture per class fitted to training areas, the map with its
confidence, margin and entropy from one :meth:`pixgmm.Classifier.classify`
call, and the accuracy report of Olofsson et al. (2014) from a stratified random
sample of reference points, with its confusion matrix and area estimates.
On real files the same steps are ``pixgmm fit``, ``pixgmm classify`` and
``pixgmm accuracy`` (see the user guide's land-cover page).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

import pixgmm
from pixgmm.fitting import fit_classes_em
from pixgmm.metrics import accuracy_report, area_estimates_figure, confusion_matrix_figure

rng = np.random.default_rng(42)
NAMES = {1: "water", 2: "forest", 3: "crops", 4: "urban"}
SPECTRA = np.array(  # mean of each class in each band
    [
        [900, 800, 600, 400, 200, 150],
        [500, 800, 500, 4000, 2000, 900],
        [900, 1200, 1400, 3000, 2800, 2000],
        [1500, 1600, 1800, 2800, 3100, 2700],
    ],
    float,
)
NOISE = np.array([150, 400, 700, 700])  # crops and urban overlap: the map will not be perfect

# fields: the nearest of 40 random seeds, each seed a class (water rarer)
h = w = 256
seeds = rng.uniform(0, h, (40, 2))
seed_class = rng.choice([1, 2, 3, 4], size=40, p=[0.15, 0.35, 0.3, 0.2])
yy, xx = np.mgrid[0:h, 0:w]
nearest = np.argmin((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2, -1)
truth = seed_class[nearest]  # (256, 256) the true class of every pixel
noise = rng.normal(size=(h, w, 6)) * NOISE[truth - 1, None]
scene = np.clip(SPECTRA[truth - 1] + noise, 1, 10000).astype(np.uint16)  # (256, 256, 6)

# %%
# Training areas and the class models
# -----------------------------------
# A label raster holds the training pixels: 0 where nothing is known, the class
# value inside a few 12 x 12 squares drawn in fields of each class. One
# full-covariance mixture of two components is fitted per class.

training = np.zeros((h, w), np.uint8)
for c in NAMES:
    rows, cols = np.nonzero(truth == c)
    for i in rng.choice(len(rows), 4, replace=False):
        r, q = min(rows[i], h - 12), min(cols[i], w - 12)
        training[r : r + 12, q : q + 12] = np.where(truth[r : r + 12, q : q + 12] == c, c, 0)

fits = fit_classes_em(scene, training, 2, "full", classes=list(NAMES), random_state=0)
for c, fit in fits.items():
    print(f"{NAMES[c]:>6}: {fit.n_samples:6.0f} training pixels, converged {fit.converged}")

classifier = pixgmm.Classifier(fits, priors="counts")  # priors from the training-pixel counts
print("least separable pair:", classifier.summary()["least_separable"])

# %%
# The map and its uncertainty, in one pass
# ----------------------------------------
# ``confidence`` is the winning posterior, ``margin`` the best posterior minus
# the second best, ``entropy`` the posterior's entropy in nats (0 when one class
# takes all, log 4 = 1.39 at most here). Pixels outside the 99.9% chi-square
# contour of their class are rejected (label 255).

maps = classifier.classify(
    scene, ("labels", "confidence", "margin", "entropy"), chi2_level=0.999, reject=255
)
labels = maps["labels"]
print({name: (m.dtype.name, m.shape) for name, m in maps.items()})
print(f"rejected: {(labels == 255).mean():.2%} of the pixels")

cmap = ListedColormap(["#3b7dd8", "#2e7d32", "#e0c341", "#9e9e9e"])
shown = np.where(labels == 255, np.nan, labels)
composite = scene[..., [5, 3, 2]].astype(float)  # SWIR, NIR, red: a false-colour picture
composite = np.clip(composite / np.percentile(composite, 99, axis=(0, 1)), 0, 1)

classes_style = {"cmap": cmap, "vmin": 0.5, "vmax": 4.5}
fig, axes = plt.subplots(2, 3, figsize=(12, 8), layout="constrained")
panels = [
    (composite, "bands B12, B8, B4", None),
    (truth, "true classes", classes_style),
    (shown, "map (white: rejected)", classes_style),
    (maps["confidence"], "confidence", {"cmap": "viridis", "vmin": 0.25, "vmax": 1}),
    (maps["margin"], "margin", {"cmap": "viridis", "vmin": 0, "vmax": 1}),
    (maps["entropy"], "entropy (nats)", {"cmap": "magma", "vmin": 0, "vmax": np.log(4)}),
]
for ax, (image, title, style) in zip(axes.flat, panels):
    im = ax.imshow(image, interpolation="nearest", **(style or {}))
    ax.set_title(title)
    ax.set_axis_off()
    if style is classes_style:  # the colour bar names the classes
        bar = fig.colorbar(im, ax=ax, shrink=0.75, ticks=list(NAMES))
        bar.ax.set_yticklabels(list(NAMES.values()))
    elif style is not None:
        fig.colorbar(im, ax=ax, shrink=0.75)
axes[0, 0].contour(training > 0, levels=[0.5], colors="white", linewidths=0.8)

# %%
# Accuracy and area estimates
# ---------------------------
# Reference points: 60 drawn at random within each map class (a stratified
# random sample, the map classes as strata), labelled with the true class.
# With the map's pixel count per class, the report adds the stratified
# estimates of Olofsson et al. (2014): accuracies and the area of every class,
# with 95% confidence intervals, in hectares for 10 m pixels.

classes, counts = np.unique(labels[labels != 255], return_counts=True)
points = np.concatenate(
    [rng.choice(np.flatnonzero(labels.ravel() == c), 60, replace=False) for c in classes]
)
report = accuracy_report(
    labels.ravel()[points],
    truth.ravel()[points],
    mapped_counts=dict(zip(classes.tolist(), counts.tolist())),
    pixel_area=100.0,
    names=NAMES,
)
print(report)
true_ha = np.bincount(truth.ravel(), minlength=5)[1:] * 100.0 / 10_000  # 100 m2 pixels
print("true areas (ha):", ", ".join(f"{n} {a:.0f}" for n, a in zip(NAMES.values(), true_ha)))

matrix = confusion_matrix_figure(report)
areas = area_estimates_figure(report)
