"""The mathematics of mean shift as pure numpy functions over one block.

Every function here works on in-memory numpy arrays only: one block of centers
against one block of data rows. The Dask driver (``_driver.py``) maps them over
chunks and reduces their results; the estimator never calls them directly.
Nothing in this module imports dask.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = [
    "KERNELS",
    "NonFiniteValues",
    "add_partials",
    "assign_labels",
    "bin_counts",
    "cell_sums",
    "combine_bin_counts",
    "combine_cell_sums",
    "kernel_reach",
    "local_moments",
    "merge_close_centers",
    "nearest_center",
    "order_by_intensity",
    "require_finite",
    "shift_partial_sums",
    "suppress_near_duplicates",
]

KERNELS = ("gaussian", "flat")

# Rows x centers elements materialised at once inside a block function: 2**17
# values (1 MiB in float64) per temporary stay near the CPU caches and keep a
# task's memory small whatever the chunk size.
_BLOCK_ELEMENTS = 1 << 17
# Rows handled at once by the grid and binning functions: their int64 cell
# coordinates, sort orders and copies stay within a few tens of MB per task even
# when a chunk holds millions of rows (workers may have 512 MiB).
_SLAB_ROWS = 1 << 18
# Below these numbers of centers, sorting the rows into grid cells costs more
# than evaluating every pair (measured on blobs in 3-D).
_GRID_MIN_CENTERS = {"flat": 32, "gaussian": 16}
# Beyond this many features the grid of reach-wide cells is not used (see
# shift_partial_sums).
GRID_MAX_FEATURES = 16
# Centers per reach-wide cell from which groups of centers keep that width
# (below it, groups twice as wide cost less; from a per-row cost model of
# 27 vs 8 visits against 27 vs 64 cells of pairs).
_DENSE_GROUP = 4
# Rows are sorted into cells this many times finer than the kernel's reach.
_ROW_CELLS_PER_REACH = 2
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
# Rows binned at once (cell tables): their snapped columns, keys, sort and
# cell numbers take about 50 bytes a row (3 features), some 100 MB.
_TABLE_ROWS = 1 << 21
# Cell tables over grids of at most this many cells (and not much more than
# rows) count every cell in place instead of sorting: 32 MB per float64 count.
_DENSE_CELLS = 1 << 22
# Lowest exponent given to exp() by the Gaussian kernel (see _dense_sums).
_EXP_FLOOR = -80.0


class NonFiniteValues(ValueError):
    """A block of data holds NaN or infinity (see :func:`require_finite`)."""


def require_finite(X, first_row=0):
    """``X`` itself, once checked to hold no NaN or infinity.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    first_row : int, default=0
        Row number of ``X[0]`` in the whole dataset, for the message.

    Returns
    -------
    X : ndarray

    Raises
    ------
    NonFiniteValues
        Naming how many values of the block are not finite and where the first is.
    """
    if X.dtype.kind != "f" or np.isfinite(X).all():
        return X
    bad = ~np.isfinite(X)
    row, col = np.argwhere(bad)[0]
    raise NonFiniteValues(
        f"Input contains {int(bad.sum())} NaN or infinite value(s) in rows "
        f"{first_row}-{first_row + len(X) - 1}, the first at row {first_row + row}, "
        f"column {col}. Remove or impute them before clustering."
    )


def kernel_reach(bandwidth, kernel, truncate=None):
    """Distance beyond which a kernel gives no weight, or None if unbounded.

    Parameters
    ----------
    bandwidth : float
    kernel : {"gaussian", "flat"}
    truncate : float, default=None
        Gaussian only: ignore points farther than ``truncate * bandwidth``
        (relative weight below ``exp(-truncate**2 / 2)``); None is exact.

    Returns
    -------
    float or None
    """
    if kernel == "flat" or bandwidth == 0:
        return bandwidth
    return None if truncate is None else truncate * bandwidth


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
    cells: the cost follows the pairs within reach, not all pairs. A few
    centers (fewer than sorting the rows would pay for) meet every row
    directly; a truncated Gaussian still gives rows beyond its reach no weight.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
        Current positions of the centers to shift.
    X : ndarray of shape (n_samples, n_features)
        One block of data rows.
    bandwidth : float
        Kernel bandwidth ``h``.
    kernel : {"gaussian", "flat"}
        ``"flat"`` weighs rows with ``||x - c|| <= h`` by 1 and others by 0;
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
    centers = np.asarray(centers, dtype=np.float64)
    n_centers, n_features = centers.shape
    sums = np.zeros((n_centers, n_features))
    weights = np.zeros(n_centers)
    if n_centers == 0 or X.shape[0] == 0:
        return sums, weights
    reach = kernel_reach(bandwidth, kernel, truncate)
    if reach is None or reach == 0 or n_centers <= _GRID_MIN_CENTERS[kernel]:
        return _dense_sums(centers, X, bandwidth, kernel, reach, sample_weight)
    if n_features > GRID_MAX_FEATURES:
        # A grid of cells as wide as the reach holds about one row per cell in
        # many dimensions and its 3^d neighbourhoods cannot be visited: every
        # pair is evaluated (the flat kernel still settles rows shared by
        # close centers at once).
        if kernel == "flat":
            return _flat_shared_sums(centers, X, bandwidth, sample_weight)
        return _dense_sums(centers, X, bandwidth, kernel, reach, sample_weight)
    if X.shape[0] > _SLAB_ROWS:
        return add_partials(
            *(
                shift_partial_sums(centers, x, bandwidth, kernel, w, truncate)
                for x, w in _slabs(X, sample_weight)
            )
        )
    order, groups = _grid_groups(centers, X, reach)
    # Rows sorted by cell: the rows around a group of centers are a few slices.
    X = np.asarray(X)[order]
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight)[order]
    for members, runs in groups:
        # One block per group: a copy of a few slices costs less than a call
        # per slice.
        xs = _take_runs(X, runs)
        sw = None if sample_weight is None else _take_runs(sample_weight, runs)
        if kernel == "flat":
            s, w = _flat_shared_sums(centers[members], xs, bandwidth, sw)
        else:
            s, w = _dense_sums(centers[members], xs, bandwidth, kernel, reach, sw)
        sums[members] += s
        weights[members] += w
    return sums, weights


def add_partials(*partials):
    """Add tuples of arrays element-wise: the reduction step.

    Parameters
    ----------
    *partials : tuple of ndarray
        Results of :func:`shift_partial_sums` (or :func:`local_moments`) for
        the same centers.

    Returns
    -------
    tuple of ndarray
    """
    total = tuple(a.copy() for a in partials[0])
    for part in partials[1:]:
        for acc, a in zip(total, part, strict=True):
            acc += a
    return total


def local_moments(centers, X, bandwidth, sample_weight=None):
    """Gaussian weights and the weighted moments of the rows about each center.

    ``m(c) = c + first / weight`` is the mean shift of ``c``, and the Jacobian
    of the mean map there is ``S / h^2`` with ``S = second / weight -
    (first / weight)(first / weight)^T``, the kernel-weighted covariance: ``c``
    is a mode of the density where ``m(c) = c`` and every eigenvalue of
    ``S / h^2`` is below 1, a saddle where one exceeds 1. Differences ``x - c``
    are formed exactly (in float64), for the few centers that need it.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
    X : ndarray of shape (n_samples, n_features)
    bandwidth : float
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    weight : ndarray of shape (n_centers,)
    first : ndarray of shape (n_centers, n_features)
    second : ndarray of shape (n_centers, n_features, n_features)
    """
    centers = np.asarray(centers, dtype=np.float64)
    k, f = centers.shape
    weight, first, second = np.zeros(k), np.zeros((k, f)), np.zeros((k, f, f))
    step = max(1, _BLOCK_ELEMENTS // max(1, f))
    for start in range(0, X.shape[0], step):
        xb = np.asarray(X[start : start + step], dtype=np.float64)
        sw = None if sample_weight is None else sample_weight[start : start + step]
        for i, c in enumerate(centers):
            diff = xb - c
            w = np.exp(-np.einsum("ij,ij->i", diff, diff) / (2 * bandwidth**2))
            if sw is not None:
                w *= sw
            weight[i] += w.sum()
            first[i] += w @ diff
            second[i] += (diff * w[:, None]).T @ diff
    return weight, first, second


def nearest_center(X, centers):
    """Index of and squared distance to the nearest center of every row.

    One matrix product ``[x, 1, 2|x|^2 + m] . [-2c, |c|^2, 1]`` gives
    ``|x - c|^2 + o`` for every pair, around the centers' mean, in float64,
    with a per-row offset ``o = |x|^2 + m`` (``m`` the largest ``|c|^2``) as
    large as the terms the product adds up: every value is positive whatever
    the data's units or offset, and its rounding is a fixed fraction of it.
    Positive doubles order like their bits, so the center's index is written
    into the lowest mantissa bits and one minimum over the centers gives both
    the distance and its index. Rows where another center comes within that
    rounding of the nearest are settled again with the exact differences
    ``x - c`` (ties to the lowest index, as scikit-learn's ``argmin``).

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
    A = np.empty((k, f + 2))
    A[:, :f] = -2 * c0
    A[:, f] = np.einsum("ij,ij->i", c0, c0)
    A[:, f + 1] = 1
    m = float(A[:, f].max())
    step = max(1, min(n, max(1024, _BLOCK_ELEMENTS // k)))
    # Reused block after block (see _dense_sums on MALLOC_TRIM_THRESHOLD_).
    B_buf = np.empty((step, f + 2))
    B_buf[:, f] = 1
    D_buf = np.empty((k, step))
    low_buf = np.empty(step, dtype=np.int64)
    off_buf = np.empty(step)
    unsure = []
    for start in range(0, n, step):
        xb = X[start : start + step]
        rows = xb.shape[0]
        B = B_buf[:rows]
        x0 = B[:, :f]
        np.subtract(xb, origin, out=x0, casting="unsafe")
        off = off_buf[:rows]
        np.einsum("ij,ij->i", x0, x0, out=off)
        off += m
        np.multiply(off, 2, out=B[:, f + 1])
        B[:, f + 1] -= m  # 2|x0|^2 + m: the product is |x - c|^2 + off
        keys = np.matmul(A, B.T, out=D_buf[:, :rows]).view(np.int64)
        keys &= clear
        keys |= tags
        low = np.min(keys, axis=0, out=low_buf[:rows])
        np.bitwise_and(low, ~clear, out=labels[start : start + rows])
        low &= clear
        value = low.view(np.float64)
        np.subtract(value, off, out=d2min[start : start + rows])
        np.multiply(value, rel, out=err[start : start + rows])
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
    step = max(1, _BLOCK_ELEMENTS // max(1, len(centers) * centers.shape[1]))
    for start in range(0, len(X), step):
        diff = X[start : start + step, None, :] - centers[None]
        dist = np.einsum("ijk,ijk->ij", diff, diff)
        labels[start : start + step] = np.argmin(dist, axis=1)
        d2[start : start + step] = dist.min(axis=1)
    return labels, d2


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
    labels, d2, err = nearest_center(X, centers)
    if bandwidth is not None:
        h2 = bandwidth * bandwidth
        centers = np.asarray(centers, dtype=np.float64)
        unsure = np.flatnonzero(np.abs(d2 - h2) <= 2 * err)
        if len(unsure):
            diff = centers[labels[unsure]] - np.asarray(X[unsure], dtype=np.float64)
            d2[unsure] = np.einsum("ij,ij->i", diff, diff)
        labels[d2 > h2] = -1
    return labels


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
    parts = [
        _cell_table(x, bin_size, np.round, w)
        for x, w in _slabs(X, sample_weight, _TABLE_ROWS)
    ]
    return combine_bin_counts(*parts) if len(parts) > 1 else parts[0]


def cell_sums(X, cell_size, sample_weight=None):
    """Grid cells of side ``cell_size``: their weights and coordinate sums.

    A row falls in the cell ``floor(x / cell_size)``. The weighted mean of a
    cell's rows stands for them all in binned mean shift.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    cell_size : float, > 0
    sample_weight : ndarray of shape (n_samples,), default=None

    Returns
    -------
    cells : ndarray of shape (n_cells, n_features), int64
    counts : ndarray of shape (n_cells,), float64
        Total weight of the rows in each cell.
    sums : ndarray of shape (n_cells, n_features), float64
        Weighted coordinate sums of the rows in each cell.
    """
    parts = [
        _cell_table(x, cell_size, np.floor, w, with_sums=True)
        for x, w in _slabs(X, sample_weight, _TABLE_ROWS)
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
    cells = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    sums = np.concatenate([p[2] for p in parts])
    if len(cells) == 0:
        return cells, counts, sums
    cells, total, summed = _sum_by_row(cells, counts, sums)
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
    cells = np.concatenate([p[0] for p in parts])
    counts = np.concatenate([p[1] for p in parts])
    if cells.shape[0] == 0:
        return cells, counts
    return _sum_by_row(cells, counts)


def merge_close_centers(centers, multiplicity, radius):
    """Merge centers that lie within ``radius`` of each other.

    Centers are merged by connected components of the graph joining every pair
    at distance ``<= radius``, so the result does not depend on the order of the
    centers. Each component becomes the multiplicity-weighted mean of its
    members.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
    multiplicity : ndarray of shape (n_centers,)
        How many seeds each center stands for.
    radius : float

    Returns
    -------
    component : ndarray of shape (n_centers,), int64
        Index of the merged center each input center went to; merged centers
        are numbered in the order of their first member.
    merged : ndarray of shape (n_components, n_features), float64
    merged_multiplicity : ndarray of shape (n_components,)
    """
    n = centers.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros((0, centers.shape[1])), multiplicity
    component = _radius_components(np.asarray(centers, dtype=np.float64), radius)
    # Renumber components by first member so that the output order is that of
    # the input, whatever numbering the graph routine chose.
    _, first = np.unique(component, return_index=True)
    renumber = np.empty(len(first), dtype=np.int64)
    renumber[np.argsort(np.argsort(first))] = np.arange(len(first))
    component = renumber[component]
    mult = np.bincount(component, weights=multiplicity)
    merged = np.zeros((len(first), centers.shape[1]))
    np.add.at(merged, component, centers * multiplicity[:, None])
    merged /= mult[:, None]
    return component.astype(np.int64), merged, mult


def _radius_components(points, radius):
    """Connected components of the graph joining points at most ``radius`` apart.

    Memory stays close to linear in the points however crowded they are (a
    list of all pairs would not: 16,001 stopped centers near a few modes make
    25.6 million). Points are gathered into grid cells of diagonal ``radius``,
    whose members are all joined; two cells are joined when some pair of their
    members is within ``radius``, checked exactly, and only for cells whose
    centers are near enough (found block by block with a tree).
    """
    n, d = points.shape
    lo = points.min(axis=0)
    side = radius / np.sqrt(d) * (1 - 1e-9)
    span = float((points.max(axis=0) - lo).max()) / side if side > 0 else np.inf
    if span < 2.0**50:
        cells = np.floor((points - lo) / side)
        keys, cell_of = np.unique(cells, axis=0, return_inverse=True)
        anchors = lo + (keys + 0.5) * side
        half_diagonal = 0.5 * side * np.sqrt(d)
    else:  # too fine a grid for float64 cell numbers: each point its own cell
        cell_of = np.arange(n)
        anchors = points
        half_diagonal = 0.0
    cell_of = cell_of.ravel()
    n_cells = len(anchors)
    order = np.argsort(cell_of, kind="stable")
    starts = np.searchsorted(cell_of[order], np.arange(n_cells + 1))
    sizes = np.diff(starts)
    reach = (radius + 2 * half_diagonal) * (1 + 1e-9)
    tree = cKDTree(anchors)
    parent = list(range(n_cells))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges_a, edges_b = [], []
    block = max(1, (1 << 20) // max(1, n_cells))
    for start in range(0, n_cells, block):
        near = tree.query_ball_point(anchors[start : start + block], reach)
        counts = np.fromiter(map(len, near), dtype=np.int64, count=len(near))
        a = np.repeat(np.arange(start, start + len(near)), counts)
        b = np.fromiter(itertools.chain.from_iterable(near), np.int64, counts.sum())
        keep = a < b
        a, b = a[keep], b[keep]
        single = (sizes[a] == 1) & (sizes[b] == 1)
        pa, pb = points[order[starts[a[single]]]], points[order[starts[b[single]]]]
        close = np.einsum("ij,ij->i", pa - pb, pa - pb) <= radius * radius
        edges_a.append(a[single][close])
        edges_b.append(b[single][close])
        for i, j in zip(a[~single].tolist(), b[~single].tolist(), strict=True):
            ri, rj = root(i), root(j)
            if ri == rj:
                continue
            mi = points[order[starts[i] : starts[i + 1]]]
            mj = points[order[starts[j] : starts[j + 1]]]
            dist, _ = cKDTree(mj).query(mi, distance_upper_bound=radius * (1 + 1e-12))
            if np.any(dist <= radius):
                parent[ri] = rj
                edges_a.append(np.array([i]))
                edges_b.append(np.array([j]))
    a, b = np.concatenate(edges_a), np.concatenate(edges_b)
    graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(n_cells, n_cells))
    _, cell_component = connected_components(graph, directed=False)
    return cell_component[cell_of]


def order_by_intensity(centers, intensity):
    """Order centers by decreasing intensity, ties by decreasing coordinates.

    This is scikit-learn's ``sorted(..., key=lambda t: (t[1], t[0]),
    reverse=True)`` over ``(center tuple, intensity)`` pairs, as exact
    arithmetic would sort them: coordinates are compared on a grid of
    ``1e-9`` of their largest magnitude, so that two coordinates equal but for
    rounding (``1/85`` summed in another order) do not decide a tie of
    intensities; the next coordinate does. (scikit-learn compares the rounded
    values: on ``load_digits`` at bandwidth 25 that once picked another of
    three centers of equal intensity; exact arithmetic picks scikit-learn's.)

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
    intensity : ndarray of shape (n_centers,)

    Returns
    -------
    order : ndarray of shape (n_centers,), int64
    """
    scale = float(np.abs(centers).max()) if centers.size else 0.0
    grid = np.round(centers / (1e-9 * scale)) if scale > 0 else centers
    keys = [grid[:, j] for j in range(centers.shape[1] - 1, -1, -1)]
    keys.append(intensity)
    return np.lexsort(keys)[::-1].astype(np.int64)


def suppress_near_duplicates(centers, radius):
    """scikit-learn's post-processing: drop centers near a stronger one.

    Walking the centers in the given order (strongest first), every center not
    yet suppressed suppresses all others within ``radius`` (inclusive).

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
        Centers ordered by decreasing intensity.
    radius : float

    Returns
    -------
    keep : ndarray of shape (n_centers,), bool
    """
    keep = np.ones(centers.shape[0], dtype=bool)
    tree = cKDTree(centers)
    # Only the centers still kept ask for their neighbours, one at a time:
    # memory stays linear however crowded the centers are.
    for i in range(len(centers)):
        if keep[i]:
            keep[tree.query_ball_point(centers[i], radius)] = False
            keep[i] = True
    return keep


def _cell_table(X, size, snap, sample_weight=None, with_sums=False):
    """Occupied cells ``snap(x / size)`` of a block, their weights and sums.

    The division is done in the data's precision (as scikit-learn's bin
    seeding does), in float64 when float32 could not tell cells apart. Each
    row gets one int64 key (mixed radix over the block's range of cells,
    ordered like the cells). When that range holds few cells (at most
    ``_DENSE_CELLS``, and not many more than rows), weights and sums are
    bincounts over every cell of it by key; otherwise one sort
    (:func:`_sorted_runs`) numbers the occupied cells first.

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
    # Few, reused temporaries: in dask workers (MALLOC_TRIM_THRESHOLD_ set by
    # the nanny) every fresh array this size is mapped and faulted in anew.
    work = np.float32 if X.dtype == np.float32 else np.float64
    columns = _snapped_columns(X, size, snap, work)
    lo, span = _cell_range(columns)
    if work == np.float32 and max(-lo.min(), (lo + span - 1).max()) >= 2**22:
        # float32 could not tell such cells apart: divide in float64.
        columns = _snapped_columns(X, size, snap, np.float64)
        lo, span = _cell_range(columns)
    keys = _cell_keys(columns, (lo, span))
    slots = _n_cells(span)
    w = None if sample_weight is None else np.asarray(sample_weight, np.float64)
    # numpy unravels indices over at most 32 dimensions (64 from numpy 2).
    if n_features <= 32 and slots <= min(_DENSE_CELLS, max(2 * n, _DENSE_CELLS >> 6)):
        n_slots = int(slots)
        # A small grid is counted in place, every cell of it, with no sort
        # (1.3-3x faster on 2M rows in cells of h/10 to h): rows are summed by key.
        del columns
        cell_of = keys
        in_cell = np.bincount(keys, minlength=n_slots)
        occupied = np.flatnonzero(in_cell)
        cells = np.stack(np.unravel_index(occupied, tuple(span)), axis=1) + lo
        counts = in_cell if w is None else np.bincount(keys, w, minlength=n_slots)
    else:
        order, starts = _sorted_runs(keys)
        firsts = order[starts]
        cells = np.stack([c[firsts] for c in columns], axis=1).astype(np.int64)
        del columns
        # The cell number of every row, in row order: sums are then bincounts
        # reading the rows in place (a gather of rows by cell costs twice that).
        run = np.zeros(n, dtype=np.int64)
        run[starts[1:]] = 1
        np.cumsum(run, out=run)
        cell_of = keys  # reused: the cell number of each row, in row order
        cell_of[order] = run
        n_slots = len(starts)
        occupied = slice(None)
        counts = np.bincount(cell_of, weights=w, minlength=n_slots)
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


def _snapped_columns(X, size, snap, work):
    """``snap(x / size)`` of every column of X, computed in ``work`` precision."""
    columns = []
    for j in range(X.shape[1]):
        column = X[:, j].astype(work)
        np.divide(column, work(size), out=column)
        columns.append(snap(column, out=column))
    return columns


def _sum_by_row(rows, weights, values=None):
    """Distinct rows (lexicographic order) with the summed weights of each.

    With ``values`` of shape (n_rows, k), their per-row sums are returned too.
    One sort of one int64 key per row, then sums over the runs of equal keys,
    column by column.
    """
    keys = _cell_keys(rows.T)
    order, starts = _sorted_runs(keys)
    counts = np.add.reduceat(np.asarray(weights, np.float64)[order], starts)
    distinct = rows[order[starts]]
    if values is None:
        return distinct, counts
    summed = np.empty((len(starts), values.shape[1]))
    for j in range(values.shape[1]):
        summed[:, j] = np.add.reduceat(values[:, j][order], starts)
    return distinct, counts, summed


def _dense_sums(centers, X, bandwidth, kernel, reach, sample_weight):
    """Kernel sums of every center against every row, in blocks.

    Around the centers' mean, each row becomes ``[x, |x|^2, 1]`` and one matrix
    product with a row per center gives, for every pair, ``|x - c|^2 - |c|^2``
    (flat: ``[-2c, 1, 0]``) or ``-|x - c|^2 / 2h^2`` (Gaussian:
    ``[c, -1/2, -|c|^2/2] / h^2``). A second product ``w . [x, |x|^2, 1]``
    gives the weighted sums and the weights together. For the flat kernel the
    per-center threshold ``h^2 - |c|^2`` is applied directly, and the few pairs
    within rounding of the bandwidth are recomputed exactly, so that a point at
    exactly the bandwidth counts as inside. Gaussian weights and their sums
    are computed in float64.
    """
    k, n_features = centers.shape
    flat = kernel == "flat" or bandwidth == 0
    # float64 for both kernels: float32 weights (relative error ~1e-6) made
    # stopping decisions depend on how rows were chunked and on the CPU's BLAS;
    # in float64 sums differ by rounding order alone, ~1e-16 relative.
    work = np.float64
    origin = centers.mean(axis=0)
    c0 = centers - origin
    cc = np.einsum("ij,ij->i", c0, c0)
    h2 = bandwidth * bandwidth
    # One row per center, against rows [x, |x|^2, 1].
    A = np.zeros((k, n_features + 2), dtype=work)
    if flat:
        A[:, :n_features] = -2 * c0
        A[:, n_features] = 1
    else:
        A[:, :n_features] = c0 / h2
        A[:, n_features] = -0.5 / h2
        A[:, n_features + 1] = -0.5 * cc / h2
    # A Gaussian truncated at ``reach`` gives nothing to d < -reach^2 / 2h^2.
    cut = None if flat or reach is None else work(-0.5 * reach * reach / h2)
    acc = np.zeros((k, n_features + 2))
    step = max(1, min(X.shape[0], _BLOCK_ELEMENTS // k))
    if flat:
        W_buf = np.empty((k, step))
    masks = np.empty((2 if flat else 1, k, step), dtype=bool)
    for start, xb, B, d in _products_by_block(A, X, origin, step):
        m = xb.shape[0]
        sw = None if sample_weight is None else sample_weight[start : start + step]
        if flat:
            w = _flat_weights(
                d,
                h2,
                cc,
                centers,
                xb,
                cc.max() + B[:, n_features].max(),
                out=(W_buf[:, :m], masks[0, :, :m], masks[1, :, :m]),
            )
            if sw is not None:
                w *= sw
            acc += w @ B
            continue
        # d = -|x - c|^2 / 2h^2 <= 0 (to rounding). Weights that would
        # underflow into subnormals slow every later operation tenfold: floor
        # them at a normal number that is nothing beside the weights of the
        # rows near the center.
        np.maximum(d, _EXP_FLOOR, out=d)
        if cut is not None:
            # Truncated: rows beyond the reach weigh exactly nothing.
            beyond = np.less(d, cut, out=masks[0, :, :m])
            np.copyto(d, -np.inf, where=beyond)
        w = np.exp(d, out=d)
        if sw is not None:
            w *= sw.astype(work)
        acc += (w @ B).astype(np.float64)
    weights = acc[:, n_features + 1]
    sums = acc[:, :n_features] + weights[:, None] * origin
    return sums, weights


def _products_by_block(A, X, origin, step):
    """``d = A . B^T`` for the rows of X, ``step`` at a time, ``B = [x0, |x0|^2, 1]``.

    ``x0 = x - origin``, in the precision of ``A``. The work arrays are
    allocated once and reused block after block: Dask's nannies set
    MALLOC_TRIM_THRESHOLD_, with which every fresh temporary of this size would
    be mapped and faulted in anew (twice as slow here).

    Yields
    ------
    start : int
    xb : ndarray of shape (m, n_features)
        The block's rows as given.
    B : ndarray of shape (m, n_features + 2)
    d : ndarray of shape (len(A), m)
        Overwritten by the next block.
    """
    n_features = X.shape[1]
    B_buf = np.empty((step, n_features + 2), dtype=A.dtype)
    B_buf[:, n_features + 1] = 1
    D_buf = np.empty((A.shape[0], step), dtype=A.dtype)
    for start in range(0, X.shape[0], step):
        xb = np.asarray(X[start : start + step])
        m = xb.shape[0]
        B = B_buf[:m]
        x0 = B[:, :n_features]
        np.subtract(xb, origin, out=x0, casting="unsafe")
        np.einsum("ij,ij->i", x0, x0, out=B[:, n_features])
        yield start, xb, B, np.matmul(A, B.T, out=D_buf[:, :m])


def _flat_shared_sums(centers, X, bandwidth, sample_weight):
    """Flat-kernel sums of many nearby centers, settling sure rows once per cell.

    Centers are gathered into small cells; ``eps`` bounds the distance of a
    cell's members from their mean ``r``. By the triangle inequality a row with
    ``|x - r| <= h - eps`` is within the bandwidth of every member and one with
    ``|x - r| > h + eps`` of none: those are summed (or skipped) once for the
    whole cell, and only rows in the shell between are tested pair by pair
    (exactly, by :func:`_dense_sums`). Decisions keep a margin beyond the
    rounding of the expanded distances, so the result equals the pairwise one.
    """
    k, n_features = centers.shape
    h = float(bandwidth)
    if k < 2 * _SHARE_TIGHT_MIN:
        return _dense_sums(centers, X, h, "flat", h, sample_weight)
    side = 2 * _SHARE_RADIUS * h / np.sqrt(n_features)
    cells = np.floor(centers / side).astype(np.int64)
    _, cell_of, sizes = np.unique(
        _cell_keys(cells.T), return_inverse=True, return_counts=True
    )
    if sizes.max() < _SHARE_TIGHT_MIN:
        return _dense_sums(centers, X, h, "flat", h, sample_weight)
    # A shared cell costs a pass over its rows plus a call for its shell,
    # which is thin when its centers have (nearly) converged together: share
    # crowded cells, and tight ones from a few centers on. Centers of other
    # cells stand alone (a cell of one, with eps = 0).
    _, eps = _means_and_spread(centers, cell_of, sizes)
    shared = (sizes >= _SHARE_MIN) | ((sizes >= _SHARE_TIGHT_MIN) & (eps <= h / 64))
    alone = ~shared[cell_of]
    if alone.all() or (~alone).sum() < k // 4:
        return _dense_sums(centers, X, h, "flat", h, sample_weight)
    cell_of = np.where(alone, len(sizes) + np.arange(k), cell_of)
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
    step = max(1, min(X.shape[0], _BLOCK_ELEMENTS // n_cells))
    W_buf = np.empty((n_cells, step))
    masks = np.empty((2, n_cells, step), dtype=bool)
    shell_cells, shell_rows = [], []
    for start, xb, B, d in _products_by_block(A, X, origin, step):
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
    c = np.concatenate(shell_cells)
    r = np.concatenate(shell_rows)
    if len(c) == 0:
        return sums, weights
    by_cell = np.argsort(c, kind="stable")
    c, r = c[by_cell], r[by_cell]
    first = np.flatnonzero(np.r_[True, c[1:] != c[:-1]])
    X = np.asarray(X)
    for a, b in zip(first, np.r_[first[1:], len(c)], strict=True):
        g = c[a]
        members = order[starts[g] : starts[g] + sizes[g]]
        rows = r[a:b]
        sw = None if sample_weight is None else sample_weight[rows]
        s, w = _dense_sums(centers[members], X[rows], h, "flat", h, sw)
        sums[members] += s
        weights[members] += w
    return sums, weights


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


def _flat_weights(d, h2, cc, centers, xb, scale, out):
    """0/1 weights ``|x - c| <= h`` from ``d = |x - c|^2 - |c|^2``, exact at h.

    ``cc`` holds ``|c|^2`` per center (around the block's origin) and ``scale``
    bounds the squared norms that ``d`` was formed from. ``out`` gives the
    float weights and two boolean arrays, all shaped like ``d``.
    """
    w, inside, unsure = out
    # The expanded form is off by a few ulps of the squared norms: settle the
    # pairs that close to the boundary with the exact difference form.
    band = 1e-12 * (scale + h2)
    np.less_equal(d, (h2 - cc - band)[:, None], out=inside)
    np.less_equal(d, (h2 - cc + band)[:, None], out=unsure)
    np.copyto(w, inside)
    if np.count_nonzero(unsure) != np.count_nonzero(inside):
        ci, xi = np.nonzero(unsure & ~inside)
        diff = centers[ci] - xb[xi].astype(np.float64)
        w[ci, xi] = np.einsum("ij,ij->i", diff, diff) <= h2
    return w


def _slabs(X, sample_weight, rows=None):
    """``(rows, weights)`` of at most ``rows`` (``_SLAB_ROWS``) rows each (one if X is empty)."""
    rows = rows or _SLAB_ROWS
    for i in range(0, max(1, X.shape[0]), rows):
        w = None if sample_weight is None else sample_weight[i : i + rows]
        yield X[i : i + rows], w


def _take_runs(a, runs):
    if len(runs) == 1:
        return a[runs[0][0] : runs[0][1]]
    return np.concatenate([a[start:stop] for start, stop in runs])


def _cell_range(columns):
    """Lowest coordinate and number of cells spanned, per coordinate column."""
    lo = np.array([int(c.min()) for c in columns])
    return lo, np.array([int(c.max()) for c in columns]) - lo + 1


def _n_cells(span):
    """Cells in a grid of ``span`` cells per axis, as a float (inf if huge)."""
    with np.errstate(over="ignore"):
        return float(np.prod(span.astype(np.float64)))


def _cell_keys(columns, cell_range=None):
    """One int64 key per row of integer cell coordinates, ordered like the rows.

    ``columns`` holds one coordinate column per feature (of any numeric dtype
    holding integers, e.g. ``cells.T``). Keys are mixed-radix over the range of
    each column (``cell_range``, from :func:`_cell_range` when not given), so
    they sort like the rows; a huge, sparse grid numbers its occupied cells (in
    the same order) instead.
    """
    columns = list(columns)
    lo, span = cell_range or _cell_range(columns)
    if _n_cells(span) < 2.0**62:
        strides = np.cumprod(np.concatenate([span[1:], [1]])[::-1])[::-1]
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


def _sorted_runs(keys):
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


def _grid_groups(centers, X, reach):
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
    columns = _snapped_columns(np.asarray(X), side, np.floor, np.float64)
    keys = _cell_keys(columns)
    order, starts = _sorted_runs(keys)
    bounds = np.r_[starts, len(keys)]
    firsts = order[starts]
    x_coords = np.stack([c[firsts] for c in columns], axis=1)
    # Sparse centers (a few per reach-wide cell) are grouped by cells twice as
    # wide: fewer groups for a row to meet, each with more centers. Dense
    # centers keep cells of the reach: fewer pairs per row.
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
    # Row cells overlapping [min - reach, max + reach] of each group (widened
    # by a hair against rounding: a row at exactly the reach is inside).
    margin = reach * (1 + 1e-9)
    lo = np.floor((np.minimum.reduceat(sorted_centers, c_starts) - margin) / side)
    hi = np.floor((np.maximum.reduceat(sorted_centers, c_starts) + margin) / side)
    tree = cKDTree(x_coords)
    candidates = tree.query_ball_point(
        (lo + hi) / 2, r=(hi - lo).max(axis=1) / 2 + 0.5, p=np.inf
    )
    c_bounds = np.r_[c_starts, len(centers)]
    groups = []
    for g, cells in enumerate(candidates):
        cells = np.sort(np.asarray(cells, dtype=np.intp))
        coords = x_coords[cells]
        cells = cells[((coords >= lo[g]) & (coords <= hi[g])).all(axis=1)]
        if not len(cells):
            continue
        run_starts, run_stops = bounds[cells], bounds[cells + 1]
        # Join runs that touch: the sorted rows of neighbouring cells.
        new = np.flatnonzero(np.r_[True, run_starts[1:] != run_stops[:-1]])
        stops = np.r_[run_stops[new[1:] - 1], run_stops[-1]]
        runs = list(zip(run_starts[new].tolist(), stops.tolist(), strict=True))
        groups.append((c_order[c_bounds[g] : c_bounds[g + 1]], runs))
    return order, groups
