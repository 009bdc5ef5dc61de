"""One writer per output store: a lock file beside the store, with its holder and a heartbeat.

Two runs that write the same Zarr store at once would each rewrite the other's
chunks. :func:`store_lock` creates ``.NAME.pixgmm-lock`` beside the store
``NAME`` with ``O_EXCL`` (so of two runs starting together exactly one gets
it), records the holder (host, process, start time) and refreshes the file's
modification time every :data:`HEARTBEAT` seconds while the run writes. A
second run finds the lock and refuses, naming the run that holds it. A lock
left by a run that was killed is taken over: on the same host when its process
no longer exists, from another host (a shared file system) when its heartbeat
is older than :data:`LEASE` seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from pathlib import Path

#: Seconds between two refreshes of a held lock.
HEARTBEAT = 20.0
#: Seconds after its last refresh that another host takes a lock for abandoned.
LEASE = 120.0


class StoreBusy(FileExistsError):
    """Another run is writing the output; the message names it."""


def lock_path(store):
    """The lock file of the local store ``store``: hidden, beside it."""
    p = Path(store)
    return p.with_name(f".{p.name}.pixgmm-lock")


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: it exists
        return True
    return True


def _holder(path):
    """``(record, age in seconds)`` of an existing lock, or None if it vanished."""
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8") as fh:
            record = json.load(fh)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # being written, or damaged: treat as a fresh lock of no one
        return {}, 0.0
    return record, max(0.0, time.time() - st.st_mtime)


def _abandoned(record, age):
    host, pid = record.get("host"), record.get("pid")
    if host == socket.gethostname() and isinstance(pid, int):
        return not _pid_alive(pid)
    return age > LEASE


def _describe(record, store):
    started = record.get("started")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)) if started else "?"
    return (
        f"another run (process {record.get('pid', '?')} on {record.get('host', '?')}, started "
        f"{when}) is writing {store}; wait for it to finish, or stop it and run again"
    )


@contextlib.contextmanager
def store_lock(store):
    """Hold the writer lock of the local store ``store`` for the block; :class:`StoreBusy` if taken.

    Examples
    --------
    >>> import tempfile
    >>> from pixgmm.io.lock import StoreBusy, store_lock
    >>> store = tempfile.mkdtemp() + "/map.zarr"
    >>> with store_lock(store):
    ...     try:
    ...         with store_lock(store):
    ...             pass
    ...     except StoreBusy as exc:
    ...         print(str(exc).split(" (")[0])
    another run
    """
    path = lock_path(store)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            found = _holder(path)
            if found is None:
                continue  # released meanwhile: try again
            held, age = found
            if not _abandoned(held, age):
                raise StoreBusy(_describe(held, store)) from None
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a killed run's lock
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(record, fh)
        break
    else:
        raise StoreBusy(f"cannot take the writer lock {path} of {store}; another run keeps it")
    stop = threading.Event()

    def beat():
        while not stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(path)

    thread = threading.Thread(target=beat, name="pixgmm-lock", daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@contextlib.contextmanager
def store_locks(stores):
    """:func:`store_lock` of every local store in ``stores`` (URLs are not locked), together."""
    from .paths import is_url

    with contextlib.ExitStack() as stack:
        for store in stores:
            if not is_url(store):
                stack.enter_context(store_lock(store))
        yield
