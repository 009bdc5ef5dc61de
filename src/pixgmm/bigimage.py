"""Former home of the lazy readers, Zarr writers and Dask clients, now in :mod:`pixgmm.io`.

Kept so that code written for earlier versions keeps working: every name below
is :mod:`pixgmm.io`'s own object. New code imports from :mod:`pixgmm.io`.

>>> from pixgmm import bigimage, io
>>> bigimage.write_zarr is io.write_zarr
True
"""

from __future__ import annotations

from .io.cluster import compute, dask_client
from .io.lazy import open_image_lazy, parse_chunks
from .io.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from .io.zarrstore import (
    COMPLETE_ATTR,
    RUN_ATTR,
    is_complete,
    store_status,
    write_zarr,
    write_zarr_many,
)

__all__ = [
    "COMPLETE_ATTR",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "RUN_ATTR",
    "compute",
    "dask_client",
    "is_complete",
    "open_image_lazy",
    "parse_chunks",
    "store_status",
    "write_zarr",
    "write_zarr_many",
]
