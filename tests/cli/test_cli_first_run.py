"""The first run on a machine says, once and on a terminal only, that it compiles the kernels."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

import numpy as np
import pytest

Image = pytest.importorskip("PIL.Image")

NOTE = "first run on this machine: compiling its kernels"


def run_on_terminal(args, cwd, env):
    """Run ``pixgmm ARGS`` with stderr on a pseudo-terminal; return what it printed there."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "pixgmm", *args], cwd=cwd, env=env,
                              stdout=subprocess.DEVNULL, stderr=follower, timeout=600)  # fmt: skip
        os.close(follower)
        follower = None
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not data:
                break
            chunks.append(data)
    finally:
        if follower is not None:
            os.close(follower)
        os.close(leader)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


def test_the_compilation_note_comes_once_and_only_on_a_terminal(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 180, np.uint8)).save(tmp_path / "tiny.png")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}  # a machine never used
    args = ["skin", "tiny.png", "-o", "out", "--overwrite"]
    first = run_on_terminal(args, tmp_path, env)
    assert NOTE in first
    assert NOTE not in run_on_terminal(args, tmp_path, env)  # compiled: nothing to say
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "cache2")
    assert NOTE not in run_on_terminal([*args, "--quiet"], tmp_path, env)
    piped = subprocess.run([sys.executable, "-m", "pixgmm", *args], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert piped.returncode == 0 and NOTE not in piped.stderr  # not a terminal: a log stays clean
