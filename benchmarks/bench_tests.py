"""How long the test suite takes, cold (numba compiles every kernel) and warm.

Runs ``python -m pytest`` twice in new processes with ``NUMBA_CACHE_DIR`` pointing at a
fresh, empty directory: the first run ("cold", as on a fresh clone: every kernel is
compiled, and cached for the test subprocesses and the next run) and the second run
("warm", every kernel loaded from that cache). Both use the same pytest arguments;
wall time, the CPU time of pytest and its child processes, and pytest's closing line are
recorded with the machine and its load average before and after each run.

Writes ``benchmarks/test_times.md`` and ``.json``; with ``--pytest-args`` (a subset of the
suite) or ``--output`` the results go elsewhere (by default the temporary directory), so
a partial run never replaces the committed results.

Usage::

    python benchmarks/bench_tests.py                                    # the whole suite, twice
    python benchmarks/bench_tests.py --pytest-args tests/test_package.py  # a subset (smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, format_load, load_average

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCRATCH = Path(tempfile.gettempdir()) / "pixgmm-bench"
SUMMARY = re.compile(r"^=+ (.*\d+ (passed|failed|error|errors|skipped).*) =+$")


def run_pytest(label, pytest_args, cache_dir):
    """One pytest process (and its children): wall and CPU seconds, exit code, summary."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env.pop("PIXGMM_NUMBA_CACHE", None)  # the cache is what is measured
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
    print(f"{label}: {' '.join(cmd)} (NUMBA_CACHE_DIR={cache_dir})", flush=True)
    load_start = load_average()
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    lines = proc.stdout.strip().splitlines()
    summary = next((m.group(1) for line in reversed(lines) if (m := SUMMARY.match(line))), None)
    print(f"  {wall:.1f} s, exit {proc.returncode}: {summary}", flush=True)
    # pytest's short summary (its default -rfE): which tests failed or errored, and why
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    for line in failures:
        print(f"  {line}", flush=True)
    return {
        "label": label,
        "command": " ".join(["python", "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]),
        "exit_code": proc.returncode,
        "summary": summary or (lines[-1] if lines else ""),
        "wall_s": wall,
        "cpu_s": (after.children_user - before.children_user)
        + (after.children_system - before.children_system),
        "load_start": load_start,
        "load_end": load_average(),
        "cached_files": sum(1 for _ in Path(cache_dir).rglob("*.nbi")),
        "failures": failures,
    }


def markdown(res):
    m = res["machine"]
    lines = [
        "# pixgmm test-suite times",
        "",
        f"Produced by `{res['invocation']}` on {m['date']}: {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}, {m['os']}. Cold: `NUMBA_CACHE_DIR` set to a new empty "
        "directory, so every numba kernel is compiled (as on a fresh clone); warm: the same "
        "command again with that directory populated. CPU time is pytest's and its child "
        "processes' (user + system).",
        "",
        "| run | command | wall time | CPU time | result | numba cache index files after | "
        "load average before -> after |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for r in res["runs"]:
        lines.append(
            f"| {r['label']} | `{r['command']}` | {r['wall_s'] / 60:.1f} min ({r['wall_s']:.0f} s) "
            f"| {r['cpu_s'] / 60:.1f} min ({r['cpu_s']:.0f} s) | {r['summary']} "
            f"(exit {r['exit_code']}) | {r['cached_files']} | "
            f"{format_load(r['load_start'])} -> {format_load(r['load_end'])} |"
        )
    for r in res["runs"]:
        if r.get("failures"):
            lines += ["", f"Failed in the {r['label']} run:", ""]
            lines += [f"- `{line}`" for line in r["failures"]]
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--pytest-args",
        default="",
        help="arguments for pytest, one string (default: none, the whole suite as configured)",
    )
    p.add_argument(
        "--runs",
        default="cold,warm",
        help="which runs, in order: cold,warm (default), cold or warm",
    )
    p.add_argument("--output", type=Path, default=None, help="Markdown results file")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    pytest_args = shlex.split(args.pytest_args)
    out_md = args.output or (
        SCRATCH / "subset" / "test_times.md" if pytest_args else HERE / "test_times.md"
    )
    runs = [r for r in args.runs.split(",") if r]
    if not set(runs) <= {"cold", "warm"}:
        p.error(f"--runs takes cold and/or warm, got {args.runs!r}")
    cache_dir = Path(tempfile.mkdtemp(prefix="pixgmm-numba-cache-"))
    try:
        results = []
        for label in runs:
            if label == "warm" and "cold" not in runs:  # populate the cache first, untimed
                run_pytest("populate the cache (untimed)", pytest_args, cache_dir)
            results.append(run_pytest(label, pytest_args, cache_dir))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    res = {
        "invocation": "python benchmarks/bench_tests.py"
        + "".join(" " + shlex.quote(a) for a in argv),
        "runs": results,
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
    }
    text = markdown(res)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text, encoding="utf-8")
    out_md.with_suffix(".json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print()
    print(text)
    print(f"wrote {out_md} and {out_md.with_suffix('.json').name}")
    return 0 if all(r["exit_code"] in (0, 5) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
