"""The flat kernel's compiled loop: exact sums of centers over a cell index.

Compiled by numba on first use (``cache=True``: later processes load the
machine code from ``__pycache__``); imported only when a flat fit needs it, so
that ``import dist_meanshift`` does not import numba.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _box_distances(c, coords, k, side, margin):
    """Squared distances from ``c`` to the nearest and farthest points of a cell.

    The cell is ``[coords[k] * side, (coords[k] + 1) * side]`` widened by
    ``margin`` on every side (rows snapped to cells by rounded divisions may
    lie a hair outside their cell's exact box).
    """
    near = 0.0
    far = 0.0
    for j in range(c.shape[0]):
        lo = coords[k, j] * side - margin
        hi = lo + side + 2.0 * margin
        below = lo - c[j]
        above = c[j] - hi
        if below > 0.0:
            near += below * below
        elif above > 0.0:
            near += above * above
        a = c[j] - lo
        b = hi - c[j]
        m = max(a, b)
        far += m * m
    return near, far


@numba.njit(cache=True, nogil=True)
def _add_cell(acc, cell_w, cell_s, k):
    """Add cell ``k``'s coordinate sums to ``acc``; its weight, to add to the total."""
    for j in range(acc.shape[0]):
        acc[j] += cell_s[k, j]
    return cell_w[k]


@numba.njit(cache=True, nogil=True)
def flat_index_sums(
    centers,
    group_ptr,
    group_members,
    cand_ptr,
    cand_cells,
    coarse_coords,
    coarse_side,
    coarse_fine,
    coarse_w,
    coarse_s,
    fine_coords,
    fine_side,
    fine_rows,
    fine_w,
    fine_s,
    rows,
    row_w,
    weighted,
    h2,
    band,
    margin,
    sums,
    weights,
):
    """Add the flat-kernel sums of every center over the rows of a cell index.

    For each group of centers (``group_members[group_ptr[g]:group_ptr[g + 1]]``)
    the candidate coarse cells are ``cand_cells[cand_ptr[g]:cand_ptr[g + 1]]``.
    A cell whose farthest point is surely within the bandwidth of a center adds
    its aggregates (weight and weighted coordinate sums); one whose nearest
    point is surely beyond adds nothing; any other coarse cell is looked at
    through its fine cells, and any other fine cell row by row, with the exact
    test ``sum_j (x_j - c_j)^2 <= h^2`` evaluated as scikit-learn's trees do.
    "Surely" keeps ``band`` between a cell's bound and ``h^2``, wider than the
    rounding of any row's distance within it.
    """
    n_features = centers.shape[1]
    inner = h2 - band
    outer = h2 + band
    acc = np.empty(n_features)
    for g in range(group_ptr.shape[0] - 1):
        for m in range(group_ptr[g], group_ptr[g + 1]):
            i = group_members[m]
            c = centers[i]
            for j in range(n_features):
                acc[j] = 0.0
            total = 0.0
            for q in range(cand_ptr[g], cand_ptr[g + 1]):
                k = cand_cells[q]
                near, far = _box_distances(c, coarse_coords, k, coarse_side, margin)
                if near > outer:
                    continue
                if far <= inner:
                    total += _add_cell(acc, coarse_w, coarse_s, k)
                    continue
                for f in range(coarse_fine[k], coarse_fine[k + 1]):
                    near, far = _box_distances(c, fine_coords, f, fine_side, margin)
                    if near > outer:
                        continue
                    if far <= inner:
                        total += _add_cell(acc, fine_w, fine_s, f)
                        continue
                    for r in range(fine_rows[f], fine_rows[f + 1]):
                        d = 0.0
                        for j in range(n_features):
                            t = rows[r, j] - c[j]
                            d += t * t
                        if d <= h2:
                            if weighted:
                                wr = row_w[r]
                                total += wr
                                for j in range(n_features):
                                    acc[j] += wr * rows[r, j]
                            else:
                                total += 1.0
                                for j in range(n_features):
                                    acc[j] += rows[r, j]
            weights[i] += total
            for j in range(n_features):
                sums[i, j] += acc[j]


@numba.njit(cache=True, nogil=True)
def fine_cells(X, fine_side, fine):
    """Every row's fine cell, ``floor(x / fine_side)`` per feature, and the
    lowest and highest coarse cell (``fine`` fine cells wide) per feature."""
    n, n_features = X.shape
    cells = np.empty((n, n_features), dtype=np.int64)
    lo = np.full(n_features, np.iinfo(np.int64).max)
    hi = np.full(n_features, np.iinfo(np.int64).min)
    for i in range(n):
        for j in range(n_features):
            f = np.int64(np.floor(X[i, j] / fine_side))
            cells[i, j] = f
            c = f // fine
            lo[j] = min(lo[j], c)
            hi[j] = max(hi[j], c)
    return cells, lo, hi


@numba.njit(cache=True, nogil=True)
def cell_sort_keys(cells, fine, coarse_keys, lo, strides):
    """One int64 key per row ordering rows by coarse cell, then fine cell.

    The coarse key is mixed-radix over ``lo`` and ``strides`` (or given, in
    ``coarse_keys``, when that grid is too large to number); the fine cell
    within it adds ``sum_j (f_j - fine * c_j) * fine^j``.
    """
    n, n_features = cells.shape
    per_coarse = fine**n_features
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        coarse = 0
        local = 0
        step = 1
        for j in range(n_features):
            c = cells[i, j] // fine
            coarse += (c - lo[j]) * strides[j]
            local += (cells[i, j] - fine * c) * step
            step *= fine
        if coarse_keys.shape[0]:
            coarse = coarse_keys[i]
        keys[i] = coarse * per_coarse + local
    return keys


@numba.njit(cache=True, nogil=True)
def gather_cells(X, weights, cells, keys, order, starts, fine):
    """Rows in cell order with each fine and coarse cell's aggregates.

    Returns the sorted rows (float64) and weights, each fine cell's first
    row, coordinates, weight and coordinate sums, and each coarse cell's
    first fine cell, coordinates, weight and coordinate sums.
    """
    n, n_features = X.shape
    n_fine = starts.shape[0]
    per_coarse = fine**n_features
    rows = np.empty((n, n_features))
    row_w = np.empty(n if weights.shape[0] else 0)
    fine_rows = np.empty(n_fine + 1, dtype=np.int64)
    fine_coords = np.empty((n_fine, n_features), dtype=np.int64)
    fine_w = np.zeros(n_fine)
    fine_s = np.zeros((n_fine, n_features))
    coarse_first = np.empty(n_fine + 1, dtype=np.int64)
    n_coarse = 0
    previous = np.int64(-1)
    for g in range(n_fine):
        start = starts[g]
        stop = starts[g + 1] if g + 1 < n_fine else n
        fine_rows[g] = start
        first = order[start]
        for j in range(n_features):
            fine_coords[g, j] = cells[first, j]
        coarse = keys[first] // per_coarse
        if g == 0 or coarse != previous:
            coarse_first[n_coarse] = g
            n_coarse += 1
            previous = coarse
        for r in range(start, stop):
            i = order[r]
            w = weights[i] if weights.shape[0] else 1.0
            if weights.shape[0]:
                row_w[r] = w
            fine_w[g] += w
            for j in range(n_features):
                x = np.float64(X[i, j])
                rows[r, j] = x
                fine_s[g, j] += w * x
    fine_rows[n_fine] = n
    coarse_fine = coarse_first[: n_coarse + 1].copy()
    coarse_fine[n_coarse] = n_fine
    coarse_coords = np.empty((n_coarse, n_features), dtype=np.int64)
    coarse_w = np.zeros(n_coarse)
    coarse_s = np.zeros((n_coarse, n_features))
    for k in range(n_coarse):
        for j in range(n_features):
            coarse_coords[k, j] = fine_coords[coarse_fine[k], j] // fine
        for g in range(coarse_fine[k], coarse_fine[k + 1]):
            coarse_w[k] += fine_w[g]
            for j in range(n_features):
                coarse_s[k, j] += fine_s[g, j]
    return (
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
    )
