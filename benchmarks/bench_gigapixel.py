"""A gigapixel RGB image on disk -> its skin-density map on disk, in bounded memory.

1. Generates a synthetic RGB uint8 image (default 32768 x 32768 = 1.07 gigapixels,
   3.2 GB raw) in a Zarr store, in 4096 x 4096 chunks, Zstandard-compressed.
   It is made once and reused (it is only regenerated when missing or incomplete).
2. In-memory, single-process reference rate: ``pixgmm.density`` on an in-memory
   NumPy image (an 8192 x 8192 crop of the same image), colour table warm.
3. Out-of-core: ``open_image_lazy`` -> ``pixgmm.density`` (dask array) ->
   ``write_zarr``, on dask's threaded scheduler. Peak resident memory and
   throughput (pixels / wall time, reading, table build, evaluation, writing
   included) are reported, and the ratio to the in-memory rate.

Each phase runs in its own process, so each peak RSS (``ru_maxrss``) is its own.
Also reported: the task graph (number of tasks and pickled bytes) against the
number of chunks, for pixgmm's graph and for a naive ``map_blocks`` that
closes over the model.

Usage::

    python benchmarks/bench_gigapixel.py                 # 32768 x 32768 (about 15 GB of disk)
    python benchmarks/bench_gigapixel.py --size 8192     # quick run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import pixgmm

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "jones_rehg_1999.json"


def skin_model():
    """The Jones & Rehg skin mixture when the shared data is there, else a similar one."""
    if SHARED.is_file():
        data = json.loads(SHARED.read_text(encoding="utf-8"))
        p = data["skin"]
        order = data.get("color_order", "RGB")
        return pixgmm.Mixture(p["weights"], p["means"], p["variances"], "diag", channels=order)
    rng = np.random.default_rng(1)
    k = 16
    return pixgmm.Mixture(
        np.full(k, 1 / k),
        rng.uniform([120, 60, 40], [255, 200, 180], (k, 3)),
        rng.uniform(50, 1500, (k, 3)),
        "diag",
        channels="RGB",
    )


def synthetic_block(block_info=None):
    """A 'photo-like' RGB uint8 block: smooth colour fields, skin-toned blobs, sensor noise."""
    info = block_info[None]
    (r0, r1), (c0, c1), _ = info["array-location"]
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float32)
    rng = np.random.default_rng(list(info["chunk-location"]))
    out = np.empty((r1 - r0, c1 - c0, 3), np.float32)
    for ch, (fx, fy, phase) in enumerate(
        [(211.0, 347.0, 0.0), (389.0, 157.0, 1.3), (97.0, 263.0, 2.1)]
    ):
        out[..., ch] = 128 + 90 * np.sin(xx / fx + phase) * np.cos(yy / fy - phase)
    # skin-toned blobs
    for _ in range(6):
        cy, cx = rng.uniform(r0, r1), rng.uniform(c0, c1)
        rad = rng.uniform(100, 600)
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 < rad * rad
        out[mask] = rng.uniform([170, 110, 90], [235, 170, 140]).astype(np.float32)
    out += rng.normal(0, 6, out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def phase_generate(args):
    import dask
    import dask.array as da

    from pixgmm import bigimage

    path = Path(args.dir) / f"image-{args.size}-{args.chunk}.zarr"
    if bigimage.is_complete(path):
        return {"image": str(path), "generated": False}
    t = time.perf_counter()
    template = da.empty(
        (args.size, args.size, 3), dtype=np.uint8, chunks=(args.chunk, args.chunk, 3)
    )
    image = da.map_blocks(
        synthetic_block, dtype=np.uint8, chunks=template.chunks, meta=np.empty((0, 0, 0), np.uint8)
    )
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        bigimage.write_zarr(image, path, overwrite=True)
    return {"image": str(path), "generated": True, "seconds": time.perf_counter() - t}


def phase_inmemory(args):
    import zarr

    z = zarr.open_array(args.image, mode="r")
    crop = min(args.size, 8192)
    img = z[:crop, :crop]  # in memory
    model = skin_model()
    times = []
    for _ in range(args.repeat + 1):
        t = time.perf_counter()
        pixgmm.density(img, model)
        times.append(time.perf_counter() - t)
    cold, warm = times[0], float(np.median(times[1:]))
    n = crop * crop
    return {
        "pixels": n,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "rate_mpix_s": n / warm / 1e6,
        "cold_rate_mpix_s": n / cold / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


def phase_outofcore(args):
    import dask

    from pixgmm import bigimage

    out = Path(args.dir) / f"density-{args.size}.zarr"
    model = skin_model()
    t = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        image = bigimage.open_image_lazy(args.image, chunks=args.chunk)
        lazy = pixgmm.density(image, model)
        stored = bigimage.write_zarr(lazy, out, overwrite=True, compressors=args.compressors)
    seconds = time.perf_counter() - t
    n = image.shape[0] * image.shape[1]
    # spot check against the in-memory result on one chunk
    c = args.chunk
    expected = pixgmm.density(bigimage.open_image_lazy(args.image)[:c, :c].compute(), model)
    ok = bool(np.allclose(stored[:c, :c], expected, rtol=1e-12))
    info = {
        "pixels": n,
        "seconds": seconds,
        "rate_mpix_s": n / seconds / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "chunks": lazy.npartitions,
        "complete": bigimage.is_complete(out),
        "spot_check_equal": ok,
        "output_bytes_on_disk": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
    }
    if not args.keep_output:
        shutil.rmtree(out)
    return info


def graph_report(args):
    """Tasks and pickled graph bytes: pixgmm's graph vs a map_blocks closing over the model."""
    import cloudpickle
    import dask.array as da

    model = skin_model()
    image = da.zeros((args.size, args.size, 3), dtype=np.uint8, chunks=(args.chunk, args.chunk, 3))
    rows = {}
    pix = pixgmm.density(image, model)
    naive = image.map_blocks(
        lambda b: pixgmm.density(b, model, method="table"), drop_axis=2, dtype=np.float64
    )
    for label, arr in (("pixgmm", pix), ("naive map_blocks", naive)):
        graph = dict(arr.__dask_graph__())
        whole = len(cloudpickle.dumps(graph))
        per_task = sum(len(cloudpickle.dumps(v)) for v in graph.values())
        rows[label] = {"tasks": len(graph), "graph_bytes": whole, "sum_task_bytes": per_task}
    return {
        "chunks": pix.npartitions,
        "model_pickled_bytes": len(cloudpickle.dumps(model)),
        **rows,
    }


def run_phase(phase, args, **extra):
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        phase,
        "--size",
        str(args.size),
        "--chunk",
        str(args.chunk),
        "--dir",
        args.dir,
        "--threads",
        str(args.threads),
        "--repeat",
        str(args.repeat),
    ]
    if args.keep_output:
        cmd.append("--keep-output")
    if args.compressors == "none":
        cmd += ["--compressors", "none"]
    for k, v in extra.items():
        cmd += [f"--{k}", str(v)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        sys.exit(f"phase {phase} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=32768, help="image side in pixels (default 32768)")
    p.add_argument("--chunk", type=int, default=4096, help="chunk side in pixels (default 4096)")
    p.add_argument(
        "--dir",
        default=os.path.join(tempfile.gettempdir(), "pixgmm-gigapixel"),
        help="where the Zarr stores go",
    )
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="dask threads")
    p.add_argument("--repeat", type=int, default=3, help="in-memory repeats (median)")
    p.add_argument(
        "--compressors",
        default="auto",
        choices=["auto", "none"],
        help="output codec: zarr's default (Zstandard) or none",
    )
    p.add_argument("--keep-output", action="store_true", help="keep the density store")
    p.add_argument("--phase", choices=["generate", "inmemory", "outofcore"], help=argparse.SUPPRESS)
    p.add_argument("--image", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.compressors == "none":
        args.compressors = None

    if args.phase:
        fn = {"generate": phase_generate, "inmemory": phase_inmemory, "outofcore": phase_outofcore}
        print(json.dumps(fn[args.phase](args)))
        return

    Path(args.dir).mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.dir).free
    need = args.size**2 * (3 + 8) * 1.1
    print(
        f"pixgmm {pixgmm.__version__} | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} cores | python {platform.python_version()}"
    )
    print(
        f"image {args.size} x {args.size} RGB uint8 ({args.size**2 / 1e9:.2f} Gpixels), "
        f"chunks {args.chunk} x {args.chunk}, {args.threads} dask threads, output float64 "
        f"({'Zstandard' if args.compressors == 'auto' else 'uncompressed'})"
    )
    if free < need:
        sys.exit(
            f"not enough disk in {args.dir}: {free / 1e9:.1f} GB free, about "
            f"{need / 1e9:.1f} GB needed (pass --dir or a smaller --size)"
        )

    gen = run_phase("generate", args)
    if gen["generated"]:
        print(f"generated {gen['image']} in {gen['seconds']:.1f} s")
    else:
        print(f"reusing {gen['image']}")
    mem = run_phase("inmemory", args, image=gen["image"])
    ooc = run_phase("outofcore", args, image=gen["image"])
    graph = graph_report(args)

    ratio = ooc["rate_mpix_s"] / mem["rate_mpix_s"]
    print(
        f"in-memory, one process : {mem['rate_mpix_s']:7.1f} Mpixel/s (warm table; "
        f"{mem['cold_rate_mpix_s']:.1f} with the table build), {mem['pixels'] / 1e6:.0f} Mpixels, "
        f"peak RSS {mem['peak_rss_mb']:.0f} MB"
    )
    print(
        f"out-of-core, Zarr->Zarr: {ooc['rate_mpix_s']:7.1f} Mpixel/s ({ooc['seconds']:.1f} s for "
        f"{ooc['pixels'] / 1e9:.2f} Gpixels, {ooc['chunks']} chunks), peak RSS "
        f"{ooc['peak_rss_mb']:.0f} MB, output {ooc['output_bytes_on_disk'] / 1e9:.2f} GB on disk"
    )
    print(
        f"throughput ratio       : {ratio:.2f} (goal >= 0.5)  "
        f"{'OK' if ratio >= 0.5 else 'BELOW GOAL'}"
    )
    print(
        f"peak memory            : {ooc['peak_rss_mb']:.0f} MB (goal < 2048 MB)  "
        f"{'OK' if ooc['peak_rss_mb'] < 2048 else 'ABOVE GOAL'}"
    )
    print(f"store complete: {ooc['complete']}, spot check equals NumPy: {ooc['spot_check_equal']}")
    print(
        f"task graph for {graph['chunks']} chunks (model pickles to {graph['model_pickled_bytes']} B):"
    )
    for label in ("pixgmm", "naive map_blocks"):
        g = graph[label]
        print(
            f"  {label:17s}: {g['tasks']:5d} tasks, graph {g['graph_bytes'] / 1024:8.1f} KiB pickled "
            f"whole, {g['sum_task_bytes'] / 1024:8.1f} KiB pickled task by task"
        )


if __name__ == "__main__":
    main()
