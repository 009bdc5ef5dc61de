"""
A big image on Dask, written to Zarr
====================================

An image larger than memory is read lazily in blocks, evaluated block by
block, and written to a Zarr store chunk by chunk; only a few blocks are in
memory at a time. Here the "big" image is small so that the example runs in
seconds: the bundled photo tiled 4 x 4 into a 2048 x 2048 tiled TIFF, read in
blocks of 512 x 512. The same code runs on a gigapixel slide, on a local
cluster (:func:`pixgmm.io.dask_client`) or on a remote one.
"""

import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

import dask
import matplotlib.pyplot as plt
import numpy as np
import tifffile
import zarr
from dask.callbacks import Callback

import pixgmm
import pixgmm.io
from pixgmm.quantize import cf_attributes, decode

photo = pixgmm.io.read_image(resources.files("pixgmm").joinpath("data", "astronaut.jpg"))
big = np.tile(photo, (4, 4, 1))  # (2048, 2048, 3) uint8
folder = Path(tempfile.mkdtemp())
tifffile.imwrite(folder / "slide.tif", big, tile=(256, 256), photometric="rgb")

image = pixgmm.io.open_image_lazy(folder / "slide.tif", chunks=512)  # nothing read yet
print(image)

# %%
# Lazy maps, written in one pass
# ------------------------------
# :meth:`~pixgmm.SkinDetector.maps` on a Dask array returns lazy maps, every
# map of a block computed by one task. :func:`pixgmm.io.write_zarr_many`
# computes both stores in one pass over the shared graph and marks each
# complete only when every chunk is written. A small Dask callback records
# when each task finishes, to draw the run's progress.

maps = pixgmm.SkinDetector().maps(image, ("probability", "mask"), probability_dtype="uint8")
print({name: (m.dtype.name, m.chunksize) for name, m in maps.items()})


class Finished(Callback):
    """The time at which each task of a Dask computation finished."""

    def __init__(self):
        super().__init__()
        self.times = []

    def _posttask(self, key, result, dsk, state, worker_id):
        self.times.append(time.perf_counter())


progress = Finished()
start = time.perf_counter()
with progress, dask.config.set(scheduler="threads"):
    stores = pixgmm.io.write_zarr_many(
        [
            (maps["probability"], folder / "slide.probability.zarr", cf_attributes("uint8")),
            (maps["mask"], folder / "slide.mask.zarr"),
        ]
    )
print(f"{len(progress.times)} tasks in {time.perf_counter() - start:.2f} s")
print("colour tables cached:", pixgmm.cache_info())
for path in ("slide.probability.zarr", "slide.mask.zarr"):
    print(path, pixgmm.io.store_status(folder / path), pixgmm.io.is_complete(folder / path))

# %%
# What was written
# ----------------
# The probability is stored compactly as uint8 (``round(P * 254)``, 255 for
# "no value"); the store records the CF attributes ``scale_factor`` and
# ``_FillValue`` of :func:`pixgmm.quantize.cf_attributes`, which xarray
# decodes. The store's chunks are the image's blocks (drawn in white). In the
# progress curve, the first blocks wait while the detector's colour tables are
# built (once per process, then cached: a uint8 image this size takes the table
# engine); after that every block is one lookup per pixel.

store = zarr.open_array(folder / "slide.probability.zarr", mode="r")
print(store.shape, store.dtype, store.chunks, dict(store.attrs))
probability = decode(store[:])  # float64, NaN where no value

fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
im = axes[0].imshow(probability, cmap="viridis", vmin=0, vmax=1)
for edge in range(512, 2048, 512):
    axes[0].axhline(edge, color="white", linewidth=0.6)
    axes[0].axvline(edge, color="white", linewidth=0.6)
axes[0].set_title("P(skin) read back from slide.probability.zarr")
fig.colorbar(im, ax=axes[0], shrink=0.8)
axes[1].plot(np.array(progress.times) - start, np.arange(1, len(progress.times) + 1))
axes[1].set_xlabel("seconds")
axes[1].set_ylabel("tasks finished")
axes[1].set_title("progress of the run")

# %%
# The same values as in memory
# ----------------------------
# The lazy result is the NumPy call's, block by block. A second run on the
# finished stores changes nothing: a complete store is refused unless
# ``overwrite=True`` (the command line reports it as skipped).

in_memory = pixgmm.SkinDetector().maps(big, ("probability",), probability_dtype="uint8")
print("equal to NumPy:", np.array_equal(store[:], in_memory["probability"]))
try:
    pixgmm.io.write_zarr(maps["mask"], folder / "slide.mask.zarr")
except FileExistsError as error:
    print("second run:", error)
shutil.rmtree(folder)  # the example leaves nothing behind
