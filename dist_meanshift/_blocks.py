"""The mathematics of mean shift as pure numpy functions over one block.

Every function here works on in-memory numpy arrays only: one block of centers
against one block of data rows. The Dask driver (``_driver.py``) maps them over
chunks and reduces their results; the estimator never calls them directly.
Nothing in this module imports dask.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

__all__ = [
    "KERNELS",
    "add_partials",
    "assign_labels",
    "bin_counts",
    "combine_bin_counts",
    "merge_close_centers",
    "nearest_center",
    "order_by_intensity",
    "shift_partial_sums",
    "squared_distances",
    "suppress_near_duplicates",
]

KERNELS = ("gaussian", "flat")

# Rows x centers elements materialised at once inside a block function: 2**20
# float64 values (8 MiB) per temporary keeps a task's memory small and flat
# whatever the chunk size.
_BLOCK_ELEMENTS = 1 << 20


def squared_distances(centers, X):
    """Squared Euclidean distances between centers and rows, in float64.

    The differences are formed explicitly (not ``|x|^2 - 2 x.c + |c|^2``) so that
    a point at exactly the bandwidth is found at exactly the bandwidth, as
    scikit-learn's neighbour trees find it.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    d2 : ndarray of shape (n_centers, n_samples)
    """
    C = np.asarray(centers, dtype=np.float64)
    Xf = np.asarray(X, dtype=np.float64)
    d2 = np.zeros((C.shape[0], Xf.shape[0]))
    for f in range(C.shape[1]):
        diff = C[:, f, None] - Xf[None, :, f]
        diff *= diff
        d2 += diff
    return d2


def shift_partial_sums(centers, X, bandwidth, kernel, sample_weight=None):
    """Kernel-weighted coordinate sums and weights of one data block.

    The mean shift of a center ``c`` is ``sum_i w_i(c) x_i / sum_i w_i(c)``;
    this returns the numerator and denominator restricted to the rows of ``X``,
    so that sums over any split of the data add up to the sums over all of it.

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
    n_centers, n_features = centers.shape
    sums = np.zeros((n_centers, n_features))
    weights = np.zeros(n_centers)
    if n_centers == 0 or X.shape[0] == 0:
        return sums, weights
    step = max(1, _BLOCK_ELEMENTS // n_centers)
    for start in range(0, X.shape[0], step):
        xb = np.asarray(X[start : start + step], dtype=np.float64)
        d2 = squared_distances(centers, xb)
        if kernel == "flat" or bandwidth == 0:
            w = (d2 <= bandwidth * bandwidth).astype(np.float64)
        else:
            d2 *= -0.5 / (bandwidth * bandwidth)
            w = np.exp(d2, out=d2)
        if sample_weight is not None:
            w *= sample_weight[start : start + step]
        sums += w @ xb
        weights += w.sum(axis=1)
    return sums, weights


def add_partials(*partials):
    """Add ``(sums, weights)`` pairs element-wise: the reduction step.

    Parameters
    ----------
    *partials : tuple of (ndarray, ndarray)
        Results of :func:`shift_partial_sums` for the same centers.

    Returns
    -------
    sums, weights : ndarray
    """
    sums = partials[0][0].copy()
    weights = partials[0][1].copy()
    for s, w in partials[1:]:
        sums += s
        weights += w
    return sums, weights


def nearest_center(X, centers):
    """Index of and squared distance to the nearest center of every row.

    Ties go to the lowest center index.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_centers, n_features), n_centers >= 1

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    d2 : ndarray of shape (n_samples,), float64
    """
    n = X.shape[0]
    labels = np.empty(n, dtype=np.int64)
    d2min = np.empty(n, dtype=np.float64)
    step = max(1, _BLOCK_ELEMENTS // max(1, centers.shape[0]))
    for start in range(0, n, step):
        d2 = squared_distances(centers, X[start : start + step])
        idx = np.argmin(d2, axis=0)
        labels[start : start + step] = idx
        d2min[start : start + step] = d2[idx, np.arange(d2.shape[1])]
    return labels, d2min


def assign_labels(X, centers, bandwidth=None):
    """Label every row with its nearest center, or -1 when out of reach.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    centers : ndarray of shape (n_centers, n_features), n_centers >= 1
    bandwidth : float, default=None
        When given, rows farther than ``bandwidth`` from every center (distance
        ``> bandwidth``) get the label -1, as scikit-learn's
        ``cluster_all=False``.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    """
    labels, d2 = nearest_center(X, centers)
    if bandwidth is not None:
        labels[d2 > bandwidth * bandwidth] = -1
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
    cells = np.round(X / bin_size)
    if cells.shape[0] == 0:
        return cells.reshape(0, X.shape[1]), np.zeros(0)
    return _sum_by_row(cells, sample_weight)


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
    pairs = cKDTree(centers).query_pairs(radius, output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, component = connected_components(graph, directed=False)
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


def order_by_intensity(centers, intensity):
    """Order centers by decreasing intensity, ties by decreasing coordinates.

    This is scikit-learn's ``sorted(..., key=lambda t: (t[1], t[0]),
    reverse=True)`` over ``(center tuple, intensity)`` pairs.

    Parameters
    ----------
    centers : ndarray of shape (n_centers, n_features)
    intensity : ndarray of shape (n_centers,)

    Returns
    -------
    order : ndarray of shape (n_centers,), int64
    """
    keys = [centers[:, j] for j in range(centers.shape[1] - 1, -1, -1)]
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
    for i, neighbours in enumerate(tree.query_ball_point(centers, radius)):
        if keep[i]:
            keep[neighbours] = False
            keep[i] = True
    return keep


def _sum_by_row(rows, weights):
    unique, inverse = np.unique(rows, axis=0, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(unique))
    return unique, counts.astype(np.float64)
