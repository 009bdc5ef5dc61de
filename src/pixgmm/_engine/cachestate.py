"""Whether this machine has compiled pixgmm's kernels yet (numba's on-disk cache).

The first process that uses a kernel compiles it (seconds to tens of seconds
for the classifier and EM kernels); later processes load it from numba's cache
(:data:`pixgmm._engine.config.CACHE_DIR`). The command line asks
:func:`first_run` before it computes, to say once, on a terminal, that the wait
is a one-time compilation.
"""

from __future__ import annotations

import importlib
import os

#: The kernel modules each kind of work runs (any of them, by the engine rule).
KERNELS = {
    "evaluate": ("direct", "table", "separable"),
    "classify": ("classes", "direct", "table", "separable"),
    "fit": ("em", "emtable", "emfit", "kmeans", "histfit"),
}


def _index_paths(module):
    """The cache index file of every cached kernel of ``module`` (numba's own names)."""
    from numba.core.registry import CPUDispatcher

    paths = []
    for value in vars(module).values():
        if isinstance(value, CPUDispatcher):
            cache_file = getattr(getattr(value, "_cache", None), "_cache_file", None)
            index = getattr(cache_file, "_index_path", None)
            if index is not None:
                paths.append(index)
    return paths


def first_run(kind="evaluate"):
    """True when no kernel of ``kind``'s modules is in the disk cache: this run compiles them.

    False when numba's cache is off (every process compiles; nothing to announce)
    or when the kernels were compiled before on this machine.

    Examples
    --------
    >>> from pixgmm._engine.cachestate import first_run
    >>> first_run("evaluate") in (True, False)
    True
    """
    paths = []
    for name in KERNELS[kind]:
        paths += _index_paths(importlib.import_module(f"pixgmm._engine.{name}"))
    return bool(paths) and not any(os.path.exists(p) for p in paths)
