"""Core benchmark: pixgmm against the usual ways of evaluating a mixture at every pixel.

Workloads
    W1  12-megapixel RGB uint8 photo (scikit-image's astronaut resized to 4000 x 3000), the
        Jones & Rehg skin mixture (16 diagonal components), float32 density. Contenders:
        pixgmm in steady state (colour table cached), pixgmm's first call on a new model
        (table built; JIT compilation excluded), a "floor" numba kernel that only reads each
        pixel and writes one float32 (parallel, like pixgmm's), scikit-learn's
        ``GaussianMixture.score_samples`` (parameters from ``Mixture.to_sklearn()``, float64
        pixels), the vectorised NumPy answer ((N, K, D) differences, inverse covariances,
        determinant normaliser) and a per-component ``scipy.stats.multivariate_normal`` loop.
    W2  the same photo as float32, 16 random full-covariance components: log-density,
        pixgmm vs scikit-learn.
    W3  a 2000 x 2000 x 4 uint16 image, 8 diagonal components: log-density, pixgmm vs
        scikit-learn.
    Cold start: wall time of a new ``python -c "import pixgmm; ...W1 once"`` process, with
        numba's on-disk cache populated by a previous run and with it disabled
        (``PIXGMM_NUMBA_CACHE=0``).

Every contender runs in a fresh subprocess. Times are medians over repeats, and ratios
compare times measured in the same run (the machine may be shared and noisy). The
BLAS-based contenders (scikit-learn, NumPy, SciPy) are each timed with 1 and with 2 BLAS
threads (``threadpoolctl`` and the ``*_NUM_THREADS`` variables), and the faster setting is
kept; both are printed. The accuracy column compares every contender, pixgmm included,
with the independent per-pixel loop of ``tests/reference.py`` (float64, Cholesky factor
and determinant per component) on a seeded sample of pixels. Memory is
the peak resident set beyond input and output: the worker resets the kernel's high-water
mark (``/proc/self/clear_refs``), reads its resident size, runs the contender once and
subtracts that size and the output's bytes from the new high-water mark (``VmHWM``). JIT
compilation and imports happen before, so they are not counted. Contenders whose
temporaries would not fit the free memory comfortably are measured on a crop of whole
rows and their time and memory scaled linearly to the full image; the table says so.

Usage::

    python benchmarks/bench_core.py                  # full sizes, writes benchmarks/results.md
    python benchmarks/bench_core.py --repeat-runs 3  # 3 full runs, each kept in
                                                     # benchmarks/runs/, and their spread in
                                                     # benchmarks/results-spread.md
    python benchmarks/bench_core.py --summarize benchmarks/runs/*.json   # spread of past runs
    python benchmarks/bench_core.py --quick          # small sizes (a smoke test); writes to
                                                     # the temporary directory, never over
                                                     # the committed results
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _machine import cpu_model, format_load

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent / "tests"  # tests/reference.py: the independent reference
CACHE_DIR = Path(tempfile.gettempdir()) / "pixgmm-bench"
N_SAMPLE = 2000  # pixels whose values are checked against the reference loop
#: BLAS thread counts every BLAS-based contender is timed with (the faster one is kept).
BLAS_THREADS = (1, 2)
#: Environment variables that select or tune the BLAS kernel, recorded with each run.
BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

LABELS = {
    ("W1", "pixgmm"): "pixgmm `density` (steady state, table cached)",
    ("W1", "pixgmm_first"): "pixgmm `density`, first call on a new model (table built)",
    ("W1", "floor"): "floor: numba kernel reading each pixel (its 3 bytes), writing one float32",
    ("W1", "sklearn"): "scikit-learn `GaussianMixture.score_samples` (float64 pixels)",
    ("W1", "numpy"): "NumPy vectorised ((N, K, D) differences, determinant)",
    ("W1", "scipy"): "`scipy.stats.multivariate_normal` loop over components",
    ("W2", "pixgmm"): "pixgmm `log_density`",
    ("W2", "sklearn"): "scikit-learn `GaussianMixture.score_samples` (float64 pixels)",
    ("W3", "pixgmm"): "pixgmm `log_density`",
    ("W3", "sklearn"): "scikit-learn `GaussianMixture.score_samples` (float64 pixels)",
    ("cold", "cached"): "new process, numba cache populated",
    ("cold", "uncached"): "new process, `PIXGMM_NUMBA_CACHE=0` (kernels compiled)",
    ("cold", "python"): "new process running `import numpy` only (interpreter baseline)",
}


def workload_titles(quick):
    (h1, w1), (h3, w3) = sizes(quick)["W1"], sizes(quick)["W3"]
    mp = h1 * w1 / 1e6
    return {
        "W1": f"{mp:.2g} MP RGB uint8 photo ({w1} x {h1}), Jones & Rehg skin mixture (K=16, "
        "diagonal), float32 density",
        "W2": "the same photo as float32, K=16 full covariances, log-density",
        "W3": f"{w3} x {h3} x 4 uint16 image, K=8 diagonal, log-density",
        "cold": "cold start: a new `python -c` process importing pixgmm and running W1 once "
        "(wall time)",
    }


#: Contenders that allocate (N, K, D) or (N, K) float64 temporaries, by workload.
SLOW = {"sklearn", "numpy", "scipy"}


# -- inputs and models ------------------------------------------------------------------------


def sizes(quick):
    if quick:
        return {"W1": (300, 400), "W3": (200, 200)}
    return {"W1": (3000, 4000), "W3": (2000, 2000)}


def photo_path(shape):
    return CACHE_DIR / f"astronaut_{shape[1]}x{shape[0]}.npy"


def uint16_path(shape):
    return CACHE_DIR / f"uint16_{shape[1]}x{shape[0]}x4.npy"


def make_inputs(quick):
    """Create the cached input images (once) and return their paths."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    s = sizes(quick)
    p1 = photo_path(s["W1"])
    if not p1.is_file():
        from skimage import data, transform

        img = transform.resize(data.astronaut(), s["W1"], preserve_range=True, order=1)
        _save(p1, np.clip(np.rint(img), 0, 255).astype(np.uint8))
    p3 = uint16_path(s["W3"])
    if not p3.is_file():
        model = w3_model()
        rng = np.random.default_rng(3)
        h, w = s["W3"]
        # smooth label field (blocks of 50 x 50 pixels) + Gaussian noise from each component
        labels = rng.integers(0, model.n_components, (h // 50 + 1, w // 50 + 1))
        labels = np.repeat(np.repeat(labels, 50, 0), 50, 1)[:h, :w]
        sd = np.sqrt(model.covariances)
        img = model.means[labels] + rng.standard_normal((h, w, 4)) * sd[labels]
        _save(p3, np.clip(np.rint(img), 0, 65535).astype(np.uint16))
    return {"W1": p1, "W2": p1, "W3": p3}


def _save(path, array):
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, array)
    os.replace(tmp, path)


def w1_model():
    import pixgmm.models

    return pixgmm.models.jones_rehg_skin()


def w2_model():
    import pixgmm

    rng = np.random.default_rng(2)
    k = 16
    a = rng.normal(0.0, 25.0, (k, 3, 3))
    cov = a @ a.transpose(0, 2, 1) + np.eye(3) * rng.uniform(30.0, 300.0, (k, 1, 1))
    return pixgmm.Mixture(
        rng.dirichlet(np.ones(k)), rng.uniform(20, 235, (k, 3)), cov, "full", channels="RGB"
    )


def w3_model():
    import pixgmm

    rng = np.random.default_rng(3)
    k = 8
    return pixgmm.Mixture(
        rng.dirichlet(np.ones(k)),
        rng.uniform(8000, 57000, (k, 4)),
        rng.uniform(800.0, 5000.0, (k, 4)) ** 2,
        "diag",
    )


MODELS = {"W1": w1_model, "W2": w2_model, "W3": w3_model}


def load_input(workload, path):
    img = np.load(path)
    if workload == "W2":
        img = img.astype(np.float32)
    return img


def sample_index(n):
    return np.random.default_rng(0).integers(0, n, N_SAMPLE)


# -- contenders (run inside a worker process) ----------------------------------------------


def _floor_kernel():
    import numba

    @numba.njit(parallel=True, nogil=True, fastmath=True)
    def floor(X, out):  # X is (N, 3): every channel of the pixel is read
        for i in numba.prange(X.shape[0]):
            out[i] = np.float32(X[i, 0]) + np.float32(X[i, 1]) + np.float32(X[i, 2])

    return floor


def _numpy_density(X, model):
    """The usual vectorised answer: (N, K, D) differences and a determinant normaliser."""
    means = model.means
    cov = model.covariances
    if model.covariance_type == "diag":
        cov = np.stack([np.diag(c) for c in cov])
    inv = np.linalg.inv(cov)
    d = X.shape[1]
    norm = 1.0 / np.sqrt((2 * np.pi) ** d * np.linalg.det(cov))
    diff = X[:, None, :].astype(np.float64) - means[None, :, :]  # (N, K, D)
    maha = np.einsum("nkd,kde,nke->nk", diff, inv, diff)
    return (model.weights * norm * np.exp(-0.5 * maha)).sum(axis=1)


def _scipy_density(X, model):
    from scipy.stats import multivariate_normal

    cov = model.covariances
    if model.covariance_type == "diag":
        cov = np.stack([np.diag(c) for c in cov])
    Xf = X.astype(np.float64)
    p = np.zeros(X.shape[0])
    for w, mu, c in zip(model.weights, model.means, cov):
        p += w * multivariate_normal(mu, c).pdf(Xf)
    return p


def contender(workload, name, img, model):
    """Return ``(setup, run, kind)``: run() computes the result, kind is 'pdf' or 'log'."""
    import pixgmm

    X = img.reshape(-1, img.shape[-1])
    if name == "floor":
        floor = _floor_kernel()

        def run():
            out = np.empty(X.shape[0], np.float32)
            floor(X, out)
            return out.reshape(img.shape[:-1])

        return run, run, None
    if name in ("pixgmm", "pixgmm_first"):
        if workload == "W1":

            def call():
                return pixgmm.density(img, model, dtype=np.float32)

            kind = "pdf"
        else:

            def call():
                return pixgmm.log_density(img, model)

            kind = "log"
        if name == "pixgmm":
            return call, call, kind

        def first():
            pixgmm.clear_cache()
            return call()

        def setup():  # compile, then drop the table so the baseline holds none
            call()
            pixgmm.clear_cache()

        return setup, first, kind
    if name == "sklearn":
        gmm = model.to_sklearn()

        def run():
            return gmm.score_samples(X.astype(np.float64))

        return (lambda: gmm.score_samples(X[:100].astype(np.float64))), run, "log"
    if name == "numpy":
        return (lambda: _numpy_density(X[:100], model)), (lambda: _numpy_density(X, model)), "pdf"
    if name == "scipy":
        return (lambda: _scipy_density(X[:100], model)), (lambda: _scipy_density(X, model)), "pdf"
    raise ValueError(f"unknown contender {name!r}")


def _proc_status(key):
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def worker(spec):
    """Run one contender as described by ``spec``; return a JSON-able result."""
    workload, name = spec["workload"], spec["name"]
    blas = None
    if spec.get("blas_threads"):
        blas = _limit_blas(spec["blas_threads"])
    img = load_input(workload, spec["path"])
    rows = spec.get("rows")
    if rows:
        img = np.ascontiguousarray(img[:rows])
    model = MODELS[workload]()
    setup, run, kind = contender(workload, name, img, model)
    setup()  # JIT compilation, imports, caches: not timed, not counted
    engine = None
    if name.startswith("pixgmm"):  # the engine the timed call runs (after setup's caching)
        import pixgmm

        func = pixgmm.density if workload == "W1" else pixgmm.log_density
        engine = pixgmm.explain(
            func, img, model, **({"dtype": np.float32} if workload == "W1" else {})
        )
    gc.collect()
    if _reset_peak():
        base = _proc_status("VmRSS")
        mem_method = "VmHWM"
    else:  # no /proc: ru_maxrss is a high-water mark of the whole process, an upper bound
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        mem_method = "ru_maxrss"
    times = []
    extra = None
    sample = None
    for r in range(spec["repeats"]):
        t0 = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - t0)
        if r == 0:
            if mem_method == "VmHWM":
                peak = _proc_status("VmHWM")
            else:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            extra = max(0, peak - base - out.nbytes)
            if kind is not None:
                flat = np.asarray(out, dtype=np.float64).reshape(-1)
                idx = sample_index(flat.shape[0])
                with np.errstate(divide="ignore"):
                    sample = (np.log(flat[idx]) if kind == "pdf" else flat[idx]).tolist()
        del out
        gc.collect()
    return {
        "times": times,
        "extra_bytes": extra,
        "mem_method": mem_method,
        "sample": sample,
        "n_pixels": int(np.prod(img.shape[:-1])),
        "blas": blas,
        "engine": engine,
    }


def _limit_blas(n):
    """Limit every BLAS library of this process to ``n`` threads; what is then in effect."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:  # the environment variables set by the driver still apply
        return None
    import numpy.linalg  # noqa: F401  (loads the BLAS library before it is limited)

    threadpool_limits(limits=n, user_api="blas")
    return [
        {k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
        for lib in threadpool_info()
        if lib.get("user_api") == "blas"
    ]


# -- driver -------------------------------------------------------------------------------


def run_worker(spec):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    env = dict(os.environ)
    if spec.get("blas_threads"):
        n = str(spec["blas_threads"])
        env.update(OPENBLAS_NUM_THREADS=n, MKL_NUM_THREADS=n, OMP_NUM_THREADS=n)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(
            f"worker {spec['workload']}/{spec['name']} failed ({proc.returncode}):\n{proc.stderr}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def estimated_bytes(workload, name, n, model):
    """A generous estimate of a slow contender's peak temporaries on n pixels."""
    k, d = model.n_components, model.n_features
    if name == "numpy":
        return n * k * d * 8 * 3 + n * k * 8 * 3
    if name == "sklearn":
        return n * k * 8 * 3 + n * d * 8 * 4
    if name == "scipy":
        return n * d * 8 * 4 + n * 8 * 6
    return 0


def available_bytes():
    try:
        import psutil

        return psutil.virtual_memory().available
    except ImportError:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    return 0


_REFERENCE = {}


def reference_sample(workload, path, rows):
    """The independent reference's float64 log-density at the sampled pixels.

    ``tests/reference.py``'s per-pixel, per-component loop (Cholesky factor, triangular
    solve, log-determinant, log-sum-exp), which shares no code with pixgmm's engines.
    """
    key = (workload, str(path), rows)
    if key not in _REFERENCE:
        if str(TESTS) not in sys.path:
            sys.path.insert(0, str(TESTS))
        import reference

        img = load_input(workload, path)
        if rows:
            img = img[:rows]
        X = img.reshape(-1, img.shape[-1])
        idx = sample_index(X.shape[0])
        _REFERENCE[key] = reference.log_density_loop(X[idx], MODELS[workload]())
    return _REFERENCE[key]


def max_log_diff(sample, ref):
    """Largest |log p - log p_ref| / max(1, |log p_ref|); inf where finiteness differs."""
    if sample is None:
        return None
    s = np.asarray(sample)
    both = np.isfinite(s) & np.isfinite(ref)
    err = np.abs(s[both] - ref[both]) / np.maximum(1.0, np.abs(ref[both]))
    worst = float(np.max(err)) if both.any() else 0.0
    mismatch = int(np.count_nonzero(np.isfinite(s) != np.isfinite(ref)))
    return worst if mismatch == 0 else float("inf")


def bench_workload(workload, path, names, args):
    """Run every contender of a workload; fast ones in ``args.rounds`` interleaved rounds.

    The fast contenders (pixgmm, the floor) take milliseconds, so a burst of load from
    another process can move one process's median; running them round-robin in several
    fresh processes and pooling the times spreads such bursts over all of them.
    """
    img = np.load(path, mmap_mode="r")
    h = img.shape[0]
    n_full = int(np.prod(img.shape[:-1]))
    model = MODELS[workload]()
    avail = available_bytes()
    specs = {}
    for name in names:
        slow = name in SLOW
        rows = None
        if slow and not args.quick:
            need = estimated_bytes(workload, name, n_full, model)
            if args.slow_crop == "always" or (args.slow_crop == "auto" and need * 2 > avail):
                rows = max(1, h // 4)
        specs[name] = {
            "workload": workload,
            "name": name,
            "path": str(path),
            "repeats": args.slow_repeats if slow else args.repeats,
            "rows": rows,
        }
    results = {name: [] for name in names}
    fast = [n for n in names if n not in SLOW]
    for _ in range(args.rounds):
        for name in fast:
            results[name].append(run_worker(specs[name]))
    blas = {}
    for name in names:
        if name in SLOW:
            # each BLAS setting in its own process; the faster median is the contender's time
            tried = {}
            for n in args.blas_threads:
                res = run_worker({**specs[name], "blas_threads": n})
                tried[n] = res
                print(
                    f"  {workload} {name} with {n} BLAS thread(s): {np.median(res['times']):.3f} s"
                )
            best = min(tried, key=lambda n: np.median(tried[n]["times"]))
            results[name].append(tried[best])
            blas[name] = {
                "kept": best,
                "median_s": {str(n): float(np.median(r["times"])) for n, r in tried.items()},
                "libraries": tried[best]["blas"],
            }
    rows_out = []
    for name in names:
        runs = results[name]
        times = [t for res in runs for t in res["times"]]
        first = runs[0]
        scale = n_full / first["n_pixels"]
        med = float(np.median(times)) * scale
        extras = [res["extra_bytes"] for res in runs if res["extra_bytes"] is not None]
        extra = max(extras) * scale if extras else None
        rows = specs[name]["rows"]
        ref = reference_sample(workload, path, rows) if first["sample"] is not None else None
        diff = max_log_diff(first["sample"], ref)
        print(f"  {workload} {name}{' (crop)' if rows else ''}: {med:.4f} s")
        if name in blas:
            blas[name]["median_s"] = {
                n: t * scale for n, t in blas[name]["median_s"].items()
            }  # scaled like the row
        rows_out.append(
            {
                "workload": workload,
                "name": name,
                "median_s": med,
                "times": times,
                "extra_bytes": extra,
                "mem_method": first["mem_method"],
                "scaled_from_pixels": first["n_pixels"] if scale != 1 else None,
                "scale": scale,
                "max_log_diff": diff,
                "out_dtype": OUT_DTYPE[workload] if name.startswith("pixgmm") else "float64",
                "repeats": len(times),
                "blas": blas.get(name),
                "engine": first.get("engine"),
            }
        )
    return rows_out


#: pixgmm's output dtype per workload (the slow contenders compute in float64).
OUT_DTYPE = {"W1": "float32", "W2": "float32", "W3": "float64"}


COLD_CODE = (
    "import numpy as np, pixgmm, pixgmm.models; "
    "img = np.load({path!r}); "
    "pixgmm.density(img, pixgmm.models.jones_rehg_skin(), dtype=np.float32)"
)


def sklearn_raw_error(workload, path):
    """Largest |error| of scikit-learn's log-density when handed the raw integer pixels.

    Its ``score_samples`` expands ``(x - mu)^2`` and squares ``X`` in the input dtype, which
    wraps around for uint8 and uint16; the benchmark therefore converts to float64 first.
    """
    try:
        import sklearn  # noqa: F401
    except ImportError:
        return None
    img = load_input(workload, path)
    X = img.reshape(-1, img.shape[-1])
    idx = sample_index(X.shape[0])
    raw = MODELS[workload]().to_sklearn().score_samples(np.ascontiguousarray(X[idx]))
    return float(np.max(np.abs(raw - reference_sample(workload, path, None))))


def bench_cold(path, args):
    code = COLD_CODE.format(path=str(path))
    results = []
    env = dict(os.environ)
    env.pop("PIXGMM_NUMBA_CACHE", None)
    subprocess.run([sys.executable, "-c", code], env=env, check=True)  # populate the cache
    cases = [
        ("cached", env, code),
        ("uncached", {**env, "PIXGMM_NUMBA_CACHE": "0"}, code),
        ("python", env, "import numpy"),
    ]
    for name, e, c in cases:
        print(f"  cold {name} ...", end="", flush=True)
        times = []
        for _ in range(args.cold_repeats):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", c], env=e, check=True)
            times.append(time.perf_counter() - t0)
        med = float(np.median(times))
        print(f" {med:.3f} s")
        results.append(
            {
                "workload": "cold",
                "name": name,
                "median_s": med,
                "times": times,
                "extra_bytes": None,
                "mem_method": None,
                "scaled_from_pixels": None,
                "scale": 1.0,
                "max_log_diff": None,
                "out_dtype": None,
                "repeats": len(times),
                "blas": None,
                "engine": None,
            }
        )
    return results


def machine():
    cpu = cpu_model()
    import numba

    mem = None
    try:
        import psutil

        mem = psutil.virtual_memory().total
    except ImportError:
        pass
    blas = []
    try:
        from threadpoolctl import threadpool_info

        blas = [
            {k: lib.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
            for lib in threadpool_info()
            if lib.get("user_api") == "blas"
        ]
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "blas": blas,
        "blas_env": {k: os.environ.get(k) for k in BLAS_ENV},
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "memory_gb": round(mem / 2**30, 1) if mem else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_end": _loadavg(),
    }


def _loadavg():
    """The 1-, 5- and 15-minute load averages, or None."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _fmt_time(s):
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1000:.1f} ms"


def _fmt_mem(b):
    if b is None:
        return "—"
    return f"{b / 2**20:,.0f} MB"


def _fmt_ratio(r):
    if r >= 100:
        return f"{r:,.0f}x"
    if r >= 10:
        return f"{r:.1f}x"
    return f"{r:.2f}x"


def _fmt_diff(d):
    if d is None:
        return "—"
    if d == float("inf"):
        return "mismatch (inf/0)"
    return f"{d:.1e}"


def ratios(rows):
    """Add ``ratio``: each row's median time over pixgmm's (or the cached cold start's)."""
    ref = {}
    for r in rows:
        if r["name"] in ("pixgmm", "cached"):
            ref[r["workload"]] = r["median_s"]
    for r in rows:
        r["ratio"] = r["median_s"] / ref[r["workload"]]
    return rows


def targets(rows):
    """``(what, value, met)`` for every stated target this run has the rows for."""
    t = {(r["workload"], r["name"]): r for r in rows}

    def get(w, n):
        return t[(w, n)]["median_s"] if (w, n) in t else None

    out = []
    floor, steady, first = get("W1", "floor"), get("W1", "pixgmm"), get("W1", "pixgmm_first")
    if floor and steady:
        v = steady / floor
        out.append(("W1 steady state within 2x of the floor", f"{v:.2f}x the floor", v <= 2))
    if floor and first:
        v = first / floor
        out.append(("W1 first call within 10x of the floor", f"{v:.1f}x the floor", v <= 10))
    if steady and get("W1", "sklearn"):
        v = get("W1", "sklearn") / steady
        out.append(("W1 >= 300x faster than scikit-learn", f"{v:,.0f}x", v >= 300))
    for n, what in (("pixgmm", "steady state"), ("pixgmm_first", "first call")):
        if (("W1", n) in t) and t[("W1", n)]["extra_bytes"] is not None:
            v = t[("W1", n)]["extra_bytes"] / 2**20
            out.append(
                (f"W1 peak memory beyond input+output < 200 MB ({what})", f"{v:.0f} MB", v < 200)
            )
    for w in ("W2", "W3"):
        if get(w, "pixgmm") and get(w, "sklearn"):
            v = get(w, "sklearn") / get(w, "pixgmm")
            out.append((f"{w} >= 30x faster than scikit-learn", f"{v:,.0f}x", v >= 30))
    if get("cold", "cached"):
        v = get("cold", "cached")
        out.append(("cold start with the numba cache < 1 s", f"{v:.2f} s", v < 1))
    return out


def _machine_line(info):
    env = {k: v for k, v in info.get("blas_env", {}).items() if v is not None}
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} ({b.get('architecture') or '?'} kernel, "
        f"{b['num_threads']} threads by default)"
        for b in info.get("blas") or []
    )
    return (
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['numba_threads']} numba threads), "
        + (f"{info['memory_gb']} GB RAM, " if info["memory_gb"] else "")
        + f"{info['os']}; Python {info['python']}, NumPy {info['numpy']}, numba {info['numba']}"
        + (f"; BLAS: {blas}" if blas else "")
        + "; "
        + (
            "BLAS environment: " + ", ".join(f"{k}={v}" for k, v in env.items())
            if env
            else "OPENBLAS_CORETYPE not set"
        )
        + f"; {info['date']}. Load average (1 / 5 / 15 min) {format_load(info.get('load_start'))} "
        f"at the start, {format_load(info.get('load_end'))} at the end, on {info['cores']} cores; "
        f"the run took {info.get('duration_s', 0) / 60:.1f} min."
    )


def markdown(rows, info, args):
    lines = [
        "# pixgmm core benchmark",
        "",
        _machine_line(info),
        "",
        f"Command: `{info.get('command', 'python benchmarks/bench_core.py')}`. "
        f"Median of {args.repeats} repeats in each of {args.rounds} interleaved processes for "
        f"pixgmm and the floor, {args.slow_repeats} repeats for each slow contender at each "
        f"BLAS thread count ({', '.join(map(str, args.blas_threads))}; the faster is kept), "
        f"{args.cold_repeats} cold starts; each contender in fresh processes. "
        "Ratio = time / pixgmm's time on the same workload in the same run "
        "(cold start: / the cached cold start). "
        "Memory = peak resident set beyond input and output (high-water mark `VmHWM` after "
        "resetting it via `/proc/self/clear_refs`), JIT compilation excluded. "
        "Max rel. Δ log p = largest |log p - log p_ref| / max(1, |log p_ref|) over "
        f"{N_SAMPLE} sampled pixels, against the independent per-pixel float64 loop of "
        "`tests/reference.py` (`log_density_loop`); pixgmm's W1 and W2 outputs are float32, "
        "so up to 6e-8 there is the rounding of the output itself.",
        "",
    ]
    for w in ("W1", "W2", "W3", "cold"):
        sel = [r for r in rows if r["workload"] == w]
        if not sel:
            continue
        lines += [f"**{w}**: {workload_titles(args.quick)[w]}", ""]
        lines += [
            "| Method | Median time | Ratio to pixgmm | Peak extra memory | Max rel. Δ log p |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in sel:
            label = LABELS[(w, r["name"])]
            if r.get("engine"):
                label += f" [`{r['engine']}` engine]"
            if r.get("blas"):
                label += f" [{r['blas']['kept']} BLAS thread{'s' if r['blas']['kept'] > 1 else ''}]"
            if r["scaled_from_pixels"]:
                label += (
                    f" ‡ measured on {r['scaled_from_pixels'] / 1e6:.1f} MP, "
                    f"scaled x{r['scale']:.0f}"
                )
            lines.append(
                f"| {label} | {_fmt_time(r['median_s'])} | {_fmt_ratio(r['ratio'])} | "
                f"{_fmt_mem(r['extra_bytes'])} | {_fmt_diff(r['max_log_diff'])} |"
            )
        lines.append("")
    if any(r["scaled_from_pixels"] for r in rows):
        lines += [
            "‡ Too big for the free memory at full size: measured on a crop of whole rows, "
            "time and memory scaled linearly to the full image.",
            "",
        ]
    blas_rows = [r for r in rows if r.get("blas")]
    if blas_rows:
        counts = args.blas_threads
        lines += [
            "BLAS threads: every BLAS-based contender was timed in this run with each thread "
            "count (its own process, `threadpoolctl` limits and `*_NUM_THREADS`), and the "
            "table above keeps the faster.",
            "",
            "| Workload | Contender | "
            + " | ".join(f"{n} BLAS thread{'s' if n > 1 else ''}" for n in counts)
            + " | kept |",
            "|---|---|" + "---:|" * len(counts) + "---:|",
        ]
        for r in blas_rows:
            med = r["blas"]["median_s"]
            lines.append(
                f"| {r['workload']} | {r['name']} | "
                + " | ".join(_fmt_time(med[str(n)]) if str(n) in med else "—" for n in counts)
                + f" | {r['blas']['kept']} |"
            )
        lines.append("")
    if any(r["name"] == "sklearn" for r in rows):
        lines += [
            "scikit-learn is given float64 pixels: on the raw integer pixels its "
            "`score_samples` squares `X` in the input dtype, which wraps around"
            + "".join(
                f"; {w} raw {args.raw_err_dtype[w]}: max |Δ log p| = {e:.3g}"
                for w, e in args.raw_err.items()
                if e is not None
            )
            + ".",
            "",
        ]
    lines += [
        "Targets, for this run only (load average "
        f"{format_load(info.get('load_start'))} at the start, "
        f"{format_load(info.get('load_end'))} at the end; reported, never asserted):",
        "",
    ]
    for what, value, ok in targets(rows):
        lines.append(f"- {what}: {value} — {'met' if ok else 'NOT met'} in this run")
    lines.append("")
    return "\n".join(lines)


def _shown_path(path):
    """``path`` relative to the repository when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def spread(runs):
    """Markdown: min / median / max of each row's time and ratio across several runs."""
    order = []
    times, ratios_, met = {}, {}, {}
    for run in runs:
        for r in run["rows"]:
            key = (r["workload"], r["name"])
            if key not in times:
                order.append(key)
                times[key], ratios_[key] = [], []
            times[key].append(r["median_s"])
            ratios_[key].append(r["ratio"])
        for what, value, ok in targets(run["rows"]):
            met.setdefault(what, []).append((value, ok))
    n = len(runs)
    lines = [
        "# pixgmm core benchmark: spread across runs",
        "",
        f"{n} run(s) of `python benchmarks/bench_core.py`, each kept as its own results file:",
        "",
    ]
    for run in runs:
        info = run["machine"]
        lines.append(
            f"- {_shown_path(run.get('file', '?'))}: {info['date']}, load average "
            f"{format_load(info.get('load_start'))} -> {format_load(info.get('load_end'))}, "
            f"{info.get('duration_s', 0) / 60:.1f} min"
        )
    first = runs[0]["machine"]
    lines += [
        "",
        _machine_line(first).split("; Python")[0] + ".",
        "",
        "Each cell is min / median / max over the runs of that row's median time (ratio: "
        "time / pixgmm's time in the same run).",
        "",
        "| Workload | Method | Time min / median / max | Ratio min / median / max | max / min |",
        "|---|---|---:|---:|---:|",
    ]
    for key in order:
        t, q = times[key], ratios_[key]
        lines.append(
            f"| {key[0]} | {LABELS[key]} | "
            + " / ".join(_fmt_time(x) for x in (min(t), float(np.median(t)), max(t)))
            + " | "
            + " / ".join(_fmt_ratio(x) for x in (min(q), float(np.median(q)), max(q)))
            + f" | {max(t) / min(t):.2f} |"
        )
    lines += ["", "Targets, run by run:", ""]
    for what, results in met.items():
        n_met = sum(ok for _, ok in results)
        lines.append(
            f"- {what}: met in {n_met} of {len(results)} runs ("
            + ", ".join(f"{v} {'met' if ok else 'NOT met'}" for v, ok in results)
            + ")"
        )
    lines.append("")
    return "\n".join(lines)


def run_once(args):
    """One complete benchmark run: ``(rows, machine info)``."""
    t0 = time.perf_counter()
    only = set(args.only.split(",")) if args.only else {"W1", "W2", "W3", "cold"}
    load_start = _loadavg()
    paths = make_inputs(args.quick)
    plan = {
        "W1": ["pixgmm", "pixgmm_first", "floor", "sklearn", "numpy", "scipy"],
        "W2": ["pixgmm", "sklearn"],
        "W3": ["pixgmm", "sklearn"],
    }
    rows = []
    for w, names in plan.items():
        if w in only:
            rows += bench_workload(w, paths[w], names, args)
    if "cold" in only:
        rows += bench_cold(paths["W1"], args)
    rows = ratios(rows)
    args.raw_err = {w: sklearn_raw_error(w, paths[w]) for w in ("W1", "W3") if w in only}
    args.raw_err_dtype = {"W1": "uint8", "W3": "uint16"}
    info = machine()
    info["load_start"] = load_start
    info["duration_s"] = time.perf_counter() - t0
    info["command"] = "python benchmarks/bench_core.py" + (
        " " + " ".join(args.argv) if args.argv else ""
    )
    return rows, info


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes, few repeats (smoke test)")
    p.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results Markdown (default benchmarks/results.md; with --quick a file in the "
        "temporary directory, so a quick run never replaces the committed results)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write the raw results here")
    p.add_argument(
        "--repeat-runs",
        type=int,
        default=1,
        help="complete runs one after another; each is written to --runs-dir and their "
        "spread to --spread-output",
    )
    p.add_argument(
        "--runs-dir",
        type=Path,
        default=None,
        help="where each run's results go with --repeat-runs (default benchmarks/runs)",
    )
    p.add_argument(
        "--spread-output",
        type=Path,
        default=None,
        help="spread summary (default benchmarks/results-spread.md)",
    )
    p.add_argument(
        "--summarize",
        nargs="+",
        type=Path,
        default=None,
        metavar="RUN.json",
        help="write the spread of these earlier runs' JSON files and exit",
    )
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--slow-repeats", type=int, default=None)
    p.add_argument("--cold-repeats", type=int, default=None)
    p.add_argument(
        "--rounds", type=int, default=None, help="interleaved processes per fast contender"
    )
    p.add_argument(
        "--blas-threads",
        default=",".join(map(str, BLAS_THREADS)),
        help="BLAS thread counts to time the BLAS-based contenders with (default 1,2)",
    )
    p.add_argument(
        "--slow-crop",
        choices=("auto", "always", "never"),
        default="auto",
        help="measure slow contenders on a quarter of the rows and scale (auto: when memory is short)",
    )
    p.add_argument("--only", default=None, help="comma-separated workloads, e.g. W1,cold")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    scratch = CACHE_DIR / "quick"
    spread_out = args.spread_output or (
        scratch / "results-spread.md" if args.quick else HERE / "results-spread.md"
    )
    if args.summarize:
        runs = []
        for f in args.summarize:
            data = json.loads(f.read_text(encoding="utf-8"))
            data["file"] = str(f)
            runs.append(data)
        _write(spread_out, spread(runs))
        print(spread(runs))
        return 0
    args.argv = [a for a in argv if not a.startswith("--worker")]
    args.output = args.output or (scratch / "results.md" if args.quick else HERE / "results.md")
    runs_dir = args.runs_dir or (scratch / "runs" if args.quick else HERE / "runs")
    args.repeats = args.repeats or (1 if args.quick else 15)
    args.slow_repeats = args.slow_repeats or 3
    args.cold_repeats = args.cold_repeats or (1 if args.quick else 5)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.blas_threads = [int(n) for n in str(args.blas_threads).split(",") if n]
    runs = []
    for i in range(args.repeat_runs):
        if args.repeat_runs > 1:
            print(f"run {i + 1} of {args.repeat_runs}")
        rows, info = run_once(args)
        text = markdown(rows, info, args)
        data = {"machine": info, "rows": rows}
        if args.repeat_runs > 1:
            stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            base = runs_dir / f"results-{stamp}-run{i + 1}"
            _write(base.with_suffix(".md"), text)
            _write(base.with_suffix(".json"), json.dumps(data, indent=1))
            data["file"] = str(base.with_suffix(".json"))
            print(f"wrote {base}.md and .json")
        runs.append(data)
        _write(args.output, text)
        if args.json:
            _write(args.json, json.dumps(data, indent=1))
        print()
        print(text)
    if len(runs) > 1:
        _write(spread_out, spread(runs))
        print(spread(runs))
        print(f"wrote {spread_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
