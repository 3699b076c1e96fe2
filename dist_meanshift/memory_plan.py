"""The memory plan: chunk rows and persist-or-stream fitted to the workers' memory.

Before any task of a run, :func:`plan_memory` measures what each worker
process holds and chooses how the data is cut and where it lives, or refuses
in one line naming the smallest memory limit that works.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass

from .errors import InputError

logger = logging.getLogger(__name__)

#: Bytes a task holds beyond its data chunk: block work arrays, cell tables
#: (measured with tracemalloc: at most 13 MiB for 500,000 x 3 rows).
_TASK_OVERHEAD = 16 * 2**20
#: Copies of its data chunk a task may hold at once (read, float64, sorted).
_CHUNK_COPIES = 3


def return_freed_memory():
    """Make glibc's malloc give large freed blocks back to the system at once.

    In-process workers count this process's memory against their limit. By
    default glibc raises its mmap threshold to the largest block freed (up to
    32 MiB), so that the decoded chunks of a pass stay in the heap after they
    are freed and the process looks 100-200 MiB fuller than it is (measured
    on 400,000 x 8 rows; worker processes get the same from their nanny's
    ``MALLOC_TRIM_THRESHOLD_``). A fixed threshold of 1 MiB keeps them out of
    the heap. Elsewhere than glibc, nothing changes.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt(_M_MMAP_THRESHOLD, 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 2**20)
    except (OSError, AttributeError, TypeError):  # not glibc
        logger.debug("malloc thresholds left as they are (no glibc mallopt)")


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


@dataclass
class MemoryPlan:
    """How a run uses the workers' memory, fitted before any task runs.

    Attributes
    ----------
    chunk_rows : int or None
        Rows per task; None keeps the input's chunks (or the automatic ones).
    persist : bool or None
        Keep the data in cluster memory, or stream it from its store each
        pass; None leaves the choice to the estimator (no memory limit).
    """

    chunk_rows: int | None = None
    persist: bool | None = None


def plan_memory(client, data, spec, model=None):
    """Fit chunk rows and persist-or-stream to the workers' memory, or refuse.

    A worker pauses above 80% of its memory limit (its nanny stops it at
    95%) and runs nothing more, so a plan must fit what a worker holds before
    any data (Python, Dask, zarr: measured on each worker by importing what
    the tasks import) plus, per thread, one task: its data chunk in a few
    float64 copies, and the decoded zarr chunk it is sliced from. Workers
    that share a process (a local cluster of threads) share its memory. In
    order of preference: the data kept in memory with its own chunks, kept
    with smaller chunks, streamed with its own chunks, streamed with smaller
    ones. Where none fits, the one-line refusal names the smallest memory
    limit that does. ``chunk_rows`` and ``persist`` given in ``model`` are
    kept as given, and checked.

    Parameters
    ----------
    client : distributed.Client
    data : ndarray, dask.array.Array or zarr.Array
        The input as opened.
    spec : dict
        The job's ``[cluster]``.
    model : dict, default=None
        The job's ``[model]``.

    Returns
    -------
    MemoryPlan
    """
    import numpy as np

    from ._dask import auto_chunk_rows

    model = model or {}
    shape = data.shape
    if len(shape) != 2 or shape[0] is None or not shape[0]:
        return MemoryPlan()  # refused by the input checks, or rows not counted yet
    if spec.get("processes") and not (spec.get("scheduler") or spec.get("manager")):
        # Worker processes of a local cluster (threads are this process).
        compile_loops_here(getattr(data, "dtype", None), shape[0])
    workers = _some_workers(client)
    if workers:
        if not _memory_limit(workers.values()):
            return MemoryPlan()  # no limit: nothing to fit
        groups = _worker_processes(client, workers)
    else:
        groups = _never_started(spec)  # or, not started here: the watchdog tells
        if not groups:
            return MemoryPlan()
    n_rows, n_features = shape
    dtype = np.dtype(data.dtype)
    held = 4 if dtype == np.float32 else 8  # as the fit holds it
    row_bytes = n_features * max(8, dtype.itemsize)
    zarr_rows = getattr(data, "shards", None) or getattr(data, "chunks", None)
    if zarr_rows and isinstance(zarr_rows[0], int):  # zarr: its stored chunks
        stored = zarr_rows[0]
    elif zarr_rows:  # dask: its chunks
        stored = max(zarr_rows[0])
    else:  # in memory: the chunks it is sent in, and it is sent whole
        stored = auto_chunk_rows(shape, held, client)
    source_bytes = stored * n_features * dtype.itemsize
    data_bytes = n_rows * n_features * held  # kept in memory, as the fit holds it
    in_memory = isinstance(data, np.ndarray)

    def need(rows):
        """Bytes one task holds with ``rows`` rows per chunk."""
        # A slice of a chunk: the chunk is read (compressed) and decoded whole.
        sliced = 2 * source_bytes if rows < stored and not in_memory else 0
        return _CHUNK_COPIES * rows * row_bytes + _TASK_OVERHEAD + sliced

    def client(rows):
        """Bytes this process holds for the run: its labels and its tasks."""
        return n_rows * 8 + math.ceil(n_rows / rows) * _TASK_BYTES

    def fits(rows, persist):
        resident = data_bytes if persist else 0
        return all(
            g.room
            >= g.share * resident + g.threads * need(rows) + g.client * client(rows)
            for g in groups
        )

    def largest(persist):
        """The most rows per chunk (at most ``stored``) that fit, or 0."""
        lo, hi = 0, stored
        while lo < hi:
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if fits(mid, persist) else (lo, mid - 1)
        return lo

    given_rows = model.get("chunk_rows")
    given_persist = model.get("persist", "auto")
    choices = [True, False] if given_persist == "auto" else [bool(given_persist)]
    if in_memory:
        choices = [True]  # sent to the cluster: held there whatever the choice
    fewest = given_rows or min(_MIN_CHUNK_ROWS, stored)
    for persist in choices:
        if given_rows is not None:
            if fits(given_rows, persist):
                return _planned(given_rows, persist, in_memory)
            continue
        if fits(stored, persist):
            return _planned(None, persist, in_memory)
        rows = largest(persist)
        if rows >= fewest:
            return _planned(rows, persist, in_memory)
    resident = data_bytes if choices == [True] else 0
    _refuse_memory(groups, resident, need(fewest), client(fewest), spec)


#: Fewer rows per task than this are not worth a task (unless the input's
#: chunks are smaller).
_MIN_CHUNK_ROWS = 4096
#: Bytes the client and scheduler keep per data chunk: its tasks of a pass.
_TASK_BYTES = 64 * 2**10


def _planned(rows, persist, in_memory):
    how = "kept in memory" if persist else "streamed from its store each pass"
    logger.info(
        "memory plan: data %s, %s rows per task",
        "sent to the cluster" if in_memory else how,
        rows or "its own chunks'",
    )
    return MemoryPlan(rows, None if in_memory else persist)


@dataclass
class _Process:
    """Workers sharing one process: what it holds and what it may hold."""

    rss: int
    limit: int
    threads: int
    share: float  # the part of persisted data it keeps
    dead: bool = False
    client: bool = False  # this process, where the client runs

    @property
    def room(self):
        # Less a margin: memory that Python and malloc keep after a task.
        return _PAUSE * self.limit - self.rss - _MARGIN


#: Fraction of its memory limit above which a worker pauses (distributed's
#: ``distributed.worker.memory.pause``).
_PAUSE = 0.8
#: Memory a plan leaves free beyond its count: what Python and malloc keep.
_MARGIN = 32 * 2**20


def compile_loops_here(dtype, n_rows):
    """Compile the streamed passes' loops in this process, into numba's cache.

    A local cluster's worker processes then load them from the cache on disk
    (this machine's) instead of compiling them: on a fresh install, compiling in a
    worker of 512 MiB took it over its memory (LLVM's work), and the workers
    paused for good. Done only for data of at least ``COMPILED_MIN_ROWS``
    rows, the chunks that load numba; the first run pays the compile here,
    once (see the benchmarks), later ones a load from the cache.
    """
    import numpy as np

    from ._blocks import binning, cell_sums, combine_cell_sums, labels
    from ._blocks.kernels import flat
    from ._dask import scratch

    if n_rows < binning.COMPILED_MIN_ROWS:
        return
    dtype = np.dtype(dtype)  # None: float64
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)  # what other data is fitted as
    start = time.perf_counter()
    n = max(
        binning.COMPILED_MIN_ROWS, labels.COMPILED_MIN_ROWS, flat._ROW_SUMS_MIN_ROWS
    )
    X = np.random.default_rng(0).random((n, 3)).astype(dtype)
    centers = np.asarray(X[:4], dtype=np.float64)
    # Cells small enough that the two tables hold enough cells to merge.
    tables = cell_sums(X, 1e-4), cell_sums(X[::-1].copy(), 1e-4)
    combine_cell_sums(*tables)
    binning.combine_bin_counts(*(t[:2] for t in tables))
    binning.bin_counts(X, 0.5)
    # Two opposite corners settle 84% of the sampled rows, beyond the 75% the
    # grid's loop is used from (4 random rows settle 76%: too near).
    corners = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    labels.assign_labels(X, corners, None)  # through a grid of cells
    wide = np.random.default_rng(0).random((n, 4)).astype(dtype)
    labels.assign_labels(wide, np.asarray(wide[:4], np.float64), None)  # beyond it
    flat.flat_row_sums(centers, X, 0.2, None)
    # The column index a streamed chunk is kept as on disk, and read back
    # (centers enough for their pairs to go through the index).
    many = np.asarray(X[:16], dtype=np.float64)
    with tempfile.TemporaryDirectory() as directory:
        kept = os.path.join(directory, "0")
        scratch.sums_writing_index(many, X, kept, 0.2, "flat")
        scratch.indexed_sums(many, kept, 0.2, "flat")
    logger.info(
        "compiled loops ready for %s in %.1f s", dtype, time.perf_counter() - start
    )


def _footprint():
    """On a worker: its process and memory once it has what tasks import.

    That includes numba, which tasks over chunks of many rows load for their
    compiled loops (binning, labels, flat sums): some 110 MiB of a process.
    A worker in the client's own process (a local cluster of threads) holds
    what the client's fit imports too: the caller loads it first (the
    estimator, and scikit-learn with it: 38 MiB, beyond ``_MARGIN``).
    """
    import psutil

    from . import _blocks, _dask  # noqa: F401 - what the tasks import
    from ._blocks import _loops  # noqa: F401 - and numba, for large chunks

    return socket.gethostname(), os.getpid(), psutil.Process().memory_info().rss


#: Seconds to wait for a worker to be up when a plan starts and none is.
_WORKER_WAIT = 5


def _some_workers(client):
    """The workers, waiting a little for one: workers stopped over their memory
    limit as they start are away while their nannies start them again."""
    deadline = time.monotonic() + _WORKER_WAIT
    while not (workers := client.scheduler_info()["workers"]):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return workers


def _never_started(spec):
    """The workers of a local cluster started here that never stay up: stopped
    by their nannies as they start, over a memory limit too small for Python."""
    import psutil
    from dask.utils import parse_bytes

    limit = spec.get("memory_limit")
    if spec.get("scheduler") or spec.get("manager") or limit in (None, "auto"):
        return []
    limit = parse_bytes(limit) if isinstance(limit, str) else int(limit)
    rss = psutil.Process().memory_info().rss
    return [_Process(rss, limit, spec.get("threads_per_worker", 1), 1.0, True)]


def _worker_processes(client, workers):
    """The workers grouped by the process they run in, with what each holds."""
    import psutil

    seen = client.run(_footprint, on_error="return")
    total = len(workers)
    groups = {}
    for address, w in workers.items():
        limit = w.get("memory_limit") or 0
        if not limit:
            continue
        found = seen.get(address)
        if isinstance(found, BaseException) or found is None:
            # Stopped while loading what a task needs (over its limit): this
            # process, which has loaded it all, tells about what that takes.
            logger.debug("worker %s gave no footprint: %r", address, found)
            key = (address,)
            rss, dead = psutil.Process().memory_info().rss, True
        else:
            key, rss, dead = found[:2], found[2], False
        here = key == (socket.gethostname(), os.getpid())
        g = groups.setdefault(key, _Process(rss, limit, 0, 0.0, dead, here))
        g.limit = min(g.limit, limit)
        g.threads += w.get("nthreads", 1)
        # Persisted chunks spread over the workers, not quite evenly.
        g.share = min(1.0, g.share + 1.5 / total)
    return list(groups.values())


def _refuse_memory(groups, resident, task, client, spec):
    mib = 2**20

    def needs(g):
        return g.rss + g.share * resident + g.threads * task + g.client * client

    worst = max(groups, key=lambda g: needs(g) / g.limit)
    smallest = (needs(worst) + _MARGIN) / _PAUSE
    smallest = 32 * mib * math.ceil(smallest / (32 * mib))
    manager = spec.get("manager") or ""
    local = not spec.get("scheduler") and (
        not manager or manager.endswith("LocalCluster")
    )
    how = (
        "[cluster] memory_limit or --memory-limit"
        if local
        else "the workers' --memory-limit"
    )
    if worst.dead:
        why = (
            f"workers of {worst.limit / mib:.0f} MiB are stopped as soon as they "
            f"load Python, Dask and zarr (about {worst.rss / mib:.0f} MiB)"
        )
    else:
        parts = [
            f"a worker process holds {worst.rss / mib:.0f} MiB before any data",
            f"{task / mib:.0f} MiB per running task ({worst.threads} at once)",
        ]
        if resident:
            parts.append(f"{worst.share * resident / mib:.0f} MiB of data")
        if worst.client:
            parts.append(f"{client / mib:.0f} MiB of labels and task records")
        why = f"{', '.join(parts)}, against 80% of its {worst.limit / mib:.0f} MiB"
    raise InputError(
        f"No memory plan fits: {why}. Raise the memory limit to at least "
        f"{smallest / mib:.0f} MiB ({how})."
    )


def _memory_limit(workers):
    """The smallest memory limit among workers that have one (0 if none has)."""
    return min((w["memory_limit"] for w in workers if w.get("memory_limit")), default=0)
