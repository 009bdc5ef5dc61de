"""``python -m pixgmm``: the same as the ``pixgmm`` command."""

from .cli.main import run

run()
