"""Centers after the shifts: merged when close, ordered and suppressed as scikit-learn does."""

from __future__ import annotations

import itertools

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree


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
    cell_of, anchors, half_diagonal = _grid_cells(points, radius)
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


def _grid_cells(points, radius):
    """Grid cells of diagonal ``radius``: each point's cell, cell centers, half diagonal."""
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
    return cell_of, anchors, half_diagonal


def order_by_intensity(centers, intensity):
    """Order centers by decreasing intensity, ties by decreasing coordinates.

    Intensities are compared on a grid of ``1e-9`` of the largest, too: the
    same density summed in another order (or at a mode found from another
    side, to within its polish) is the same intensity.

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
    top = float(np.max(intensity)) if len(intensity) else 0.0
    keys.append(np.round(intensity / (1e-9 * top)) if top > 0 else intensity)
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
