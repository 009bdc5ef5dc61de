"""Rasters streamed window by window: read ahead, compute, write behind, in bounded memory.

A georeferenced raster (GeoTIFF, COG, a GDAL virtual mosaic ``.vrt``) of any
size is processed in windows aligned with the file's blocks: reader threads read
the next windows while the caller's computation runs on the current one (numba
kernels use every core), and one writer thread per output writes finished
windows into a tiled, compressed GeoTIFF (GDAL compresses with ``NUM_THREADS``).
At most ``read_ahead`` windows wait to be computed and ``write_behind`` wait to
be written, and GDAL's block cache is held to a few windows (:data:`CACHE_BYTES`,
unless ``GDAL_CACHEMAX`` is set), so memory holds a few windows whatever the
raster's size.

Each output is written to a hidden temporary file beside its target and renamed
into place only when every window is written (:func:`pixgmm.io.atomic.atomic_target`),
so an interrupted run leaves no partial output under an output's name.

rasterio releases the GIL while GDAL reads, decompresses, compresses and
writes; every thread has its own dataset handle (a GDAL dataset is not shared
between threads).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

#: Bytes of input pixels per window, by default: large enough that GDAL's per-call cost
#: vanishes, small enough that a few windows in flight stay well under a gigabyte.
WINDOW_BYTES = 32 * 2**20

#: Tile size of the GeoTIFFs written window by window.
OUTPUT_BLOCK = 512

#: GDAL's block cache during a stream, unless ``GDAL_CACHEMAX`` is set in the environment:
#: a few windows. GDAL's own default (5% of the machine's memory) would let the written
#: tiles pile up in it (half a gigabyte on a 10-band Sentinel-2 tile) and grows with the
#: machine, not with the windows.
CACHE_BYTES = 4 * WINDOW_BYTES


@dataclass(frozen=True)
class Window:
    """Rows ``row:row + height`` and columns ``col:col + width`` of a raster."""

    row: int
    col: int
    height: int
    width: int

    @property
    def slices(self):
        return slice(self.row, self.row + self.height), slice(self.col, self.col + self.width)

    def rasterio(self):
        from rasterio.windows import Window as RioWindow

        return RioWindow(self.col, self.row, self.width, self.height)


def plan_windows(height, width, block_shape, bytes_per_pixel, budget=WINDOW_BYTES):
    """Windows covering a ``height`` x ``width`` raster, in row-major order.

    Each window is a whole number of the file's blocks (``block_shape`` =
    (rows, cols) of a tile or a strip) along both axes, so no block is read
    twice, and of the outputs' tiles (:data:`OUTPUT_BLOCK`) where that keeps it
    within 4x ``budget``, so no output tile is compressed twice; it holds about
    ``budget`` bytes of pixels: full rows when a band of full-width block rows
    fits in the budget, else tiles of whole blocks.

    Examples
    --------
    >>> from pixgmm.io.windows import plan_windows
    >>> bands = plan_windows(1000, 800, (256, 256), 20, budget=2**23)  # 10 uint16 bands
    >>> len(bands), bands[0], bands[-1]
    (2, Window(row=0, col=0, height=512, width=800), Window(row=512, col=0, height=488, width=800))
    >>> tiles = plan_windows(1000, 800, (256, 256), 20, budget=2**20)
    >>> len(tiles), tiles[0].height, tiles[0].width
    (16, 256, 256)
    """
    if height <= 0 or width <= 0:
        return []
    bh, bw = (max(1, int(b)) for b in block_shape)
    bh, bw = min(bh, height), min(bw, width)
    # whole output tiles too where that costs at most 4x the budget: a tile of a compressed
    # GeoTIFF written in two parts is compressed twice
    oh, ow = min(math.lcm(bh, OUTPUT_BLOCK), height), min(math.lcm(bw, OUTPUT_BLOCK), width)
    if bh * width * bytes_per_pixel <= budget:  # full-width bands of whole block rows
        unit = oh if oh * width * bytes_per_pixel <= 4 * budget else bh
        rows, cols = unit * max(1, int(budget // (unit * width * bytes_per_pixel))), width
    else:  # tiles of whole blocks, as square as the budget allows
        uh, uw = (oh, ow) if oh * ow * bytes_per_pixel <= 4 * budget else (bh, bw)
        side = max(1, math.isqrt(int(budget // (uh * uw * bytes_per_pixel))))
        rows, cols = uh * side, uw * side
    return [
        Window(r, c, min(rows, height - r), min(cols, width - c))
        for r in range(0, height, rows)
        for c in range(0, width, cols)
    ]


class WindowReader:
    """Read windows of a raster ahead of their use, each thread with its own dataset handle.

    ``source`` is what rasterio opens (a path, ``GTIFF_DIR:n:path``, a ``.vrt``,
    ``/vsis3/...``); ``url``, for a raster in an object store, is its URL, whose
    endpoint and credentials GDAL gets from the environment
    (:func:`pixgmm.io.remote.gdal_env`). :meth:`windows` yields ``(window,
    array)`` in order, the array (H, W, bands) in the file's dtype, while up to
    ``read_ahead`` later windows are being read.
    """

    def __init__(self, source, *, url=None, threads=2, read_ahead=2):
        self.source = source
        self.url = url
        self.threads = max(1, int(threads))
        self.read_ahead = max(1, int(read_ahead))
        self._local = threading.local()
        self._handles = []
        self._lock = threading.Lock()

    def _env(self):
        from .remote import gdal_env

        return gdal_env(self.url) if self.url is not None else contextlib.nullcontext()

    def _dataset(self):
        ds = getattr(self._local, "ds", None)
        if ds is None:
            import rasterio

            with self._env():
                ds = rasterio.open(self.source)
            self._local.ds = ds
            with self._lock:
                self._handles.append(ds)
        return ds

    def read(self, window, bands=None):
        """The pixels of ``window`` as (H, W, bands)."""
        import numpy as np

        ds = self._dataset()
        with self._env():
            arr = ds.read(bands, window=window.rasterio())
        return np.moveaxis(arr, 0, -1)

    def windows(self, plan, bands=None):
        """Yield ``(window, array)`` for every window of ``plan``, reading ahead."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="pixgmm-read") as pool:
            pending = []
            plan = list(plan)
            nxt = 0
            try:
                while nxt < len(plan) and len(pending) < self.read_ahead:
                    pending.append((plan[nxt], pool.submit(self.read, plan[nxt], bands)))
                    nxt += 1
                while pending:
                    window, future = pending.pop(0)
                    array = future.result()
                    if nxt < len(plan):
                        pending.append((plan[nxt], pool.submit(self.read, plan[nxt], bands)))
                        nxt += 1
                    yield window, array
            finally:
                for _, future in pending:
                    future.cancel()

    def close(self):
        with self._lock:
            handles, self._handles = self._handles, []
        for ds in handles:
            with contextlib.suppress(Exception):
                ds.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class OutputSpec:
    """One GeoTIFF output of a stream: its target and how it is written.

    ``dtype`` and ``count`` (bands) default to those of the first window's map;
    ``nodata`` defaults to NaN for float maps and the largest value of their
    dtype for integer maps (:func:`~pixgmm.io.geotiff.label_nodata`: 255 for
    uint8). ``colormap`` (``{value: (r, g, b[, a])}``) and ``categories``
    (band 1's category names, index = value) go to single-band integer outputs;
    ``descriptions`` name the bands.
    """

    path: object
    dtype: str | None = None
    count: int | None = None
    nodata: float | int | None = None
    colormap: dict | None = None
    categories: list | None = None
    descriptions: tuple | None = None
    packing: str | None = None  # probabilities packed in this dtype (pixgmm.quantize)
    cog: bool = False  # a Cloud Optimized GeoTIFF (pixgmm.io.geotiff.cloud_optimize)

    def completed(self, array):
        """This spec with the dtype, band count and nodata of ``array``'s map filled in."""
        import dataclasses

        from .. import quantize
        from .geotiff import label_nodata

        dtype = self.dtype or ("float32" if array.dtype.kind == "f" else array.dtype.name)
        count = self.count or (1 if array.ndim == 2 else array.shape[-1])
        nodata = self.nodata
        if self.packing is not None:
            dtype = self.packing
            nodata = quantize.cf_attributes(self.packing).get("_FillValue", nodata)
        if nodata is None:
            nodata = float("nan") if dtype.startswith("float") else label_nodata(dtype)
        return dataclasses.replace(self, dtype=dtype, count=count, nodata=nodata)


def _profile(spec, like):
    from affine import Affine

    kind = "f" if spec.dtype.startswith("float") else "i"
    return {
        "driver": "GTiff",
        "width": like.width,
        "height": like.height,
        "count": spec.count,
        "dtype": spec.dtype,
        "crs": like.crs_wkt,
        "transform": Affine(*like.transform),
        "nodata": spec.nodata,
        "tiled": True,
        "blockxsize": OUTPUT_BLOCK,
        "blockysize": OUTPUT_BLOCK,
        "compress": "deflate",
        "predictor": 3 if kind == "f" else 2,
        "num_threads": "ALL_CPUS",
        "BIGTIFF": "IF_SAFER",
    }


def _os_error(exc):
    """GDAL's errors (a full disk, in its words) as the OSError the atomic writers report."""
    if isinstance(exc, OSError) or not type(exc).__module__.startswith("rasterio"):
        return exc
    from .errors import first_line

    return OSError(first_line(exc))


class WindowWriter:
    """Write windows into one GeoTIFF from a thread of its own, in the order they come.

    Opened on a temporary path (the caller renames it into place); :meth:`put`
    queues a window (blocking while ``write_behind`` windows are already waiting),
    :meth:`close` waits for the queue to drain and raises any error of the
    writing thread.
    """

    _STOP = object()

    def __init__(self, tmp_path, spec, like, *, write_behind=2):
        import rasterio

        self.spec = spec
        self._target = tmp_path
        # a COG is made from the complete tiled GeoTIFF at the end (its driver only copies)
        self._part = (
            Path(tmp_path).with_name(Path(tmp_path).name + ".part.tif") if spec.cog else None
        )
        try:
            self._ds = rasterio.open(self._part or tmp_path, "w", **_profile(spec, like))
        except Exception as exc:
            raise _os_error(exc) from exc
        if spec.colormap:
            self._ds.write_colormap(1, spec.colormap)
        if spec.packing is not None and spec.packing != "float32":
            from .. import quantize

            cf = quantize.cf_attributes(spec.packing)
            self._ds.scales = (cf["scale_factor"],) * spec.count
            self._ds.offsets = (cf["add_offset"],) * spec.count
        if spec.descriptions:
            for band, text in enumerate(spec.descriptions, start=1):
                self._ds.set_band_description(band, str(text))
        self._queue = queue.Queue(maxsize=max(1, int(write_behind)))
        self._error = None
        self._thread = threading.Thread(target=self._run, name="pixgmm-write", daemon=True)
        self._thread.start()

    def _run(self):
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            if self._error is not None:
                continue  # drain: the error is raised by put() or close()
            window, array = item
            try:
                import numpy as np

                bands = array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)
                self._ds.write(bands.astype(self.spec.dtype, copy=False), window=window.rasterio())
            except BaseException as exc:  # reported in the calling thread
                self._error = _os_error(exc)

    def put(self, window, array):
        if self._error is not None:
            raise self._error
        self._queue.put((window, array))

    def close(self, finish=True):
        """Stop the thread; with ``finish``, after every queued window is written."""
        if not finish:
            self._error = self._error or RuntimeError("stopped")
        self._queue.put(self._STOP)
        self._thread.join()
        try:
            if finish and self._error is None and self.spec.categories is not None:
                self._ds.update_tags(1, **{"categories": ",".join(self.spec.categories)})
            self._ds.close()
            if finish and self._error is None and self._part is not None:
                from .geotiff import cloud_optimize

                cloud_optimize(self._part, self._target, integer=self.spec.dtype[0] in "ui")
        except Exception as exc:
            if self._error is None:
                self._error = _os_error(exc)
        finally:
            if self._part is not None:
                self._part.unlink(missing_ok=True)
        if finish and self._error is not None:
            raise self._error


def stream(reader, plan, compute, outputs, like, *, overwrite=False, bands=None, progress=None,
           write_behind=2):  # fmt: skip
    """Compute every window of ``plan`` and write the results into GeoTIFFs, atomically.

    Parameters
    ----------
    reader : WindowReader
        The raster read.
    plan : list of Window
        From :func:`plan_windows`.
    compute : callable
        ``compute(window, array) -> {name: array}``: the maps of one window
        ((h, w) or (h, w, count)), computed in the calling thread.
    outputs : dict
        ``{name: OutputSpec}``: the maps to write; ``compute`` must give each.
        A map's dtype and band count are those of its first window, unless the
        spec sets them.
    like : GeoPage
        The grid (size, CRS, transform) of the outputs.
    progress : callable, optional
        Called with each window's pixel count once it is computed.

    Every output is written to a temporary file renamed into place only after
    every window was written; on an error or an interrupt nothing is left
    under an output's name.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from rasterio.transform import from_origin
    >>> from pixgmm.io import probe_geotiff
    >>> from pixgmm.io.windows import OutputSpec, WindowReader, plan_windows, stream
    >>> folder = tempfile.mkdtemp()
    >>> with rasterio.open(folder + "/in.tif", "w", driver="GTiff", width=300, height=1200,
    ...                    count=2, dtype="uint16", crs="EPSG:32633", tiled=True,
    ...                    blockxsize=64, blockysize=64,
    ...                    transform=from_origin(0, 0, 10, 10)) as dst:
    ...     dst.write(np.ones((2, 1200, 300), np.uint16))
    >>> page = probe_geotiff(folder + "/in.tif").pages[0]
    >>> plan = plan_windows(1200, 300, (64, 64), 4, budget=64 * 300 * 4)
    >>> with WindowReader(page.source) as reader:
    ...     stream(reader, plan, lambda w, a: {"sum": a.sum(axis=-1).astype(np.float32)},
    ...            {"sum": OutputSpec(folder + "/sum.tif")}, page)
    >>> with rasterio.open(folder + "/sum.tif") as src:
    ...     print(len(plan), src.dtypes[0], float(src.read(1).mean()))
    19 float32 2.0
    """
    from .atomic import atomic_target

    with bounded_cache(), contextlib.ExitStack() as files:
        writers = {}
        finished = False
        try:
            for window, array in reader.windows(plan, bands):
                maps = compute(window, array)
                for name, spec in outputs.items():
                    if name not in writers:  # opened on the first window: its dtype and bands
                        tmp = files.enter_context(atomic_target(spec.path, overwrite))
                        writers[name] = WindowWriter(
                            tmp, spec.completed(maps[name]), like, write_behind=write_behind
                        )
                    writers[name].put(window, maps[name])
                if progress is not None:
                    progress(window.height * window.width)
            finished = True
        finally:
            errors = []
            for writer in writers.values():
                try:
                    writer.close(finish=finished)
                except BaseException as exc:
                    errors.append(exc)
            if finished and errors:
                raise errors[0]


@contextlib.contextmanager
def bounded_cache():
    """GDAL's block cache at :data:`CACHE_BYTES` while the block runs, or as the user set it.

    For a pass that reads (or writes) a raster window by window: its blocks are used once,
    so a cache of a few windows loses nothing, and GDAL's default would keep up to 5% of
    the machine's memory of them. A ``GDAL_CACHEMAX`` in the environment, or in the
    ``rasterio.Env`` the caller runs in, is kept; the cache's size is restored afterwards
    (nested in another ``rasterio.Env``, rasterio alone would leave it changed).
    """
    import os

    import rasterio
    from rasterio.env import get_gdal_config, set_gdal_config

    if "GDAL_CACHEMAX" in os.environ or (
        rasterio.env.hasenv() and "GDAL_CACHEMAX" in rasterio.env.getenv()
    ):
        yield
        return
    before = get_gdal_config("GDAL_CACHEMAX")
    try:
        with rasterio.Env(GDAL_CACHEMAX=CACHE_BYTES):
            yield
    finally:
        if get_gdal_config("GDAL_CACHEMAX") != before:
            set_gdal_config("GDAL_CACHEMAX", before)


class AlignedRaster:
    """A raster read on another raster's grid, window by window: per-pixel priors, masks.

    ``path`` is opened with rasterio (a GeoTIFF, a ``.vrt``, a URL);
    :meth:`check` refuses a raster whose grid differs from the input's (size,
    and transform and CRS when both have them) or whose band count is not
    ``bands``; :meth:`read` gives a window (or the whole raster) as (H, W, bands)
    float32, nodata and NaN as NaN.

    Examples
    --------
    >>> import tempfile, numpy as np, rasterio
    >>> from pixgmm.io.windows import AlignedRaster, Window
    >>> path = tempfile.mkdtemp() + "/priors.tif"
    >>> with rasterio.open(path, "w", driver="GTiff", width=4, height=3, count=2,
    ...                    dtype="float32", crs="EPSG:32633",
    ...                    transform=rasterio.transform.from_origin(0, 0, 10, 10)) as dst:
    ...     dst.write(np.ones((2, 3, 4), np.float32))
    >>> with AlignedRaster(path) as priors:
    ...     priors.read(Window(1, 1, 2, 3)).shape
    (2, 3, 2)
    """

    def __init__(self, path):
        import rasterio

        from .paths import is_url
        from .remote import gdal_env, gdal_path

        self.path = path
        self._env = gdal_env(path) if is_url(path) else contextlib.nullcontext()
        try:
            with self._env:
                self._ds = rasterio.open(gdal_path(path) if is_url(path) else path)
        except rasterio.errors.RasterioError as exc:
            from .errors import ReadError, first_line

            raise ReadError(f"cannot read {path}: {first_line(exc)}") from None
        self.count = self._ds.count

    def check(self, height, width, transform=None, crs_wkt=None, *, bands=None, what="priors"):
        """Raise ValueError unless this raster lies on the grid given (and has ``bands`` bands)."""
        ds = self._ds
        problems = []
        if (ds.height, ds.width) != (height, width):
            problems.append(f"it is {ds.width} x {ds.height} pixels, the image {width} x {height}")
        if transform is not None and ds.crs is not None:
            mine = tuple(float(v) for v in tuple(ds.transform)[:6])
            if any(abs(a - b) > 1e-6 * max(1.0, abs(b)) for a, b in zip(mine, transform)):
                problems.append(f"its transform {mine} is not the image's {tuple(transform)}")
            if crs_wkt is not None and ds.crs.to_wkt() != crs_wkt:
                from rasterio.crs import CRS

                if CRS.from_wkt(crs_wkt) != ds.crs:
                    problems.append("its CRS is not the image's")
        if bands is not None and ds.count != bands:
            problems.append(f"it has {ds.count} band(s) but {bands} are needed, one per class")
        if problems:
            raise ValueError(f"{what} {self.path}: " + "; ".join(problems))

    def read(self, window=None):
        """``window`` (or the whole raster) as float32 (H, W, bands); nodata and NaN as NaN."""
        import numpy as np

        with self._env:
            arr = self._ds.read(window=None if window is None else window.rasterio(),
                                out_dtype="float32", masked=True)  # fmt: skip
        return np.moveaxis(arr.filled(np.nan), 0, -1)

    def close(self):
        self._ds.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
