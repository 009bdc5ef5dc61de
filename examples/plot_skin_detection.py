"""
Skin detection on a photo
=========================

:class:`pixgmm.SkinDetector` scores every pixel by the likelihood ratio of Jones
& Rehg's skin and non-skin colour mixtures. Here it runs on the photo that
ships with pixgmm (the one ``pixgmm demo`` uses): the probability of skin at
every pixel, the mask at the default threshold, and the mask drawn over the photo.
"""

from importlib import resources
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import pixgmm
import pixgmm.io
from pixgmm.metrics import auc, roc_curve, roc_figure

photo = resources.files("pixgmm").joinpath("data", "astronaut.jpg")
rgb = pixgmm.io.read_image(photo)  # (H, W, 3) uint8, RGB order
print(rgb.shape, rgb.dtype)

# %%
# Every map in one pass
# ---------------------
# :meth:`~pixgmm.SkinDetector.maps` computes the probability and the mask
# together. The photo is RGB, which is the order the built-in models use;
# an OpenCV image (BGR) would need ``channels="BGR"``.

detector = pixgmm.SkinDetector(prior=0.5)
maps = detector.maps(rgb, ("probability", "mask"), channels="RGB")
probability, mask = maps["probability"], maps["mask"]
print(f"{mask.mean():.1%} of the pixels are marked as skin")

overlay = rgb.astype(np.float32)
overlay[mask] = 0.5 * overlay[mask] + 0.5 * np.array([255, 0, 255])  # skin tinted magenta

fig, axes = plt.subplots(1, 3, figsize=(12, 4.4), layout="constrained")
im = axes[0].imshow(probability, cmap="viridis", vmin=0, vmax=1)
axes[0].set_title("P(skin | colour)")
fig.colorbar(im, ax=axes[0], shrink=0.8)
axes[1].imshow(mask, cmap="gray")
axes[1].set_title("mask (P >= 0.5)")
axes[2].imshow(overlay.astype(np.uint8))
axes[2].set_title("overlay")
for ax in axes:
    ax.set_axis_off()

# %%
# Colour alone marks the face, and also the orange flight suit and the red
# stripes of the flag: they are skin-coloured. A likelihood-ratio threshold
# (Jones & Rehg's rule) instead of a posterior threshold:

strict = detector.mask(rgb, channels="RGB", ratio=8.0)
print(f"likelihood ratio >= 8: {strict.mean():.1%} of the pixels")

# %%
# ROC on labelled pixels
# ----------------------
# The UCI Skin Segmentation data set (245,057 labelled pixels, in B G R order)
# is not redistributed with pixgmm. When ``../shared/data/Skin_NonSkin.txt``
# sits beside the repository, this section scores the detector on it and draws
# the ROC curves, with the right channel order and with BGR read as RGB;
# without it, the figure says so.

# the repository's examples/ folder: the working directory when the gallery is built
EXAMPLES = Path(__file__).parent if "__file__" in globals() else Path.cwd()
UCI = EXAMPLES.resolve().parent.parent / "shared" / "data" / "Skin_NonSkin.txt"

if UCI.is_file():
    table = np.loadtxt(UCI, dtype=np.int64)
    pixels, labels = table[:, :3].astype(np.uint8), table[:, 3]  # B G R, 1 = skin, 2 = not
    scores = {
        "channels='BGR' (right)": detector.log_ratio(pixels, channels="BGR"),
        "BGR read as RGB (wrong)": detector.log_ratio(pixels, channels="RGB"),
    }
    curves = {name: roc_curve(s, labels, positive=1) for name, s in scores.items()}
    for name, s in scores.items():
        print(f"{name}: AUC {auc(s, labels, positive=1):.4f}")
    roc = roc_figure(curves, title=f"Jones & Rehg on {len(labels):,} UCI pixels", mark_fpr=[0.05])
else:
    print(f"{UCI} is absent: no ROC curve drawn")
    roc, ax = plt.subplots(figsize=(6, 2))
    ax.text(
        0.5,
        0.5,
        "UCI Skin Segmentation data absent\n(../shared/data/Skin_NonSkin.txt,"
        " not redistributed):\nno ROC curve in this build",
        ha="center",
        va="center",
    )
    ax.set_axis_off()
