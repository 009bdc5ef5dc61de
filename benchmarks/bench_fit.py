"""Fitting benchmark: pixgmm's EM on every pixel against scikit-learn's GaussianMixture.

Workloads (issue 10)
    F1  the 12-megapixel photo of ``bench_core.py`` (astronaut, 4000 x 3000, uint8), K=16
        diagonal, end to end (colour histogram, initialisation, EM to convergence, tol=1e-3,
        reg_covar=1 for both): pixgmm's defaults (init="lloyd", n_init=1) and n_init=2, with
        the phases timed again one by one in the same process (histogram, initialisation,
        EM iterations and the time per iteration); against scikit-learn fitting a
        1-million-pixel subsample with its defaults (k-means init, n_init=1), once with its
        BLAS limited to 1 thread and once to 2 (threadpoolctl; the faster is compared), and
        scikit-learn on every pixel (a few iterations, extrapolated to the iterations it
        needed on the subsample). Quality: each fitted model's mean log-likelihood on all
        pixels.
    F2  the same photo as float32, K=16 full covariances, every pixel, no compression: time
        per EM iteration (pixgmm and scikit-learn from the same start) and peak memory beyond
        the input.
    F3  ``fit_classes`` on the UCI skin pixels (``../shared/data/Skin_NonSkin.txt``, BGR) and
        on a generated training set of 1 MP images with masks, streamed image by image
        through ``ClassHistograms`` (the images are generated on the fly, never all in memory).
    F4  the gigapixel image of ``bench_gigapixel.py`` (its Zarr store, uint8) fitted on Dask's
        threaded scheduler: distributed colour histogram, then EM: time and peak memory.

Every contender runs in a fresh subprocess: times are wall-clock after numba compilation
(a warm-up fit on a few pixels), peak memory is the process's peak resident set
(``ru_maxrss``) minus its resident size once the input is loaded. Ratios compare times
measured in the same run. The machine's load average is printed before and after.

Usage::

    python benchmarks/bench_fit.py            # full sizes, writes benchmarks/fit_results.md
    python benchmarks/bench_fit.py --quick    # small sizes (a smoke test), writes to a temp file
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from _machine import cpu_model

HERE = Path(__file__).resolve().parent
CACHE_DIR = Path(tempfile.gettempdir()) / "pixgmm-bench"
UCI = HERE.parent / ".." / "shared" / "data" / "Skin_NonSkin.txt"


def sizes(quick):
    if quick:
        return {
            "photo": (300, 400), "subsample": 20_000, "sk_all_iter": 2, "images": 8,
            "image_side": 256, "zarr": 2048, "zarr_chunk": 512,
        }  # fmt: skip
    return {
        "photo": (3000, 4000), "subsample": 1_000_000, "sk_all_iter": 2, "images": 1000,
        "image_side": 1024, "zarr": 32768, "zarr_chunk": 4096,
    }  # fmt: skip


def photo(shape):
    path = CACHE_DIR / f"astronaut_{shape[1]}x{shape[0]}.npy"
    if not path.is_file():
        from skimage import data, transform

        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        img = transform.resize(data.astronaut(), shape, preserve_range=True, order=1)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, np.clip(np.rint(img), 0, 255).astype(np.uint8))
        os.replace(tmp, path)
    return np.load(path)


def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mean_loglik(img, mixture):
    import pixgmm

    return float(pixgmm.log_density(img, mixture).mean())


def _iteration_clock():
    stamps = []
    return stamps, lambda n_iter, lb: stamps.append(time.perf_counter())


def start_mixture(img, k, covariance_type, seed=0):
    """A fixed start for per-iteration timings: k-means++ on a small sample (not timed)."""
    from pixgmm import fitting

    px = img.reshape(-1, 3)[:: max(1, img.size // 3 // 50_000)]
    return fitting.fit(px, k, covariance_type, init="k-means++", max_iter=1, tol=0,
                       random_state=seed)  # fmt: skip


# -- contenders (each in its own process) ---------------------------------------------------


def run_f1_pixgmm(s, n_init=1):
    from pixgmm import fitting
    from pixgmm._engine import emfit, histfit

    img = photo(s["photo"])
    side = min(1024, img.shape[0])  # >= 1 M pixels at full size: the dense histogram too
    fitting.fit(img[:side, :side], 16, max_iter=2)  # compile / load every kernel
    base = rss_mb()
    stamps, cb = _iteration_clock()
    t0 = time.perf_counter()
    r = fitting.fit_em(img, 16, "diag", n_init=n_init, callback=cb)
    t = time.perf_counter() - t0
    steps = np.diff(stamps)
    per_iter = float(np.median(steps)) if len(steps) else float("nan")
    peak = peak_mb() - base
    # the phases again, one by one (same process, same data)
    px = img.reshape(-1, 3)
    t1 = time.perf_counter()
    X, w, how = histfit.compress(px, None)
    t_hist = time.perf_counter() - t1
    points = histfit.Points(X, w, compression=how, n_pixels=px.shape[0], n_nan=0,
                            total_weight=float(px.shape[0]))  # fmt: skip
    t1 = time.perf_counter()
    emfit.initial_parameters(points, 16, "diag", "lloyd", 1.0, 0, np.random.RandomState(0))
    t_init = time.perf_counter() - t1
    return {
        "seconds": t, "n_iter": r.n_iter, "iterations_run": len(stamps), "per_iter": per_iter,
        "points": r.n_points, "loglik": mean_loglik(img, r.mixture), "peak_mb": peak,
        "hist_seconds": t_hist, "init_seconds": t_init, "n_init": n_init,
    }  # fmt: skip


def run_f1_pixgmm_n2(s):
    return run_f1_pixgmm(s, n_init=2)


def run_f1_sklearn_sub(s, threads=1):
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    import pixgmm

    img = photo(s["photo"])
    px = img.reshape(-1, 3)
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(px.shape[0], size=min(s["subsample"], px.shape[0]), replace=False))
    base = rss_mb()
    with threadpool_limits(limits=threads, user_api="blas"):
        t0 = time.perf_counter()
        X = px[idx].astype(np.float64)
        gm = GaussianMixture(16, covariance_type="diag", reg_covar=1.0, random_state=0).fit(X)
        t = time.perf_counter() - t0
    return {
        "seconds": t, "n_iter": int(gm.n_iter_), "points": int(X.shape[0]), "threads": threads,
        "per_iter": t / max(int(gm.n_iter_), 1),
        "loglik": mean_loglik(img, pixgmm.Mixture.from_sklearn(gm)), "peak_mb": peak_mb() - base,
    }  # fmt: skip


def run_f1_sklearn_sub_t2(s):
    return run_f1_sklearn_sub(s, threads=2)


def run_sklearn_iterations(img, k, covariance_type, n_iter, start):
    """scikit-learn from ``start`` for n_iter iterations on every pixel: (seconds, per_iter)."""
    from sklearn.mixture import GaussianMixture

    X = img.reshape(-1, 3)
    X = X.astype(np.float64) if X.dtype == np.uint8 else X
    sk = start.to_sklearn()
    gm = GaussianMixture(k, covariance_type=covariance_type, weights_init=start.weights,
                         means_init=start.means, precisions_init=sk.precisions_,
                         init_params="random_from_data", tol=0, max_iter=n_iter, reg_covar=1.0)  # fmt: skip
    base = rss_mb()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)
    t = time.perf_counter() - t0
    # GaussianMixture.fit ends with one more E-step (for fit_predict): n_iter + 1 E-steps
    return t, t / (n_iter + 0.5), peak_mb() - base


def run_f1_sklearn_all(s):
    img = photo(s["photo"])
    start = start_mixture(img, 16, "diag")
    t, per_iter, mem = run_sklearn_iterations(img, 16, "diag", s["sk_all_iter"], start)
    return {"seconds": t, "per_iter": per_iter, "peak_mb": mem}


def run_f2_pixgmm(s):
    from pixgmm import fitting

    img = photo(s["photo"]).astype(np.float32)
    start = start_mixture(img, 16, "full")
    fitting.fit(img[:20, :20], 16, "full", init=start, max_iter=1, tol=0)  # compile
    base = rss_mb()
    stamps, cb = _iteration_clock()
    t0 = time.perf_counter()
    fitting.fit_em(img, 16, "full", init=start, max_iter=4, tol=0, reg_covar=1.0, callback=cb)
    t = time.perf_counter() - t0
    return {"seconds": t, "per_iter": float(np.median(np.diff([t0, *stamps]))),
            "peak_mb": peak_mb() - base}  # fmt: skip


def run_f2_sklearn(s):
    img = photo(s["photo"]).astype(np.float32)
    start = start_mixture(img, 16, "full")
    t, per_iter, mem = run_sklearn_iterations(img, 16, "full", 2, start)
    return {"seconds": t, "per_iter": per_iter, "peak_mb": mem}


def run_f3_uci(s):
    from pixgmm import fitting

    table = np.loadtxt(UCI, dtype=np.int64)
    px, labels = table[:, :3].astype(np.uint8), table[:, 3]
    # compile every kernel the timed call takes (the colour-table EM, k-means), untimed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitting.fit_classes_em(px, labels, 16, channels="BGR", max_iter=1)
    base = rss_mb()
    t0 = time.perf_counter()
    res = fitting.fit_classes_em(px, labels, 16, channels="BGR")
    t = time.perf_counter() - t0
    return {"seconds": t, "pixels": int(px.shape[0]), "peak_mb": peak_mb() - base,
            "n_iter": {str(k): r.n_iter for k, r in res.items()},
            "converged": all(r.converged for r in res.values())}  # fmt: skip


def synthetic_image(i, side):
    """A 'photo-like' uint8 image with a skin mask (blobs of skin tones on smooth colour fields)."""
    rng = np.random.default_rng(i)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    img = np.empty((side, side, 3), np.float32)
    for ch in range(3):
        fx, fy, ph = rng.uniform(50, 400), rng.uniform(50, 400), rng.uniform(0, 6)
        img[..., ch] = 128 + 90 * np.sin(xx / fx + ph) * np.cos(yy / fy - ph)
    mask = np.zeros((side, side), bool)
    for _ in range(4):
        cy, cx, rad = rng.uniform(0, side), rng.uniform(0, side), rng.uniform(side / 20, side / 6)
        blob = (yy - cy) ** 2 + (xx - cx) ** 2 < rad * rad
        img[blob] = rng.uniform([170, 110, 90], [235, 170, 140])
        mask |= blob
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), mask


def run_f3_images(s):
    from pixgmm import fitting

    with warnings.catch_warnings():  # compile every kernel the timed calls take, untimed
        warnings.simplefilter("ignore")
        fitting.fit_classes(*synthetic_image(0, min(256, s["image_side"])), 16, max_iter=1)
    base = rss_mb()
    t0 = time.perf_counter()
    acc = fitting.ClassHistograms()
    gen = 0.0
    for i in range(s["images"]):
        g0 = time.perf_counter()
        img, mask = synthetic_image(i, s["image_side"])
        gen += time.perf_counter() - g0
        acc.add(img, mask)
    t_count = time.perf_counter() - t0 - gen
    t1 = time.perf_counter()
    res = acc.fit_em(16)
    t_em = time.perf_counter() - t1
    pixels = s["images"] * s["image_side"] ** 2
    return {"seconds": t_count + t_em, "count_seconds": t_count, "em_seconds": t_em,
            "generate_seconds": gen, "pixels": pixels, "peak_mb": peak_mb() - base,
            "n_iter": {str(k): r.n_iter for k, r in res.items()}}  # fmt: skip


def zarr_image(s):
    import dask
    import dask.array as da

    from pixgmm import io as pxio

    sys.path.insert(0, str(HERE))
    from bench_gigapixel import synthetic_block

    path = CACHE_DIR / f"image-{s['zarr']}-{s['zarr_chunk']}.zarr"
    if not pxio.is_complete(path):
        c = s["zarr_chunk"]
        template = da.empty((s["zarr"], s["zarr"], 3), dtype=np.uint8, chunks=(c, c, 3))
        image = da.map_blocks(synthetic_block, dtype=np.uint8, chunks=template.chunks,
                              meta=np.empty((0, 0, 0), np.uint8))  # fmt: skip
        with dask.config.set(scheduler="threads"):
            pxio.write_zarr(image, path, overwrite=True)
    return path


def run_f4(s):
    import dask
    import dask.array as da

    from pixgmm import fitting

    path = zarr_image(s)
    with warnings.catch_warnings(), dask.config.set(scheduler="threads"):
        warnings.simplefilter("ignore")  # compile the kernels of the timed call, untimed
        small = da.from_zarr(str(path))[:1024, :1024]
        fitting.fit_em(small.rechunk((512, 512, 3)), 16, "diag", max_iter=1)
    base = rss_mb()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        lazy = da.from_zarr(str(path))
        r = fitting.fit_em(lazy, 16, "diag")
    t = time.perf_counter() - t0
    return {"seconds": t, "pixels": int(np.prod(lazy.shape[:2])), "points": r.n_points,
            "n_iter": r.n_iter, "peak_mb": peak_mb() - base}  # fmt: skip


def run_f4_read(s):
    """The floor for F4: read and decode every chunk of the store once (a max over it)."""
    import dask
    import dask.array as da

    path = zarr_image(s)
    base = rss_mb()
    t0 = time.perf_counter()
    with dask.config.set(scheduler="threads"):
        lazy = da.from_zarr(str(path))
        lazy.max().compute()
    t = time.perf_counter() - t0
    return {"seconds": t, "pixels": int(np.prod(lazy.shape[:2])), "peak_mb": peak_mb() - base}


CASES = {
    "F1_pixgmm": run_f1_pixgmm,
    "F1_pixgmm_n2": run_f1_pixgmm_n2,
    "F1_sklearn_sub": run_f1_sklearn_sub,
    "F1_sklearn_sub_t2": run_f1_sklearn_sub_t2,
    "F1_sklearn_all": run_f1_sklearn_all,
    "F2_pixgmm": run_f2_pixgmm,
    "F2_sklearn": run_f2_sklearn,
    "F3_uci": run_f3_uci,
    "F3_images": run_f3_images,
    "F4_dask": run_f4,
    "F4_read": run_f4_read,
}


def run_case(name, quick):
    cmd = [sys.executable, __file__, "--worker", name] + (["--quick"] if quick else [])
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = f"{load:.2f}-{os.getloadavg()[0]:.2f}"
    return result


# -- report ---------------------------------------------------------------------------------


def _t(x):
    return "-" if x is None or x != x else (f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s")


def _ok(r):
    return "error" not in r


def markdown(res, s, quick, load):
    f1, f1n2, allpx = res["F1_pixgmm"], res["F1_pixgmm_n2"], res["F1_sklearn_all"]
    subs = [r for r in (res["F1_sklearn_sub"], res["F1_sklearn_sub_t2"]) if _ok(r)]
    sub = min(subs, key=lambda r: r["seconds"]) if subs else res["F1_sklearn_sub"]
    lines = [
        "# pixgmm fitting benchmark (`benchmarks/bench_fit.py`)",
        "",
        f"{datetime.date.today()}, {cpu_model()}, {platform.machine()} {platform.system()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}; load average (1 min) "
        f"before {load[0]}, after {load[1]}; per case in the last column."
        + (" **--quick sizes: a smoke test, not a result.**" if quick else ""),
        "",
        "| workload | contender | time | per iteration | iterations | mean log-lik (all pixels) | peak memory beyond input | load |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    h, w = s["photo"]
    sk_all_total = None
    if "per_iter" in allpx and "n_iter" in sub:
        sk_all_total = allpx["per_iter"] * sub["n_iter"]

    def row(wl, name, r, extra_time=None):
        if "error" in r:
            return f"| {wl} | {name} | error: {r['error']} | | | | | |"
        ll = r.get("loglik")
        return (
            f"| {wl} | {name} | {_t(extra_time if extra_time is not None else r.get('seconds'))} "
            f"| {_t(r.get('per_iter'))} | {r.get('n_iter', '-')} "
            f"| {'-' if ll is None else f'{ll:.4f}'} | {r.get('peak_mb', float('nan')):.0f} MB "
            f"| {r.get('load', '-')} |"
        )

    for r, label in ((f1, "defaults"), (f1n2, "n_init=2")):
        phases = ""
        if _ok(r):
            phases = (f"; phases alone: histogram {_t(r['hist_seconds'])}, init "
                      f"{_t(r['init_seconds'])}, {r['iterations_run']} EM iterations")  # fmt: skip
        lines.append(row("F1", f"pixgmm {label}, every pixel ({h}x{w}, "
                               f"{r.get('points', 0):,} distinct colours{phases})", r))  # fmt: skip
    for r in (res["F1_sklearn_sub"], res["F1_sklearn_sub_t2"]):
        lines.append(row("F1", f"scikit-learn, {s['subsample']:,}-pixel subsample, BLAS threads "
                               f"{r.get('threads', '?')}", r))  # fmt: skip
    lines.append(
        row(
            "F1",
            f"scikit-learn, every pixel ({s['sk_all_iter']} iterations, extrapolated to {sub.get('n_iter')})",
            allpx,
            sk_all_total,
        )
    )
    lines.append(row("F2", "pixgmm, float32, K=16 full, every pixel", res["F2_pixgmm"]))
    lines.append(row("F2", "scikit-learn, same start", res["F2_sklearn"]))
    uci, ims, f4 = res["F3_uci"], res["F3_images"], res["F4_dask"]
    lines.append(row("F3", f"fit_classes, UCI ({uci.get('pixels', 0):,} pixels, K=16 diag)", uci))
    lines.append(
        row(
            "F3",
            f"ClassHistograms, {s['images']} images of {s['image_side']}^2 "
            f"({ims.get('pixels', 0):,} pixels; counting {_t(ims.get('count_seconds'))}, "
            f"EM {_t(ims.get('em_seconds'))}, generating not counted)",
            ims,
        )
    )
    lines.append(row("F4", f"Dask, Zarr {s['zarr']}^2 uint8 ({f4.get('pixels', 0):,} pixels; "
                           f"{f4.get('points', 0):,} distinct colours)", f4))  # fmt: skip
    lines.append(
        row("F4", "reading the store once (a max over every chunk): the floor", res["F4_read"])
    )
    lines.append("")  # fmt: skip
    for r, label in ((f1, "defaults"), (f1n2, "n_init=2")):
        if _ok(r) and _ok(sub):
            r1 = sub["seconds"] / r["seconds"]
            lines.append(f"- F1, pixgmm {label}: {r1:.1f}x faster than scikit-learn on the subsample "
                         f"(its faster configuration, BLAS threads {sub['threads']}; target >= 20x: "
                         f"{'met' if r1 >= 20 else 'not met'} in this run); mean log-likelihood on all "
                         f"pixels {r['loglik']:.4f} vs {sub['loglik']:.4f} "
                         f"({'at least as good: met' if r['loglik'] >= sub['loglik'] else 'worse: not met'}); "
                         f"end to end {_t(r['seconds'])} (aim < 1 s: "
                         f"{'met' if r['seconds'] < 1 else 'not met'} in this run).")  # fmt: skip
    f2, f2s = res["F2_pixgmm"], res["F2_sklearn"]
    if "error" not in f2 and "error" not in f2s:
        r2 = f2s["per_iter"] / f2["per_iter"]
        lines.append(f"- F2: per iteration {r2:.1f}x faster (target >= 20x: {'met' if r2 >= 20 else 'not met'}); "
                     f"peak memory beyond the input {f2['peak_mb']:.0f} MB (target < 200 MB: "
                     f"{'met' if f2['peak_mb'] < 200 else 'not met'}).")  # fmt: skip
    if "error" not in f4:
        lines.append(f"- F4: {_t(f4['seconds'])}, peak {f4['peak_mb']:.0f} MB beyond the start "
                     f"(goal < 2 GB: {'met' if f4['peak_mb'] < 2048 else 'not met'}).")  # fmt: skip
        f4r = res["F4_read"]
        if _ok(f4r):
            lines.append(f"- F4 against reading the store once: {f4['seconds'] / f4r['seconds']:.2f}x "
                         f"({_t(f4['seconds'])} vs {_t(f4r['seconds'])}); the time is dominated by "
                         f"the read when this is under 2x: {'yes' if f4['seconds'] < 2 * f4r['seconds'] else 'no'} "
                         "in this run.")  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    p.add_argument("--output", type=Path, default=None)
    p.add_argument("--only", default=None, help="comma-separated cases, e.g. F1_pixgmm,F2_pixgmm")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    s = sizes(args.quick)
    if args.worker:
        print(json.dumps(CASES[args.worker](s)))
        return
    names = args.only.split(",") if args.only else list(CASES)
    load0 = os.getloadavg()[0]
    res = {}
    for name in CASES:
        res[name] = run_case(name, args.quick) if name in names else {"error": "not run"}
        print(name, json.dumps(res[name]), flush=True)
    load1 = os.getloadavg()[0]
    text = markdown(res, s, args.quick, (f"{load0:.2f}", f"{load1:.2f}"))
    out = args.output or (
        Path(tempfile.gettempdir()) / "pixgmm_fit_quick.md"
        if args.quick
        else HERE / "fit_results.md"
    )
    out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
