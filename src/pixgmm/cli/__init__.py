"""The ``pixgmm`` command line: skin masks, density maps and label maps for files and videos.

One module per command (``skin``, ``demo``, ``density``, ``info``, ``fit``,
``classify``, ``evaluate``, ``accuracy``), registered on the group in
:mod:`.main`, and the parts they share:

- :mod:`.options`: the options every command takes and model loading;
- :mod:`.run`: the per-input driver (inputs in, named outputs out, one summary
  line each, failures reported per input);
- :mod:`.io`: finding inputs, reading images and video, writing atomically;
- :mod:`.data`: labelled pixels (text tables, images with masks) for ``fit``
  and ``evaluate``;
- :mod:`.render`: heatmaps, masks, overlays and label pictures;
- :mod:`.big`: the Dask options of ``skin`` and ``density`` (``--chunks``,
  ``--workers``, ``--scheduler``);
- :mod:`.geo`: GeoTIFF inputs read with rasterio, their outputs written as
  GeoTIFFs and georeferenced Zarr stores;
- :mod:`.summary`: what ``info`` prints;
- :mod:`.match`: an image's bands and value scale matched to the models
  (``--bands``, ``--scale auto``);
- :mod:`.legend`: the values of a label map and its legend;
- :mod:`.fittraining`: ``fit --training`` (samples, validation hold-out).

Run ``pixgmm --help`` or ``pixgmm COMMAND --help``. Every command that takes
images accepts files, folders and glob patterns, reads images in RGB order and
writes its outputs next to each other in ``--out`` (default: the current folder),
named after the input (``photo.jpg`` -> ``photo.mask.png``). Heavy modules
(numba kernels, imageio, tifffile, matplotlib) are imported inside the commands,
so ``pixgmm --help`` stays fast.

Exit status: 0 when every input succeeded, 1 when any input failed (each
failure is reported with its path and reason and the others are still
processed), 2 for usage errors (bad options, a bad model file).
"""

from __future__ import annotations

from .main import main

__all__ = ["main"]
