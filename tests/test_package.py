"""The package face: every public name resolves, and importing pixgmm stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pixgmm


def test_all_lists_exactly_the_lazily_loaded_names():
    assert sorted(pixgmm.__all__) == sorted(["__version__", *pixgmm._LAZY])


@pytest.mark.parametrize("name", pixgmm.__all__)
def test_every_public_name_resolves(name):
    assert getattr(pixgmm, name) is not None
    assert name in dir(pixgmm)


def test_public_functions_are_the_functions_not_submodules():
    # ``pixgmm.fit`` must stay the function even after its module was imported by name.
    import pixgmm.fitting

    assert callable(pixgmm.fit) and pixgmm.fit is pixgmm.fitting.fit
    assert pixgmm.models.jones_rehg_skin().n_components == 16


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Mixtures'"):
        pixgmm.Mixtures  # noqa: B018


def test_import_loads_neither_numba_nor_the_command_line_libraries():
    code = (
        "import sys, pixgmm, pixgmm.cli\n"
        "heavy = [m for m in ('numba', 'dask', 'sklearn', 'imageio', 'tifffile', 'matplotlib')"
        " if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_the_command_group_imports_only_click():
    # `pixgmm --help` stays fast: building the command group loads no NumPy either
    code = (
        "import sys, pixgmm.cli\n"
        "print([m for m in ('numpy', 'numba', 'jsonschema', 'xarray') if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
