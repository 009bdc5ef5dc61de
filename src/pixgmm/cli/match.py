"""Matching images to models on the command line: which bands (``--bands``), on which scale.

No silent wrong map: ``classify`` and ``density`` read an image's bands the way
the models were fitted, and refuse what they cannot match.

**Bands.** A model names its channels (``"RGB"``, or the band descriptions of
the GeoTIFF it was fitted on: ``B2, B3, B4, B8``). Where a GeoTIFF's bands are
described and the models name their channels, the bands are matched by name,
in the models' order, whatever their order in the file; names that differ are
refused with both lists. ``--bands`` selects (and orders) the bands to read, by
number (1-based) or by name, so a model can use some of a scene's bands. Where
either side has no names the bands are read in the file's order, as before.

**Value scale.** A model file records the scale of the pixels it was fitted on
(``training.scale``, version 3: ``raw``, ``0..255``, ``0..1``; written by
``pixgmm fit`` and by ``pixgmm.fit(..., scale=)``). ``--scale auto`` follows
the models: raw-value models get every image's values as read, 0..255 models
the 0..255 reading of :mod:`pixgmm.io.pixels`, 0..1 models that divided by
255. Models that record different scales, or a ``--scale`` that contradicts
theirs (``none`` for 0..255 or 0..1 models, ``unit`` for raw or 0..1 models),
are a usage error.

Models that record no scale (files written before it was recorded, mixtures
fitted through the Python API without ``scale=``) follow the models that do.
Where none does, ``--scale auto`` takes a histogram model, or a mixture of
exactly 3 channels, to be a colour model on the 0..255 scale (what ``pixgmm
fit`` wrote from images, and the Jones & Rehg models); any other mixture's
scale is unknown: 8-bit images are read as they are (raw and 0..255 agree
there) and any other image is refused, with a message saying to pass
``--scale none`` (raw values) or ``--scale unit``. An explicit ``--scale`` is
always taken for models without a record (it is their only record).
"""

from __future__ import annotations

from pathlib import Path

import click

from .options import UsageLine

BANDS_HELP = (
    "The image bands the models read, in the models' channel order: 1-based numbers "
    "or band names (GeoTIFF band descriptions), comma-separated, e.g. 4,3,2 or "
    "B4,B3,B2; lets a model use some of a scene's bands. Default: every band; where "
    "the bands and the models' channels both have names they are matched by name, "
    "and names that differ are refused."
)


def parse_bands(ctx, param, value):
    """``--bands`` as a tuple of 1-based numbers (int) and names (str), or None."""
    if value is None:
        return None
    items = [v.strip() for v in str(value).split(",")]
    if not items or not all(items):
        raise click.BadParameter(
            f"{value!r} is not a list of bands; give numbers or names separated by commas, "
            "e.g. 4,3,2 or B4,B3,B2",
            ctx=ctx,
            param=param,
        )
    out = []
    for item in items:
        if item.isdigit():
            if int(item) < 1:
                raise click.BadParameter(
                    f"band {item}: bands are numbered from 1", ctx=ctx, param=param
                )
            out.append(int(item))
        else:
            out.append(item)
    return tuple(out)


def channel_names(model):
    """The model's channel names as a tuple of upper-case strings, or None."""
    names = getattr(model, "channels", None)
    if names is None:
        return None
    return tuple(
        str(n).strip().upper() for n in (tuple(names) if isinstance(names, str) else names)
    )


def recorded_scale(model):
    """The value scale recorded in ``model``'s training record, or None."""
    training = getattr(model, "training", None)
    if isinstance(training, dict) and training.get("scale"):
        return training["scale"]
    return None


def model_scale(model):
    """The value scale ``model`` was fitted on: its record, else the rule for old files.

    ``"raw"``, ``"0..255"`` or ``"0..1"`` from the model's training record; for
    a model without one, ``"0..255"`` for a histogram model or a 3-channel
    mixture and None (unknown) for any other.
    """
    recorded = recorded_scale(model)
    if recorded is not None:
        return recorded
    if type(model).__name__ == "HistogramModel" or model.n_features == 3:
        return "0..255"
    return None


def _files(specs, labels):
    return ", ".join(f"{label}={specs[label]}" for label in labels)


def models_scale(models, specs, scale):
    """The scale every model expects (None: unknown), checked against ``--scale``.

    ``models`` and ``specs`` map each class (or the one model) to its model and
    to what the user gave for it (a file name). The scales the models record
    decide; the rule for models without a record (:func:`model_scale`) fills
    in only where none records one, and an explicit ``--scale`` overrides it.
    Raises :class:`~pixgmm.cli.options.UsageLine` (one line, exit status 2)
    when models record different scales or ``scale`` contradicts a recorded one.
    """
    recorded = {label: recorded_scale(model) for label, model in models.items()}
    known = sorted({s for s in recorded.values() if s is not None})
    if len(known) > 1:
        groups = "; ".join(
            f"{s}: {_files(specs, [lab for lab, v in recorded.items() if v == s])}" for s in known
        )
        raise UsageLine(
            f"the models were fitted on different value scales ({groups}); fit them all on "
            "one scale (pixgmm fit --scale)"
        )
    if known:
        expected = known[0]
    else:  # no record: the rule for old files, where every model agrees
        assumed = {model_scale(model) for model in models.values()}
        expected = assumed.pop() if len(assumed) == 1 else None
    clash = {"none": ("0..255", "0..1"), "unit": ("raw", "0..1")}.get(scale, ())
    if known and expected in clash:
        said = {"none": "reads values as they are", "unit": "scales pixels to 0..255"}[scale]
        which = _files(specs, [lab for lab, v in recorded.items() if v == expected])
        raise UsageLine(
            f"--scale {scale} {said}, but the models were fitted on the {expected} scale "
            f"({which}); leave --scale out: auto follows the models"
        )
    return expected


def pixel_rule(models, specs, scale, bands):
    """The :class:`~pixgmm.io.pixels.PixelRule` of a command applying ``models``.

    ``scale`` is ``--scale`` (already checked against ``--to-8bit``), ``bands``
    the parsed ``--bands``. Every model must have the same number of channels.
    """
    from ..io.pixels import BandMatch, PixelRule

    first = next(iter(models.values()))
    expected = models_scale(models, specs, scale)
    names = channel_names(first)
    if bands is not None and len(bands) != first.n_features:
        raise click.BadParameter(
            f"selects {len(bands)} band(s) but the models have {first.n_features} channel(s)"
            + (f" ({', '.join(names)})" if names else ""),
            param_hint="--bands",
        )
    return PixelRule(
        first.n_features, scale, models=expected, bands=BandMatch(bands, names, "--bands")
    )


def compute_channels(models):
    """The ``channels`` to pass with pixels made by :func:`pixel_rule`: the first model's names.

    The rule puts the bands in the first model's channel order (by name where
    it can), so the other models are matched to it by name, as in the API.
    """
    names = channel_names(next(iter(models.values())))
    return None if names is None else list(names)


def is_file(spec):
    return Path(spec).suffix.lower() == ".json"
