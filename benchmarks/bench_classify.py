"""W4: maximum-likelihood classification of a multispectral image, side by side in one run.

Workload
    A generated 10-band uint16 image of 5000 x 5000 pixels (25 Mpx; 500 MB), 6 land-cover
    classes of 4 full-covariance components each. The image is drawn from the classes
    themselves (a smooth class field of 50 x 50-pixel blocks, each pixel from one of its
    class's components), so the classification is meaningful.

Contenders (each in a fresh process, after a warm-up call that compiles and imports)
    pixgmm      ``Classifier.predict(img, return_confidence=True)``: the label map and the
                confidence map (winning posterior) in one pass, on the NumPy array.
    xarray      the same on an ``xarray.DataArray`` backed by Dask chunks of 1000 x 1000
                pixels (threaded scheduler), ``dask.compute(labels, confidence)``.
    sklearn     one scikit-learn ``GaussianMixture`` per class (``Mixture.to_sklearn()``, the
                same parameters), ``score_samples`` + log prior per class, argmax and the
                winning posterior: the usual way of classifying with per-class mixtures in
                scikit-learn (``QuadraticDiscriminantAnalysis`` has one Gaussian per class
                and cannot hold these models). float64 pixels, as scikit-learn needs. Run on
                a crop of whole rows and scaled linearly (its (N, K) and (N, D) float64
                temporaries do not fit comfortably), with 1 and 2 BLAS threads (threadpoolctl)
                in the run; the faster is kept and both are printed.

W5: the per-pixel maps of a classification, one pass against several
    A generated 10-band uint16 image of 2048 x 2048 pixels, 6 classes of one full-covariance
    Gaussian each (GRASS ``i.maxlik``'s model), drawn from the classes in 64 x 64-pixel
    patches with a spread 1.3 times the classes' (so the reject option has pixels to
    reject). Calls on the NumPy array: labels; labels and confidence; labels, confidence
    and the chi-square reject (``chi2_level=0.999``); the four maps of ``classify`` with
    the reject. With ``--baseline SRC`` (the ``src`` folder of another pixgmm, e.g. a
    ``git worktree`` of an older commit) the same calls also run on that version, in the
    same run, interleaved round by round, and the table gives the ratios; a call the other
    version lacks is marked n/a. Labels are compared between the versions on every pixel.

Memory is the peak resident set beyond the input and the outputs (the kernel's high-water
mark, reset just before the call). Times are medians of ``--repeat`` runs (at least 3).

Usage::

    python benchmarks/bench_classify.py            # full size, writes benchmarks/classify_results.md
                                                   # and benchmarks/classify_maps_results.md
    python benchmarks/bench_classify.py --quick    # small images, a smoke test (temp files)
    git worktree add /tmp/pixgmm-old 2c3202b     # the version before the one-pass maps
    python benchmarks/bench_classify.py --only W5 --baseline /tmp/pixgmm-old/src --baseline-name "commit 2c3202b"
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model

HERE = Path(__file__).resolve().parent
CACHE_DIR = Path(tempfile.gettempdir()) / "pixgmm-bench"
N_BANDS, N_CLASSES, N_COMPONENTS = 10, 6, 4
TARGET_SPEEDUP, TARGET_MEMORY_MB, TARGET_XARRAY = 20.0, 200.0, 1.2


def sizes(quick):
    return (400, 500) if quick else (5000, 5000)


def classes():
    """6 classes x 4 full-covariance 10-band components, means spread over the uint16 range."""
    import pixgmm

    rng = np.random.default_rng(4)
    out = {}
    for c in range(N_CLASSES):
        centre = rng.uniform(8000, 56000, N_BANDS)
        means = centre + rng.normal(0, 1500, (N_COMPONENTS, N_BANDS))
        covs = []
        for _ in range(N_COMPONENTS):
            a = rng.normal(0, 1, (N_BANDS, N_BANDS))
            covs.append((a @ a.T + N_BANDS * np.eye(N_BANDS)) * rng.uniform(2e4, 8e4))
        w = rng.dirichlet(np.full(N_COMPONENTS, 5.0))
        out[c + 1] = pixgmm.Mixture(w, means, np.array(covs), "full")  # land-cover class ids
    return out


def image_path(shape):
    return CACHE_DIR / f"w4_{shape[0]}x{shape[1]}x{N_BANDS}.npy"


def make_image(shape):
    """The image drawn from the classes (cached on disk), generated in row strips."""
    path = image_path(shape)
    if path.is_file():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    h, w = shape
    models = list(classes().values())
    rng = np.random.default_rng(44)
    field = rng.integers(0, N_CLASSES, (h // 50 + 1, w // 50 + 1))
    field = np.repeat(np.repeat(field, 50, 0), 50, 1)[:h, :w]
    chol = [np.linalg.cholesky(m.covariances) for m in models]
    img = np.lib.format.open_memmap(
        path.with_suffix(".tmp.npy"), mode="w+", dtype=np.uint16, shape=(h, w, N_BANDS)
    )
    for r0 in range(0, h, 250):
        lab = field[r0 : r0 + 250]
        strip = np.empty((*lab.shape, N_BANDS))
        for c, m in enumerate(models):
            sel = lab == c
            n = int(sel.sum())
            comp = rng.choice(N_COMPONENTS, size=n, p=m.weights)
            z = rng.standard_normal((n, N_BANDS))
            strip[sel] = m.means[comp] + np.einsum("nij,nj->ni", chol[c][comp], z)
        img[r0 : r0 + 250] = np.clip(np.rint(strip), 0, 65535)
    img.flush()
    del img
    os.replace(path.with_suffix(".tmp.npy"), path)
    return path


# -- measurement in a worker process -----------------------------------------------------------


def _rss_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _hwm_kb():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _reset_hwm():
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def worker(name, path, repeat, crop_rows, blas_threads):
    import pixgmm

    img = np.load(path, mmap_mode=None)
    clf = pixgmm.Classifier(classes())
    if name == "pixgmm":

        def run():
            return clf.predict(img, return_confidence=True)
    elif name == "xarray":
        import dask
        import dask.array as da
        import xarray as xr

        arr = xr.DataArray(
            da.from_array(img, chunks=(1000, 1000, N_BANDS)), dims=("y", "x", "band")
        )

        def run():
            labels, conf = clf.predict(arr, channel_axis="band", return_confidence=True)
            return dask.compute(labels.data, conf.data, scheduler="threads")
    else:
        from threadpoolctl import threadpool_limits

        img = img[:crop_rows]
        gms = [m.to_sklearn() for m in clf.models.values()]
        log_priors = np.log(clf.priors)

        def run():
            with threadpool_limits(blas_threads):
                x = img.reshape(-1, N_BANDS).astype(np.float64)
                s = np.stack([g.score_samples(x) for g in gms], axis=1) + log_priors
                best = s.argmax(axis=1)
                m = s.max(axis=1, keepdims=True)
                conf = 1.0 / np.exp(s - m).sum(axis=1)
                return np.asarray(list(clf.labels))[best], conf

    run()  # warm-up: JIT compilation, imports, page cache
    times, mem = [], []
    for _ in range(repeat):
        out_bytes = 0
        _reset_hwm()
        base = _rss_kb()
        t0 = time.perf_counter()
        res = run()
        times.append(time.perf_counter() - t0)
        out_bytes = sum(np.asarray(r).nbytes for r in res)
        mem.append(max(0.0, (_hwm_kb() - base) / 1024 - out_bytes / 2**20))
        del res
    labels, conf = run()
    return {"times": times, "memory_mb": float(np.median(mem)),
            "labels": np.asarray(labels).reshape(-1)[:: 997].tolist(),
            "confidence": np.asarray(conf, float).reshape(-1)[:: 997].tolist()}  # fmt: skip


def run_worker(name, path, repeat, crop_rows=0, blas_threads=None):
    call = f"b.worker({name!r}, {str(path)!r}, {repeat}, {crop_rows}, {blas_threads!r})"
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_classify as b; "
        f"print(json.dumps({call}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- W5: the per-pixel maps in one pass -----------------------------------------------------

W5_SIZE, W5_QUICK = (2048, 2048), (256, 320)
W5_CALLS = ("labels", "labels + confidence", "labels + confidence + chi2 reject",
            "classify: 4 maps + chi2 reject")  # fmt: skip


def w5_classes():
    """6 classes x 1 full-covariance 10-band Gaussian, means over the uint16 range."""
    import pixgmm

    rng = np.random.default_rng(5)
    out = {}
    for c in range(N_CLASSES):
        a = rng.normal(0, 1, (N_BANDS, N_BANDS))
        cov = (a @ a.T + N_BANDS * np.eye(N_BANDS)) * rng.uniform(2e4, 8e4)
        out[c + 1] = pixgmm.Mixture([1.0], rng.uniform(8000, 56000, (1, N_BANDS)), cov[None],
                                    "full")  # fmt: skip
    return out


def w5_image(shape):
    """The W5 image (cached on disk): 64 x 64-pixel patches of one class each."""
    path = CACHE_DIR / f"w5_{shape[0]}x{shape[1]}x{N_BANDS}.npy"
    if path.is_file():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    h, w = shape
    models = list(w5_classes().values())
    rng = np.random.default_rng(55)
    field = rng.integers(0, N_CLASSES, (h // 64 + 1, w // 64 + 1))
    field = np.repeat(np.repeat(field, 64, 0), 64, 1)[:h, :w]
    img = np.empty((h, w, N_BANDS), np.uint16)
    for c, m in enumerate(models):
        sel = field == c
        low = np.linalg.cholesky(m.covariances[0])
        z = rng.standard_normal((int(sel.sum()), N_BANDS)) * 1.3
        img[sel] = np.clip(np.rint(m.means[0] + z @ low.T), 0, 65535)
    np.save(path.with_suffix(".tmp.npy"), img)
    os.replace(path.with_suffix(".tmp.npy"), path)
    return path


def w5_worker(path, repeat, rounds_file):
    """Every W5 call on this process's pixgmm: times, memory, output dtypes, the labels."""
    import pixgmm

    img = np.load(path)
    clf = pixgmm.Classifier(w5_classes())
    kw = {"fill": 0, "chi2_level": 0.999, "reject": 255}
    calls = {
        W5_CALLS[0]: lambda: (clf.predict(img, fill=0),),
        W5_CALLS[1]: lambda: clf.predict(img, fill=0, return_confidence=True),
        W5_CALLS[2]: lambda: clf.predict(img, return_confidence=True, **kw),
    }
    if hasattr(clf, "classify"):
        maps = ("labels", "confidence", "margin", "entropy")
        calls[W5_CALLS[3]] = lambda: tuple(clf.classify(img, maps, **kw).values())
    out = {}
    for name, run in calls.items():
        t0 = time.perf_counter()
        first = run()  # compiles (or loads) the kernels
        cold = time.perf_counter() - t0
        times, cpu, mem = [], [], []
        for _ in range(repeat):
            _reset_hwm()
            base = _rss_kb()
            c0 = time.process_time()
            t0 = time.perf_counter()
            res = run()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            out_mb = sum(r.nbytes for r in res) / 2**20
            mem.append(max(0.0, (_hwm_kb() - base) / 1024 - out_mb))
            del res
        out[name] = {"times": times, "cpu": cpu, "first": cold, "memory_mb": float(np.median(mem)),
                     "dtypes": [str(r.dtype) for r in first],
                     "rejected": float(np.mean(first[0] == 255))}  # fmt: skip
        np.save(f"{rounds_file}-{W5_CALLS.index(name)}.npy", first[0])
    return out


def run_w5_worker(path, repeat, src, rounds_file):
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import bench_classify as b; "
        f"print(json.dumps(b.w5_worker({str(path)!r}, {repeat}, {str(rounds_file)!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    if out.returncode:
        raise RuntimeError(f"W5 worker ({src or 'this pixgmm'}) failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_w5(quick, repeat, baseline, out, baseline_name=None):
    """W5 in ``rounds`` interleaved rounds per version; writes ``out``."""
    shape = W5_QUICK if quick else W5_SIZE
    path = w5_image(shape)
    here_src = HERE.parent / "src"
    versions = {"this": here_src} | ({"baseline": Path(baseline)} if baseline else {})
    rounds = 1 if quick else 3
    load0 = os.getloadavg()[0]
    started = datetime.datetime.now(datetime.timezone.utc)
    res = {v: {} for v in versions}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for v, src in versions.items():
                got = run_w5_worker(path, repeat, src, Path(tmp) / f"{v}-{r}")
                for name, row in got.items():
                    acc = res[v].setdefault(
                        name, {"times": [], "cpu": [], "first": [], "memory_mb": []}
                    )
                    acc["times"] += row["times"]
                    acc["cpu"] += row["cpu"]
                    acc["first"].append(row["first"])
                    acc["memory_mb"].append(row["memory_mb"])
                    acc["dtypes"], acc["rejected"] = row["dtypes"], row["rejected"]
        agree = {}
        if baseline:
            for i, name in enumerate(W5_CALLS):
                a, b = Path(tmp) / f"this-0-{i}.npy", Path(tmp) / f"baseline-0-{i}.npy"
                if a.is_file() and b.is_file():
                    agree[name] = float(np.mean(np.load(a) == np.load(b)))
    load1 = os.getloadavg()[0]
    med = {v: {n: float(np.median(r["times"])) for n, r in res[v].items()} for v in res}
    cpu = {v: {n: float(np.median(r["cpu"])) for n, r in res[v].items()} for v in res}
    lines = [
        "# W5: the per-pixel maps of a classification in one pass (`benchmarks/bench_classify.py`)",
        "",
        f"Machine: {machine()}; {started:%Y-%m-%d %H:%M} UTC. Load average (1 min) "
        f"{load0:.1f} at the start, {load1:.1f} at the end.",
        "",
        f"**W5**: {shape[1]} x {shape[0]} x {N_BANDS} uint16 image, {N_CLASSES} classes of one "
        f"full-covariance Gaussian each, NumPy array in memory. Medians of {rounds} round(s) "
        f"x {repeat} call(s) per version, the versions interleaved round by round, each "
        "round a fresh process (its first call, which loads or compiles the kernels, is "
        "reported apart).",
        "",
    ]
    if baseline:
        lines += [
            f"Baseline: {baseline_name or f'`{baseline}`'}.",
            "",
            "| Call | This version | Baseline | Baseline / this | CPU s, this / baseline (ratio) "
            "| Labels equal | Peak extra memory (this, baseline) | Output dtypes |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
    else:
        lines += ["| Call | Median time | CPU s | Runs (s) | Peak extra memory | Output dtypes |",
                  "|---|---:|---:|---|---:|---|"]  # fmt: skip
    for name in W5_CALLS:
        this = res["this"].get(name)
        if this is None:
            continue
        t = med["this"][name]
        mem = float(np.median(this["memory_mb"]))
        dts = ", ".join(this["dtypes"])
        if baseline:
            other = res["baseline"].get(name)
            if other is None:
                lines.append(
                    f"| {name} | {t:.3f} s | n/a | n/a | {cpu['this'][name]:.3f} / n/a | n/a | "
                    f"{mem:.0f} MB, n/a | {dts} |"
                )
                continue
            tb = med["baseline"][name]
            omem = float(np.median(other["memory_mb"]))
            dts += "; baseline " + ", ".join(other["dtypes"])
            ct, cb = cpu["this"][name], cpu["baseline"][name]
            lines.append(f"| {name} | {t:.3f} s | {tb:.3f} s | {tb / t:.2f}x | "
                         f"{ct:.3f} / {cb:.3f} ({cb / ct:.2f}x) | "
                         f"{agree.get(name, float('nan')):.4%} | {mem:.0f} MB, {omem:.0f} MB | "
                         f"{dts} |")  # fmt: skip
        else:
            runs = ", ".join(f"{x:.3f}" for x in this["times"])
            lines.append(f"| {name} | {t:.3f} s | {cpu['this'][name]:.3f} | {runs} | "
                         f"{mem:.0f} MB | {dts} |")  # fmt: skip
    first = res["this"][W5_CALLS[2]]["rejected"]
    lines += ["", f"The chi-square reject takes {first:.2%} of the pixels (label 255). CPU s: "
              "the process's user and system time of the call (both numba threads), which "
              "other jobs on the machine disturb less than the wall time."]  # fmt: skip
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)
    print(f"written to {out}")


def machine():
    cpu = cpu_model()
    import numba

    return (
        f"{cpu}, {os.cpu_count()} cores ({numba.config.NUMBA_NUM_THREADS} numba threads), "
        f"Linux {platform.release()}; Python {platform.python_version()}, NumPy {np.__version__}, "
        f"numba {numba.__version__}"
    )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small image, one repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--only", choices=("W4", "W5"), default=None, help="one workload")
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="W5: the src folder of another pixgmm to compare with",
    )
    ap.add_argument("--baseline-name", default=None,
                    help="W5: how the results file names the baseline (default: its path)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.only != "W4":
        out5 = (Path(tempfile.gettempdir()) / "classify_maps_results_quick.md"
                if args.quick else HERE / "classify_maps_results.md")  # fmt: skip
        run_w5(args.quick, 1 if args.quick else max(3, args.repeat), args.baseline, out5,
               args.baseline_name)  # fmt: skip
    if args.only == "W5":
        return
    shape = sizes(args.quick)
    repeat = 1 if args.quick else max(3, args.repeat)
    out = args.out or (
        Path(tempfile.gettempdir()) / "classify_results_quick.md"
        if args.quick else HERE / "classify_results.md"
    )  # fmt: skip
    path = make_image(shape)
    load0 = os.getloadavg()[0]
    started = datetime.datetime.now(datetime.timezone.utc)
    n_px = shape[0] * shape[1]
    crop = shape[0] if args.quick else 600  # 3 Mpx for scikit-learn, scaled
    scale = shape[0] / crop
    res = {
        "pixgmm": run_worker("pixgmm", path, repeat),
        "xarray": run_worker("xarray", path, repeat),
    }
    sk = {t: run_worker("sklearn", path, repeat, crop, t) for t in (1, 2)}
    best_t = min(sk, key=lambda t: np.median(sk[t]["times"]))
    res["sklearn"] = sk[best_t]
    load1 = os.getloadavg()[0]
    med = {k: float(np.median(v["times"])) for k, v in res.items()}
    med["sklearn"] *= scale
    agree = np.mean(
        np.array(res["pixgmm"]["labels"][: len(res["sklearn"]["labels"])])
        == np.array(res["sklearn"]["labels"])
    )
    dconf = np.nanmax(np.abs(
        np.array(res["pixgmm"]["confidence"][: len(res["sklearn"]["confidence"])])
        - np.array(res["sklearn"]["confidence"])
    ))  # fmt: skip
    speedup = med["sklearn"] / med["pixgmm"]
    xr_ratio = med["xarray"] / med["pixgmm"]
    mem = res["pixgmm"]["memory_mb"]
    lines = [
        "# W4: multispectral classification (`benchmarks/bench_classify.py`)",
        "",
        f"Machine: {machine()}; {started:%Y-%m-%d %H:%M} UTC. Load average (1 min) "
        f"{load0:.1f} at the start, {load1:.1f} at the end.",
        "",
        f"**W4**: {shape[1]} x {shape[0]} x {N_BANDS} uint16 image ({n_px / 1e6:.3g} Mpx), "
        f"{N_CLASSES} classes x {N_COMPONENTS} full-covariance components; labels and "
        "confidence map. Medians of "
        f"{repeat} run(s).",
        "",
        "| Method | Median time | Ratio to pixgmm | Peak extra memory | Runs (s) |",
        "|---|---:|---:|---:|---|",
    ]
    rows = [
        ("pixgmm `Classifier.predict(..., return_confidence=True)`, NumPy", "pixgmm", 1.0),
        ("the same on an xarray DataArray over Dask chunks of 1000 x 1000", "xarray", 1.0),
        (f"scikit-learn `GaussianMixture.score_samples` per class, float64 "
         f"({best_t} BLAS thread(s): 1 thread {np.median(sk[1]['times']) * scale:.2f} s, "
         f"2 threads {np.median(sk[2]['times']) * scale:.2f} s)"
         + (f"; measured on {crop} rows, scaled x{scale:.3g}" if scale != 1 else ""),
         "sklearn", scale),
    ]  # fmt: skip
    for label, key, sc in rows:
        t = med[key]
        m = res[key]["memory_mb"] * sc
        runs = ", ".join(f"{x * sc:.2f}" for x in res[key]["times"])
        lines.append(f"| {label} | {t:.2f} s | {t / med['pixgmm']:.2f}x | {m:,.0f} MB | {runs} |")
    lines += [
        "",
        f"Labels agree with scikit-learn's on {agree:.4%} of sampled pixels; the confidence maps "
        f"differ by at most {dconf:.1e}.",
        "",
        f"- pixgmm against scikit-learn: {speedup:.0f}x (target >= {TARGET_SPEEDUP:.0f}x: "
        f"{'met' if speedup >= TARGET_SPEEDUP else 'not met'} in this run)",
        f"- pixgmm peak memory beyond input and output: {mem:.0f} MB (target < "
        f"{TARGET_MEMORY_MB:.0f} MB: {'met' if mem < TARGET_MEMORY_MB else 'not met'} in this run)",
        f"- xarray on Dask against NumPy: {xr_ratio:.2f}x (target <= {TARGET_XARRAY}x: "
        f"{'met' if xr_ratio <= TARGET_XARRAY else 'not met'} in this run)",
    ]
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
