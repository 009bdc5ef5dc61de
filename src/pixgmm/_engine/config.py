"""The one place that defines how pixgmm's numba kernels are compiled.

Every kernel module imports its flags from here; ``tests/engine/test_config.py`` checks
that no kernel hard-codes ``fastmath=``, ``parallel=`` or ``cache=``.

``FASTMATH`` deliberately leaves out ``nnan`` and ``ninf``: a log-density must be
able to hold ``-inf`` (a colour infinitely far from every component) and a NaN
pixel must stay NaN.
"""

from __future__ import annotations

import logging
import math
import os
import stat
import tempfile

#: LLVM fast-math flags for every kernel: no ``nnan``/``ninf`` (see module docstring).
FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

#: Flags for code whose rounding is part of its accuracy (``vmath.vexp``'s
#: Cody-Waite reduction): re-association would undo it, so only contraction to
#: fused multiply-add and the sign-of-zero flag are allowed. LLVM inlines such a
#: function into its callers with these flags kept on its own instructions.
EXACT_FASTMATH = frozenset({"nsz", "contract"})

#: Kernels run their outer loop with ``numba.prange`` over blocks of pixels.
PARALLEL = True

_LOG = logging.getLogger("pixgmm")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _kernel_folders():
    """One source file per package folder: numba keeps a cache per folder of source."""
    for root, dirs, files in os.walk(_PACKAGE_DIR):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        if "__init__.py" in files:
            yield os.path.join(root, "__init__.py")


def _numba_can_cache(py_file):
    """Whether numba finds a writable cache for functions defined in ``py_file``.

    Asks numba's own locator search (``NUMBA_CACHE_DIR``, the ``__pycache__``
    beside the source, the user-wide ``$XDG_CACHE_HOME/numba`` or
    ``~/.cache/numba``), which is what ``cache=True`` runs when a kernel is
    decorated and which raises "no locator available" when none is writable.
    """
    try:
        from numba.core.caching import FunctionCache
    except ImportError:  # numba moved it: check the folder numba would try first
        return _private_dir_ok(os.path.join(os.path.dirname(py_file), "__pycache__"), own=False)
    namespace = {"__name__": "pixgmm._cache_probe"}
    exec(compile("def _cache_probe():\n    pass\n", py_file, "exec"), namespace)
    try:
        FunctionCache(namespace["_cache_probe"])
    except (RuntimeError, OSError):  # numba's "no locator available", or a failed write
        return False
    except Exception:  # numba changed the call: check the folder numba would try first
        return _private_dir_ok(os.path.join(os.path.dirname(py_file), "__pycache__"), own=False)
    return True


def _private_dir_ok(path, *, own=True):
    """Create ``path`` (mode 0700) if needed; True when this process can write there.

    With ``own``, the folder must also be a real directory owned by this user and
    writable by nobody else: numba's cache index is a pickle, so a folder another
    user could write into would let them run code in this process.
    """
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        if own and hasattr(os, "getuid"):
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
                return False
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _cache_location():
    """``(cache, folder)``: whether kernels are cached on disk, and where pixgmm put them.

    Decided once, at import, before any kernel is compiled. ``folder`` is None
    when numba's own choice works (or caching is off); otherwise a private
    per-user folder under the temporary directory is handed to numba as its
    ``CACHE_DIR`` (what ``NUMBA_CACHE_DIR`` sets). When no folder is writable
    kernels are compiled in every process, with one warning: never an error.
    """
    if os.environ.get("PIXGMM_NUMBA_CACHE", "1").strip() == "0":
        return False, None
    import numba

    folders = list(_kernel_folders())
    if all(_numba_can_cache(f) for f in folders):
        return True, None
    user_wide = os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "numba")
    chosen = numba.config.CACHE_DIR
    if chosen:  # never override a NUMBA_CACHE_DIR the user chose
        where = f"NUMBA_CACHE_DIR={chosen} is not writable, nor are"
    else:
        uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
        private = os.path.join(tempfile.gettempdir(), f"pixgmm-numba-cache-{uid}")
        if _private_dir_ok(private):
            numba.config.CACHE_DIR = private
            if all(_numba_can_cache(f) for f in folders):
                return True, private
            numba.config.CACHE_DIR = ""
        where = f"no folder is writable for numba's kernel cache: not {private},"
    _LOG.warning(
        "pixgmm: %s the __pycache__ beside the package or %s; kernels are compiled "
        "in every process (set NUMBA_CACHE_DIR to a writable folder to keep them)",
        where,
        user_wide,
    )
    return False, None


#: Compiled kernels are cached on disk so a new process does not compile them
#: again: where numba puts them (the ``__pycache__`` beside the source, or
#: ``NUMBA_CACHE_DIR``, or ``~/.cache/numba``), else in a private folder
#: ``pixgmm-numba-cache-<uid>`` of the temporary directory (``CACHE_DIR``), else
#: nowhere (one warning; a read-only install run by another user still computes).
#: Set ``PIXGMM_NUMBA_CACHE=0`` to disable.
CACHE, CACHE_DIR = _cache_location()

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
