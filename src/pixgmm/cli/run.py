"""The loop every per-image command shares: inputs in, named outputs out, one summary line each.

A command describes its outputs as :class:`Output` kinds, gives a
:class:`~pixgmm.io.pixels.PixelRule` (the one place where a page as read
becomes the pixels a model sees) and a ``compute(pixels) -> {kind: array}``
function; :func:`run` does the rest: expand the inputs, read each image (every
page of a multi-page file) or each video frame, write atomically, time it, catch
and report failures per input, show a progress bar on a terminal, and print a
text or JSON summary. It returns the exit status (0 or 1).

Rerunning a command finishes the job: an output that exists is kept and reported
as skipped (unless ``--overwrite``), the missing ones are written, and an input
all of whose outputs exist is not even read. So after an interrupted run (even
``kill -9``), the same command completes it and exits 0.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..io import errors as _errors
from ..io import formats as _formats
from ..io import paths as _paths
from ..io import read as _read
from ..io import write as _writers
from . import inputs as _inputs
from .outputs import (
    PNG_TEXT,
    Where,
    image_targets,
    packed,
    stream_kind,
    suffix,
    to_write,
)


@dataclass
class Result:
    input: str
    status: str = "ok"
    seconds: float = 0.0
    outputs: list = field(default_factory=list)
    error: str | None = None
    pages: int | None = None
    frames: int | None = None
    skipped: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def note(self, text):
        if text is not None and text not in self.notes:
            self.notes.append(text)

    def as_dict(self):
        d = {
            "input": self.input,
            "status": self.status,
            "seconds": round(self.seconds, 4),
            "outputs": self.outputs,
        }
        if self.skipped:
            d["skipped"] = self.skipped
        if self.notes:
            d["scale"] = "; ".join(self.notes)
        if self.error is not None:
            d["error"] = self.error
        if self.pages is not None:
            d["pages"] = self.pages
        if self.frames is not None:
            d["frames"] = self.frames
        return d


@dataclass
class Options:
    out: Path
    overwrite: bool = False
    quiet: bool = False
    json: bool = False
    float_format: str = "tiff"
    max_pixels: int | None = None
    lazy: bool = False  # the command has --chunks (its pixel-limit refusals advise it)
    zarr_format: int = 3  # of the stores written with --chunks
    cog: bool = False  # GeoTIFF outputs as Cloud Optimized GeoTIFFs
    kernels: str = "evaluate"  # the kernels the command runs (for the first-run note)


class _Progress:
    """tqdm bars on stderr when it is a terminal and not ``--quiet``; no-ops otherwise."""

    def __init__(self, opts):
        self.enabled = not opts.quiet and sys.stderr.isatty()

    def bar(self, total=None, desc=None, unit="file", leave=True, position=0):
        if not self.enabled:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, position=position)


def _process_image(path, stem, outputs, compute, rule, opts, result):
    from ..io.pixels import page_pixels
    from . import geo as _geo
    from . import stream as _stream

    geo = _geo.probe(path, opts.quiet)  # a georeferenced TIFF (rasterio installed), else None
    single = image_targets(stem, 1, outputs, opts, geo)[0]
    if not opts.overwrite and all(_paths.exists(t) for t in single):
        result.skipped.extend(map(str, single))  # done by an earlier run: not even read
        return
    if geo is not None and _stream.can_stream(outputs):  # window by window, any size
        _stream.process(path, stem, outputs, compute, rule, opts, result, geo)
        return
    pages = _read.read_pages(path, opts.max_pixels)
    if len(pages) > 1:
        result.pages = len(pages)
    for index, (page, targets) in enumerate(
        zip(pages, image_targets(stem, len(pages), outputs, opts, geo))
    ):
        todo = set(to_write(targets, opts, result))
        if not todo:
            continue
        pixels, note, invalid = page_pixels(geo, index, page, rule)
        result.note(note)
        maps = compute(pixels, Where(None if geo is None else geo.pages[index]))
        if geo is not None:
            maps = geo.mark(maps, invalid, packed(outputs))  # nodata marked, masks 0/1
        for o, target in zip(outputs, targets):
            if target not in todo:
                continue
            if geo is not None and _geo.writes(target):
                geo.write(
                    index,
                    target,
                    maps[o.map_key],
                    opts.overwrite,
                    packing=o.packing,
                    cog=opts.cog,
                    **(o.geotiff or {}),
                )
            elif o.form == "picture":
                text = maps.get(PNG_TEXT, {}).get(o.map_key)
                _writers.write_png(target, maps[o.map_key], opts.overwrite, text=text)
            else:
                _writers.write_float(target, maps[o.map_key], opts.overwrite, packing=o.packing)
            result.outputs.append(str(target))


def _process_video(path, stem, outputs, compute, rule, opts, result, progress):
    import contextlib

    if packed(outputs):
        raise _errors.ReadError(
            "a video's float maps are float32 TIFF stacks; leave out --probability-dtype"
        )
    # one stream per file name: a float map asked for as .tiff and .npy is one TIFF for a video
    outputs = list({(o.name, suffix(o, opts, True)): o for o in outputs}.values())
    targets = {o.map_key: opts.out / f"{stem}.{o.name}{suffix(o, opts, True)}" for o in outputs}
    todo = set(to_write(list(targets.values()), opts, result))
    outputs = [o for o in outputs if targets[o.map_key] in todo]
    if not outputs:
        return
    fps, frames = _read.video_frames(path, opts.max_pixels)
    bar = progress.bar(desc=path.name, unit="frame", leave=False, position=1)
    n = 0
    with contextlib.ExitStack() as stack:
        writers = {
            o.map_key: stack.enter_context(
                _writers.StreamWriter(targets[o.map_key], stream_kind(o), opts.overwrite, fps=fps)
            )
            for o in outputs
        }
        for frame in frames:
            pixels, note = rule(frame)
            result.note(note)
            maps = compute(pixels)
            for name, w in writers.items():
                w.append(maps[name])
            n += 1
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()
        if n == 0:
            raise _errors.ReadError("video has no frames")
    result.frames = n
    result.outputs.extend(str(targets[o.map_key]) for o in outputs)


def reason(exc, path=None, lazy=False, out=None):
    """The message for a failed input: the OS's reason and the file it concerns, no traceback.

    An image over the pixel limit is refused with the way out this command offers
    (``lazy``: it has ``--chunks``). When the input or the output folder ``out`` is
    a URL, an object store's error (e.g. raised in a Dask task) is given in one line.
    """
    if isinstance(exc, _errors.PixelLimitError) and path is not None:
        return str(exc.with_way_out(_inputs.way_out(path, lazy)))
    if isinstance(exc, (_errors.ReadError, _errors.OutputExists, _errors.OutputError)):
        return str(exc)
    url = next((p for p in (path, out) if p is not None and _paths.is_url(p)), None)
    if url is not None:  # an object store's refusal from a Dask task, in one line
        from ..io.remote import describe

        why = describe(exc, url)
        if why is not None:
            return why
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc)
        where = exc.filename
        if where is not None and _inputs.is_temporary(where):
            where = None  # never name a hidden temporary file
        return f"{what}" + (f" ({where})" if where else "")
    if isinstance(exc, (ValueError, TypeError, ImportError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def note_first_run(kind, quiet):
    """Say once, on a terminal, that the wait is numba compiling the kernels for this machine.

    ``kind`` is the work about to run (:data:`pixgmm._engine.cachestate.KERNELS`);
    nothing is printed when stderr is not a terminal, with ``--quiet`` or
    ``--json``, or once the kernels are in numba's disk cache.
    """
    if quiet or not sys.stderr.isatty():
        return
    from .._engine.cachestate import first_run

    if first_run(kind):
        print(
            "pixgmm: first run on this machine: compiling its kernels (tens of seconds, "
            "once; later runs load them from the cache)",
            file=sys.stderr,
        )


def process_inputs(found, opts, check, handle, bar=None):
    """Call ``handle(path, stem, result)`` for each found input; return the results.

    The checks come first: an input that could not be found, an output folder
    that cannot be made, the command's own ``check(path)`` (an unsupported
    file), then two inputs whose outputs would have the same names. Any
    exception from ``check`` or ``handle`` marks that input failed, with its
    reason, and the next input is processed; each result is reported as it ends.
    """
    results = []
    seen = {}
    out_error = _output_folder(opts.out)
    for arg, path, problem in found:
        result = Result(input=str(path) if path is not None else arg)
        start = time.perf_counter()
        try:
            if problem is not None:
                raise _inputs.InputError(problem)
            if out_error is not None:
                raise _inputs.InputError(out_error)
            check(path)
            stem = path.name.rsplit(".", 1)[0] if "." in path.name else path.name
            if stem in seen:
                raise _inputs.InputError(
                    f"its outputs would have the same names as those of {seen[stem]} "
                    f"({stem}.*); rename one of them or run them with different --out"
                )
            seen[stem] = str(path)
            handle(path, stem, result)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            result.status = "failed"
            result.error = reason(exc, path, opts.lazy, opts.out)
        result.seconds = time.perf_counter() - start
        results.append(result)
        report(result, opts, bar)
        if bar is not None:
            bar.update(1)
    return results


def _output_folder(out):
    """Make the output folder; the reason it cannot be used, or None.

    A local folder that cannot be made fails each input (exit status 1). An
    output URL whose bucket is missing or refuses these credentials, or without
    the package for it, is a usage error (exit status 2) before any input is read.
    """
    try:
        _paths.make_folder(out)
    except (_errors.OutputError, ImportError) as exc:
        if _paths.is_url(out):
            import click

            raise click.BadParameter(str(exc), param_hint="--out") from None
        return str(exc)
    return None


def run(inputs, outputs, compute, opts, rule, extra=None):
    """Process every input; print the summary; return 0 if all succeeded, else 1.

    ``rule`` (a :class:`~pixgmm.io.pixels.PixelRule`) turns each page or frame
    into the pixels ``compute`` takes. ``extra`` (a dict) is added to the JSON summary.
    """
    found = _inputs.expand_inputs(inputs)
    if any(path is not None for _, path, _ in found):
        note_first_run(opts.kernels, opts.quiet or opts.json)
    progress = _Progress(opts)
    bar = progress.bar(total=len(found), unit="file")

    def handle(path, stem, result):
        if _formats.is_video(path):
            _process_video(path, stem, outputs, compute, rule, opts, result, progress)
        else:
            _process_image(path, stem, outputs, compute, rule, opts, result)

    results = process_inputs(found, opts, _formats.check_supported, handle, bar)
    if bar is not None:
        bar.close()
    return summarize(results, opts, extra)


def summarize(results, opts, extra=None):
    """Print the JSON summary (``--json``) or the failure count; return the exit status."""
    for r in results:
        if r.status == "ok" and r.skipped and not r.outputs:
            r.status = "skipped"  # every output existed: kept, nothing written
    failed = sum(r.status == "failed" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    if opts.json:
        summary = {
            **(extra or {}),
            "ok": len(results) - failed - skipped,
            "skipped": skipped,
            "failed": failed,
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(summary, indent=1))
    elif failed and not opts.quiet:
        print(f"pixgmm: {failed} of {len(results)} input(s) failed", file=sys.stderr)
    return 1 if failed else 0


def _write_line(text, bar, err=False):
    stream = sys.stderr if err else sys.stdout
    if bar is not None:
        bar.write(text, file=stream)
    else:
        print(text, file=stream)


def report(result, opts, bar):
    if result.status == "failed":
        _write_line(f"pixgmm: error: {result.input}: {result.error}", bar, err=True)
    elif not opts.quiet and not opts.json:
        notes = "".join(f"; {n}" for n in result.notes)
        if result.outputs:
            outs = ", ".join(result.outputs)
            _write_line(f"{result.input} -> {outs} ({result.seconds:.2f} s{notes})", bar)
        if result.skipped:
            kept = ", ".join(result.skipped)
            _write_line(
                f"{result.input}: kept existing {kept} (skipped; --overwrite replaces)", bar
            )
