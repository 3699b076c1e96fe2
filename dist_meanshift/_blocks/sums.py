"""Partial mean shift sums of one data block: the map step of every iteration."""

from __future__ import annotations

import numpy as np

from . import grid, kernels
from .dense import add_partials
from .grid import GRID_MAX_FEATURES, PreparedRows, slabs

#: Center-row pairs up to which every pair is evaluated whatever the kernel
#: (a few milliseconds of numpy): sorting rows into cells, or a compiled
#: loop's first call in a process, would cost more.
DENSE_PAIRS = 1 << 20


def shift_partial_sums(
    centers, X, bandwidth, kernel, sample_weight=None, truncate=None
):
    """Kernel-weighted coordinate sums and weights of one data block.

    The mean shift of a center ``c`` is ``sum_i w_i(c) x_i / sum_i w_i(c)``;
    this returns the numerator and denominator restricted to the rows of ``X``,
    so that sums over any split of the data add up to the sums over all of it.

    When the kernel has a finite reach (the flat kernel, or a truncated
    Gaussian), rows and centers are sorted into grid cells as wide as the reach
    and each group of centers meets only the rows of its own and neighbouring
    cells (the flat kernel: through its cell index, see
    :meth:`~.kernels.base.Kernel.grid_sums`): the cost follows the pairs
    within reach, not all pairs. A few centers, or a few pairs in all (fewer
    than sorting the rows would pay for), meet every row directly; a
    truncated Gaussian still gives rows beyond its reach no weight.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
        Current positions of the centers to shift.
    X : ndarray of shape (n_samples, n_features) or PreparedRows
        One block of data rows, or the same as the kernel prepared them
        (:meth:`~.kernels.base.Kernel.prepare`, with its weights).
    bandwidth : float
        Kernel bandwidth ``h``.
    kernel : {"gaussian", "flat"} or Kernel
        See :mod:`.kernels`. ``"flat"`` weighs rows with ``||x - c|| <= h`` by 1 and others by 0;
        ``"gaussian"`` weighs every row by ``exp(-||x - c||^2 / (2 h^2))``; at
        ``h = 0`` both are the limit kernel that weighs only rows equal to ``c``.
    sample_weight : ndarray of shape (n_samples,), default=None
        Per-row weights multiplying the kernel weights.
    truncate : float, default=None
        Gaussian only: rows farther than ``truncate * h`` weigh 0.

    Returns
    -------
    sums : ndarray of shape (n_centers, n_features), float64
        Weighted coordinate sums.
    weights : ndarray of shape (n_centers,), float64
        Sums of weights (the number of rows within the bandwidth for ``"flat"``).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[0.0, 0.0], [1.0, 0.0], [5.0, 0.0]])
    >>> sums, weights = shift_partial_sums(np.zeros((1, 2)), X, 1.0, "flat")
    >>> sums / weights[:, None]
    array([[0.5, 0. ]])
    """
    kernel = kernels.get(kernel)
    centers = np.asarray(centers, dtype=np.float64)
    n_centers, n_features = centers.shape
    sums = np.zeros((n_centers, n_features))
    weights = np.zeros(n_centers)
    if n_centers == 0 or X.shape[0] == 0:
        return sums, weights
    reach = kernel.reach(bandwidth, truncate)
    few_pairs = n_centers * X.shape[0] <= DENSE_PAIRS
    few = n_centers <= kernel.grid_min_centers or few_pairs
    if isinstance(X, PreparedRows):
        # Indexed rows serve a few centers as well as many.
        if not few_pairs or X.ordered:
            return kernel.prepared_sums(centers, X, bandwidth)
        # The index's rows, in their cells' order: the sums are the same.
        return add_partials(
            *(
                kernel.all_pairs(centers, s.rows, bandwidth, reach, s.weights)
                for s in X.slabs
            )
        )
    if reach is None or reach == 0 or few:
        return kernel.all_pairs(centers, X, bandwidth, reach, sample_weight)
    summed = kernel.row_sums(centers, X, bandwidth, reach, sample_weight)
    if summed is not None:
        return summed
    if n_features > GRID_MAX_FEATURES:
        # A grid of cells as wide as the reach holds about one row per cell in
        # many dimensions and its 3^d neighbourhoods cannot be visited: every
        # pair is evaluated (a kernel may still share work between centers).
        return kernel.group_sums(centers, X, bandwidth, reach, sample_weight)
    if X.shape[0] > grid.SLAB_ROWS:
        return add_partials(
            *(
                shift_partial_sums(centers, x, bandwidth, kernel, w, truncate)
                for x, w in slabs(X, sample_weight)
            )
        )
    return kernel.grid_sums(centers, X, bandwidth, reach, sample_weight)
