"""Class models from a georeferenced image and training samples: polygons, points or a label raster.

The land-cover workflow of GRASS ``i.gensig``, Orfeo ToolBox
``TrainImagesClassifier`` and QGIS's SCP: a multispectral GeoTIFF and training
data drawn in a GIS (a GeoPackage, Shapefile, GeoJSON or FlatGeobuf of polygons
or points with a class field, or a label raster on the image's grid) give one
Gaussian mixture per class (:func:`fit_training`; ``pixgmm fit IMAGE
--training TRAINING`` on the command line).

- **Pixels.** Polygons select the pixels whose centre lies inside, points the
  pixel they fall in (GDAL's rule, :mod:`pixgmm.io.samples`); training data in
  another CRS is reprojected into the image's. Pixels on the image's nodata are
  left out and counted per class. The image is read window by window, only the
  windows that hold training pixels, so a scene larger than memory trains in
  bounded memory (the training pixels themselves are kept: a colour histogram
  per class for 8-bit images of up to 3 bands, the pixels otherwise).
- **Channels.** Every band of the image (or those selected by ``bands``, by
  number or band name), named after the bands' descriptions where each band
  has its own; the models record them, so ``pixgmm classify`` matches bands by
  name.
- **Scale.** Pixel values follow ``scale`` as on the command line
  (:mod:`pixgmm.io.pixels`: ``"auto"`` brings 16-bit and 0..1 float images to
  0..255, ``"none"`` keeps raw values), and each model records the scale it was
  fitted on (``"0..255"`` or ``"raw"``, :attr:`pixgmm.Mixture.training`).
- **Classes.** The class field's values (whole numbers or names), or the label
  raster's values (0 and its nodata are unlabelled). A feature outside the
  image, a missing field, a field that holds no class values and a class left
  without pixels are a ``ValueError`` naming the file, the field and the class.
- **Validation.** :func:`split_features` holds out whole features (polygons or
  points, never single pixels of a polygon) per class, seeded, for an accuracy
  assessment on data the models did not see.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = ["TrainingPixels", "fit_training", "fit_training_em", "split_features", "training_pixels"]


@dataclass
class TrainingPixels:
    """The training pixels of every class, read from an image (:func:`training_pixels`).

    Attributes
    ----------
    classes : tuple
        The class values (ints, or strs for class names), sorted.
    channels : tuple of str or None
        The models' channel names: the descriptions of the bands read, where
        each has its own; None otherwise.
    bands : tuple of int
        The image bands read (1-based), in channel order.
    scale : {"0..255", "raw"}
        The value scale of the pixels, recorded in every model.
    n_pixels : dict
        Class -> training pixels (on valid image pixels).
    n_nodata : dict
        Class -> training pixels left out because the image has no data there.
    n_features : dict or None
        Class -> features of a vector file (None for a label raster).
    integer : bool
        Every pixel value is a whole number (``reg_covar="auto"`` then adds 1).
    notes : list of str
        What was done that a user should know (reprojection, scaling, bands).
    """

    classes: tuple
    channels: tuple | None
    bands: tuple
    scale: str
    n_pixels: dict
    n_nodata: dict
    n_features: dict | None
    integer: bool
    notes: list = field(default_factory=list)
    source: str = ""
    accumulator: object = None  # a pixgmm.fitting.ClassHistograms keyed by 1 + class index

    def fit_em(self, n_components=8, covariance_type="diag", *, classes=None, **options):
        """``{class: FitResult}``: one EM per class (options as :func:`pixgmm.fit`).

        Each mixture records its class's pixel count and the scale
        (:attr:`pixgmm.Mixture.training`).
        """
        wanted = self.classes if classes is None else tuple(classes)
        unknown = [c for c in wanted if c not in self.classes]
        if unknown:
            raise ValueError(
                f"classes {unknown!r} are not in the training data (classes: {list(self.classes)})"
            )
        codes = [self.classes.index(c) + 1 for c in wanted]
        if isinstance(n_components, dict):  # per class: keyed by the accumulator's codes
            missing = [c for c in wanted if c not in n_components]
            if missing:
                raise ValueError(
                    f"n_components has no entry for class(es) {missing!r}; give every class a "
                    "number"
                )
            n_components = {code: n_components[c] for c, code in zip(wanted, codes)}
        results = self.accumulator.fit_em(
            n_components, covariance_type, classes=codes, channels=self.channels, **options
        )
        out = {}
        for c, code in zip(wanted, codes):
            result = results[code]
            record = {"n_pixels": self.accumulator.n_pixels(code) - result.n_nan}
            record["scale"] = self.scale
            out[c] = dataclasses.replace(result, mixture=result.mixture.with_training(record))
        return out


def _georeferenced(image):
    from pathlib import Path

    from .io.errors import MissingInput, ReadError
    from .io.geotiff import probe

    if not Path(image).exists():
        raise MissingInput(f"{image}: no such file")
    geo = probe(image)
    if geo is None:
        raise ReadError(
            f"{image}: training from samples needs a georeferenced GeoTIFF (or .vrt) with "
            'rasterio installed (pip install "pixgmm[geo]")'
        )
    if len(geo.pages) != 1:
        raise ReadError(f"{image} holds {len(geo.pages)} images; training reads a single one")
    return geo


def _bands(page, bands, option):
    """``(bands 1-based, channel names or None, note)`` of the image read for training."""
    from .io.pixels import BandMatch

    indices, note = BandMatch(None if bands is None else tuple(bands), None, option).resolve(
        page.count, page.descriptions, page.alpha
    )
    if indices is None:
        indices = tuple(range(page.count - 1 if page.alpha else page.count))
    names = tuple(page.descriptions[i].strip() for i in indices)
    upper = [n.upper() for n in names]
    if not all(names) or len(set(upper)) != len(upper):
        names = None
    return tuple(i + 1 for i in indices), names, note


def _outside_error(samples, image, outside):
    f = samples.features
    listed = "; ".join(f.describe(i) for i in outside[:3])
    more = f" and {outside.size - 3} more" if outside.size > 3 else ""
    return ValueError(
        f"{f.path}: {listed}{more} lie(s) outside the image {image}; check that the samples "
        "cover the image (and their CRS), or delete those features"
    )


def training_pixels(
    image, training, *, field=None, layer=None, bands=None, scale="auto", bands_name="bands="
):
    """Read the training pixels of every class from ``image``, window by window.

    Parameters
    ----------
    image : str or path-like
        A georeferenced GeoTIFF (or GDAL ``.vrt``), any band count and dtype.
    training : str, path-like or pixgmm.io.vector.Features
        A vector file of polygons or points with a class field, a label
        raster on the image's grid, or features already read.
    field : str, optional
        The class field of a vector file (may be omitted when it has one field).
    layer : str, optional
        The layer of a vector file that holds several.
    bands : sequence of int or str, optional
        The bands to use (1-based numbers or band names), in order; default all.
    scale : {"auto", "none", "unit"}, default "auto"
        How pixel values are read (:mod:`pixgmm.io.pixels`); recorded in the
        models as ``"raw"`` (``"none"``) or ``"0..255"``.
    bands_name : str, default "bands="
        How messages name ``bands`` (the command line: ``"--bands"``).

    Returns
    -------
    TrainingPixels

    Raises
    ------
    ValueError
        Samples outside the image, a missing or unusable class field, a class
        without pixels, bands that are not in the image.
    pixgmm.io.ReadError
        A file that cannot be read, a label raster off the image's grid.
    """
    from .classfit import ClassHistograms
    from .io.pixels import SCALES, PixelRule
    from .io.samples import open_samples
    from .io.windows import WINDOW_BYTES, WindowReader, bounded_cache, plan_windows

    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(map(repr, SCALES))}, got {scale!r}")
    geo = _georeferenced(image)
    page = geo.pages[0]
    read, channels, band_note = _bands(page, bands, bands_name)
    notes = [band_note] if band_note else []
    dtype = np.dtype(page.dtype)
    plan = plan_windows(
        page.height, page.width, page.block, len(read) * dtype.itemsize, WINDOW_BYTES
    )
    with open_samples(training, page, field, layer=layer) as samples:
        notes.extend(samples.notes)
        source = getattr(samples, "path", None) or samples.features.path
        n_features = None
        if samples.kind == "vector":
            outside = samples.outside()
            if outside.size:
                raise _outside_error(samples, image, outside)
            codes = samples.codes
            n_features = {c: int((codes == i + 1).sum()) for i, c in enumerate(samples.classes)}
        windows = samples.windows(plan)
        classes = samples.classes
        k = len(classes)
        acc = ClassHistograms(list(range(1, k + 1)))
        nodata = np.zeros(k + 1, np.int64)
        integer = True
        with bounded_cache(), WindowReader(page.source) as reader:
            rule = PixelRule(len(read), scale).fixed(
                dtype, lambda: _value_range(reader, plan, geo, read)
            )
            if rule.note:
                notes.append(rule.note)
            for window, array in reader.windows(windows, list(read)):
                codes = samples.labels(window)
                chosen = codes > 0
                if not chosen.any():
                    continue
                # only the training pixels are checked and scaled, as one (1, n, bands) row
                prepared, invalid = geo.prepare(0, array[chosen][None])
                codes = codes[chosen]
                if invalid is not None:
                    invalid = invalid[0]
                    nodata += np.bincount(codes[invalid], minlength=k + 1)
                    prepared, codes = prepared[:, ~invalid], codes[~invalid]
                pixels, _ = rule(prepared, False)
                px = pixels[0]
                if px.size:
                    integer = integer and (
                        px.dtype.kind in "ui" or bool((px == np.round(px)).all())
                    )
                    acc.add(px, codes, name=str(image), labels_name=str(source))
    counts = {c: acc.n_pixels(i + 1) for i, c in enumerate(classes)}
    lost = {c: int(nodata[i + 1]) for i, c in enumerate(classes)}
    if not classes:
        raise ValueError(f"{source} labels no pixel of the image {image}")
    for c in classes:
        if counts[c] == 0:
            if n_features is not None and lost[c]:
                what = (
                    f"its {n_features[c]} feature(s) cover only pixels where the image has no "
                    f"data ({lost[c]:,} pixels)"
                )
            elif n_features is not None:
                what = f"its {n_features[c]} feature(s) cover no pixel centre of the image"
            else:
                what = f"all its {lost[c]:,} labelled pixels are on the image's nodata"
            raise ValueError(
                f"{source}: class {c!r} has no training pixels: {what}; draw it over "
                "valid pixels or leave it out"
            )
    for c in classes:
        if lost[c]:
            notes.append(f"class {c!r}: {lost[c]:,} training pixel(s) on nodata left out")
    return TrainingPixels(
        classes=tuple(classes),
        channels=channels,
        bands=read,
        scale="raw" if scale == "none" else "0..255",
        n_pixels=counts,
        n_nodata=lost,
        n_features=n_features,
        integer=integer,
        notes=notes,
        source=str(source),
        accumulator=acc,
    )


def _value_range(reader, plan, geo, bands):
    """``(min, max)`` of a float image's valid values (one read of every window)."""
    lo, hi = np.inf, -np.inf
    for _, array in reader.windows(plan, list(bands)):
        prepared, _ = geo.prepare(0, array)
        if np.isnan(prepared).all():
            continue
        lo, hi = min(lo, float(np.nanmin(prepared))), max(hi, float(np.nanmax(prepared)))
    return (None, None) if lo > hi else (lo, hi)


def fit_training_em(
    image,
    training,
    n_components=8,
    covariance_type="diag",
    *,
    field=None,
    layer=None,
    bands=None,
    scale="auto",
    **options,
):
    """:func:`fit_training` returning ``{class: FitResult}`` with every fit's diagnostics."""
    pixels = training_pixels(image, training, field=field, layer=layer, bands=bands, scale=scale)
    return pixels.fit_em(n_components, covariance_type, **options)


def fit_training(
    image,
    training,
    n_components=8,
    covariance_type="diag",
    *,
    field=None,
    layer=None,
    bands=None,
    scale="auto",
    **options,
):
    """One Gaussian mixture per class, fitted on an image's pixels under training samples.

    Parameters
    ----------
    image : str or path-like
        A georeferenced GeoTIFF (or ``.vrt``), any band count and dtype.
    training : str, path-like or pixgmm.io.vector.Features
        Polygons or points with a class field (GeoPackage, Shapefile, GeoJSON,
        FlatGeobuf, ...), or a label raster on the image's grid (0 and nodata
        unlabelled).
    n_components, covariance_type
        As :func:`pixgmm.fit` (a dict ``{class: K}`` gives each class its own).
    field, layer, bands, scale
        As :func:`training_pixels`.
    **options
        The other keywords of :func:`pixgmm.fit` (``init``, ``max_iter``,
        ``tol``, ``n_init``, ``reg_covar``, ``max_samples``, ``random_state``,
        ``criterion``).

    Returns
    -------
    dict
        ``{class value: Mixture}``, each recording its class's pixel count and
        the value scale (:attr:`pixgmm.Mixture.training`) and named after the
        bands it was fitted on.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio, shapely, pyogrio.raw
    >>> from rasterio.transform import from_origin
    >>> from pixgmm.fitting import fit_training
    >>> folder = tempfile.mkdtemp()
    >>> rng = np.random.default_rng(0)
    >>> scene = rng.normal(1000, 30, (2, 40, 60))
    >>> scene[:, :, 30:] += 2000  # class 2 on the right half
    >>> with rasterio.open(folder + "/scene.tif", "w", driver="GTiff", width=60, height=40,
    ...                    count=2, dtype="uint16", crs="EPSG:32633",
    ...                    transform=from_origin(500000, 4200000, 10, 10)) as dst:
    ...     dst.write(scene.astype(np.uint16))
    ...     dst.descriptions = ("B4", "B8")
    >>> polygons = [shapely.box(500020, 4199700, 500200, 4199900),   # x, y in metres
    ...             shapely.box(500350, 4199700, 500550, 4199900)]
    >>> pyogrio.raw.write(folder + "/training.gpkg", shapely.to_wkb(np.array(polygons)),
    ...                   [np.array([1, 2])], ["class"], geometry_type="Polygon",
    ...                   crs="EPSG:32633")
    >>> models = fit_training(folder + "/scene.tif", folder + "/training.gpkg", 1,
    ...                       scale="none")
    >>> sorted(models), models[2].channels, models[2].training
    ([1, 2], ('B4', 'B8'), {'n_pixels': 400, 'scale': 'raw'})
    >>> models[2].means.round(-2).tolist()
    [[3000.0, 3000.0]]
    """
    results = fit_training_em(
        image,
        training,
        n_components,
        covariance_type,
        field=field,
        layer=layer,
        bands=bands,
        scale=scale,
        **options,
    )
    return {c: r.mixture for c, r in results.items()}


def split_features(features, fraction, random_state=0):
    """Hold out whole features per class for validation: ``(training, validation, notes)``.

    Of each class's ``n`` features, ``round(fraction * n)`` are drawn at random
    (seeded by ``random_state``), at most ``n - 1`` so that every class keeps a
    feature to train on; a polygon is held out whole, never split into pixels.

    Parameters
    ----------
    features : pixgmm.io.vector.Features
    fraction : float
        In (0, 1).
    random_state : int or numpy.random.Generator, default 0

    Returns
    -------
    training, validation : pixgmm.io.vector.Features
    notes : list of str
        Classes with too few features to hold any out.

    Examples
    --------
    >>> import numpy as np, shapely
    >>> from pixgmm.io.vector import Features
    >>> from pixgmm.training import split_features
    >>> points = np.array([shapely.Point(i, 0) for i in range(10)])
    >>> f = Features("f.gpkg", None, "class", None, points, (1,) * 6 + (2,) * 4, np.arange(10))
    >>> train, held, notes = split_features(f, 0.5)
    >>> train.values, held.values
    ((1, 1, 1, 2, 2), (1, 1, 1, 2, 2))
    """
    try:
        fraction = float(fraction)
    except (TypeError, ValueError):
        raise TypeError(f"fraction must be a number in (0, 1), got {fraction!r}") from None
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), e.g. 0.3, got {fraction!r}")
    rng = np.random.default_rng(random_state)
    values = np.array(features.values, dtype=object)
    held = np.zeros(len(values), bool)
    notes = []
    for c in features.classes:
        index = np.flatnonzero(values == c)
        n_hold = min(int(np.floor(fraction * index.size + 0.5)), index.size - 1)
        if n_hold <= 0:
            notes.append(f"class {c!r} has {index.size} feature(s): none held out for validation")
            continue
        held[rng.permutation(index)[:n_hold]] = True
    return features.subset(~held), features.subset(held), notes
