"""The command line run in process (click's CliRunner), as the CLI tests run it.

click is imported on the first call, so collecting this module needs no optional extra; the
test files that call :func:`invoke` skip without click first.
"""

from __future__ import annotations

import os


def invoke(*args, cwd, env=None):
    """Run ``pixgmm ARGS`` in process with ``cwd`` as the working folder; exceptions propagate."""
    from click.testing import CliRunner

    from pixgmm.cli import main

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)
    finally:
        os.chdir(old)
