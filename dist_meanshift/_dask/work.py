"""The map-reduces of a fit: shift sums, bin counts, binned data, labels, samples.

One task per (center partition x data chunk) computes partial sums with a
``_blocks`` function, a tree reduction adds them up on the cluster, and only
the small results (sums and weights per center, cell tables) come back to the
client. Small in-memory data is worked on in this process instead.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import uuid
from dataclasses import dataclass, field

import dask
import numpy as np

from .. import _blocks
from . import scratch
from .data import compute, current_client, n_threads, upload

logger = logging.getLogger(__name__)
# Center-point pairs a task should at least evaluate so that
# Dask's per-task cost of a few milliseconds stays small.
_TARGET_PAIRS_PER_TASK = 20_000_000
# In-memory data of at most this many rows is shifted in this process when an
# iteration is no more than one task's work: a task graph would cost more.
_LOCAL_MAX_ROWS = 20_000
# Centers shifted in this process, with no task graph, over rows indexed here
# (see Rows.prepared): their sums take milliseconds.
_LOCAL_MAX_CENTERS = 64
# Fan-in of the tree reduction of partial sums.
_SPLIT_EVERY = 8


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
    resident : bool
        Whether the chunks are in memory rather than read at every pass.
    n_features : int
    """

    blocks: list
    n_rows: int
    local: tuple | None = None
    resident: bool = False
    n_features: int = 0
    _prepared: dict = field(default_factory=dict)
    # The scratch directory: None until a pass asks, "" when none is to be had.
    _directory: str | None = None
    _stored: dict = field(default_factory=dict)

    @classmethod
    def of(cls, X, sample_weight=None, local=None, resident=False):
        """The rows of dask array ``X`` (and its weights)."""
        blocks = _row_blocks(X, sample_weight)
        return cls(blocks, X.shape[0], local, resident, X.shape[1])

    def close(self):
        """Remove what the fit kept on disk (the chunks' stored cell indexes)."""
        scratch.close_directory(self._directory)
        self._directory = None
        self._stored.clear()

    def prepared(self, kernel, bandwidth, truncate=None):
        """The blocks as the kernel prepares them for its sums, made once per fit.

        A kernel may sort a block's rows into an index once (the flat
        kernel's cells, see :meth:`~.._blocks.kernels.base.Kernel.prepare`)
        rather than at every pass. That is done for data held in this
        process's memory (no cluster): the index is a copy of the rows, as
        scikit-learn's trees are, kept for the fit. On a cluster, and for
        data read at every pass, nothing is prepared.

        Returns
        -------
        list of PreparedRows or None
            The prepared blocks, in this process's memory.
        list of (Delayed, None) or None
            The same as task inputs (their weights are inside).
        """
        kernel = _blocks.kernels.get(kernel)
        if not self.resident or current_client() is not None:
            return None, None
        key = (kernel.name, bandwidth, truncate)
        if key not in self._prepared:
            if self.local is not None:
                # Every row in one index: a center then visits each cell once,
                # and its partitions, not the chunks, make the tasks.
                x, w = self.local
                tree = functools.partial(_sklearn_kd_tree, x)
                made = [kernel.prepare(x, w, bandwidth, truncate, kd_tree=tree)]
            else:
                fn = dask.delayed(kernel.prepare, pure=False)
                blocks = (fn(x, w, bandwidth, truncate) for x, w in self.blocks)
                made = list(compute(*blocks))
            if any(p is None for p in made):
                self._prepared[key] = None, None
            else:
                token = uuid.uuid4().hex
                self._prepared[key] = (
                    made,
                    [
                        (
                            dask.delayed(
                                p, name=f"prepared-{token}-{i}", traverse=False
                            ),
                            None,
                        )
                        for i, p in enumerate(made)
                    ],
                )
        return self._prepared[key]

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
        made, blocks = self.prepared(
            kernel_args["kernel"], kernel_args["bandwidth"], kernel_args.get("truncate")
        )
        small = self.is_small(len(centers))
        if small and made is None:
            return self.map_reduce(_blocks.shift_partial_sums, centers, **kernel_args)
        if made is not None and (small or len(centers) <= _LOCAL_MAX_CENTERS):
            # A few centers over the rows' index in this process: milliseconds
            # of work, less than a task graph costs.
            return _blocks.add_partials(
                *(_blocks.shift_partial_sums(centers, p, **kernel_args) for p in made)
            )
        blocks = blocks or self.blocks
        threads = n_threads(current_client())
        n_parts = _n_partitions(len(centers), self.n_rows, len(blocks), threads)
        parts = upload(np.array_split(centers, n_parts), "centers")
        fn = dask.delayed(_blocks.shift_partial_sums, pure=False)
        stored = self._stored_indexes(kernel_args) if made is None else None
        if stored is None:
            leaves = [
                [fn(part, x, sample_weight=w, **kernel_args) for x, w in blocks]
                for part in parts
            ]
        else:
            leaves = [
                [
                    _stored_sums(fn, stored, p, i, part, x, w, kernel_args)
                    for i, (x, w) in enumerate(blocks)
                ]
                for p, part in enumerate(parts)
            ]
        reduced = [_tree(tasks, _blocks.add_partials) for tasks in leaves]
        results = compute(*reduced, watch=[t.key for tasks in leaves for t in tasks])
        if stored is not None:
            stored.update_written()
        return (
            np.concatenate([r[0] for r in results]),
            np.concatenate([r[1] for r in results]),
        )

    def _stored_indexes(self, kernel_args):
        """The chunks' cell indexes on disk (:mod:`.scratch`), for data read
        from its store at every pass by workers on this machine, or None."""
        client = current_client()
        if self.resident or client is None or self.local is not None:
            return None
        key = tuple(kernel_args.get(k) for k in ("kernel", "bandwidth", "truncate"))
        if self._directory is None:
            self._directory = (
                scratch.open_directory(
                    client, scratch.index_bytes(self.n_rows, self.n_features)
                )
                or ""
            )
        if not self._directory:
            return None
        if key not in self._stored:
            name = len(self._stored)
            self._stored[key] = _StoredIndexes(
                [
                    os.path.join(self._directory, f"{name}-{i}")
                    for i in range(len(self.blocks))
                ]
            )
        return self._stored[key]


@dataclass
class _StoredIndexes:
    """The file of each chunk's cell index, and which chunks are indexed."""

    paths: list
    written: set = field(default_factory=set)
    tried: set = field(default_factory=set)

    def update_written(self):
        # This machine's directory: the workers' writes are seen here.
        for i in self.tried - self.written:
            if os.path.exists(self.paths[i]):
                self.written.add(i)


def _stored_sums(fn, stored, p, i, part, x, w, kernel_args):
    """The task of center partition ``p`` over chunk ``i``: over its stored
    index, or writing it (the first partition, once), or over its rows."""
    if i in stored.written:
        return dask.delayed(scratch.indexed_sums, pure=False)(
            part, stored.paths[i], **kernel_args
        )
    if p == 0 and i not in stored.tried:
        stored.tried.add(i)
        return dask.delayed(scratch.sums_writing_index, pure=False)(
            part, x, stored.paths[i], sample_weight=w, **kernel_args
        )
    return fn(part, x, sample_weight=w, **kernel_args)


def _sklearn_kd_tree(X):
    """The arrays ``(index, nodes, bounds)`` of the k-d tree that scikit-learn's
    ``MeanShift`` builds over ``X``, or None where it searches by brute force.

    ``MeanShift`` keeps ``NearestNeighbors``' defaults (``n_neighbors``,
    ``leaf_size``, read from it here); with them its ``"auto"`` search is a
    k-d tree over the rows held in float64, unless there are more than 15
    features or ``n_neighbors`` reaches half the rows.
    """
    from sklearn.neighbors import KDTree, NearestNeighbors

    defaults = NearestNeighbors().get_params()
    n_rows, n_features = X.shape
    if n_features > 15 or defaults["n_neighbors"] >= n_rows // 2:
        return None
    tree = KDTree(X.astype(np.float64), leaf_size=defaults["leaf_size"])
    _, index, nodes, bounds = tree.get_arrays()
    return np.asarray(index), np.asarray(nodes), np.asarray(bounds)


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

    ``X`` and ``sample_weight`` as in :func:`bin_seeds`; cells of side
    ``cell_size``.

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
    # Cells whose rows all weigh 0 hold no row that is there.
    kept = weights > 0
    weights, sums = weights[kept], sums[kept]
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
