"""GeoTIFF: georeferenced inputs, GeoTIFF outputs, georeferenced Zarr stores.

A TIFF input is **georeferenced** when it carries GeoTIFF tags (checked with
tifffile, without importing rasterio) and rasterio finds a CRS or a transform
in it. With the ``geo`` extra installed (``pip install "pixgmm[geo]"``:
rasterio, rioxarray), such an input is read with rasterio, whatever its band
count, dtype and interleaving (a multi-page GeoTIFF gives one image per page,
each with its own georeferencing), and its outputs keep the georeferencing:

- float maps (probability, log ratio, density, confidence, class
  probabilities) are float32 GeoTIFFs (``photo.probability.tif``, one band per
  class for class probabilities) with nodata NaN;
- masks are uint8 GeoTIFFs holding 1 (yes) and 0 (no), with nodata
  :data:`NODATA_LABEL` (255); label maps (``pixgmm classify``) hold the class
  values (or indices), with nodata the largest value of their dtype (255 for
  uint8, 65535 for uint16; also the label of pixels no class applies to), a
  colour table and the class names;
- pictures for people (heatmap, overlay, the colour label picture, the PNG of
  ``density --format png``) stay PNG, without georeferencing;
- with ``--chunks`` every Zarr store gets the attributes ``crs`` (WKT),
  ``transform`` (the six affine coefficients ``a, b, c, d, e, f`` of rasterio
  and rioxarray), ``GeoTransform`` (the same in GDAL's order, as a string) and,
  for data maps, ``nodata`` (``"NaN"``, Zarr v3's spelling, for float maps;
  255 for masks), which rioxarray reads from a DataArray's attributes.

A pixel is **nodata** when any of its bands equals the input's nodata value,
or, in a float image, is NaN (the rule of pixgmm's xarray interface). It is
nodata in every output above. In a float image, nodata values are turned into
NaN before the ``--scale`` decision, so they do not count as values outside
[0, 1].

Without rasterio a georeferenced TIFF is read as a plain TIFF (:func:`probe`
gives None and calls its ``on_dropped`` callback, with which the command line
prints one note saying that the georeferencing is dropped and how to keep it).

A GeoTIFF or Cloud Optimized GeoTIFF at a URL (``s3://bucket/scene.tif``) is
read by rasterio through GDAL's virtual file systems (``/vsis3/bucket/scene.tif``,
with the endpoint and credentials of the environment:
:func:`pixgmm.io.remote.gdal_env`), in memory or lazily window by window
(:meth:`Georef.lazy_pages`: each task opens the URL and reads its window, so
only strings travel to a cluster; GDAL merges the requests for neighbouring
tiles, which read a COG from an object store faster than tifffile over fsspec
does); GeoTIFF outputs at a URL are written locally and uploaded whole.

This module imports only the standard library at module level; NumPy, tifffile,
rasterio and Dask are imported inside the functions that need them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

#: Nodata value of uint8 masks and label maps written for a georeferenced input.
NODATA_LABEL = 255


def label_nodata(dtype):
    """The nodata value of an integer map of ``dtype``: its largest value (255 for uint8).

    >>> import numpy as np
    >>> label_nodata(np.uint8), label_nodata(np.uint16)
    (255, 65535)
    """
    import numpy as np

    return int(np.iinfo(dtype).max)


#: Maps that hold labels (a mask, class indices) and get :data:`NODATA_LABEL` at nodata pixels.
LABEL_MAPS = ("mask", "labels")
#: TIFF tags whose presence makes a TIFF worth asking rasterio about: ModelPixelScale,
#: ModelTiepoint, ModelTransformation, GeoKeyDirectory.
_GEOTIFF_TAGS = frozenset({33550, 33922, 34264, 34735})

_NEEDS_RASTERIO = "needs rasterio"


@dataclass(frozen=True)
class GeoPage:
    """The georeferencing of one page of a GeoTIFF, as rasterio reports it.

    ``transform`` holds the six affine coefficients ``(a, b, c, d, e, f)``
    (x = a col + b row + c, y = d col + e row + f); ``source`` is what
    rasterio opens for this page (the path, or ``GTIFF_DIR:n:path``; for a URL,
    GDAL's name of it, ``/vsis3/bucket/key``).
    """

    source: str
    crs_wkt: str | None
    transform: tuple
    nodata: float | int | None
    width: int
    height: int
    count: int
    dtype: str
    alpha: bool = False  # the last band is an alpha band (rasterio's colour interpretation)
    block: tuple = (256, 256)  # (rows, cols) of the file's first band's blocks (tiles or strips)
    descriptions: tuple = ()  # the bands' descriptions (names such as "B4"), "" where none


@dataclass(frozen=True)
class Georef:
    """A georeferenced TIFF input: its pages' georeferencing and how its outputs are written.

    Obtained from :func:`probe`; the per-page methods take the page's index.
    ``path`` is the file's absolute path or URL.
    """

    path: str
    pages: tuple

    # -- reading ---------------------------------------------------------------

    def read(self, max_pixels=None):
        """Every page as a NumPy array, (H, W) for one band or (H, W, bands), as stored.

        The pixel limit is checked on the header first, as for every input
        (:func:`pixgmm.io.limits.check_size`).
        """
        import numpy as np
        import rasterio

        from .limits import check_size

        first = self.pages[0]
        total = sum(p.width * p.height for p in self.pages)
        check_size(first.width, first.height, len(self.pages), max_pixels, total=total)
        out = []
        try:
            for page in self.pages:
                with _gdal_env(self.path), rasterio.open(page.source) as src:
                    bands = src.read()
                out.append(bands[0] if bands.shape[0] == 1 else np.moveaxis(bands, 0, -1))
        except MemoryError:
            raise _input_error("not enough memory to decode the image") from None
        except rasterio.errors.RasterioError as exc:
            raise _input_error(f"cannot read GeoTIFF: {_first_line(exc)}") from None
        return [np.ascontiguousarray(a) for a in out]

    def lazy_pages(self, chunk_spec):
        """Every page as a lazy Dask array (H, W[, bands]), read block by block by path.

        Each task opens the file itself (:func:`pixgmm.io.open_image_lazy`),
        so the arrays can go to a ``distributed`` cluster. A band-interleaved file
        keeps all its bands in one chunk, whatever their number. At a URL each
        task reads its window with rasterio (:func:`_window_pages`).
        """
        import tifffile

        from .formats import GDAL_SUFFIXES
        from .formats import suffix as suffix_of
        from .lazy import open_image_lazy
        from .paths import is_url

        if is_url(self.path):
            return _window_pages(self, chunk_spec)
        if suffix_of(self.path) in GDAL_SUFFIXES:
            raise _input_error(
                "a GDAL virtual raster is not read lazily into Dask; it is streamed window by "
                "window when read without chunks"
            )
        with tifffile.TiffFile(self.path) as tif:
            layouts = [s.axes for s in tif.series]
        if len(layouts) != len(self.pages) or not set(layouts) <= {"YX", "YXS", "SYX"}:
            raise _input_error(
                f"its image layout ({', '.join(layouts)}) cannot be read lazily as "
                f"{len(self.pages)} GeoTIFF page(s); read it into memory instead"
            )
        spatial = list(chunk_spec) if isinstance(chunk_spec, tuple) else [chunk_spec] * 2
        if len(spatial) != 2:
            raise ValueError(f"chunks takes one size or (rows, cols) for a TIFF, got {chunk_spec}")
        pages = []
        for index, axes in enumerate(layouts):
            if axes == "SYX":  # band-interleaved: bands first, moved last
                arr = open_image_lazy(self.path, (-1, *spatial), channel_axis=0, series=index)
                pages.append(arr.transpose(1, 2, 0))
            elif axes == "YXS":
                pages.append(
                    open_image_lazy(self.path, (*spatial, -1), channel_axis=-1, series=index)
                )
            else:
                pages.append(
                    open_image_lazy(self.path, tuple(spatial), channel_axis=None, series=index)
                )
        return pages

    # -- nodata ----------------------------------------------------------------

    def prepare(self, index, page):
        """``(page, invalid)``: nodata values of a float page set to NaN, and the nodata pixels.

        ``invalid`` is a boolean (H, W) array (NumPy or Dask, as ``page``) that is
        True where any band equals the page's nodata value or is NaN; None when
        the page can have no nodata pixel (an integer page without a nodata value).
        """
        import numpy as np

        xp = _array_module(page)
        nodata = self.pages[index].nodata
        invalid = None
        if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
            equal = page == page.dtype.type(nodata)
            invalid = equal.any(axis=-1) if page.ndim == 3 else equal
            if page.dtype.kind == "f":  # so that --scale auto looks at the valid values only
                page = xp.where(equal, page.dtype.type(np.nan), page)
        if page.dtype.kind == "f":
            nan = xp.isnan(page)
            nan = nan.any(axis=-1) if page.ndim == 3 else nan
            invalid = nan if invalid is None else invalid | nan
        return page, invalid

    @staticmethod
    def mark(maps, invalid, packed=None):
        """The maps as a georeferenced input's outputs hold them: nodata marked, masks 0/1.

        A mask (0/255 picture) becomes 0/1; masks and label maps get their
        dtype's :func:`label_nodata` (255 for uint8) at ``invalid`` pixels, float
        maps NaN (every band of a multi-band map), maps packed as integers
        (``packed``: ``{key: dtype}``, :mod:`pixgmm.quantize`) their no-value code;
        pictures are returned unchanged.
        """
        import numpy as np

        from .. import quantize

        fills = {k: quantize.cf_attributes(d).get("_FillValue") for k, d in (packed or {}).items()}

        out = {}
        for key, arr in maps.items():
            if not hasattr(arr, "dtype"):  # not a map: e.g. a heatmap's PNG text (run.PNG_TEXT)
                out[key] = arr
                continue
            xp = _array_module(arr)
            if key == "mask":
                arr = (arr > 0).astype(np.uint8)
            if invalid is not None:
                if fills.get(key) is not None:
                    where = invalid if arr.ndim == invalid.ndim else invalid[..., None]
                    arr = xp.where(where, arr.dtype.type(fills[key]), arr)
                elif key in LABEL_MAPS:
                    fill = arr.dtype.type(label_nodata(arr.dtype))
                    arr = xp.where(invalid, fill, arr).astype(arr.dtype)
                elif arr.dtype.kind == "f":
                    where = invalid if arr.ndim == invalid.ndim else invalid[..., None]
                    arr = xp.where(where, arr.dtype.type(np.nan), arr)
            out[key] = arr
        return out

    # -- writing ---------------------------------------------------------------

    def write(self, index, target, array, overwrite=False, **options):
        """Write a float map, mask or label map on the grid of page ``index`` (:func:`write_geotiff`)."""
        write_geotiff(target, array, self.pages[index], overwrite=overwrite, **options)

    def zarr_attrs(self, index, name, array, packing=None):
        """The georeferencing attributes of the Zarr store of map ``name`` of page ``index``.

        ``packing``: the map holds probabilities packed in that dtype; its nodata
        is their no-value code (:mod:`pixgmm.quantize`).
        """
        from .. import quantize

        page = self.pages[index]
        a, b, c, d, e, f = page.transform
        attrs = {
            "transform": [a, b, c, d, e, f],
            "GeoTransform": " ".join(str(v) for v in (c, a, b, f, d, e)),
        }
        if page.crs_wkt is not None:
            attrs["crs"] = page.crs_wkt
            attrs["_CRS"] = {"wkt": page.crs_wkt}  # GDAL's Zarr driver reads the CRS here
        fill = quantize.cf_attributes(packing).get("_FillValue") if packing else None
        if fill is not None:
            attrs["nodata"] = fill
        elif array.dtype.kind == "f":
            attrs["nodata"] = "NaN"
        elif name in LABEL_MAPS:
            attrs["nodata"] = label_nodata(array.dtype)
        return attrs


def cloud_optimize(source, target, *, integer):
    """Copy the tiled GeoTIFF ``source`` to ``target`` as a Cloud Optimized GeoTIFF.

    GDAL's COG driver: 512 x 512 tiles, Deflate with a predictor, overviews
    down to one tile (nearest neighbour for ``integer`` maps such as labels and
    masks, averages for float maps), and everything a reader needs at the
    start of the file, so clients read a window or an overview with a few HTTP
    range requests. GDAL streams the copy: memory stays bounded.
    """
    import rasterio.shutil

    try:
        rasterio.shutil.copy(
            source,
            target,
            driver="COG",
            COMPRESS="DEFLATE",
            PREDICTOR="YES",
            BLOCKSIZE=512,
            OVERVIEW_RESAMPLING="NEAREST" if integer else "AVERAGE",
            NUM_THREADS="ALL_CPUS",
            BIGTIFF="IF_SAFER",
        )
    except rasterio.errors.RasterioError as exc:
        raise OSError(_first_line(exc)) from exc


def write_geotiff(
    path,
    array,
    like,
    *,
    overwrite=False,
    packing=None,
    cog=False,
    colormap=None,
    categories=None,
    descriptions=None,
):
    """Write a map as a GeoTIFF on the grid of ``like`` (a :class:`GeoPage`), atomically.

    Float maps are float32 with nodata NaN, one band per trailing plane
    ((H, W, K) -> K bands); integer maps are written in their dtype with nodata
    its largest value (:func:`label_nodata`: 255 for uint8); probabilities packed as
    integers (``packing``, a dtype of :mod:`pixgmm.quantize`) with their no-value code
    as nodata and GDAL's band scale and offset, so GDAL, rasterio (``masked=True``,
    ``scales``) and QGIS read probabilities. Deflate-compressed, tiled 256 x 256,
    BigTIFF when needed; written to a hidden temporary file and renamed into place
    (:func:`pixgmm.io.atomic.atomic_target`), so ``path`` never holds a partial file.
    ``cog``: a Cloud Optimized GeoTIFF (:func:`cloud_optimize`). ``colormap``
    (``{value: (r, g, b[, a])}``) and ``categories`` (a name per value, index =
    value) go to band 1 of a uint8 or uint16 map, as
    :class:`pixgmm.io.windows.OutputSpec` writes them; ``descriptions`` name the bands.

    Parameters
    ----------
    path : str, os.PathLike or URL
        The output (:func:`pixgmm.io.atomic_target`).
    array : array_like
        The map, (H, W) for one band or (H, W, K) for K bands, with H and W the
        height and width of ``like``.
    like : GeoPage
        The grid: its CRS, transform, width and height (a page of :func:`probe`).
    overwrite : bool, default False
        Replace an existing file.
    packing : {"uint8", "uint16", "float32"}, optional
        The dtype of :mod:`pixgmm.quantize` the probabilities in ``array`` are
        packed in (:func:`pixgmm.quantize.encode`). Default (or ``"float32"``):
        not packed; written in ``array``'s dtype (floats as float32).
    cog : bool, default False
        Write a Cloud Optimized GeoTIFF (:func:`cloud_optimize`).
    colormap : dict, optional
        The colour table of band 1, ``{value: (r, g, b[, a])}``.
    categories : sequence of str, optional
        A name per value of band 1 (index = value), stored in its metadata item
        ``categories``, comma-separated (:func:`band_tags` reads it).
    descriptions : sequence of str, optional
        The bands' descriptions (names), in band order.

    Raises
    ------
    ValueError
        ``array``'s height and width are not those of ``like``, or ``packing``
        is not one of the dtypes.
    OutputExists
        ``path`` exists and ``overwrite`` is false.
    OutputError
        The write failed (a full disk, no permission; GDAL's reason).

    Examples
    --------
    >>> import os, tempfile, numpy as np, rasterio
    >>> from pixgmm.io import probe_geotiff, write_geotiff
    >>> folder = tempfile.mkdtemp()
    >>> with rasterio.open(folder + "/in.tif", "w", driver="GTiff", width=4, height=3,
    ...                    count=1, dtype="uint8", crs="EPSG:4326",
    ...                    transform=rasterio.transform.from_origin(10, 50, 0.1, 0.1)) as dst:
    ...     dst.write(np.zeros((1, 3, 4), np.uint8))
    >>> page = probe_geotiff(folder + "/in.tif").pages[0]
    >>> write_geotiff(folder + "/map.tif", np.full((3, 4), 0.5), page)
    >>> with rasterio.open(folder + "/map.tif") as src:
    ...     print(src.dtypes[0], src.crs.to_epsg(), src.transform.c)
    float32 4326 10.0
    """
    import numpy as np
    import rasterio
    from affine import Affine

    from .. import quantize
    from .atomic import atomic_target

    cf = quantize.cf_attributes(packing) if packing is not None else {}
    arr = np.asarray(array, dtype=packing) if cf else np.asarray(array)
    if arr.shape[:2] != (like.height, like.width):
        raise ValueError(
            f"the map is {arr.shape[1]} x {arr.shape[0]} pixels but the grid it is written on "
            f"is {like.width} x {like.height}"
        )
    if cf:
        nodata = cf["_FillValue"]
    elif arr.dtype.kind == "f":
        arr, nodata = arr.astype(np.float32, copy=False), float("nan")
    else:
        nodata = label_nodata(arr.dtype)
    bands = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    profile = {
        "driver": "GTiff",
        "width": like.width,
        "height": like.height,
        "count": bands.shape[0],
        "dtype": arr.dtype.name,
        "crs": like.crs_wkt,
        "transform": Affine(*like.transform),
        "nodata": nodata,
        "compress": "deflate",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }
    with atomic_target(path, overwrite) as tmp:
        part = tmp.with_name(tmp.name + ".part.tif") if cog else tmp
        try:
            with rasterio.open(part, "w", **profile) as dst:
                dst.write(bands)
                if cf:
                    dst.scales = (cf["scale_factor"],) * bands.shape[0]
                    dst.offsets = (cf["add_offset"],) * bands.shape[0]
                if colormap:
                    dst.write_colormap(1, colormap)
                for band, text in enumerate(descriptions or (), start=1):
                    dst.set_band_description(band, str(text))
                if categories is not None:
                    dst.update_tags(1, categories=",".join(categories))
            if cog:
                cloud_optimize(part, tmp, integer=arr.dtype.kind != "f")
        except rasterio.errors.RasterioError as exc:  # e.g. a full disk, in GDAL's words
            raise OSError(_first_line(exc)) from exc
        finally:
            if cog:
                part.unlink(missing_ok=True)


def _spatial_chunks(chunk_spec):
    spatial = list(chunk_spec) if isinstance(chunk_spec, tuple) else [chunk_spec] * 2
    if len(spatial) != 2:
        raise ValueError(f"chunks takes one size or (rows, cols) for a TIFF, got {chunk_spec}")
    return spatial


def _window_pages(geo, chunk_spec):
    """Every page of ``geo`` as a lazy (H, W[, bands]) Dask array read window by window.

    Each block is one task that opens the page by its GDAL name (in the GDAL
    settings of :func:`pixgmm.io.remote.gdal_env`, built in the worker from its
    own environment) and reads its window: only strings are in the graph.
    Blocks are whole multiples of the file's tiles when ``chunk_spec`` is
    ``"auto"``; all bands of a page are in one chunk.
    """
    import dask.array as da
    import numpy as np
    import rasterio
    from dask.base import tokenize

    from .paths import stat_token

    spatial = _spatial_chunks(chunk_spec)
    version = stat_token(geo.path)
    pages = []
    for page in geo.pages:
        with _gdal_env(geo.path), rasterio.open(page.source) as src:
            tile = tuple(src.block_shapes[0])
        bands = (page.count,) if page.count > 1 else ()
        dtype = np.dtype(page.dtype)
        blocks = da.core.normalize_chunks(
            (*spatial, *([-1] * len(bands))),
            (page.height, page.width, *bands),
            dtype=dtype,
            previous_chunks=(*tile, *bands),
        )
        token = tokenize(geo.path, page.source, version, blocks)
        pages.append(
            da.map_blocks(
                _read_window,
                geo.path,
                page.source,
                name=f"geotiff-window-{token}",
                chunks=blocks,
                dtype=dtype,
                meta=np.empty((0,) * len(blocks), dtype),
            )
        )
    return pages


def _read_window(path, source, block_info=None):
    """Run in a task: read the window dask asks for from the page ``source`` of ``path``."""
    import numpy as np
    import rasterio

    (r0, r1), (c0, c1) = block_info[None]["array-location"][:2]
    with _gdal_env(path), rasterio.open(source) as src:
        bands = src.read(window=((r0, r1), (c0, c1)))
    return bands[0] if bands.shape[0] == 1 else np.ascontiguousarray(np.moveaxis(bands, 0, -1))


def _gdal_env(path):
    from .remote import gdal_env

    return gdal_env(path)


def band_tags(page, band=1):
    """The metadata items of band ``band`` of a GeoTIFF page (e.g. a label map's ``categories``).

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from pixgmm.io import probe_geotiff, write_geotiff
    >>> from pixgmm.io.geotiff import band_tags
    >>> folder = tempfile.mkdtemp()
    >>> with rasterio.open(folder + "/in.tif", "w", driver="GTiff", width=2, height=2,
    ...                    count=1, dtype="uint8", crs="EPSG:32633",
    ...                    transform=rasterio.transform.from_origin(0, 20, 10, 10)) as dst:
    ...     dst.write(np.zeros((1, 2, 2), np.uint8))
    >>> write_geotiff(folder + "/map.tif", np.ones((2, 2), np.uint8),
    ...               probe_geotiff(folder + "/in.tif").pages[0], categories=["", "water"])
    >>> band_tags(probe_geotiff(folder + "/map.tif").pages[0])["categories"]
    ',water'
    """
    import rasterio

    try:
        with rasterio.open(page.source) as src:
            return dict(src.tags(band))
    except rasterio.errors.RasterioError as exc:
        raise _input_error(f"cannot read GeoTIFF: {_first_line(exc)}") from None


def _array_module(arr):
    if hasattr(arr, "dask"):
        import dask.array as da

        return da
    import numpy as np

    return np


def _input_error(text):
    from .errors import ReadError

    return ReadError(text)


def _first_line(exc):
    from .errors import first_line

    return first_line(exc)


def probe(path, on_dropped=None):
    """The :class:`Georef` of ``path`` when it is a georeferenced TIFF rasterio can read, else None.

    Only ``.tif``/``.tiff`` files and GDAL virtual rasters (``.vrt``) are
    looked at; a TIFF's tags are read with tifffile first, so plain TIFFs never
    import rasterio. A GeoTIFF without
    rasterio installed gives None, after calling ``on_dropped(message)`` (if
    given) with a sentence saying that its georeferencing is dropped and how to
    keep it. A GeoTIFF that rasterio cannot open raises
    :class:`~pixgmm.io.ReadError`. Results are cached by path, size and
    modification time. ``path`` may be a URL (``s3://bucket/scene.tif``), read
    through GDAL's ``/vsis3/``-style paths (:mod:`pixgmm.io.remote`).

    Parameters
    ----------
    path : str, os.PathLike or URL
        The input. A path whose suffix is not ``.tif``, ``.tiff`` or ``.vrt``
        (a GDAL virtual raster), or that does not exist, gives None at once.
    on_dropped : callable, optional
        ``on_dropped(message)``, called when ``path`` is a GeoTIFF and rasterio
        is not installed.

    Returns
    -------
    Georef or None
        The georeferencing of every page; None for a plain TIFF (no GeoTIFF
        tags, or neither a CRS nor a transform) and for a GeoTIFF without
        rasterio.

    Raises
    ------
    ReadError
        rasterio cannot open the GeoTIFF or virtual raster, or a virtual raster
        is given without rasterio installed.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from rasterio.transform import from_origin
    >>> from pixgmm.io import probe_geotiff
    >>> path = tempfile.mkdtemp() + "/scene.tif"
    >>> with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=2,
    ...                    dtype="uint16", crs="EPSG:32633", nodata=0,
    ...                    transform=from_origin(500000, 4200000, 10, 10)) as dst:
    ...     dst.write(np.ones((2, 3, 4), np.uint16))
    >>> geo = probe_geotiff(path)
    >>> geo.pages[0].count, geo.pages[0].nodata, geo.pages[0].transform[:3]
    (2, 0, (10.0, 0.0, 500000.0))
    """
    from .formats import GDAL_SUFFIXES, TIFF_SUFFIXES, suffix
    from .paths import absolute, stat_token

    if suffix(path) not in TIFF_SUFFIXES | GDAL_SUFFIXES:
        return None
    name = absolute(path)
    try:
        version = stat_token(name)
    except Exception:  # e.g. no such file or object, no access: the reader reports why
        return None
    found = _probe(name, version)
    if found == _NEEDS_RASTERIO:
        if on_dropped is not None:
            on_dropped(
                f"{path} is a GeoTIFF, but rasterio is not installed: it is read as a plain "
                "TIFF and the georeferencing (CRS, transform, nodata) of it and of any other "
                'GeoTIFF is dropped from the outputs; pip install "pixgmm[geo]" keeps it'
            )
        return None
    return found


@functools.lru_cache(maxsize=16)
def _probe(path, version):
    from .formats import GDAL_SUFFIXES, suffix
    from .paths import open_binary
    from .remote import gdal_path

    gdal_only = suffix(path) in GDAL_SUFFIXES  # a .vrt: only GDAL reads it
    if not gdal_only:
        try:
            import tifffile

            with open_binary(path) as fh, tifffile.TiffFile(fh) as tif:
                tagged = not _GEOTIFF_TAGS.isdisjoint(tif.pages.first.tags.keys())
        except Exception:  # not a TIFF tifffile reads: the plain reader reports why
            return None
        if not tagged:
            return None
    try:
        import rasterio
    except ImportError:
        if gdal_only:
            raise _input_error(
                'a GDAL virtual raster (.vrt) is read with rasterio: pip install "pixgmm[geo]"'
            ) from None
        return _NEEDS_RASTERIO
    import warnings

    try:
        with warnings.catch_warnings(), _gdal_env(path):
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(gdal_path(path)) as src:
                sources = list(src.subdatasets) or [gdal_path(path)]
            pages = tuple(_page(rasterio, source) for source in sources)
    except rasterio.errors.RasterioError as exc:
        what = "virtual raster" if gdal_only else "GeoTIFF"
        raise _input_error(f"cannot read {what}: {_first_line(exc)}") from None
    if not gdal_only and all(
        p.crs_wkt is None and p.transform == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0) for p in pages
    ):
        return None  # GeoTIFF tags, but neither a CRS nor a transform
    return Georef(path, pages)


def _page(rasterio, source):
    import numpy as np

    with rasterio.open(source) as src:
        dtype = np.dtype(src.dtypes[0])
        nodata = src.nodata
        if nodata is not None and dtype.kind in "ui":
            nodata = int(nodata)
        return GeoPage(
            source=source,
            crs_wkt=src.crs.to_wkt() if src.crs is not None else None,
            transform=tuple(float(v) for v in tuple(src.transform)[:6]),
            nodata=nodata,
            width=src.width,
            height=src.height,
            count=src.count,
            dtype=dtype.name,
            alpha=src.count > 1 and src.colorinterp[-1] == rasterio.enums.ColorInterp.alpha,
            block=tuple(int(b) for b in src.block_shapes[0]),
            descriptions=tuple(d or "" for d in src.descriptions),
        )
