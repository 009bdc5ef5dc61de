"""Compilation flags come from ``pixgmm._config`` only, and never allow NaN/inf to be assumed away.

The source of every module in ``src/pixgmm`` is parsed with :mod:`ast`: each numba
decorator or call (``njit``, ``jit``, ``vectorize``, ...) must take its flags as
``**FLAGS`` unpacked from a name imported from ``._config``, never as a literal
``fastmath=``, ``parallel=`` or ``cache=`` keyword, and never bare (numba's defaults).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pixgmm
from pixgmm._engine import config as _config

PACKAGE_DIR = Path(pixgmm.__file__).resolve().parent
NUMBA_DECORATORS = {"njit", "jit", "vectorize", "guvectorize", "generated_jit", "stencil", "cfunc"}
CONTROLLED = {"fastmath", "parallel", "cache"}
UNSAFE_FASTMATH = {"nnan", "ninf", "fast"}


def _numba_names(tree):
    """Local names bound to the numba module or to one of its decorators."""
    modules, decorators = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "numba":
                    modules.add(alias.asname or "numba")
        elif isinstance(node, ast.ImportFrom) and node.module == "numba":
            for alias in node.names:
                if alias.name in NUMBA_DECORATORS:
                    decorators.add(alias.asname or alias.name)
    return modules, decorators


def _config_names(tree):
    """Names imported from the package's ``_config`` module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[-1] in (
            "config",
            "_config",
        ):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _is_numba_decorator(func, modules, decorators):
    if isinstance(func, ast.Name):
        return func.id in decorators
    return (
        isinstance(func, ast.Attribute)
        and func.attr in NUMBA_DECORATORS
        and isinstance(func.value, ast.Name)
        and func.value.id in modules
    )


def check_source(source, filename="<source>"):
    """Return ``(problems, n_uses)`` for one module's source: each problem names the line."""
    tree = ast.parse(source, filename)
    modules, decorators = _numba_names(tree)
    config_names = _config_names(tree)
    problems, uses = [], 0
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_numba_decorator(node.func, modules, decorators):
            uses += 1
            called.add(id(node.func))
            where = f"{filename}:{node.lineno}"
            for kw in node.keywords:
                if kw.arg in CONTROLLED:
                    problems.append(f"{where} hard-codes {kw.arg}=; take it from _config")
                elif kw.arg is None and not (
                    isinstance(kw.value, ast.Name) and kw.value.id in config_names
                ):
                    problems.append(f"{where} unpacks flags that do not come from _config")
            if not any(kw.arg is None for kw in node.keywords):
                problems.append(f"{where} takes no **flags from _config")
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for dec in node.decorator_list:
                if _is_numba_decorator(dec, modules, decorators) and id(dec) not in called:
                    uses += 1
                    problems.append(
                        f"{filename}:{dec.lineno} bare numba decorator (numba's default flags)"
                    )
    return problems, uses


def _modules():
    return sorted(
        p for p in PACKAGE_DIR.rglob("*.py") if p != PACKAGE_DIR / "_engine" / "config.py"
    )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE_DIR).as_posix())
def test_no_module_hard_codes_numba_flags(path):
    problems, _ = check_source(path.read_text(encoding="utf-8"), path.name)
    assert not problems, "\n".join(problems)


def test_the_kernel_modules_are_actually_checked():
    """The check is not vacuous: the kernel modules do compile functions with numba."""
    for name in (
        "_engine/direct.py",
        "_engine/table.py",
        "_engine/separable.py",
        "_engine/vmath.py",
    ):
        _, uses = check_source((PACKAGE_DIR / name).read_text(encoding="utf-8"), name)
        assert uses >= 1, f"no numba decorator found in {name}"


@pytest.mark.parametrize(
    "source",
    [
        "import numba\n@numba.njit(fastmath=True)\ndef f(x):\n    return x\n",
        "import numba\nfrom ._config import NUMBA_FLAGS\n"
        "@numba.njit(parallel=True, **NUMBA_FLAGS)\ndef f(x):\n    return x\n",
        "from numba import njit\n@njit(cache=False)\ndef f(x):\n    return x\n",
        "import numba as nb\n@nb.jit\ndef f(x):\n    return x\n",
        "import numba\nFLAGS = {'fastmath': True}\n@numba.njit(**FLAGS)\ndef f(x):\n    return x\n",
        "import numba\ndef f(x):\n    return x\ng = numba.njit(fastmath={'nnan'})(f)\n",
    ],
)
def test_the_check_catches_hard_coded_flags(source):
    problems, uses = check_source(source)
    assert uses == 1
    assert problems


def test_the_check_accepts_flags_from_config():
    source = (
        "import numba\nfrom ._config import NUMBA_FLAGS, NUMBA_PARALLEL_FLAGS\n"
        "@numba.njit(**NUMBA_FLAGS)\ndef f(x):\n    return x\n"
        "@numba.njit(**NUMBA_PARALLEL_FLAGS)\ndef g(x):\n    return x\n"
    )
    assert check_source(source) == ([], 2)


def _fastmath_sets():
    """Every fastmath value _config defines: the constants and the flag dicts' entries."""
    found = {"FASTMATH": _config.FASTMATH, "EXACT_FASTMATH": _config.EXACT_FASTMATH}
    for name in dir(_config):
        value = getattr(_config, name)
        if isinstance(value, dict) and "fastmath" in value:
            found[f"{name}['fastmath']"] = value["fastmath"]
    return found


def test_fastmath_keeps_nan_and_inf():
    sets = _fastmath_sets()
    assert {"NUMBA_FLAGS['fastmath']", "NUMBA_PARALLEL_FLAGS['fastmath']"} <= set(sets)
    for name, flags in sets.items():
        # fastmath=True would switch on every flag, nnan and ninf included
        assert isinstance(flags, (set, frozenset)), f"{name} must be a set of flags, not {flags!r}"
        assert not (set(flags) & UNSAFE_FASTMATH), f"{name} contains {set(flags) & UNSAFE_FASTMATH}"
    assert set(_config.NUMBA_FLAGS["fastmath"]) == set(_config.FASTMATH)


def test_parallel_and_cache_flags_come_from_the_constants():
    assert _config.NUMBA_PARALLEL_FLAGS["parallel"] is _config.PARALLEL
    for flags in (_config.NUMBA_FLAGS, _config.NUMBA_PARALLEL_FLAGS):
        assert flags["cache"] is _config.CACHE
        assert "parallel" not in flags or flags is _config.NUMBA_PARALLEL_FLAGS


@pytest.mark.parametrize(
    ("text", "expected"), [("", 512 * 2**20), ("0", 0), ("1.5", 1572864), (" 64 ", 64 * 2**20)]
)
def test_table_cache_size_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("PIXGMM_TABLE_CACHE_MB", text)
    assert _config._env_megabytes("PIXGMM_TABLE_CACHE_MB", 512) == expected


@pytest.mark.parametrize("text", ["abc", "-5", "nan", "inf", "1e400"])
def test_bad_table_cache_size_names_the_variable(monkeypatch, text):
    monkeypatch.setenv("PIXGMM_TABLE_CACHE_MB", text)
    with pytest.raises(ValueError, match=r"PIXGMM_TABLE_CACHE_MB=.* must be a size in MiB"):
        _config._env_megabytes("PIXGMM_TABLE_CACHE_MB", 512)
