"""pixgmm on a real ``distributed.LocalCluster``: 2 worker processes on 127.0.0.1.

One cluster for the module (closed in teardown); every wait is bounded. The
images are tiny: these tests are about the plumbing (models shipped once,
tables built per worker process, retries after a worker dies, the completion
marker of a Zarr store), not speed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import pixgmm

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")
pytest.importorskip("zarr")
from pixgmm import io as pxio  # noqa: E402

TIMEOUT = 60  # seconds for any one computation
ALLOWED_FAILURES = 1  # worker deaths a task may cause and still be retried


@pytest.fixture(scope="module")
def client():
    # a task that killed two workers is given up (KilledWorker) instead of four
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            timeout=TIMEOUT,
        )
    c = distributed.Client(cluster, timeout=TIMEOUT)
    try:
        c.wait_for_workers(2, timeout=TIMEOUT)
        yield c
    finally:
        c.close(timeout=TIMEOUT)
        cluster.close(timeout=TIMEOUT)


def _compute(client, lazy):
    return client.compute(lazy).result(timeout=TIMEOUT)


def _models():
    skin = pixgmm.Mixture(
        [0.6, 0.4], [[200, 140, 120], [150, 100, 80]], [[400, 300, 300], [600, 500, 500]], "diag"
    )
    other = pixgmm.Mixture([1.0], [[120, 120, 120]], [[2500, 2500, 2500]], "diag")
    return skin, other


@pytest.mark.parametrize(
    "name", ["density", "log_density", "log_ratio", "responsibilities", "predict"]
)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_functions_on_the_cluster_equal_numpy(client, name, dtype, rng):
    skin, other = _models()
    img = (rng.random((40, 50, 3)) * 255).astype(dtype)
    f = getattr(pixgmm, name)
    args = (skin, other) if name == "log_ratio" else (skin,)
    lazy = f(da.from_array(img, chunks=(13, 17, 2)), *args)
    got = _compute(client, lazy)
    expected = f(img, *args)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def _count_table_builds():
    """On a worker: count colour-table builds from now on, starting with an empty cache.

    A build is a call of ``table.log_table_chunks``, which evaluates the model at
    all 256**3 colours (once per model of a table).
    """
    from pixgmm._engine import table

    if not hasattr(table, "_uncounted_chunks"):
        table._uncounted_chunks = table.log_table_chunks

        def counting(*args, **kwargs):
            table._builds += 1
            return table._uncounted_chunks(*args, **kwargs)

        table.log_table_chunks = counting
    table._builds = 0
    pixgmm.clear_cache()


def _table_builds():
    from pixgmm._engine import table

    return table._builds, pixgmm.cache_info()["entries"]


def _stop_counting_builds():
    from pixgmm._engine import table

    if hasattr(table, "_uncounted_chunks"):
        table.log_table_chunks = table._uncounted_chunks
        del table._uncounted_chunks
    pixgmm.clear_cache()


def test_table_engine_builds_one_table_per_worker_process(client, rng):
    """Counted on each worker: a worker that ran blocks built the table once, others never."""
    skin, _ = _models()
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    lazy = pixgmm.density(da.from_array(img, chunks=(16, 16, 3)), skin, method="table")
    client.run(_count_table_builds)
    try:
        with distributed.get_task_stream(client) as stream:
            got = _compute(client, lazy)
        first = client.run(_table_builds)
        _compute(client, lazy)  # again, on warm workers
        second = client.run(_table_builds)
    finally:
        client.run(_stop_counting_builds)
    np.testing.assert_array_equal(got, pixgmm.density(img, skin, method="table"))
    blocks = {w: 0 for w in first}
    for task in stream.data:
        if str(task["key"]).startswith(f"('{lazy.name}'"):
            blocks[task["worker"]] += 1
    assert sum(blocks.values()) == lazy.npartitions == 16, (blocks, stream.data[:2])
    assert first == {w: (1, 1) if blocks[w] else (0, 0) for w in first}, (first, blocks)
    assert all(second[w][0] == first[w][0] or not first[w][0] for w in first), (first, second)
    assert sum(b for b, _ in second.values()) <= len(second)  # never more than one per worker


def test_model_is_one_key_sent_once_per_worker(client, rng):
    """The model is one task; each worker receives it at most once, however many blocks."""
    skin, _ = _models()
    img = da.from_array(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8), chunks=(8, 8, 3))
    lazy = pixgmm.log_density(img, skin)
    model_key = f"pixgmm-model-{skin._fingerprint}"
    graph = dict(lazy.__dask_graph__())
    users = [v for v in graph.values() if model_key in getattr(v, "dependencies", ())]
    assert len(users) == lazy.npartitions == 36

    def transfers(dask_worker, key=model_key):
        return sum(key in entry["keys"] for entry in dask_worker.transfer_incoming_log)

    before = client.run(transfers)
    got = _compute(client, lazy)
    np.testing.assert_allclose(got, pixgmm.log_density(img.compute(), skin), rtol=1e-12)
    after = client.run(transfers)
    assert all(after[w] - before.get(w, 0) <= 1 for w in after), (before, after)


def _kill_once(block, marker):
    """Kill this worker process the first time any task runs it; pass through afterwards."""
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(os.getpid()))
        os._exit(1)
    return block


def test_a_worker_dying_mid_run_is_retried(client, rng, tmp_path):
    assert client.cluster.scheduler.allowed_failures == ALLOWED_FAILURES >= 1
    skin, other = _models()
    img = rng.integers(0, 256, (40, 44, 3), dtype=np.uint8)
    marker = str(tmp_path / "killed")
    before = set(client.scheduler_info()["workers"])
    dying = da.from_array(img, chunks=(10, 11, 3)).map_blocks(
        _kill_once, marker, meta=np.empty((0, 0, 0), img.dtype)
    )
    path = tmp_path / "ratio.zarr"
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        stored = pxio.write_zarr(pixgmm.log_ratio(dying, skin, other), path)
    assert os.path.exists(marker)  # a worker really died
    np.testing.assert_allclose(stored[...], pixgmm.log_ratio(img, skin, other), rtol=1e-12)
    assert pxio.is_complete(path)
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nanny restarted it
    assert set(client.scheduler_info()["workers"]) != before


def _fail_on_last_block(block, block_info=None):
    loc = block_info[0]["chunk-location"]
    n = block_info[0]["num-chunks"]
    if loc[0] == n[0] - 1 and loc[1] == n[1] - 1:
        raise OSError("disk went away")
    return block


def test_failed_write_leaves_store_not_complete(client, rng, tmp_path):
    skin, _ = _models()
    img = rng.integers(0, 256, (30, 30, 3), dtype=np.uint8)
    failing = da.from_array(img, chunks=(10, 10, 3)).map_blocks(
        _fail_on_last_block, meta=np.empty((0, 0, 0), img.dtype)
    )
    path = tmp_path / "density.zarr"
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        with pytest.raises(OSError, match="disk went away"):
            pxio.write_zarr(pixgmm.density(failing, skin), path)
        assert not pxio.is_complete(path)
        # the same call with good input completes the same store
        good = da.from_array(img, chunks=(10, 10, 3))
        stored = pxio.write_zarr(pixgmm.density(good, skin), path)
    assert pxio.is_complete(path)
    np.testing.assert_allclose(stored[...], pixgmm.density(img, skin), rtol=1e-12)


def _kill_on_first_block(block, block_info=None):
    """Kill the worker process running the first block, every time it is tried."""
    distributed.get_worker()  # raises outside a worker: never kill the test process
    if block_info[0]["chunk-location"][:2] == (0, 0):
        os._exit(1)
    return block


def test_a_block_that_keeps_killing_workers_fails_the_write(client, rng, tmp_path):
    """Once the retries are used up the write fails and the store is not marked complete."""
    skin, other = _models()
    img = rng.integers(0, 256, (30, 32, 3), dtype=np.uint8)
    dying = da.from_array(img, chunks=(10, 16, 3)).map_blocks(
        _kill_on_first_block, meta=np.empty((0, 0, 0), img.dtype)
    )
    path = tmp_path / "ratio.zarr"
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        with pytest.raises(distributed.KilledWorker):
            pxio.write_zarr(pixgmm.log_ratio(dying, skin, other), path)
    assert path.exists() and not pxio.is_complete(path)
    client.wait_for_workers(2, timeout=TIMEOUT)  # the nannies restarted both


# -- the skin detector and the classifier on the cluster ---------------------------
@pytest.mark.parametrize("method", ["log_ratio", "probability", "mask"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_skin_detector_on_the_cluster_equals_numpy(client, method, dtype, rng):
    skin, other = _models()
    detector = pixgmm.SkinDetector(skin, other, prior=0.2)
    img = (rng.random((40, 50, 3)) * 255).astype(dtype)
    img[:4, :4] = [200, 140, 120]
    lazy = getattr(detector, method)(da.from_array(img, chunks=(13, 17, 2)))
    assert isinstance(lazy, da.Array) and lazy.chunks == ((13, 13, 13, 1), (17, 17, 16))
    got = _compute(client, lazy)
    expected = getattr(detector, method)(img)
    assert got.dtype == expected.dtype
    if method == "mask":
        assert got.any() and not got.all()
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize(
    "method",
    [
        "log_posterior",
        "probability",
        "predict",
    ],
)
def test_classifier_on_the_cluster_equals_numpy(client, method, rng):
    skin, other = _models()
    clf = pixgmm.Classifier({"skin": skin, "other": other}, priors=[0.3, 0.7])
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    lazy = getattr(clf, method)(da.from_array(img, chunks=(13, 17, 3)))
    assert isinstance(lazy, da.Array)
    got = _compute(client, lazy)
    expected = getattr(clf, method)(img)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if method == "predict":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-12)


# -- each model is unpickled once per worker, however many blocks ------------------
def _count_model_rebuilds():
    """On a worker: count Mixture unpicklings (pixgmm.mixture._rebuild calls) from now on."""
    import pixgmm.mixture as mx

    if not hasattr(mx, "_uncounted_rebuild"):
        mx._uncounted_rebuild = mx._rebuild

        def counting(*args, **kwargs):
            mx._rebuild_count += 1
            return mx._uncounted_rebuild(*args, **kwargs)

        mx._rebuild = counting
    mx._rebuild_count = 0


def _model_rebuilds():
    import pixgmm.mixture as mx

    return mx._rebuild_count


def _stop_counting():
    import pixgmm.mixture as mx

    if hasattr(mx, "_uncounted_rebuild"):
        mx._rebuild = mx._uncounted_rebuild
        del mx._uncounted_rebuild


@pytest.mark.parametrize(
    "call, n_models",
    [
        (lambda img, s, o: pixgmm.density(img, s), 1),
        (lambda img, s, o: pixgmm.log_ratio(img, s, o), 2),
        (lambda img, s, o: pixgmm.SkinDetector(s, o).log_ratio(img), 2),
        (lambda img, s, o: pixgmm.SkinDetector(s, o).mask(img), 2),
        (lambda img, s, o: pixgmm.SkinDetector(s, o).probability(img), 2),
        (lambda img, s, o: pixgmm.Classifier({0: s, 1: o}).log_posterior(img), 2),
    ],
    ids=[
        "density",
        "log_ratio",
        "detector.log_ratio",
        "detector.mask",
        "detector.probability",
        "classifier.log_posterior",
    ],
)
def test_each_model_is_unpickled_once_per_worker(client, call, n_models, rng):
    skin, other = _models()
    img = da.from_array(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), chunks=(8, 8, 3))
    lazy = call(img, skin, other)
    assert lazy.numblocks[:2] == (8, 8)  # 64 spatial blocks
    client.run(_count_model_rebuilds)
    try:
        _compute(client, lazy.sum())
        counts = client.run(_model_rebuilds)
    finally:
        client.run(_stop_counting)
    assert 1 <= sum(counts.values()), counts  # the models did travel
    # Once per worker and model, not once per block (64 blocks: a model in every task would be
    # unpickled about 32 times per worker). A worker that released a model and is then handed a
    # stolen task fetches it once more, which the scheduler may do: a second copy is allowed.
    assert all(n <= 2 * n_models for n in counts.values()), counts
    assert sum(counts.values()) <= 2 * n_models * len(counts) < 64, counts


# -- images on disk, read by the workers ---------------------------------------------
@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_image_on_disk_to_zarr_on_the_cluster(client, suffix, rng, tmp_path):
    """A lazily opened TIFF or Zarr image goes to the workers (only its path travels)."""
    tifffile = pytest.importorskip("tifffile")
    zarr = pytest.importorskip("zarr")
    skin, other = _models()
    img = rng.integers(0, 256, (70, 90, 3), dtype=np.uint8)
    src = tmp_path / f"img{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(src, img, tile=(32, 32))
    else:
        zarr.create_array(src, data=img, chunks=(32, 32, 3))
    lazy = pxio.open_image_lazy(src, chunks=32)
    out = tmp_path / "ratio.zarr"
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        stored = pxio.write_zarr(pixgmm.log_ratio(lazy, skin, other), out)
    assert pxio.is_complete(out) and stored.chunks == (32, 32)
    np.testing.assert_allclose(stored[...], pixgmm.log_ratio(img, skin, other), rtol=1e-12)


# -- output paths: the client's, never a worker's ------------------------------------
@pytest.fixture
def workers_elsewhere(client, tmp_path, monkeypatch):
    """Workers whose working directory differs from this process's (as on a real cluster)."""
    here, there = tmp_path / "client", tmp_path / "workers"
    here.mkdir()
    there.mkdir()
    before = client.run(os.getcwd)
    client.run(os.chdir, str(there))
    monkeypatch.chdir(here)
    try:
        yield here, there
    finally:
        for address, cwd in before.items():
            client.run(os.chdir, cwd, workers=[address])


@pytest.mark.parametrize("many", [False, True], ids=["write_zarr", "write_zarr_many"])
def test_relative_output_path_is_the_clients(client, workers_elsewhere, many, rng):
    """A relative store path means this process's folder: the data lands where the marker is."""
    here, there = workers_elsewhere
    skin, other = _models()
    img = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    lr = pixgmm.log_ratio(da.from_array(img, chunks=(16, 16, 3)), skin, other)
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        if many:
            pxio.write_zarr_many([(lr, "lr.zarr"), (lr > 0, "mask.zarr")])
        else:
            pxio.write_zarr(lr, "lr.zarr")
    expected = pixgmm.log_ratio(img, skin, other)
    zarr = pytest.importorskip("zarr")
    np.testing.assert_allclose(
        zarr.open_array(here / "lr.zarr", mode="r")[...], expected, rtol=1e-12
    )
    assert pxio.is_complete(here / "lr.zarr")
    if many:
        np.testing.assert_array_equal(
            zarr.open_array(here / "mask.zarr", mode="r")[...], expected > 0
        )
        assert pxio.is_complete(here / "mask.zarr")
    assert not list(there.iterdir())  # nothing written in the workers' folder


def test_a_store_the_workers_cannot_see_fails_instead_of_writing_elsewhere(client, rng):
    """Each worker process has its own ``memory://`` (like a node-local disk): the write
    fails naming the store, and the store is never marked complete."""
    skin, _ = _models()
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    lazy = pixgmm.density(da.from_array(img, chunks=(16, 16, 3)), skin)
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        with pytest.raises(OSError, match=r"memory://.*not the one this write prepared"):
            pxio.write_zarr(lazy, "memory://node-local.zarr")
    assert pxio.store_status("memory://node-local.zarr") == "unfinished"


def _slow_unless_first(block, block_info=None):
    """The first block returns at once; every other block takes a while."""
    import time

    if block_info[0]["chunk-location"][:2] != (0, 0):
        time.sleep(1.5)
    return block


def test_ctrl_c_cancels_the_tasks_still_writing(client, rng, tmp_path):
    """Interrupted while the cluster computes: no task writes into the store afterwards."""
    import signal
    import threading
    import time

    zarr = pytest.importorskip("zarr")
    skin, _ = _models()
    img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    slow = da.from_array(img, chunks=(10, 10, 3)).map_blocks(
        _slow_unless_first, meta=np.empty((0, 0, 0), img.dtype)
    )
    path = tmp_path / "interrupted.zarr"
    main = threading.main_thread().ident
    stop = threading.Event()

    def press_ctrl_c_after_the_first_chunk():
        while not stop.wait(0.02):
            try:
                if zarr.open_array(path, mode="r").nchunks_initialized:
                    signal.pthread_kill(main, signal.SIGINT)
                    return
            except (FileNotFoundError, ValueError):
                pass

    watcher = threading.Thread(target=press_ctrl_c_after_the_first_chunk, daemon=True)
    # Python raises KeyboardInterrupt only where SIGINT has its default handler; a process
    # started in the background by a shell inherits SIGINT ignored (no Ctrl-C to press)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
            watcher.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    pxio.write_zarr(pixgmm.density(slow, skin), path)
            finally:
                stop.set()
                watcher.join(TIMEOUT)
            written = zarr.open_array(path, mode="r").nchunks_initialized
            time.sleep(5)  # 2 workers at 1.5 s a block would have written 6 more by now
    finally:
        signal.signal(signal.SIGINT, previous)
    # a task already running when Ctrl-C came cannot be stopped (one per worker thread);
    # no task starts afterwards
    running = sum(client.nthreads().values())
    assert 1 <= written < 16
    assert written <= zarr.open_array(path, mode="r").nchunks_initialized <= written + running
    assert pxio.store_status(path) == "unfinished"


def test_relative_zarr_input_path_is_the_clients(client, workers_elsewhere, rng):
    zarr = pytest.importorskip("zarr")
    here, _ = workers_elsewhere
    skin, _ = _models()
    img = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    zarr.create_array(here / "img.zarr", data=img, chunks=(16, 16, 3))
    lazy = pxio.open_image_lazy("img.zarr", chunks=16)
    with pxio.dask_client(scheduler=client.scheduler.address, progress=False):
        stored = pxio.write_zarr(pixgmm.density(lazy, skin), here / "out.zarr")
    np.testing.assert_allclose(stored[...], pixgmm.density(img, skin), rtol=1e-12)
