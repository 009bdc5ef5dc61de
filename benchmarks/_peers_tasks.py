"""What ``bench_peers.py`` runs in a fresh Python process: the I/O floor and pixgmm's API.

Each task is one function, run as ``python _peers_tasks.py TASK ARG ...``; the results file
quotes the function's source, so what was timed can be read there. The tasks import only
what they use, so a process's start-up is part of its time, as for the command-line tools.

``floor IMAGE OUT_DIR THREADS``
    The I/O-only pass, the floor of any classifier: read the GeoTIFF block by block (its
    own tiles) and write a uint8 and a float32 GeoTIFF of its size with pixgmm's creation
    options. The values written are cheap functions of the pixels (the index of the
    brightest band, and its share of the band sum), so the outputs compress like a label
    map and a confidence map, not like constant arrays. ``THREADS`` is ``default`` (GDAL's
    defaults, as pixgmm runs) or ``all`` (GDAL_NUM_THREADS and NUM_THREADS set to every
    core: multithreaded decoding and compression). The process then exits as the ``pixgmm``
    program does, without the interpreter's last garbage collection (``gc.freeze``).
``api-train IMAGE TRAINING_TIF MODEL_DIR``
    :func:`pixgmm.fitting.fit_classes_em` on the label raster, one full-covariance Gaussian
    per class, channels named from the band descriptions; one model file per class. The
    rasters are read inside ``rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS")``.
``api-classify IMAGE MODEL_DIR OUT_DIR CHUNKS LEVEL``
    The rioxarray recipe of the classification guide (``docs/guide/classification.md``):
    ``Classifier.classify(img, ("labels", "confidence"), chi2_level=LEVEL, reject=255)``
    and both maps written with ``rio.to_raster`` (pixgmm's creation options), inside
    ``rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=128 * 2**20)`` and with
    ``NUM_THREADS="ALL_CPUS"``, as the guide advises (GRASS and OTB get the same threads);
    the two writes are computed together (``compute=False``, one ``dask.compute``), so a
    Dask-backed scene is read and classified once for both. ``CHUNKS`` is ``none``
    (NumPy-backed) or a chunk size (Dask-backed, the guide's ``chunks={"x": 2048, "y": 2048}``).
"""

from __future__ import annotations

import sys
from pathlib import Path

#: The creation options pixgmm's command line writes GeoTIFF maps with (tiled 256 x 256,
#: Deflate); ``bench_peers.py`` checks them against a file ``pixgmm classify`` writes.
CREATION_OPTIONS = {"compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256}


def creation_options():
    """pixgmm's creation options, as ``bench_peers.py`` found them (else the defaults above)."""
    import json
    import os

    found = os.environ.get("PEERS_CREATION_OPTIONS")
    return json.loads(found) if found else dict(CREATION_OPTIONS)


def floor(image, out_dir, threads):
    import gc

    import numpy as np
    import rasterio

    options = creation_options()
    env = {"GDAL_NUM_THREADS": "ALL_CPUS"} if threads == "all" else {}
    if threads == "all":
        options["NUM_THREADS"] = "ALL_CPUS"
    out_dir = Path(out_dir)
    with rasterio.Env(**env), rasterio.open(image) as src:
        common = dict(driver="GTiff", width=src.width, height=src.height, count=1,
                      crs=src.crs, transform=src.transform, **options)  # fmt: skip
        with (
            rasterio.open(out_dir / "floor.u8.tif", "w", dtype="uint8", nodata=255, **common) as u8,
            rasterio.open(out_dir / "floor.f32.tif", "w", dtype="float32", nodata=float("nan"),
                          **common) as f32,
        ):  # fmt: skip
            for _, window in src.block_windows(1):
                block = src.read(window=window)
                u8.write(block.argmax(axis=0).astype(np.uint8), 1, window=window)
                share = block.max(axis=0) / (block.sum(axis=0, dtype=np.float32) + 1.0)
                f32.write(share.astype(np.float32), 1, window=window)
    gc.freeze()  # as pixgmm.cli.main.run: the objects alive at exit are not collected


def api_train(image, training, model_dir):
    import rasterio
    import rioxarray

    import pixgmm

    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):  # GDAL decodes on every core
        img = rioxarray.open_rasterio(image).load()  # (band, y, x)
        train = rioxarray.open_rasterio(training).squeeze().load()  # class values, 0 = none
    bands = list(img.attrs["long_name"])  # the band descriptions: B2 ... B12
    fits = pixgmm.fitting.fit_classes_em(img.values, train.values, 1, "full", channel_axis=0,
                                         classes=[1, 2, 3, 4, 5, 6], channels=bands)  # fmt: skip
    Path(model_dir).mkdir(parents=True, exist_ok=True)
    for label, fit in fits.items():
        model = fit.mixture.with_training({"n_pixels": int(fit.n_samples)})
        model.save(Path(model_dir) / f"{label}.json")


def api_classify(image, model_dir, out_dir, chunks, level):
    import threading

    import dask
    import rasterio
    import rioxarray

    import pixgmm

    options = {**creation_options(), "NUM_THREADS": "ALL_CPUS"}  # GDAL compresses on every core
    models = {int(p.stem): pixgmm.Mixture.load(p) for p in sorted(Path(model_dir).glob("*.json"))}
    clf = pixgmm.Classifier(models)  # equal priors: the rule of i.maxlik and OTB's bayes
    # and decodes on every core; its block cache holds a few chunks
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=128 * 2**20):
        if chunks == "none":
            img = rioxarray.open_rasterio(image)  # (band, y, x), NumPy-backed
        else:
            img = rioxarray.open_rasterio(image, chunks={"x": int(chunks), "y": int(chunks)})
        maps = clf.classify(img, ("labels", "confidence"), channel_axis="band", fill=0,
                            chi2_level=float(level), reject=255)  # fmt: skip
        # both files written in one pass over a Dask-backed scene (NumPy-backed: at once)
        write = {"compute": False, **options}
        dask.compute(
            maps["labels"]
            .rio.write_nodata(0)
            .rio.to_raster(Path(out_dir) / "labels.tif", lock=threading.Lock(), **write),
            maps["confidence"].rio.to_raster(
                Path(out_dir) / "confidence.tif", lock=threading.Lock(), **write
            ),
        )


TASKS = {"floor": floor, "api-train": api_train, "api-classify": api_classify}

if __name__ == "__main__":
    TASKS[sys.argv[1]](*sys.argv[2:])
