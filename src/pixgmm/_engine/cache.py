"""A bounded, least-recently-used cache for colour and separable tables."""

from __future__ import annotations

import math
import numbers
import threading
from collections import OrderedDict

import numpy as np

from .config import TABLE_CACHE_BYTES


class TableCache:
    """Keeps tables by key until their total size passes ``limit`` bytes.

    Keys are tuples that start with the model fingerprint(s), so equal models
    share tables. Arrays are stored read-only. A table larger than the limit is
    returned to its caller but not kept.
    """

    def __init__(self, limit=TABLE_CACHE_BYTES):
        self._items = OrderedDict()
        self._lock = threading.Lock()
        self._nbytes = 0
        self.limit = max(0, int(limit))  # a negative PIXGMM_TABLE_CACHE_MB keeps nothing

    def get(self, key):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key, value):
        size = _nbytes(value)
        if size > self.limit:
            return value
        with self._lock:
            if key in self._items:
                self._nbytes -= _nbytes(self._items.pop(key))
            self._items[key] = value
            self._nbytes += size
            self._evict()
        return value

    def set_limit(self, nbytes):
        with self._lock:
            self.limit = int(nbytes)
            self._evict()

    def _evict(self):
        while self._nbytes > self.limit:
            _, old = self._items.popitem(last=False)
            self._nbytes -= _nbytes(old)

    def clear(self):
        with self._lock:
            self._items.clear()
            self._nbytes = 0

    def info(self):
        with self._lock:
            return {"entries": len(self._items), "nbytes": self._nbytes, "limit": self.limit}


def _nbytes(value):
    if isinstance(value, tuple):
        return sum(v.nbytes for v in value)
    return value.nbytes


TABLES = TableCache()


def cache_info():
    """Entries, bytes held and byte limit of pixgmm's table cache.

    Colour tables cost 4 bytes per colour in float32 and 8 in float64 (64 MiB
    or 128 MiB for 256**3 colours); separable tables 16 bytes per
    (channel, level, component). The limit defaults to 512 MiB
    (``PIXGMM_TABLE_CACHE_MB`` overrides it); least recently used tables go first.

    Examples
    --------
    >>> import pixgmm
    >>> sorted(pixgmm.cache_info())
    ['entries', 'limit', 'nbytes']
    """
    return TABLES.info()


def clear_cache():
    """Drop every cached table (they are rebuilt on demand).

    Examples
    --------
    >>> import pixgmm
    >>> pixgmm.clear_cache()
    >>> pixgmm.cache_info()["entries"]
    0
    """
    TABLES.clear()


def set_cache_limit(nbytes):
    """Set the table cache's byte limit (0 disables caching).

    Parameters
    ----------
    nbytes : int or float
        The new limit in bytes, finite and >= 0 (a float is truncated to whole
        bytes). When the cached tables hold more, the least recently used are
        dropped at once until they fit; a table larger than the limit is not kept.

    Raises
    ------
    TypeError
        ``nbytes`` is not a number (a bool is refused too).
    ValueError
        ``nbytes`` is negative, infinite or NaN.

    Examples
    --------
    >>> import pixgmm
    >>> pixgmm.set_cache_limit(256 * 2**20)
    >>> pixgmm.cache_info()["limit"]
    268435456
    """
    if isinstance(nbytes, (bool, np.bool_)) or not isinstance(nbytes, numbers.Real):
        raise TypeError(f"nbytes must be a number of bytes, got {nbytes!r}")
    if not (math.isfinite(nbytes) and nbytes >= 0):
        raise ValueError(f"nbytes must be a finite number >= 0, got {nbytes}")
    TABLES.set_limit(int(nbytes))
