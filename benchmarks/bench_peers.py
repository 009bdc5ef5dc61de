"""pixgmm against the GIS tools that classify multispectral scenes: GRASS GIS and Orfeo ToolBox.

Workload (``_peers_scene.py``; generated once, cached in the temporary directory)
    A Sentinel-2-sized tile, 5490 x 5490 pixels, 10 uint16 bands (B2 ... B12), 6 classes
    each drawn from one full-covariance Gaussian over warped-Voronoi parcels, a nodata
    wedge; a tiled, Deflate-compressed GeoTIFF in UTM 33N. A 2048 x 2048 crop of it.
    Training polygons (GeoPackage) and the same polygons rasterised (GeoTIFF label
    raster); validation points.

Steps, every one a new process with files in and files out (``_peers_tools.py`` says how
each tool runs them and with which threads)
    train          the full tile's training data -> a model file (or GRASS signature)
    classify-crop  the crop -> a label map + confidence map (GRASS: the reject map)
    classify-full  the full tile -> the same
    The I/O floor reads the image and writes a uint8 and a float32 GeoTIFF of its size.

Each run's wall time (from the process's start to its exit) and the peak resident memory
of its process tree (polled every 20 ms from /proc: the sum of resident memory over the
tree, and each process's high-water mark). Each run
is done once untimed first (numba's cache, the page cache; its time is reported as the
first run), then ``--repeats`` times, the contenders of a step taking turns. The last
run's maps are compared: with the truth, pair by pair, and the rejects apart
(``_peers_compare.py``). The targets of the issue are printed as met or not, never asserted.

A tool that is not installed is skipped, and the results say so and how to install it.

Usage::

    python benchmarks/bench_peers.py                   # writes benchmarks/peers_results.md
    python benchmarks/bench_peers.py --quick           # 256 x 256 tile, 1 run (smoke test)
    python benchmarks/bench_peers.py --only grass,pixgmm-cli --repeats 5 --keep /tmp/peers
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _peers_compare as cmp
import _peers_scene as scene
import _peers_tasks as tasks
import _peers_tools as tools
from _machine import cpu_model, format_load, load_average

HERE = Path(__file__).resolve().parent
CACHE = Path(tempfile.gettempdir()) / "pixgmm-bench"
STEPS = ("train", "classify-crop", "classify-full")
PIXGMM = ("pixgmm-cli", "pixgmm-api", "pixgmm-dask")
#: Targets of the issue: pixgmm's command line on the crop within 1.5x the I/O floor and 6x
#: faster than GRASS; on the full tile 6x GRASS and 20x OTB (classify), 8x GRASS (train),
#: under 1 GB; labels equal to GRASS's on 99.99% of the pixels both classify.
TARGET = {"crop_floor": 1.5, "crop_grass": 6.0, "full_grass": 6.0, "full_otb": 20.0,
          "train_grass": 8.0, "memory_gb": 1.0, "grass_agreement": 0.9999}  # fmt: skip


# -- running one process ---------------------------------------------------------------------


def _status_kb(pid, keys=("VmRSS:", "VmHWM:")):
    """``[VmRSS, VmHWM]`` of a process in kB (0 where /proc no longer has them)."""
    out = [0, 0]
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                for i, k in enumerate(keys):
                    if line.startswith(k):
                        out[i] = int(line.split()[1])
    except OSError:
        pass
    return out


def _tree_memory(proc):
    """``(sum of RSS over the process tree, largest high-water mark of one process)``, bytes."""
    import psutil

    try:
        pids = [proc.pid, *(c.pid for c in proc.children(recursive=True))]
    except psutil.Error:
        return 0, 0
    rss, hwm = zip(*(_status_kb(pid) for pid in pids))
    return 1024 * sum(rss), 1024 * max(hwm)


def measure(run, work, log):
    """Run ``run`` once in a new process: wall s, peak memory, CPU s, exit code.

    Memory is polled every 20 ms from /proc: the largest sum of resident memory over the
    process tree, and the largest high-water mark (``VmHWM``, which also catches peaks
    between two polls) of any one process in it; the peak is the larger of the two.
    (``ru_maxrss`` is not used: a child started from this process inherits this process's
    resident size in it before it executes the command.)
    """
    import psutil

    shutil.rmtree(run.out_dir, ignore_errors=True)
    run.out_dir.mkdir(parents=True)
    env = {**os.environ, **run.env}
    peak = [0, 0]
    load = (load_average() or [None])[0]
    done = threading.Event()
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in run.argv], env=env, cwd=work, stdout=fh,
                                stderr=subprocess.STDOUT)  # fmt: skip
    ps = psutil.Process(proc.pid)

    def poll():
        while not done.is_set():
            tree, hwm = _tree_memory(ps)
            peak[0], peak[1] = max(peak[0], tree), max(peak[1], hwm)
            done.wait(0.02)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    done.set()
    poller.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {
        "load_1min": load,
        "wall_s": wall,
        "peak_rss_bytes": max(peak),
        "tree_rss_bytes": peak[0],
        "largest_process_hwm_bytes": peak[1],
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "returncode": proc.returncode,
    }


def _tail(log, n=6):
    lines = [ln for ln in Path(log).read_text(errors="replace").splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


def run_step(runs, repeats, work, warm_up, results):
    """Each run once untimed (the first run), then ``repeats`` rounds in turn."""
    logs = Path(work) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    ok = []
    for run in runs:
        rec = results.setdefault(run.step, {}).setdefault(run.key, {
            "contender": run.contender, "variant": run.variant, "command": run.command(),
            "scripts": run.scripts, "runs": [], "first": None, "failed": None,
        })  # fmt: skip
        if not warm_up:
            ok.append(run)
            continue
        log = logs / f"{run.key.replace('/', '-')}-{run.step}-first.log"
        print(f"  {run.step} {run.key}: first run ...", end=" ", flush=True)
        m = measure(run, work, log)
        print(f"{m['wall_s']:.2f} s", flush=True)
        if m["returncode"] != 0:
            rec["failed"] = f"exit {m['returncode']}: {_tail(log)}"
            print(f"    failed: {rec['failed']}", flush=True)
            continue
        rec["first"] = m
        ok.append(run)
    for r in range(repeats):
        for run in list(ok):
            rec = results[run.step][run.key]
            log = logs / f"{run.key.replace('/', '-')}-{run.step}-{r}.log"
            m = measure(run, work, log)
            print(f"  {run.step} {run.key}: run {r + 1}: {m['wall_s']:.2f} s, "
                  f"{m['peak_rss_bytes'] / 1e9:.2f} GB", flush=True)  # fmt: skip
            if m["returncode"] != 0:
                rec["failed"] = f"exit {m['returncode']}: {_tail(log)}"
                print(f"    failed: {rec['failed']}", flush=True)
                ok.remove(run)
                continue
            rec["runs"].append(m)
    for run in ok:
        rec = results[run.step][run.key]
        walls = [m["wall_s"] for m in rec["runs"]]
        rec.update(median_s=statistics.median(walls), min_s=min(walls), max_s=max(walls),
                   peak_rss_bytes=max(m["peak_rss_bytes"] for m in rec["runs"]),
                   load=[m["load_1min"] for m in rec["runs"]])  # fmt: skip
    return ok


# -- what pixgmm writes ----------------------------------------------------------------------


def creation_options_of(path):
    """The creation options a GeoTIFF was written with, as rasterio keywords."""
    import rasterio

    with rasterio.open(path) as src:
        p = src.profile
    out = {"compress": str(p.get("compress", "none")).lower(), "tiled": bool(p.get("tiled"))}
    if p.get("tiled"):
        out.update(blockxsize=p["blockxsize"], blockysize=p["blockysize"])
    with rasterio.open(path) as src:
        predictor = src.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR")
    if predictor and predictor != "1":
        out["predictor"] = int(predictor)
    return out


def _pixgmm_info():
    code = ("import pixgmm, json, numba; print(json.dumps({'version': getattr(pixgmm, "
            "'__version__', '?'), 'file': pixgmm.__file__, 'numba_threads': "
            "numba.config.NUMBA_NUM_THREADS}))")  # fmt: skip
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, check=True)  # fmt: skip
        info = json.loads(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"error": str(exc)}
    src = Path(info["file"]).resolve().parent
    git = {"commit": ["log", "-1", "--format=%h %cd", "--date=short", "--", "."],
           "uncommitted_changes": ["status", "--porcelain", "--", "."]}  # fmt: skip
    for key, args in git.items():
        try:
            res = subprocess.run(["git", "-C", str(src), *args], capture_output=True,
                                 text=True, timeout=30)  # fmt: skip
        except OSError:
            info[key] = "unknown (no git)"
            continue
        info[key] = res.stdout.strip() if key == "commit" else bool(res.stdout.strip())
    return info


def _models_of(folder):
    import pixgmm

    out = {}
    for p in sorted(Path(folder).glob("*.json")):
        m = pixgmm.Mixture.load(p)
        out[int(p.stem)] = (m.means[0], m.covariances[0])
    return out


# -- the report ------------------------------------------------------------------------------


def _s(x):
    return "—" if x is None else f"{x:.2f} s" if x < 100 else f"{x:.0f} s"


def _gb(b):
    return "—" if b is None else f"{b / 1e9:.2f} GB"


def kept(results, step, contender):
    """The fastest variant of ``contender`` in ``step`` (its key and record), or None."""
    recs = [(k, r) for k, r in results.get(step, {}).items()
            if r["contender"] == contender and "median_s" in r]  # fmt: skip
    return min(recs, key=lambda kr: kr[1]["median_s"]) if recs else None


def targets(res):
    out = []
    R = res["results"]

    def med(step, c):
        k = kept(R, step, c)
        return k[1]["median_s"] if k else None

    def line(text, value, goal, higher=True):
        if value is None:
            out.append(f"- {text}: not measured in this run")
            return
        met = value >= goal if higher else value <= goal
        out.append(f"- {text}: {value:.2f}x (target {'>=' if higher else '<='} {goal}x) — "
                   f"{'met' if met else 'NOT met'} in this run")  # fmt: skip

    cli, floor, grass = (med("classify-crop", c) for c in ("pixgmm-cli", "floor", "grass"))
    line("crop: `pixgmm classify` (labels, confidence, `--chi2-level`) / I/O floor",
         cli / floor if cli and floor else None, TARGET["crop_floor"], higher=False)  # fmt: skip
    line("crop: GRASS `i.maxlik` + export / `pixgmm classify`",
         grass / cli if cli and grass else None, TARGET["crop_grass"])  # fmt: skip
    for c in PIXGMM:
        p, g, o = (med("classify-full", x) for x in (c, "grass", "otb"))
        line(f"full tile, classify: GRASS / {c}", g / p if p and g else None, TARGET["full_grass"])
        line(f"full tile, classify: OTB / {c}", o / p if p and o else None, TARGET["full_otb"])
    for c in ("pixgmm-api", "pixgmm-cli"):
        p, g = med("train", c), med("train", "grass")
        line(f"full tile, train: GRASS / {c}", g / p if p and g else None, TARGET["train_grass"])
    for c in PIXGMM:
        k = kept(R, "classify-full", c)
        if k:
            gb = k[1]["peak_rss_bytes"] / 1e9
            met = gb < TARGET["memory_gb"]
            out.append(f"- full tile, classify: {c} peak memory {gb:.2f} GB (target < 1 GB) — "
                       f"{'met' if met else 'NOT met'} in this run")  # fmt: skip
    for size in ("crop", "full"):
        agree = res.get("agreement", {}).get(size)
        if not agree:
            continue
        for pair in agree["pairs"]:
            a, b = pair["a"].split("/")[0], pair["b"].split("/")[0]
            if {a, b} & {"grass"} and {a, b} & set(PIXGMM) and pair["agreement"] is not None:
                other = pair["b"] if a == "grass" else pair["a"]
                met = pair["agreement"] >= TARGET["grass_agreement"]
                out.append(f"- {size}: labels of {other} equal to GRASS's on "
                           f"{pair['agreement']:.5%} of the pixels both classify "
                           f"({pair['differ']} differ; target >= 99.99%) — "
                           f"{'met' if met else 'NOT met'} in this run")  # fmt: skip
    return out


def _table(res, step):
    R = res["results"].get(step, {})
    floor = kept(res["results"], step, "floor")
    cli = kept(res["results"], step, "pixgmm-cli")
    lines = ["| contender | median | min - max | first run | peak memory (tree) | "
             "x I/O floor | x pixgmm CLI | load (1 min) at the runs |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, r in R.items():
        if r.get("failed") and "median_s" not in r:
            lines.append(f"| {key} | failed | | | | | | |")
            continue
        if "median_s" not in r:
            continue
        first = r["first"]["wall_s"] if r.get("first") else None
        fl = f"{r['median_s'] / floor[1]['median_s']:.2f}x" if floor else "—"
        cl = f"{r['median_s'] / cli[1]['median_s']:.2f}x" if cli else "—"
        load = ", ".join("?" if x is None else f"{x:.1f}" for x in r["load"])
        lines.append(f"| {key} | {_s(r['median_s'])} | {_s(r['min_s'])} - {_s(r['max_s'])} | "
                     f"{_s(first)} | {_gb(r['peak_rss_bytes'])} | {fl} | {cl} | {load} |")  # fmt: skip
    return lines


def _agreement_lines(agree):
    lines = ["| map | read as | classified | rejected | nodata pixels given a class | "
             "= truth (classified pixels) | validation points OA |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for key, t in agree["tools"].items():
        ta = "—" if t["truth_agreement"] is None else f"{t['truth_agreement']:.4%}"
        pa = "—" if t["points_accuracy"] is None else f"{t['points_accuracy']:.2%}"
        lines.append(f"| {key} | {t['read_as']} | {t['classified_share']:.4%} | "
                     f"{t['rejected_share']:.4%} | {t['nodata_pixels_given_a_class']:,} | {ta} | "
                     f"{pa} ({t['points_classified']} points) |")  # fmt: skip
    lines += ["", "| pair | pixels both classify | differ | agreement |", "|---|---:|---:|---:|"]
    for p in agree["pairs"]:
        ag = "—" if p["agreement"] is None else f"{p['agreement']:.5%}"
        lines.append(f"| {p['a']} - {p['b']} | {p['pixels']:,} | {p['differ']:,} | {ag} |")
    return lines


def markdown(res):
    m = res["machine"]
    sc = res["scene"]
    L = [
        "# pixgmm against GRASS GIS and Orfeo ToolBox (`benchmarks/bench_peers.py`)", "",
    ]  # fmt: skip
    if res.get("note"):
        L += [f"**{res['note']}**", ""]
    px = res["pixgmm"]
    L += [
        f"Produced by `{res['invocation']}` on {m['date']}; the run took "
        f"{res['duration_min']:.1f} min. Machine: {m['cpu']}, {m['cores']} cores, "
        f"{m['memory_gb']:.1f} GB RAM, {m['os']}, Python {m['python']}. Load average "
        f"(1 / 5 / 15 min) {format_load(m['load_start'])} at the start, "
        f"{format_load(m['load_end'])} at the end, on {m['cores']} cores; the 1-minute load "
        f"at the start of the timed runs ranged from {m['load_runs'][0]:.1f} to "
        f"{m['load_runs'][2]:.1f} (median {m['load_runs'][1]:.1f}): other jobs shared the "
        "cores, and a tool using both cores loses more to them than a single-threaded one.",
        "",
        f"pixgmm measured: `{px.get('file', '?')}` (version {px.get('version', '?')}, commit "
        f"{px.get('commit', '?')}{', with uncommitted changes' if px.get('uncommitted_changes') else ''}"
        f"; {px.get('numba_threads', '?')} numba threads). Tools: "
        + "; ".join(f"{k} {v}" for k, v in res["versions"].items()) + ".", "",
        f"Scene: {sc['size']} x {sc['size']} pixels, 10 uint16 bands ({', '.join(sc['bands'])}),"
        f" {len(sc['classes'])} classes ({', '.join(sc['classes'].values())}), "
        f"{sc['nodata_pixels']:,} nodata pixels; `scene.tif` {sc['scene_bytes'] / 1e6:.0f} MB "
        f"(Deflate, predictor 2, 512 x 512 tiles). Crop: {sc['crop']} x {sc['crop']} "
        f"(offset {sc['crop_offset']}). Training: {sc['polygons_per_class']} polygons per class, "
        f"{sum(sc['training_pixels'].values()):,} pixels ({', '.join(f'{k}: {v:,}' for k, v in sc['training_pixels'].items())}). "
        f"Generated in {sc['generation_s']:.0f} s (cached between runs).", "",
        f"Output creation options (pixgmm's, read from a map `pixgmm classify` wrote"
        f"{'' if res['creation_options_source'] == 'pixgmm' else ' — NOT found, defaults used'}):"
        f" `{json.dumps(res['creation_options'])}`; GRASS, OTB and the floor write with the "
        "same, GRASS and OTB also with `NUM_THREADS=ALL_CPUS`.", "",
        f"Every figure is wall time of a new process, files in and out; median of "
        f"{res['repeats']} runs"
        + (" (no untimed first run: --quick)" if res["quick"] else
           " after one untimed first run (reported)")
        + ", the contenders of a step taking turns. Peak memory: the largest sum of resident memory over the process "
        "tree (polled every 20 ms), or the largest high-water mark (`VmHWM`) of one process "
        "in it if higher.",
    ]  # fmt: skip
    if res["skipped"]:
        L += ["", "**Skipped:** " + "; ".join(f"{k}: {v}" for k, v in res["skipped"].items())]
    if res.get("cli_fit"):
        L += ["", f"**`pixgmm fit IMAGE --training`**: {res['cli_fit']}"]
    titles = {"train": "Train (full tile)", "classify-crop": "Classify the crop",
              "classify-full": "Classify the full tile"}  # fmt: skip
    for step in STEPS:
        if res["results"].get(step):
            L += ["", f"## {titles[step]}", "", *_table(res, step)]
    L += ["", "## Targets (issue 18), in this run", "", *res["targets"]]
    for size in ("crop", "full"):
        agree = res.get("agreement", {}).get(size)
        if agree:
            L += ["", f"## Agreement of the labels, {size}", "",
                  f"Over the {agree['valid_pixels']:,} pixels with data (truth != nodata); "
                  "a pair is compared on the pixels both classify (not nodata, not rejected).",
                  "", *_agreement_lines(agree)]  # fmt: skip
            if agree.get("confidence"):
                L += [
                    "",
                    "Largest |confidence difference| where both classify: "
                    + "; ".join(f"{k}: {v:.2e}" for k, v in agree["confidence"].items()),
                ]
    if res.get("reject"):
        L += ["", "## Rejects", "", *res["reject_lines"]]
    if res.get("otb_training_pixels"):
        same = res["otb_training_pixels"] == sc["training_pixels"]
        counts = ", ".join(f"{k}: {v:,}" for k, v in res["otb_training_pixels"].items())
        L += ["", f"OTB sampled {counts} training pixels per class from the polygons: "
              + ("the counts of the label raster (pixel-centre rule)." if same else
                 f"NOT the counts of the label raster ({sc['training_pixels']}).")]  # fmt: skip
    if res.get("signature"):
        s = res["signature"]
        L += ["", "## Trained parameters: GRASS `i.gensig` against pixgmm's fit", "",
              f"Largest relative difference over the classes: means {s['mean']:.1e}; "
              f"covariances {s['covariance']:.1e}, and {s['covariance_ml_reg']:.1e} once GRASS's "
              "covariance is divided by n instead of n - 1 and given pixgmm's `reg_covar` "
              "(1.0 for integer pixels); the rest is GRASS's 6 significant digits."]  # fmt: skip
    L += ["", "## Commands", "", "Threads: " + res["threads"], ""]
    for step in STEPS:
        for key, r in res["results"].get(step, {}).items():
            L += [f"- {step}, {key}: `{r['command']}`"]
            for name, text in r["scripts"].items():
                L += ["", f"  `{name}`:", "", "  ```bash",
                      *("  " + ln for ln in text.rstrip().splitlines()), "  ```", ""]  # fmt: skip
    L += ["", "The Python tasks (`benchmarks/_peers_tasks.py`):", "", "```python",
          res["tasks_source"].rstrip(), "```", ""]  # fmt: skip
    return "\n".join(L) + "\n"


# -- main ------------------------------------------------------------------------------------


def analyse(res, results, paths, work, which):
    """Agreement of the maps of the last runs, the rejects, the trained parameters."""
    import rasterio

    agreement, reject_lines = {}, []
    for size in ("crop", "full"):
        step = f"classify-{size}"
        truth_path = paths["crop_truth"] if size == "crop" else paths["truth"]
        with rasterio.open(truth_path) as src:
            truth, transform = src.read(1), src.transform
        pts = cmp.points(paths["validation_gpkg"], transform, truth.shape)
        maps, conf = {}, {}
        for run in res["_runs"][step]:
            if run.contender == "floor" or "median_s" not in results[step].get(run.key, {}):
                continue
            k = kept(results, step, run.contender)
            if k and k[0] == run.key and run.outputs["labels"].is_file():
                maps[run.key] = (run.contender, run.outputs["labels"])
                if "confidence" in run.outputs and run.outputs["confidence"].is_file():
                    conf[run.key] = run.outputs["confidence"]
        if not maps:
            continue
        agree, decoded = cmp.compare(maps, truth, pts)
        keys = list(conf)
        agree["confidence"] = {
            f"{a} - {b}": cmp.confidence_difference(conf[a], conf[b], decoded[a], decoded[b])
            for i, a in enumerate(keys) for b in keys[i + 1 :]
        }  # fmt: skip
        agreement[size] = agree
        grass = [r for r in res["_runs"][step] if r.key in maps and r.contender == "grass"]
        pix = [k for k in maps if maps[k][0] in PIXGMM]
        if grass and grass[0].outputs["reject"].is_file():
            rejected = None
            if pix:
                _, rejected, _ = cmp.decode(maps[pix[0]][0], maps[pix[0]][1])
            g = cmp.grass_reject(grass[0].outputs["reject"], truth, rejected_pixgmm=rejected)
            res.setdefault("reject", {})[size] = g
            line = (
                f"- {size}: GRASS's reject category 1 (squared Mahalanobis distance >= "
                f'{g["category_1_threshold"]}, labelled "0.1%") holds '
                f"{g['category_1_share']:.3%} of the pixels; that threshold is the 0.999 "
                f"quantile for 4 degrees of freedom (i.maxlik's table is fixed, whatever the "
                f"band count), the {g['category_1_level_10_bands']:.4f} quantile for 10 "
                f"bands, which predicts {g['category_1_expected_share_10_bands']:.3%}."
            )
            if pix:
                line += (
                    f" pixgmm's `chi2_level=0.999` uses 10 degrees of freedom (threshold "
                    f"{g['pixgmm_threshold_0_999']:.2f}): {pix[0]} rejects "
                    f"{agree['tools'][pix[0]]['rejected_share']:.3%}"
                )
                if g.get("pixgmm_rejected_in_category_1") is not None:
                    line += (
                        f", and {g['pixgmm_rejected_in_category_1']:.3%} of the pixels it "
                        "rejects are in GRASS's category 1"
                    )
                line += "."
            reject_lines.append(line)
            if size == "crop" and pix and which.get("pixgmm-api") is None:
                level = g["category_1_level_10_bands"]
                out = Path(work) / "out" / "reject-check"
                run = tools.Run("pixgmm-api", "reject check", "check",
                                tools._task("api-classify", paths["crop"],
                                            Path(work) / "out" / "pixgmm-api-train", out, "none",
                                            repr(level)), out)  # fmt: skip
                m = measure(run, work, Path(work) / "logs" / "reject-check.log")
                if m["returncode"] == 0:
                    _, rej, _ = cmp.decode("pixgmm-api", out / "labels.tif")
                    s = cmp.reject_sets(grass[0].outputs["reject"], rej, truth)
                    g["same_level_check"] = s
                    reject_lines.append(
                        f"- crop, same threshold: pixgmm's API with `chi2_level={level:.6f}` "
                        f"(18.465 for 10 bands, untimed) rejects {s['pixgmm_rejected']:,} pixels "
                        f"and GRASS's category 1 holds {s['grass_category_1']:,}: "
                        f"{s['only_grass']} only in GRASS's, {s['only_pixgmm']} only in pixgmm's "
                        f"(the same set on {s['agreement']:.5%} of the pixels; the rest lie near the "
                        "threshold, where the small differences of the trained covariances, "
                        "below, decide).")  # fmt: skip
    res["agreement"] = agreement
    res["reject_lines"] = reject_lines
    otb = kept(results, "train", "otb")
    if otb:
        model = next(r for r in res["_runs"]["train"] if r.key == otb[0]).outputs["model"]
        if model.is_file():
            res["otb_training_pixels"] = {
                str(k): v for k, v in tools.read_otb_counts(model).items()
            }
    tr = kept(results, "train", "grass")
    if tr and (Path(work) / "out" / "pixgmm-api-train").is_dir():
        for run in res["_runs"]["train"]:
            if run.key == tr[0] and run.outputs["signature"].is_file():
                sig = tools.read_grass_signature(run.outputs["signature"])
                res["signature"] = cmp.signature_difference(
                    sig, _models_of(Path(work) / "out" / "pixgmm-api-train")
                )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="a 256 x 256 tile (128 crop), 1 run, no first run; results to the temp dir",
    )
    p.add_argument("--size", type=int, default=None, help="tile size in pixels (default 5490)")
    p.add_argument("--crop", type=int, default=None, help="crop size (default 2048)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per step (default 3)")
    p.add_argument(
        "--only", default=None, help="comma-separated contenders: " + ",".join(tools.CONTENDERS)
    )
    p.add_argument(
        "--grass-ways",
        default="r.external",
        help="how GRASS brings the GeoTIFF in, comma-separated: r.external (a link; the "
        "default), r.in.gdal (a copy in GRASS's format); with both, the faster is kept",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="work in this folder and keep it (GRASS database, maps, logs)",
    )
    p.add_argument("--output", type=Path, default=None, help="Markdown results file (+ .json)")
    p.add_argument("--note", default=None, help="a line printed at the top of the results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    size = args.size or (256 if args.quick else 5490)
    crop = args.crop or (128 if args.quick else 2048)
    size, crop = scene.sizes(size, crop)
    repeats = args.repeats or (1 if args.quick else 3)
    full = not args.quick and size == 5490 and args.only is None
    out_md = args.output or (HERE / "peers_results.md" if full
                             else CACHE / "quick" / "peers_results.md")  # fmt: skip
    which = tools.available()
    skipped = {k: v for k, v in which.items() if v}
    if args.only:
        chosen = [c.strip() for c in args.only.split(",") if c.strip()]
        bad = sorted(set(chosen) - set(tools.CONTENDERS))
        if bad:
            p.error(f"--only: unknown contender(s) {bad}; choose from {list(tools.CONTENDERS)}")
        for c in tools.CONTENDERS:
            if c not in chosen:
                which[c] = which[c] or "not selected (--only)"
                skipped[c] = which[c]
    for c, why in skipped.items():
        print(f"skipping {c}: {why}", flush=True)
    ways = tuple(w.strip() for w in args.grass_ways.split(",") if w.strip())
    if not ways or set(ways) - set(tools.GRASS_WAYS):
        p.error(f"--grass-ways: choose from {list(tools.GRASS_WAYS)}, got {args.grass_ways!r}")

    t_start = time.perf_counter()
    load_start = load_average()
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f"scene {size} x {size} (crop {crop}) in {CACHE} ...", flush=True)
    info = scene.make_scene(CACHE, size, crop)
    paths = scene.paths(CACHE, size, crop)
    work = args.keep or Path(tempfile.mkdtemp(prefix="pixgmm-peers-"))
    work.mkdir(parents=True, exist_ok=True)
    work = work.resolve()
    results, all_runs = {}, {s: [] for s in STEPS}
    res = {"_runs": all_runs}
    options, options_source = dict(tasks.CREATION_OPTIONS), "default"
    cli_fit = None
    try:
        # -- train ------------------------------------------------------------------------
        loc = None
        if which["grass"] is None:
            loc = tools.grass_setup(work, paths["scene"])
        pix = tools.pixgmm_runs(work, paths, which, work / "out" / "pixgmm-api-train")
        train = [r for r in pix if r.step == "train"]
        if which["grass"] is None:
            train += [
                r for r in tools.grass_runs(loc, work, paths, options, ways) if r.step == "train"
            ]
        if which["otb"] is None:
            train += [r for r in tools.otb_runs(work, paths, options) if r.step == "train"]
        api_train = [r for r in train if r.key == "pixgmm-api"]
        cli_train = [r for r in train if r.key == "pixgmm-cli"]
        needs_models = any(which[c] is None for c in PIXGMM)
        if needs_models and not api_train:  # models for the CLI and Dask runs, untimed
            api_only = tools.pixgmm_runs(work, paths, {}, None)[0]
            measure(api_only, work, work / "api-train-setup.log")
        if cli_train:  # does `pixgmm fit IMAGE --training` exist?
            (work / "logs").mkdir(parents=True, exist_ok=True)
            m = measure(cli_train[0], work, work / "logs" / "pixgmm-cli-fit-probe.log")
            if m["returncode"] != 0:
                cli_fit = (f"not available in this pixgmm (exit {m['returncode']}: "
                           f"{_tail(work / 'logs' / 'pixgmm-cli-fit-probe.log', 2)}); the command "
                           "line classifies with the models of the API's fit")  # fmt: skip
                train.remove(cli_train[0])
                cli_train = []
            else:
                cli_fit = "available: timed below, and its models used by `pixgmm classify`"
        print("train", flush=True)
        all_runs["train"] = train
        run_step(train, repeats, work, not args.quick, results)
        cli_models = work / "out" / ("pixgmm-cli-train" if cli_train else "pixgmm-api-train")

        # -- pixgmm's creation options, from a map `pixgmm classify` writes ------------------
        pix = tools.pixgmm_runs(work, paths, which, cli_models)
        cli_crop = [r for r in pix if r.key == "pixgmm-cli" and r.step == "classify-crop"]
        if cli_crop:
            m = measure(cli_crop[0], work, work / "logs" / "creation-options-probe.log")
            if m["returncode"] == 0 and cli_crop[0].outputs["labels"].is_file():
                options = creation_options_of(cli_crop[0].outputs["labels"])
                options_source = "pixgmm"

        # -- classify ---------------------------------------------------------------------
        for size_name in ("crop", "full"):
            step = f"classify-{size_name}"
            runs = [r for r in pix if r.step == step]
            if which["floor"] is None:
                runs += [r for r in tools.floor_runs(work, paths) if r.step == step]
            if which["grass"] is None:
                runs += [
                    r for r in tools.grass_runs(loc, work, paths, options, ways) if r.step == step
                ]
            if which["otb"] is None:
                runs += [r for r in tools.otb_runs(work, paths, options) if r.step == step]
            for r in runs:  # the Python tasks write with the options found above
                if str(tools.TASKS) in map(str, r.argv):
                    r.env["PEERS_CREATION_OPTIONS"] = json.dumps(options)
            print(step, flush=True)
            all_runs[step] = runs
            run_step(runs, repeats, work, not args.quick, results)

        res.update(results=results)
        analyse(res, results, paths, work, which)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    del res["_runs"]
    import psutil

    res.update(
        invocation="python benchmarks/bench_peers.py" + "".join(" " + shlex.quote(a) for a in argv),
        note=args.note, repeats=repeats, quick=args.quick, scene=info, skipped=skipped, cli_fit=cli_fit,
        creation_options=options, creation_options_source=options_source,
        versions=tools.versions(which), pixgmm=_pixgmm_info(),
        threads=(f"pixgmm: numba's threads (every core unless NUMBA_NUM_THREADS is set; here "
                 f"{os.environ.get('NUMBA_NUM_THREADS', 'not set')}), GDAL's defaults "
                 f"(GDAL_NUM_THREADS {os.environ.get('GDAL_NUM_THREADS', 'not set')}); GRASS: "
                 "i.gensig and i.maxlik single-threaded (no option), GDAL_NUM_THREADS=ALL_CPUS "
                 "for reading, NUM_THREADS=ALL_CPUS for r.out.gdal's compression; OTB: "
                 f"ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS={tools.CORES}, -ram {tools.OTB_RAM_MB}, "
                 "GDAL_NUM_THREADS=ALL_CPUS, NUM_THREADS=ALL_CPUS in the output's creation "
                 "options; floor: GDAL's defaults, and every thread (GDAL_NUM_THREADS and "
                 "NUM_THREADS=ALL_CPUS)."),
        tasks_source=Path(tasks.__file__).read_text(),
        machine={
            "cpu": cpu_model(), "cores": os.cpu_count(),
            "memory_gb": psutil.virtual_memory().total / 2**30,
            "python": platform.python_version(), "os": f"{platform.system()} {platform.release()}",
            "date": started.strftime("%Y-%m-%d %H:%M UTC"), "load_start": load_start,
            "load_end": load_average(),
        },
        duration_min=(time.perf_counter() - t_start) / 60,
    )  # fmt: skip
    loads = sorted(m["load_1min"] for step in res["results"].values() for r in step.values()
                   for m in r["runs"] if m["load_1min"] is not None)  # fmt: skip
    res["machine"]["load_runs"] = (
        [loads[0], statistics.median(loads), loads[-1]] if loads else [float("nan")] * 3
    )
    res["targets"] = targets(res)
    text = markdown(res)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text(text, encoding="utf-8")
    res.pop("tasks_source")
    out_md.with_suffix(".json").write_text(json.dumps(res, indent=1, default=str))
    print()
    print("\n".join(res["targets"]))
    print(f"\nwrote {out_md} and {out_md.with_suffix('.json').name} "
          f"({res['duration_min']:.1f} min)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
