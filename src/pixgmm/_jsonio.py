"""Model serialisation: the canonical identity digest, and JSON model files.

:func:`identity_digest` turns a model's defining fields into its fingerprint,
the value behind ``__eq__``, ``__hash__``, table-cache keys and Dask graph keys.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np


def identity_digest(kind, fields):
    """SHA-256 hex digest of an unambiguous encoding of a model's defining fields.

    Parameters
    ----------
    kind : str
        The model's schema name, e.g. ``"pixgmm.mixture"``.
    fields : dict
        Every field that defines the model, name -> value. Arrays are encoded
        with their dtype and shape before their bytes; other values (strings,
        numbers, ``None`` and tuples of them) by their ``repr``. Every item is
        length-prefixed, so no two different inputs share an encoding: the same
        numbers in other shapes, or a field moved from one name to another,
        give other digests.

    Returns
    -------
    str

    Examples
    --------
    >>> import numpy as np
    >>> a = identity_digest("m", {"x": np.zeros(6)})
    >>> a == identity_digest("m", {"x": np.zeros((2, 3))})
    False
    >>> a == identity_digest("m", {"x": np.zeros(6)})
    True
    """
    h = hashlib.sha256()

    def put(tag, payload):
        h.update(tag)
        h.update(len(payload).to_bytes(8, "little"))
        h.update(payload)

    put(b"kind", kind.encode())
    put(b"n", str(len(fields)).encode())
    for name in sorted(fields):
        value = fields[name]
        put(b"name", name.encode())
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            put(b"array", f"{arr.dtype.str}{arr.shape}".encode())
            put(b"data", arr.tobytes())
        elif value is None or isinstance(value, (str, int, float, tuple)):
            put(b"repr", repr(value).encode())
        else:  # pragma: no cover - a new field of an unexpected type must be added here
            raise TypeError(f"identity_digest cannot encode field {name!r} of type {type(value)}")
    return h.hexdigest()


def write_json(path, data, *, indent=None):
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename.

    An interrupted write leaves no half-written model file behind.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent)
            fh.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot write model file {str(path)!r}: {exc.strerror or exc}"
        ) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def read_json(path):
    """``(data, source)`` of a JSON model file; ``source`` names it in later errors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise OSError(f"cannot read model file {str(path)!r}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    return data, str(path)
