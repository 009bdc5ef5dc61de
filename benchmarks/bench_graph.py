"""The Dask graph pixgmm builds, and how often a cluster unpickles the model.

No pixel is evaluated at full size, so this runs in about a minute on a busy machine,
and its figures (sizes in bytes, counts) do not depend on the machine's load:

- For a 32768 x 32768 RGB uint8 image (a lazy ``dask.array.zeros``) cut into 16, 64 and
  256 chunks: the tasks that ``pixgmm.density`` adds to the image's graph, their pickled
  size (cloudpickle) in one go and task by task, and the size of one block task (min /
  median / max), against a naive ``image.map_blocks(lambda b: pixgmm.density(b, model))``
  that closes over the model. Two models: the Jones & Rehg skin mixture (K=16 diagonal)
  and a K=64 full-covariance mixture.
- On a 2-worker ``distributed.LocalCluster`` (127.0.0.1, one thread per worker), a
  2048 x 2048 image in 256 chunks: how many times each worker unpickles the model, for
  pixgmm's graph and the naive one, ``--cluster-repeats`` times (the split of the naive
  graph's tasks between the two workers changes from run to run; their sum does not).

Writes ``benchmarks/graph_results.md`` and ``.json``.

Usage::

    python benchmarks/bench_graph.py
    python benchmarks/bench_graph.py --cluster-repeats 0     # graph sizes only
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import numpy as np

import pixgmm
import pixgmm.models

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_gigapixel import _naive, big_model, phase_cluster  # noqa: E402


def graph_sizes(side):
    """Tasks and pickled bytes that density() and the naive closure add to the graph."""
    import cloudpickle
    import dask.array as da

    rows = []
    models = (
        ("Jones & Rehg skin, K=16 diag", pixgmm.models.jones_rehg_skin()),
        ("K=64 full covariance", big_model()),
    )
    for mname, model in models:
        for chunk in (side // 4, side // 8, side // 16):
            image = da.zeros((side, side, 3), dtype=np.uint8, chunks=(chunk, chunk, 3))
            for label, arr in (
                ("pixgmm", pixgmm.density(image, model)),
                ("naive", _naive(image, model)),
            ):
                inputs = set(dict(image.__dask_graph__()))
                graph = {k: v for k, v in dict(arr.__dask_graph__()).items() if k not in inputs}
                sizes = {k: len(cloudpickle.dumps(v)) for k, v in graph.items()}
                blocks = [n for k, n in sizes.items() if isinstance(k, tuple) and k[0] == arr.name]
                assert len(blocks) == arr.npartitions
                rows.append(
                    {
                        "model": mname,
                        "model_bytes": len(cloudpickle.dumps(model)),
                        "graph": label,
                        "chunks": arr.npartitions,
                        "tasks": len(graph),
                        "whole_bytes": len(cloudpickle.dumps(graph)),
                        "task_bytes": sum(sizes.values()),
                        "block_task_bytes": [min(blocks), statistics.median(blocks), max(blocks)],
                    }
                )
    return rows


def markdown(res):
    m = res["machine"]
    side = res["side"]
    lines = [
        "# pixgmm Dask graph sizes and model unpicklings",
        "",
        f"Produced by `{res['invocation']}` on {m['date']}: pixgmm {m['pixgmm']}, dask "
        f"{m['dask']}, distributed {m['distributed']}, cloudpickle {m['cloudpickle']}, "
        f"Python {m['python']}, {m['os']}. Sizes and counts, not times: they do not depend on "
        "the machine's load.",
        "",
        f"Tasks that `pixgmm.density` adds to a {side} x {side} RGB uint8 image's graph, against "
        'a naive `map_blocks` closing over the model. "whole graph": the added tasks pickled in '
        'one go (pickle stores an object shared by many tasks once); "task by task": the sum '
        'of each task pickled on its own; "one block task": min / median / max bytes of a '
        "single block task.",
        "",
        "| model (pickled bytes) | graph | chunks | tasks | whole graph KiB | task by task KiB "
        "| one block task, bytes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in res["graph"]:
        b = r["block_task_bytes"]
        lines.append(
            f"| {r['model']} ({r['model_bytes']} B) | {r['graph']} | {r['chunks']} | "
            f"{r['tasks']} | {r['whole_bytes'] / 1024:.1f} | {r['task_bytes'] / 1024:.1f} | "
            f"{b[0]:.0f} / {b[1]:.0f} / {b[2]:.0f} |"
        )
    if res["cluster"]:
        lines += [
            "",
            "Model unpicklings per worker on a 2-worker `LocalCluster` (127.0.0.1, one thread "
            "per worker), Jones & Rehg skin model, a 2048 x 2048 image in 256 chunks, "
            f"{len(res['cluster'])} repeat(s):",
            "",
            "| repeat | pixgmm: per worker | naive: per worker (sum) |",
            "|---:|---|---|",
        ]
        for i, c in enumerate(res["cluster"], 1):
            nv = c["naive"]["per_worker"]
            lines.append(f"| {i} | {c['pixgmm']['per_worker']} | {nv} ({sum(nv)}) |")
    lines.append("")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=32768, help="image side for the graph sizes")
    p.add_argument("--cluster-repeats", type=int, default=3, help="LocalCluster counts (0: none)")
    p.add_argument("--output", type=Path, default=HERE / "graph_results.md")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    import cloudpickle
    import dask
    import distributed

    graph = graph_sizes(args.size)
    cluster = []
    for i in range(args.cluster_repeats):
        print(f"cluster count {i + 1} of {args.cluster_repeats}", flush=True)
        cluster.append(phase_cluster(argparse.Namespace(size=2048)))
    res = {
        "invocation": "python benchmarks/bench_graph.py" + "".join(" " + a for a in argv),
        "side": args.size,
        "graph": graph,
        "cluster": cluster,
        "machine": {
            "pixgmm": pixgmm.__version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "cloudpickle": cloudpickle.__version__,
            "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}",
            "cores": os.cpu_count(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        },
    }
    text = markdown(res)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    args.output.with_suffix(".json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    print(text)
    print(f"wrote {args.output} and {args.output.with_suffix('.json').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
