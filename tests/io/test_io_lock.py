"""One writer per Zarr store: a second run refuses, naming the first; a killed run's lock is taken over."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

pytest.importorskip("dask")
zarr = pytest.importorskip("zarr")

import pixgmm.io as pxio  # noqa: E402
from pixgmm.io import lock  # noqa: E402

#: A writer that holds the lock of its store while it writes 16 blocks slowly.
SLOW_WRITER = textwrap.dedent(
    """
    import sys, time, dask.array as da
    from pixgmm.io import zarrstore
    real = zarrstore._write_block
    def slow(*args):
        time.sleep(0.4)
        return real(*args)
    zarrstore._write_block = slow
    zarrstore.write_zarr(da.ones((64, 64), chunks=16), sys.argv[1])
    """
)


def start_slow_writer(store):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(store)])
    deadline = time.monotonic() + 60
    while not lock.lock_path(store).exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the writer did not start"
        time.sleep(0.05)
    return proc


def test_a_second_run_on_the_same_store_refuses_and_names_the_first(tmp_path):
    store = tmp_path / "map.zarr"
    writer = start_slow_writer(store)
    try:
        with pytest.raises(FileExistsError, match=rf"another run \(process {writer.pid} on "):
            pxio.write_zarr(np.zeros((64, 64)), store)
    finally:
        assert writer.wait(timeout=120) == 0
    assert pxio.is_complete(store)
    np.testing.assert_array_equal(zarr.open_array(store, mode="r")[:], 1.0)
    assert not lock.lock_path(store).exists()


def test_the_command_line_refuses_an_output_another_run_is_writing(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    pxio.write_zarr(rgb, tmp_path / "img.zarr")
    out = tmp_path / "out"
    writer = start_slow_writer(out / "img.mask.zarr")
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pixgmm", "skin", str(tmp_path / "img.zarr"), "--chunks",
             "32", "--save", "mask", "-o", str(out), "--json"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        writer.wait(timeout=120)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["results"][0]["error"]
    assert error.startswith(f"another run (process {writer.pid} on ")
    assert "is writing" in error and "wait for it to finish" in error


def test_a_killed_runs_lock_is_taken_over_and_the_rerun_finishes(tmp_path):
    store = tmp_path / "map.zarr"
    writer = start_slow_writer(store)
    time.sleep(1.0)  # a few blocks written
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=30)
    assert lock.lock_path(store).exists() and pxio.store_status(store) == "unfinished"
    pxio.write_zarr(np.full((64, 64), 2.0), store)  # the same host: its process is gone
    assert pxio.is_complete(store) and not lock.lock_path(store).exists()
    np.testing.assert_array_equal(zarr.open_array(store, mode="r")[:], 2.0)


def test_a_lock_from_another_host_holds_until_its_heartbeat_is_old(tmp_path):
    store = tmp_path / "map.zarr"
    path = lock.lock_path(store)
    path.write_text(json.dumps({"host": "other-node", "pid": 1, "started": time.time()}))
    with pytest.raises(lock.StoreBusy, match="process 1 on other-node"):
        pxio.write_zarr(np.zeros((8, 8)), store)
    old = time.time() - lock.LEASE - 5
    os.utime(path, (old, old))
    pxio.write_zarr(np.zeros((8, 8)), store)
    assert pxio.is_complete(store)
