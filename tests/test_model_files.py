"""Model files: strict validation against the versioned JSON Schemas, and atomic writes.

Issue 9 item 3: a saved model with ``"chanels"`` loaded with no channel order, a
misspelled ``"covariance-type"`` silently became "full", numeric strings and ``true``
were accepted as numbers. Every such file is now a ``ValueError`` naming the file and
the field (a JSON path); a missing file is ``FileNotFoundError``.
"""

from __future__ import annotations

import errno
import json
import os
import re
from importlib import resources

import numpy as np
import pytest

import pixgmm
from pixgmm import HistogramModel, Mixture, _jsonio

MIXTURE = Mixture(
    [0.25, 0.75],
    [[200.0, 150.0, 120.0], [80.0, 50.0, 40.0]],
    [[300.0, 100.0, 150.0], [400.0, 90.0, 150.0]],
    "diag",
    channels="RGB",
)
HISTOGRAM = HistogramModel(np.arange(12.0).reshape(2, 3, 2), channels="RGB", smoothing=0.5)


def mixture_doc():
    return MIXTURE.to_dict()


def histogram_doc():
    return HISTOGRAM.to_dict()


def renamed(doc, old, new):
    return {(new if k == old else k): v for k, v in doc.items()}


def write(tmp_path, content, name="model.json"):
    path = tmp_path / name
    if not isinstance(content, (str, bytes)):
        content = json.dumps(content)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def load_error(cls, path):
    with pytest.raises(ValueError) as info:
        cls.load(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: "), msg
    return msg


# -- files that load ---------------------------------------------------------------------------


def test_saved_files_load_back_equal(tmp_path):
    MIXTURE.save(tmp_path / "m.json")
    HISTOGRAM.save(tmp_path / "h.json")
    assert Mixture.load(tmp_path / "m.json") == MIXTURE
    assert HistogramModel.load(tmp_path / "h.json") == HISTOGRAM
    assert Mixture.from_dict(MIXTURE.to_dict()) == MIXTURE
    assert HistogramModel.from_dict(HISTOGRAM.to_dict()) == HISTOGRAM


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical", "tied"])
def test_every_covariance_type_round_trips(tmp_path, ctype):
    cov = {
        "full": [np.eye(2) * 3 + 1, np.eye(2) * 5 - 1],
        "diag": [[1.0, 2.0], [3.0, 4.0]],
        "spherical": [1.0, 2.0],
        "tied": [[2.0, 0.5], [0.5, 1.0]],
    }[ctype]
    m = Mixture([1.0, 2.0], [[0.0, 1.0], [2.0, 3.0]], cov, ctype, channels=["nir", "red"])
    m.save(tmp_path / "m.json")
    assert Mixture.load(tmp_path / "m.json") == m


def test_optional_fields_and_a_byte_order_mark(tmp_path):
    doc = mixture_doc()
    del doc["channels"]
    m = Mixture.load(write(tmp_path, "\ufeff" + json.dumps(doc)))
    assert m.channels is None
    doc = histogram_doc()
    del doc["smoothing"], doc["channels"]
    doc["range"] = [0, 256]  # one pair for every channel
    h = HistogramModel.load(write(tmp_path, doc))
    assert h.smoothing == 1.0 and h.range == ((0.0, 256.0),) * 3


def test_the_value_scale_is_recorded_in_a_version_3_file(tmp_path):
    """Each file is written in the lowest version that holds it; every version loads back."""
    versions = {}
    for name, training in (("plain", None), ("counted", {"n_pixels": 7}),
                           ("scaled", {"n_pixels": 7, "scale": "raw"})):  # fmt: skip
        model = MIXTURE.with_training(training)
        model.save(tmp_path / f"{name}.json")
        versions[name] = json.loads((tmp_path / f"{name}.json").read_text())["version"]
        back = Mixture.load(tmp_path / f"{name}.json")
        assert back == model and back.training == training
    assert versions == {"plain": 1, "counted": 2, "scaled": 3}
    rng = np.random.default_rng(0)
    pixels = rng.normal(1000, 50, (30, 4))
    pixels[3, 1] = np.nan  # a NaN pixel is not counted
    fitted = pixgmm.fit(pixels, 1, scale="raw")
    assert fitted.training == {"n_pixels": 29, "scale": "raw"}
    assert pixgmm.fit(pixels, 1).training is None
    with pytest.raises(ValueError, match=r"scale must be one of 'raw', '0\.\.255', '0\.\.1'"):
        pixgmm.fit(pixels, 1, scale="16-bit")


def test_from_dict_accepts_numpy_arrays_and_tuples():
    doc = mixture_doc()
    doc["weights"] = np.asarray(doc["weights"])
    doc["means"] = tuple(tuple(r) for r in doc["means"])
    assert Mixture.from_dict(doc) == MIXTURE


def test_bundled_jones_rehg_file_follows_its_schema():
    skin = pixgmm.models.jones_rehg_skin()
    assert skin.n_components == 16 and skin.channels == "RGB"
    raw = resources.files("pixgmm").joinpath("data", "jones_rehg_1999.json").read_bytes()
    data = json.loads(raw)
    # the shipped file itself (pixgmm.models trusts it at load time: checked here instead)
    _jsonio.validate(data, pixgmm.models._SCHEMA_FILE, "pixgmm/data/jones_rehg_1999.json")
    data["skin"]["wieghts"] = data["skin"].pop("weights")
    with pytest.raises(ValueError, match=r"unknown field 'wieghts' .* in \$\.skin"):
        _jsonio.validate(data, "jones-rehg-1999.json", "jones")


def test_schemas_are_valid_json_schema_documents():
    import jsonschema

    folder = resources.files("pixgmm").joinpath("data", "schema")
    names = sorted(p.name for p in folder.iterdir() if p.name.endswith(".json"))
    assert names == [
        "histogram-1.json",
        "jones-rehg-1999.json",
        "mixture-1.json",
        "mixture-2.json",
        "mixture-3.json",
    ]
    for name in names:
        schema = json.loads(folder.joinpath(name).read_text("utf-8"))
        jsonschema.validators.validator_for(schema).check_schema(schema)
    # the documents say which version they describe
    for version in (1, 2, 3):
        text = folder.joinpath(f"mixture-{version}.json").read_text("utf-8")
        assert f"version {version}" in json.loads(text)["title"]


# -- mixture files that do not ------------------------------------------------------------------

MIXTURE_CASES = {
    "misspelled channels": (
        lambda d: renamed(d, "channels", "chanels"),
        r"unknown field 'chanels' \(did you mean 'channels'\?\) in \$",
    ),
    "hyphenated covariance type": (
        lambda d: renamed(d, "covariance_type", "covariance-type"),
        r"unknown field 'covariance-type' \(did you mean 'covariance_type'\?\)",
    ),
    "extra field": (lambda d: {**d, "prior": 0.5}, r"unknown field 'prior'"),
    "numeric string": (
        lambda d: {**d, "weights": ["0.25", 0.75]},
        r'field \$\.weights\[0\] must be a finite number; got the string "0\.25"',
    ),
    "true as a number": (
        lambda d: {**d, "means": [[True, 1, 2], [3, 4, 5]]},
        r"field \$\.means\[0\]\[0\] must be a finite number; got true",
    ),
    "null as a number": (
        lambda d: {**d, "covariances": [[1, None, 1], [1, 1, 1]]},
        r"field \$\.covariances\[0\]\[1\] must be a finite number; got null",
    ),
    "negative variance": (
        lambda d: {**d, "covariances": [[1, -2, 1], [1, 1, 1]]},
        r"field \$\.covariances\[0\]\[1\] must be a variance > 0, got -2",
    ),
    "negative weight": (
        lambda d: {**d, "weights": [-1, 1]},
        r"field \$\.weights\[0\] must be a number >= 0",
    ),
    "missing field": (
        lambda d: {k: v for k, v in d.items() if k != "covariance_type"},
        r"field \$\.covariance_type is missing",
    ),
    "no schema field": (
        lambda d: {k: v for k, v in d.items() if k != "schema"},
        r"field \$\.schema is missing",
    ),
    "version as a string": (
        lambda d: {**d, "version": "1"},
        r'field \$\.version must be the integer 1; got the string "1"',
    ),
    "newer version": (lambda d: {**d, "version": 4}, r"field \$\.version is 4.*upgrade pixgmm"),
    "scale in a version 2 file": (
        lambda d: {**d, "version": 2, "training": {"n_pixels": 5, "scale": "raw"}},
        r'field \$\.training\.scale needs "version": 3',
    ),
    "unknown scale": (
        lambda d: {**d, "version": 3, "training": {"n_pixels": 5, "scale": "16-bit"}},
        r'field \$\.training\.scale must be one of "raw", "0\.\.255", "0\.\.1"',
    ),
    "histogram file": (
        lambda d: histogram_doc(),
        r"field \$\.schema must be \"pixgmm\.mixture\".*pixgmm\.HistogramModel\.load",
    ),
    "covariance type": (
        lambda d: {**d, "covariance_type": "diagonal"},
        r"field \$\.covariance_type must be one of \"full\", \"diag\"",
    ),
    "rank for full": (
        lambda d: {**d, "covariance_type": "full"},
        r"field \$\.covariances\[0\]\[0\] must be an array of D numbers",
    ),
    "channels of another type": (
        lambda d: {**d, "channels": {"R": 0}},
        r"field \$\.channels must be null, a string .*; got an object",
    ),
    "empty channel name": (
        lambda d: {**d, "channels": ["R", "", "B"]},
        r"field \$\.channels\[1\] must not be an empty string",
    ),
    "K disagrees": (lambda d: {**d, "weights": [1.0]}, r"weights has 1 entries but means has 2"),
    "not an object": (lambda d: [d], r"expected a JSON object, got array"),
    "deep nesting": (
        lambda d: {**d, "means": json.loads("[" * 40 + "]" * 40)},
        r"field \$\.means(\[0\]){15,16}: nested more than 16 levels deep",
    ),
}


@pytest.mark.parametrize("case", list(MIXTURE_CASES))
def test_invalid_mixture_files_name_file_and_field(tmp_path, case):
    edit, match = MIXTURE_CASES[case]
    msg = load_error(Mixture, write(tmp_path, edit(mixture_doc())))
    assert re.search(match, msg), msg
    with pytest.raises(ValueError, match=match):  # the same rule for a dict
        Mixture.from_dict(edit(mixture_doc()))


TEXT_CASES = {
    "400-digit integer": (
        lambda t: t.replace("0.25", "1" + "0" * 399),
        r"field \$\.weights\[0\]: an integer of 400 digits is outside the float64 range",
    ),
    "huge float": (
        lambda t: t.replace("0.25", "1e400"),
        r"field \$\.weights\[0\]: 1e400 is outside the float64 range",
    ),
    "huge negative float": (
        lambda t: t.replace("200.0", "-1e309"),
        r"field \$\.means\[0\]\[0\]: -1e309 is outside the float64 range",
    ),
    "integer just past float64": (
        lambda t: t.replace("200.0", "9" * 309),
        r"field \$\.means\[0\]\[0\]: the number 9{20}.* is outside the float64 range",
    ),
    "NaN": (
        lambda t: t.replace("0.75", "NaN"),
        r"field \$\.weights\[1\]: NaN is not a finite number",
    ),
    "Infinity": (
        lambda t: t.replace("300.0", "-Infinity"),
        r"field \$\.covariances\[0\]\[0\]: -Infinity is not a finite number",
    ),
    "duplicate key": (
        lambda t: t[:-1] + ', "weights": [1, 1]}',
        r"key 'weights' appears twice in one object",
    ),
    "truncated": (lambda t: t[: len(t) // 2], r"not valid JSON \(.*line 1"),
    "empty": (lambda t: "", r"not valid JSON"),
    "absurd nesting": (
        lambda t: t.replace('"means": [', '"means": ' + "[" * 100_000 + "]" * 99_999 + ", [", 1),
        r"nested too deeply to read",
    ),
}


@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_invalid_json_text_names_file_and_field(tmp_path, case):
    edit, match = TEXT_CASES[case]
    text = edit(json.dumps(mixture_doc()))
    msg = load_error(Mixture, write(tmp_path, text))
    assert re.search(match, msg), msg


def test_bytes_that_are_not_utf8(tmp_path):
    text = json.dumps(mixture_doc()).replace('"RGB"', '"RGB\u00e9"').encode("latin-1")
    msg = load_error(Mixture, write(tmp_path, text))
    assert "not UTF-8 text (byte 0xe9 at offset" in msg
    msg = load_error(HistogramModel, write(tmp_path, b"\xff\xfe{\x00}\x00"))
    assert "not UTF-8 text (byte 0xff at offset 0)" in msg


# -- histogram files --------------------------------------------------------------------------

HISTOGRAM_CASES = {
    "misspelled smoothing": (
        lambda d: renamed(d, "smoothing", "smoothin"),
        r"unknown field 'smoothin' \(did you mean 'smoothing'\?\)",
    ),
    "misspelled channels": (
        lambda d: renamed(d, "channels", "chanels"),
        r"unknown field 'chanels'",
    ),
    "fractional bins": (
        lambda d: {**d, "bins": [2.0, 3, 2]},
        r"field \$\.bins\[0\] must be an integer >= 1; got the number 2\.0",
    ),
    "bins as true": (
        lambda d: {**d, "bins": [True, 3, 2]},
        r"field \$\.bins\[0\] must be an integer",
    ),
    "bins disagree with counts": (
        lambda d: {**d, "bins": [3, 3, 2]},
        r"field \$\.counts has 12 values but \$\.bins \[3, 3, 2\] needs 18",
    ),
    "huge bins": (
        lambda d: {**d, "bins": [10**30, 3, 2]},
        r"field \$\.counts has 12 values but \$\.bins",
    ),
    "range as a string": (
        lambda d: {**d, "range": "0..256"},
        r"field \$\.range must be one \[low, high\] pair for every channel",
    ),
    "negative count": (
        lambda d: {**d, "counts": [-1, *d["counts"][1:]]},
        r"field \$\.counts\[0\] must be a number >= 0",
    ),
    "numeric-string smoothing": (
        lambda d: {**d, "smoothing": "1"},
        r"field \$\.smoothing must be a finite number",
    ),
    "range with equal ends": (
        lambda d: {**d, "range": [[0, 0]] * 3},
        r"every pair needs finite low < high",
    ),
    "mixture file": (lambda d: mixture_doc(), r"pixgmm\.Mixture\.load"),
}


@pytest.mark.parametrize("case", list(HISTOGRAM_CASES))
def test_invalid_histogram_files_name_file_and_field(tmp_path, case):
    edit, match = HISTOGRAM_CASES[case]
    msg = load_error(HistogramModel, write(tmp_path, edit(histogram_doc())))
    assert re.search(match, msg), msg


# -- what is not a readable file ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [Mixture, HistogramModel])
def test_missing_file_and_directory(tmp_path, cls):
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=f"cannot read model file '{missing}': no such"):
        cls.load(missing)
    with pytest.raises(IsADirectoryError, match=f"'{tmp_path}': it is a directory"):
        cls.load(tmp_path)


def test_path_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"path must be a file path .*, got int"):
        Mixture.load(3)
    with pytest.raises(TypeError, match=r"path must be a file path .*, got NoneType"):
        HISTOGRAM.save(None)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True, reason="root reads all")
def test_unreadable_file(tmp_path):
    path = tmp_path / "m.json"
    MIXTURE.save(path)
    path.chmod(0)
    with pytest.raises(PermissionError, match=r"cannot read model file .*permission denied"):
        Mixture.load(path)


# -- atomic writes ----------------------------------------------------------------------------


def _interrupt_halfway(monkeypatch, exc):
    real_dump = json.dump

    def dump(data, fh, **kwargs):
        text = json.dumps(data, **kwargs)
        fh.write(text[: len(text) // 2])
        fh.flush()
        raise exc

    monkeypatch.setattr(_jsonio.json, "dump", dump)
    return real_dump


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OSError(errno.ENOSPC, "No space left")])
@pytest.mark.parametrize("existing", [True, False])
def test_interrupted_write_leaves_old_content_or_nothing(tmp_path, monkeypatch, exc, existing):
    path = tmp_path / "model.json"
    if existing:
        MIXTURE.save(path)
    old = path.read_bytes() if existing else None
    _interrupt_halfway(monkeypatch, exc)
    other = Mixture([1.0], [[1.0, 2.0, 3.0]], [[1.0, 1.0, 1.0]], "diag")
    with pytest.raises(type(exc)):
        other.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == (["model.json"] if existing else [])
    if existing:
        assert path.read_bytes() == old
        monkeypatch.undo()
        assert Mixture.load(path) == MIXTURE


def test_failed_write_names_the_target_and_the_reason(tmp_path, monkeypatch):
    path = tmp_path / "model.json"

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_jsonio.os, "fsync", full_disk)
    with pytest.raises(OSError) as info:
        HISTOGRAM.save(path)
    assert info.value.errno == errno.ENOSPC
    assert str(info.value).endswith(f"cannot write model file '{path}': No space left on device")
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_write_fsyncs_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = _jsonio.os.fsync, _jsonio.os.replace
    monkeypatch.setattr(_jsonio.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd)))
    monkeypatch.setattr(
        _jsonio.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))
    )
    MIXTURE.save(tmp_path / "m.json")
    assert events[:2] == ["fsync", "replace"]


def test_write_into_a_directory_path_names_it(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(OSError, match=f"cannot write model file '{target}'"):
        MIXTURE.save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]
