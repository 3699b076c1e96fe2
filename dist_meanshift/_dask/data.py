"""Data as Dask sees it: row-chunked arrays, sent or persisted once, checked as read.

Input enters here as a row-chunked dask array (:func:`as_dask`): numpy
chunked and sent to the cluster as recoverable data, zarr read chunk by chunk
with every chunk's file checked against its state at the start. Big arrays
never travel inside task graphs.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import sys
import uuid

import dask
import dask.array as da
import numpy as np
import psutil
from threadpoolctl import ThreadpoolController

from .. import inputs
from .._validation import require_finite

logger = logging.getLogger(__name__)
# Upper bound of an automatic chunk of in-memory input.
_MAX_CHUNK_BYTES = 64 * 2**20
# Largest graph sent at once; distributed warns from 10 MB.
_MAX_GRAPH_BYTES = 8 * 2**20
# Chunks smaller than this are not worth a task of their own.
_MIN_CHUNK_ROWS = 4096
# The dataset is kept in cluster memory when it takes at most this fraction of
# the memory available to the workers (or to this process, without a cluster).
_PERSIST_FRACTION = 0.5


def current_client():
    """The active ``distributed.Client``, or None when there is none."""
    # No client exists before distributed is imported: do not import it (a
    # fit in this process alone never needs it).
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:
        return None


#: Callables ``(done, total)`` told how many tasks of a long computation are done.
_WATCHERS = []
#: Seconds between two looks at the tasks of a watched computation.
_WATCH_EVERY = 0.5


@contextlib.contextmanager
def watch_tasks(callback):
    """While the block runs, tell ``callback(done, total)`` how watched computations go.

    A computation is watched when it names the tasks to count (``watch`` of
    :func:`compute`, the shift sums of an iteration) and runs on a cluster.
    """
    _WATCHERS.append(callback)
    try:
        yield
    finally:
        _WATCHERS.remove(callback)


@functools.cache
def _blas_controller():
    """The BLAS libraries loaded in this process, found once: finding them reads
    the process's memory maps (some 1.6 ms, at every iteration otherwise)."""
    return ThreadpoolController()


def compute(*collections, watch=None):
    """``dask.compute`` with BLAS kept to one thread in this process.

    Tasks run in parallel on dask's threads (or in-process workers); a
    multi-threaded BLAS inside each of them would oversubscribe the cores
    (see benchmarks/run.py). Worker processes started by a nanny already run
    with one BLAS thread. With ``watch`` (the keys of the tasks to count) and
    a watcher (:func:`watch_tasks`), the computation runs as futures whose
    tasks are counted as they finish.
    """
    with _blas_controller().limit(limits=1, user_api="blas"):
        client = current_client()
        if not (_WATCHERS and watch and client is not None):
            return dask.compute(*collections)
        return _watched(client, collections, list(watch))


def _watched(client, collections, keys):
    from distributed import wait

    futures = client.compute(list(collections))
    roots = [f.key for f in futures]
    counting = True
    while True:
        try:
            wait(futures, timeout=_WATCH_EVERY if counting else None)
            break
        except TimeoutError:
            try:
                done = client.run_on_scheduler(_tasks_done, keys=keys, roots=roots)
            # A scheduler that runs no functions of ours (distributed's
            # scheduler.pickle off) or is busy: the run goes on uncounted.
            except Exception as exc:  # noqa: BLE001
                logger.debug("tasks not counted: %r", exc)
                counting = False
                continue
            for watcher in _WATCHERS:
                watcher(done, len(keys))
    for watcher in _WATCHERS:
        watcher(len(keys), len(keys))
    return tuple(client.gather(futures))


def _tasks_done(dask_scheduler, keys, roots):
    """On the scheduler: how many of ``keys`` have run (0 before the graph arrives)."""
    tasks = dask_scheduler.tasks
    if any(root not in tasks for root in roots):
        return 0
    finished = ("memory", "released", "erred", "forgotten")
    # A task no longer known has run and been forgotten (its result was used).
    return sum(1 for k in keys if k not in tasks or tasks[k].state in finished)


def as_dask(data, chunk_rows=None):
    """A validated input as a float dask array chunked by rows only.

    numpy input is chunked (and sent to the cluster, see :func:`to_dask_array`);
    a zarr array is read chunk by chunk (see :func:`from_zarr`); integers
    become float64 and floats narrower than float32 become float32.

    Parameters
    ----------
    data : InputData
        From :func:`~._validation.check_input`; its ``array`` is set.
    chunk_rows : int, default=None
        Rows per chunk; by default the chunks of dask and zarr input are kept
        and in-memory input is chunked automatically.

    Returns
    -------
    InputData
    """
    if data.kind == "numpy":
        data.array = to_dask_array(data.numpy, chunk_rows)
        return data
    if data.kind == "zarr":
        stored = (data.source.shards or data.source.chunks)[0]
        split = chunk_rows if chunk_rows is not None and chunk_rows < stored else None
        arr = from_zarr(data.source, rows=split)
    else:
        arr = data.source
    if arr.dtype.kind in "iu" or arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    elif arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    if arr.numblocks[1] > 1:
        arr = arr.rechunk({1: -1})
    if chunk_rows is not None and arr.chunks[0][0] != chunk_rows:
        arr = arr.rechunk({0: chunk_rows})
    data.array = arr
    return data


def output(data, result):
    """numpy in, numpy out; dask or zarr in, the lazy dask array ``result``."""
    return compute(result)[0] if data.kind == "numpy" else result


def from_zarr(z, check=True, rows=None):
    """A dask array reading ``z`` block by block, each checked against its start.

    The identity of every chunk's file (see :func:`~.inputs.chunk_file`) is
    recorded now; every later read of a block first checks its file against
    that record (:func:`~.inputs.read_block`), so that a chunk rewritten or
    deleted while a streamed run goes on stops the run instead of being read
    as other data or as fill values. Sharded arrays are read a shard per task.

    Parameters
    ----------
    z : zarr.Array
    check : bool, default=True
        Whether reads check the chunks' files (local stores only).
    rows : int, default=None
        At most this many rows per block: a chunk taller than that is read in
        slices of it, one task each, so that no task holds more than one
        decoded chunk and a slice (see :func:`~..memory_plan.plan_memory`).

    Returns
    -------
    dask.array.Array
    """
    chunks = z.shards or z.chunks
    grid = [math.ceil(n / c) for n, c in zip(z.shape, chunks, strict=True)]
    token = dask.base.tokenize(z, chunks, check, rows)
    name = f"from-zarr-{token}"
    source = f"zarr-source-{token}"
    dsk = {source: z}
    # The rows of each chunk row read whole, or in slices of ``rows``.
    step = rows or chunks[0]
    slices = [
        (i, start, min(z.shape[0], (i + 1) * chunks[0], start + step))
        for i in range(grid[0])
        for start in range(i * chunks[0], min(z.shape[0], (i + 1) * chunks[0]), step)
    ]
    columns = [
        [slice(j * c, min(n, (j + 1) * c)) for j in range(g)]
        for n, c, g in zip(z.shape[1:], chunks[1:], grid[1:], strict=True)
    ]
    for r, (i, start, stop) in enumerate(slices):
        for rest in np.ndindex(*grid[1:]):
            index = (slice(start, stop), *(columns[k][j] for k, j in enumerate(rest)))
            file, identity = inputs.chunk_file(z, (i, *rest)) if check else (None, None)
            dsk[(name, r, *rest)] = (inputs.read_block, source, index, file, identity)
    block_chunks = (
        tuple(stop - start for _, start, stop in slices),
        *(tuple(s.stop - s.start for s in column) for column in columns),
    )
    return da.Array(dsk, name, block_chunks, meta=np.empty((0,) * z.ndim, z.dtype))


def to_dask_array(X, chunk_rows=None):
    """Turn an in-memory array into a row-chunked dask array.

    With an active client the chunks are sent to the cluster once, as data the
    scheduler keeps (see :func:`upload`), so a worker's death loses nothing.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    chunk_rows : int, default=None
        Rows per chunk; by default enough chunks to keep every thread busy,
        each at most 64 MiB (8 MiB with a client).

    Returns
    -------
    dask.array.Array
    """
    client = current_client()
    rows = chunk_rows or auto_chunk_rows(X.shape, X.dtype.itemsize, client)
    if client is None:
        # A name of its own rather than a hash of every byte (17 ms per
        # million rows of 3 features).
        return da.from_array(X, chunks=(rows, -1), name=False)
    parts = [X[s : s + rows] for s in range(0, X.shape[0], rows)]
    return da.concatenate(
        [
            da.from_delayed(d, shape=p.shape, dtype=X.dtype)
            for d, p in zip(upload(parts, "data"), parts, strict=True)
        ]
    )


def upload(parts, name):
    """Send in-memory arrays to the cluster as recoverable data.

    Each array becomes a literal task of its own that the scheduler keeps: if
    the worker holding it dies, the scheduler sends it again. (``scatter``
    would lose it for good, and broadcast copies are dropped by the active
    memory manager.) The arrays go in batches of at most 8 MiB so that no
    graph is large. Without a client they are wrapped as they are.

    Parameters
    ----------
    parts : list of ndarray
    name : str
        Prefix of the keys; each call makes new keys (dask/distributed#8576).

    Returns
    -------
    list of dask.delayed.Delayed
    """
    token = uuid.uuid4().hex
    delayed = [
        dask.delayed(p, name=f"{name}-{token}-{i}", traverse=False)
        for i, p in enumerate(parts)
    ]
    client = current_client()
    if client is None:
        return delayed
    out, batch, size = [], [], 0
    for d, p in zip(delayed, parts, strict=True):
        if batch and size + p.nbytes > _MAX_GRAPH_BYTES:
            out.extend(client.persist(batch))
            batch, size = [], 0
        batch.append(d)
        size += p.nbytes
    out.extend(client.persist(batch))
    return out


def prepare(X, persist="auto"):
    """Keep a lazily read dataset (dask or zarr) in memory when it fits.

    Persisted chunks are recomputed from their source if a worker dies.

    Parameters
    ----------
    X : dask.array.Array
    persist : {"auto", True, False}

    Returns
    -------
    X : dask.array.Array
    persisted : bool
    """
    if persist is False:
        return X, False
    budget = _memory_budget(current_client())
    if persist is True or X.nbytes <= _PERSIST_FRACTION * budget:
        logger.info("persisting %.1f MB of data in memory", X.nbytes / 1e6)
        return X.persist(), True
    logger.info(
        "data (%.1f MB) exceeds half the memory (%.1f MB): streaming it each pass",
        X.nbytes / 1e6,
        budget / 1e6,
    )
    return X, False


def checked_finite(X):
    """``X`` whose chunks are checked for NaN and infinity as they are computed.

    The check rides along every pass over the data (it costs little per
    chunk against the read), so no pass is spent on it; a chunk that fails it
    raises :class:`~._validation.NonFiniteValues`.

    Parameters
    ----------
    X : dask.array.Array

    Returns
    -------
    dask.array.Array
    """
    return X.map_blocks(_require_finite_block, dtype=X.dtype, meta=X._meta)


def _require_finite_block(x, block_info=None):
    first_row = block_info[0]["array-location"][0][0] if block_info else 0
    return require_finite(x, first_row)


def count_non_finite(X):
    """Number of non-finite values and the (row, column) of the first one.

    Parameters
    ----------
    X : dask.array.Array

    Returns
    -------
    count : int
    first : tuple of int or None
    """
    bad = ~da.isfinite(X)
    count, first_row = dask.compute(bad.sum(), bad.any(axis=1).argmax())
    if count == 0:
        return 0, None
    row = X[int(first_row)].compute()
    return int(count), (int(first_row), int(np.flatnonzero(~np.isfinite(row))[0]))


def auto_chunk_rows(shape, itemsize, client):
    n_rows, n_features = shape
    per_thread = math.ceil(n_rows / (2 * n_threads(client)))
    max_bytes = _MAX_CHUNK_BYTES if client is None else _MAX_GRAPH_BYTES
    max_rows = max(1, max_bytes // max(1, n_features * itemsize))
    return int(max(1, min(max_rows, max(_MIN_CHUNK_ROWS, per_thread))))


def n_threads(client):
    if client is None:
        return os.cpu_count() or 1
    return sum(w["nthreads"] for w in client.scheduler_info()["workers"].values()) or 1


def _memory_budget(client):
    if client is not None:
        workers = client.scheduler_info()["workers"].values()
        total = sum(w.get("memory_limit") or 0 for w in workers)
        if total:
            return total
    return psutil.virtual_memory().available
