"""``python -m pixgmm``: the same as the ``pixgmm`` command."""

from .cli.main import main

main(prog_name="pixgmm")
