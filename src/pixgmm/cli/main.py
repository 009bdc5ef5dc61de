"""The ``pixgmm`` command group: every command registered in one place.

Each command lives in its own module of :mod:`pixgmm.cli` and imports only
click at module level, so ``pixgmm --help`` stays fast.
"""

from __future__ import annotations

import click

from .classify import classify
from .demo import demo
from .density import density
from .evaluate import evaluate
from .fit import fit
from .info import info
from .skin import skin


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="pixgmm", prog_name="pixgmm")
def main():
    """Evaluate Gaussian mixture colour models at every pixel of images and videos.

    Start with `pixgmm demo`: it finds skin in a bundled photo and writes a mask,
    a probability map, a heatmap and an overlay to ./pixgmm-demo.
    """


for _command in (skin, demo, density, info, fit, classify, evaluate):
    main.add_command(_command)
