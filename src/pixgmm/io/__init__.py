"""pixgmm's one I/O layer: images in, maps out, for the library and the command line alike.

Readers (eager and lazy), writers (atomic files, GeoTIFF, Zarr stores with a
completion marker), the pixel limit, and where Dask work runs. The command line
calls these and nothing else to touch a file. Names are loaded on first use, so
``import pixgmm.io`` imports no image library.

Every path may be a URL: ``s3://bucket/scene.tif``, ``gs://``, ``az://``,
``https://`` (read only), with credentials and endpoints from the standard
environment (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL``, ...) and the packages of
the ``cloud`` extra; :mod:`pixgmm.io.remote` says how each library is given a
URL, and :mod:`pixgmm.io.paths` answers for paths and URLs alike.

================================  ===========================================================
reading                           :func:`read_pages`, :func:`read_image`, :func:`video_frames`
reading lazily (Dask)             :func:`open_image_lazy`, :func:`open_pages_lazy`,
                                  :func:`parse_chunks`
GeoTIFF                           :func:`probe_geotiff`, :func:`write_geotiff`
samples (training, reference)     :func:`read_features`, :func:`write_features`,
                                  :func:`open_samples`
Zarr stores                       :func:`write_zarr`, :func:`write_zarr_many`,
                                  :func:`store_status`, :func:`is_complete`
other outputs (atomic)            :func:`write_png`, :func:`write_float`, :class:`StreamWriter`,
                                  :func:`atomic_target`
Dask                              :func:`dask_client`, :func:`compute`
pixel values                      :class:`PixelRule`
errors                            :class:`ReadError`, :class:`MissingInput`,
                                  :class:`PixelLimitError`, :class:`OutputError`,
                                  :class:`OutputExists`
================================  ===========================================================

>>> import numpy as np, tempfile, pixgmm.io
>>> path = tempfile.mkdtemp() + "/map.zarr"
>>> _ = pixgmm.io.write_zarr(np.zeros((4, 4), np.float32), path)
>>> pixgmm.io.store_status(path)
'complete'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

#: Public name -> (submodule, name in it).
_LAZY = {
    "COMPLETE_ATTR": ("zarrstore", "COMPLETE_ATTR"),
    "DEFAULT_MAX_PIXELS": ("limits", "DEFAULT_MAX_PIXELS"),
    "MAX_PIXELS_ENV": ("limits", "MAX_PIXELS_ENV"),
    "MissingInput": ("errors", "MissingInput"),
    "OutputError": ("errors", "OutputError"),
    "OutputExists": ("errors", "OutputExists"),
    "PixelLimitError": ("errors", "PixelLimitError"),
    "PixelRule": ("pixels", "PixelRule"),
    "ReadError": ("errors", "ReadError"),
    "StreamWriter": ("write", "StreamWriter"),
    "atomic_target": ("atomic", "atomic_target"),
    "compute": ("cluster", "compute"),
    "dask_client": ("cluster", "dask_client"),
    "open_samples": ("samples", "open_samples"),
    "read_features": ("vector", "read_features"),
    "write_features": ("vector", "write_features"),
    "is_complete": ("zarrstore", "is_complete"),
    "open_image_lazy": ("lazy", "open_image_lazy"),
    "open_pages_lazy": ("lazy", "open_pages_lazy"),
    "parse_chunks": ("lazy", "parse_chunks"),
    "probe_geotiff": ("geotiff", "probe"),
    "read_image": ("read", "read_image"),
    "read_pages": ("read", "read_pages"),
    "store_status": ("zarrstore", "store_status"),
    "video_frames": ("read", "video_frames"),
    "write_float": ("write", "write_float"),
    "write_geotiff": ("geotiff", "write_geotiff"),
    "write_png": ("write", "write_png"),
    "write_zarr": ("zarrstore", "write_zarr"),
    "write_zarr_many": ("zarrstore", "write_zarr_many"),
}

__all__ = [
    "COMPLETE_ATTR",
    "DEFAULT_MAX_PIXELS",
    "MAX_PIXELS_ENV",
    "MissingInput",
    "OutputError",
    "OutputExists",
    "PixelLimitError",
    "PixelRule",
    "ReadError",
    "StreamWriter",
    "atomic_target",
    "compute",
    "dask_client",
    "is_complete",
    "open_image_lazy",
    "open_pages_lazy",
    "open_samples",
    "parse_chunks",
    "probe_geotiff",
    "read_features",
    "read_image",
    "read_pages",
    "store_status",
    "video_frames",
    "write_features",
    "write_float",
    "write_geotiff",
    "write_png",
    "write_zarr",
    "write_zarr_many",
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'pixgmm.io' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    value = getattr(importlib.import_module(f".{module_name}", __name__), attr)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .atomic import atomic_target
    from .cluster import compute, dask_client
    from .errors import MissingInput, OutputError, OutputExists, PixelLimitError, ReadError
    from .geotiff import probe as probe_geotiff
    from .geotiff import write_geotiff
    from .lazy import open_image_lazy, open_pages_lazy, parse_chunks
    from .limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
    from .pixels import PixelRule
    from .read import read_image, read_pages, video_frames
    from .samples import open_samples
    from .vector import read_features, write_features
    from .write import StreamWriter, write_float, write_png
    from .zarrstore import COMPLETE_ATTR, is_complete, store_status, write_zarr, write_zarr_many
