"""The scikit-learn face of dist-meanshift: a thin estimator and functions.

The algorithm lives in ``_driver`` (Dask orchestration) and ``_blocks`` (numpy
maths); this module validates, chooses the bandwidth and seeds, and stores the
fitted attributes.
"""

from __future__ import annotations

import logging
import warnings
from numbers import Integral, Real

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import estimate_bandwidth as _sklearn_estimate_bandwidth
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _blocks, _driver
from ._validation import (
    InputData,
    SampleWeight,
    check_finite,
    check_input,
    check_params,
    check_sample_weight,
    check_seeds,
)

logger = logging.getLogger(__name__)

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
    radius: ``kernel="gaussian"`` returns ``r / sqrt(n_features + 2)``, the
    Gaussian whose second moment per coordinate equals that of the flat ball
    of radius ``r`` (``r^2 / (d + 2)``), so that both kernels average over the
    same spread of neighbours. :class:`MeanShift` uses this rule when
    ``bandwidth`` is None and the kernel is Gaussian.

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
    if not (isinstance(quantile, Real) and 0 <= quantile <= 1):
        raise ValueError(
            "The 'quantile' parameter of estimate_bandwidth must be a float in the "
            f"range [0, 1]. Got {quantile!r} instead."
        )
    if n_samples is not None and not (
        isinstance(n_samples, Integral)
        and not isinstance(n_samples, bool)
        and n_samples >= 1
    ):
        raise ValueError(
            "The 'n_samples' parameter of estimate_bandwidth must be an int in the "
            f"range [1, inf) or None. Got {n_samples!r} instead."
        )
    if kernel not in _blocks.KERNELS:
        raise ValueError(
            "The 'kernel' parameter of estimate_bandwidth must be a str among "
            f"{{'flat', 'gaussian'}}. Got {kernel!r} instead."
        )
    data = check_input(X)
    weights = check_sample_weight(sample_weight, data)
    radius = _estimate_bandwidth(data, quantile, n_samples, random_state, weights)
    return np.float64(_for_kernel(radius, kernel, data.shape[1]))


def _for_kernel(radius, kernel, n_features):
    """The flat kernel's radius, or the Gaussian of the same second moment."""
    return radius if kernel == "flat" else radius / np.sqrt(n_features + 2)


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
        raise ValueError(
            "The 'bin_size' parameter of get_bin_seeds must be a float in the range "
            f"[0, inf). Got {bin_size!r} instead."
        )
    data = X if hasattr(X, "kind") else check_input(X)
    return _bin_seeds(data, bin_size, min_bin_freq)


def mean_shift(X, *, bandwidth=None, **params):
    """Perform mean shift clustering of data.

    Parameters
    ----------
    X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
        Input data.
    bandwidth : float, default=None
        Kernel bandwidth; estimated with :func:`estimate_bandwidth` if None.
    **params
        Any other keyword parameter of :class:`MeanShift`.

    Returns
    -------
    cluster_centers : ndarray of shape (n_clusters, n_features)
    labels : ndarray or dask array of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from dist_meanshift import mean_shift
    >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]])
    >>> centers, labels = mean_shift(X, bandwidth=2, kernel="flat")
    >>> labels
    array([1, 1, 1, 0, 0, 0])
    """
    model = MeanShift(bandwidth=bandwidth, **params).fit(X)
    return model.cluster_centers_, model.labels_


class MeanShift(ClusterMixin, BaseEstimator):
    """Mean shift clustering on Dask, with a Gaussian or a flat kernel.

    Every seed climbs to the kernel-weighted mean of the data around it until it
    moves by at most ``tol * bandwidth``; seeds that meet are merged; each point
    gets the label of its nearest mode. The data may be a numpy array, a dask
    array or a zarr array (or path), and each iteration runs as Dask tasks: on
    the active ``distributed.Client`` if there is one, on threads otherwise.

    Parameters
    ----------
    bandwidth : float, default=None
        Kernel bandwidth ``h``. If None, it is estimated with
        :func:`estimate_bandwidth` for the kernel: scikit-learn's radius for
        the flat kernel, ``radius / sqrt(n_features + 2)`` for the Gaussian.
    kernel : {"gaussian", "flat"}, default="gaussian"
        ``"gaussian"``: every point weighs ``exp(-||x - c||^2 / (2 h^2))``, that
        is ``exp(-gamma ||x - c||^2)`` with ``gamma = 1 / (2 h^2)``; stopped
        centers within ``merge_tol * h`` of each other are merged into their
        mean; clusters are ordered by decreasing kernel density at the mode.
        The weights and their sums are computed in float64, so that
        chunkings, partitions and machines differ by rounding order alone
        (about 1e-16 relative). A center stops when its shift and the
        geometric tail of its shifts are both within ``tol * h``; along slow
        ridges centers jump ahead (kept only where the density does not
        drop); stopped centers are checked for saddle points of the density
        (restarted either side) and polished by one Newton step, so modes
        are those of shifting until nothing moves (up to 64 features).
        ``"flat"``: points within ``h`` (inclusive) weigh 1, others 0; results
        reproduce scikit-learn's ``MeanShift``, including its suppression of
        centers within ``h`` of a stronger one and its ordering by intensity.
    seeds : array-like of shape (n_seeds, n_features), default=None
        Initial kernel locations. If None, every point (or every bin when
        ``bin_seeding``) is a seed.
    bin_seeding : bool, default=False
        Seed from the occupied cells of a grid of spacing ``bandwidth`` (see
        :func:`get_bin_seeds`). Ignored if ``seeds`` is given.
    min_bin_freq : int, default=1
        With ``bin_seeding``, only cells with at least this many points seed.
    cluster_all : bool, default=True
        If False, points farther than ``bandwidth`` from every center are
        labelled -1.
    max_iter : int, default=300
        Iterations after the first shift of each seed before it is stopped
        (scikit-learn's meaning: ``max_iter + 1`` shifts at most).
    tol : float, default=1e-3
        A center whose shift is at most ``tol * bandwidth`` has converged
        (scikit-learn's fixed ``1e-3``).
    merge_tol : float, default=0.1
        Gaussian kernel: stopped centers closer than ``merge_tol * bandwidth``
        (connected components, so independent of order) become one.
    truncate : float or None, default=6.0
        Gaussian kernel: points farther than ``truncate * bandwidth`` from a
        center are ignored (their relative weight is below
        ``exp(-truncate**2 / 2)``, 1.5e-8 at 6). A mode then moves by at most
        that relative weight times the ignored points' share of the kernel mass
        times their distance, far below ``tol`` in practice. Far points then cost
        nothing: centers meet only rows of nearby grid cells. None is exact.
    bin_data : float or None, default=None
        Binned mode, for very large data (approximate, opt-in): one streaming
        pass reduces the data to grid cells of side ``bin_data * bandwidth``,
        each standing as one point (the mean of its rows) weighted by its row
        count; mean shift runs exactly on those cells in memory, and one more
        pass labels the rows. Every row is moved by at most the cell diagonal,
        ``sqrt(n_features) * bin_data * bandwidth``, so only memberships within
        that distance of a kernel's edge can change and modes move by about that
        much at most. 0.05 keeps modes within a few hundredths of the bandwidth.
    chunk_rows : int, default=None
        Rows per data chunk. None keeps the chunks of dask and zarr input and
        chunks in-memory input to keep every thread busy.
    persist : {"auto", True, False}, default="auto"
        Keep dask or zarr input in (cluster) memory across iterations: "auto"
        does when it takes at most half the memory; otherwise chunks are read
        from their source on every pass.
    n_jobs : int, default=None
        Accepted for compatibility with scikit-learn's ``MeanShift`` and
        ignored: the work runs on the active Dask client's workers (or on
        dask's threads), which set the parallelism.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        Coordinates of cluster centers, in the data's float precision.
    labels_ : ndarray or dask array of shape (n_samples,)
        Labels of each point: numpy for in-memory input, a dask array for dask
        or zarr input.
    n_iter_ : int
        Maximum number of iterations performed on each seed.
    n_features_in_ : int
        Number of features seen during fit.
    bandwidth_ : float
        The bandwidth used (given or estimated).
    intensity_ : ndarray of shape (n_clusters,)
        Points within the bandwidth (flat) or kernel density (gaussian) at each
        center's last shift.
    trace_ : list of dict
        Per-iteration figures: iteration (counted as ``n_iter_``, from 0),
        n_centers, n_active, max_shift.
    converged_ : bool
        False when ``max_iter`` stopped centers that still moved (a
        ``ConvergenceWarning`` says so).
    n_unconverged_ : int
        How many distinct centers ``max_iter`` stopped while still moving.

    See Also
    --------
    sklearn.cluster.MeanShift : The single-machine flat-kernel reference.

    Examples
    --------
    >>> import numpy as np
    >>> from dist_meanshift import MeanShift
    >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]])
    >>> clustering = MeanShift(bandwidth=2, kernel="flat").fit(X)
    >>> clustering.labels_
    array([1, 1, 1, 0, 0, 0])
    >>> clustering.predict([[0, 0], [5, 5]])
    array([1, 0])
    """

    def __init__(
        self,
        bandwidth=None,
        *,
        kernel="gaussian",
        seeds=None,
        bin_seeding=False,
        min_bin_freq=1,
        cluster_all=True,
        max_iter=300,
        tol=1e-3,
        merge_tol=0.1,
        truncate=6.0,
        bin_data=None,
        chunk_rows=None,
        persist="auto",
        n_jobs=None,
    ):
        self.bandwidth = bandwidth
        self.kernel = kernel
        self.seeds = seeds
        self.bin_seeding = bin_seeding
        self.min_bin_freq = min_bin_freq
        self.cluster_all = cluster_all
        self.max_iter = max_iter
        self.tol = tol
        self.merge_tol = merge_tol
        self.truncate = truncate
        self.bin_data = bin_data
        self.chunk_rows = chunk_rows
        self.persist = persist
        self.n_jobs = n_jobs

    def fit(self, X, y=None, sample_weight=None):
        """Perform clustering.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
            Samples to cluster.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            Non-negative row weights: a row of weight 2 counts as two rows in the
            kernel sums, the bin counts and the bandwidth estimate; rows of weight
            0 neither pull centers nor seed them (they are still labelled).

        Returns
        -------
        self : object
            Fitted instance.
        """
        for _ in self.fit_iter(X, sample_weight=sample_weight):
            pass
        return self

    def fit_iter(self, X, y=None, sample_weight=None):
        """Fit step by step, yielding the state after every iteration.

        The fitted attributes are set once the generator is exhausted; a caller
        may stop early and keep the last state.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
            Samples to cluster.
        y : Ignored
        sample_weight : array-like or dask array of shape (n_samples,), default=None
            As in :meth:`fit`.

        Yields
        ------
        state : IterationState
            ``iteration``, ``centers``, ``n_centers``, ``n_active``,
            ``max_shift`` and ``labels`` (computed on access). Seeds at bitwise
            equal positions count as one center.

        Examples
        --------
        >>> import numpy as np
        >>> from dist_meanshift import MeanShift
        >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]])
        >>> [s.n_active for s in MeanShift(2, kernel="flat").fit_iter(X)]
        [4, 1, 0]
        """
        return self._fit_iter(X, sample_weight)

    def _fit_iter(self, X, sample_weight=None, resume=None):
        """fit_iter, optionally continuing from a checkpoint (see the CLI's --resume)."""
        check_params(self)
        data = check_input(X, estimator=self, reset=True, chunk_rows=self.chunk_rows)
        if data.kind == "numpy":
            yield from self._fit_steps(data, sample_weight, resume)
            return
        # Lazy data is checked for NaN and infinity chunk by chunk in the
        # passes of the fit itself; only a failed check costs a pass, to count.
        source = data.array
        try:
            data.array = _driver.prepare(_driver.checked_finite(source), self.persist)
            yield from self._fit_steps(data, sample_weight, resume)
        except _blocks.NonFiniteValues:
            check_finite(*_driver.count_non_finite(source))
            raise

    def _fit_steps(self, data, sample_weight, resume):
        weights = check_sample_weight(sample_weight, data)
        bandwidth = self.bandwidth if resume is None else resume["bandwidth"]
        if bandwidth is None:
            radius = _estimate_bandwidth(data, 0.3, None, 0, weights)
            bandwidth = np.float64(_for_kernel(radius, self.kernel, data.shape[1]))
            logger.info("estimated bandwidth %.6g", bandwidth)
            if bandwidth == 0:
                logger.warning(
                    "the estimated bandwidth is 0 (many duplicate points): every "
                    "distinct point becomes a cluster; set 'bandwidth' explicitly"
                )
        fit_data, fit_weights = data, weights
        if self.bin_data is not None and bandwidth > 0:
            fit_data, fit_weights = _binned(data, weights, self.bin_data * bandwidth)
        seeds = (
            None if resume else self._initial_seeds(fit_data, bandwidth, fit_weights)
        )
        bandwidth = float(bandwidth)
        result = _driver.MeanShiftResult(np.empty(0), np.empty(0), 0)
        yield from _driver.iter_mean_shift(
            fit_data.array,
            seeds,
            bandwidth=bandwidth,
            kernel=self.kernel,
            max_iter=self.max_iter,
            tol=self.tol,
            merge_tol=self.merge_tol,
            truncate=self.truncate,
            sample_weight=None if fit_weights is None else fit_weights.array,
            labeller=lambda centers: data.to_output(_driver.label(data.array, centers)),
            result=result,
            resume=resume,
            local=_in_memory(fit_data, fit_weights),
        )
        self.cluster_centers_ = result.cluster_centers
        self.intensity_ = result.intensity
        self.n_iter_ = result.n_iter
        self.trace_ = result.trace
        self.bandwidth_ = bandwidth
        self.converged_ = result.converged
        self.n_unconverged_ = result.n_unconverged
        if not result.converged:
            warnings.warn(
                f"Mean shift stopped at max_iter={self.max_iter} with "
                f"{result.n_unconverged} of {result.trace[-1]['n_centers']} centers "
                "still moving; raise max_iter.",
                ConvergenceWarning,
                stacklevel=3,
            )
        reach = None if self.cluster_all else bandwidth
        self.labels_ = data.to_output(
            _driver.label(data.array, self.cluster_centers_, reach)
        )

    def predict(self, X):
        """Predict the closest cluster each sample in X belongs to.

        Parameters
        ----------
        X : array-like, dask array, zarr array or path of shape (n_samples, n_features)
            New data to predict.

        Returns
        -------
        labels : ndarray or dask array of shape (n_samples,)
            Index of the nearest cluster center: numpy for in-memory input, a
            dask array for dask or zarr input.
        """
        check_is_fitted(self)
        data = check_input(X, estimator=self, reset=False)
        if data.kind != "numpy":
            check_finite(*_driver.count_non_finite(data.array))
        return data.to_output(_driver.label(data.array, self.cluster_centers_))

    def _initial_seeds(self, data, bandwidth, weights):
        if self.seeds is not None:
            return check_seeds(self.seeds, data.shape[1])
        if self.bin_seeding:
            return _bin_seeds(data, bandwidth, self.min_bin_freq, weights)
        return _all_points(data, weights)


def _in_memory(data, weights):
    """The rows and weights as numpy arrays when the input was in memory."""
    if data.numpy is None:
        return None
    w = None if weights is None else weights.to_numpy()
    return data.numpy, w


def _binned(data, weights, cell_size):
    """The data reduced to weighted grid cells, as in-memory input."""
    points, counts = _driver.bin_data(
        data.array, cell_size, None if weights is None else weights.array
    )
    points = points.astype(data.array.dtype)
    cells = InputData(_driver.to_dask_array(points), points, "numpy")
    return cells, SampleWeight(
        da.from_array(counts, chunks=(cells.array.chunks[0],)), counts
    )


def _all_points(data, weights=None):
    points = data.numpy if data.numpy is not None else data.array.compute()
    if weights is not None:
        # A row of weight 0 is a row that is not there: it seeds nothing.
        points = points[weights.to_numpy() > 0]
    return points


def _estimate_bandwidth(data, quantile, n_samples, random_state, weights=None):
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
        rows = _all_points(data)
    elif w is None:
        size = n_samples or BANDWIDTH_SAMPLE_SIZE
        rows = _driver.sample_rows(data.array, size, rs)
    else:
        size = min(n_samples or BANDWIDTH_SAMPLE_SIZE, int((w > 0).sum()))
        idx = np.sort(rs.choice(n_rows, size=size, replace=False, p=w / w.sum()))
        rows, w = np.asarray(data.array[idx].compute()), None
    if not np.isfinite(rows).all():
        # Lazy data is checked in full when fitted; name the whole count now.
        check_finite(*_driver.count_non_finite(data.array))
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


def _bin_seeds(data, bin_size, min_bin_freq, weights=None):
    if bin_size == 0:
        return _all_points(data, weights)
    w = None if weights is None else weights.array
    cells, counts = _driver.bin_seeds(data.array, bin_size, w)
    seeds = cells[(counts >= min_bin_freq) & (counts > 0)].astype(np.float32)
    if len(seeds) == 0:
        raise ValueError(
            f"Bin seeding with 'min_bin_freq'={min_bin_freq} left no seed: no grid "
            f"cell of size {bin_size:g} holds that many points. Lower min_bin_freq "
            "or use a larger bandwidth."
        )
    if len(seeds) == data.shape[0]:
        warnings.warn(
            f"Binning data failed with provided bin_size={bin_size:f}, using data "
            "points as seeds.",
            stacklevel=3,
        )
        return _all_points(data, weights)
    # float32 cells times the bin size keep scikit-learn's precision: float32
    # for a Python float, float64 for a numpy float64 (an estimated bandwidth).
    return seeds * bin_size
