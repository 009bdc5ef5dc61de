"""GeoTIFF inputs on the command line, streamed window by window (:mod:`pixgmm.io.windows`).

A georeferenced input (rasterio installed) is read in windows of the file's
blocks while the command's computation runs, and its GeoTIFF outputs (float
maps, masks, label maps) are written window by window behind it, so memory
holds a few windows whatever the scene's size and the pixel limit does not
apply. Outputs that are not GeoTIFFs (PNG pictures, ``.npy`` maps) are
assembled in memory as the windows pass, so for them the image must be within
the pixel limit; an output whose colour scale comes from the whole map (the
density heatmap) needs the whole image and is not streamed (:attr:`Output.whole`).

Every window goes through the same steps as a whole page read into memory:
nodata set aside (:meth:`pixgmm.io.geotiff.Georef.prepare`), the ``--scale``
rule decided once for the image (:meth:`pixgmm.io.pixels.PixelRule.fixed`; a float
image under ``--scale auto`` is read once more for its range), the command's
``compute``, nodata marked in the maps (:meth:`~pixgmm.io.geotiff.Georef.mark`).
"""

from __future__ import annotations


def can_stream(outputs):
    """True when every output can be written window by window (or assembled from windows)."""
    return not any(o.whole for o in outputs)


def process(path, stem, outputs, compute, rule, opts, result, geo, bar=None):
    """Stream every page of the georeferenced input ``path``; record outputs in ``result``."""
    from . import geo as _geo
    from .outputs import PNG_TEXT, image_targets, packed, to_write

    if len(geo.pages) > 1:
        result.pages = len(geo.pages)
    all_targets = image_targets(stem, len(geo.pages), outputs, opts, geo)
    for index, targets in enumerate(all_targets):
        todo = set(to_write(targets, opts, result))
        if not todo:
            continue
        chosen = [(o, t) for o, t in zip(outputs, targets) if t in todo]
        streamed = {o.map_key: (o, t) for o, t in chosen if _geo.writes(t)}
        held = [(o, t) for o, t in chosen if not _geo.writes(t)]
        texts = {}
        held_maps = _page(geo, index, compute, rule, opts, result, streamed, held, texts,
                          packed(outputs), bar)  # fmt: skip
        for o, target in held:
            if o.form == "picture":
                from ..io.write import write_png

                text = texts.get(PNG_TEXT, {}).get(o.map_key)
                write_png(target, held_maps[o.map_key], opts.overwrite, text=text)
            else:
                from ..io.write import write_float

                write_float(target, held_maps[o.map_key], opts.overwrite, packing=o.packing)
        result.outputs.extend(str(t) for _, t in chosen)


def _check_held(page, held, max_pixels):
    """Raise ReadError when outputs assembled in memory would exceed the pixel limit."""
    from ..io.errors import ReadError
    from ..io.limits import pixel_limit

    if not held:
        return
    limit = pixel_limit(max_pixels)
    n = page.width * page.height
    if limit is not None and n > limit:
        names = ", ".join(str(t.name) for _, t in held)
        raise ReadError(
            f"{names} need the whole {page.width} x {page.height} image in memory ({n:,} "
            f"pixels, over the limit of {limit:,}); leave them out of --save (the GeoTIFF "
            "outputs are written window by window) or raise the limit with --max-pixels N"
        )


def _page(geo, index, compute, rule, opts, result, streamed, held, texts, packing, bar):
    """Stream page ``index``: GeoTIFF outputs written window by window, the rest held."""
    import numpy as np

    from ..io import windows as _windows
    from ..io.paths import is_url as _is_url
    from ..io.windows import OutputSpec, WindowReader, plan_windows, stream
    from .outputs import PNG_TEXT, Where

    page = geo.pages[index]
    _check_held(page, held, opts.max_pixels)
    # the bands the models read, in their order (--bands, band names): only those are read
    indices, selected = rule.select(page.count, page.descriptions, page.alpha)
    bands = None if indices is None else [i + 1 for i in indices]
    alpha = page.alpha if bands is None else False
    itemsize = np.dtype(page.dtype).itemsize
    n_bands = page.count if bands is None else len(bands)
    plan = plan_windows(
        page.height, page.width, page.block, n_bands * itemsize, _windows.WINDOW_BYTES
    )
    buffers = {}

    with WindowReader(page.source, url=geo.path if _is_url(geo.path) else None) as reader:
        fixed = rule.fixed(
            np.dtype(page.dtype),
            lambda: _value_range(reader, plan, geo, index, rule, bands, alpha),
        )
        result.note(selected)
        result.note(fixed.note)

        def compute_window(window, array):
            prepared, invalid = geo.prepare(index, array)
            pixels, _ = fixed(prepared, alpha)
            maps = compute(pixels, Where(page, window))
            maps = geo.mark(maps, invalid, packing)
            if PNG_TEXT in maps:
                texts[PNG_TEXT] = maps[PNG_TEXT]
            for o, _ in held:
                arr = maps[o.map_key]
                if o.map_key not in buffers:
                    buffers[o.map_key] = np.empty(
                        (page.height, page.width, *arr.shape[2:]), arr.dtype
                    )
                buffers[o.map_key][window.slices] = arr
            return maps

        outputs = {
            key: OutputSpec(target, packing=o.packing, cog=opts.cog, **(o.geotiff or {}))
            for key, (o, target) in streamed.items()
        }
        progress = None if bar is None else bar.update
        stream(reader, plan, compute_window, outputs, page, overwrite=opts.overwrite,
               bands=bands, progress=progress)  # fmt: skip
    return buffers


def _value_range(reader, plan, geo, index, rule, bands, alpha):
    """``(min, max)`` of a float page's valid values in the model's channels; one more read."""
    import numpy as np

    lo, hi = np.inf, -np.inf
    for _, array in reader.windows(plan, bands):
        prepared, _ = geo.prepare(index, array)
        values = rule.channels(prepared, alpha)
        if np.isnan(values).all():
            continue
        lo, hi = min(lo, float(np.nanmin(values))), max(hi, float(np.nanmax(values)))
    return (None, None) if lo > hi else (lo, hi)
