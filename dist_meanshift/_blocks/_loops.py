"""Compiled loops over the rows of one block: cell tables and nearest centers.

The per-row work of the passes that stream every row (binning, bin seeds,
labels), one pass over the rows each, with no temporaries the size of the
block: numpy's version of the same work makes some ten passes over
``rows x centers`` or ``rows x features`` temporaries, which cost more than
reading and decoding the rows. Compiled by numba on first use
(``cache=True``); imported only for blocks large enough to pay numba's start
in a process (about 0.5 s; ``COMPILED_MIN_ROWS`` of ``binning`` and
``labels``), so that small fits never load it.
"""

from __future__ import annotations

import numba
import numpy as np

#: A cell hash table starts with 2**_FIRST_BITS slots and doubles when half full.
_FIRST_BITS = 12
#: Fibonacci hashing multiplier (2**64 / golden ratio), as a signed int64.
_GOLDEN = np.int64(-7046029254386353131)


@numba.njit(cache=True, nogil=True)
def nearest_labels(X, centers_t, h2, labels):
    """The nearest center of every row, or -1 beyond ``sqrt(h2)`` of all.

    Squared distances are ``sum_j (x_j - c_j)^2`` in float64, feature after
    feature (as scikit-learn's trees compute them); ties go to the lowest
    index (as ``argmin``). ``h2 < 0`` labels every row. The centers come
    transposed, so that a row's differences to all of them are one
    vectorised loop per feature.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features), float32 or float64
    centers_t : ndarray of shape (n_features, n_centers), float64
    h2 : float
    labels : ndarray of shape (n_rows,), int64
        Filled in place.
    """
    d = np.empty(centers_t.shape[1])
    for i in range(X.shape[0]):
        best, arg = _nearest(X, i, centers_t, d)
        labels[i] = arg if (h2 < 0.0 or best <= h2) else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _nearest(X, i, centers_t, d):
    """Row ``i``'s least squared distance to a center and that center's index,
    as :func:`nearest_labels` finds them (``d`` is room for the distances)."""
    d[:] = 0.0
    for j in range(X.shape[1]):
        x = np.float64(X[i, j])
        for c in range(centers_t.shape[1]):
            t = x - centers_t[j, c]
            d[c] += t * t
    best = d[0]
    arg = 0
    for c in range(1, centers_t.shape[1]):
        if d[c] < best:
            best = d[c]
            arg = c
    return best, arg


@numba.njit(cache=True, nogil=True)
def nearest_labels_by_cell(X, centers_t, h2, lo, inv, dims, sole, state, labels):
    """:func:`nearest_labels` with most rows settled by their grid cell.

    Every row falls in a cell ``int((x_j - lo_j) * inv_j)`` (clipped to the
    grid) of a grid over all its features. A cell with one candidate center
    (``sole >= 0``: surely nearer than any other to every point of the cell,
    widened beyond rounding) gives its rows that label with no distance
    (``state`` 1), -1 (``state`` 2: surely beyond ``sqrt(h2)``), or the label
    after the row's distance to that one center, computed as
    :func:`nearest_labels` computes it (``state`` 0). Rows of the other
    cells meet every center, as in :func:`nearest_labels`.

    Parameters
    ----------
    X, centers_t, h2, labels
        As :func:`nearest_labels`.
    lo, inv : ndarray of shape (n_features,), float64
        The grid's origin and cells per unit, per feature.
    dims : ndarray of shape (n_features,), int64
        Cells per feature.
    sole : ndarray of shape (n_cells,), int64
        The sole candidate of each cell (row-major over ``dims``), or -1.
    state : ndarray of shape (n_cells,), int8
    """
    n, f = X.shape
    d = np.empty(centers_t.shape[1])
    for i in range(n):
        cell = _grid_cell(X, i, lo, inv, dims)
        c = sole[cell]
        if c >= 0:
            st = state[cell]
            if st == 1:
                labels[i] = c
                continue
            if st == 2:
                labels[i] = -1
                continue
            best = 0.0
            for j in range(f):
                t = np.float64(X[i, j]) - centers_t[j, c]
                best += t * t
            labels[i] = c if best <= h2 else -1
            continue
        best, arg = _nearest(X, i, centers_t, d)
        labels[i] = arg if (h2 < 0.0 or best <= h2) else -1


@numba.njit(cache=True, nogil=True, inline="always")
def _grid_cell(X, i, lo, inv, dims):
    """Row ``i``'s cell of the grid of :func:`nearest_labels_by_cell`."""
    cell = np.int64(0)
    for j in range(X.shape[1]):
        q = np.int64((np.float64(X[i, j]) - lo[j]) * inv[j])
        q = min(max(q, 0), dims[j] - 1)
        cell = cell * dims[j] + q
    return cell


@numba.njit(cache=True, nogil=True)
def settled_share(X, lo, inv, dims, sole):
    """The share of rows of ``X`` whose cell of the grid settles their label
    (``sole >= 0``; see :func:`nearest_labels_by_cell`)."""
    settled = 0
    for i in range(X.shape[0]):
        if sole[_grid_cell(X, i, lo, inv, dims)] >= 0:
            settled += 1
    return settled / max(1, X.shape[0])


@numba.njit(cache=True, nogil=True)
def column_ranges(X):
    """The lowest and highest value of every column (numpy's ``min(axis=0)``
    over a few columns costs some 25 ns a row)."""
    n, f = X.shape
    lo = np.empty(f, X.dtype)
    hi = np.empty(f, X.dtype)
    for j in range(f):
        # A column at a time, its ends in registers: 2.7 ns a row for 3
        # float32 columns against 3.9 for every row's columns at once.
        a = X[0, j]
        b = a
        for i in range(1, n):
            v = X[i, j]
            a = min(a, v)
            b = max(b, v)
        lo[j] = a
        hi[j] = b
    return lo, hi


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key, shift):
    return np.int64(np.uint64(key * _GOLDEN) >> np.uint64(shift))


@numba.njit(cache=True, nogil=True)
def _rehash(keys, n_slots, shift):
    """Slots (cell numbers, -1 when free) for the cells of ``keys``."""
    slots = np.full(n_slots, -1, np.int32)
    mask = n_slots - 1
    for cell in range(keys.shape[0]):
        t = _slot(keys[cell], shift)
        while slots[t] >= 0:
            t = (t + 1) & mask
        slots[t] = cell
    return slots


@numba.njit(cache=True, nogil=True)
def _enlarged(a, rows):
    """``a`` with room for ``rows`` rows, its rows copied."""
    out = np.zeros((rows, *a.shape[1:]), a.dtype)
    out[: a.shape[0]] = a
    return out


@numba.njit(cache=True, nogil=True)
def cell_table(X, size, lo, strides, round_half_even, weights, with_sums):
    """Occupied grid cells of a block with their weights (and coordinate sums).

    A row falls in the cell ``snap(x / size)``, the division done in the
    precision of ``size`` (float32 for float32 data, as scikit-learn's bin
    seeding; float64 otherwise) and ``snap`` a rounding half to even
    (``round_half_even``, numpy's ``round``) or ``floor``. The cell's key is
    ``sum_j (snap_j - lo_j) * strides_j``, mixed-radix over the block's range
    of cells: keys order like the cells. Weights and sums are added in row
    order, in float64 (``x * w``), as ``bincount`` adds them.

    Two passes over the rows. The first finds every row's cell: the cells
    are numbered as they are first met, their keys kept in that order, and a
    hash table of ``int32`` slots (at most half full) finds a key's number.
    The second adds every row to its cell's weight and sums. Apart, each
    loop keeps few loads in flight and no branch depends on what the other
    stores: 33 to 40 ns a row for both against 44 to 52 for one loop doing
    both, on a 2M-row chunk of 3-feature blobs in 62,000 cells. A block whose rows all
    fall in cells of their own holds 4 bytes a slot and 4 a row beside its
    cells, not a value row per slot.

    Parameters
    ----------
    X : ndarray of shape (n_rows, n_features)
    size : float32 or float64
    lo : ndarray of shape (n_features,), int64
        The lowest cell coordinate of each feature.
    strides : ndarray of shape (n_features,), int64
    round_half_even : bool
    weights : ndarray of shape (n_rows,) or (0,)
        Row weights; empty for every row weighing 1.
    with_sums : bool

    Returns
    -------
    keys : ndarray of shape (n_cells,), int64
        In the order the cells were met.
    counts : ndarray of shape (n_cells,), float64
    sums : ndarray of shape (n_cells, n_features) or (n_cells, 0), float64
    """
    n, f = X.shape
    bits = _FIRST_BITS
    slots = np.full(1 << bits, -1, np.int32)
    keys = np.empty(1 << (bits - 1), np.int64)
    cell_of = np.empty(n, np.int32)
    start = 0
    used = 0
    while True:
        # Rows until the cells fill their array (half the slots), which
        # then doubles.
        start, used = _find_cells(
            X,
            start,
            size,
            lo,
            strides,
            round_half_even,
            slots,
            keys,
            used,
            64 - bits,
            cell_of,
        )
        if start == n:
            break
        bits += 1
        keys = _enlarged(keys, 1 << (bits - 1))
        slots = _rehash(keys[:used], 1 << bits, 64 - bits)
    values = np.zeros((used, 1 + f if with_sums else 1))
    _add_rows(X, cell_of, weights, with_sums, values)
    return keys[:used], values[:, 0], values[:, 1:]


@numba.njit(cache=True, nogil=True)
def _find_cells(
    X, start, size, lo, strides, round_half_even, slots, keys, used, shift, cell_of
):
    """The cell number of every row from ``start`` on, until the cells fill
    ``keys``.

    Returns the next row and the number of cells.
    """
    n, f = X.shape
    mask = slots.shape[0] - 1
    room = keys.shape[0]
    for i in range(start, n):
        key = np.int64(0)
        for j in range(f):
            v = X[i, j] / size
            q = np.rint(v) if round_half_even else np.floor(v)
            key += (np.int64(q) - lo[j]) * strides[j]
        s = _slot(key, shift)
        while True:
            cell = slots[s]
            if cell < 0:
                if used == room:
                    return i, used
                cell = used
                slots[s] = cell
                keys[cell] = key
                used += 1
                break
            if keys[cell] == key:
                break
            s = (s + 1) & mask
        cell_of[i] = cell
    return n, used


@numba.njit(cache=True, nogil=True)
def _add_rows(X, cell_of, weights, with_sums, values):
    """Every row's weight (and weighted coordinates) added to its cell's."""
    n, f = X.shape
    weighted = weights.shape[0] > 0
    for i in range(n):
        cell = cell_of[i]
        w = weights[i] if weighted else 1.0
        values[cell, 0] += w
        if with_sums:
            for j in range(f):
                values[cell, 1 + j] += np.float64(X[i, j]) * w


@numba.njit(cache=True, nogil=True)
def merge_tables(keys_a, cells_a, counts_a, sums_a, keys_b, cells_b, counts_b, sums_b):
    """Two cell tables sorted by key merged into one, in one pass over both.

    A cell in both gets ``a + b`` of its counts and sums (two terms: the same
    in any order); a cell in one keeps its own. ``sums`` may have no columns
    (counts only).

    Parameters
    ----------
    keys_a, keys_b : ndarray of shape (n_a,) and (n_b,), int64
        Increasing (each cell once).
    cells_a, cells_b : ndarray of shape (n_a, f) and (n_b, f), int64
    counts_a, counts_b : ndarray, float64
    sums_a, sums_b : ndarray of shape (n_a, k) and (n_b, k), float64

    Returns
    -------
    keys, cells, counts, sums : ndarray
        The union of the cells, by increasing key.
    """
    n_a, n_b = len(keys_a), len(keys_b)
    f, k = cells_a.shape[1], sums_a.shape[1]
    keys = np.empty(n_a + n_b, np.int64)
    cells = np.empty((n_a + n_b, f), np.int64)
    counts = np.empty(n_a + n_b)
    sums = np.empty((n_a + n_b, k))
    i = j = m = 0
    while i < n_a or j < n_b:
        if j == n_b or (i < n_a and keys_a[i] < keys_b[j]):
            keys[m] = keys_a[i]
            cells[m] = cells_a[i]
            counts[m] = counts_a[i]
            sums[m] = sums_a[i]
            i += 1
        elif i == n_a or keys_b[j] < keys_a[i]:
            keys[m] = keys_b[j]
            cells[m] = cells_b[j]
            counts[m] = counts_b[j]
            sums[m] = sums_b[j]
            j += 1
        else:
            keys[m] = keys_a[i]
            cells[m] = cells_a[i]
            counts[m] = counts_a[i] + counts_b[j]
            for c in range(k):
                sums[m, c] = sums_a[i, c] + sums_b[j, c]
            i += 1
            j += 1
        m += 1
    return keys[:m], cells[:m], counts[:m], sums[:m]
