"""Smoke tests of ``benchmarks/bench_core.py --quick`` and ``bench_peers.py --quick``.

``bench_core.py``: it runs and reports every contender. ``bench_peers.py``: pixgmm's parts
and the I/O floor run, and GRASS and Orfeo ToolBox, absent from the path, are skipped with
how to install them. A correctness check of the benchmark scripts only (small images, one
repeat); no timing is asserted anywhere.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the core benchmark compares against scikit-learn")
pytest.importorskip("scipy", reason="the core benchmark compares against scipy.stats")
pytest.importorskip("skimage", reason="the core benchmark's photo comes from scikit-image")

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"

EXPECTED = {
    "W1": {"pixgmm", "pixgmm_first", "floor", "sklearn", "numpy", "scipy"},
    "W2": {"pixgmm", "sklearn"},
    "W3": {"pixgmm", "sklearn"},
    "cold": {"cached", "uncached", "python"},
}


SLOW = {"sklearn", "numpy", "scipy"}  # the BLAS-based contenders

# Accuracy bounds on "max rel. Δ log p" (|log p - log p_ref| / max(1, |log p_ref|) against
# tests/reference.py's float64 per-pixel loop). A float32 output is rounded to 2**-24 relative
# (6e-8): a float32 log-density is off by at most that relative to its magnitude, and the log
# of a float32 density by at most 6e-8 absolute; 1e-6 leaves room for the few float32
# operations before the rounding and nothing more (observed: 4e-9 and 6e-8). A float64 result
# computed by any correct method differs from the loop by rounding only (observed: 2e-16 for
# pixgmm's direct kernel, 3e-14 for scikit-learn); 1e-9 is the engine tests' own tolerance.
TOLERANCE = {"float32": 1e-6, "float64": 1e-9}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    md, js = out / "results.md", out / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(md), "--json", str(js)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return md.read_text(encoding="utf-8"), json.loads(js.read_text(encoding="utf-8")), js


def test_every_contender_has_a_finite_ratio(quick_run):
    _, data, _ = quick_run
    seen = {}
    for row in data["rows"]:
        seen.setdefault(row["workload"], set()).add(row["name"])
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
        assert math.isfinite(row["median_s"]) and row["median_s"] > 0, row
    assert seen == EXPECTED


def test_every_contender_agrees_with_the_reference(quick_run):
    # every row that computes densities is checked against the independent reference
    _, data, _ = quick_run
    for row in data["rows"]:
        if row["workload"] == "cold" or row["name"] == "floor":
            assert row["max_log_diff"] is None, row
            continue
        assert row["max_log_diff"] is not None, row
        assert row["max_log_diff"] < TOLERANCE[row["out_dtype"]], row


def test_blas_contenders_timed_with_one_and_two_threads(quick_run):
    text, data, _ = quick_run
    for row in data["rows"]:
        if row["name"] in SLOW:
            times = row["blas"]["median_s"]
            assert set(times) == {"1", "2"}, row
            kept = row["blas"]["kept"]
            assert times[str(kept)] == min(times.values()), row
            assert row["repeats"] >= 3, row
        else:
            assert row["blas"] is None, row
    assert "| Workload | Contender | 1 BLAS thread | 2 BLAS threads | kept |" in text


def test_pixgmm_rows_name_their_engine(quick_run):
    _, data, _ = quick_run
    engines = {(r["workload"], r["name"]): r["engine"] for r in data["rows"]}
    # quick sizes: a 0.12 MP photo is below the colour table's 2**20 pixels
    assert engines[("W1", "pixgmm")] == "separable"
    assert engines[("W2", "pixgmm")] == "direct"
    assert engines[("W3", "pixgmm")] == "direct"


def test_markdown_names_machine_load_and_targets_for_this_run(quick_run):
    text, data, _ = quick_run
    info = data["machine"]
    assert info["numpy"] in text and info["numba"] in text and info["cpu"] in text
    assert f"{info['cores']} cores" in text
    assert len(info["load_start"]) == 3 and len(info["load_end"]) == 3
    assert "Load average (1 / 5 / 15 min)" in text
    assert ("OPENBLAS_CORETYPE=" in text) == (info["blas_env"]["OPENBLAS_CORETYPE"] is not None)
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    blas_table = 1 + sum(r["name"] in SLOW for r in data["rows"])
    # one header per workload plus one line per contender, plus the BLAS table
    assert len(table_rows) == len(EXPECTED) + sum(len(v) for v in EXPECTED.values()) + blas_table
    targets = [line for line in text.splitlines() if line.startswith("- ")]
    assert len(targets) == 8
    assert all(line.endswith((" — met in this run", " — NOT met in this run")) for line in targets)


def test_spread_of_several_runs(quick_run, tmp_path):
    _, data, js = quick_run
    out = tmp_path / "spread.md"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--summarize", str(js), str(js), "--spread-output", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = out.read_text(encoding="utf-8")
    rows = [
        line
        for line in text.splitlines()
        if line.startswith(("| W1 ", "| W2 ", "| W3 ", "| cold "))
    ]
    assert len(rows) == len(data["rows"])
    # two copies of one run: min, median and max coincide, and the spread is 1.00
    assert all(line.endswith("| 1.00 |") for line in rows)
    assert "met in " in text and " of 2 runs" in text


# -- benchmarks/bench_peers.py --quick: pixgmm's parts only ----------------------------------

PEERS = SCRIPT.with_name("bench_peers.py")
PIXGMM_PARTS = ("floor", "pixgmm-api", "pixgmm-dask", "pixgmm-cli")
CLASSIFY_KEYS = {"pixgmm-api", "pixgmm-dask", "pixgmm-cli", "floor/GDAL defaults",
                 "floor/every thread"}  # fmt: skip


@pytest.fixture(scope="module")
def peers_run(tmp_path_factory):
    for name in ("rasterio", "rioxarray", "pyogrio", "shapely", "psutil", "dask"):
        pytest.importorskip(name, reason="bench_peers.py writes and reads GeoTIFFs and vectors")
    out = tmp_path_factory.mktemp("peers")
    md = out / "peers.md"
    # Only this interpreter's folder on the path: GRASS and OTB are absent, as in CI.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    proc = subprocess.run(
        [sys.executable, str(PEERS), "--quick", "--only", ",".join(PIXGMM_PARTS),
         "--output", str(md)],
        capture_output=True, text=True, timeout=900, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    data = json.loads(md.with_suffix(".json").read_text(encoding="utf-8"))
    return md.read_text(encoding="utf-8"), data, proc.stdout


def test_peers_skips_absent_tools_and_says_how_to_install_them(peers_run):
    text, data, stdout = peers_run
    assert "apt-get install grass-core" in data["skipped"]["grass"]
    assert "apt-get install otb-bin" in data["skipped"]["otb"]
    assert "skipping grass" in stdout and "skipping otb" in stdout
    assert "**Skipped:**" in text and "apt-get install grass-core" in text
    for step in data["results"].values():
        assert not {r["contender"] for r in step.values()} & {"grass", "otb"}


def test_peers_times_every_part_of_pixgmm_and_the_floor(peers_run):
    _, data, _ = peers_run
    res = data["results"]
    # `pixgmm fit IMAGE --training` from the polygons, beside the API's fit on the label raster
    assert set(res["train"]) == {"pixgmm-api", "pixgmm-cli"}
    for step in ("classify-crop", "classify-full"):
        assert set(res[step]) == CLASSIFY_KEYS
    for step in res.values():
        for key, rec in step.items():
            assert rec["failed"] is None, (key, rec["failed"])
            assert math.isfinite(rec["median_s"]) and rec["median_s"] > 0, key
            assert rec["min_s"] <= rec["median_s"] <= rec["max_s"], key
            assert rec["peak_rss_bytes"] > 0, key


def test_peers_maps_read_back_and_agree(peers_run):
    # the maps of the API, Dask and the command line are decoded to class values (the CLI's
    # indices included) and agree with each other and, mostly, with the truth
    _, data, _ = peers_run
    assert data["creation_options_source"] == "pixgmm"
    for size in ("crop", "full"):
        agree = data["agreement"][size]
        assert set(agree["tools"]) == {"pixgmm-api", "pixgmm-dask", "pixgmm-cli"}
        for key, tool in agree["tools"].items():
            assert not tool["read_as"].startswith("unreadable"), (key, tool["read_as"])
            assert tool["truth_agreement"] > 0.9, (key, tool)
            assert tool["nodata_pixels_given_a_class"] == 0, key
        assert len(agree["pairs"]) == 3
        for pair in agree["pairs"]:
            assert pair["agreement"] >= 0.999, pair


def test_peers_reports_targets_machine_and_the_cli_fit(peers_run):
    text, data, _ = peers_run
    assert data["targets"]
    assert all(
        line.endswith(
            (" — met in this run", " — NOT met in this run", ": not measured in this run")
        )
        for line in data["targets"]
    )
    assert data["cli_fit"].startswith("available")  # `pixgmm fit IMAGE --training`
    assert len(data["machine"]["load_start"]) == 3 and len(data["machine"]["load_end"]) == 3
    assert "Load average (1 / 5 / 15 min)" in text and "## Commands" in text


def test_peers_unknown_contender_is_a_usage_error():
    proc = subprocess.run(
        [sys.executable, str(PEERS), "--quick", "--only", "pixgmm-api,qgis"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--only" in proc.stderr and "qgis" in proc.stderr
