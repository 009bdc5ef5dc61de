"""The one place that defines how pixgmm's numba kernels are compiled.

Every kernel module imports its flags from here; ``tests/engine/test_config.py`` checks
that no kernel hard-codes ``fastmath=``, ``parallel=`` or ``cache=``.

``FASTMATH`` deliberately leaves out ``nnan`` and ``ninf``: a log-density must be
able to hold ``-inf`` (a colour infinitely far from every component) and a NaN
pixel must stay NaN.
"""

from __future__ import annotations

import math
import os

#: LLVM fast-math flags for every kernel: no ``nnan``/``ninf`` (see module docstring).
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Flags for code whose rounding is part of its accuracy (``vmath.vexp``'s
#: Cody-Waite reduction): re-association would undo it, so only contraction to
#: fused multiply-add and the sign-of-zero flag are allowed. LLVM inlines such a
#: function into its callers with these flags kept on its own instructions.
EXACT_FASTMATH = frozenset({"nsz", "contract"})

#: Kernels run their outer loop with ``numba.prange`` over blocks of pixels.
PARALLEL = True

#: Compiled kernels are cached on disk (``__pycache__``) so a new process does not
#: compile them again. Set ``PIXGMM_NUMBA_CACHE=0`` to disable.
CACHE = os.environ.get("PIXGMM_NUMBA_CACHE", "1") != "0"

#: Pixels per block in the direct and separable kernels. A block's scratch
#: (K x BLOCK float64 log-terms) stays in L1/L2 for the K of colour models.
BLOCK = 256

#: A scaled sum below this is treated as having lost precision to underflow and
#: is recomputed by log-sum-exp from the unscaled log-terms.
TINY = 1e-280

#: Default memory budget of the colour-table cache, in bytes (see ``pixgmm.cache_info``).
#: ``PIXGMM_TABLE_CACHE_MB`` overrides it.
def _env_megabytes(name, default):
    """A non-negative size in MiB from environment variable ``name``, in bytes."""
    text = os.environ.get(name, "").strip()
    if not text:
        return int(default * 2**20)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"environment variable {name}={text!r} must be a size in MiB (a number >= 0, "
            f"e.g. {default}); unset it to use the default of {default}"
        )
    return int(value * 2**20)


TABLE_CACHE_BYTES = _env_megabytes("PIXGMM_TABLE_CACHE_MB", 512)

#: ``error_model="numpy"``: a float division by zero gives inf/NaN as in NumPy
#: instead of raising, so a loop with a division has no exception branch and
#: LLVM can vectorise it.
NUMBA_FLAGS = {"fastmath": set(FASTMATH), "cache": CACHE, "nogil": True, "error_model": "numpy"}
NUMBA_PARALLEL_FLAGS = {**NUMBA_FLAGS, "parallel": PARALLEL}

#: Flags for the scalar helpers in ``vmath`` (inlined into kernels by LLVM, so
#: they need no on-disk cache of their own).
MATH_FLAGS = {
    "fastmath": set(EXACT_FASTMATH),
    "cache": False,
    "nogil": True,
    "error_model": "numpy",
}
