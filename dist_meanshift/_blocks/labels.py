"""Labels: the nearest center of every row, exact whatever the data's units."""

from __future__ import annotations

import numpy as np

from .dense import BLOCK_ELEMENTS, products_by_block, squares_in_order

#: Blocks of at least this many rows are labelled by a compiled loop (one
#: pass over the rows: some 11 ns a row for 8 centers in 3 features, against
#: numpy's 38), when each row meets at most ``_COMPILED_MAX_TERMS`` center
#: coordinates; smaller blocks never load numba (see ``_loops``).
COMPILED_MIN_ROWS = 1 << 17
#: Beyond this many center coordinates per row, numpy's matrix product
#: (BLAS) costs less per pair than a loop over the differences.
_COMPILED_MAX_TERMS = 1024
#: Blocks of at most this many features are labelled through a grid over
#: their range (:func:`_label_grid`): most rows take their cell's label.
_GRID_MAX_FEATURES = 3
_GRID_CELLS = 1 << 12
#: Every this many rows are sampled to see whether the grid pays: where
#: fewer than 3 in 4 rows take their cell's label, it does not.
_SAMPLE_STEP = 256
#: Relative rounding allowed for squared distances, far beyond a float64
#: sum of a few squared differences (some 1e-15 of it).
_MARGIN = 1e-9


def assign_labels(X, centers, bandwidth=None):
    """Label every row with its nearest center, or -1 when out of reach.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_centers, n_features), n_centers >= 1
    bandwidth : float, default=None
        When given, rows farther than ``bandwidth`` from every center (distance
        ``> bandwidth``) get the label -1, as scikit-learn's
        ``cluster_all=False``. Rows within rounding of the bandwidth are
        settled with the exact difference ``x - c``.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    """
    X = np.asarray(X)
    n_centers, n_features = np.shape(centers)
    if (
        X.shape[0] >= COMPILED_MIN_ROWS
        and n_centers * n_features <= _COMPILED_MAX_TERMS
        and X.dtype in (np.float32, np.float64)
    ):
        from ._loops import column_ranges, nearest_labels, nearest_labels_by_cell

        labels = np.empty(X.shape[0], dtype=np.int64)
        h2 = -1.0 if bandwidth is None else float(bandwidth) ** 2
        centers = np.asarray(centers, dtype=np.float64)
        centers_t = np.ascontiguousarray(centers.T)
        grid = None
        if n_features <= _GRID_MAX_FEATURES:
            lo, hi = column_ranges(X)
            grid = _label_grid(lo, hi, centers, h2, X.shape[0])
        if grid is not None and _settled_share(X[::_SAMPLE_STEP], *grid) < 0.75:
            # Rows the grid leaves to every center cost more than the plain
            # loop's (the cell, then a branch gone the other way).
            grid = None
        if grid is None:
            nearest_labels(X, centers_t, h2, labels)
        else:
            nearest_labels_by_cell(X, centers_t, h2, *grid, labels)
        return labels
    labels, d2, err = nearest_center(X, centers)
    if bandwidth is not None:
        h2 = bandwidth * bandwidth
        centers = np.asarray(centers, dtype=np.float64)
        unsure = np.flatnonzero(np.abs(d2 - h2) <= 2 * err)
        if len(unsure):
            diff = centers[labels[unsure]] - np.asarray(X[unsure], dtype=np.float64)
            d2[unsure] = squares_in_order(diff)
        labels[d2 > h2] = -1
    return labels


def _label_grid(lo, hi, centers, h2, n_rows):
    """A grid over a block's range whose cells settle most rows' labels.

    Up to ``_GRID_CELLS`` cells (fewer for many centers or few rows), about
    as wide in every feature. For each cell and center, the least and most
    squared distance from the center to the cell's box, the box widened
    beyond the rounding of a row's cell index. A cell's sole candidate is the
    center of least most-distance when every other center's least distance
    exceeds it beyond the rounding of the rows' distances (a relative
    ``_MARGIN``): every row of the cell is then nearer to it than to any
    other, with no tie. Such a cell's rows are surely within ``sqrt(h2)`` of
    it (``state`` 1; every row when ``h2 < 0``), surely beyond (2), or
    decided by the row's own distance to it (0).

    Returns
    -------
    (lo, inv, dims, sole, state) or None
        The arguments of :func:`~._loops.nearest_labels_by_cell`; None where
        a grid would not pay (too few cells).
    """
    k, f = centers.shape
    n_cells = min(_GRID_CELLS, (1 << 20) // k, n_rows // 16)
    lo = lo.astype(np.float64)
    span = hi.astype(np.float64) - lo
    if n_cells < 64 or not np.all(np.isfinite(span)):
        return None
    wide = span > 0
    side = (np.prod(span[wide]) / n_cells) ** (1 / max(1, wide.sum()))
    dims = np.where(wide, np.ceil(span / max(side, np.finfo(float).tiny)), 1)
    dims = np.clip(dims, 1, n_cells).astype(np.int64)
    if np.prod(dims.astype(np.float64)) > 2 * n_cells:
        return None
    inv = np.where(wide, dims / np.where(wide, span, 1), 0.0)
    # A row's cell index (x - lo) * inv, and the edges lo + q * width, round
    # by a few ulps of |lo| + span: widen every box by 64 of them.
    pad = 64 * np.finfo(np.float64).eps * (np.abs(lo) + np.abs(hi) + span)
    least = most = 0.0
    for j in range(f):
        q = np.arange(dims[j], dtype=np.float64)
        width = span[j] / dims[j]
        edge_lo = lo[j] + q * width - pad[j]
        edge_hi = lo[j] + (q + 1) * width + pad[j]
        c = centers[:, j]
        below = edge_lo[:, None] - c
        above = c - edge_hi[:, None]
        a = np.maximum(np.maximum(below, above), 0.0) ** 2
        b = np.maximum(np.abs(below), np.abs(above)) ** 2
        shape = [1] * (f + 1)
        shape[j] = dims[j]
        shape[f] = k
        least = least + a.reshape(shape)
        most = most + b.reshape(shape)
    least = least.reshape(-1, k)
    most = most.reshape(-1, k)
    best = np.argmin(most, axis=1)
    cells = np.arange(len(best))
    bound = most[cells, best] * (1 + _MARGIN)
    if k > 1:
        least_other = least.copy()
        least_other[cells, best] = np.inf
        clear = least_other.min(axis=1) > bound
    else:
        clear = np.ones(len(best), bool)
    sole = np.where(clear, best, -1).astype(np.int64)
    if h2 < 0:
        state = np.ones(len(best), np.int8)
    else:
        state = np.zeros(len(best), np.int8)
        state[bound <= h2 * (1 - _MARGIN)] = 1
        state[least[cells, best] > h2 * (1 + _MARGIN)] = 2
    return lo, inv, dims, sole, state


def _settled_share(X, lo, inv, dims, sole, state):
    """The share of rows of ``X`` whose cell of the grid settles their label,
    each row's cell found as the labelling loop finds it."""
    from ._loops import settled_share

    return settled_share(X, lo, inv, dims, sole)


def nearest_center(X, centers):
    """Index of and squared distance to the nearest center of every row.

    One matrix product ``[-2c, 2, |c|^2 + m] . [x, |x|^2, 1]`` (the rows of
    :func:`~.kernel.products_by_block`) gives ``|x - c|^2 + o`` for every
    pair, around the centers' mean, in float64, with a per-row offset
    ``o = |x|^2 + m`` (``m`` the largest ``|c|^2``) as large as the terms the
    product adds up: every value is positive whatever the data's units or
    offset, and its rounding is a fixed fraction of it. Positive doubles order
    like their bits, so the center's index is written into the lowest mantissa
    bits and one minimum over the centers gives both the distance and its
    index. Rows where another center comes within that rounding of the nearest
    are settled again with the exact differences ``x - c`` (ties to the lowest
    index, as scikit-learn's ``argmin``).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_centers, n_features), n_centers >= 1

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    d2 : ndarray of shape (n_samples,), float64
        Squared distances to the nearest center.
    err : ndarray of shape (n_samples,), float64
        A bound on the rounding error of ``d2`` (0 where it was recomputed).
    """
    centers = np.asarray(centers, dtype=np.float64)
    k, f = centers.shape
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    d2min = np.empty(n, dtype=np.float64)
    err = np.empty(n, dtype=np.float64)
    index_bits = max(1, (k - 1).bit_length())
    clear = np.int64(~((1 << index_bits) - 1))
    tags = np.arange(k, dtype=np.int64)[:, None]
    # Relative rounding of a value: the index bits, plus the products' sum.
    rel = 2.0 ** (index_bits - 51) + 8 * (f + 4) * np.finfo(np.float64).eps
    origin = centers.mean(axis=0)
    c0 = centers - origin
    cc = np.einsum("ij,ij->i", c0, c0)
    m = float(cc.max())
    A = np.empty((k, f + 2))
    A[:, :f] = -2 * c0
    A[:, f] = 2
    A[:, f + 1] = cc + m
    step = max(1, min(n, max(1024, BLOCK_ELEMENTS // k)))
    unsure = []
    for start, _, B, d in products_by_block(A, X, origin, step):
        rows = slice(start, start + B.shape[0])
        keys = d.view(np.int64)
        keys &= clear
        keys |= tags
        low = np.min(keys, axis=0)
        labels[rows] = low & ~clear
        low &= clear
        value = low.view(np.float64)
        # d holds |x - c|^2 + o with o = |x0|^2 + m, the row's offset.
        np.subtract(value, B[:, f] + m, out=d2min[rows])
        np.multiply(value, rel, out=err[rows])
        if k > 1:
            # Another center within twice the rounding: the order is unsure.
            bound = (value * (1 + 2 * rel)).view(np.int64) | ~clear
            close = np.count_nonzero(keys <= bound, axis=0) > 1
            unsure.append(start + np.flatnonzero(close))
    if unsure:
        rows = np.concatenate(unsure)
        if len(rows):
            labels[rows], d2min[rows] = _exact_nearest(X[rows], centers)
            err[rows] = 0
    return labels, d2min, err


def _exact_nearest(X, centers):
    """Nearest center by the differences ``x - c``; ties to the lowest index."""
    X = np.asarray(X, dtype=np.float64)
    labels = np.empty(len(X), dtype=np.int64)
    d2 = np.empty(len(X))
    step = max(1, BLOCK_ELEMENTS // max(1, len(centers) * centers.shape[1]))
    for start in range(0, len(X), step):
        diff = X[start : start + step, None, :] - centers[None]
        dist = squares_in_order(diff)
        labels[start : start + step] = np.argmin(dist, axis=1)
        d2[start : start + step] = dist.min(axis=1)
    return labels, d2
