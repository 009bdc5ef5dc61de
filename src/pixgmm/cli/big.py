"""Big images on the command line: ``--chunks``, ``--workers``, ``--scheduler`` for skin and density.

With any of these options an input is opened lazily (TIFF tile by tile, Zarr
chunk by chunk, :func:`pixgmm.bigimage.open_image_lazy`), evaluated block by
block with Dask, and every map is written chunk by chunk to a Zarr store
(``photo.probability.zarr``) by :func:`pixgmm.bigimage.write_zarr_many`, all
maps of an input in one pass over the image, so memory
use is bounded by a few chunks whatever the image size. ``--workers N`` starts a
local cluster of N processes; ``--scheduler ADDRESS`` uses a running one;
``--chunks`` alone uses dask's threaded scheduler in this process. A progress
bar for the Dask computation is shown when stderr is a terminal.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click

BIG_HELP = (
    "With --chunks, --workers or --scheduler, images are read lazily (TIFF, Zarr) and "
    "processed chunk by chunk with Dask; every output is a Zarr store (photo.mask.zarr; "
    "a multi-page TIFF gives one per page, photo.page2.mask.zarr), and the pixel limit "
    "does not apply to them. A complete store is kept on a rerun, an unfinished one "
    "(an interrupted run) is completed. Deciding --scale auto for a float image reads it "
    "once more (its minimum and maximum); --scale none or unit skips that."
)


def big_options(func):
    """--chunks, --workers, --scheduler."""
    options = [
        click.option(
            "--chunks",
            metavar="SIZE",
            help="Process the image lazily in SIZE x SIZE blocks (or ROWS,COLS, or auto) "
            "and write Zarr stores. Implied by --workers and --scheduler (auto).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            help="Start a local Dask cluster of this many worker processes.",
        ),
        click.option(
            "--scheduler",
            metavar="ADDRESS",
            help="Use a running Dask scheduler, e.g. tcp://10.0.0.5:8786.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def requested(chunks, workers, scheduler):
    """True when any of the three options is given; a usage error without the dask extra."""
    if chunks is None and workers is None and scheduler is None:
        return False
    from importlib.util import find_spec

    needed = ["dask", "zarr"] + (["distributed"] if workers or scheduler else [])
    missing = [name for name in needed if find_spec(name) is None]
    if missing:
        raise click.UsageError(
            f"--chunks, --workers and --scheduler need {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; install the extra with "
            'pip install "pixgmm[dask]"'
        )
    return True


def _is_zarr(path):
    p = Path(path)
    return p.is_dir() and (
        p.suffix.lower() == ".zarr"
        or (p / ".zarray").exists()
        or (p / ".zgroup").exists()
        or (p / "zarr.json").exists()
    )


def _expand(args):
    from . import inputs as _inputs

    found = []
    for arg in args:
        if _is_zarr(arg):
            found.append((arg, Path(arg), None))
        else:
            found.extend(_inputs.expand_inputs([arg]))
    return found


def _tiff_pages(path, chunk_spec, max_pixels):
    """The pages of a TIFF as lazy (H, W[, C]) arrays, in the order the in-memory reader gives.

    Every series of the file is opened (pages of different sizes are separate
    series); leading page axes are read one page per block.
    """
    import tifffile

    from ..bigimage import open_image_lazy

    with tifffile.TiffFile(path) as tif:
        layouts = [(s.axes, tuple(s.shape)) for s in tif.series]
    spatial = list(chunk_spec) if isinstance(chunk_spec, tuple) else [chunk_spec] * 2
    if len(spatial) != 2:
        raise ValueError(f"--chunks takes one size or ROWS,COLS for a TIFF, got {chunk_spec}")
    pages = []
    for index, (axes, shape) in enumerate(layouts):
        if len(shape) >= 3 and axes[-1] == "S":
            lead, planar, channel_axis = len(shape) - 3, False, -1
        elif len(shape) >= 3 and axes[-3] == "S" and shape[-3] in (3, 4):
            lead, planar, channel_axis = len(shape) - 3, True, len(shape) - 3
        else:
            lead, planar, channel_axis = len(shape) - 2, False, None
        spec = [1] * lead + ([-1] if planar else []) + spatial + ([-1] if axes[-1] == "S" else [])
        arr = open_image_lazy(
            path, tuple(spec), channel_axis=channel_axis, series=index, max_pixels=max_pixels
        )
        if planar:  # (..., S, Y, X) -> (..., Y, X, S), as the in-memory reader gives
            import dask.array as da

            arr = da.moveaxis(arr, lead, -1)
        if lead == 0:
            pages.append(arr)
        else:
            flat = arr.reshape((-1, *arr.shape[lead:]))
            pages.extend(flat[i] for i in range(flat.shape[0]))
    return pages


def _open_client(workers, scheduler, progress):
    """Enter :func:`pixgmm.bigimage.dask_client`; a cluster that cannot start is a usage error."""
    from ..bigimage import dask_client

    stack = contextlib.ExitStack()
    try:
        stack.enter_context(
            dask_client(
                workers=workers,
                scheduler=scheduler,
                progress=progress,
                timeout=10 if scheduler else 30,
            )
        )
    except (OSError, TimeoutError, ValueError) as exc:
        stack.close()
        where = f"the scheduler at {scheduler}" if scheduler else "a local Dask cluster"
        raise click.BadParameter(
            f"cannot use {where}: {exc}", param_hint="--scheduler" if scheduler else "--workers"
        ) from None
    return stack


def _lazy_pages(path, chunk_spec, max_pixels):
    from ..bigimage import open_image_lazy

    if str(path).lower().endswith((".tif", ".tiff")) and Path(path).is_file():
        return _tiff_pages(str(path), chunk_spec, max_pixels)
    return [open_image_lazy(path, chunk_spec, max_pixels=max_pixels)]


def run_lazy(inputs, names, compute, opts, chunks, workers, scheduler, extra=None, rule=None):
    """Evaluate every input lazily and write ``{name: dask array}`` from ``compute`` as Zarr.

    ``rule`` (a :class:`~pixgmm.cli.pixels.PixelRule`) turns each lazy page into
    the pixels ``compute`` takes. A multi-page TIFF gives one set of stores per
    page (``photo.page2.mask.zarr``), as in memory. A complete store is kept and
    reported as skipped unless ``--overwrite``; an unfinished one (an interrupted
    run) is written into. Returns the exit status (0 or 1), with the same
    per-input reporting and JSON summary as the in-memory loop.
    """
    from ..bigimage import parse_chunks, store_status, write_zarr_many
    from . import geo as _geo
    from . import inputs as _inputs
    from . import writers as _writers
    from .pixels import PixelRule
    from .run import _page_label, _Progress, process_inputs, summarize

    rule = rule or PixelRule()
    try:
        chunk_spec = parse_chunks(chunks)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--chunks") from None
    found = _expand(inputs)
    show = _Progress(opts).enabled

    def check(path):
        if not _is_zarr(path):
            _inputs.check_supported(path)
        if _inputs.is_video(path):
            raise _inputs.InputError(
                "videos are not read lazily; drop --chunks/--workers/--scheduler"
            )

    def done(t):
        return not opts.overwrite and store_status(t) == "complete"

    def handle(path, stem, result):
        single = [opts.out / f"{stem}.{n}.zarr" for n in names]
        if all(done(t) for t in single):
            result.skipped.extend(map(str, single))  # finished by an earlier run
            return
        geo = None if _is_zarr(path) else _geo.probe(path, opts.quiet)  # a GeoTIFF, see .geo
        try:
            if geo is not None:
                pages = geo.lazy_pages(chunk_spec)
            else:
                pages = _lazy_pages(path, chunk_spec, opts.max_pixels)
        except (ValueError, ImportError) as exc:  # ImportError: a codec to install, named
            raise _inputs.InputError(str(exc)) from None
        except (OSError, KeyError) as exc:
            raise _inputs.InputError(f"cannot open image lazily: {exc}") from None
        if len(pages) > 1:
            result.pages = len(pages)
        items = []
        for i, page in enumerate(pages):
            label = _page_label(i, len(pages))
            targets = {n: opts.out / f"{stem}{label}.{n}.zarr" for n in names}
            todo = {}
            for n, t in targets.items():
                status = store_status(t)
                if done(t):
                    result.skipped.append(str(t))
                elif status == "foreign" and not opts.overwrite:
                    raise _writers.OutputExists(
                        f"{t} exists and was not written by pixgmm (pass --overwrite to replace "
                        "it, if it is a Zarr store)"
                    )
                else:
                    todo[n] = t
            if not todo:
                continue
            pixels, note, invalid = _geo.page_pixels(geo, i, page, rule)
            result.note(note)
            maps = compute(pixels)
            if geo is not None:
                maps = geo.mark(maps, invalid)  # nodata pixels marked, masks 0/1
            items += [
                (
                    maps[n],
                    t,
                    {
                        "pixgmm_source": str(path),
                        "pixgmm_map": n,
                        **(geo.zarr_attrs(i, n, maps[n]) if geo is not None else {}),
                    },
                )
                for n, t in todo.items()
            ]
        # one pass: the maps share the image read and, for skin, the log ratio
        write_zarr_many(items, overwrite=opts.overwrite)
        result.outputs.extend(str(t) for _, t, _ in items)

    with _open_client(workers, scheduler, show):
        results = process_inputs(found, opts, check, handle)
    return summarize(results, opts, extra)


# -- the two commands' lazy computations -----------------------------------------


def skin_maps(detector, save, log_t, lut=None):
    """``compute(lazy image) -> {output: lazy map}`` for ``pixgmm skin``."""
    import dask.array as da
    import numpy as np

    from ..skin import _posterior_copy
    from . import render as _render

    odds = float(detector.log_prior_odds)  # only this float travels with each task

    def posterior(lr):
        return _posterior_copy(lr.astype(np.float64), odds).astype(np.float32)

    def heat(p):
        return _render.heatmap(p, 0.0, 1.0, lut)

    def tint(image, mask):
        return _render.overlay(_render.to_display(image), mask[..., 0])

    def compute(rgb):
        lr = detector.log_ratio(rgb, channels="RGB")
        maps = {}
        if "logratio" in save:
            maps["logratio"] = lr.astype(np.float32)
        if "probability" in save or "heatmap" in save:
            p = lr.map_blocks(posterior, dtype=np.float32)
            maps["probability"] = p
            if "heatmap" in save:
                maps["heatmap"] = p.map_blocks(
                    heat, dtype=np.uint8, new_axis=2, chunks=(*p.chunks, (3,))
                )
        if "mask" in save or "overlay" in save:
            mask = lr >= log_t
            maps["mask"] = da.where(mask, np.uint8(255), np.uint8(0))
            if "overlay" in save:
                maps["overlay"] = da.map_blocks(
                    tint,
                    rgb,
                    mask[..., None],
                    dtype=np.uint8,
                    chunks=(*mask.chunks, (3,)),
                )
        return {k: v for k, v in maps.items() if k in save}

    return compute


def density_maps(model, name, log_, channels):
    """``compute(lazy pixels) -> {name: lazy map}`` for ``pixgmm density``."""
    import dask.array as da
    import numpy as np

    from ..evaluate import log_density

    def compute(pixels):
        logp = log_density(pixels, model, channels=channels)
        return {name: (logp if log_ else da.exp(logp)).astype(np.float32)}

    return compute
