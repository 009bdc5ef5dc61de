"""The ``pixgmm`` command group: every command registered in one place.

Each command lives in its own module of :mod:`pixgmm.cli` and imports only
click at module level, so ``pixgmm --help`` stays fast.
"""

from __future__ import annotations

import gc

import click

from .accuracy import accuracy
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

    Rerunning a command after an interruption finishes it: outputs that exist
    are kept (reported as skipped) and the missing ones written; --overwrite
    replaces them.
    """
    _exit_cleanly_on_sigterm()


def _exit_cleanly_on_sigterm():
    """SIGTERM (``kill``) raises SystemExit, so temporary files are removed on the way out."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def handler(signum, frame):
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, handler)


for _command in (skin, demo, density, info, fit, classify, evaluate, accuracy):
    main.add_command(_command)


def run():
    """The ``pixgmm`` program (its console script, ``python -m pixgmm``): :func:`main`, exiting fast.

    Before the interpreter exits, the objects still alive (numba's typing and lowering
    registries above all) move to the garbage collector's permanent generation
    (:func:`gc.freeze`), so its last collection does not walk them one by one: about
    0.2 s of every command's wall time on a 2-core machine. Outputs are closed and
    renamed by then, and ``atexit`` handlers still run. :func:`main` itself, as the
    tests call it in process, keeps the collector as it is.
    """
    try:
        main(prog_name="pixgmm")
    finally:
        gc.freeze()
