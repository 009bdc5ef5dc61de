"""The generated scene of ``bench_peers.py``: a Sentinel-2-like tile, its truth and training data.

Everything is drawn from fixed seeds, written once into a cache folder and reused by later
runs (the folder's name holds the size and :data:`VERSION`):

``scene.tif``
    ``size x size`` pixels, 10 uint16 bands (described ``B2 ... B12``, Sentinel-2's 10 and
    20 m bands), EPSG:32633 (UTM 33N) at 10 m, nodata 0; tiled 512 x 512, Deflate with the
    horizontal predictor, band-interleaved (what ``gdal_translate -co COMPRESS=DEFLATE
    -co PREDICTOR=2 -co TILED=YES -co INTERLEAVE=BAND`` gives: the layout of Sentinel-2's
    band files stacked, and the one GRASS, which reads a scene band by band, reads fastest;
    version 1 of the scene was pixel-interleaved, on which GRASS's ``i.maxlik`` took 2.4x
    as long). Each pixel is drawn from the full-covariance
    Gaussian of its class (one Gaussian per class, spectra shaped like water, forest, crops,
    grassland, bare soil and built-up land), rounded and clipped to 1..65535. A wedge along
    the left edge (6% of the tile, as at a swath edge) is nodata: 0 in every band.
``truth.tif``
    The class of every pixel (uint8, 1..6; 0 in the nodata wedge). Classes come from a
    warped Voronoi partition: parcels of about 90 pixels across with wavy borders.
``crop.tif``, ``crop_truth.tif``
    A ``crop x crop`` window of both (rows from the middle, columns from the left edge, so
    the crop holds part of the nodata wedge), with its own transform.
``training.gpkg``
    Polygons (field ``class``, int32): for each class ``polygons_per_class`` star-shaped
    polygons of 5 to 8 vertices, 3 to 8 pixels in radius, each inside one parcel of its
    class and never overlapping another.
``training.tif``
    The same polygons rasterised with ``rasterio.features.rasterize`` (GDAL's default rule:
    a pixel is inside when its centre is), uint8, 0 = unlabelled and declared nodata.
``validation.gpkg``
    Points at pixel centres (field ``class``), ``points_per_class`` per class, drawn from
    pixels outside every training polygon.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

VERSION = 2
BANDS = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
CLASS_NAMES = ("water", "forest", "crops", "grassland", "bare soil", "built-up")
CLASS_VALUES = tuple(range(1, len(CLASS_NAMES) + 1))
CRS = "EPSG:32633"
ORIGIN = (399960.0, 5300040.0)  # the upper-left corner of Sentinel-2 tile 33UUP
PIXEL = 10.0
NODATA = 0
BOA_OFFSET = 1000.0
SCENE_BLOCK = 512
SCENE_OPTIONS = {
    "compress": "deflate",
    "predictor": 2,
    "tiled": True,
    "blockxsize": SCENE_BLOCK,
    "blockysize": SCENE_BLOCK,
    "interleave": "band",
    "BIGTIFF": "IF_SAFER",
}
CLASS_SHARES = (0.12, 0.24, 0.22, 0.2, 0.1, 0.12)

# Mean surface reflectance x 10000 in B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12.
_SPECTRA = np.array(
    [
        [650, 560, 380, 330, 270, 250, 220, 210, 140, 110],  # water
        [320, 520, 330, 820, 2150, 2650, 2850, 2950, 1500, 700],  # forest
        [480, 780, 560, 1180, 2750, 3250, 3480, 3580, 2250, 1200],  # crops
        [430, 690, 640, 1020, 2000, 2300, 2480, 2580, 2500, 1550],  # grassland
        [1080, 1380, 1680, 1980, 2180, 2280, 2380, 2450, 3050, 2650],  # bare soil
        [1180, 1280, 1380, 1480, 1680, 1780, 1880, 1950, 2200, 2000],  # built-up
    ],
    dtype=np.float64,
)


def class_gaussians():
    """``{class value: (mean (10,), covariance (10, 10))}``: one full-covariance Gaussian each.

    Means are reflectance x 10000 plus :data:`BOA_OFFSET`, as in Sentinel-2 L2A products
    since processing baseline 04.00; standard deviations are 10% of the reflectance plus 60.
    The correlation
    between bands decays with their distance in the list (neighbouring bands move together,
    as they do in real spectra), with a random perturbation per class that keeps it
    positive definite.
    """
    rng = np.random.default_rng(18)
    d = len(BANDS)
    idx = np.arange(d)
    out = {}
    for value, mean in zip(CLASS_VALUES, _SPECTRA):
        rho = rng.uniform(0.55, 0.8)
        corr = rho ** np.abs(idx[:, None] - idx[None, :])
        a = rng.normal(0, 0.25, (d, d))
        corr = 0.8 * corr + 0.2 * np.corrcoef(a @ a.T + d * np.eye(d))
        sd = 0.1 * mean + 60.0
        out[value] = (mean + BOA_OFFSET, corr * np.outer(sd, sd))
    return out


def sizes(size, crop):
    """``(size, crop)`` checked: the crop fits in the tile."""
    if size < 64:
        raise ValueError(f"--size must be at least 64 pixels, got {size}")
    return size, min(crop, size)


def polygons_per_class(size):
    """300 polygons per class on a full tile, fewer (at least 4) on smaller ones."""
    return max(4, round(300 * (size / 5490) ** 2))


def points_per_class(size):
    """500 validation points per class on a full tile, fewer (at least 20) on smaller ones."""
    return max(20, round(500 * (size / 5490) ** 2))


def transform_of(row_off=0, col_off=0):
    from affine import Affine

    return Affine(PIXEL, 0.0, ORIGIN[0] + col_off * PIXEL, 0.0, -PIXEL, ORIGIN[1] - row_off * PIXEL)


def crop_window(size, crop):
    """``(row_off, col_off)`` of the crop: rows from the middle, columns from the left edge."""
    return (size - crop) // 2, 0


# -- the class map ---------------------------------------------------------------------------


def _warp(rows, cols, waves):
    """Smooth displacements (dy, dx) in pixels at the given pixel coordinates."""
    dy = np.zeros(np.broadcast(rows, cols).shape)
    dx = np.zeros_like(dy)
    for ky, kx, phase, amp, axis in waves:
        w = amp * np.sin(ky * rows + kx * cols + phase)
        if axis == 0:
            dy += w
        else:
            dx += w
    return dy, dx


def _class_strip(tree, seed_class, r0, r1, size, waves):
    rows = np.arange(r0, r1, dtype=np.float64)[:, None]
    cols = np.arange(size, dtype=np.float64)[None, :]
    dy, dx = _warp(rows, cols, waves)
    pts = np.stack([(rows + dy).ravel(), (cols + dx).ravel()], axis=1)
    _, nearest = tree.query(pts, workers=-1)
    strip = seed_class[nearest].reshape(r1 - r0, size).astype(np.uint8)
    wedge = cols < 0.12 * size * (1.0 - rows / size)  # nodata along the left edge
    strip[np.broadcast_to(wedge, strip.shape)] = NODATA
    return strip


def class_map(size):
    """The class of every pixel, ``(size, size)`` uint8: warped Voronoi parcels, 0 = nodata."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(180)
    n_seeds = max(36, round(4000 * (size / 5490) ** 2))
    seeds = rng.uniform(0, size, (n_seeds, 2))
    seed_class = rng.choice(np.array(CLASS_VALUES, np.uint8), size=n_seeds, p=CLASS_SHARES)
    seed_class[: 3 * len(CLASS_VALUES)] = CLASS_VALUES * 3  # every class, however small the tile
    waves = []
    for i in range(12):
        wavelength = rng.uniform(150, 700)
        angle = rng.uniform(0, math.pi)
        k = 2 * math.pi / wavelength
        waves.append((k * math.sin(angle), k * math.cos(angle), rng.uniform(0, 2 * math.pi),
                      rng.uniform(3, 9), i % 2))  # fmt: skip
    tree = cKDTree(seeds)
    out = np.empty((size, size), np.uint8)
    for r0 in range(0, size, 512):
        r1 = min(size, r0 + 512)
        out[r0:r1] = _class_strip(tree, seed_class, r0, r1, size, waves)
    return out


# -- writing ---------------------------------------------------------------------------------


def _profile(width, height, count, dtype, transform, nodata, **options):
    return {
        "driver": "GTiff", "width": width, "height": height, "count": count, "dtype": dtype,
        "crs": CRS, "transform": transform, "nodata": nodata, "NUM_THREADS": "ALL_CPUS",
        **options,
    }  # fmt: skip


def _write_scene(path, truth, rng):
    import rasterio

    size = truth.shape[0]
    gauss = class_gaussians()
    chol = {v: np.linalg.cholesky(c) for v, (_, c) in gauss.items()}
    profile = _profile(size, size, len(BANDS), "uint16", transform_of(), NODATA, **SCENE_OPTIONS)
    with rasterio.open(path, "w", **profile) as dst:
        dst.descriptions = BANDS
        for r0 in range(0, size, SCENE_BLOCK):
            lab = truth[r0 : r0 + SCENE_BLOCK]
            strip = np.zeros((*lab.shape, len(BANDS)), np.uint16)
            for value, (mean, _) in gauss.items():
                sel = lab == value
                n = int(sel.sum())
                z = rng.standard_normal((n, len(BANDS)))
                x = np.rint(mean + z @ chol[value].T)
                strip[sel] = np.clip(x, 1, 65535).astype(np.uint16)
            window = rasterio.windows.Window(0, r0, size, lab.shape[0])
            dst.write(np.moveaxis(strip, -1, 0), window=window)


def _write_truth(path, truth, transform):
    import rasterio

    h, w = truth.shape
    profile = _profile(w, h, 1, "uint8", transform, NODATA, compress="deflate", tiled=True,
                       blockxsize=256, blockysize=256)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(truth[None])
        dst.descriptions = ("class",)


def _write_crop(src_path, dst_path, window):
    import rasterio

    with rasterio.open(src_path) as src:
        profile = dict(src.profile)
        profile.update(width=window.width, height=window.height,
                       transform=src.window_transform(window), NUM_THREADS="ALL_CPUS")  # fmt: skip
        data = src.read(window=window)
        descriptions = src.descriptions
    with rasterio.open(dst_path, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions


def _star(rng, cy, cx, radius):
    """A star-shaped polygon's vertices (pixel coordinates, y then x) around a centre."""
    n = int(rng.integers(5, 9))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    r = radius * rng.uniform(0.7, 1.0, n)
    return cy + r * np.sin(angles), cx + r * np.cos(angles)


def training_polygons(truth, per_class, rng):
    """``[(shapely Polygon in map coordinates, class)]``: polygons inside parcels of a class."""
    import shapely

    size = truth.shape[0]
    taken = np.zeros(truth.shape, bool)
    out = []
    for value in CLASS_VALUES:
        made, tries = 0, 0
        while made < per_class and tries < per_class * 400:
            tries += 1
            radius = float(rng.uniform(3, 8))
            m = math.ceil(radius) + 1
            cy, cx = (int(v) for v in rng.integers(m, size - m, 2))
            win = (slice(cy - m, cy + m + 1), slice(cx - m, cx + m + 1))
            if taken[win].any() or not (truth[win] == value).all():
                continue
            taken[win] = True
            ys, xs = _star(rng, cy + 0.5, cx + 0.5, radius)
            coords = [(ORIGIN[0] + x * PIXEL, ORIGIN[1] - y * PIXEL) for y, x in zip(ys, xs)]
            out.append((shapely.Polygon(coords), value))
            made += 1
        if made < per_class:
            raise ValueError(
                f"could place only {made} of {per_class} training polygons of class {value} in "
                f"a {size} x {size} scene; choose a larger --size"
            )
    return out


def _write_vector(path, geoms, classes, geometry_type):
    import pyogrio.raw
    import shapely

    if Path(path).exists():
        Path(path).unlink()
    pyogrio.raw.write(
        str(path), shapely.to_wkb(np.asarray(geoms, dtype=object)),
        [np.asarray(classes, np.int32)], ["class"], driver="GPKG", layer=Path(path).stem,
        geometry_type=geometry_type, crs=CRS, dataset_options={"VERSION": "1.2"},
    )  # fmt: skip


def _write_training_raster(path, polygons, size):
    import rasterio
    from rasterio.features import rasterize

    labels = rasterize(polygons, out_shape=(size, size), transform=transform_of(), fill=0,
                       dtype="uint8")  # fmt: skip
    profile = _profile(size, size, 1, "uint8", transform_of(), 0, compress="deflate",
                       tiled=True, blockxsize=256, blockysize=256)  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(labels[None])
        dst.descriptions = ("class",)
    return labels


def _validation_points(truth, labels, per_class, rng):
    import shapely

    geoms, classes = [], []
    for value in CLASS_VALUES:
        rows, cols = np.nonzero((truth == value) & (labels == 0))
        pick = rng.choice(rows.size, size=min(per_class, rows.size), replace=False)
        for r, c in zip(rows[pick], cols[pick]):
            geoms.append(
                shapely.Point(ORIGIN[0] + (c + 0.5) * PIXEL, ORIGIN[1] - (r + 0.5) * PIXEL)
            )
            classes.append(value)
    return geoms, classes


def make_scene(root, size, crop):
    """Write (or reuse) the scene's files in ``root/peers-v{VERSION}-{size}-{crop}``.

    Returns a dict of the file paths and facts about them (``size``, ``crop``, pixel counts,
    training polygons and pixels per class, seconds spent generating).
    """
    import time

    import rasterio

    folder = Path(root) / f"peers-v{VERSION}-{size}-{crop}"
    info_path = folder / "scene.json"
    if info_path.is_file():
        return json.loads(info_path.read_text())
    t0 = time.perf_counter()
    tmp = folder.with_name(f"{folder.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = np.random.default_rng(1818)
    truth = class_map(size)
    _write_scene(tmp / "scene.tif", truth, rng)
    _write_truth(tmp / "truth.tif", truth, transform_of())
    row_off, col_off = crop_window(size, crop)
    window = rasterio.windows.Window(col_off, row_off, crop, crop)
    _write_crop(tmp / "scene.tif", tmp / "crop.tif", window)
    crop_truth = truth[row_off : row_off + crop, col_off : col_off + crop]
    _write_truth(tmp / "crop_truth.tif", crop_truth, transform_of(row_off, col_off))
    polygons = training_polygons(truth, polygons_per_class(size), rng)
    _write_vector(tmp / "training.gpkg", [p for p, _ in polygons], [c for _, c in polygons],
                  "Polygon")  # fmt: skip
    labels = _write_training_raster(tmp / "training.tif", polygons, size)
    geoms, classes = _validation_points(truth, labels, points_per_class(size), rng)
    _write_vector(tmp / "validation.gpkg", geoms, classes, "Point")
    info = {
        "version": VERSION,
        "size": size,
        "crop": crop,
        "crop_offset": [row_off, col_off],
        "bands": list(BANDS),
        "classes": dict(zip(map(str, CLASS_VALUES), CLASS_NAMES)),
        "nodata_pixels": int((truth == NODATA).sum()),
        "crop_nodata_pixels": int((crop_truth == NODATA).sum()),
        "class_pixels": {str(v): int((truth == v).sum()) for v in CLASS_VALUES},
        "polygons_per_class": polygons_per_class(size),
        "training_pixels": {str(v): int((labels == v).sum()) for v in CLASS_VALUES},
        "validation_points_per_class": {str(v): classes.count(v) for v in CLASS_VALUES},
        "scene_bytes": (tmp / "scene.tif").stat().st_size,
        "generation_s": round(time.perf_counter() - t0, 1),
    }
    (tmp / "scene.json").write_text(json.dumps(info, indent=1))
    try:
        os.replace(tmp, folder)
    except OSError:  # another process wrote the same scene first: keep its files
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def paths(root, size, crop):
    """The scene's file paths by name (``scene``, ``crop``, ``truth``, ``training_gpkg``, ...)."""
    folder = Path(root) / f"peers-v{VERSION}-{size}-{crop}"
    return {
        "folder": folder,
        "scene": folder / "scene.tif",
        "crop": folder / "crop.tif",
        "truth": folder / "truth.tif",
        "crop_truth": folder / "crop_truth.tif",
        "training_gpkg": folder / "training.gpkg",
        "training_tif": folder / "training.tif",
        "validation_gpkg": folder / "validation.gpkg",
    }
