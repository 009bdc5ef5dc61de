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
    "processed chunk by chunk with Dask; every output is a Zarr store (photo.mask.zarr)."
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
    from . import io as _io

    found = []
    for arg in args:
        if _is_zarr(arg):
            found.append((arg, Path(arg), None))
        else:
            found.extend(_io.expand_inputs([arg]))
    return found


def lazy_colour(image, n_features, to_8bit):
    """The lazy pixels a colour model sees (alpha dropped, 16-bit optionally scaled)."""
    import numpy as np

    if image.ndim == 3 and image.shape[-1] == n_features + 1 and n_features in (1, 3):
        image = image[..., :n_features]
    if image.ndim == 2 and n_features == 1:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] != n_features:
        raise ValueError(
            f"got an image of shape {image.shape} but the model needs {n_features} channel(s)"
        )
    if to_8bit and image.dtype.kind in "ui" and image.dtype.itemsize > 1:
        info = np.iinfo(image.dtype)
        scale = np.float32(255.0 / (info.max - info.min))
        image = (image.astype(np.float32) - np.float32(info.min)) * scale
    return image


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


def run_lazy(inputs, names, compute, opts, chunks, workers, scheduler, extra=None):
    """Evaluate every input lazily and write ``{name: dask array}`` from ``compute`` as Zarr.

    Returns the exit status (0 or 1), with the same per-input reporting and
    JSON summary as the in-memory loop.
    """
    from ..bigimage import is_complete, open_image_lazy, parse_chunks, write_zarr_many
    from . import io as _io
    from .run import _Progress, process_inputs, summarize

    try:
        chunk_spec = parse_chunks(chunks)
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--chunks") from None
    found = _expand(inputs)
    show = _Progress(opts).enabled

    def check(path):
        if not _is_zarr(path):
            _io.check_supported(path)
        if _io.is_video(path):
            raise _io.InputError(
                "videos are not read lazily; drop --chunks/--workers/--scheduler"
            )

    def handle(path, stem, result):
        targets = {n: opts.out / f"{stem}.{n}.zarr" for n in names}
        for t in targets.values():
            if not opts.overwrite and t.exists() and (is_complete(t) or not t.is_dir()):
                raise _io.OutputExists(f"{t} exists (pass --overwrite to replace it)")
        try:
            image = open_image_lazy(path, chunk_spec)
        except (OSError, ValueError, KeyError) as exc:
            raise _io.InputError(f"cannot open image lazily: {exc}") from None
        maps = compute(image)
        # one pass: the maps share the image read and, for skin, the log ratio
        write_zarr_many(
            [
                (maps[n], t, {"pixgmm_source": str(path), "pixgmm_map": n})
                for n, t in targets.items()
            ],
            overwrite=opts.overwrite,
        )
        result.outputs.extend(str(t) for t in targets.values())

    with _open_client(workers, scheduler, show):
        results = process_inputs(found, opts, check, handle)
    return summarize(results, opts, extra)


# -- the two commands' lazy computations -----------------------------------------


def skin_maps(detector, save, log_t):
    """``compute(lazy image) -> {output: lazy map}`` for ``pixgmm skin``."""
    import dask.array as da
    import numpy as np

    from ..skin import _posterior_copy
    from . import render as _render

    odds = float(detector.log_prior_odds)  # only this float travels with each task

    def posterior(lr):
        return _posterior_copy(lr.astype(np.float64), odds).astype(np.float32)

    def heat(p):
        return _render.heatmap(p, 0.0, 1.0)

    def tint(image, mask):
        return _render.overlay(_render.to_display(image), mask[..., 0])

    def compute(image):
        rgb = lazy_colour(image, 3, to_8bit=True)
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
                picture = image if image.ndim == 3 else image[..., None]
                maps["overlay"] = da.map_blocks(
                    tint,
                    picture,
                    mask[..., None],
                    dtype=np.uint8,
                    chunks=(*mask.chunks, (3,)),
                )
        return {k: v for k, v in maps.items() if k in save}

    return compute


def density_maps(model, name, log_, to_8bit, channels):
    """``compute(lazy image) -> {name: lazy map}`` for ``pixgmm density``."""
    import dask.array as da
    import numpy as np

    from ..evaluate import log_density

    def compute(image):
        pixels = lazy_colour(image, model.n_features, to_8bit)
        logp = log_density(pixels, model, channels=channels)
        return {name: (logp if log_ else da.exp(logp)).astype(np.float32)}

    return compute
