"""The values a label map of ``pixgmm classify`` holds, and its legend.

**Class values.** Where every class label given with ``--model LABEL=MODEL`` is
a whole number written the usual way (``0``, ``1``, ``12``: digits only, no
sign, no leading zero, no spaces; what ``pixgmm fit --training`` names its
models after an integer class field), the label map holds those numbers
(``-m 1=forest.json -m 5=water.json``: forest pixels are 1, water pixels 5), so
it can be compared with the training or reference data directly (``pixgmm
accuracy``, GRASS ``r.kappa``, QGIS). Otherwise (``-m water=...``), or with
``--label-values index``, it holds each class's index in ``--model`` order
(0, 1, ...), as before.

**Reserved values.** Pixels no class can claim (NaN or nodata pixels, zero
density under every model) get the map's largest value, which is also the
GeoTIFF's nodata value; pixels rejected by ``--min-probability`` or
``--chi2-level`` get ``--reject-label`` (default: one below it). The map is
uint8 (unclassified 255, rejected 254) while every class value is at most 253,
else uint16 (unclassified 65535, rejected 65534; class values up to 65533). No
class value can be a reserved value: the dtype is chosen so, and a
``--reject-label`` equal to a class value, or beyond the map's dtype, is
refused (it may equal the unclassified value, merging the two).

**Legend.** The GeoTIFF label map of a georeferenced input carries a colour
table (each class in the colour of the colour picture, rejected pixels white,
unclassified transparent) and the class names as band 1's ``categories`` (a
name per value, comma-separated, index = value); the ``--json`` summary lists
every class with its value, index, label and colour.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import click

#: A class label that is a whole number as one writes it: "0", "7", "12" (not "07", "+7", "-1").
_INTEGER = re.compile(r"(0|[1-9][0-9]*)")
#: The label-map value modes of ``--label-values``.
LABEL_VALUES = ("auto", "index")


def integer_label(label):
    """The label as an int when it is a whole number written the usual way, else None.

    >>> integer_label("12"), integer_label("012"), integer_label("forest"), integer_label(5)
    (12, None, None, 5)
    """
    if isinstance(label, bool):
        return None
    if isinstance(label, int):
        return label if label >= 0 else None
    text = str(label)
    return int(text) if _INTEGER.fullmatch(text) else None


@dataclass(frozen=True)
class Legend:
    """The label map's values: one per class (in ``--model`` order) and the reserved ones."""

    labels: tuple
    values: tuple
    dtype: str
    unclassified: int
    rejected: int | None
    by_value: bool  # True: the class values; False: the indices

    @property
    def lookup(self):
        """Index -> value: the classes, then unclassified, then rejected (``reject = k + 1``)."""
        import numpy as np

        reserved = [
            self.unclassified,
            self.unclassified if self.rejected is None else self.rejected,
        ]
        return np.array([*self.values, *reserved], dtype=self.dtype)

    def entries(self, palette):
        """The ``--json`` summary's classes: value, index, label and colour of each."""
        return [
            {"value": v, "index": i, "label": lab, "colour": _hex(palette[i % len(palette)])}
            for i, (lab, v) in enumerate(zip(self.labels, self.values))
        ]

    def geotiff(self, palette, unclassified_colour, rejected_colour):
        """The GeoTIFF extras of the label map: its colour table and category names."""
        colormap = {
            int(v): (*map(int, palette[i % len(palette)]), 255) for i, v in enumerate(self.values)
        }
        colormap[self.unclassified] = (*unclassified_colour, 0)
        if self.rejected is not None:
            colormap[self.rejected] = (*rejected_colour, 255)
        top = max(self.values)
        if self.dtype == "uint8":
            top = self.unclassified
        elif self.rejected is not None and self.rejected <= top + 1:
            top = max(top, self.rejected)
        names = [""] * (top + 1)
        for lab, v in zip(self.labels, self.values):
            names[v] = str(lab).replace(",", ";")
        if self.rejected is not None and self.rejected <= top:
            names[self.rejected] = "rejected"
        if self.unclassified <= top:
            names[self.unclassified] = "unclassified"
        return {"colormap": colormap, "categories": names}


def _hex(rgb):
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def make_legend(labels, mode, reject_label, rejecting):
    """The :class:`Legend` of classes ``labels`` (``--model`` order); usage errors name the option.

    ``mode`` is ``--label-values``; ``reject_label`` the ``--reject-label`` (None:
    the default); ``rejecting`` whether a reject option is given.
    """
    labels = tuple(labels)
    numbers = [integer_label(lab) for lab in labels]
    by_value = mode == "auto" and all(n is not None for n in numbers)
    values = tuple(numbers) if by_value else tuple(range(len(labels)))
    if len(set(values)) != len(values):
        raise click.UsageError(
            f"two classes have the same value: {', '.join(map(str, labels))}; give each "
            "class its own label"
        )
    top = max(values)
    if top > 65533:
        raise click.BadParameter(
            f"class value {top} does not fit in a 16-bit label map (at most 65533; 65534 and "
            "65535 are reserved); relabel the classes or pass --label-values index",
            param_hint="--model",
        )
    small = top <= 253
    dtype = "uint8" if small else "uint16"
    unclassified = 255 if small else 65535
    rejected = None
    if rejecting:
        rejected = unclassified - 1 if reject_label is None else reject_label
        if rejected > unclassified:
            raise click.BadParameter(
                f"{rejected} does not fit in the {dtype} label map of these classes; choose a "
                f"value up to {unclassified} that is not a class value",
                param_hint="--reject-label",
            )
        if rejected in values:
            label = labels[values.index(rejected)]
            what = "value" if by_value else "index"
            free = next(v for v in range(unclassified - 1, -1, -1) if v not in values)
            raise click.BadParameter(
                f"{rejected} is the {what} of class {label!r} in the label map; choose a "
                f"value that is not a class {what}, e.g. {free} (default {unclassified - 1}; "
                f"{unclassified} is also the value of pixels no class applies to)",
                param_hint="--reject-label",
            )
    return Legend(labels, values, dtype, unclassified, rejected, by_value)
