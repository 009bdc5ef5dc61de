"""Model files: JSON written atomically, read with errors that name the file."""

from __future__ import annotations

import json
import os
from pathlib import Path


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
