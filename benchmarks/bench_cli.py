"""The command line's timings, as a user meets them: each command a new process.

Measures, with the numba cache already populated (one untimed warm-up run of each
command first, reported separately as the first run):

- ``pixgmm --help``: wall time (the command line imports only click for it), beside a
  ``python -c pass`` process (the interpreter's own start-up).
- ``pixgmm skin photo.jpg --save mask,overlay``: one 12-megapixel JPEG (the bundled photo
  resized to 4000 x 3000 with Pillow) end to end: Python start-up, imports, JPEG decoding,
  the colour table build, both PNGs written. Wall time, user and system CPU, and the
  process's peak resident memory (``ru_maxrss`` from ``wait4``).
- ``pixgmm demo``: the same for the bundled demo (four outputs of the 512 x 512 photo).

Writes ``benchmarks/cli_results.md`` and ``.json`` (with ``--quick``: fewer repeats, and
the files go to the temporary directory, never over the committed results).

Usage::

    python benchmarks/bench_cli.py            # about 1-2 minutes on 2 cores
    python benchmarks/bench_cli.py --quick    # 2 repeats each (a smoke run)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, format_load, load_average

HERE = Path(__file__).resolve().parent
SCRATCH = Path(tempfile.gettempdir()) / "pixgmm-bench"


def pixgmm_command():
    """The ``pixgmm`` console script of this interpreter, else ``python -m pixgmm.cli``."""
    script = Path(sys.executable).with_name("pixgmm")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)], "pixgmm"
    return [sys.executable, "-m", "pixgmm.cli"], "python -m pixgmm.cli"


def timed(cmd, cwd=None):
    """Run ``cmd``; ``(wall s, user s, sys s, peak RSS bytes)`` of that one process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss * 1024


def make_photo(path):
    """The bundled photo resized to 4000 x 3000 (12 megapixels), saved as a JPEG."""
    from importlib import resources

    from PIL import Image

    src = resources.files("pixgmm").joinpath("data", "astronaut.jpg")
    with src.open("rb") as fh, Image.open(fh) as im:
        big = im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
    big.save(path, quality=90)
    return path


def series(cmd, repeats, cwd=None):
    """Time ``cmd`` ``repeats`` times after one untimed warm-up run (reported as ``first``)."""
    first = timed(cmd, cwd)
    runs = [timed(cmd, cwd) for _ in range(repeats)]
    walls = [r[0] for r in runs]
    return {
        "command": " ".join(cmd),
        "first_wall_s": first[0],
        "wall_s": [r[0] for r in runs],
        "user_s": [r[1] for r in runs],
        "sys_s": [r[2] for r in runs],
        "peak_rss_bytes": [r[3] for r in runs],
        "min_s": min(walls),
        "median_s": statistics.median(walls),
        "max_s": max(walls),
    }


def markdown(res):
    m = res["machine"]
    lines = [
        "# pixgmm command-line timings",
        "",
        f"Produced by `{res['invocation']}` on {m['date']}: {m['cpu']}, {m['cores']} cores, "
        f"Python {m['python']}, {m['os']}. Load average (1 / 5 / 15 min) "
        f"{format_load(m['load_start'])} at the start, {format_load(m['load_end'])} at the end. "
        f"Command line run as `{res['runner']}`; numba's cache populated by the untimed "
        f"first run of each command. {res['repeats']} timed runs each, every one a new process.",
        "",
        f"Input: `{res['photo']['name']}`, {res['photo']['width']} x {res['photo']['height']} "
        f"JPEG, {res['photo']['bytes'] / 1e6:.2f} MB (the bundled photo resized with Pillow).",
        "",
        "| command | wall min / median / max | first run | user CPU (median) | "
        "system CPU (median) | peak memory (max) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, label in (
        ("python", "`python -c pass` (interpreter start-up)"),
        ("help", "`pixgmm --help`"),
        ("skin", "`pixgmm skin photo.jpg --save mask,overlay` (12 MP)"),
        ("demo", "`pixgmm demo`"),
    ):
        s = res["series"][key]
        lines.append(
            f"| {label} | {s['min_s']:.2f} / {s['median_s']:.2f} / {s['max_s']:.2f} s | "
            f"{s['first_wall_s']:.2f} s | {statistics.median(s['user_s']):.2f} s | "
            f"{statistics.median(s['sys_s']):.2f} s | "
            f"{max(s['peak_rss_bytes']) / 1e9:.2f} GB |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=None, help="timed runs per command (default 5)")
    p.add_argument("--quick", action="store_true", help="2 runs each; results to the temp dir")
    p.add_argument("--output", type=Path, default=None, help="Markdown results file")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 5)
    out_md = args.output or (
        SCRATCH / "quick" / "cli_results.md" if args.quick else HERE / "cli_results.md"
    )
    cmd, runner = pixgmm_command()
    load_start = load_average()
    work = Path(tempfile.mkdtemp(prefix="pixgmm-bench-cli-"))
    try:
        photo = make_photo(work / "photo.jpg")
        from PIL import Image

        with Image.open(photo) as im:
            width, height = im.size
        res = {
            "invocation": "python benchmarks/bench_cli.py" + ("".join(" " + a for a in argv)),
            "runner": runner,
            "repeats": repeats,
            "photo": {
                "name": photo.name,
                "width": width,
                "height": height,
                "bytes": photo.stat().st_size,
            },
            "series": {},
        }
        plan = {
            "python": [sys.executable, "-c", "pass"],
            "help": [*cmd, "--help"],
            "skin": [
                *cmd,
                "skin",
                str(photo),
                "--out",
                str(work / "skin"),
                "--save",
                "mask,overlay",
                "--overwrite",
                "--quiet",
            ],
            "demo": [*cmd, "demo", "--out", str(work / "demo"), "--overwrite", "--quiet"],
        }
        for key, c in plan.items():
            print(f"{key}: {' '.join(c)}", flush=True)
            res["series"][key] = series(c, repeats, cwd=work)
            s = res["series"][key]
            print(f"  {s['min_s']:.2f} / {s['median_s']:.2f} / {s['max_s']:.2f} s", flush=True)
        written = sorted(q.name for q in (work / "skin").iterdir())
        res["skin_outputs"] = written
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["machine"] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_start": load_start,
        "load_end": load_average(),
    }
    text = markdown(res)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text, encoding="utf-8")
    out_md.with_suffix(".json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print()
    print(text)
    print(f"wrote {out_md} and {out_md.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
