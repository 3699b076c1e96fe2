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
    n, f = X.shape
    k = centers_t.shape[1]
    d = np.empty(k)
    for i in range(n):
        d[:] = 0.0
        for j in range(f):
            x = np.float64(X[i, j])
            for c in range(k):
                t = x - centers_t[j, c]
                d[c] += t * t
        best = d[0]
        arg = 0
        for c in range(1, k):
            if d[c] < best:
                best = d[c]
                arg = c
        labels[i] = arg if (h2 < 0.0 or best <= h2) else -1


@numba.njit(cache=True, nogil=True)
def column_ranges(X):
    """The lowest and highest value of every column (numpy's ``min(axis=0)``
    over a few columns costs some 25 ns a row)."""
    n, f = X.shape
    lo = np.empty(f, X.dtype)
    hi = np.empty(f, X.dtype)
    for j in range(f):
        lo[j] = X[0, j]
        hi[j] = X[0, j]
    for i in range(1, n):
        for j in range(f):
            v = X[i, j]
            lo[j] = min(lo[j], v)
            hi[j] = max(hi[j], v)
    return lo, hi


@numba.njit(cache=True, nogil=True, inline="always")
def _slot(key, shift):
    return np.int64(np.uint64(key * _GOLDEN) >> np.uint64(shift))


@numba.njit(cache=True, nogil=True)
def _grow(keys, values, shift):
    """The hash table rehashed into twice the slots."""
    n_slots = 2 * keys.shape[0]
    shift -= 1
    new_keys = np.full(n_slots, -1, np.int64)
    new_values = np.zeros((n_slots, values.shape[1]))
    mask = n_slots - 1
    for s in range(keys.shape[0]):
        key = keys[s]
        if key < 0:
            continue
        t = _slot(key, shift)
        while new_keys[t] >= 0:
            t = (t + 1) & mask
        new_keys[t] = key
        new_values[t] = values[s]
    return new_keys, new_values, shift


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
        In no particular order.
    counts : ndarray of shape (n_cells,), float64
    sums : ndarray of shape (n_cells, n_features) or (n_cells, 0), float64
    """
    n, f = X.shape
    shift = 64 - _FIRST_BITS
    keys = np.full(1 << _FIRST_BITS, -1, np.int64)
    values = np.zeros((1 << _FIRST_BITS, 1 + f if with_sums else 1))
    start = 0
    while start < n:
        # Rows until the table is half full, then it doubles.
        start, used = _add_rows(
            X,
            start,
            size,
            lo,
            strides,
            round_half_even,
            weights,
            with_sums,
            keys,
            values,
            shift,
        )
        if 2 * used > keys.shape[0]:
            keys, values, shift = _grow(keys, values, shift)
    occupied = np.flatnonzero(keys >= 0)
    table = values[occupied]
    return keys[occupied], table[:, 0].copy(), table[:, 1:].copy()


@numba.njit(cache=True, nogil=True)
def _add_rows(
    X,
    start,
    size,
    lo,
    strides,
    round_half_even,
    weights,
    with_sums,
    keys,
    values,
    shift,
):
    """Add rows from ``start`` on to the table until it is half full.

    Returns the next row and the slots in use.
    """
    n, f = X.shape
    weighted = weights.shape[0] > 0
    n_slots = keys.shape[0]
    mask = n_slots - 1
    used = n_slots - np.count_nonzero(keys < 0)
    for i in range(start, n):
        key = np.int64(0)
        for j in range(f):
            v = X[i, j] / size
            q = np.rint(v) if round_half_even else np.floor(v)
            key += (np.int64(q) - lo[j]) * strides[j]
        s = _slot(key, shift)
        while True:
            held = keys[s]
            if held == key:
                break
            if held < 0:
                keys[s] = key
                used += 1
                break
            s = (s + 1) & mask
        w = weights[i] if weighted else 1.0
        values[s, 0] += w
        if with_sums:
            for j in range(f):
                values[s, 1 + j] += np.float64(X[i, j]) * w
        if 2 * used > n_slots:
            return i + 1, used
    return n, used
