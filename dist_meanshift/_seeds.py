"""Bandwidth and seeds: scikit-learn's ``estimate_bandwidth`` and ``get_bin_seeds``.

Both read the data through ``_dask`` (a uniform row sample, bin counts in one
pass); the estimate itself is scikit-learn's on the sampled rows.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state

from . import _blocks, _dask
from ._params import BY_NAME
from ._validation import check_finite, check_input, check_sample_weight
from .errors import InputError, user_stacklevel

#: Rows sampled by :func:`estimate_bandwidth` when ``n_samples`` is None. The
#: estimate is quadratic in the sample, so larger data is subsampled uniformly;
#: data with at most this many rows is used whole, as scikit-learn does.
BANDWIDTH_SAMPLE_SIZE = 10_000


def estimate_bandwidth(
    X,
    *,
    quantile=0.3,
    n_samples=None,
    random_state=0,
    sample_weight=None,
    kernel="flat",
):
    """Estimate the bandwidth to use with the mean-shift algorithm.

    The mean over sampled points of the distance to their
    ``int(quantile * n)``-th nearest neighbour, as scikit-learn's
    ``estimate_bandwidth``: a radius for the flat kernel. Rows are drawn
    uniformly in one pass over the chunks with
    ``random_state.permutation(n_rows)[:n_samples]``, so the same
    ``n_samples`` and ``random_state`` give scikit-learn's value.

    For the Gaussian kernel the bandwidth is a standard deviation, not a
    radius: ``kernel="gaussian"`` returns ``r / sqrt(2 ln k)``, where
    ``k = int(quantile * m)`` (at least 2) is the number of neighbours the
    radius counts among the ``m`` rows used. It is the width at which those
    ``k`` rows, even all at the ball's edge, weigh together as much as a
    seed's own row (``k exp(-r^2 / (2 h^2)) = 1``): the rows the flat kernel
    counts keep real weight, in any number of features. (Matching the ball's
    second moment instead, ``r / sqrt(d + 2)``, leaves every row alone in many
    features: distances concentrate near ``r`` while the kernel shrinks with
    ``sqrt(d)``.) :class:`MeanShift` uses this rule when ``bandwidth`` is
    None and the kernel is Gaussian.

    Parameters
    ----------
    X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
        Input points.
    quantile : float, default=0.3
        Should be in [0, 1]; 0.5 means the median of pairwise distances is used.
    n_samples : int, default=None
        Number of rows to use. If None, all rows up to
        ``BANDWIDTH_SAMPLE_SIZE`` (10,000) and a uniform sample of that many
        beyond it.
    random_state : int or RandomState, default=0
        Seeds the row sample.
    sample_weight : array-like of shape (n_samples,), default=None
        Row weights: the estimate equals that of the data with every row
        repeated as often as its (integer) weight; rows are sampled with
        probability proportional to their weight.
    kernel : {"flat", "gaussian"}, default="flat"
        The kernel the bandwidth is for: ``"flat"`` gives scikit-learn's
        radius, ``"gaussian"`` the matching standard deviation.

    Returns
    -------
    bandwidth : numpy.float64

    Examples
    --------
    >>> import numpy as np
    >>> from dist_meanshift import estimate_bandwidth
    >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]])
    >>> print(round(estimate_bandwidth(X, quantile=0.5), 2))
    1.62
    """
    name = "estimate_bandwidth"
    BY_NAME["quantile"].check(quantile, name)
    BY_NAME["kernel"].check(kernel, name)
    if n_samples is not None and not (
        isinstance(n_samples, Integral)
        and not isinstance(n_samples, bool)
        and n_samples >= 1
    ):
        raise InputError(
            "The 'n_samples' parameter of estimate_bandwidth must be an int in the "
            f"range [1, inf) or None. Got {n_samples!r} instead."
        )
    data = _dask.as_dask(check_input(X))
    weights = check_sample_weight(sample_weight, data)
    return kernel_bandwidth(data, kernel, quantile, weights, n_samples, random_state)


def kernel_bandwidth(
    data, kernel, quantile=None, weights=None, n_samples=None, random_state=0
):
    """The one bandwidth estimate, for :func:`estimate_bandwidth` and ``MeanShift``.

    The radius counting ``quantile`` of the sampled rows, turned into the
    kernel's bandwidth by its rule. ``data`` and ``weights`` are checked
    (:class:`~._validation.InputData`); ``quantile`` defaults to the
    ``quantile`` parameter's default.
    """
    if quantile is None:
        quantile = BY_NAME["quantile"].default
    radius = estimate_radius(data, quantile, n_samples, random_state, weights)
    used = sampled_rows(data, n_samples, weights)
    return np.float64(for_kernel(radius, kernel, neighbours(used, quantile)))


def sampled_rows(data, n_samples=None, weights=None):
    """How many rows :func:`estimate_radius` measures the radius on."""
    n_rows = data.shape[0]
    if weights is not None:
        n_rows = int((weights.to_numpy() > 0).sum())
    if n_samples is not None:
        return min(n_samples, n_rows)
    return min(n_rows, BANDWIDTH_SAMPLE_SIZE)


def neighbours(n_rows, quantile):
    """The neighbours a radius of ``quantile`` counts among ``n_rows`` (at least 2)."""
    return max(2, int(n_rows * quantile))


def for_kernel(radius, kernel, n_neighbours):
    """The bandwidth of ``kernel`` for a radius counting ``n_neighbours`` rows
    (its :meth:`~._blocks.kernels.Kernel.bandwidth` rule)."""
    return _blocks.kernels.get(kernel).bandwidth(radius, n_neighbours)


def get_bin_seeds(X, bin_size, min_bin_freq=1):
    """Find seeds for mean shift by binning the data onto a grid.

    As scikit-learn's ``get_bin_seeds``: points are binned onto a grid of
    spacing ``bin_size`` (cell ``round(x / bin_size)``), cells with at least
    ``min_bin_freq`` points become seeds at ``cell * bin_size`` (float32, as
    scikit-learn). If every point falls in its own cell, the points are
    returned instead, with a warning. Seeds are in lexicographic cell order.

    Parameters
    ----------
    X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
        Input points, the same points that will be used in mean shift.
    bin_size : float
        Grid spacing; usually the bandwidth. 0 returns the points.
    min_bin_freq : int, default=1
        Only cells with at least this many points become seeds.

    Returns
    -------
    bin_seeds : ndarray of shape (n_seeds, n_features)

    Examples
    --------
    >>> import numpy as np
    >>> from dist_meanshift import get_bin_seeds
    >>> X = np.array([[1.0, 1.0], [1.2, 0.9], [5.0, 5.0]])
    >>> get_bin_seeds(X, 1.0)
    array([[1., 1.],
           [5., 5.]], dtype=float32)
    """
    if not (isinstance(bin_size, Real) and 0 <= bin_size < np.inf):
        raise InputError(
            "The 'bin_size' parameter of get_bin_seeds must be a float in the range "
            f"[0, inf). Got {bin_size!r} instead."
        )
    data = X if hasattr(X, "kind") else _dask.as_dask(check_input(X))
    return bin_seeds(data, bin_size, min_bin_freq)


def all_points(data, weights=None):
    points = data.numpy if data.numpy is not None else data.array.compute()
    if weights is not None:
        # A row of weight 0 is a row that is not there: it seeds nothing.
        points = points[weights.to_numpy() > 0]
    return points


def estimate_radius(data, quantile, n_samples, random_state, weights=None):
    # sklearn.cluster is imported here, not with the module: a fit given its
    # bandwidth does without it (a third of a second of a small command).
    from sklearn.cluster import estimate_bandwidth as _sklearn_estimate_bandwidth

    n_rows = data.shape[0]
    small = n_samples is not None or n_rows <= BANDWIDTH_SAMPLE_SIZE
    if weights is None and data.numpy is not None and small:
        return float(
            _sklearn_estimate_bandwidth(
                data.numpy,
                quantile=quantile,
                n_samples=n_samples,
                random_state=random_state,
            )
        )
    rs = check_random_state(random_state)
    w = None if weights is None else weights.to_numpy()
    if n_samples is None and n_rows <= BANDWIDTH_SAMPLE_SIZE:
        rows = all_points(data)
    elif w is None:
        size = n_samples or BANDWIDTH_SAMPLE_SIZE
        rows = _dask.sample_rows(data.array, size, rs)
    else:
        size = min(n_samples or BANDWIDTH_SAMPLE_SIZE, int((w > 0).sum()))
        idx = np.sort(rs.choice(n_rows, size=size, replace=False, p=w / w.sum()))
        rows, w = np.asarray(data.array[idx].compute()), None
    if not np.isfinite(rows).all():
        # Lazy data is checked in full when fitted; name the whole count now.
        check_finite(*_dask.count_non_finite(data.array))
    if w is None:
        return float(_sklearn_estimate_bandwidth(rows, quantile=quantile))
    return _weighted_bandwidth(rows, w, quantile)


def _weighted_bandwidth(X, w, quantile):
    """scikit-learn's estimate on the data with each row repeated w times."""
    from sklearn.neighbors import NearestNeighbors

    keep = w > 0
    X, w = X[keep], w[keep]
    total = w.sum()
    # The k-th neighbour of a row among repeated rows: the nearest distance at
    # which the cumulative weight (its own included) reaches k.
    k = max(1.0, float(int(total * quantile)))
    nbrs = NearestNeighbors(n_neighbors=len(X)).fit(X)
    bandwidth = 0.0
    for start in range(0, len(X), 500):
        dist, idx = nbrs.kneighbors(X[start : start + 500])
        reached = np.cumsum(w[idx], axis=1) >= k * (1 - 1e-12)
        first = np.argmax(reached, axis=1)
        bandwidth += (dist[np.arange(len(dist)), first] * w[start : start + 500]).sum()
    return float(bandwidth / total)


def bin_seeds(data, bin_size, min_bin_freq, weights=None):
    if bin_size == 0:
        return all_points(data, weights)
    w = None if weights is None else weights.array
    cells, counts = _dask.bin_seeds(data.array, bin_size, w)
    seeds = cells[(counts >= min_bin_freq) & (counts > 0)].astype(np.float32)
    if len(seeds) == 0:
        raise InputError(
            f"Bin seeding with 'min_bin_freq'={min_bin_freq} left no seed: no grid "
            f"cell of size {bin_size:g} holds that many points. Lower min_bin_freq "
            "or use a larger bandwidth."
        )
    if len(seeds) == data.shape[0]:
        warnings.warn(
            f"Binning data failed with provided bin_size={bin_size:f}, using data "
            "points as seeds.",
            stacklevel=user_stacklevel(),
        )
        return all_points(data, weights)
    # float32 cells times the bin size keep scikit-learn's precision: float32
    # for a Python float, float64 for a numpy float64 (an estimated bandwidth).
    return seeds * bin_size
