"""The scikit-learn face of dist-meanshift: a thin estimator.

The loop lives in ``_loop`` (iterations), ``_dask`` (the task graphs) and
``_blocks`` (numpy maths); this module validates, chooses the bandwidth and
seeds (``_seeds``), runs the loop and stores the fitted attributes.
"""

from __future__ import annotations

import logging
import warnings

import dask.array as da
import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from . import _blocks, _dask, _seeds
from ._centers import Centers
from ._checkpoint import Checkpoint
from ._loop import iter_mean_shift
from ._params import check_params
from ._validation import (
    InputData,
    NonFiniteValues,
    SampleWeight,
    check_finite,
    check_input,
    check_sample_weight,
    check_seeds,
)
from .errors import InputError, user_stacklevel

logger = logging.getLogger(__name__)


#: A bandwidth must lie within this factor of the data's largest magnitude:
#: grid cells of the bandwidth's side are counted in float64 integers (exact
#: up to 2**53), and squared distances over squared bandwidths stay finite.
#: ``climb="cells"``: the side of the grid cells of the first stage, in bandwidths.
CLIMB_CELL = 0.25
#: ``climb="auto"`` climbs on cells first from this many rows (every point a seed).
CLIMB_MIN_ROWS = 20_000
#: ...unless the cells are more than this share of the rows (no work saved).
CLIMB_MAX_CELLS = 0.5
_SCALE_RANGE = 2.0**40
#: Bounds whatever the data: the bandwidth's square must be a normal float64.
_ABSOLUTE_RANGE = (1e-150, 1e150)


def check_bandwidth_scale(bandwidth, seeds):
    """Refuse a bandwidth the data's floating point cannot work with, naming the range.

    ``seeds`` (the points, bin cells or given seeds, all in the data's units)
    give the data's scale ``s``, their largest magnitude: a bandwidth in
    ``[s / 2**40, s * 2**40]`` (and within 1e-150 to 1e150) clusters
    exactly. Below it, positions cannot be told apart at the bandwidth's
    resolution; above it, squares overflow. Every distinct point is its own
    cluster below the closest pair's distance, and all points are one cluster
    above the data's diameter, so the range holds every answer there is.
    """
    scale = float(np.max(np.abs(seeds))) if np.size(seeds) else 0.0
    low, high = _ABSOLUTE_RANGE
    if scale > 0:
        low, high = max(low, scale / _SCALE_RANGE), min(high, scale * _SCALE_RANGE)
    if not low <= bandwidth <= high:
        raise InputError(
            f"The 'bandwidth' parameter of MeanShift is {bandwidth:g}, outside what "
            f"floating point resolves for this data (values up to {scale:.3g}): give "
            f"a bandwidth in [{low:.3g}, {high:.3g}]. Below the closest pair's "
            "distance every point is its own cluster; above the data's diameter all "
            "are one."
        )


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
        the flat kernel, ``radius / sqrt(2 ln k)`` for the Gaussian (``k``:
        the neighbours the radius counts, so that they keep real weight in
        any number of features).
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
    climb : {"auto", "cells", "rows"}, default="auto"
        Gaussian kernel: where the centers climb. ``"rows"``: on every row at
        every iteration (the founding algorithm, quadratic in the rows when
        every point is a seed). ``"cells"``: first on the data reduced to grid
        cells of side ``h / 4`` (each cell's rows at their mean, weighted by
        their count; with every point a seed, each cell one seed standing for
        its rows), then on every row from the centers that stage left, which
        are few: the modes, intensities and labels are those of the exact
        algorithm (the last iterations, the saddle check and the Newton polish
        are exact; see ``docs/founding.md`` for the first stage's error
        bound). With bin seeding or given seeds, those seeds climb on the
        cells. ``"auto"``: cells from 20,000 rows, unless there are more than
        half as many cells as rows (many features: nothing would be saved).
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
        Points within the bandwidth at each center's last shift (flat), or the
        kernel density at each polished mode (gaussian; modes that the saddle
        check could not polish, past 64 features, keep their last shift's).
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
        climb="auto",
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
        self.climb = climb
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

    def fit_iter(self, X, y=None, sample_weight=None, *, resume=None):
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
        resume : Checkpoint, default=None
            The :attr:`IterationState.checkpoint` of an earlier fit of the same
            data and parameters, to continue after its iteration instead of
            starting from the seeds.

        Yields
        ------
        state : IterationState
            ``iteration``, ``centers``, ``n_centers``, ``n_active``,
            ``max_shift``, ``checkpoint`` and ``labels()`` (a pass over the
            data). Seeds at bitwise equal positions count as one center.

        Examples
        --------
        >>> import numpy as np
        >>> from dist_meanshift import MeanShift
        >>> X = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]])
        >>> [s.n_active for s in MeanShift(2, kernel="flat").fit_iter(X)]
        [4, 1, 0]
        """
        check_params(self)
        data = check_input(X, estimator=self, reset=True)
        data = _dask.as_dask(data, self.chunk_rows)
        if data.kind == "numpy":
            yield from self._fit_steps(data, sample_weight, resume)
            return
        # Lazy data is checked for NaN and infinity chunk by chunk in the
        # passes of the fit itself; only a failed check costs a pass, to count.
        source = data.array
        # Labels are built from the source, not from data persisted on this
        # client's cluster: they outlive the client (read again when computed).
        data.source_array = source
        try:
            data.array, data.persisted = _dask.prepare(
                _dask.checked_finite(source), self.persist
            )
            yield from self._fit_steps(data, sample_weight, resume)
        except NonFiniteValues:
            check_finite(*_dask.count_non_finite(source))
            raise

    def _fit_steps(self, data, sample_weight, resume):
        self.__dict__.pop("_labels_in_memory", None)  # an earlier fit's
        weights = check_sample_weight(sample_weight, data)
        bandwidth = self._bandwidth(data, weights, resume)
        fit_data, fit_weights = data, weights
        if self.bin_data is not None and bandwidth > 0:
            fit_data, fit_weights = _binned(data, weights, self.bin_data * bandwidth)
        seeds = (
            None if resume else self._initial_seeds(fit_data, bandwidth, fit_weights)
        )
        bandwidth = float(bandwidth)
        # 0 (an estimate over duplicates) is scikit-learn's: every point a cluster.
        if seeds is not None and bandwidth != 0:
            check_bandwidth_scale(bandwidth, seeds)
        loop = {
            "bandwidth": bandwidth,
            "kernel": self.kernel,
            "max_iter": self.max_iter,
            "tol": self.tol,
            "merge_tol": self.merge_tol,
            "truncate": self.truncate,
            "labeller": lambda centers: _dask.output(
                data, _dask.label(data.array, centers)
            ),
        }
        if self._climbs_on_cells(fit_data, seeds, bandwidth, resume):
            climbed = yield from self._climb_on_cells(
                data, weights, seeds, loop, resume
            )
            if climbed is not None:
                resume, seeds = climbed, None
                # The exact stage runs at least once, even after max_iter on cells.
                loop["max_iter"] = max(self.max_iter, resume.next_iteration)
        w = None if fit_weights is None else fit_weights.array
        rows = _dask.Rows.of(
            fit_data.array,
            w,
            _in_memory(fit_data, fit_weights),
            resident=fit_data.resident,
        )
        try:
            result = yield from iter_mean_shift(
                rows, seeds, dtype=fit_data.array.dtype, resume=resume, **loop
            )
        finally:
            rows.close()  # its chunks' indexes on disk, if any
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
                stacklevel=user_stacklevel(),
            )
        reach = None if self.cluster_all else bandwidth
        self.labels_ = _dask.output(
            data, _dask.label(data.array, self.cluster_centers_, reach)
        )
        source = getattr(data, "source_array", None)
        if source is not None and source is not data.array:
            # The labels of the data held in memory, for this session's own
            # writes (the command's result), and labels_ that any client, or
            # none, can compute after this one is gone.
            self._labels_in_memory = self.labels_
            self.labels_ = _dask.label(source, self.cluster_centers_, reach)

    def _climbs_on_cells(self, data, seeds, bandwidth, resume):
        """Whether the centers climb on grid cells first (``climb``)."""
        if resume is not None:
            return resume.stage == "cells"
        if self.climb == "rows" or bandwidth == 0 or self.bin_data is not None:
            return False
        if self.climb == "cells":
            return True
        return (
            _blocks.kernels.get(self.kernel).climbs_on_cells
            and data.shape[0] >= CLIMB_MIN_ROWS
        )

    def _climb_on_cells(self, data, weights, seeds, loop, resume):
        """The first stage of ``climb="cells"``: the centers climb on the data
        reduced to grid cells of side ``CLIMB_CELL * h`` (every cell a seed
        standing for its rows when every point is a seed).

        Yields the states of its iterations and returns the checkpoint the
        second stage, on every row, starts from: the centers as the first left
        them, all moving again, with the seeds they stand for; or None, with
        nothing done, when ``climb="auto"`` and the cells are more than
        ``CLIMB_MAX_CELLS`` of the rows (in many features each row has a cell
        of its own).
        """
        cells, cell_weights = _binned(data, weights, CLIMB_CELL * loop["bandwidth"])
        counts = cell_weights.to_numpy()
        few = cells.shape[0] <= CLIMB_MAX_CELLS * data.shape[0]
        if resume is None and self.climb == "auto" and not few:
            # Many features: cells of h/4 hold about one row each.
            logger.info(
                "%d grid cells for %d rows: climbing on the rows only",
                cells.shape[0],
                data.shape[0],
            )
            return None
        logger.info(
            "climbing on %d grid cells of side %.3g h first, then on all %d rows",
            cells.shape[0],
            CLIMB_CELL,
            data.shape[0],
        )
        mult = None
        if resume is None and self.seeds is None and not self.bin_seeding:
            keep = counts > 0
            seeds, mult = cells.numpy[keep], counts[keep]
        result = yield from iter_mean_shift(
            _dask.Rows.of(cells.array, cell_weights.array, (cells.numpy, counts)),
            seeds,
            dtype=data.array.dtype,
            resume=resume,
            seed_mult=mult,
            stage="cells",
            **loop,
        )
        climbed = result.centers
        return Checkpoint(
            Centers.moving(climbed.pos, climbed.mult),
            result.n_iter + 1,
            list(result.trace),
            loop["bandwidth"],
        )

    def _session_labels(self):
        """``labels_``, or the same labels read from data this session holds in
        memory (cheaper to compute while its cluster runs; gone with it)."""
        held = self.__dict__.get("_labels_in_memory")
        return self.labels_ if held is None else held

    def _bandwidth(self, data, weights, resume):
        """The bandwidth given, recorded in ``resume``, or estimated for the kernel."""
        if resume is not None:
            return resume.bandwidth
        if self.bandwidth is not None:
            return self.bandwidth
        bandwidth = _seeds.kernel_bandwidth(data, self.kernel, weights=weights)
        logger.info("estimated bandwidth %.6g", bandwidth)
        if bandwidth == 0:
            warnings.warn(
                "The estimated bandwidth is 0: for the sampled rows, their nearest "
                "30% of rows are copies of them (equal rows). Every distinct row "
                "becomes a cluster, as in scikit-learn; set 'bandwidth' to group "
                "them.",
                UserWarning,
                stacklevel=user_stacklevel(),
            )
        return bandwidth

    def save(self, path, *, overwrite=False):
        """Write the fitted model to a zarr result group, as the command writes one.

        ``dist_meanshift.load(path)`` reads it back, and ``dist-meanshift predict``
        labels new data with it.

        Parameters
        ----------
        path : str or os.PathLike
        overwrite : bool, default=False
            Replace an earlier result (never any other directory).

        Returns
        -------
        self : object
        """
        check_is_fitted(self)
        _save(self, path, overwrite=overwrite)
        return self

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
        data = _dask.as_dask(check_input(X, estimator=self, reset=False))
        if data.kind != "numpy":
            check_finite(*_dask.count_non_finite(data.array))
        return _dask.output(data, _dask.label(data.array, self.cluster_centers_))

    def _initial_seeds(self, data, bandwidth, weights):
        if self.seeds is not None:
            return check_seeds(self.seeds, data.shape[1])
        if self.bin_seeding:
            return _seeds.bin_seeds(data, bandwidth, self.min_bin_freq, weights)
        return _seeds.all_points(data, weights)


def _in_memory(data, weights):
    """The rows and weights as numpy arrays when the input was in memory."""
    if data.numpy is None:
        return None
    w = None if weights is None else weights.to_numpy()
    return data.numpy, w


def _binned(data, weights, cell_size):
    """The data reduced to weighted grid cells, as in-memory input."""
    points, counts = _dask.bin_data(
        data.array, cell_size, None if weights is None else weights.array
    )
    cells = _dask.as_dask(InputData(points.astype(data.array.dtype), "numpy"))
    return cells, SampleWeight(
        da.from_array(counts, chunks=(cells.array.chunks[0],)), counts
    )


def _save(model, path, *, overwrite=False):
    """Write a fitted model as a result group, as the command writes its results.

    Parameters
    ----------
    model : MeanShift
        Fitted.
    path : str or os.PathLike
    overwrite : bool, default=False
        Replace an earlier result (never any other directory).

    Returns
    -------
    cluster_sizes : ndarray of shape (n_clusters,)
    """
    from ._outputs import check_output_path, output_lock
    from ._summary import model_attrs
    from .results import write_result

    check_output_path(path, overwrite)
    with output_lock(path):
        return write_result(
            path,
            labels=model.labels_,
            centers=model.cluster_centers_,
            attrs=model_attrs(model),
            overwrite=overwrite,
        )


def load(path):
    """A fitted :class:`MeanShift` from a complete result group.

    The result of ``dist-meanshift run`` or ``fit``, or of :meth:`MeanShift.save`.
    Exported as :func:`dist_meanshift.load`.

    Parameters
    ----------
    path : str or os.PathLike
        The output of ``dist-meanshift run`` or ``fit``.

    Returns
    -------
    MeanShift
        With ``cluster_centers_`` checked as strictly as input data, and the
        parameters and fitted figures the result records.
    """
    import os

    import zarr

    from ._params import BY_NAME
    from .errors import shown
    from .results import _require_inside, read_centers, read_result

    group = read_result(path)
    centers = read_centers(group, path)
    attrs = dict(group.attrs)
    known = MeanShift().get_params()
    stored = attrs.get("params", {})
    name = os.fspath(path)
    if not isinstance(stored, dict):
        raise InputError(
            f"Model {name!r} has params {shown(stored)}, not a table of parameters: "
            "the store is damaged. Fit again, or give an intact result."
        )
    params = {k: v for k, v in stored.items() if k in known}
    for key, value in params.items():
        if key in BY_NAME and BY_NAME[key].kind != "array":
            try:
                BY_NAME[key].check(value)
            except InputError as exc:
                raise InputError(
                    f"Model {name!r} records a bad parameter: {exc} Fit again, or "
                    "give an intact result."
                ) from None
    bandwidth = attrs.get("bandwidth", params.get("bandwidth"))
    if bandwidth is not None and not (
        isinstance(bandwidth, int | float)
        and not isinstance(bandwidth, bool)
        and 0 < bandwidth < np.inf
    ):
        raise InputError(
            f"Model {name!r} records bandwidth {shown(bandwidth)}; a bandwidth is a "
            "finite number > 0. Fit again, or give an intact result."
        )
    model = MeanShift(**params)
    model.cluster_centers_ = centers
    model.n_features_in_ = centers.shape[1]
    for key in ("bandwidth", "n_iter", "converged", "n_unconverged", "trace"):
        if key in attrs:
            setattr(model, f"{key}_", attrs[key])
    names = attrs.get("feature_names_in")
    if names is not None:
        if not (
            isinstance(names, list)
            and len(names) == centers.shape[1]
            and all(isinstance(n, str) for n in names)
        ):
            raise InputError(
                f"Model {name!r} records feature names {shown(names)} that do not "
                f"match its {centers.shape[1]} features: the store is damaged. Fit "
                "again, or give an intact result."
            )
        model.feature_names_in_ = np.asarray(names, dtype=object)
    if "labels" in group and isinstance(group["labels"], zarr.Array):
        _require_inside(group, "labels", name)
        # The labels as stored, read when computed (save gives them back).
        model.labels_ = da.from_zarr(group["labels"])
    return model
