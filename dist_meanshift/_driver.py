"""Dask orchestration of mean shift: the only module that builds task graphs.

An iteration is a map-reduce: one task per (center partition x data chunk)
computes partial kernel-weighted sums for the centers that still move, a tree
reduction adds them up on the cluster, and only the small arrays (sums and
weights per center) come back to the client, where the new centers, the
convergence test and the merge of coinciding centers are computed in numpy.

With an active ``distributed.Client`` the work goes to its cluster; with none it
runs on dask's in-process thread pool, without starting any cluster.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import psutil
from threadpoolctl import threadpool_limits

from . import _blocks, _centers
from ._centers import Centers

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
# Stopped Gaussian centers are checked for saddle points up to this many
# features (the check forms a features x features covariance per center).
_MAX_MOMENT_FEATURES = 64
# A stopped center is a saddle when the kernel-weighted covariance around it
# has an eigenvalue above (1 + margin) h^2; it restarts this far either side.
_SADDLE_MARGIN = 1e-3
_SADDLE_STEP = 0.1


@dataclass(frozen=True)
class IterationState:
    """The state of a mean shift fit after one iteration.

    Attributes
    ----------
    iteration : int
        Iterations completed, counted as scikit-learn's ``n_iter_`` counts
        them: 0 after the first shift of the seeds.
    centers : ndarray of shape (n_centers, n_features)
        Current distinct center positions, moving and stopped.
    n_centers : int
        Number of distinct centers.
    n_active : int
        Number of centers that still move.
    max_shift : float
        Largest distance a center moved in this iteration.
    """

    iteration: int
    centers: np.ndarray
    n_centers: int
    n_active: int
    max_shift: float
    _labeller: Callable = field(repr=False, compare=False)
    _checkpoint: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def checkpoint(self):
        """Everything needed to resume the fit after this iteration (numpy arrays)."""
        return self._checkpoint

    @property
    def labels(self):
        """Index of the nearest current center for every data row.

        Computed on access: a pass over the data. numpy in, numpy out; dask or
        zarr in, a lazy dask array out.
        """
        return self._labeller(self.centers)


@dataclass
class MeanShiftResult:
    """Outcome of a mean shift run, before labelling.

    Attributes
    ----------
    cluster_centers : ndarray of shape (n_clusters, n_features)
        Modes, ordered by decreasing intensity.
    intensity : ndarray of shape (n_clusters,)
        Kernel weight around each mode at its last shift.
    n_iter : int
        Largest number of completed iterations of any seed (scikit-learn's
        ``n_iter_``: the shift that found convergence is not counted).
    trace : list of dict
        Per-iteration figures: ``iteration``, ``n_centers``, ``n_active``,
        ``max_shift``.
    n_unconverged : int
        Centers still moving when ``max_iter`` stopped them.
    """

    cluster_centers: np.ndarray
    intensity: np.ndarray
    n_iter: int
    trace: list = field(default_factory=list)
    n_unconverged: int = 0

    @property
    def converged(self):
        """Whether every center stopped before ``max_iter``."""
        return self.n_unconverged == 0


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
    rows = chunk_rows or _auto_chunk_rows(X.shape, X.dtype.itemsize, client)
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
    raises :class:`_blocks.NonFiniteValues`.

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
    return _blocks.require_finite(x, first_row)


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


def iter_mean_shift(
    X,
    seeds,
    *,
    bandwidth,
    kernel="gaussian",
    max_iter=300,
    tol=1e-3,
    merge_tol=0.1,
    truncate=None,
    sample_weight=None,
    labeller=None,
    result=None,
    resume=None,
    local=None,
) -> Iterator[IterationState]:
    """Run mean shift iterations on Dask, yielding the state after each.

    Every seed climbs to the kernel-weighted mean of the data around it until it
    moves by at most ``tol * bandwidth`` (or ``max_iter`` iterations are done).
    Seeds whose positions are bitwise equal follow the same path from then on
    and are shifted once. Seeds with no data within reach are dropped.

    With the Gaussian kernel, stopped centers within ``merge_tol * bandwidth``
    of each other are merged into their (seed-count weighted) mean after every
    iteration. With the flat kernel, the final centers are post-processed as
    scikit-learn does (near duplicates within the bandwidth suppressed).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Validated float data chunked by rows only.
    seeds : ndarray of shape (n_seeds, n_features)
    bandwidth : float
    kernel : {"gaussian", "flat"}
    max_iter : int
    tol : float
    merge_tol : float
    truncate : float or None
        Gaussian kernel: ignore points beyond ``truncate * bandwidth``.
    sample_weight : dask.array.Array of shape (n_samples,), optional
        Row weights, chunked like the rows of ``X``.
    labeller : callable, optional
        Turns centers into labels for :attr:`IterationState.labels`.
    result : MeanShiftResult, optional
        Filled in when the generator is exhausted.
    resume : dict, optional
        A :attr:`IterationState.checkpoint` to continue from instead of seeds.
    local : tuple of (ndarray, ndarray or None), optional
        The same rows (and weights) in this process's memory: with at most
        ``_LOCAL_MAX_ROWS`` rows, iterations of at most
        ``_TARGET_PAIRS_PER_TASK`` center-row pairs are computed here, with no
        task graph.

    Yields
    ------
    IterationState
    """
    dtype = X.dtype
    blocks = _Rows(_row_blocks(X, sample_weight), local)
    kernel_args = {"bandwidth": bandwidth, "kernel": kernel, "truncate": truncate}
    n_rows = X.shape[0]
    stop_thresh = tol * bandwidth
    if resume is None:
        centers = Centers.from_seeds(seeds)
        trace, first = [], 0
    else:
        centers = Centers.from_checkpoint(resume)
        trace, first = list(resume["trace"]), int(resume["next_iteration"])
        logger.info("resuming after iteration %d", first - 1)
    last = first - 1  # the last iteration done
    n_unconverged = 0
    check_saddles = (
        kernel == "gaussian" and bandwidth > 0 and X.shape[1] <= _MAX_MOMENT_FEATURES
    )
    if X.shape[1] > _blocks.GRID_MAX_FEATURES:
        logger.info(
            "%d features: no grid of the kernel's reach (its cells would hold about "
            "one row each); every center meets every row",
            X.shape[1],
        )
    if kernel == "gaussian" and bandwidth > 0 and not check_saddles:
        logger.info(
            "%d features: stopped centers are not checked for saddle points "
            "(the check forms a features x features matrix per center)",
            X.shape[1],
        )
    for t in range(first, max_iter + 1):
        if not centers.active.any() and check_saddles:
            centers, n_saddles = _leave_saddles(blocks, centers, bandwidth, dtype)
            centers = centers.merge_stopped(merge_tol * bandwidth, dtype)
            if n_saddles:
                logger.info(
                    "%d stopped centers are saddle points: moving on", n_saddles
                )
        if not centers.active.any():
            break
        last = t
        moving = np.flatnonzero(centers.active)
        sums, weights = _shift_sums(blocks, centers.pos[moving], n_rows, kernel_args)
        reached = weights > 0
        # Seeds with no data within reach are dropped.
        centers = centers.take(np.setdiff1d(np.arange(len(centers)), moving[~reached]))
        moving = np.flatnonzero(centers.active)
        sums, weights = sums[reached], weights[reached]
        # Round to the data's precision so a float32 fit follows the same path
        # as a float32 computation would.
        new = (sums / weights[:, None]).astype(dtype).astype(np.float64)
        shift = _centers.step(
            centers,
            moving,
            new,
            weights,
            kernel=kernel,
            stop_thresh=stop_thresh,
            bandwidth=bandwidth,
            last=t == max_iter,
        )
        if t == max_iter:
            n_unconverged = int(centers.active.sum())
            centers.active[:] = False
        if kernel == "gaussian":
            centers = centers.merge_stopped(merge_tol * bandwidth, dtype)
        centers = centers.collapse_identical()
        max_shift = float(shift.max()) if len(shift) else 0.0
        figures = {
            "iteration": t,
            "n_centers": len(centers),
            "n_active": int(centers.active.sum()),
            "max_shift": max_shift,
        }
        trace.append(figures)
        logger.info(
            "iteration %d: %d centers, %d moving, largest shift %.3g",
            t,
            figures["n_centers"],
            figures["n_active"],
            max_shift,
        )
        yield IterationState(
            iteration=t,
            centers=centers.pos.astype(dtype),
            n_centers=len(centers),
            n_active=figures["n_active"],
            max_shift=max_shift,
            _labeller=labeller or (lambda c: None),
            _checkpoint={
                **centers.to_checkpoint(),
                "next_iteration": t + 1,
                "trace": list(trace),
            },
        )
    if result is None:
        return
    if len(centers) == 0:
        raise ValueError(
            f"No point was within bandwidth={bandwidth:f} of any seed. Try a "
            "different seeding strategy or increase the bandwidth."
        )
    if kernel == "flat":
        modes, strength = _centers.sklearn_postprocess(
            centers.pos, centers.intensity, bandwidth
        )
    else:
        order = _blocks.order_by_intensity(centers.pos, centers.intensity)
        modes, strength = centers.pos[order], centers.intensity[order]
    result.cluster_centers = modes.astype(dtype)
    result.intensity = strength
    result.n_iter = last
    result.trace = trace
    result.n_unconverged = n_unconverged


def _leave_saddles(blocks, centers, bandwidth, dtype):
    """Restart the stopped centers that sit on saddle points of the density.

    Along a ridge a center can creep towards a saddle and stop there, where the
    founding algorithm (shifting until nothing moves) would in time slide off
    to a mode. A stopped center whose kernel-weighted covariance has an
    eigenvalue above ``h^2`` is such a point (see
    :func:`_blocks.local_moments`): it is replaced by two moving centers a
    tenth of a bandwidth either side along that eigenvector, each standing for
    half its seeds.
    """
    stopped = np.flatnonzero(~centers.active & ~centers.checked)
    if len(stopped) == 0:
        return centers, 0
    points = centers.pos[stopped]
    weight, first, second = blocks.map_reduce(_blocks.local_moments, points, bandwidth)
    centers.checked[stopped] = True
    mean = first / weight[:, None]
    cov = second / weight[:, None, None] - mean[:, :, None] * mean[:, None, :]
    jacobian = cov / bandwidth**2
    values, vectors = np.linalg.eigh(jacobian)
    # A margin over 1 keeps flat-topped modes (eigenvalue near 1) where they are.
    saddle = values[:, -1] > 1 + _SADDLE_MARGIN
    # Polish the modes with one Newton step on m(x) = x: linear convergence
    # leaves a center up to tol * h short of its mode, Newton's step squares
    # that error (it is the geometric tail of the shifts, in every direction).
    mode = values[:, -1] < 1 - _SADDLE_MARGIN
    if mode.any():
        eye = np.eye(len(mean[0]))
        delta = np.linalg.solve(eye - jacobian[mode], mean[mode][:, :, None])[..., 0]
        short = np.linalg.norm(delta, axis=1) <= _SADDLE_STEP * bandwidth
        polished = stopped[mode][short]
        new = (centers.pos[polished] + delta[short]).astype(dtype)
        centers.pos[polished] = new.astype(np.float64)
    if not saddle.any():
        return centers, 0
    index = stopped[saddle]
    away = _SADDLE_STEP * bandwidth * vectors[saddle, :, -1]
    both = np.repeat(index, 2)
    pos = centers.pos[both] + np.stack([away, -away], axis=1).reshape(len(both), -1)
    pair = Centers.moving(pos.astype(dtype), centers.mult[both] / 2)
    keep = np.ones(len(centers), dtype=bool)
    keep[index] = False
    return Centers.concat(centers.take(keep), pair), int(saddle.sum())


@dataclass
class _Rows:
    """The data rows as delayed chunks, and in this process's memory if small."""

    blocks: list
    local: tuple | None = None

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
        (result,) = compute(
            _tree(
                [
                    delayed(centers, x, *args, sample_weight=w, **kwargs)
                    for x, w in self.blocks
                ],
                _blocks.add_partials,
            )
        )
        return result


def _shift_sums(rows, centers, n_rows, kernel_args):
    """Kernel sums of all data for ``centers``: here when small, else on the cluster."""
    if rows.is_small(len(centers)):
        return rows.map_reduce(_blocks.shift_partial_sums, centers, **kernel_args)
    blocks = rows.blocks
    client = current_client()
    n_parts = _n_partitions(len(centers), n_rows, len(blocks), _n_threads(client))
    parts = upload(np.array_split(centers, n_parts), "centers")
    fn = dask.delayed(_blocks.shift_partial_sums, pure=False)
    reduced = [
        _tree(
            [fn(part, x, sample_weight=w, **kernel_args) for x, w in blocks],
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


def _auto_chunk_rows(shape, itemsize, client):
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
