"""The accuracy of a classified map file against reference samples: :func:`map_accuracy`.

The file-level counterpart of :func:`pixgmm.metrics.accuracy_report` (and of
``pixgmm accuracy``): the map is a label raster (a GeoTIFF or ``.vrt``, as
``pixgmm classify`` writes it, or from any other classifier) whose values are
the classes, read as they are (label values, not indices); the reference is a
vector file of points or polygons with a class field, or a label raster on the
map's grid (:mod:`pixgmm.io.samples`).

- A **point** is one sample: the map's value at the pixel it falls in (two
  points in one pixel are two samples). A **polygon** gives every pixel whose
  centre lies inside it; those pixels are not independent samples (they are a
  cluster), which the report notes. A raster gives each labelled pixel.
- The **strata** weights are the map's pixel count per class, counted by
  reading the whole map window by window (never all of it at once); nodata
  pixels are not counted. Areas are in hectares when the map's CRS is
  projected (pixel area from the transform), in pixels otherwise (noted).
- Samples that fall on the map's **nodata** (which is also the label of
  unclassified pixels in maps of ``pixgmm classify``) are counted and reported,
  not dropped silently; samples outside the map are counted in a note.
- A reference field of **class names** is matched to the map's values through
  the map's category names (the legend ``pixgmm classify`` writes); without
  them, names are an error.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .accuracy import accuracy_report

__all__ = ["map_accuracy"]


def _map_page(path):
    from pathlib import Path

    from ..io.errors import MissingInput, ReadError
    from ..io.geotiff import probe

    if not Path(path).exists():
        raise MissingInput(f"{path}: no such file")
    geo = probe(path)
    if geo is None:
        raise ReadError(
            f"{path}: the map must be a georeferenced GeoTIFF (or .vrt) read with rasterio "
            '(pip install "pixgmm[geo]")'
        )
    page = geo.pages[0]
    if len(geo.pages) != 1 or page.count != 1:
        raise ReadError(f"{path}: a classified map has one band (got {page.count})")
    if np.dtype(page.dtype).kind not in "uif":
        raise ReadError(f"{path}: a classified map holds numbers, not {page.dtype}")
    return page


def _categories(page):
    """``{name: value}`` from the map's category names (``pixgmm classify``'s legend)."""
    from ..io.geotiff import band_tags

    text = band_tags(page).get("categories")
    if not text:
        return {}
    return {name: value for value, name in enumerate(text.split(",")) if name}


def _names_to_values(reference, categories, map_path, source):
    """Reference class names -> the map's values, through its category names."""
    wanted = sorted(set(reference))
    if not categories:
        raise ValueError(
            f"{source} names its classes ({', '.join(map(repr, wanted[:5]))}) but the map "
            f"{map_path} holds numbers without class names; give a reference field of class "
            "values, or a map written by pixgmm classify (its legend names the classes)"
        )
    missing = [c for c in wanted if c not in categories]
    if missing:
        known = [n for n in categories if n not in ("unclassified", "rejected")]
        raise ValueError(
            f"{source}: class(es) {', '.join(map(repr, missing[:5]))} are not classes of the "
            f"map {map_path} (its classes: {', '.join(map(repr, known))})"
        )
    return np.array([categories[c] for c in reference], dtype=np.int64)


def _count(counts, values, nodata):
    """Add the map's pixel count per value of ``values`` (nodata left out) to ``counts``."""
    flat = values.reshape(-1)
    if flat.dtype.kind == "f":
        flat = flat[~np.isnan(flat)]
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        flat = flat[flat != flat.dtype.type(nodata)]
    if flat.dtype.kind == "u" and flat.dtype.itemsize <= 2:
        found = np.bincount(flat, minlength=1)
        for v in np.flatnonzero(found):
            counts[int(v)] = counts.get(int(v), 0) + int(found[v])
        return
    keys, n = np.unique(flat, return_counts=True)
    for key, m in zip(keys.tolist(), n.tolist()):
        counts[key] = counts.get(key, 0) + m


def map_accuracy(map_path, reference, *, field=None, layer=None, confidence=0.95):
    """Accuracy of a classified map file at reference samples, with area estimates.

    Parameters
    ----------
    map_path : str or path-like
        A single-band georeferenced label map (GeoTIFF or ``.vrt``): its
        values are the classes; its nodata value (255 in a uint8 map of
        ``pixgmm classify``: unclassified or no data) is no class.
    reference : str or path-like
        Points or polygons with a class field (any vector format GDAL reads),
        or a label raster on the map's grid (0 and its nodata unlabelled).
    field : str, optional
        The class field (may be omitted when the file has one field).
    layer : str, optional
        The layer of a vector file that holds several.
    confidence : float, default 0.95
        Level of the confidence intervals.

    Returns
    -------
    AccuracyReport
        As :func:`accuracy_report` with ``mapped_counts`` (the whole map's pixel
        count per class) and ``pixel_area`` (in a projected CRS); its notes say
        how many samples were points, polygon pixels or raster pixels, and how
        many fell outside the map or on its nodata.

    Raises
    ------
    ValueError
        A missing or unusable field, no sample on the map, class names that
        the map does not know.
    pixgmm.io.ReadError
        A file that cannot be read, a map that is not a single-band label
        raster, a reference raster off the map's grid.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio, shapely, pyogrio.raw
    >>> from rasterio.transform import from_origin
    >>> from pixgmm.metrics import map_accuracy
    >>> folder = tempfile.mkdtemp()
    >>> labels = np.ones((20, 30), np.uint8)
    >>> labels[:, 10:] = 2  # 200 pixels of class 1, 400 of class 2 (30 m pixels)
    >>> with rasterio.open(folder + "/map.tif", "w", driver="GTiff", width=30, height=20,
    ...                    count=1, dtype="uint8", crs="EPSG:32633", nodata=255,
    ...                    transform=from_origin(500000, 4200000, 30, 30)) as dst:
    ...     dst.write(labels[None])
    >>> points = shapely.points([500015, 500045, 500315, 500345], [4199985] * 4)  # cols 0, 1, 10, 11
    >>> pyogrio.raw.write(folder + "/reference.gpkg", shapely.to_wkb(points),
    ...                   [np.array([1, 2, 2, 2])], ["class"], geometry_type="Point",
    ...                   crs="EPSG:32633")
    >>> report = map_accuracy(folder + "/map.tif", folder + "/reference.gpkg")
    >>> report.confusion_matrix.tolist(), report.stratified.mapped_hectares.tolist()
    ([[1, 1], [0, 2]], [18.0, 36.0])
    """
    from ..io.samples import open_samples, pixel_area
    from ..io.windows import WINDOW_BYTES, WindowReader, plan_windows

    page = _map_page(map_path)
    dtype = np.dtype(page.dtype)
    nodata = page.nodata
    plan = plan_windows(page.height, page.width, page.block, dtype.itemsize, WINDOW_BYTES)
    counts = {}
    map_parts, ref_parts = [], []
    notes = []
    with open_samples(reference, page, field, layer=layer) as samples:
        notes.extend(samples.notes)
        source = getattr(samples, "path", None) or samples.features.path
        vector = samples.kind == "vector"
        if vector:
            is_point = samples.is_point
            polygons = ~is_point
            outside = samples.outside()
            rows, cols, point_codes, owner = samples.point_pixels()
        else:
            polygons = None
        with_samples = set(samples.windows(plan))
        point_values = np.empty(0 if not vector else rows.size, dtype)
        n_polygon_pixels = 0
        with WindowReader(page.source) as reader:
            for window, array in reader.windows(plan):
                values = array[..., 0]
                _count(counts, values, nodata)
                if vector and rows.size:
                    inside = (
                        (rows >= window.row)
                        & (rows < window.row + window.height)
                        & (cols >= window.col)
                        & (cols < window.col + window.width)
                    )
                    point_values[inside] = values[rows[inside] - window.row,
                                                  cols[inside] - window.col]  # fmt: skip
                if window not in with_samples or (vector and not polygons.any()):
                    continue
                codes = samples.labels(window, polygons)
                chosen = codes > 0
                n_polygon_pixels += int(chosen.sum())
                map_parts.append(values[chosen])
                ref_parts.append(codes[chosen])
        classes = samples.classes
    if vector and rows.size:
        map_parts.append(point_values)
        ref_parts.append(point_codes)
    if not map_parts or sum(p.size for p in map_parts) == 0:
        raise ValueError(
            f"no reference sample of {source} falls on the map {map_path}; check that they "
            "cover the same ground (and the reference's CRS)"
        )
    map_values = np.concatenate(map_parts)
    ref_index = np.concatenate(ref_parts) - 1
    ref_classes = np.asarray(classes, dtype=object)[ref_index]
    if all(isinstance(c, str) for c in classes):
        reference_values = _names_to_values(
            ref_classes.tolist(), _categories(page), map_path, source
        )
    else:
        reference_values = ref_classes.astype(np.int64)
    if dtype.kind == "f":
        reference_values = reference_values.astype(np.float64)

    if vector:
        n_points = int(rows.size)
        n_polygons = int(polygons.sum())
        if n_points:
            notes.append(f"{n_points} reference point(s) on the map: one sample each")
        if n_polygons:
            notes.append(
                f"{n_polygons} reference polygon(s) give {n_polygon_pixels} pixel samples (every "
                "pixel centre inside): the pixels of one polygon are a cluster, not independent "
                "samples, so the intervals are narrower than they should be"
            )
        if outside.size:
            notes.append(f"{outside.size} reference feature(s) lie outside the map: not counted")
    else:
        notes.append(f"{map_values.size} labelled pixels of the reference raster, one sample each")
    area, why = pixel_area(page)
    if why:
        notes.append(why)
    names = _map_names(page, counts, map_values, reference_values, nodata)
    report = accuracy_report(
        map_values,
        reference_values,
        mapped_counts=counts,
        pixel_area=area,
        nodata=nodata,
        names=names,
        confidence=confidence,
    )
    return dataclasses.replace(report, notes=(*report.notes, *notes))


def _map_names(page, counts, map_values, reference_values, nodata):
    """Display names from the map's legend, for the classes it names (None without one)."""
    legend = {value: name for name, value in _categories(page).items()}
    if not legend:
        return None
    present = set(counts) | set(np.unique(map_values).tolist())
    present |= set(np.unique(reference_values).tolist())
    present.discard(nodata)
    named = {v: legend[v] for v in present if v in legend and legend[v] != str(v)}
    return named or None
