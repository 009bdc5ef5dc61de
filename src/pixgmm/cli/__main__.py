"""``python -m pixgmm.cli``: the same as the ``pixgmm`` command."""

from .main import run

run()
