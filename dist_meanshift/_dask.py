"""Dask orchestration: the only module that builds task graphs.

An iteration is a map-reduce: one task per (center partition x data chunk)
computes partial kernel-weighted sums for the centers that still move, a tree
reduction adds them up on the cluster, and only the small arrays (sums and
weights per center) come back to the client. The same map-reduce counts bins,
bins data and labels rows. Input enters here as a row-chunked dask array
(:func:`as_dask`): numpy chunked, zarr read chunk by chunk with every chunk's
file checked against its state at the start.

With an active ``distributed.Client`` the work goes to its cluster; with none it
runs on dask's in-process thread pool, without starting any cluster.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from . import _blocks, io
from ._validation import require_finite

logger = logging.getLogger(__name__)
# Center-point pairs a task should at least evaluate (~50-100 ms here) so that
# Dask's per-task cost of a few milliseconds stays small.
_TARGET_PAIRS_PER_TASK = 20_000_000
# In-memory data of at most this many rows is shifted in this process when an
# iteration is no more than one task's work: a task graph would cost more.
_LOCAL_MAX_ROWS = 20_000
# Upper bound of an automatic chunk of in-memory input.
_MAX_CHUNK_BYTES = 64 * 2**20
# Largest graph sent at once; distributed warns from 10 MB.
_MAX_GRAPH_BYTES = 8 * 2**20
# Chunks smaller than this are not worth a task of their own.
_MIN_CHUNK_ROWS = 4096
# The dataset is kept in cluster memory when it takes at most this fraction of
# the memory available to the workers (or to this process, without a cluster).
_PERSIST_FRACTION = 0.5
# Fan-in of the tree reduction of partial sums.
_SPLIT_EVERY = 8


def current_client():
    """The active ``distributed.Client``, or None when there is none."""
    try:
        from distributed import default_client
    except ImportError:  # pragma: no cover - distributed is a dependency
        return None
    try:
        return default_client()
    except ValueError:
        return None


def compute(*collections):
    """``dask.compute`` with BLAS kept to one thread in this process.

    Tasks run in parallel on dask's threads (or in-process workers); a
    multi-threaded BLAS inside each of them would oversubscribe the cores
    (about 30% slower here). Worker processes started by a nanny already run
    with one BLAS thread.
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return dask.compute(*collections)


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
    arr = from_zarr(data.source) if data.kind == "zarr" else data.source
    if arr.dtype.kind in "iu" or arr.dtype.itemsize > 8:
        arr = arr.astype(np.float64)
    elif arr.dtype.itemsize < 4:
        arr = arr.astype(np.float32)
    if arr.numblocks[1] > 1:
        arr = arr.rechunk({1: -1})
    if chunk_rows is not None:
        arr = arr.rechunk({0: chunk_rows})
    data.array = arr
    return data


def output(data, result):
    """numpy in, numpy out; dask or zarr in, the lazy dask array ``result``."""
    return compute(result)[0] if data.kind == "numpy" else result


def from_zarr(z, check=True):
    """A dask array reading ``z`` block by block, each checked against its start.

    The identity of every chunk's file (see :func:`~.io.chunk_files`) is
    recorded now; every later read of a block first checks its file against
    that record (:func:`~.io.read_block`), so that a chunk rewritten or
    deleted while a streamed run goes on stops the run instead of being read
    as other data or as fill values. Sharded arrays are read a shard per task.

    Parameters
    ----------
    z : zarr.Array
    check : bool, default=True
        Whether reads check the chunks' files (local stores only).

    Returns
    -------
    dask.array.Array
    """
    chunks = z.shards or z.chunks
    grid = [math.ceil(n / c) for n, c in zip(z.shape, chunks, strict=True)]
    token = dask.base.tokenize(z, chunks, check)
    name = f"from-zarr-{token}"
    source = f"zarr-source-{token}"
    dsk = {source: z}
    for coords in np.ndindex(*grid):
        index = tuple(
            slice(i * c, min(n, (i + 1) * c))
            for i, c, n in zip(coords, chunks, z.shape, strict=True)
        )
        file, identity = io.chunk_file(z, coords) if check else (None, None)
        dsk[(name, *coords)] = (io.read_block, source, index, file, identity)
    block_chunks = tuple(
        tuple(min(n, (i + 1) * c) - i * c for i in range(g))
        for n, c, g in zip(z.shape, chunks, grid, strict=True)
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
        return da.from_array(X, chunks=(rows, -1))
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
    dask.array.Array
    """
    if persist is False:
        return X
    budget = _memory_budget(current_client())
    if persist is True or X.nbytes <= _PERSIST_FRACTION * budget:
        logger.info("persisting %.1f MB of data in memory", X.nbytes / 1e6)
        return X.persist()
    logger.info(
        "data (%.1f MB) exceeds half the memory (%.1f MB): streaming it each pass",
        X.nbytes / 1e6,
        budget / 1e6,
    )
    return X


def checked_finite(X):
    """``X`` whose chunks are checked for NaN and infinity as they are computed.

    The check rides along every pass over the data (it costs a few ms per
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


def sample_rows(X, n_samples, random_state):
    """Rows drawn as scikit-learn's ``estimate_bandwidth`` draws them.

    ``random_state.permutation(n)[:n_samples]``, read in one pass over the
    chunks in row order.

    Parameters
    ----------
    X : dask.array.Array
    n_samples : int
    random_state : numpy.random.RandomState

    Returns
    -------
    ndarray of shape (min(n_samples, n), n_features)
    """
    idx = np.sort(random_state.permutation(X.shape[0])[:n_samples])
    return np.asarray(X[idx].compute())


def bin_seeds(X, bin_size, sample_weight=None):
    """Occupied grid cells of the whole dataset and their counts.

    Parameters
    ----------
    X : dask.array.Array
    bin_size : float
    sample_weight : dask.array.Array, optional
        Counts are sums of weights.

    Returns
    -------
    cells : ndarray of shape (n_cells, n_features)
    counts : ndarray of shape (n_cells,)
    """
    return _map_reduce(
        X, sample_weight, _blocks.bin_counts, _blocks.combine_bin_counts, bin_size
    )


def bin_data(X, cell_size, sample_weight=None):
    """Reduce the dataset to weighted grid cells in one streaming pass.

    Parameters
    ----------
    X : dask.array.Array
    cell_size : float
    sample_weight : dask.array.Array, optional

    Returns
    -------
    points : ndarray of shape (n_cells, n_features)
        The weighted mean of the rows of each occupied cell.
    weights : ndarray of shape (n_cells,)
        Their total weight.
    """
    # Partial cell tables can hold a million cells each: combine them two at a
    # time so that a worker holds two tables, not eight.
    _, weights, sums = _map_reduce(
        X,
        sample_weight,
        _blocks.cell_sums,
        _blocks.combine_cell_sums,
        cell_size,
        split_every=2,
    )
    logger.info("binned %d rows into %d cells", X.shape[0], len(weights))
    return sums / weights[:, None], weights


def label(X, centers, bandwidth=None):
    """Lazy nearest-center labels of every row.

    Parameters
    ----------
    X : dask.array.Array
    centers : ndarray of shape (n_centers, n_features)
    bandwidth : float, default=None
        Give it to label rows beyond the bandwidth of every center with -1.

    Returns
    -------
    dask.array.Array of shape (n_samples,), int64
    """
    return X.map_blocks(
        _blocks.assign_labels,
        np.asarray(centers),
        bandwidth,
        dtype=np.int64,
        drop_axis=1,
    )


@dataclass
class Rows:
    """The data rows as delayed chunks, and in this process's memory if small.

    Attributes
    ----------
    blocks : list of (Delayed, Delayed or None)
        Every chunk of rows with its chunk of weights.
    n_rows : int
    local : tuple of (ndarray, ndarray or None), optional
        The same rows (and weights) in this process's memory: with at most
        ``_LOCAL_MAX_ROWS`` rows, work of at most ``_TARGET_PAIRS_PER_TASK``
        center-row pairs is computed here, with no task graph.
    """

    blocks: list
    n_rows: int
    local: tuple | None = None

    @classmethod
    def of(cls, X, sample_weight=None, local=None):
        """The rows of dask array ``X`` (and its weights)."""
        return cls(_row_blocks(X, sample_weight), X.shape[0], local)

    def is_small(self, n_centers):
        if self.local is None or len(self.local[0]) > _LOCAL_MAX_ROWS:
            return False
        return n_centers * len(self.local[0]) <= _TARGET_PAIRS_PER_TASK

    def map_reduce(self, fn, centers, *args, **kwargs):
        """``fn(centers, rows, *args, sample_weight=w)`` summed over all rows."""
        if self.is_small(len(centers)):
            x, w = self.local
            return fn(centers, x, *args, sample_weight=w, **kwargs)
        delayed = dask.delayed(fn, pure=False)
        parts = [
            delayed(centers, x, *args, sample_weight=w, **kwargs)
            for x, w in self.blocks
        ]
        (result,) = compute(_tree(parts, _blocks.add_partials))
        return result

    def shift_sums(self, centers, **kernel_args):
        """Kernel sums of all rows for ``centers``, in center partitions.

        Returns
        -------
        sums : ndarray of shape (n_centers, n_features)
        weights : ndarray of shape (n_centers,)
        """
        if self.is_small(len(centers)):
            return self.map_reduce(_blocks.shift_partial_sums, centers, **kernel_args)
        n_threads = _n_threads(current_client())
        n_parts = _n_partitions(len(centers), self.n_rows, len(self.blocks), n_threads)
        parts = upload(np.array_split(centers, n_parts), "centers")
        fn = dask.delayed(_blocks.shift_partial_sums, pure=False)
        reduced = [
            _tree(
                [fn(part, x, sample_weight=w, **kernel_args) for x, w in self.blocks],
                _blocks.add_partials,
            )
            for part in parts
        ]
        results = compute(*reduced)
        return (
            np.concatenate([r[0] for r in results]),
            np.concatenate([r[1] for r in results]),
        )


def _map_reduce(X, sample_weight, fn, combine, arg, split_every=_SPLIT_EVERY):
    """``fn(chunk, arg, weights)`` on every chunk, tree-combined on the cluster."""
    parts = [
        dask.delayed(fn, pure=False)(x, arg, w)
        for x, w in _row_blocks(X, sample_weight)
    ]
    (result,) = compute(_tree(parts, combine, split_every))
    return result


def _row_blocks(X, sample_weight):
    """Pairs of (data chunk, weight chunk or None), as delayed objects."""
    xs = list(X.to_delayed().ravel())
    if sample_weight is None:
        return [(x, None) for x in xs]
    ws = list(sample_weight.rechunk((X.chunks[0],)).to_delayed().ravel())
    return list(zip(xs, ws, strict=True))


def _tree(items, combine, split_every=_SPLIT_EVERY):
    add = dask.delayed(combine, pure=False)
    while len(items) > 1:
        items = [
            add(*items[i : i + split_every]) for i in range(0, len(items), split_every)
        ]
    return items[0]


def _n_partitions(n_centers, n_rows, n_blocks, n_threads):
    """Center partitions: enough tasks for every thread, none too small."""
    if n_centers == 0:
        return 1
    by_size = max(1, (n_centers * n_rows) // _TARGET_PAIRS_PER_TASK)
    wanted = min(2 * n_threads, by_size)
    return int(max(1, min(n_centers, math.ceil(wanted / n_blocks))))


def auto_chunk_rows(shape, itemsize, client):
    n_rows, n_features = shape
    per_thread = math.ceil(n_rows / (2 * _n_threads(client)))
    max_bytes = _MAX_CHUNK_BYTES if client is None else _MAX_GRAPH_BYTES
    max_rows = max(1, max_bytes // max(1, n_features * itemsize))
    return int(max(1, min(max_rows, max(_MIN_CHUNK_ROWS, per_thread))))


def _n_threads(client):
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
