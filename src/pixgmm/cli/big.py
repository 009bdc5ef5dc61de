"""Big images on the command line: ``--chunks``, ``--workers``, ``--scheduler`` for skin and density.

With any of these options an input is opened lazily (TIFF tile by tile, Zarr
chunk by chunk, :func:`pixgmm.io.open_pages_lazy`), evaluated block by
block with Dask, and every map is written chunk by chunk to a Zarr store
(``photo.probability.zarr``) by :func:`pixgmm.io.write_zarr_many`, all
maps of an input in one pass over the image, so memory
use is bounded by a few chunks whatever the image size. ``--workers N`` starts a
local cluster of N processes; ``--scheduler ADDRESS`` uses a running one;
``--chunks`` alone uses dask's threaded scheduler in this process. A progress
bar for the Dask computation is shown when stderr is a terminal.
"""

from __future__ import annotations

import contextlib

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
    """--chunks, --workers, --scheduler, --zarr-format."""
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
        click.option(
            "--zarr-format",
            type=click.Choice(("3", "2")),
            default=None,
            help="Format of the Zarr stores written with --chunks: 3 (default) or 2, which "
            'GDAL before 3.11 (rasterio\'s ZARR:"path") reads too.',
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def requested(chunks, workers, scheduler, zarr_format=None):
    """True when any of the three options is given; a usage error without the dask extra.

    ``--zarr-format`` alone is a usage error: it describes the stores --chunks writes.
    """
    if chunks is None and workers is None and scheduler is None:
        if zarr_format is not None:
            raise click.UsageError(
                "--zarr-format applies to the Zarr stores written with --chunks, --workers or "
                "--scheduler; give one of them, or leave out --zarr-format"
            )
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


def _expand(args):
    from . import inputs as _inputs

    return _inputs.expand_inputs(args, zarr_stores=True)  # a Zarr store is one input


def _open_client(workers, scheduler, progress):
    """Enter :func:`pixgmm.io.dask_client`; a cluster that cannot start is a usage error."""
    from ..io.cluster import dask_client

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


def run_lazy(
    inputs, names, compute, opts, chunks, workers, scheduler, extra=None, rule=None, packed=None
):
    """Evaluate every input lazily and write ``{name: dask array}`` from ``compute`` as Zarr.

    ``rule`` (a :class:`~pixgmm.io.pixels.PixelRule`) turns each lazy page into
    the pixels ``compute`` takes. A multi-page TIFF gives one set of stores per
    page (``photo.page2.mask.zarr``), as in memory. A complete store is kept and
    reported as skipped unless ``--overwrite``; an unfinished one (an interrupted
    run) is written into. ``packed`` (``{name: dtype}``) names the maps stored as
    packed probabilities (:mod:`pixgmm.quantize`): their stores carry the CF
    attributes ``scale_factor``, ``add_offset`` and ``_FillValue``. Returns the exit status (0 or 1), with the same
    per-input reporting and JSON summary as the in-memory loop.
    """
    from .. import quantize
    from ..io.errors import OutputExists, ReadError
    from ..io.formats import check_supported, is_video, is_zarr
    from ..io.lazy import open_pages_lazy, parse_chunks
    from ..io.pixels import PixelRule, page_pixels
    from ..io.zarrstore import store_status, write_zarr_many
    from . import geo as _geo
    from .outputs import Where, page_label
    from .run import _Progress, process_inputs, summarize

    rule = rule or PixelRule()
    try:
        chunk_spec = parse_chunks(chunks)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--chunks") from None
    from .run import note_first_run

    found = _expand(inputs)
    if any(path is not None for _, path, _ in found):
        note_first_run(opts.kernels, opts.quiet or opts.json)
    show = _Progress(opts).enabled

    def check(path):
        if not is_zarr(path):
            check_supported(path)
        if is_video(path):
            raise ReadError("videos are not read lazily; drop --chunks/--workers/--scheduler")

    def done(t):
        return not opts.overwrite and store_status(t) == "complete"

    def handle(path, stem, result):
        single = [opts.out / f"{stem}.{n}.zarr" for n in names]
        if all(done(t) for t in single):
            result.skipped.extend(map(str, single))  # finished by an earlier run
            return
        geo = None if is_zarr(path) else _geo.probe(path, opts.quiet)  # a GeoTIFF, see .geo
        try:
            if geo is not None:
                pages = geo.lazy_pages(chunk_spec)
            else:
                pages = open_pages_lazy(path, chunk_spec, max_pixels=opts.max_pixels)
        except ReadError:
            raise
        except (ValueError, ImportError) as exc:  # ImportError: a codec to install, named
            raise ReadError(str(exc)) from None
        except (OSError, KeyError) as exc:
            raise ReadError(f"cannot open image lazily: {exc}") from None
        if len(pages) > 1:
            result.pages = len(pages)
        items = []
        for i, page in enumerate(pages):
            label = page_label(i, len(pages))
            targets = {n: opts.out / f"{stem}{label}.{n}.zarr" for n in names}
            todo = {}
            for n, t in targets.items():
                status = store_status(t)
                if done(t):
                    result.skipped.append(str(t))
                elif status == "foreign" and not opts.overwrite:
                    raise OutputExists(
                        f"{t} exists and was not written by pixgmm (pass --overwrite to replace "
                        "it, if it is a Zarr store)"
                    )
                else:
                    todo[n] = t
            if not todo:
                continue
            pixels, note, invalid = page_pixels(geo, i, page, rule)
            result.note(note)
            maps = compute(pixels, Where(None if geo is None else geo.pages[i]))
            if geo is not None:
                maps = geo.mark(maps, invalid, packed)  # nodata pixels marked, masks 0/1
            items += [
                (
                    maps[n],
                    t,
                    {
                        "pixgmm_source": str(path),
                        **quantize.cf_attributes((packed or {}).get(n, "float32")),
                        "pixgmm_map": n,
                        **(
                            geo.zarr_attrs(i, n, maps[n], (packed or {}).get(n))
                            if geo is not None
                            else {}
                        ),
                    },
                )
                for n, t in todo.items()
            ]
        # one pass: the maps share the image read and, for skin, the log ratio
        write_zarr_many(items, overwrite=opts.overwrite, zarr_format=opts.zarr_format)
        result.outputs.extend(str(t) for _, t, _ in items)

    with _open_client(workers, scheduler, show):
        results = process_inputs(found, opts, check, handle)
    return summarize(results, opts, extra)


# -- density's lazy computation -----------------------------------------


def density_maps(model, name, log_, channels):
    """``compute(lazy pixels) -> {name: lazy map}`` for ``pixgmm density``."""
    import dask.array as da
    import numpy as np

    from ..evaluate import log_density

    def compute(pixels, where=None):
        logp = log_density(pixels, model, channels=channels)
        return {name: (logp if log_ else da.exp(logp)).astype(np.float32)}

    return compute
