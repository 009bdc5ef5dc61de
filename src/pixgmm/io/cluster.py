"""Where Dask work runs: a local or remote ``distributed`` cluster, or dask's threads.

:func:`dask_client` starts or connects to a cluster for a block of code;
:func:`compute` runs Dask collections on the current client (if any) with an
optional progress bar, and cancels what is still queued when it fails or is
interrupted.
"""

from __future__ import annotations

import contextlib
import contextvars
import operator
import sys

_PROGRESS = contextvars.ContextVar("pixgmm_progress", default=False)


def compute(*collections, progress=None):
    """``dask.compute`` on the current client (if any), with an optional progress bar.

    With a ``distributed`` client active (e.g. inside :func:`dask_client`) the
    work goes to its cluster and ``distributed``'s progress bar is shown;
    otherwise dask's local scheduler runs it under ``dask.diagnostics.ProgressBar``.
    The bar goes to stderr. When the computation fails or is interrupted
    (Ctrl-C), its tasks still on the cluster are cancelled before the
    exception propagates: none starts afterwards (one already running
    finishes its block).

    Parameters
    ----------
    *collections : dask collections
        What to compute (dask arrays, delayed objects, ...), all in one run.
    progress : bool, optional
        Show the progress bar. Default: the ``progress`` of the enclosing
        :func:`dask_client`; no bar outside one.

    Returns
    -------
    tuple
        The computed result of each collection, in order.

    Examples
    --------
    >>> import dask.array as da
    >>> from pixgmm.io import compute
    >>> compute(da.ones(10, chunks=3).sum())
    (np.float64(10.0),)
    """
    import dask

    show = _PROGRESS.get() if progress is None else bool(progress)
    client = _current_client()
    if client is not None:
        futures = client.compute(list(collections))
        try:
            if show:
                from distributed import progress as distributed_progress

                with contextlib.redirect_stdout(sys.stderr):
                    distributed_progress(futures)
                    print(file=sys.stderr)
            return tuple(client.gather(futures))
        except BaseException:
            # a failure or Ctrl-C here must not leave the cluster writing on behind our back
            client.cancel(futures)
            raise
    if show:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(*collections)
    return dask.compute(*collections)


def _current_client():
    if "distributed" not in sys.modules:
        return None
    from distributed import default_client

    try:
        return default_client()
    except ValueError:
        return None


@contextlib.contextmanager
def dask_client(workers=None, scheduler=None, *, threads_per_worker=1, progress=True, timeout=30):
    """Run the Dask work in its block on a local cluster, a remote one, or locally.

    - ``scheduler="tcp://host:8786"``: connect to an existing cluster.
    - ``workers=N``: start a ``distributed.LocalCluster`` of N worker
      processes on 127.0.0.1 (no dashboard) and close it on exit.
    - neither: no cluster; dask's local threaded scheduler runs the work.

    Inside the block :func:`write_zarr` and :func:`compute` show progress
    (``progress=False`` silences them).

    Parameters
    ----------
    workers : int, optional
        Worker processes of a local cluster. Each runs ``threads_per_worker``
        Dask tasks at a time; pixgmm's kernels are themselves multi-threaded.
    scheduler : str, optional
        Address of a running scheduler.
    threads_per_worker : int, default 1
    progress : bool, default True
    timeout : float, default 30
        Seconds to wait for the scheduler or the local workers to come up.

    Yields
    ------
    distributed.Client or None
        The client (set as the default for the block), or None for the local
        scheduler.

    Examples
    --------
    >>> import dask.array as da
    >>> from pixgmm.io import dask_client, compute
    >>> with dask_client(progress=False) as client:
    ...     print(client, compute(da.ones(4, chunks=2).sum()))
    None (np.float64(4.0),)
    """
    if workers is not None and scheduler is not None:
        raise ValueError(
            "pass workers= (start a local cluster) or scheduler= (use a running one), not both"
        )
    if workers is not None:
        try:
            workers = operator.index(workers)
        except TypeError:
            raise TypeError(f"workers must be an integer, got {workers!r}") from None
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(
            f"scheduler must be an address string such as 'tcp://10.0.0.5:8786', got {scheduler!r}"
        )
    token = _PROGRESS.set(bool(progress))
    try:
        if scheduler is not None:
            from distributed import Client

            with Client(scheduler, timeout=timeout) as client:
                yield client
        elif workers is not None:
            from distributed import Client, LocalCluster

            with (
                LocalCluster(
                    n_workers=workers,
                    threads_per_worker=threads_per_worker,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    timeout=timeout,
                ) as cluster,
                Client(cluster, timeout=timeout) as client,
            ):
                yield client
        else:
            yield None
    finally:
        _PROGRESS.reset(token)
