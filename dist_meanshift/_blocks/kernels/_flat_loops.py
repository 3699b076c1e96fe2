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
                    total += coarse_w[k]
                    for j in range(n_features):
                        acc[j] += coarse_s[k, j]
                    continue
                for f in range(coarse_fine[k], coarse_fine[k + 1]):
                    near, far = _box_distances(c, fine_coords, f, fine_side, margin)
                    if near > outer:
                        continue
                    if far <= inner:
                        total += fine_w[f]
                        for j in range(n_features):
                            acc[j] += fine_s[f, j]
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
