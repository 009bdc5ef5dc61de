"""
Fitting a colour model and choosing K by BIC
============================================

:func:`pixgmm.fitting.fit_em` runs pixgmm's own EM on every pixel of an image
(an 8-bit colour image through its colour histogram: exactly the EM on every
pixel, at the cost of its distinct colours). Given a range of component
counts it fits each and keeps the one with the lowest BIC; every fit is kept in
``candidates``, so the whole curve can be drawn.

The image here is generated: four regions whose colours are drawn from four
known Gaussians, so the right answer is K = 4.
"""

import matplotlib.pyplot as plt
import numpy as np

import pixgmm
from pixgmm.fitting import fit_em

rng = np.random.default_rng(0)
true_means = np.array([[70, 130, 200], [60, 140, 60], [210, 190, 140], [40, 40, 50]], float)
true_sd = np.array([[12, 10, 8], [10, 14, 10], [9, 9, 12], [8, 8, 8]], float)
h, w = 240, 360
yy, xx = np.mgrid[0:h, 0:w]
region = np.select(  # sky, a hill, a beach, a shadow
    [yy < 80 + 20 * np.sin(xx / 40), yy < 150 + 0.1 * xx, xx > 0.8 * yy + 60],
    [0, 1, 2],
    default=3,
)
rgb = np.clip(rng.normal(true_means[region], true_sd[region]), 0, 255).astype(np.uint8)

result = fit_em(rgb, range(1, 9), "diag", channels="RGB", random_state=0)
print(f"chosen K = {result.n_components} ({result.compression} of {result.n_points:,} colours)")
for fit in result.candidates:
    print(
        f"K={fit.n_components}  BIC {fit.bic:11.0f}  AIC {fit.aic:11.0f}  "
        f"{fit.n_iter:3d} iterations, converged: {fit.converged}"
    )
print("fitted means:\n", np.round(result.mixture.means[np.argsort(result.mixture.means[:, 0])]))

# %%
# The curve
# ---------
# BIC (``-2 log L + p log n``) penalises every extra parameter by the log of
# the pixel count; AIC (``-2 log L + 2 p``) less so, so it keeps rising K
# longer.

ks = [fit.n_components for fit in result.candidates]
fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
ax.plot(ks, [fit.bic for fit in result.candidates], "o-", label="BIC")
ax.plot(ks, [fit.aic for fit in result.candidates], "s--", label="AIC", alpha=0.7)
ax.axvline(result.n_components, color="gray", linestyle=":", label="lowest BIC")
ax.set_xlabel("components K")
ax.set_ylabel("criterion (lower is better)")
ax.set_title("diagonal colour mixtures of the generated image")
ax.legend()

# %%
# What the chosen mixture describes
# ---------------------------------
# Each pixel painted with the mean colour of its most probable component, and
# the log-density of every pixel under the fitted mixture.

model = result.mixture
component = pixgmm.predict(rgb, model, channels="RGB")
painted = np.clip(model.means[component], 0, 255).astype(np.uint8)
log_p = pixgmm.log_density(rgb, model, channels="RGB")

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
axes[0].imshow(rgb)
axes[0].set_title("generated image")
axes[1].imshow(painted)
axes[1].set_title(f"most probable of K={model.n_components} components")
im = axes[2].imshow(log_p, cmap="magma", vmin=np.percentile(log_p, 1))
axes[2].set_title("log-density")
fig.colorbar(im, ax=axes[2], shrink=0.8)
for ax in axes:
    ax.set_axis_off()
