"""Labelled samples on a raster's grid, window by window: from vector features or a label raster.

Training data (``pixgmm fit --training``) and reference data (``pixgmm
accuracy --reference``) come as a vector file of points or polygons with a
class field (:mod:`.vector`) or as a label raster on the image's grid. Both are
turned into the same thing: for each window of the image (:mod:`.windows`), an
``int32`` array of class **codes**, ``1 + index`` into the sorted class values,
0 where a pixel is not a sample. Only the windows that hold samples are listed,
so a few polygons on a large scene read a few windows.

- **Polygons** select the pixels whose centre lies inside, and **points** the
  pixel they fall in: GDAL's rasterisation rule (``rasterio.features.rasterize``
  with its defaults), so a polygon, the points at its pixel centres and the
  label raster of both select the same pixels. Where features overlap, the one
  later in the file wins. Features in another CRS than the image's are
  reprojected into it; features without a CRS are taken to be in the image's.
- A **label raster** must be on the image's grid (same size, transform and
  CRS); its 0 and nodata values are unlabelled, its other values the classes
  (whole numbers).

This module imports only the standard library at module level.
"""

from __future__ import annotations

import math

from .vector import Features, same_crs


def _affine(page):
    from affine import Affine

    return Affine(*page.transform)


def footprint(page):
    """The image's outline in its CRS, a shapely polygon (any rotation of the grid)."""
    import shapely

    t = _affine(page)
    corners = [t * (c, r) for c, r in ((0, 0), (page.width, 0), (page.width, page.height),
                                        (0, page.height))]  # fmt: skip
    return shapely.Polygon(corners)


def pixel_area(page):
    """``(area in m2, note)``: the area of one pixel where the CRS is projected in metres.

    A geographic CRS (degrees) or a grid without a CRS gives ``(None, why)``.
    """
    a, b, _, d, e, _ = page.transform
    if page.crs_wkt is None:
        return None, "the map has no CRS, so areas are given in pixels only"
    from rasterio.crs import CRS

    crs = CRS.from_wkt(page.crs_wkt)
    if not crs.is_projected:
        return None, (
            "the map's CRS is geographic (degrees): pixels differ in area, so areas are given "
            "in pixels only; reproject the map to a projected CRS for hectares"
        )
    _, factor = crs.linear_units_factor
    return abs(a * e - b * d) * factor * factor, None


def _pixel_boxes(geometries, page):
    """``(row0, row1, col0, col1)`` arrays: each geometry's bounding box in pixels (exclusive ends)."""
    import numpy as np
    import shapely

    inverse = ~_affine(page)
    bounds = shapely.bounds(geometries)
    xs = bounds[:, [0, 2, 2, 0]]
    ys = bounds[:, [1, 1, 3, 3]]
    cols, rows = inverse * (xs, ys)
    rows, cols = np.asarray(rows), np.asarray(cols)
    return (
        np.floor(rows.min(axis=1)).astype(np.int64),
        np.floor(rows.max(axis=1)).astype(np.int64) + 1,
        np.floor(cols.min(axis=1)).astype(np.int64),
        np.floor(cols.max(axis=1)).astype(np.int64) + 1,
    )


class VectorSamples:
    """The features of a vector file on an image's grid (see the module's docstring).

    Parameters
    ----------
    features : Features
        As read (:func:`pixgmm.io.vector.read_features`); reprojected here.
    page : GeoPage
        The image's grid.

    Attributes
    ----------
    classes : tuple
        The class values, sorted; code ``i + 1`` is ``classes[i]``.
    notes : list of str
        What was done that a user should know (a reprojection, no CRS).
    """

    kind = "vector"

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def __init__(self, features, page):
        import numpy as np

        self.notes = []
        if features.crs_wkt is None and page.crs_wkt is not None:
            self.notes.append(f"{features.path} has no CRS: taken to be in the image's CRS")
        elif page.crs_wkt is None and features.crs_wkt is not None:
            self.notes.append(
                f"the image has no CRS: {features.path} is taken to be in its coordinates"
            )
        elif not same_crs(features.crs_wkt, page.crs_wkt):
            self.notes.append(f"{features.path} reprojected into the image's CRS")
        self.features = features.to_crs(page.crs_wkt)
        self.page = page
        self.classes = features.classes
        self.codes = self.features.codes
        self.boxes = np.column_stack(_pixel_boxes(self.features.geometries, page))

    @property
    def is_point(self):
        return self.features.is_point

    def outside(self):
        """Indices of the features that do not touch the image at all."""
        import numpy as np
        import shapely

        return np.flatnonzero(~shapely.intersects(self.features.geometries, footprint(self.page)))

    def _touching(self, window, which=None):
        import numpy as np

        r0, r1, c0, c1 = self.boxes.T
        hit = (
            (r0 < window.row + window.height)
            & (r1 > window.row)
            & (c0 < window.col + window.width)
            & (c1 > window.col)
        )
        if which is not None:
            hit &= which
        return np.flatnonzero(hit)

    def windows(self, plan):
        """The windows of ``plan`` that some feature's bounding box overlaps."""
        return [w for w in plan if self._touching(w).size]

    def labels(self, window, which=None):
        """The codes of ``window`` (``int32`` (h, w), 0 = no sample), GDAL's rasterisation.

        ``which`` (a boolean array over the features) rasterises only those.
        """
        import numpy as np
        from affine import Affine
        from rasterio.features import rasterize

        index = self._touching(window, which)
        if not index.size:
            return np.zeros((window.height, window.width), np.int32)
        transform = _affine(self.page) * Affine.translation(window.col, window.row)
        shapes = zip(self.features.geometries[index], self.codes[index].tolist())
        return rasterize(
            shapes, out_shape=(window.height, window.width), transform=transform, fill=0,
            dtype="int32",
        )  # fmt: skip

    def point_pixels(self):
        """``(rows, cols, codes, feature index)`` of every point (each part of a multi-point).

        A point takes the pixel it falls in (floor of its pixel coordinates), as
        GDAL rasterises it; points outside the grid are left out (see :meth:`outside`).
        """
        import numpy as np
        import shapely

        index = np.flatnonzero(self.is_point)
        coords, owner = shapely.get_coordinates(self.features.geometries[index], return_index=True)
        owner = index[owner]
        cols, rows = (~_affine(self.page)) * (coords[:, 0], coords[:, 1])
        rows = np.floor(np.asarray(rows)).astype(np.int64)
        cols = np.floor(np.asarray(cols)).astype(np.int64)
        inside = (rows >= 0) & (rows < self.page.height) & (cols >= 0) & (cols < self.page.width)
        return rows[inside], cols[inside], self.codes[owner[inside]], owner[inside]


class RasterSamples:
    """A label raster on an image's grid (see the module's docstring).

    Its classes are found by reading it once (:meth:`scan`), window by window.
    """

    kind = "raster"

    def __init__(self, path, page, georef):
        from pathlib import Path

        from .errors import MissingInput, ReadError
        from .windows import WindowReader

        if not Path(path).exists():
            raise MissingInput(f"{path}: no such file")
        if georef is None:
            raise ReadError(
                f"{path}: a label raster must be a georeferenced TIFF (on the image's grid)"
            )
        if len(georef.pages) != 1 or georef.pages[0].count != 1:
            raise ReadError(f"{path}: a label raster has one band (one page)")
        labels = georef.pages[0]
        _check_grid(path, labels, page)
        self.path = str(path)
        self.page = page
        self.source = labels
        self.classes = None
        self.notes = []
        self._with_samples = None
        self._reader = WindowReader(labels.source)

    def close(self):
        self._reader.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _values(self, array):
        """The window's labels as a 2-D array with 0 where unlabelled (nodata too)."""
        import numpy as np

        values = array[..., 0]
        nodata = self.source.nodata
        unlabelled = values == 0
        if values.dtype.kind == "f":
            unlabelled |= np.isnan(values)
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            unlabelled |= values == values.dtype.type(nodata)
        if values.dtype.kind == "f":
            whole = values[~unlabelled]
            bad = whole[whole != np.round(whole)]
            if bad.size:
                raise ValueError(
                    f"{self.path} holds the value {bad[0]:g}, which is not a class: a label "
                    "raster holds whole numbers (0 or its nodata value: unlabelled)"
                )
        out = np.where(unlabelled, 0, values)
        return out.astype(np.int64) if out.dtype.kind != "i" else out

    def scan(self, plan):
        """Read the raster once: its classes, and the windows of ``plan`` with samples."""
        import numpy as np

        from .windows import WindowReader

        found = set()
        with_samples = []
        with WindowReader(self.source.source) as reader:
            for window, array in reader.windows(plan):
                values = self._values(array)
                present = np.unique(values)
                present = present[present != 0]
                if present.size:
                    found.update(int(v) for v in present)
                    with_samples.append(window)
        self.classes = tuple(sorted(found))
        self._with_samples = with_samples
        return self.classes

    def windows(self, plan):
        """The windows of ``plan`` that hold labelled pixels (read once, then remembered)."""
        if self._with_samples is None:
            self.scan(plan)
        return list(self._with_samples)

    def labels(self, window, which=None):
        """The codes of ``window`` (``int32`` (h, w), 0 = unlabelled)."""
        import numpy as np

        values = self._values(self._reader.read(window))
        codes = np.searchsorted(np.asarray(self.classes), values) + 1
        return np.where(values == 0, 0, codes).astype(np.int32)


def _check_grid(path, labels, page):
    from .errors import ReadError

    same = (labels.width, labels.height) == (page.width, page.height) and all(
        math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, abs(b)))
        for a, b in zip(labels.transform, page.transform)
    )
    if not same or not same_crs(labels.crs_wkt, page.crs_wkt):
        raise ReadError(
            f"{path} is not on the image's grid ({labels.width} x {labels.height} pixels, "
            f"transform {tuple(round(v, 6) for v in labels.transform)}, against "
            f"{page.width} x {page.height}, {tuple(round(v, 6) for v in page.transform)}"
            + ("" if same_crs(labels.crs_wkt, page.crs_wkt) else ", and another CRS")
            + "); resample it onto the image's grid (gdalwarp -te ... -tr ...) or give the "
            "samples as points or polygons"
        )


def open_samples(path, page, field=None, *, layer=None):
    """The samples in ``path`` on the grid ``page``: :class:`RasterSamples` or :class:`VectorSamples`.

    A georeferenced TIFF or ``.vrt`` is a label raster (``field`` must then be
    None); anything else is read as a vector file, or a
    :class:`~pixgmm.io.vector.Features` already read is used as it is.

    Parameters
    ----------
    path : str, os.PathLike or Features
        A label raster (``.tif``, ``.tiff``, ``.vrt``), a vector file GDAL reads
        (:func:`pixgmm.io.read_features`), or features already read.
    page : GeoPage
        The image's grid (a page of :func:`pixgmm.io.probe_geotiff`).
    field : str, optional
        The class field of a vector file; may be omitted when the layer has
        exactly one field. Not used for features already read.
    layer : str, optional
        The layer of a vector file; may be omitted when the file holds one. Not
        used for features already read.

    Returns
    -------
    RasterSamples or VectorSamples
        The samples, window by window on the grid of ``page``.

    Raises
    ------
    ValueError
        ``field`` is given for a label raster, or the vector file's features or
        class values are refused (:func:`pixgmm.io.read_features`).
    MissingInput, ReadError
        The file is missing or cannot be read, or a label raster is not a
        one-band georeferenced TIFF on the image's grid.
    """
    from .formats import GDAL_SUFFIXES, TIFF_SUFFIXES
    from .geotiff import probe
    from .vector import read_features

    if isinstance(path, Features):
        return VectorSamples(path, page)
    from pathlib import Path

    if Path(path).suffix.lower() in TIFF_SUFFIXES | GDAL_SUFFIXES:
        if field is not None:
            raise ValueError(
                f"{path} is a label raster: its values are the classes, it has no field"
            )
        return RasterSamples(path, page, probe(path))
    return VectorSamples(read_features(path, field, layer=layer), page)
