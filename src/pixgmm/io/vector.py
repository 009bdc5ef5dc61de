"""Vector files of training and reference samples: points and polygons with a class field.

Read with pyogrio (GeoPackage, Shapefile, GeoJSON, FlatGeobuf: any vector format
GDAL reads), the geometries handled as shapely geometries and reprojected with
rasterio (PROJ) into an image's CRS; written back (the features held out for
validation) with pyogrio. Installed with ``pip install "pixgmm[geo]"``.

**Class values.** The class field holds integers (an integer field, or a real
field whose values are whole numbers) or text (class names). Text whose every
value is a whole number written the usual way (``"1"``, ``"12"``: digits only,
no sign, no leading zero) is read as integers, the rule by which ``pixgmm
classify`` recognises integer labels, so the same class is the same value in a
training file, a model file name and a label map. A real value with a fraction
(``2.5``), a boolean or date field, and a feature without a class value (null)
are refused, naming the file, the field and the feature.

**Geometries.** Points, polygons and their multi-part forms. A feature without a
geometry, or with a line, is refused, naming the feature (its FID, as GIS
software shows it).

This module imports only the standard library at module level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

#: Formats written by :func:`write_features`, by suffix (each one file, so written atomically).
WRITE_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON", ".fgb": "FlatGeobuf"}

_INTEGER = re.compile(r"(0|[1-9][0-9]*)")
#: shapely type ids: 0 Point, 3 Polygon, 4 MultiPoint, 6 MultiPolygon.
_POINTS, _POLYGONS = (0, 4), (3, 6)


class FieldError(ValueError):
    """The class field is missing or was not named; ``fields`` lists those the file has."""

    def __init__(self, message, fields):
        super().__init__(message)
        self.fields = tuple(fields)


class LayerError(ValueError):
    """The file holds several layers and none was named; ``layers`` lists them."""

    def __init__(self, message, layers):
        super().__init__(message)
        self.layers = tuple(layers)


@dataclass(frozen=True)
class Features:
    """The features of a vector file: geometries, class values, FIDs and CRS.

    ``geometries`` is a NumPy object array of shapely geometries; ``values`` the
    class value of each (Python ints, or strs), ``fids`` their feature ids.
    ``classes`` are the distinct values, sorted; ``codes`` each feature's class
    as ``1 + index`` into ``classes`` (0 is kept for "no class", as in a label
    raster).
    """

    path: str
    layer: str | None
    field: str
    crs_wkt: str | None
    geometries: object
    values: tuple
    fids: object

    @property
    def classes(self):
        return tuple(sorted(set(self.values)))

    @property
    def codes(self):
        import numpy as np

        index = {c: i + 1 for i, c in enumerate(self.classes)}
        return np.array([index[v] for v in self.values], dtype=np.int32)

    @property
    def is_point(self):
        """True for each point (or multi-point) feature."""
        import numpy as np
        import shapely

        return np.isin(shapely.get_type_id(self.geometries), _POINTS)

    def subset(self, keep):
        """The features where ``keep`` (a boolean array or indices) selects them."""
        import numpy as np

        keep = np.asarray(keep)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        return replace(
            self,
            geometries=self.geometries[keep],
            values=tuple(self.values[i] for i in keep),
            fids=self.fids[keep],
        )

    def describe(self, i):
        """``feature 12 (class 'forest')``: how a message names feature ``i``."""
        return f"feature {self.fids[i]} (class {self.values[i]!r})"

    def to_crs(self, crs_wkt):
        """These features reprojected into ``crs_wkt`` (unchanged when the CRS is the same).

        Features without a CRS are returned as they are (the caller says so).
        """
        if crs_wkt is None or self.crs_wkt is None or same_crs(self.crs_wkt, crs_wkt):
            return self
        import numpy as np
        import shapely
        from rasterio.crs import CRS
        from rasterio.warp import transform

        src, dst = CRS.from_user_input(self.crs_wkt), CRS.from_user_input(crs_wkt)

        def move(coords):
            xs, ys = transform(src, dst, coords[:, 0], coords[:, 1])
            return np.column_stack([xs, ys])

        return replace(self, geometries=shapely.transform(self.geometries, move), crs_wkt=crs_wkt)


def same_crs(a, b):
    """True when two CRS (WKT, ``EPSG:n``) are the same coordinate system."""
    if a is None or b is None:
        return a is b
    from rasterio.crs import CRS

    return CRS.from_user_input(a) == CRS.from_user_input(b)


def _read_error(path, exc):
    from .errors import MissingInput, ReadError, first_line

    if isinstance(exc, FileNotFoundError):
        return MissingInput(f"{path}: no such file")
    return ReadError(f"{path}: cannot read it as a vector file: {first_line(exc)}")


def _layer(path, layer):
    import os

    import pyogrio

    if "://" not in path and not path.startswith("/vsi") and not os.path.exists(path):
        raise _read_error(path, FileNotFoundError(path))

    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except Exception as exc:  # pyogrio's DataSourceError and the OS's
        raise _read_error(path, exc) from None
    if layer is None:
        if len(layers) > 1:
            raise LayerError(
                f"{path} holds {len(layers)} layers ({', '.join(layers)}); name the one to read",
                layers,
            )
        return layers[0] if layers else None
    if layer not in layers:
        raise LayerError(
            f"{path} has no layer {layer!r}; its layers are {', '.join(layers)}", layers
        )
    return layer


def _class_values(raw, field, path, fids):
    """The class value of every feature (ints or strs), checked; errors name the feature."""
    import numpy as np

    where = f"{path}: field {field!r}"
    kind = raw.dtype.kind
    if kind in "iu":
        return tuple(int(v) for v in raw)
    if kind == "f":
        missing = np.flatnonzero(np.isnan(raw))
        if missing.size:
            raise ValueError(
                f"{where} has no class value (null) for feature(s) "
                f"{', '.join(map(str, fids[missing[:5]]))}; give every feature a class"
            )
        frac = np.flatnonzero(raw != np.round(raw))
        if frac.size:
            raise ValueError(
                f"{where} holds {raw[frac[0]]:g} (feature {fids[frac[0]]}), which is not a class "
                "value: classes are whole numbers or text; name the class field with --field"
            )
        return tuple(int(v) for v in raw)
    if kind in "OUS":
        values = list(raw)
        missing = [
            i for i, v in enumerate(values) if v is None or (isinstance(v, float) and v != v)
        ]
        if missing:
            raise ValueError(
                f"{where} has no class value (null) for feature(s) "
                f"{', '.join(str(fids[i]) for i in missing[:5])}; give every feature a class"
            )
        if not all(isinstance(v, str) for v in values):
            bad = next(v for v in values if not isinstance(v, str))
            raise ValueError(
                f"{where} holds {bad!r} ({type(bad).__name__}), which is not a class value: "
                "classes are whole numbers or text"
            )
        values = [v.strip() for v in values]
        empty = [i for i, v in enumerate(values) if not v]
        if empty:
            raise ValueError(
                f"{where} is empty for feature(s) {', '.join(str(fids[i]) for i in empty[:5])}; "
                "give every feature a class"
            )
        if all(_INTEGER.fullmatch(v) for v in values):
            return tuple(int(v) for v in values)
        return tuple(values)
    raise ValueError(
        f"{where} is of type {raw.dtype} ({'true/false' if kind == 'b' else 'not numbers or text'}), "
        "which is not a class value: classes are whole numbers or text; name the class field "
        "with --field"
    )


def read_features(path, field=None, *, layer=None):
    """The features of a vector file with their class values.

    Parameters
    ----------
    path : str or path-like
        A vector file GDAL reads (``.gpkg``, ``.shp``, ``.geojson``, ``.fgb``, ...).
    field : str, optional
        The class field; may be omitted when the layer has exactly one field.
    layer : str, optional
        The layer to read; may be omitted when the file holds one.

    Returns
    -------
    Features

    Raises
    ------
    MissingInput, ReadError
        The file is missing or not a vector file GDAL reads.
    FieldError, LayerError
        The field or layer is missing, or not named when it must be (the
        message lists those the file has).
    ValueError
        No features, a feature without a geometry or a class value, a line, or
        a field that does not hold class values (naming the feature).

    Examples
    --------
    >>> import tempfile, numpy as np, shapely, pyogrio.raw
    >>> from pixgmm.io.vector import read_features
    >>> path = tempfile.mkdtemp() + "/training.gpkg"
    >>> pyogrio.raw.write(path, shapely.to_wkb(np.array([shapely.box(0, 0, 10, 10),
    ...                   shapely.Point(25, 5)])), [np.array(["2", "1"], dtype=object)],
    ...                   ["class"], geometry_type="Unknown", crs="EPSG:32633")
    >>> features = read_features(path)
    >>> features.field, features.values, features.classes, features.codes.tolist()
    ('class', (2, 1), (1, 2), [2, 1])
    """
    import numpy as np
    import pyogrio
    import shapely

    path = str(path)
    layer = _layer(path, layer)
    try:
        info = pyogrio.read_info(path, layer=layer)
    except Exception as exc:
        raise _read_error(path, exc) from None
    fields = [str(f) for f in info["fields"]]
    if field is None:
        if len(fields) != 1:
            raise FieldError(
                f"{path} has {len(fields)} fields"
                + (f" ({', '.join(fields)})" if fields else "")
                + "; name the class field",
                fields,
            )
        field = fields[0]
    elif field not in fields:
        close = [f for f in fields if f.lower() == str(field).lower()]
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise FieldError(
            f"{path} has no field {field!r}{hint}; its fields are {', '.join(fields) or 'none'}",
            fields,
        )
    try:
        meta, fids, wkb, data = pyogrio.raw.read(
            path, layer=layer, columns=[field], return_fids=True
        )
    except Exception as exc:
        raise _read_error(path, exc) from None
    fids = np.asarray(fids if fids is not None else np.arange(len(wkb)))
    if len(wkb) == 0:
        raise ValueError(f"{path} holds no features")
    geometries = shapely.from_wkb(wkb)
    absent = np.flatnonzero(shapely.is_missing(geometries) | shapely.is_empty(geometries))
    if absent.size:
        raise ValueError(
            f"{path}: feature(s) {', '.join(map(str, fids[absent[:5]]))} have no geometry; "
            "delete them or draw them"
        )
    types = shapely.get_type_id(geometries)
    lines = np.flatnonzero(~np.isin(types, _POINTS + _POLYGONS))
    if lines.size:
        i = lines[0]
        raise ValueError(
            f"{path}: feature {fids[i]} is a {geometries[i].geom_type}; samples are points "
            "or polygons"
        )
    values = _class_values(np.asarray(data[0]), field, path, fids)
    return Features(path, layer, field, meta.get("crs"), geometries, values, fids)


def write_features(path, features, *, overwrite=False):
    """Write ``features`` (their geometry, class field and CRS) to a vector file, atomically.

    The format follows the suffix (:data:`WRITE_DRIVERS`: GeoPackage, GeoJSON,
    FlatGeobuf), the features in their order; the file is written beside its target and renamed into place
    (:func:`pixgmm.io.atomic.atomic_target`).

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output: a ``.gpkg``, ``.geojson``, ``.json`` or ``.fgb`` file. Its
        one layer is named after the file's stem.
    features : Features
        The features to write (:func:`read_features`, :meth:`Features.subset`);
        the class field keeps its name, integer classes as 64-bit integers and
        text as text.
    overwrite : bool, default False
        Replace an existing file.

    Raises
    ------
    ValueError
        ``path`` has another suffix.
    OutputExists
        ``path`` exists and ``overwrite`` is false.
    OutputError
        The write failed (a full disk, no permission; GDAL's reason).

    Examples
    --------
    >>> import tempfile, numpy as np, shapely, pyogrio.raw
    >>> from pixgmm.io.vector import read_features, write_features
    >>> folder = tempfile.mkdtemp()
    >>> pyogrio.raw.write(folder + "/a.gpkg", shapely.to_wkb(np.array([shapely.Point(1, 2)])),
    ...                   [np.array([3])], ["class"], geometry_type="Point", crs="EPSG:32633")
    >>> write_features(folder + "/b.gpkg", read_features(folder + "/a.gpkg"))
    >>> read_features(folder + "/b.gpkg").values
    (3,)
    """
    import numpy as np
    import pyogrio
    import shapely

    from .atomic import atomic_target
    from .errors import first_line

    path = str(path)
    suffix = "." + path.rsplit(".", 1)[-1].lower() if "." in path else ""
    if suffix not in WRITE_DRIVERS:
        raise ValueError(
            f"{path}: write features to a {', '.join(sorted(WRITE_DRIVERS))} file (one file, "
            "written atomically)"
        )
    values = features.values
    if all(isinstance(v, int) for v in values):
        column = np.array(values, dtype=np.int64)
    else:
        column = np.array(values, dtype=object)
    types = {g.geom_type for g in features.geometries}
    geometry_type = types.pop() if len(types) == 1 else "Unknown"
    with atomic_target(path, overwrite) as tmp:
        try:
            pyogrio.raw.write(
                str(tmp),
                shapely.to_wkb(features.geometries),
                [column],
                [features.field],
                layer=re.sub(r"\W", "_", path.rsplit("/", 1)[-1].rsplit(".", 1)[0]) or "samples",
                driver=WRITE_DRIVERS[suffix],
                # FlatGeobuf's spatial index would reorder the features
                layer_options={"SPATIAL_INDEX": "NO"} if suffix == ".fgb" else None,
                geometry_type=geometry_type,
                crs=features.crs_wkt,
            )
        except Exception as exc:  # GDAL's errors (a full disk, in its words)
            if isinstance(exc, OSError):
                raise
            raise OSError(first_line(exc)) from exc
