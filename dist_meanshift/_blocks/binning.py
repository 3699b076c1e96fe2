"""Grid cells of the data: bin seeds and binned (weighted) data, block by block."""

from __future__ import annotations

import sys

import numpy as np

from .grid import (
    cell_keys,
    cell_span,
    count_cells,
    mixed_radix_strides,
    slabs,
    snapped_columns,
    sorted_runs,
)

# Rows binned at once (cell tables): their snapped columns, keys, sort and
# cell numbers take about 50 bytes a row (3 features), some 100 MB.
_TABLE_ROWS = 1 << 21
# Cell tables over grids of at most this many cells (and not much more than
# rows) count every cell in place instead of sorting: 32 MB per float64 count.
_DENSE_CELLS = 1 << 22
#: Blocks of at least this many rows are binned by a compiled loop (one pass,
#: a hash table of the occupied cells, no temporaries the size of the block:
#: in workers, where every fresh temporary is faulted in anew, less than half
#: numpy's time); smaller ones never load numba (see _loops).
COMPILED_MIN_ROWS = 1 << 17


def bin_counts(X, bin_size, sample_weight=None):
    """Grid cells of side ``bin_size`` occupied by the rows of one block.

    A row falls in the cell ``round(x / bin_size)`` (numpy rounding, halves to
    even, as scikit-learn's ``get_bin_seeds``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    bin_size : float, > 0
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    cells : ndarray of shape (n_cells, n_features)
        Integer-valued cell coordinates, sorted lexicographically.
    counts : ndarray of shape (n_cells,), float64
        Number (or total weight) of rows in each cell.
    """
    compiled = _compiled_table(X, bin_size, True, sample_weight, False)
    if compiled is not None:
        return compiled
    parts = [
        _cell_table(x, bin_size, np.round, w)
        for x, w in slabs(X, sample_weight, _TABLE_ROWS)
    ]
    return combine_bin_counts(*parts) if len(parts) > 1 else parts[0]


def cell_sums(X, cell_size, sample_weight=None):
    """Grid cells of side ``cell_size``: their weights and coordinate sums.

    A row falls in the cell ``floor(x / cell_size)``. The weighted mean of a
    cell's rows stands for them all in binned mean shift.

    Parameters and returns are those of :func:`bin_counts` (``cell_size``
    for ``bin_size``), and

    Returns
    -------
    sums : ndarray of shape (n_cells, n_features), float64
        Weighted coordinate sums of the rows in each cell.
    """
    compiled = _compiled_table(X, cell_size, False, sample_weight, True)
    if compiled is not None:
        return compiled
    parts = [
        _cell_table(x, cell_size, np.floor, w, with_sums=True)
        for x, w in slabs(X, sample_weight, _TABLE_ROWS)
    ]
    return combine_cell_sums(*parts) if len(parts) > 1 else parts[0]


def combine_cell_sums(*parts):
    """Merge the ``(cells, counts, sums)`` of several blocks into one.

    Parameters
    ----------
    *parts : tuple of (ndarray, ndarray, ndarray)
        Results of :func:`cell_sums` (or raw rows with weights).

    Returns
    -------
    cells, counts, sums : ndarray
    """
    merged = _merged(parts)
    if merged is not None:
        cells, total, summed = merged
    else:
        cells = np.concatenate([p[0] for p in parts])
        counts = np.concatenate([p[1] for p in parts])
        sums = np.concatenate([p[2] for p in parts])
        if len(cells) == 0:
            return cells, counts, sums
        cells, total, summed = _sum_by_row(cells, counts, sums)
    if len(total) and total.min() > 0:
        return cells, total, summed
    keep = total > 0
    return cells[keep], total[keep], summed[keep]


def combine_bin_counts(*parts):
    """Merge the ``(cells, counts)`` of several blocks into one.

    Parameters
    ----------
    *parts : tuple of (ndarray, ndarray)
        Results of :func:`bin_counts`.

    Returns
    -------
    cells, counts : ndarray
    """
    merged = _merged(parts)
    if merged is not None:
        return merged[:2]
    cells = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    if cells.shape[0] == 0:
        return cells, counts
    return _sum_by_row(cells, counts)


def _merged(parts):
    """Sorted cell tables merged by the compiled loop, or None.

    Tables of :func:`bin_counts` or :func:`cell_sums` are sorted
    lexicographically, and so are their keys over any grid that holds them
    all: one linear merge per table then replaces a sort of them all
    together. A cell's counts and sums add up table after table, in the
    tables' order, as the sort's sums over runs do, so the result is the same
    to the bit. None under ``COMPILED_MIN_ROWS`` cells in all unless the
    compiled loops are loaded already (a process that binned a large block
    has them: two 62,000-cell tables merge in 3 ms, against 8 ms for the
    sort), and for grids whose keys would not fit an int64.
    """
    parts = [p for p in parts if len(p[0])]
    if len(parts) < 2:
        return None
    if sum(len(p[0]) for p in parts) < COMPILED_MIN_ROWS and not _loops_loaded():
        return None
    from ._loops import column_ranges, merge_tables

    cells = [np.ascontiguousarray(p[0], dtype=np.int64) for p in parts]
    ends = np.array([column_ranges(c) for c in cells])
    lo, hi = ends[:, 0].min(axis=0), ends[:, 1].max(axis=0)
    if count_cells(hi.astype(np.float64) - lo + 1) >= 2.0**62:
        return None  # (tested in floats: the int64 span itself may overflow)
    span = hi - lo + 1

    def table(part, cells):
        sums = part[2] if len(part) > 2 else np.zeros((len(cells), 0))
        keys = cell_keys(cells.T, (lo, span))
        return keys, cells, np.asarray(part[1], np.float64), np.asarray(sums, float)

    # Table after table, so that a cell's sums add up in the tables' order.
    merged = table(parts[0], cells[0])
    for part, its_cells in zip(parts[1:], cells[1:], strict=True):
        merged = merge_tables(*merged, *table(part, its_cells))
    return merged[1:]


def _cell_table(X, size, snap, sample_weight=None, with_sums=False):
    """Occupied cells ``snap(x / size)`` of a block, their weights and sums.

    The division is done in the data's precision (as scikit-learn's bin
    seeding does), in float64 when float32 could not tell cells apart. Each
    row gets one int64 key (mixed radix over the block's range of cells,
    ordered like the cells). When that range holds few cells (at most
    ``_DENSE_CELLS``, and not many more than rows), weights and sums are
    bincounts over every cell of it by key; otherwise one sort
    (:func:`sorted_runs`) numbers the occupied cells first.

    Returns
    -------
    cells : ndarray of shape (n_cells, n_features), int64
        Sorted lexicographically.
    counts : ndarray of shape (n_cells,), float64
    sums : ndarray of shape (n_cells, n_features), float64
        Only with ``with_sums``: the weighted coordinate sums per cell.
    """
    X = np.asarray(X)
    n, n_features = X.shape
    if n == 0:
        empty = (np.zeros((0, n_features), np.int64), np.zeros(0))
        return (*empty, np.zeros((0, n_features))) if with_sums else empty
    columns, lo, span = _snap(X, size, snap)
    keys = cell_keys(columns, (lo, span))
    slots = count_cells(span)
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    # numpy unravels indices over at most 32 dimensions (64 from numpy 2).
    if n_features <= 32 and slots <= min(_DENSE_CELLS, max(2 * n, _DENSE_CELLS >> 6)):
        del columns
        cells, cell_of, n_slots, occupied, in_cell = _every_cell(keys, lo, span)
    else:
        cells, cell_of, n_slots, occupied, in_cell = _occupied_cells(keys, columns)
        del columns
    counts = in_cell if w is None else np.bincount(cell_of, w, minlength=n_slots)
    counts = counts[occupied].astype(np.float64)
    if not with_sums:
        return cells, counts
    sums = np.empty((len(cells), n_features))
    values = np.empty(n)
    for j in range(n_features):
        np.copyto(values, X[:, j])
        if w is not None:
            values *= w
        sums[:, j] = np.bincount(cell_of, weights=values, minlength=n_slots)[occupied]
    return cells, counts, sums


def _compiled_table(X, size, round_half_even, sample_weight, with_sums):
    """:func:`_cell_table` of a whole block by the compiled loop, or None.

    None for blocks under ``COMPILED_MIN_ROWS`` rows, and for grids whose
    keys would not fit an int64. The cells are those of :func:`_snap`, which
    snaps the two rows of column minima and maxima (snapping is monotonic):
    their range of cells per feature, and the precision it divides in.
    """
    X = np.asarray(X)
    if X.shape[0] < COMPILED_MIN_ROWS or X.dtype not in (np.float32, np.float64):
        return None
    from ._loops import cell_table, column_ranges

    ends = np.stack(column_ranges(X))
    columns, lo, span = _snap(ends, size, np.round if round_half_even else np.floor)
    if count_cells(span) >= 2.0**62:
        return None
    work = columns[0].dtype.type
    strides = mixed_radix_strides(span)
    w = np.zeros(0) if sample_weight is None else np.asarray(sample_weight, float)
    keys, counts, sums = cell_table(
        X, work(size), lo, strides, round_half_even, w, with_sums
    )
    order = np.argsort(keys)
    keys = keys[order]
    cells = lo + (keys[:, None] // strides) % span
    if with_sums:
        return cells, counts[order], sums[order]
    return cells, counts[order]


def _loops_loaded():
    """Whether this process has loaded the compiled loops (numba) already."""
    return f"{__package__}._loops" in sys.modules


def _snap(X, size, snap):
    """Integer cell coordinates per column, their lowest values and spans."""
    # Few, reused temporaries: in dask workers (MALLOC_TRIM_THRESHOLD_ set by
    # the nanny) every fresh array this size is mapped and faulted in anew.
    work = np.float32 if X.dtype == np.float32 else np.float64
    columns = snapped_columns(X, size, snap, work)
    lo, span = cell_span(columns)
    if work == np.float32 and max(-lo.min(), (lo + span - 1).max()) >= 2**22:
        # float32 could not tell such cells apart: divide in float64.
        columns = snapped_columns(X, size, snap, np.float64)
        lo, span = cell_span(columns)
    return columns, lo, span


def _every_cell(keys, lo, span):
    """A small grid counted in place, every cell of it, with no sort.

    Returns the occupied cells, the slot of every row (its key), the number of
    slots, the occupied slots and the rows per slot.
    """
    n_slots = int(count_cells(span))
    in_cell = np.bincount(keys, minlength=n_slots)
    occupied = np.flatnonzero(in_cell)
    cells = np.stack(np.unravel_index(occupied, tuple(span)), axis=1) + lo
    return cells, keys, n_slots, occupied, in_cell


def _occupied_cells(keys, columns):
    """The occupied cells numbered by one sort of the keys (as :func:`_every_cell`)."""
    order, starts = sorted_runs(keys)
    firsts = order[starts]
    cells = np.stack([c[firsts] for c in columns], axis=1).astype(np.int64)
    # The cell number of every row, in row order: sums are then bincounts
    # reading the rows in place (a gather of rows by cell costs twice that).
    run = np.zeros(len(keys), dtype=np.int64)
    run[starts[1:]] = 1
    np.cumsum(run, out=run)
    cell_of = keys  # reused: the cell number of each row, in row order
    cell_of[order] = run
    n_slots = len(starts)
    in_cell = np.bincount(cell_of, minlength=n_slots)
    return cells, cell_of, n_slots, slice(None), in_cell


def _sum_by_row(rows, weights, values=None):
    """Distinct rows (lexicographic order) with the summed weights of each.

    With ``values`` of shape (n_rows, k), their per-row sums are returned too.
    One sort of one int64 key per row, then sums over the runs of equal keys,
    column by column.
    """
    keys = cell_keys(rows.T)
    order, starts = sorted_runs(keys)
    counts = np.add.reduceat(np.asarray(weights, np.float64)[order], starts)
    distinct = rows[order[starts]]
    if values is None:
        return distinct, counts
    summed = np.empty((len(starts), values.shape[1]))
    for j in range(values.shape[1]):
        summed[:, j] = np.add.reduceat(values[:, j][order], starts)
    return distinct, counts, summed
