"""
A mixture's density and responsibilities
========================================

The evaluation functions take an image of any leading shape whose last axis
holds the channels. An "image" whose pixels are the points of a grid over a
two-channel feature space shows what they compute: the density of a
three-component :class:`pixgmm.Mixture`, its log (exact far into the tails,
where the density itself underflows), each component's responsibility, and the
most probable component.
"""

import matplotlib.pyplot as plt
import numpy as np

import pixgmm

model = pixgmm.Mixture(
    weights=[0.5, 0.3, 0.2],
    means=[[-2.0, 0.0], [1.5, 1.0], [2.0, -2.0]],
    covariances=[
        [[1.0, 0.6], [0.6, 1.0]],
        [[0.5, 0.0], [0.0, 1.5]],
        [[0.3, -0.2], [-0.2, 0.6]],
    ],
    covariance_type="full",
)

# a (300, 400, 2) "image": the x and y coordinates of every grid point
x = np.linspace(-6, 6, 400)
y = np.linspace(-5, 4, 300)
grid = np.stack(np.meshgrid(x, y), axis=-1)

density = pixgmm.density(grid, model)
log_density = pixgmm.log_density(grid, model)
resp = pixgmm.responsibilities(grid, model)  # (300, 400, 3), each pixel sums to 1
label = pixgmm.predict(grid, model)  # (300, 400) index of the most probable component
print(pixgmm.explain(pixgmm.log_density, grid, model), "engine")
print(f"density integrates to {density.sum() * (x[1] - x[0]) * (y[1] - y[0]):.4f}")

# %%
# Density, log-density, responsibilities and labels
# -------------------------------------------------
# The responsibilities of the three components are drawn as the red, green and
# blue channels of one picture: pure colours where one component takes all,
# mixtures of colours along the boundaries.

extent = (x[0], x[-1], y[0], y[-1])
fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), layout="constrained")
im = axes[0, 0].imshow(density, origin="lower", extent=extent, cmap="viridis")
axes[0, 0].set_title("density")
fig.colorbar(im, ax=axes[0, 0])
im = axes[0, 1].imshow(log_density, origin="lower", extent=extent, cmap="magma")
axes[0, 1].contour(x, y, log_density, levels=[-20, -10, -5, -3], colors="white", linewidths=0.7)
axes[0, 1].set_title("log-density (contours at -20, -10, -5, -3)")
fig.colorbar(im, ax=axes[0, 1])
axes[1, 0].imshow(resp, origin="lower", extent=extent)
axes[1, 0].set_title("responsibilities of components 0, 1, 2 as R, G, B")
im = axes[1, 1].imshow(label, origin="lower", extent=extent, cmap="tab10", vmin=0, vmax=9)
axes[1, 1].set_title("predict: the most probable component")
for ax in axes.flat:
    ax.plot(*np.asarray(model.means).T, "w+", markersize=12, markeredgewidth=2)

# %%
# Log space
# ---------
# Far from every component the density underflows to 0 in float64, but the
# log-density stays finite and exact. Along the line y = 0:

far = np.array([[10.0, 0.0], [40.0, 0.0], [400.0, 0.0]])
print("density:    ", pixgmm.density(far, model))
print("log_density:", pixgmm.log_density(far, model))
