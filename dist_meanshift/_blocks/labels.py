"""Labels: the nearest center of every row, exact whatever the data's units."""

from __future__ import annotations

import numpy as np

from .dense import BLOCK_ELEMENTS, products_by_block

#: Blocks of at least this many rows are labelled by a compiled loop (one
#: pass over the rows: some 11 ns a row for 8 centers in 3 features, against
#: numpy's 38), when each row meets at most ``_COMPILED_MAX_TERMS`` center
#: coordinates; smaller blocks never load numba (see ``_loops``).
COMPILED_MIN_ROWS = 1 << 17
#: Beyond this many center coordinates per row, numpy's matrix product
#: (BLAS) costs less per pair than a loop over the differences.
_COMPILED_MAX_TERMS = 1024


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
        from ._loops import nearest_labels

        labels = np.empty(X.shape[0], dtype=np.int64)
        h2 = -1.0 if bandwidth is None else float(bandwidth) ** 2
        centers_t = np.ascontiguousarray(np.asarray(centers, dtype=np.float64).T)
        nearest_labels(X, centers_t, h2, labels)
        return labels
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
        dist = np.einsum("ijk,ijk->ij", diff, diff)
        labels[start : start + step] = np.argmin(dist, axis=1)
        d2[start : start + step] = dist.min(axis=1)
    return labels, d2
