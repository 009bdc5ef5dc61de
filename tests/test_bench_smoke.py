"""Smoke test of ``benchmarks/bench_core.py --quick``: it runs and reports every contender.

A correctness check of the benchmark script only (small images, one repeat); no timing is
asserted anywhere.
"""

from __future__ import annotations

import json
import math
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


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    md, js = out / "results.md", out / "results.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--output", str(md), "--json", str(js)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return md.read_text(encoding="utf-8"), json.loads(js.read_text(encoding="utf-8"))


def test_every_contender_has_a_finite_ratio(quick_run):
    _, data = quick_run
    seen = {}
    for row in data["rows"]:
        seen.setdefault(row["workload"], set()).add(row["name"])
        assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
        assert math.isfinite(row["median_s"]) and row["median_s"] > 0, row
    assert seen == EXPECTED


def test_contenders_agree_with_pixgmm(quick_run):
    # every contender that returns densities matches pixgmm's float64 log-density
    _, data = quick_run
    for row in data["rows"]:
        if row["max_log_diff"] is not None:
            tol = 1e-2 if row["name"] in ("pixgmm", "pixgmm_first") else 1e-4
            assert row["max_log_diff"] < tol, row


def test_markdown_table_names_machine_and_rows(quick_run):
    text, data = quick_run
    assert data["machine"]["numpy"] in text and data["machine"]["numba"] in text
    assert data["machine"]["cpu"] in text
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    # one header per workload plus one line per contender
    assert len(table_rows) == len(EXPECTED) + sum(len(v) for v in EXPECTED.values())
    assert "Targets (reported, not asserted):" in text
