"""Model serialisation: the canonical identity digest, and JSON model files.

:func:`identity_digest` turns a model's defining fields into its fingerprint,
the value behind ``__eq__``, ``__hash__``, table-cache keys and Dask graph keys.

Model files are JSON in UTF-8, validated strictly against a versioned JSON
Schema shipped in ``pixgmm/data/schema/`` (``mixture-1.json``,
``histogram-1.json``): unknown keys, wrong types (a numeric string, ``true``
for a number), NaN/Infinity, numbers outside the float64 range, duplicate keys,
bytes that are not UTF-8 and absurd nesting are each a ``ValueError`` naming the
file and the field as a JSON path (``$.means[1][0]``). Writes go through a
temporary file in the same folder, ``fsync`` and a rename, so a model file is
always either its old content or its new one.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import math
import os
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

#: Deepest nesting of arrays and objects a model file may have (a full covariance is 4 levels).
MAX_DEPTH = 16
_FLOAT_MAX = 1.7976931348623157e308


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
    """Write ``data`` as JSON to ``path`` atomically.

    The text goes to a temporary file beside ``path`` (``.name.XXXX.tmp``), is
    flushed and ``fsync``-ed, then renamed over ``path``: an interrupted or
    failed write (a full disk, a ``KeyboardInterrupt``) leaves ``path`` as it
    was and no temporary file behind. A failure is an ``OSError`` of the
    original kind that names ``path`` (not the temporary file) and the
    operating system's reason, e.g. "No space left on device".
    """
    path = _as_path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=indent, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_folder(path.parent)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"cannot write model file {str(path)!r}: {reason}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _as_path(path):
    try:
        return Path(os.fspath(path))
    except TypeError:
        raise TypeError(
            f"path must be a file path (str or os.PathLike), got {type(path).__name__}"
        ) from None


def _fsync_folder(folder):
    """Make a rename durable where the platform allows it (not on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- reading --------------------------------------------------------------------------------


class _Invalid:
    """A number the decoder could not accept; reported with its JSON path after decoding."""

    __slots__ = ("reason",)

    def __init__(self, reason):
        self.reason = reason


class _DuplicateKey(ValueError):
    pass


def _parse_float(text):
    value = float(text)
    if not math.isfinite(value):
        return _Invalid(f"{text} is outside the float64 range (about +-1.8e308)")
    return value


def _parse_int(text):
    digits = len(text.lstrip("-"))
    if digits > 309:  # more than any float64 can hold; int() would also refuse past 4300
        return _Invalid(f"an integer of {digits} digits is outside the float64 range")
    return int(text)


def _parse_constant(text):
    return _Invalid(f"{text} is not a finite number (JSON has no NaN or Infinity)")


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _open_error(path, exc):
    """An OSError of the same kind as ``exc`` naming the model file and the reason."""
    where = f"cannot read model file {str(path)!r}"
    if isinstance(exc, FileNotFoundError):
        err = FileNotFoundError(f"{where}: no such file")
    elif isinstance(exc, IsADirectoryError) or path.is_dir():
        err = IsADirectoryError(f"{where}: it is a directory; pass the path of a .json model file")
    elif isinstance(exc, PermissionError):
        err = PermissionError(f"{where}: permission denied")
    else:
        err = OSError(f"{where}: {exc.strerror or exc}")
    return err


def read_json(path):
    """``(data, source)`` of a JSON model file; ``source`` names it in later errors.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, PermissionError, OSError
        The file is missing, a directory or unreadable (the message names it).
    ValueError
        The bytes are not UTF-8, the text is not JSON, or it holds NaN,
        Infinity, a number outside the float64 range, a duplicate key or
        nesting deeper than :data:`MAX_DEPTH` (naming the file and the field).
    """
    path = _as_path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _open_error(path, exc) from None
    return parse_json(raw, source), source


def parse_json(raw, source):
    """Decode model-file bytes strictly (see :func:`read_json`)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        raise ValueError(
            f"{source}: not UTF-8 text (byte 0x{bad} at offset {exc.start}); a model file is "
            "JSON encoded in UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors add
    try:
        data = json.loads(
            text,
            parse_float=_parse_float,
            parse_int=_parse_int,
            parse_constant=_parse_constant,
            object_pairs_hook=_no_duplicates,
        )
    except _DuplicateKey as exc:
        raise ValueError(f"{source}: {exc}; each field may appear once") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ValueError(
            f"{source}: arrays or objects nested too deeply to read (a model file needs at "
            f"most {MAX_DEPTH} levels)"
        ) from None
    check_tree(data, source)
    return data


def plain_json(value, source, where="$", depth=0):
    """``value`` with NumPy arrays, NumPy scalars and tuples turned into JSON types.

    For dicts built in Python and passed to ``from_dict``; a non-finite float
    becomes a marker that :func:`check_tree` reports with its path.
    """
    if depth > MAX_DEPTH:
        return value  # check_tree reports the nesting, with its path
    if isinstance(value, np.ndarray):
        value = value.tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, dict):
        return {k: plain_json(v, source, _child(where, k), depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v, source, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        return _Invalid(f"{value} is not a finite number")
    return value


def check_tree(data, source):
    """Raise ValueError for an undecodable number or nesting deeper than MAX_DEPTH, with its path."""
    stack = [(data, "$", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, _Invalid):
            raise ValueError(f"{source}: field {where}: {value.reason}")
        if isinstance(value, (list, tuple, dict, np.ndarray)):
            if depth >= MAX_DEPTH:
                raise ValueError(
                    f"{source}: field {where}: nested more than {MAX_DEPTH} levels deep; no "
                    "field of a model file is"
                )
            if isinstance(value, dict):
                stack.extend((v, _child(where, k), depth + 1) for k, v in value.items())
            else:
                stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


def _child(where, key):
    if isinstance(key, str) and key.isidentifier():
        return f"{where}.{key}"
    return f"{where}[{json.dumps(key)}]"


# -- schema validation ----------------------------------------------------------------------


@functools.cache
def _validator(schema_file):
    import jsonschema

    text = resources.files("pixgmm").joinpath("data", "schema", schema_file).read_text("utf-8")
    schema = json.loads(text)
    cls = jsonschema.validators.validator_for(schema)
    # JSON Schema calls 2.0 an integer; a model file's integers are written without a fraction
    checker = cls.TYPE_CHECKER.redefine(
        "integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool)
    )
    return jsonschema.validators.extend(cls, type_checker=checker)(schema)


def check_kind(data, kind, version, source):
    """Raise ValueError unless ``data`` is an object whose ``schema`` and ``version`` are these.

    Checked before the schema itself, so that a file of another kind or of a
    newer version says so instead of listing the fields it does not know.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object, got {_json_type(data)}")
    got = data.get("schema")
    if got != kind:
        if "schema" not in data:
            raise ValueError(
                f"{source}: field $.schema is missing; a {kind} file starts with "
                f'{{"schema": "{kind}", "version": {version}, ...}}'
            )
        other = {
            "pixgmm.mixture": "pixgmm.Mixture.load",
            "pixgmm.histogram": "pixgmm.HistogramModel.load",
        }.get(got if isinstance(got, str) else None)
        hint = f" (this is a {got} file: read it with {other})" if other else ""
        raise ValueError(
            f"{source}: field $.schema must be {json.dumps(kind)}, got {_kind(got)}{hint}"
        )
    got = data.get("version")
    if isinstance(got, int) and not isinstance(got, bool) and got > version:
        raise ValueError(
            f"{source}: field $.version is {got}; this pixgmm reads "
            f"{'version 1' if version == 1 else f'versions 1 to {version}'} of "
            f"{kind} files: upgrade pixgmm to read it"
        )


def _json_type(value):
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number" if isinstance(value, (int, float)) else type(value).__name__
    )


def validate(data, schema_file, source):
    """Check ``data`` against the JSON Schema ``pixgmm/data/schema/<schema_file>``.

    Raises
    ------
    ValueError
        For the most relevant violation, naming ``source`` and the field's JSON path.
    """
    check_tree(data, source)
    import jsonschema

    validator = _validator(schema_file)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data), key=_relevance)
    if error is not None:
        raise ValueError(f"{source}: {_describe(error, validator.schema)}") from None


def _relevance(error):
    """jsonschema's relevance without its preference for later siblings: the first error wins."""
    import jsonschema

    shallow, _, *rest = jsonschema.exceptions.relevance(error)
    return (shallow, *rest)


def _short(value, limit=60):
    text = json.dumps(value) if not isinstance(value, _Invalid) else "?"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value):
    if isinstance(value, bool):
        return f"{'true' if value else 'false'} (a boolean)"
    if value is None:
        return "null"
    if isinstance(value, str):
        return f"the string {_short(value)}"
    if isinstance(value, (int, float)):
        return f"the number {_short(value)}"
    if isinstance(value, list):
        return f"an array ({_short(value)})"
    return f"an object ({_short(value)})"


def _describe(error, root):
    """One sentence for a jsonschema error: the field's JSON path, what it must be, what it is."""
    where = error.json_path
    v = error.validator
    inst = error.instance
    if where == "$" and v == "type":
        return f"expected a JSON object, got {_json_type(inst)}"
    wanted = error.schema.get("description") if isinstance(error.schema, dict) else None
    if v == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(inst) - set(allowed))
        parts = []
        for key in unknown:
            close = difflib.get_close_matches(key.replace("-", "_"), allowed, n=1, cutoff=0.6)
            parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(parts)} in {where}; "
            f"the fields are {', '.join(map(repr, allowed))}"
        )
    if v == "required":
        missing = [_child(where, k) for k in error.validator_value if k not in inst]
        if len(missing) == 1:
            return f"field {missing[0]} is missing"
        return f"fields {', '.join(missing[:-1])} and {missing[-1]} are missing"
    if v == "const":
        return f"field {where} must be {json.dumps(error.validator_value)}, got {_kind(inst)}"
    if v == "enum":
        options = ", ".join(json.dumps(o) for o in error.validator_value)
        return f"field {where} must be one of {options}; got {_kind(inst)}"
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if v == "maximum" or (v == "minimum" and error.validator_value < -1e308):
            return f"field {where}: {_kind(inst)} is outside the float64 range (about +-1.8e308)"
        if wanted:
            return f"field {where} must be {wanted}, got {_short(inst)}"
        op = {"minimum": ">=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"field {where} must be {op} {error.validator_value:g}, got {_short(inst)}"
    if v in ("minItems", "maxItems"):
        what = wanted or "an array"
        return f"field {where} must be {what}; got {len(inst)} item(s)"
    if v == "minLength":
        return f"field {where} must not be an empty string"
    if v == "type":
        what = wanted or f"of type {error.validator_value}"
        if not wanted and error.validator_value == "number":
            what = "a number"
        return f"field {where} must be {what}; got {_kind(inst)}"
    if v in ("anyOf", "oneOf"):
        return f"field {where} must be {wanted or 'another value'}; got {_kind(inst)}"
    return f"field {where}: {error.message}"  # pragma: no cover - every keyword used is above
