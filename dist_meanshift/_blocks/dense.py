"""Sums of every center against every row of one block: the dense products.

The products behind every other sum: :func:`dense_sums` (0/1 weights within
a reach, or Gaussian weights, and the weighted coordinate sums, in blocks),
:func:`local_moments` (the weighted covariance a saddle check needs) and
:func:`add_partials`, the reduction step of every map-reduce.
"""

from __future__ import annotations

import numpy as np

# Rows x centers elements materialised at once inside a block function: 2**17
# values (1 MiB in float64) per temporary stay near the CPU caches and keep a
# task's memory small whatever the chunk size.
BLOCK_ELEMENTS = 1 << 17
# Lowest exponent given to exp() by the Gaussian kernel (see dense_sums).
_EXP_FLOOR = -80.0


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
    step = max(1, BLOCK_ELEMENTS // max(1, f))
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


def dense_sums(centers, X, bandwidth, indicator, reach, sample_weight):
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

    ``indicator`` chooses the weights: 1 within ``bandwidth`` and 0 beyond
    (the flat kernel's, see :mod:`.kernels`), else Gaussian, truncated at
    ``reach`` when it is not None. At a bandwidth of 0 both are the limit
    kernel that weighs only rows equal to the center.
    """
    k, n_features = centers.shape
    flat = indicator or bandwidth == 0
    # float64 for both kernels: float32 weights (relative error ~1e-6) made
    # stopping decisions depend on how rows were chunked and on the CPU's BLAS;
    # in float64 sums differ by rounding order alone, ~1e-16 relative.
    origin = centers.mean(axis=0)
    c0 = centers - origin
    cc = np.einsum("ij,ij->i", c0, c0)
    h2 = bandwidth * bandwidth
    A = _center_rows(c0, cc, h2, flat)
    # A Gaussian truncated at ``reach`` gives nothing to d < -reach^2 / 2h^2.
    cut = None if flat or reach is None else -0.5 * reach * reach / h2
    acc = np.zeros((k, n_features + 2))
    step = max(1, min(X.shape[0], BLOCK_ELEMENTS // k))
    if flat:
        W_buf = np.empty((k, step))
    masks = np.empty((2 if flat else 1, k, step), dtype=bool)
    for start, xb, B, d in products_by_block(A, X, origin, step):
        m = xb.shape[0]
        sw = None if sample_weight is None else sample_weight[start : start + step]
        if flat:
            scale = cc.max() + B[:, n_features].max()
            out = (W_buf[:, :m], masks[0, :, :m], masks[1, :, :m])
            w = _flat_weights(d, h2, cc, centers, xb, scale, out=out)
        else:
            w = _gaussian_weights(d, cut, masks[0, :, :m])
        if sw is not None:
            w *= sw
        acc += w @ B
    weights = acc[:, n_features + 1]
    sums = acc[:, :n_features] + weights[:, None] * origin
    return sums, weights


def _center_rows(c0, cc, h2, flat):
    """One row per center, against rows ``[x, |x|^2, 1]`` (see :func:`dense_sums`)."""
    k, n_features = c0.shape
    A = np.zeros((k, n_features + 2))
    if flat:
        A[:, :n_features] = -2 * c0
        A[:, n_features] = 1
    else:
        A[:, :n_features] = c0 / h2
        A[:, n_features] = -0.5 / h2
        A[:, n_features + 1] = -0.5 * cc / h2
    return A


def _gaussian_weights(d, cut, beyond):
    """``exp(d)`` in place, nothing below ``cut`` (truncated); ``beyond`` is work space."""
    # d = -|x - c|^2 / 2h^2 <= 0 (to rounding). Weights that would underflow
    # into subnormals slow every later operation down: floor them at a
    # normal number that is nothing beside the weights of the rows near the
    # center.
    np.maximum(d, _EXP_FLOOR, out=d)
    if cut is not None:
        # Truncated: rows beyond the reach weigh exactly nothing.
        np.less(d, cut, out=beyond)
        np.copyto(d, -np.inf, where=beyond)
    return np.exp(d, out=d)


def products_by_block(A, X, origin, step):
    """``d = A . B^T`` for the rows of X, ``step`` at a time, ``B = [x0, |x0|^2, 1]``.

    ``x0 = x - origin``, in the precision of ``A``. The work arrays are
    allocated once and reused block after block: Dask's nannies set
    MALLOC_TRIM_THRESHOLD_, with which every fresh temporary of this size would
    be mapped and faulted in anew.

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
        w[ci, xi] = squares_in_order(diff) <= h2
    return w


def squares_in_order(diff):
    """``sum_j diff_j^2`` over the last axis, feature after feature.

    The order scikit-learn's trees (and the compiled loops) add them in:
    from 3 features ``einsum`` pairs the terms otherwise (the last bit of
    some 20% to 75% of random rows differs), which splits a tie that is one
    in scikit-learn's sums (rows of integers times 1e-6), or a row exactly
    at the bandwidth.
    """
    out = diff[..., 0] * diff[..., 0]
    for j in range(1, diff.shape[-1]):
        out += diff[..., j] * diff[..., j]
    return out
