"""Grid cells: integer cell keys, sorted runs, and the rows around groups of centers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

# Rows handled at once by the grid and binning functions: their int64 cell
# coordinates, sort orders and copies stay within a few tens of MB per task even
# when a chunk holds millions of rows (workers may have 512 MiB).
SLAB_ROWS = 1 << 18
# Beyond this many features the grid of reach-wide cells is not used (see
# sums.shift_partial_sums).
GRID_MAX_FEATURES = 16
# Rows are sorted into cells this many times finer than the kernel's reach.
_ROW_CELLS_PER_REACH = 2
# Centers per reach-wide cell from which groups of centers keep that width
# (below it, groups twice as wide cost less; from a per-row cost model of
# 27 vs 8 visits against 27 vs 64 cells of pairs).
_DENSE_GROUP = 4


def grid_groups(centers, X, reach):
    """Rows sorted by grid cell, and for each group of centers the row runs around it.

    Rows are sorted into cells half as wide as ``reach``. Centers are grouped
    by cells ``reach`` wide (twice that when they are sparse), and each group
    meets the rows of the cells that overlap the bounding box of its centers
    widened by ``reach``: every row within ``reach`` of a member, and few more
    (a group of converged centers meets about twice the rows of its ball).

    Returns
    -------
    order : ndarray of shape (n_samples,)
        The permutation sorting the rows by cell.
    groups : list of (members, runs)
        Center indices of one group, and ``(start, stop)`` slices of the sorted
        rows around it (adjacent slices joined).
    """
    side = reach / _ROW_CELLS_PER_REACH
    columns = snapped_columns(np.asarray(X), side, np.floor, np.float64)
    keys = cell_keys(columns)
    order, starts = sorted_runs(keys)
    bounds = np.r_[starts, len(keys)]
    firsts = order[starts]
    x_coords = np.stack([c[firsts] for c in columns], axis=1)
    c_order, c_bounds, c_lo, c_hi = center_groups(centers, reach)
    # Row cells overlapping [min - reach, max + reach] of each group (widened
    # by a hair against rounding: a row at exactly the reach is inside).
    margin = reach * (1 + 1e-9)
    lo = np.floor((c_lo - margin) / side)
    hi = np.floor((c_hi + margin) / side)
    groups = []
    for g, cells in enumerate(cells_in_boxes(cKDTree(x_coords), x_coords, lo, hi)):
        if not len(cells):
            continue
        run_starts, run_stops = bounds[cells], bounds[cells + 1]
        # Join runs that touch: the sorted rows of neighbouring cells.
        new = np.flatnonzero(np.r_[True, run_starts[1:] != run_stops[:-1]])
        stops = np.r_[run_stops[new[1:] - 1], run_stops[-1]]
        runs = list(zip(run_starts[new].tolist(), stops.tolist(), strict=True))
        groups.append((c_order[c_bounds[g] : c_bounds[g + 1]], runs))
    return order, groups


def slabs(X, sample_weight, rows=None):
    """``(rows, weights)`` of at most ``rows`` (``SLAB_ROWS``) rows each (one if X is empty)."""
    rows = rows or SLAB_ROWS
    for i in range(0, max(1, X.shape[0]), rows):
        w = None if sample_weight is None else sample_weight[i : i + rows]
        yield X[i : i + rows], w


def take_runs(a, runs):
    if len(runs) == 1:
        return a[runs[0][0] : runs[0][1]]
    return np.concatenate([a[start:stop] for start, stop in runs])


def snapped_columns(X, size, snap, work):
    """``snap(x / size)`` of every column of X, computed in ``work`` precision."""
    columns = []
    for j in range(X.shape[1]):
        column = X[:, j].astype(work)
        np.divide(column, work(size), out=column)
        columns.append(snap(column, out=column))
    return columns


def cell_span(columns):
    """Lowest coordinate and number of cells spanned, per coordinate column."""
    lo = np.array([int(c.min()) for c in columns])
    return lo, np.array([int(c.max()) for c in columns]) - lo + 1


def count_cells(span):
    """Cells in a grid of ``span`` cells per axis, as a float (inf if huge)."""
    with np.errstate(over="ignore"):
        return float(np.prod(span.astype(np.float64)))


def mixed_radix_strides(span):
    """Strides of a mixed-radix key over a grid of ``span`` cells per axis.

    ``sum_j (c_j - lo_j) * strides_j`` numbers the cells in lexicographic
    order (the last axis fastest), as int64.
    """
    span = np.asarray(span, dtype=np.int64)
    return np.cumprod(np.r_[span[1:], 1][::-1])[::-1].astype(np.int64)


def cell_keys(columns, cell_range=None):
    """One int64 key per row of integer cell coordinates, ordered like the rows.

    ``columns`` holds one coordinate column per feature (of any numeric dtype
    holding integers, e.g. ``cells.T``). Keys are mixed-radix over the range of
    each column (``cell_range``, from :func:`cell_span` when not given), so
    they sort like the rows; a huge, sparse grid numbers its occupied cells (in
    the same order) instead.
    """
    columns = list(columns)
    lo, span = cell_range or cell_span(columns)
    if count_cells(span) < 2.0**62:
        strides = mixed_radix_strides(span)
        # Column by column, through one reused buffer: numpy has no fast
        # integer matrix product, and fresh temporaries are costly in workers.
        keys = np.zeros(len(columns[0]), dtype=np.int64)
        part = np.empty_like(keys)
        for column, low, stride in zip(columns, lo, strides, strict=True):
            np.copyto(part, column, casting="unsafe")
            part -= low
            part *= stride
            keys += part
        return keys
    cells = np.stack(columns, axis=1).astype(np.int64)
    return np.unique(cells, axis=0, return_inverse=True)[1].ravel()


def sorted_runs(keys):
    """The order sorting non-negative int64 keys, and where each run of equal keys starts.

    Keys below 2**16 are sorted by numpy's (stable) radix sort of 16-bit
    integers; others, packed with their positions into one integer, by a
    plain (vectorised) sort; both are several times faster than an argsort.

    Returns
    -------
    order : ndarray of shape (n,)
    starts : ndarray of shape (n_distinct,)
        Positions in the sorted keys where a new key begins.
    """
    n = len(keys)
    top = int(keys.max()) if n else 0
    row_bits = int(n - 1).bit_length() if n else 0
    if top < 2**16:
        order = np.argsort(keys.astype(np.uint16), kind="stable")
        sorted_keys = keys[order]
    elif top.bit_length() + row_bits <= 62:
        packed = keys << row_bits
        packed |= np.arange(n, dtype=np.int64)
        packed.sort()
        order = packed & ((1 << row_bits) - 1)
        sorted_keys = packed >> row_bits
    else:
        order = np.argsort(keys)
        sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return order, starts


@dataclass
class CellIndex:
    """Rows sorted into coarse cells and, within them, fine cells, with aggregates.

    Built once for a block of rows; the flat kernel's compiled loop sums over
    it (built by the flat kernel's ``_cell_index``). Coarse cells are ``side`` wide and hold
    ``fine ** n_features`` fine cells at most; a cell's aggregates are the
    total weight of its rows and their weighted coordinate sums.
    """

    rows: np.ndarray
    row_w: np.ndarray
    side: float
    coarse_coords: np.ndarray
    coarse_fine: np.ndarray
    coarse_w: np.ndarray
    coarse_s: np.ndarray
    fine_side: float
    fine_coords: np.ndarray
    fine_rows: np.ndarray
    fine_w: np.ndarray
    fine_s: np.ndarray
    scale: float
    tree: cKDTree

    @property
    def weighted(self):
        """Whether the rows carry weights (``row_w`` is empty otherwise)."""
        return len(self.row_w) > 0

    @property
    def margin(self):
        """How far a row may lie outside its cell's exact box: the rounding of
        the divisions that snapped it there, with room to spare."""
        return 1e-12 * self.scale

    @property
    def weights(self):
        """The sorted rows' weights, or None when unweighted."""
        return self.row_w if self.weighted else None

    def near_cells(self, lo, hi):
        """Coarse cells overlapping each box ``[lo[g], hi[g]]`` (in data units).

        Returns
        -------
        ptr : ndarray of shape (n_boxes + 1,)
        cells : ndarray
            ``cells[ptr[g]:ptr[g + 1]]`` are box ``g``'s cells.
        """
        lo = np.floor((lo - self.margin) / self.side)
        hi = np.floor((hi + self.margin) / self.side)
        kept = cells_in_boxes(self.tree, self.coarse_coords, lo, hi)
        ptr = np.zeros(len(kept) + 1, dtype=np.int64)
        ptr[1:] = np.cumsum([len(k) for k in kept])
        cells = np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)
        return ptr, cells


@dataclass
class TreeOrder:
    """Float32 rows in the order of scikit-learn's k-d tree over them, with
    its nodes: what its flat-kernel means add, in the order it adds them.

    Attributes
    ----------
    rows : ndarray of shape (n, n_features), float32
        The rows in the tree's index order.
    starts, ends : ndarray of shape (n_nodes,), int64
        Each node's rows; node ``i``'s children are ``2i + 1`` and ``2i + 2``.
    leaf : ndarray of shape (n_nodes,), bool
    lower, upper : ndarray of shape (n_nodes, n_features), float64
        Each node's bounding box.
    """

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    leaf: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


@dataclass
class ColumnIndex:
    """Rows of up to 3 features in columns, sorted within each along the last.

    Built once for a block of rows (by the flat kernel's ``_column_index``),
    rows padded in front with zero coordinates to 3. A column is a cell
    ``col_side`` wide over the first two coordinates (the real ones among
    them: the last ``n_axes``); within it rows are sorted by cells
    ``z_side`` wide along the third, and every cell boundary holds the
    column-local prefix sums of the weights and of the weighted coordinates
    (relative to the column's ``origin``), so that any run of cells is
    summed in one subtraction. ``table`` hashes a column's two cell
    coordinates to its number.
    """

    n_features: int
    coords: np.ndarray
    row_w: np.ndarray
    col_side: float
    z_side: float
    col_lo: np.ndarray
    col_hi: np.ndarray
    col_c: np.ndarray
    z_lo: np.ndarray
    z_hi: np.ndarray
    z_base: np.ndarray
    origin: np.ndarray
    z_first: np.ndarray
    pre_w: np.ndarray
    pre_s: np.ndarray
    table: np.ndarray
    scale: float

    @property
    def n_axes(self):
        """Real coordinates among the two that make columns."""
        return self.n_features - 1

    @property
    def rows(self):
        """The sorted rows, ``(n_rows, n_features)`` (a view)."""
        return self.coords[3 - self.n_features :].T

    weighted = CellIndex.weighted
    margin = CellIndex.margin
    weights = CellIndex.weights


@dataclass
class PreparedRows:
    """A block of rows as a kernel prepared them for its sums (see
    ``Kernel.prepare``): here, the cell index of each slab of rows, or
    (``ordered``) rows whose sums follow their order, which only the
    kernel's prepared sums give."""

    slabs: list
    shape: tuple
    ordered: bool = False


def cells_in_boxes(tree, coords, lo, hi):
    """For each box ``[lo[g], hi[g]]`` (in cell units), the cells within it, sorted.

    ``tree`` is a ``cKDTree`` of the integer cell coordinates ``coords``.
    """
    found = tree.query_ball_point(
        (lo + hi) / 2, r=(hi - lo).max(axis=1) / 2 + 0.5, p=np.inf
    )
    kept = []
    for g, cells in enumerate(found):
        cells = np.sort(np.asarray(cells, dtype=np.int64))
        kept.append(
            cells[((coords[cells] >= lo[g]) & (coords[cells] <= hi[g])).all(axis=1)]
        )
    return kept


def center_groups(centers, reach):
    """Centers grouped by grid cells ``reach`` wide (twice that when sparse).

    Sparse centers (a few per reach-wide cell) are grouped by cells twice as
    wide: fewer groups for a row to meet, each with more centers. Dense
    centers keep cells of the reach: fewer pairs per row.

    Returns
    -------
    order : ndarray of shape (n_centers,)
        Centers sorted by group.
    bounds : ndarray of shape (n_groups + 1,)
        Group ``g`` is ``order[bounds[g]:bounds[g + 1]]``.
    lo, hi : ndarray of shape (n_groups, n_features)
        The bounding box of each group's centers.
    """
    width = 1
    c_cells = np.floor(centers / reach).astype(np.int64)
    c_keys, c_inverse = np.unique(c_cells, axis=0, return_inverse=True)
    if len(centers) < _DENSE_GROUP * len(c_keys):
        width = 2
        c_cells = np.floor(centers / (width * reach)).astype(np.int64)
        c_keys, c_inverse = np.unique(c_cells, axis=0, return_inverse=True)
    c_inverse = c_inverse.ravel()
    c_order = np.argsort(c_inverse, kind="stable")
    c_starts = np.searchsorted(c_inverse[c_order], np.arange(len(c_keys)))
    sorted_centers = centers[c_order]
    lo = np.minimum.reduceat(sorted_centers, c_starts)
    hi = np.maximum.reduceat(sorted_centers, c_starts)
    return c_order, np.r_[c_starts, len(centers)], lo, hi
