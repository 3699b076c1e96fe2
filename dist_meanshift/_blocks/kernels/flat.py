"""The flat kernel: weight 1 within the bandwidth, 0 beyond (scikit-learn's).

Everything that is the flat kernel's own: its reach (the bandwidth), its
bandwidth rule (the radius itself), scikit-learn's stopping rule and final
post-processing, the number of centers from which the grid pays, and its
sums over a cell index of the rows (sorted once per fit for data in memory),
whose inner loop is compiled (:mod:`._flat_loops`).
"""

from __future__ import annotations

import numpy as np

from ..grid import GRID_MAX_FEATURES, PreparedRows, cell_index, center_groups, slabs
from .base import Kernel

#: Fine cells per axis within each coarse cell (half the bandwidth wide), by
#: number of features: a ball's edge crosses fewer rows in finer cells, but in
#: many features fine cells hold a row or none and only cost visits.
_FINE_CELLS = ((6, 2),)
_COARSE_PER_H = 2


#: Rows of one cell index at most (its int64 keys and sort orders are
#: temporaries of a few hundred MB at most).
_INDEX_ROWS = 1 << 22


def flat_prepare(X, sample_weight, bandwidth):
    """The rows of a block sorted into a two-level cell index, slab by slab.

    Cells half the bandwidth wide, each split into finer cells, with every
    cell's total weight and coordinate sums (see :func:`~..grid.cell_index`).
    """
    h = float(bandwidth)
    fine = next((f for d, f in _FINE_CELLS if X.shape[1] <= d), 1)
    return PreparedRows(
        [
            cell_index(x, w, h / _COARSE_PER_H, fine)
            for x, w in slabs(X, sample_weight, _INDEX_ROWS)
        ],
        X.shape,
    )


def flat_indexed_sums(centers, prepared, bandwidth):
    """Flat-kernel sums of many centers: exact, over the rows' cell index.

    Each center takes the aggregates of the cells wholly within its ball,
    skips the cells wholly beyond, and tests only the rows of the fine cells
    that the ball's edge crosses, with scikit-learn's own test
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
    from ._flat_loops import flat_index_sums

    h = float(bandwidth)
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    sums = np.zeros(centers.shape)
    weights = np.zeros(len(centers))
    order, bounds, lo, hi = center_groups(centers, h)
    order, bounds = order.astype(np.int64), bounds.astype(np.int64)
    reach = float(np.abs(centers).max(initial=0.0)) + h
    for index in prepared.slabs:
        ptr, cells = index.near_cells(lo - h, hi + h)
        # Bounds within `band` of h^2 are decided row by row: wider than the
        # rounding of any distance between rows and centers this far out.
        band = 1e-12 * h * (h + reach + index.scale)
        flat_index_sums(
            centers,
            bounds,
            order,
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
    return sums, weights


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

    def warm(self):
        X = np.linspace(0.0, 1.0, 64).reshape(-1, 2)
        flat_indexed_sums(X, flat_prepare(X, None, 0.5), 0.5)

    def prepare(self, X, sample_weight, bandwidth, truncate=None):
        if bandwidth == 0 or X.shape[1] > GRID_MAX_FEATURES:
            return None
        return flat_prepare(X, sample_weight, bandwidth)

    def prepared_sums(self, centers, prepared, bandwidth):
        return flat_indexed_sums(centers, prepared, bandwidth)

    def grid_sums(self, centers, X, bandwidth, reach, sample_weight):
        prepared = flat_prepare(X, sample_weight, bandwidth)
        return flat_indexed_sums(centers, prepared, bandwidth)


KERNEL = Flat()
