"""GeoTIFF inputs on the command line: help texts, output names, and the one-time note.

Reading and writing GeoTIFFs is :mod:`pixgmm.io.geotiff`'s; this module says
which of a georeferenced input's outputs are GeoTIFFs (float maps, masks and
label maps: ``photo.probability.tif``; pictures stay PNG) and prints, once per
run, that a GeoTIFF's georeferencing is dropped when rasterio is not installed.
It imports only the standard library at module level (its help text is part of
the commands' ``--help``).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: File suffix of the GeoTIFF outputs of a georeferenced input.
GEO_SUFFIX = ".tif"
#: Maps that hold labels (a mask, class indices); their nodata is 255.
LABEL_MAPS = ("mask", "labels")

_GEO_HELP = """
GeoTIFF inputs (with pip install "pixgmm[geo]"): a TIFF with a CRS or a transform
is read with rasterio (any band count, uint8 to float, its nodata value). Its
float maps, masks and label maps are written as GeoTIFFs (photo.probability.tif)
with the input's CRS and transform; nodata is NaN in float maps and 255 in masks
(which hold 1 and 0) and uint8 label maps (65535 in uint16 ones), and every pixel
with a band equal to the input's nodata value (or NaN) is nodata in them. A
label map carries a colour table and its class names. Pictures (heatmap, overlay,
colour labels) stay PNG{npy}. Without rasterio such a TIFF is read as a plain
TIFF and a note says that its georeferencing is dropped.
"""

#: The GeoTIFF paragraph of the --help of commands with and without --float-format.
GEO_HELP = _GEO_HELP.format(npy="; --float-format npy still writes .npy")
GEO_HELP_NO_NPY = _GEO_HELP.format(npy="")

#: What ``--chunks`` adds for GeoTIFF inputs (the epilog of commands with --chunks).
GEO_BIG_HELP = (
    " The Zarr stores of a GeoTIFF input carry its georeferencing as the attributes crs "
    "(WKT), transform (the 6 affine coefficients) and nodata, which rioxarray reads from a "
    "DataArray's attributes."
)

_noted = []  # the one-time note about a missing rasterio, once printed


def probe(path, quiet=False):
    """:func:`pixgmm.io.probe_geotiff`, printing its note about a missing rasterio once per run."""
    from ..io.geotiff import probe as probe_geotiff

    def note(text):
        if not _noted:
            _noted.append(str(path))
            if not quiet:
                print(f"pixgmm: note: {text}", file=sys.stderr)

    return probe_geotiff(path, on_dropped=note)


def suffix(output, default):
    """The file suffix of ``output`` (a :class:`~pixgmm.cli.run.Output`) for a GeoTIFF input.

    Float maps, masks and label maps become GeoTIFFs (:data:`GEO_SUFFIX`);
    pictures keep ``default``, and so does a float map asked for as ``.npy``.
    """
    if output.map_key in LABEL_MAPS or (output.form == "float" and default != ".npy"):
        return GEO_SUFFIX
    return default


def writes(target):
    """True when ``target`` (named with :func:`suffix`) is written as a GeoTIFF."""
    return Path(target).suffix == GEO_SUFFIX
