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

Memory is the peak resident set beyond the input and the outputs (the kernel's high-water
mark, reset just before the call). Times are medians of ``--repeat`` runs (at least 3).

Usage::

    python benchmarks/bench_classify.py            # full size, writes benchmarks/classify_results.md
    python benchmarks/bench_classify.py --quick    # 500 x 400 pixels, a smoke test (temp file)
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
    args = ap.parse_args(argv)
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
