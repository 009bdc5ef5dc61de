"""The package's layout keeps its promises: three layers, no import circles.

Imports are read from the source (module level and inside functions alike), so a lazy
import cannot hide a circle. The rules, from the README's development section:

- no import circle among pixgmm's modules (``evaluate.py`` reaches the Dask blocks, the
  blocks never import ``evaluate.py``);
- the private engine layer (``pixgmm._engine``) imports nothing from the public layer or
  the command line (the shared validator's array helpers excepted);
- the library never imports the command line;
- ``evaluate.py`` holds no kernel (no numba).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pixgmm

PACKAGE = Path(pixgmm.__file__).resolve().parent


def _modules():
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _imports(name, path, mods):
    """The pixgmm modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found |= {target} & mods.keys()
            found |= {f"{target}.{a.name}" for a in node.names} & mods.keys()
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & mods.keys()
    # a submodule importing its own package's __init__ is how Python loads it: not an edge
    return {t for t in found if t != name and not name.startswith(t + ".")}


def _graph():
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _cycle(graph):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt, [*stack, nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_circle():
    graph = _graph()
    assert "pixgmm._engine.blocks" in graph["pixgmm.evaluate"]  # the check sees lazy imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_the_circle_check_finds_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_engine_layer_imports_no_public_module_and_the_library_no_cli():
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("pixgmm._engine"):
            outside = {d for d in deps if not d.startswith("pixgmm._engine")}
            assert outside <= {"pixgmm._validation"}, (name, outside)
        if not name.startswith("pixgmm.cli") and name != "pixgmm.__main__":  # python -m pixgmm
            assert not {d for d in deps if d.startswith("pixgmm.cli")}, name


def test_evaluate_holds_no_kernel():
    source = (PACKAGE / "evaluate.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}  # fmt: skip
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree)
                 if isinstance(n, ast.ImportFrom)}  # fmt: skip
    assert "numba" not in imported
    assert "njit" not in source


#: Libraries that read or write files (object stores included); only the I/O layer imports them.
FILE_LIBRARIES = {
    *("tifffile", "rasterio", "imageio", "zarr", "imagecodecs", "pyogrio"),
    *("fsspec", "s3fs", "gcsfs", "adlfs", "boto3", "botocore"),
}


def _third_party_imports(path):
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_files_are_read_and_written_only_through_the_io_layer():
    """One I/O layer: no module outside ``pixgmm.io`` imports a file-format library."""
    offenders = {}
    for name, path in _modules().items():
        if name == "pixgmm.io" or name.startswith("pixgmm.io."):
            continue
        used = _third_party_imports(path) & FILE_LIBRARIES
        if used:
            offenders[name] = sorted(used)
    assert offenders == {}
    # the check reads imports inside functions too
    assert "tifffile" in _third_party_imports(PACKAGE / "io" / "read.py")


def test_the_io_layer_never_imports_the_command_line_or_the_models():
    """The I/O layer stands below everything but the storage encoding of probabilities."""
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith("pixgmm.io"):
            outside = {d for d in deps if not d.startswith("pixgmm.io")}
            assert outside <= {"pixgmm.quantize"}, (name, outside)
    assert graph["pixgmm.quantize"] == set()
