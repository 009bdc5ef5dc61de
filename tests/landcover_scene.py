"""A generated land-cover scene for the tests: a 6-band uint16 GeoTIFF and its samples, real files.

Written by rasterio (the scene, a label raster) and pyogrio (GeoPackages of
training polygons and points, validation points), in EPSG:32633 with 10 m
pixels. Four classes (1 water, 2 forest, 3 crops, 4 urban) with well-separated
spectra; a nodata patch (0 in every band). Everything the tests need to know
about it (the class of every pixel, the pixels each polygon covers) is
computed here with NumPy, independently of pixgmm.
"""

from __future__ import annotations

import numpy as np

CRS = "EPSG:32633"
X0, Y0, SIZE = 500000.0, 4200000.0, 10.0
H, W = 120, 150
BANDS = ("B2", "B3", "B4", "B8", "B11", "B12")
#: Mean reflectance (x 10000) of each class in each band.
SPECTRA = {
    1: (900, 800, 600, 400, 200, 150),  # water
    2: (500, 800, 500, 4000, 2000, 900),  # forest
    3: (900, 1200, 1400, 3000, 2800, 2000),  # crops
    4: (1800, 1900, 2100, 2600, 3300, 3000),  # urban
}
NOISE = 500.0
#: Training rectangles: (class, row0, row1, col0, col1), pixel ranges (end exclusive).
RECTANGLES = [
    (1, 5, 20, 5, 25),
    (1, 40, 55, 10, 30),
    (2, 5, 25, 60, 80),
    (2, 45, 60, 70, 90),
    (3, 10, 30, 110, 135),
    (3, 50, 70, 105, 125),
    (4, 90, 105, 20, 50),
    (4, 95, 115, 90, 120),
]


def classes():
    """The class of every pixel: 1..3 in columns of 50, 4 below row 80."""
    field = 1 + np.arange(W)[None, :].repeat(H, 0) // 50
    field[80:] = 4
    return field


def nodata_mask():
    invalid = np.zeros((H, W), bool)
    invalid[0:3, 140:150] = True
    return invalid


def transform():
    from rasterio.transform import from_origin

    return from_origin(X0, Y0, SIZE, SIZE)


def scene_pixels(seed=7):
    """(H, W, 6) uint16 pixels of the scene, 0 on the nodata patch."""
    rng = np.random.default_rng(seed)
    field = classes()
    means = np.array([SPECTRA[c] for c in (1, 2, 3, 4)], float)
    pixels = means[field - 1] + rng.normal(0, NOISE, (H, W, len(BANDS)))
    pixels = np.clip(np.round(pixels), 1, 65535).astype(np.uint16)
    pixels[nodata_mask()] = 0
    return pixels


def write_scene(path, pixels=None, order=None, descriptions=True, **options):
    """Write the scene as a GeoTIFF; ``order`` permutes its bands (0-based), with descriptions."""
    import rasterio

    pixels = scene_pixels() if pixels is None else pixels
    order = list(range(len(BANDS))) if order is None else list(order)
    profile = dict(driver="GTiff", width=W, height=H, count=len(order), dtype="uint16", crs=CRS,
                   transform=transform(), nodata=0, tiled=True, blockxsize=32, blockysize=32)  # fmt: skip
    profile.update(options)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.moveaxis(pixels[..., order], -1, 0))
        if descriptions:
            for band, i in enumerate(order, start=1):
                dst.set_band_description(band, BANDS[i])
    return path


def rectangle(row0, row1, col0, col1):
    """The shapely polygon covering exactly these pixels (edges on pixel edges)."""
    import shapely

    return shapely.box(X0 + col0 * SIZE, Y0 - row1 * SIZE, X0 + col1 * SIZE, Y0 - row0 * SIZE)


def label_raster():
    """The classes of the training rectangles' pixels, 0 elsewhere (a later one wins)."""
    labels = np.zeros((H, W), np.uint8)
    for c, r0, r1, c0, c1 in RECTANGLES:
        labels[r0:r1, c0:c1] = c
    return labels


def pixel_centres(mask):
    """Shapely points at the centres of the pixels where ``mask``, row-major order."""
    import shapely

    rows, cols = np.nonzero(mask)
    return shapely.points(X0 + (cols + 0.5) * SIZE, Y0 - (rows + 0.5) * SIZE), rows, cols


def write_vector(path, geometries, values, field="class", crs=CRS, layer=None, **extra_fields):
    """Write features with pyogrio: a class field and optional other fields."""
    import pyogrio.raw
    import shapely

    geometries = np.asarray(geometries, dtype=object)
    values = np.asarray(values)
    names = [field, *extra_fields]
    data = [values, *(np.asarray(v) for v in extra_fields.values())]
    types = {g.geom_type for g in geometries}
    pyogrio.raw.write(str(path), shapely.to_wkb(geometries), data, names, layer=layer,
                      geometry_type=types.pop() if len(types) == 1 else "Unknown",
                      crs=crs)  # fmt: skip
    return path


def write_polygons(path, **kw):
    polygons = [rectangle(*r[1:]) for r in RECTANGLES]
    return write_vector(path, polygons, [r[0] for r in RECTANGLES], **kw)


def write_label_raster(path, labels=None, nodata=None):
    import rasterio

    labels = label_raster() if labels is None else labels
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1,
                       dtype=labels.dtype.name, crs=CRS, transform=transform(),
                       nodata=nodata) as dst:  # fmt: skip
        dst.write(labels[None])
    return path


def validation_points(n=200, seed=3):
    """``(points, rows, cols, classes)``: random pixel centres off the training rectangles."""
    rng = np.random.default_rng(seed)
    free = (label_raster() == 0) & ~nodata_mask()
    rows, cols = np.nonzero(free)
    pick = rng.choice(rows.size, n, replace=False)
    rows, cols = rows[pick], cols[pick]
    mask = np.zeros((H, W), bool)
    mask[rows, cols] = True
    points, rows, cols = pixel_centres(mask)
    return points, rows, cols, classes()[rows, cols]
