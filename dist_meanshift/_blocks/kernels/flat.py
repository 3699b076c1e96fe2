"""The flat kernel: weight 1 within the bandwidth, 0 beyond (scikit-learn's).

Everything that is the flat kernel's own: its reach (the bandwidth), its
bandwidth rule (the radius itself), scikit-learn's stopping rule and final
post-processing, the number of centers from which the grid pays, and its
three ways of summing: over a cell index of the rows (columns with prefix
sums up to 3 features, two levels of cells beyond), sorted once per fit, with
a compiled inner loop (:mod:`._flat_loops`), where the rows stay in the
fitting process's memory; over a chunk read for one pass (a task on a
cluster, a streamed chunk) of at least ``_ROW_SUMS_MIN_ROWS`` rows, sorted by
cells within the task by compiled passes (:func:`flat_row_sums`); and, for
smaller chunks, the numpy grid sums with rows settled once for a cell of
close centers (they never load numba, which holds some 110 MiB of a
process).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from ..dense import BLOCK_ELEMENTS, dense_sums, products_by_block
from ..grid import (
    GRID_MAX_FEATURES,
    CellIndex,
    ColumnIndex,
    PreparedRows,
    TreeOrder,
    cell_keys,
    center_groups,
    count_cells,
    mixed_radix_strides,
    slabs,
    sorted_runs,
)
from .base import Kernel

#: Fine cells per axis within each coarse cell (half the bandwidth wide), by
#: number of features: a ball's edge crosses fewer rows in finer cells, but in
#: many features fine cells hold a row or none and only cost visits.
_FINE_CELLS = ((6, 2),)
_COARSE_PER_H = 2
#: Up to this many features rows go into a column index instead (see
#: :func:`_column_index`): columns this many times narrower than the
#: bandwidth, and cells along the last feature this many times narrower.
_COLUMN_FEATURES = 3
_COLUMNS_PER_H = 3
_Z_CELLS_PER_H = 32


# Flat kernel: centers are gathered into cells whose members lie within this
# fraction of the bandwidth of the cell's mean, and rows sure to be within (or
# beyond) the bandwidth of all of them are settled once per cell.
_SHARE_RADIUS = 0.125
# Cells of fewer centers than this are not shared: their centers stand alone.
# A shared cell's shell costs a call per cell; on blobs in 3-D sharing pays
# from some 64 centers (measured from 8 to 128).
_SHARE_MIN = 64
# Cells whose centers lie within bandwidth / 64 of their mean share from this
# many centers on (converged seeds: their shell is thin).
_SHARE_TIGHT_MIN = 4


def flat_shared_sums(centers, X, bandwidth, sample_weight):
    """Flat-kernel sums of many nearby centers, settling sure rows once per cell.

    Centers are gathered into small cells; ``eps`` bounds the distance of a
    cell's members from their mean ``r``. By the triangle inequality a row with
    ``|x - r| <= h - eps`` is within the bandwidth of every member and one with
    ``|x - r| > h + eps`` of none: those are summed (or skipped) once for the
    whole cell, and only rows in the shell between are tested pair by pair
    (exactly, by :func:`dense_sums`). Decisions keep a margin beyond the
    rounding of the expanded distances, so the result equals the pairwise one.
    """
    k, n_features = centers.shape
    h = float(bandwidth)
    if k < 2 * _SHARE_TIGHT_MIN:
        return dense_sums(centers, X, h, True, h, sample_weight)
    cell_of = _shared_cells(centers, h)
    if cell_of is None:
        return dense_sums(centers, X, h, True, h, sample_weight)
    _, cell_of, sizes = np.unique(cell_of, return_inverse=True, return_counts=True)
    n_cells = len(sizes)
    order = np.argsort(cell_of, kind="stable")
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    reps, eps = _means_and_spread(centers, cell_of, sizes)
    eps = eps * (1 + 1e-9) + 1e-12 * h
    origin = reps.mean(axis=0)
    r0 = reps - origin
    rr = np.einsum("ij,ij->i", r0, r0)
    # d = |x - r|^2 from one product of [x, |x|^2, 1] with [-2r, 1, |r|^2].
    A = np.empty((n_cells, n_features + 2))
    A[:, :n_features] = -2 * r0
    A[:, n_features] = 1
    A[:, n_features + 1] = rr
    inner = np.where(eps < h, (h - eps) ** 2, -np.inf)
    outer = (h + eps) ** 2
    acc = np.zeros((n_cells, n_features + 2))
    step = max(1, min(X.shape[0], BLOCK_ELEMENTS // n_cells))
    W_buf = np.empty((n_cells, step))
    masks = np.empty((2, n_cells, step), dtype=bool)
    shell_cells, shell_rows = [], []
    for start, xb, B, d in products_by_block(A, X, origin, step):
        m = xb.shape[0]
        band = 1e-12 * (rr.max() + B[:, n_features].max() + outer.max())
        sure = np.less_equal(d, (inner - band)[:, None], out=masks[0, :, :m])
        near = np.less_equal(d, (outer + band)[:, None], out=masks[1, :, :m])
        w = W_buf[:, :m]
        np.copyto(w, sure)
        if sample_weight is not None:
            w *= sample_weight[start : start + step]
        acc += w @ B
        near &= ~sure
        c, r = np.nonzero(near)
        shell_cells.append(c)
        shell_rows.append(r + start)
    weights = acc[cell_of, n_features + 1]
    sums = acc[cell_of, :n_features] + weights[:, None] * origin
    cells = (order, starts, sizes)
    shell = (np.concatenate(shell_cells), np.concatenate(shell_rows))
    _add_shells(sums, weights, centers, X, h, sample_weight, cells, shell)
    return sums, weights


def _shared_cells(centers, h):
    """The cell of every center (a center alone has a cell of its own), or None.

    None when too few centers would share a cell for sharing to pay.
    """
    k, n_features = centers.shape
    side = 2 * _SHARE_RADIUS * h / np.sqrt(n_features)
    cells = np.floor(centers / side).astype(np.int64)
    _, cell_of, sizes = np.unique(
        cell_keys(cells.T), return_inverse=True, return_counts=True
    )
    if sizes.max() < _SHARE_TIGHT_MIN:
        return None
    # A shared cell costs a pass over its rows plus a call for its shell,
    # which is thin when its centers have (nearly) converged together: share
    # crowded cells, and tight ones from a few centers on. Centers of other
    # cells stand alone (a cell of one, with eps = 0).
    _, eps = _means_and_spread(centers, cell_of, sizes)
    shared = (sizes >= _SHARE_MIN) | ((sizes >= _SHARE_TIGHT_MIN) & (eps <= h / 64))
    alone = ~shared[cell_of]
    if alone.all() or (~alone).sum() < k // 4:
        return None
    return np.where(alone, len(sizes) + np.arange(k), cell_of)


def _add_shells(sums, weights, centers, X, h, sample_weight, cells, shell):
    """Add, pair by pair, the sums of the rows in the shell of each cell (in place).

    ``cells`` gives the members of every cell (``order[starts[g]:][:sizes[g]]``);
    ``shell`` the (cell, row) pairs neither surely inside nor surely outside.
    """
    order, starts, sizes = cells
    c, r = shell
    if len(c) == 0:
        return
    by_cell = np.argsort(c, kind="stable")
    c, r = c[by_cell], r[by_cell]
    first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    X = np.asarray(X)
    for a, b in zip(first, np.r_[first[1:], len(c)], strict=True):
        g = c[a]
        members = order[starts[g] : starts[g] + sizes[g]]
        rows = r[a:b]
        sw = None if sample_weight is None else sample_weight[rows]
        s, w = dense_sums(centers[members], X[rows], h, True, h, sw)
        sums[members] += s
        weights[members] += w


def _means_and_spread(centers, cell_of, sizes):
    """Mean of the centers of each cell, and their largest distance from it."""
    means = np.stack(
        [np.bincount(cell_of, weights=c, minlength=len(sizes)) for c in centers.T],
        axis=1,
    )
    means /= sizes[:, None]
    off = centers - means[cell_of]
    spread = np.zeros(len(sizes))
    np.maximum.at(spread, cell_of, np.sqrt(np.einsum("ij,ij->i", off, off)))
    return means, spread


#: Rows from which a block held in memory is indexed (see Flat.prepare).
_PREPARE_MIN_ROWS = 1 << 13
#: Rows from which a block read for one pass (a task on a cluster, a streamed
#: chunk) is sorted by cells and summed by compiled loops (see flat_row_sums): fewer
#: never load numba.
_ROW_SUMS_MIN_ROWS = 1 << 17
#: Cells per bandwidth of the grid a block read once is sorted into (see
#: flat_row_sums): finer cells leave fewer rows to test at a ball's edge, and
#: cost more cell visits per center.
_ROW_CELLS_PER_H = 4
#: Cells of that grid are wider where there would be more than this many: a
#: task holds 48 bytes a cell (its rows' start, weight and sums, 3 features),
#: 12 MiB, beside its chunk, a sorted copy and 4 bytes a row.
_ROW_GRID_MAX_CELLS = 1 << 18
# Float32 sums in scikit-learn's order of at most this many center-row pairs
# are np.mean-ed by numpy (see _tree_order_sums).
_TREE_NUMPY_PAIRS = 1 << 20
#: Rows of one cell index at most (its int64 keys and sort orders are
#: temporaries of a few hundred MB at most).
_INDEX_ROWS = 1 << 22


def flat_prepare(X, sample_weight, bandwidth):
    """The rows of a block sorted into a cell index, slab by slab.

    Up to 3 features, a column index (see :func:`_column_index`); beyond,
    cells half the bandwidth wide, each split into finer cells, with every
    cell's total weight and coordinate sums (see :func:`_cell_index`).
    """
    h = float(bandwidth)
    fine = next((f for d, f in _FINE_CELLS if X.shape[1] <= d), 1)
    shape = X.shape
    X, sample_weight = _merged_duplicates(np.asarray(X), sample_weight)
    return PreparedRows(
        [
            _column_index(x, w, h) or _cell_index(x, w, h / _COARSE_PER_H, fine)
            for x, w in slabs(X, sample_weight, _INDEX_ROWS)
            if len(x)
        ],
        shape,
    )


def _sklearn_float32(X, sample_weight):
    """Whether scikit-learn's means of these rows add them one after another
    in float32: unweighted float32 rows of 2 features or more (with one,
    ``np.mean`` sums the rows pairwise, not in turn)."""
    return X.dtype == np.float32 and sample_weight is None and X.shape[1] >= 2


def tree_order(X, index, nodes, bounds):
    """The :class:`~..grid.TreeOrder` of float32 rows in scikit-learn's k-d tree.

    ``MeanShift`` finds the rows near a center with ``NearestNeighbors``,
    a k-d tree of ``leaf_size=30`` over the rows (held in float64), whose
    radius query returns them in the order of the tree's index; their
    ``np.mean`` adds them in that order in float32. The same tree, built by
    scikit-learn, gives the same order: ``index``, ``nodes`` and ``bounds``
    are its arrays (``KDTree.get_arrays()``).
    """
    return TreeOrder(
        rows=np.ascontiguousarray(X[np.asarray(index)]),
        starts=np.asarray(nodes["idx_start"], dtype=np.int64),
        ends=np.asarray(nodes["idx_end"], dtype=np.int64),
        leaf=np.asarray(nodes["is_leaf"], dtype=bool),
        lower=np.ascontiguousarray(bounds[0]),
        upper=np.ascontiguousarray(bounds[1]),
    )


def _tree_order_sums(centers, order, h, sums, weights):
    """Add the sums of ``centers`` over a :class:`~..grid.TreeOrder` (in place):
    each center's float32 mean times its count, which divides back exactly.

    Up to ``_TREE_NUMPY_PAIRS`` center-row pairs, ``np.mean`` itself of each
    center's rows (a boolean mask keeps the tree's order): no compiled loop
    to load for a small fit.
    """
    means = np.zeros((len(centers), order.rows.shape[1]), dtype=np.float32)
    counts = np.zeros(len(centers), dtype=np.int64)
    if len(centers) * len(order.rows) <= _TREE_NUMPY_PAIRS:
        rows = order.rows.astype(np.float64)
        for i, c in enumerate(centers):
            d2 = np.zeros(len(rows))
            for j in range(rows.shape[1]):
                d2 += (c[j] - rows[:, j]) ** 2
            inside = d2 <= h * h
            counts[i] = np.count_nonzero(inside)
            if counts[i]:
                means[i] = np.mean(order.rows[inside], axis=0)
    else:
        from ._flat_loops import tree_order_means

        tree_order_means(
            centers,
            order.rows,
            order.starts,
            order.ends,
            order.leaf,
            order.lower,
            order.upper,
            h * h,
            means,
            counts,
        )
    # A float32 mean (24 bits) times a count below 2^29 is exact in float64.
    sums += means.astype(np.float64) * counts[:, None]
    weights += counts


def _column_index(X, sample_weight, h):
    """The :class:`~..grid.ColumnIndex` of rows of up to 3 features, or None.

    Rows are padded in front to 3 coordinates with zeros, put in columns
    ``h / 3`` wide across the first two and sorted within each along the
    third, in cells ``h / 32`` long (merged by twos where the columns would
    span more cells than some four per row), with prefix sums of weights
    and coordinates along each column: a center sums the rows of a run of
    cells surely within its ball from two prefix sums, and tests only the
    rows of the two runs its edge crosses. Narrow columns and short cells
    keep those runs short (3 and 32 measured best at 30,000 and 100,000
    rows). None beyond 3 features, or when the data's magnitude is so far
    beyond the bandwidth that its cells cannot be numbered exactly.
    """
    from . import _flat_loops as loops

    n, n_features = X.shape
    col_side, z_side = h / _COLUMNS_PER_H, h / _Z_CELLS_PER_H
    scale = float(np.abs(X).max(initial=0.0)) + col_side
    if n_features > _COLUMN_FEATURES or scale / z_side >= 2.0**52:
        return None
    lo, hi = loops.column_bounds(X, col_side, z_side)
    span = hi - lo + 1
    if count_cells(span) <= _COUNTING_BINS_PER_ROW * n + (1 << 16):
        order = loops.column_order(X, lo, span, col_side, z_side)
    else:  # a grid of many more cells than rows: sorted by key
        padded = np.zeros((n, 3))
        padded[:, 3 - n_features :] = X
        cells, _, _ = loops.column_cells(padded, n_features - 1, col_side, z_side)
        if count_cells(span) < 2.0**62:
            strides = np.array([span[1] * span[2], span[2], 1], dtype=np.int64)
            keys = cells[:, 2] - lo[2]  # (cells - lo) @ strides, a column at a time
            for a in (0, 1):
                keys += (cells[:, a] - lo[a]) * strides[a]
            order, _ = sorted_runs(keys)
        else:  # a huge, sparse grid
            order = np.lexsort((cells[:, 2], cells[:, 1], cells[:, 0]))
    gathered = loops.gather_columns(
        X,
        _row_weights(sample_weight),
        np.asarray(order, dtype=np.int64),
        4 * n + (1 << 16),
        col_side,
        z_side,
    )
    fields = dict(zip(_GATHERED, gathered, strict=True))
    return ColumnIndex(
        n_features=n_features,
        col_side=col_side,
        z_side=z_side * fields.pop("merge"),
        col_lo=lo[:2].copy(),
        col_hi=hi[:2].copy(),
        scale=scale,
        **fields,
    )


#: Grids of at most this many cells a row (and 65,536 more) order their rows
#: by a counting sort (:func:`._flat_loops.column_order`: a count per cell);
#: sparser ones by sorting the rows' keys.
_COUNTING_BINS_PER_ROW = 4

#: What :func:`._flat_loops.gather_columns` returns, in order.
_GATHERED = (
    "coords",
    "row_w",
    "col_c",
    "z_lo",
    "z_hi",
    "z_base",
    "origin",
    "merge",
    "z_first",
    "pre_w",
    "pre_s",
    "table",
)


def _row_weights(sample_weight):
    """Weights for the compiled passes: float64, or empty for unweighted rows."""
    if sample_weight is None:
        return np.zeros(0)
    return np.ascontiguousarray(sample_weight, dtype=np.float64)


def _cell_index(X, sample_weight, side, fine):
    """The :class:`~..grid.CellIndex` of the rows of ``X``, built by compiled passes.

    Coarse cells ``side`` wide, each split into ``fine`` cells per axis. Rows
    are sorted by coarse cell, then by fine cell, so that every cell is a run
    of rows and every coarse cell a run of fine cells.
    """
    from . import _flat_loops as loops

    X = np.ascontiguousarray(X, dtype=np.float64)
    n_features = X.shape[1]
    cells, lo, hi = loops.fine_cells(X, side / fine, fine)
    span = hi - lo + 1
    if count_cells(span) * fine**n_features < 2.0**62:
        strides = mixed_radix_strides(span)
        numbered = np.zeros(0, dtype=np.int64)
    else:  # a huge, sparse grid: number its occupied coarse cells instead
        strides = np.zeros(n_features, dtype=np.int64)
        numbered = np.unique(cells // fine, axis=0, return_inverse=True)[1]
        numbered = numbered.ravel().astype(np.int64)
    keys = loops.cell_sort_keys(cells, fine, numbered, lo, strides)
    order, starts = sorted_runs(keys)
    weights = _row_weights(sample_weight)
    (
        rows,
        row_w,
        fine_rows,
        fine_coords,
        fine_w,
        fine_s,
        coarse_fine,
        coarse_coords,
        coarse_w,
        coarse_s,
    ) = loops.gather_cells(
        X, weights, cells, keys, order.astype(np.int64), starts.astype(np.int64), fine
    )
    scale = max(abs(float(X.min())), abs(float(X.max()))) + side
    return CellIndex(
        rows=rows,
        row_w=row_w,
        side=float(side),
        coarse_coords=coarse_coords,
        coarse_fine=coarse_fine,
        coarse_w=coarse_w,
        coarse_s=coarse_s,
        fine_side=float(side / fine),
        fine_coords=fine_coords,
        fine_rows=fine_rows,
        fine_w=fine_w,
        fine_s=fine_s,
        scale=scale,
        tree=cKDTree(coarse_coords),
    )


#: Rows sampled to guess whether a block repeats rows, and the share of
#: distinct rows in the sample below which its repeated rows are merged.
_REPEATS_SAMPLE = 4096
_REPEATS_DISTINCT = 0.9


def _merged_duplicates(X, sample_weight):
    """Identical rows as one row weighing as many: the same sums, fewer rows.

    Pictures repeat colours (china.jpg: 96,615 distinct of 273,280 pixels),
    and so do counts and codes: a row's distance to a center, and so its
    test, is the same for all its copies. Merged only where an evenly spaced
    sample of rows repeats some (a sort of the rows costs about as much as
    the index): continuous data is left as it is.
    """
    n = len(X)
    if n < 2 * _REPEATS_SAMPLE:
        return X, sample_weight
    sample = X[:: n // _REPEATS_SAMPLE]
    if len(np.unique(sample, axis=0)) > _REPEATS_DISTINCT * len(sample):
        return X, sample_weight
    rows, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    weights = np.bincount(
        inverse,
        weights=None if sample_weight is None else sample_weight,
        minlength=len(rows),
    ).astype(np.float64)
    return rows, weights


def flat_indexed_sums(centers, prepared, bandwidth):
    """Flat-kernel sums of many centers: exact, over the rows' cell index.

    Each center takes the aggregates of the cells wholly within its ball
    (prefix sums along a column of the column index, up to 3 features; cell
    sums of the two-level index beyond), skips the cells wholly beyond, and
    tests only the rows of the cells that the ball's edge crosses, with
    scikit-learn's own test
    ``sum_j (x_j - c_j)^2 <= h^2``, in a compiled loop (:mod:`._flat_loops`).
    A cell counts as within (or beyond) only with a margin wider than the
    rounding of any of its rows' distances, so the result is the pairwise
    one: the same rows within the bandwidth.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features), float64
    prepared : PreparedRows
        From :func:`flat_prepare` at the same bandwidth.
    bandwidth : float

    Returns
    -------
    sums : ndarray of shape (n_centers, n_features)
    weights : ndarray of shape (n_centers,)
    """
    h = float(bandwidth)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    sums = np.zeros(centers.shape)
    weights = np.zeros(len(centers))
    extent = float(np.abs(centers).max(initial=0.0)) + h
    groups = None
    for index in prepared.slabs:
        if isinstance(index, TreeOrder):
            _tree_order_sums(centers, index, h, sums, weights)
            continue
        # Bounds within `band` of h^2 are decided row by row: wider than the
        # rounding of any distance between rows and centers this far out.
        band = 1e-12 * h * (h + extent + index.scale)
        if isinstance(index, ColumnIndex):
            _column_sums(centers, index, h, band, sums, weights)
            continue
        if groups is None:
            groups = center_groups(centers, h)
        _cell_sums(centers, index, groups, h, band, sums, weights)
    return sums, weights


def flat_row_sums(centers, X, bandwidth, sample_weight):
    """Flat-kernel sums of a block of rows read once, through cells, or None.

    For rows that are met once per pass (a task's chunk on a cluster, or a
    chunk streamed from its store), the column index of rows held in memory
    costs more to build than it saves. Instead two compiled passes
    (:func:`._flat_loops.sort_rows_by_cell`) sort the rows by cells of a
    grid ``h / _ROW_CELLS_PER_H`` wide over (up to) the first three features
    and the centers' reach, with every cell's weight and coordinate sums;
    then each center (:func:`._flat_loops.sorted_cell_sums`) adds the sums
    of the cells surely within its ball without visiting their rows (up to
    3 features), skips the cells surely beyond, and tests only the rows of
    the cells its edge crosses, exactly (scikit-learn's
    ``sum_j (x_j - c_j)^2 <= h^2``). Cells count as within or beyond only
    with a margin wider than the rounding of a row's cell and distance, so
    the rows within the bandwidth of each center are the pairwise ones.

    Returns None for blocks of fewer than ``_ROW_SUMS_MIN_ROWS`` rows (they
    never load numba).
    """
    X = np.asarray(X)
    n, n_features = X.shape
    if n < _ROW_SUMS_MIN_ROWS or X.dtype not in (np.float32, np.float64):
        return None
    from ._flat_loops import sort_rows_by_cell, sorted_cell_sums

    h = float(bandwidth)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    g = min(n_features, 3)
    low = centers[:, :g].min(axis=0)
    extent = centers[:, :g].max(axis=0) - low
    side = h / _ROW_CELLS_PER_H
    while np.prod(cells := np.ceil((extent + 2 * h) / side) + 3) > _ROW_GRID_MAX_CELLS:
        side *= 1.25
    origin = low - h - side
    shape = cells.astype(np.int64)
    # Far beyond the rounding of a row's cell, (x - origin) / side, in units.
    margin = 1e-12 * (float(np.abs(centers).max()) + 2 * h + 4 * side)
    w = np.zeros(0) if sample_weight is None else np.asarray(sample_weight, float)
    cells = sort_rows_by_cell(X, w, origin, 1.0 / side, shape)
    sums = np.zeros(centers.shape)
    weights = np.zeros(len(centers))
    sorted_cell_sums(
        centers, h * h, 1e-9, origin, side, shape, margin, n_features <= 3,
        *cells, sums, weights,
    )
    return sums, weights


def _column_sums(centers, index, h, band, sums, weights):
    """Add the sums of ``centers`` over a column index (in place)."""
    from ._flat_loops import column_index_sums

    n_features = centers.shape[1]
    # Centers in column order: neighbours meet the same rows, in cache.
    cells = np.floor(centers[:, : n_features - 1] / index.col_side)
    order = np.lexsort(cells.T[::-1]) if n_features > 1 else slice(None)
    padded = np.zeros((len(centers), 3))
    padded[:, 3 - n_features :] = centers[order]
    out = np.zeros((len(centers), 3))
    found = np.zeros(len(centers))
    column_index_sums(
        padded,
        index.n_axes,
        index.col_side,
        index.z_side,
        index.col_lo,
        index.col_hi,
        index.coords,
        index.row_w,
        index.col_c,
        index.z_lo,
        index.z_hi,
        index.z_base,
        index.origin,
        index.z_first,
        index.pre_w,
        index.pre_s,
        index.table,
        h * h,
        band,
        index.margin,
        out,
        found,
    )
    sums[order] += out[:, 3 - n_features :]
    weights[order] += found


def _cell_sums(centers, index, groups, h, band, sums, weights):
    """Add the sums of ``centers`` over a two-level cell index (in place)."""
    from ._flat_loops import flat_index_sums

    order, bounds, lo, hi = groups
    ptr, cells = index.near_cells(lo - h, hi + h)
    flat_index_sums(
        centers,
        bounds.astype(np.int64),
        order.astype(np.int64),
        ptr,
        cells,
        index.coarse_coords,
        index.side,
        index.coarse_fine,
        index.coarse_w,
        index.coarse_s,
        index.fine_coords,
        index.fine_side,
        index.fine_rows,
        index.fine_w,
        index.fine_s,
        index.rows,
        index.row_w,
        index.weighted,
        h * h,
        band,
        index.margin,
        sums,
        weights,
    )


class Flat(Kernel):
    """Weight 1 for rows with ``||x - c|| <= h``, 0 beyond; results as scikit-learn's."""

    name = "flat"
    summary = "points within h weigh 1"
    indicator = True
    # Below this many centers, sorting the rows into grid cells costs more
    # than evaluating every pair (measured on blobs in 3-D).
    grid_min_centers = 32
    sklearn_postprocess = True
    merges_stopped = False
    checks_saddles = False
    accelerated = False
    climbs_on_cells = False

    def reach(self, bandwidth, truncate=None):
        return bandwidth

    def bandwidth(self, radius, n_neighbours):
        return radius

    def prepare(self, X, sample_weight, bandwidth, truncate=None, kd_tree=None):
        if kd_tree is not None and _sklearn_float32(X, sample_weight) and bandwidth:
            tree = kd_tree()
            if tree is not None:
                return PreparedRows([tree_order(X, *tree)], X.shape, ordered=True)
        # A few thousand rows are summed as they are: the compiled loop's
        # first call in a process (0.5 s) would cost more than it saves.
        few = X.shape[0] < _PREPARE_MIN_ROWS
        if few or bandwidth == 0 or X.shape[1] > GRID_MAX_FEATURES:
            return None
        return flat_prepare(X, sample_weight, bandwidth)

    def prepared_sums(self, centers, prepared, bandwidth):
        return flat_indexed_sums(centers, prepared, bandwidth)

    def group_sums(self, centers, X, bandwidth, reach, sample_weight):
        return flat_shared_sums(centers, X, bandwidth, sample_weight)

    def row_sums(self, centers, X, bandwidth, reach, sample_weight):
        return flat_row_sums(centers, X, bandwidth, sample_weight)


KERNEL = Flat()
