"""A gigapixel RGB image on disk -> its skin-density map on disk, in bounded memory.

1. Generates a synthetic RGB uint8 image (default 32768 x 32768 = 1.07 gigapixels,
   3.2 GB raw) in a Zarr store, in 4096 x 4096 chunks, Zstandard-compressed.
   It is made once and reused (it is only regenerated when missing or incomplete).
2. In-memory, single-process reference rates on an 8192 x 8192 crop of the same
   image: (a) ``pixgmm.density`` on the NumPy image already in memory, colour
   table warm (evaluation only); (b) the same work done the in-memory way with
   its I/O: read the crop from the Zarr store into memory, evaluate, write the
   map to a Zarr store in one assignment.
3. Out-of-core: ``open_image_lazy`` -> ``pixgmm.density`` (dask array) ->
   ``write_zarr``, on dask's threaded scheduler. Peak resident memory and
   throughput (pixels / wall time, reading, table build, evaluation, writing
   included) are reported, and the ratio to both in-memory rates. A second
   pass reads and evaluates every chunk but writes nothing, a third only
   reads, to separate the costs of writing the map and of reading the image.

4. With ``--s3``: the same out-of-core pass reading its image from and writing its
   map to an S3 server on this machine (moto's, in its own process on 127.0.0.1,
   reached through ``AWS_ENDPOINT_URL`` as any S3-compatible store), beside the same
   pass on local stores of the same image, in one process with the colour table
   warm: time, rate and the ratio S3 / local, and each side's read-only pass. moto
   keeps objects in memory, so this pass runs on a crop of ``--s3-size`` (default
   4096) x the same, written as a store of its own and uploaded once (the upload
   rate is reported too). It measures the cost of the object-store protocol
   (one request per chunk, signing, no page cache), not a network.

Each phase runs in its own process, so each peak RSS (``ru_maxrss``) is its own.
Also reported: the task graph (number of tasks and pickled bytes) against the
number of chunks, for pixgmm's graph and for a naive ``map_blocks`` that
closes over the model, and, on a 2-worker ``distributed.LocalCluster``, how
many times each worker unpickles the model. The machine's load average is
printed before and after: wall-time rates are only comparable on an idle
machine, so CPU seconds per gigapixel (all threads) are reported as well.

Usage::

    python benchmarks/bench_gigapixel.py                 # 32768 x 32768 (about 15 GB of disk)
    python benchmarks/bench_gigapixel.py --size 8192     # quick run
    python benchmarks/bench_gigapixel.py --size 8192 --s3   # and the S3 pass (moto[server], s3fs)
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


def skin_model():
    """The Jones & Rehg skin mixture, as shipped with pixgmm."""
    import pixgmm.models

    return pixgmm.models.jones_rehg_skin()


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


def cpu_seconds():
    """CPU time (user + system) of this process, all threads: less sensitive to load than wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def phase_generate(args):
    import dask
    import dask.array as da

    from pixgmm import io as pxio

    raw = "-raw" if args.input_codec == "none" else ""
    path = Path(args.dir) / f"image-{args.size}-{args.chunk}{raw}.zarr"
    if pxio.is_complete(path):
        return {"image": str(path), "generated": False}
    t = time.perf_counter()
    template = da.empty(
        (args.size, args.size, 3), dtype=np.uint8, chunks=(args.chunk, args.chunk, 3)
    )
    image = da.map_blocks(
        synthetic_block, dtype=np.uint8, chunks=template.chunks, meta=np.empty((0, 0, 0), np.uint8)
    )
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        codec = None if args.input_codec == "none" else "auto"
        pxio.write_zarr(image, path, overwrite=True, compressors=codec)
    return {"image": str(path), "generated": True, "seconds": time.perf_counter() - t}


def phase_inmemory(args):
    import zarr

    z = zarr.open_array(args.image, mode="r")
    crop = min(args.size, 8192)
    img = z[:crop, :crop]  # in memory
    model = skin_model()
    times, cpus = [], []
    for _ in range(args.repeat + 1):
        t, c = time.perf_counter(), cpu_seconds()
        pixgmm.density(img, model, dtype=args.dtype)
        times.append(time.perf_counter() - t)
        cpus.append(cpu_seconds() - c)
    cold, warm = times[0], float(np.median(times[1:]))
    warm_cpu = float(np.median(cpus[1:]))
    n = crop * crop
    # the same work with its I/O, the in-memory way: read all, evaluate, write all
    out = Path(args.dir) / f"inmemory-{crop}.zarr"
    io_times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        img = z[:crop, :crop]
        result = pixgmm.density(img, model, dtype=args.dtype)
        target = zarr.create_array(
            out,
            shape=result.shape,
            chunks=(args.chunk, args.chunk),
            dtype=result.dtype,
            compressors=args.compressors,
            overwrite=True,
        )
        target[...] = result
        io_times.append(time.perf_counter() - t)
        del result
    shutil.rmtree(out)
    io = float(np.median(io_times))
    return {
        "pixels": n,
        "cold_seconds": cold,
        "warm_seconds": warm,
        "rate_mpix_s": n / warm / 1e6,
        "cpu_s_per_gpix": warm_cpu / n * 1e9,
        "cold_rate_mpix_s": n / cold / 1e6,
        "io_seconds": io,
        "io_rate_mpix_s": n / io / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


class _Discard:
    """A ``da.store`` target that drops what it is given (reading and evaluation only)."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)

    def __setitem__(self, key, value):
        pass


def phase_outofcore(args):
    import dask

    from pixgmm import io as pxio

    out = Path(args.dir) / f"density-{args.size}.zarr"
    model = skin_model()
    t, c = time.perf_counter(), cpu_seconds()
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        image = pxio.open_image_lazy(args.image, chunks=args.chunk)
        lazy = pixgmm.density(image, model, dtype=args.dtype)
        stored = pxio.write_zarr(lazy, out, overwrite=True, compressors=args.compressors)
        seconds = time.perf_counter() - t
        cpu = cpu_seconds() - c
        # read and evaluate every chunk again, writing nothing (the table is warm now)
        import dask.array as da

        t, c = time.perf_counter(), cpu_seconds()
        image = pxio.open_image_lazy(args.image, chunks=args.chunk)
        lazy = pixgmm.density(image, model, dtype=args.dtype)
        da.store(lazy, _Discard(lazy.shape, lazy.dtype), lock=False)
        nowrite = time.perf_counter() - t
        nowrite_cpu = cpu_seconds() - c
        # and only read it
        t, c = time.perf_counter(), cpu_seconds()
        image = pxio.open_image_lazy(args.image, chunks=args.chunk)
        da.store(image, _Discard(image.shape, image.dtype), lock=False)
        readonly = time.perf_counter() - t
        readonly_cpu = cpu_seconds() - c
    n = image.shape[0] * image.shape[1]
    # spot check against the in-memory result on one chunk
    c = args.chunk
    crop = pxio.open_image_lazy(args.image)[:c, :c].compute()
    expected = pixgmm.density(crop, model, dtype=args.dtype)
    ok = bool(np.allclose(stored[:c, :c], expected, rtol=1e-12))
    info = {
        "pixels": n,
        "seconds": seconds,
        "rate_mpix_s": n / seconds / 1e6,
        "nowrite_seconds": nowrite,
        "nowrite_rate_mpix_s": n / nowrite / 1e6,
        "cpu_s_per_gpix": cpu / n * 1e9,
        "nowrite_cpu_s_per_gpix": nowrite_cpu / n * 1e9,
        "readonly_rate_mpix_s": n / readonly / 1e6,
        "readonly_cpu_s_per_gpix": readonly_cpu / n * 1e9,
        "peak_rss_mb": peak_rss_mb(),
        "chunks": lazy.npartitions,
        "complete": pxio.is_complete(out),
        "spot_check_equal": ok,
        "output_bytes_on_disk": sum(f.stat().st_size for f in out.rglob("*") if f.is_file()),
    }
    if not args.keep_output:
        shutil.rmtree(out)
    return info


def phase_iofloor(args):
    """The I/O floor of ``pixgmm skin --save mask,probability``: read the image store, write a
    probability store and a mask store of the same dtypes, chunks and codec, with dask's own
    ``to_zarr`` and next to no computation (a value per colour, scaled to 0..1 or 0..254;
    a comparison for the mask), in a process of its own as a user's script would run."""
    import dask
    import dask.array as da
    import zarr

    out = Path(args.dir) / "floor"
    shutil.rmtree(out, ignore_errors=True)
    pdtype = np.dtype(args.probability_dtype)
    t, c = time.perf_counter(), cpu_seconds()
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        image = da.from_zarr(zarr.open_array(args.image, mode="r"))
        # a value per colour, so the map holds as many distinct values as a probability map
        # (a scaled channel would have 256 and compress far more easily than the real map)
        index = (image[..., 0].astype(np.float32) * np.float32(65536)
                 + image[..., 1].astype(np.float32) * np.float32(256) + image[..., 2])  # fmt: skip
        if pdtype == np.float32:
            p = index * np.float32(1 / 16777215)
        else:
            p = (index * np.float32(254 / 16777215)).astype(pdtype)
        mask = da.where(image[..., 1] > 128, np.uint8(255), np.uint8(0))
        writes = [
            da.to_zarr(
                arr,
                str(out / f"{name}.zarr"),
                compute=False,
                overwrite=True,
                zarr_format=3,
                compressors=args.compressors,
            )
            for name, arr in (("probability", p), ("mask", mask))
        ]
        dask.compute(*writes)
    seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
    n = image.shape[0] * image.shape[1]
    shutil.rmtree(out, ignore_errors=True)
    return {"pixels": n, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb()}


def phase_skincli(args):
    """``pixgmm skin IMAGE --chunks C --save mask,probability`` as a user runs it (a process)."""
    out = Path(args.dir) / "skin-cli"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pixgmm", "skin", args.image, "--chunks", str(args.chunk),
           "--save", "mask,probability", "--probability-dtype", args.probability_dtype,
           "-o", str(out), "--quiet"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"pixgmm skin failed: {proc.stderr}")
    import zarr

    from pixgmm import io as pxio

    stores = {n: out / f"{Path(args.image).stem}.{n}.zarr" for n in ("probability", "mask")}
    complete = all(pxio.is_complete(s) for s in stores.values())
    c = args.chunk  # spot check one chunk against the API
    crop = zarr.open_array(args.image, mode="r")[:c, :c]
    want = pixgmm.SkinDetector().maps(crop, ("probability", "mask"),
                                      probability_dtype=args.probability_dtype)  # fmt: skip
    got_p = zarr.open_array(stores["probability"], mode="r")[:c, :c]
    got_m = zarr.open_array(stores["mask"], mode="r")[:c, :c]
    ok = bool(np.array_equal(got_p, want["probability"]) and
              np.array_equal(got_m > 0, want["mask"]))  # fmt: skip
    shape = zarr.open_array(args.image, mode="r").shape
    n = shape[0] * shape[1]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "pixels": n,
        "seconds": seconds,
        "cpu_seconds": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "peak_rss_mb": after.ru_maxrss / 1024,
        "complete": complete,
        "spot_check_equal": ok,
    }


def phase_s3(args):
    """The out-of-core pass on local stores and on S3 (``AWS_ENDPOINT_URL``), side by side."""
    import dask
    import dask.array as da
    import fsspec
    import zarr

    from pixgmm import io as pxio

    n = min(args.size, args.s3_size)
    local_in = Path(args.dir) / f"s3-input-{n}-{args.chunk}.zarr"
    if not pxio.is_complete(local_in):  # the crop, as a store of its own (same chunks, codec)
        codec = None if args.input_codec == "none" else "auto"
        crop = pxio.open_image_lazy(args.image, chunks=args.chunk)[:n, :n]
        with dask.config.set(scheduler="threads", num_workers=args.threads):
            pxio.write_zarr(crop, local_in, overwrite=True, compressors=codec)
    fs = fsspec.filesystem("s3")
    bucket = args.bucket
    t = time.perf_counter()
    fs.put(f"{local_in}/", f"{bucket}/input.zarr/", recursive=True)
    upload = time.perf_counter() - t
    size = sum(f.stat().st_size for f in local_in.rglob("*") if f.is_file())
    remote_in, remote_out = f"s3://{bucket}/input.zarr", f"s3://{bucket}/density.zarr"
    local_out = Path(args.dir) / f"s3-local-density-{n}.zarr"
    model = skin_model()
    pixgmm.density(np.zeros((64, 64, 3), np.uint8), model, dtype=args.dtype)  # table warm
    out = {"pixels": n * n, "upload_seconds": upload, "input_bytes": size}
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        for label, source, target in (
            ("local", str(local_in), str(local_out)),
            ("s3", remote_in, remote_out),
        ):
            t = time.perf_counter()
            image = pxio.open_image_lazy(source, chunks=args.chunk)
            lazy = pixgmm.density(image, model, dtype=args.dtype)
            pxio.write_zarr(lazy, target, overwrite=True, compressors=args.compressors)
            out[f"{label}_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            image = pxio.open_image_lazy(source, chunks=args.chunk)
            da.store(image, _Discard(image.shape, image.dtype), lock=False)
            out[f"{label}_read_seconds"] = time.perf_counter() - t
            out[f"{label}_complete"] = pxio.is_complete(target)
            out["chunks"] = lazy.npartitions
    c = args.chunk
    here = zarr.open_array(local_out, mode="r")[:c, :c]
    there = zarr.open_array(remote_out, mode="r")[:c, :c]
    out["equal"] = bool(np.array_equal(here, there))
    shutil.rmtree(local_out)
    return out


def _start_s3_server():
    """moto's S3 server in its own process on 127.0.0.1; the environment points at it."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(endpoint, timeout=1)
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit(
                    "the S3 server (python -m moto.server) did not start: pip install 'moto[server]'"
                )
            time.sleep(0.2)
    import fsspec

    fsspec.filesystem("s3").mkdir("pixgmm-bench")
    return server, "pixgmm-bench"


def big_model(k=64):
    """A K=64 full-covariance RGB mixture: a model that is expensive to ship."""
    rng = np.random.default_rng(7)
    a = rng.normal(0, 1, (k, 3, 3))
    cov = a @ a.transpose(0, 2, 1) * 200 + np.eye(3) * 50
    return pixgmm.Mixture(np.full(k, 1 / k), rng.uniform(0, 255, (k, 3)), cov, "full")


def _naive(image, model):
    """What one would write without pixgmm's dask support: a closure over the model."""
    return image.map_blocks(
        lambda b: pixgmm.density(b, model, method="table"), drop_axis=2, dtype=np.float64
    )


def graph_report(args):
    """Tasks and pickled bytes vs chunks: pixgmm's graph vs a map_blocks closing over the model.

    Only the tasks added to the input image's graph are counted. "whole": they
    are pickled in one go (pickle's memo stores an object shared by many tasks
    once). "task by task": the sum of each task pickled on its own, what it
    costs when tasks are shipped one at a time; ``phase_cluster`` shows what a
    real cluster does.
    """
    import cloudpickle
    import dask.array as da

    rows = []
    side = args.size
    for mname, model in (("Jones-Rehg skin, K=16 diag", skin_model()), ("K=64 full", big_model())):
        for chunk in sorted(
            {max(side // 4, 1), max(side // 8, 1), max(side // 16, 1)}, reverse=True
        ):
            image = da.zeros((side, side, 3), dtype=np.uint8, chunks=(chunk, chunk, 3))
            for label, arr in (
                ("pixgmm", pixgmm.density(image, model)),
                ("naive", _naive(image, model)),
            ):
                inputs = set(dict(image.__dask_graph__()))
                graph = {k: v for k, v in dict(arr.__dask_graph__()).items() if k not in inputs}
                rows.append(
                    {
                        "model": mname,
                        "model_bytes": len(cloudpickle.dumps(model)),
                        "graph": label,
                        "chunks": arr.npartitions,
                        "tasks": len(graph),
                        "whole_bytes": len(cloudpickle.dumps(graph)),
                        "task_bytes": sum(len(cloudpickle.dumps(v)) for v in graph.values()),
                    }
                )
    return rows


def _count_rebuilds():
    import pixgmm.mixture as mx

    if not hasattr(mx, "_uncounted_rebuild"):
        mx._uncounted_rebuild = mx._rebuild

        def counting(*a, **k):
            mx._rebuild_count += 1
            return mx._uncounted_rebuild(*a, **k)

        mx._rebuild = counting
    mx._rebuild_count = 0


def _rebuilds():
    import pixgmm.mixture as mx

    return mx._rebuild_count


def phase_cluster(args):
    """On a 2-worker LocalCluster: how often does each worker unpickle the model?"""
    import dask.array as da
    import distributed

    model = skin_model()
    side = min(args.size, 2048)
    image = da.zeros((side, side, 3), dtype=np.uint8, chunks=(side // 16, side // 16, 3))
    out = {}
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        for label, arr in (
            ("pixgmm", pixgmm.density(image, model)),
            ("naive", _naive(image, model)),
        ):
            client.run(_count_rebuilds)
            client.compute(arr.sum()).result()
            out[label] = {
                "chunks": arr.npartitions,
                "per_worker": sorted(client.run(_rebuilds).values()),
            }
    return out


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
        "--compressors",
        args.codec,
        "--dtype",
        args.dtype,
        "--input-codec",
        args.input_codec,
    ]
    if args.keep_output:
        cmd.append("--keep-output")
    cmd += ["--s3-size", str(args.s3_size)]
    if getattr(args, "probability_dtype", None):
        cmd += ["--probability-dtype", args.probability_dtype]
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
    p.add_argument(
        "--dtype", default="float64", choices=["float64", "float32"], help="density map dtype"
    )
    p.add_argument(
        "--input-codec",
        default="zstd",
        choices=["zstd", "none"],
        help="codec of the generated input image (default Zstandard)",
    )
    p.add_argument("--keep-output", action="store_true", help="keep the density store")
    p.add_argument("--no-cluster", action="store_true", help="skip the LocalCluster count")
    p.add_argument(
        "--s3",
        action="store_true",
        help="also run the out-of-core pass from and to an S3 server on 127.0.0.1 (moto)",
    )
    p.add_argument("--s3-size", type=int, default=4096, help="side of the crop the S3 pass runs on")
    p.add_argument("--output", help="also write the report to this Markdown file")
    p.add_argument(
        "--phase",
        choices=["generate", "inmemory", "outofcore", "cluster", "s3", "iofloor", "skincli"],
        help=argparse.SUPPRESS,
    )
    p.add_argument(
        "--skin-only",
        action="store_true",
        help="only compare `pixgmm skin --chunks --save mask,probability` (float32 and uint8 "
        "probability) with the I/O-only pass that writes the same stores",
    )
    p.add_argument("--skin-repeats", type=int, default=3, help="runs of each, interleaved")
    p.add_argument("--probability-dtype", default="float32", help=argparse.SUPPRESS)
    p.add_argument("--image", help=argparse.SUPPRESS)
    p.add_argument("--bucket", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.codec = args.compressors
    if args.compressors == "none":
        args.compressors = None

    if args.phase:
        fn = {
            "generate": phase_generate,
            "inmemory": phase_inmemory,
            "outofcore": phase_outofcore,
            "cluster": phase_cluster,
            "s3": phase_s3,
            "iofloor": phase_iofloor,
            "skincli": phase_skincli,
        }
        print(json.dumps(fn[args.phase](args)))
        return

    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    Path(args.dir).mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(args.dir).free
    itemsize = np.dtype(args.dtype).itemsize
    need = args.size**2 * (3 + itemsize) * 1.1
    say(
        f"pixgmm {pixgmm.__version__} | {platform.processor() or platform.machine()} | "
        f"{os.cpu_count()} cores | {_memory_gb():.0f} GB RAM | python {platform.python_version()}"
    )
    say(
        f"image {args.size} x {args.size} RGB uint8 ({args.size**2 / 1e9:.2f} Gpixels), "
        f"chunks {args.chunk} x {args.chunk}, {args.threads} dask threads, input "
        f"{'Zstandard' if args.input_codec == 'zstd' else 'uncompressed'}, output {args.dtype} "
        f"({'Zstandard' if args.codec == 'auto' else 'uncompressed'})"
    )
    say(f"load average at start: {_load()}")
    if free < need:
        sys.exit(
            f"not enough disk in {args.dir}: {free / 1e9:.1f} GB free, about "
            f"{need / 1e9:.1f} GB needed (pass --dir or a smaller --size)"
        )

    gen = run_phase("generate", args)
    if gen["generated"]:
        say(f"generated {gen['image']} in {gen['seconds']:.1f} s")
    else:
        say(f"reusing {gen['image']}")
    skin_report(args, gen["image"], say)
    if args.skin_only:
        say(f"load average at end: {_load()}")
        if args.output:
            Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")
        return
    mem = run_phase("inmemory", args, image=gen["image"])
    ooc = run_phase("outofcore", args, image=gen["image"])
    graph = graph_report(args)
    cluster = None if args.no_cluster else run_phase("cluster", args)
    s3 = None
    if args.s3:
        server, bucket = _start_s3_server()
        try:
            s3 = run_phase("s3", args, image=gen["image"], bucket=bucket)
        finally:
            server.terminate()
            server.wait(timeout=30)

    ratio = ooc["rate_mpix_s"] / mem["rate_mpix_s"]
    say(
        f"in-memory, one process, evaluation only : {mem['rate_mpix_s']:7.1f} Mpixel/s "
        f"(warm table; {mem['cold_rate_mpix_s']:.1f} with the table build), "
        f"{mem['pixels'] / 1e6:.0f} Mpixels"
    )
    say(
        f"in-memory, one process, Zarr read+write : {mem['io_rate_mpix_s']:7.1f} Mpixel/s "
        f"(read all, evaluate, write all), peak RSS {mem['peak_rss_mb']:.0f} MB"
    )
    say(
        f"out-of-core, Zarr->Zarr                 : {ooc['rate_mpix_s']:7.1f} Mpixel/s "
        f"({ooc['seconds']:.1f} s for {ooc['pixels'] / 1e9:.2f} Gpixels, {ooc['chunks']} chunks, "
        f"table build included), output {ooc['output_bytes_on_disk'] / 1e9:.2f} GB on disk"
    )
    say(
        f"out-of-core, read+evaluate, no write    : {ooc['nowrite_rate_mpix_s']:7.1f} Mpixel/s "
        f"({ooc['nowrite_seconds']:.1f} s)"
    )
    say(f"out-of-core, read only                  : {ooc['readonly_rate_mpix_s']:7.1f} Mpixel/s")
    say(
        f"throughput ratio vs evaluation only     : {ratio:.2f} (goal >= 0.5)  "
        f"{'OK' if ratio >= 0.5 else 'BELOW GOAL'}"
    )
    say(
        f"throughput ratio vs in-memory with I/O  : "
        f"{ooc['rate_mpix_s'] / mem['io_rate_mpix_s']:.2f}"
    )
    say(
        f"read+evaluate ratio vs evaluation only  : "
        f"{ooc['nowrite_rate_mpix_s'] / mem['rate_mpix_s']:.2f}"
    )
    say(
        f"peak memory, out-of-core process        : {ooc['peak_rss_mb']:.0f} MB (goal < 2048 MB)  "
        f"{'OK' if ooc['peak_rss_mb'] < 2048 else 'ABOVE GOAL'}"
    )
    say(
        f"CPU seconds per Gpixel (all threads)    : evaluation only "
        f"{mem['cpu_s_per_gpix']:.1f}, out-of-core read only "
        f"{ooc['readonly_cpu_s_per_gpix']:.1f}, read+evaluate "
        f"{ooc['nowrite_cpu_s_per_gpix']:.1f}, out-of-core Zarr->Zarr {ooc['cpu_s_per_gpix']:.1f}"
    )
    say(f"store complete: {ooc['complete']}, spot check equals NumPy: {ooc['spot_check_equal']}")
    if s3 is not None:
        side = int(s3["pixels"] ** 0.5)
        say(
            f"S3 (moto on 127.0.0.1), {side} x {side} crop, {s3['chunks']} chunks, table warm, "
            f"input uploaded at {s3['input_bytes'] / s3['upload_seconds'] / 1e6:.0f} MB/s:"
        )
        for label, name in (("local", "on disk"), ("s3", "on S3  ")):
            seconds, read = s3[f"{label}_seconds"], s3[f"{label}_read_seconds"]
            say(
                f"  out-of-core, Zarr->Zarr {name}      : {s3['pixels'] / seconds / 1e6:7.1f} Mpixel/s "
                f"({seconds:.2f} s; read only {s3['pixels'] / read / 1e6:.1f} Mpixel/s)"
            )
        say(
            f"  time on S3 / time on disk             : "
            f"{s3['s3_seconds'] / s3['local_seconds']:.2f} (read only "
            f"{s3['s3_read_seconds'] / s3['local_read_seconds']:.2f}); stores complete: "
            f"{s3['local_complete'] and s3['s3_complete']}, S3 map equals local: {s3['equal']}"
        )
    say(f"load average at end: {_load()}")
    say()
    say(f"tasks that density() adds to a {args.size} x {args.size} image's graph:")
    say("| model (pickled bytes) | graph | chunks | tasks | whole graph KiB | task by task KiB |")
    say("|---|---|---:|---:|---:|---:|")
    for r in graph:
        say(
            f"| {r['model']} ({r['model_bytes']} B) | {r['graph']} | {r['chunks']} | {r['tasks']} | "
            f"{r['whole_bytes'] / 1024:.1f} | {r['task_bytes'] / 1024:.1f} |"
        )
    if cluster is not None:
        say()
        say("model unpicklings per worker, 2-worker LocalCluster, Jones-Rehg skin model:")
        for label, c in cluster.items():
            say(f"  {label:7s}: {c['chunks']} chunks -> {c['per_worker']} per worker")
    if args.output:
        Path(args.output).write_text("\n".join(lines) + "\n", encoding="utf-8")


def skin_report(args, image, say):
    """`pixgmm skin --chunks` against its I/O floor, float32 and uint8 probability, interleaved."""
    say()
    say(f"pixgmm skin {Path(image).name} --chunks {args.chunk} --save mask,probability, against "
        "the I/O-only pass writing the same stores (each a whole new process, wall time; median "
        f"of {args.skin_repeats}, runs interleaved; load {_load()}):")  # fmt: skip
    say("| probability dtype | pixgmm skin | I/O only | floor / pixgmm (goal >= 0.8) | "
        "pixgmm peak RSS (goal < 2 GB) | spot check |")  # fmt: skip
    say("|---|---:|---:|---:|---:|---|")
    for pdtype in ("float32", "uint8"):
        args.probability_dtype = pdtype
        cli, floor = [], []
        for _ in range(args.skin_repeats):
            t = time.perf_counter()  # the floor's whole process: its imports as a script's
            floor.append({**run_phase("iofloor", args, image=image),
                          "seconds": time.perf_counter() - t})  # fmt: skip
            cli.append(run_phase("skincli", args, image=image))
        t_cli = float(np.median([r["seconds"] for r in cli]))
        t_floor = float(np.median([r["seconds"] for r in floor]))
        spread = (f"{min(r['seconds'] for r in cli):.1f}-{max(r['seconds'] for r in cli):.1f} s",
                  f"{min(r['seconds'] for r in floor):.1f}-{max(r['seconds'] for r in floor):.1f} s")  # fmt: skip
        rss = max(r["peak_rss_mb"] for r in cli)
        ratio = t_floor / t_cli
        n = cli[0]["pixels"]
        say(f"| {pdtype} | {t_cli:.1f} s ({spread[0]}; {n / t_cli / 1e6:.0f} Mpx/s) | "
            f"{t_floor:.1f} s ({spread[1]}; {n / t_floor / 1e6:.0f} Mpx/s) | {ratio:.2f} "
            f"{'met' if ratio >= 0.8 else 'NOT met'} | {rss:.0f} MB "
            f"{'met' if rss < 2048 else 'NOT met'} | "
            f"{'equal' if all(r['spot_check_equal'] and r['complete'] for r in cli) else 'DIFFERS'} |")  # fmt: skip
    args.probability_dtype = "float32"


def _load():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _memory_gb():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return float("nan")


if __name__ == "__main__":
    main()
