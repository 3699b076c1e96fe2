"""The mean shift loop: iterate, stop, merge, leave saddles; one state per iteration.

Each iteration shifts the centers that still move (a map-reduce over the
data, see ``_dask``), then decides on the client, in numpy (see
``_centers``), where each center goes, which stop and which merge. The loop
yields an :class:`IterationState` after every iteration and returns a
:class:`MeanShiftResult` when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np

from . import _blocks, _centers
from ._centers import Centers
from ._checkpoint import Checkpoint
from ._dask import Rows
from .errors import InputError

logger = logging.getLogger(__name__)

# Stopped Gaussian centers are checked for saddle points up to this many
# features (the check forms a features x features covariance per center).
_MAX_MOMENT_FEATURES = 64
# A stopped center is a saddle when the kernel-weighted covariance around it
# has an eigenvalue above (1 + margin) h^2; it restarts this far either side.
_SADDLE_MARGIN = 1e-3
_SADDLE_STEP = 0.1
# Modes are polished by at most this many Newton steps, until one moves a mode
# by at most _POLISH_DONE * h (the error left is then of order its square).
_POLISH_STEPS = 4
_POLISH_DONE = 1e-5


@dataclass(frozen=True)
class IterationState:
    """The state of a mean shift fit after one iteration.

    Attributes
    ----------
    iteration : int
        Iterations completed, counted as scikit-learn's ``n_iter_`` counts
        them: 0 after the first shift of the seeds.
    centers : ndarray of shape (n_centers, n_features)
        Current distinct center positions, moving and stopped.
    n_centers : int
        Number of distinct centers.
    n_active : int
        Number of centers that still move.
    max_shift : float
        Largest distance a center moved in this iteration.
    checkpoint : Checkpoint
        Everything needed to resume the fit after this iteration.
    """

    iteration: int
    centers: np.ndarray
    n_centers: int
    n_active: int
    max_shift: float
    checkpoint: Checkpoint = field(repr=False, compare=False)
    _labeller: Callable = field(repr=False, compare=False, default=None)

    def labels(self):
        """Index of the nearest current center for every data row.

        A pass over the data: numpy in, numpy out; dask or zarr in, a lazy
        dask array out.
        """
        return self._labeller(self.centers)


@dataclass
class MeanShiftResult:
    """Outcome of a mean shift run, before labelling.

    Attributes
    ----------
    cluster_centers : ndarray of shape (n_clusters, n_features)
        Modes, ordered by decreasing intensity.
    intensity : ndarray of shape (n_clusters,)
        Kernel weight around each mode: at its last shift, or at the mode
        itself once polished (see :func:`_polish`).
    n_iter : int
        Largest number of completed iterations of any seed (scikit-learn's
        ``n_iter_``: the shift that found convergence is not counted).
    trace : list of dict
        Per-iteration figures: ``iteration``, ``n_centers``, ``n_active``,
        ``max_shift``.
    n_unconverged : int
        Centers still moving when ``max_iter`` stopped them.
    centers : Centers or None
        The distinct centers as the last iteration left them (with the seeds
        each stands for), before ordering.
    """

    cluster_centers: np.ndarray
    intensity: np.ndarray
    n_iter: int
    trace: list = field(default_factory=list)
    n_unconverged: int = 0
    centers: Centers | None = field(default=None, repr=False)

    @property
    def converged(self):
        """Whether every center stopped before ``max_iter``."""
        return self.n_unconverged == 0


def iter_mean_shift(
    rows: Rows,
    seeds,
    *,
    bandwidth,
    dtype,
    kernel="gaussian",
    max_iter=300,
    tol=1e-3,
    merge_tol=0.1,
    truncate=None,
    labeller=None,
    resume=None,
    seed_mult=None,
    stage="rows",
) -> Generator[IterationState, None, MeanShiftResult]:
    """Run mean shift iterations, yielding the state after each.

    Every seed climbs to the kernel-weighted mean of the data around it until it
    moves by at most ``tol * bandwidth`` (or ``max_iter`` iterations are done).
    Seeds whose positions are bitwise equal follow the same path from then on
    and are shifted once. Seeds with no data within reach are dropped.

    With the Gaussian kernel, stopped centers within ``merge_tol * bandwidth``
    of each other are merged into their (seed-count weighted) mean after every
    iteration. With the flat kernel, the final centers are post-processed as
    scikit-learn does (near duplicates within the bandwidth suppressed).

    Parameters
    ----------
    rows : Rows
        The validated data (and row weights).
    seeds : ndarray of shape (n_seeds, n_features)
    bandwidth : float
    dtype : numpy.dtype
        The data's float type: positions are rounded to it after every shift.
    kernel : {"gaussian", "flat"} or Kernel
        What the kernel does is asked of it (see :mod:`._blocks.kernels`).
    max_iter : int
    tol : float
    merge_tol : float
    truncate : float or None
        Gaussian kernel: ignore points beyond ``truncate * bandwidth``.
    labeller : callable, optional
        Turns centers into labels for :meth:`IterationState.labels`.
    resume : Checkpoint, optional
        A state to continue from instead of seeds.
    seed_mult : ndarray of shape (n_seeds,), optional
        How many seeds each seed stands for (a grid cell's rows); 1 each by
        default. Merged centers sit at the mean of their seeds so weighted.
    stage : {"rows", "cells"}
        What ``rows`` are, as recorded in each checkpoint.

    Yields
    ------
    IterationState

    Returns
    -------
    MeanShiftResult
        As the generator's return value (``result = yield from ...``).
    """
    if resume is None:
        centers, trace, first = Centers.from_seeds(seeds, seed_mult), [], 0
    else:
        centers = resume.centers.copy()
        trace, first = list(resume.trace), resume.next_iteration
        logger.info("resuming after iteration %d", first - 1)
    kernel = _blocks.kernels.get(kernel)
    n_features = np.shape(seeds)[1] if resume is None else centers.pos.shape[1]
    check_saddles = _log_limits(kernel, bandwidth, n_features)
    kernel_args = {"bandwidth": bandwidth, "kernel": kernel, "truncate": truncate}
    last, n_unconverged = first - 1, 0  # the last iteration done
    for t in range(first, max_iter + 1):
        if not centers.active.any() and check_saddles:
            centers = _leave_saddles(rows, centers, bandwidth, dtype)
            centers = centers.merge_stopped(merge_tol * bandwidth, dtype)
        if not centers.active.any():
            break
        last = t
        centers, shift = _iterate(rows, centers, kernel_args, tol, dtype, t == max_iter)
        if t == max_iter:
            n_unconverged = int(centers.active.sum())
            centers.active[:] = False
        # At max_iter the centers still moving are stopped, not converged: the
        # trace (and the plot drawn from it) says how many there were.
        if kernel.merges_stopped:
            centers = centers.merge_stopped(merge_tol * bandwidth, dtype)
        centers = centers.collapse_identical()
        figures = {
            "iteration": t,
            "n_centers": len(centers),
            "n_active": n_unconverged if t == max_iter else int(centers.active.sum()),
            "max_shift": float(shift.max()) if len(shift) else 0.0,
        }
        trace.append(figures)
        logger.info(
            "iteration %(iteration)d: %(n_centers)d centers, %(n_active)d moving, "
            "largest shift %(max_shift).3g",
            figures,
        )
        checkpoint = Checkpoint(
            centers.copy(), t + 1, list(trace), bandwidth, stage=stage
        )
        yield IterationState(
            iteration=t,
            centers=centers.pos.astype(dtype),
            n_centers=figures["n_centers"],
            n_active=figures["n_active"],
            max_shift=figures["max_shift"],
            checkpoint=checkpoint,
            _labeller=labeller,
        )
    return _result(centers, kernel, bandwidth, dtype, last, trace, n_unconverged)


def _iterate(rows, centers, kernel_args, tol, dtype, last):
    """One shift of the moving centers; those with no data within reach go."""
    moving = np.flatnonzero(centers.active)
    sums, weights = rows.shift_sums(centers.pos[moving], **kernel_args)
    reached = weights > 0
    if not reached.all():
        keep = np.ones(len(centers), dtype=bool)
        keep[moving[~reached]] = False
        centers = centers.take(keep)
        moving = np.flatnonzero(centers.active)
        sums, weights = sums[reached], weights[reached]
    # Round to the data's precision so a float32 fit follows the same path
    # as a float32 computation would.
    new = (sums / weights[:, None]).astype(dtype).astype(np.float64)
    bandwidth = kernel_args["bandwidth"]
    shift = _centers.step(
        centers,
        moving,
        new,
        weights,
        kernel=kernel_args["kernel"],
        stop_thresh=tol * bandwidth,
        bandwidth=bandwidth,
        last=last,
    )
    return centers, shift


def _result(centers, kernel, bandwidth, dtype, last, trace, n_unconverged):
    """The modes in the order of their intensity (flat: scikit-learn's post-processing)."""
    if len(centers) == 0:
        raise InputError(
            f"No point was within bandwidth={bandwidth:f} of any seed. Try a "
            "different seeding strategy or increase the bandwidth."
        )
    if kernel.sklearn_postprocess:
        modes, strength = _centers.sklearn_postprocess(
            centers.pos, centers.intensity, bandwidth
        )
    else:
        order = _blocks.order_by_intensity(centers.pos, centers.intensity)
        modes, strength = centers.pos[order], centers.intensity[order]
    return MeanShiftResult(
        modes.astype(dtype), strength, last, trace, n_unconverged, centers
    )


def _log_limits(kernel, bandwidth, n_features):
    """Whether stopped centers are checked for saddles; log what many features turn off."""
    check_saddles = (
        kernel.checks_saddles and bandwidth > 0 and n_features <= _MAX_MOMENT_FEATURES
    )
    if n_features > _blocks.GRID_MAX_FEATURES:
        logger.info(
            "%d features: no grid of the kernel's reach (its cells would hold about "
            "one row each); every center meets every row",
            n_features,
        )
    if kernel.checks_saddles and bandwidth > 0 and not check_saddles:
        logger.info(
            "%d features: stopped centers are not checked for saddle points "
            "(the check forms a features x features matrix per center)",
            n_features,
        )
    return check_saddles


def _leave_saddles(rows, centers, bandwidth, dtype):
    """Restart the stopped centers that sit on saddle points of the density.

    Along a ridge a center can creep towards a saddle and stop there, where the
    founding algorithm (shifting until nothing moves) would in time slide off
    to a mode. A stopped center whose kernel-weighted covariance has an
    eigenvalue above ``h^2`` is such a point (see
    :func:`_blocks.local_moments`): it is replaced by two moving centers a
    tenth of a bandwidth either side along that eigenvector, each standing for
    half its seeds. The other stopped centers (modes) are polished by Newton
    steps (see :func:`_polish`).
    """
    stopped = np.flatnonzero(~centers.active & ~centers.checked)
    if len(stopped) == 0:
        return centers
    mean, jacobian, (values, vectors), density = _moments(
        rows, centers.pos[stopped], bandwidth
    )
    centers.checked[stopped] = True
    # A margin over 1 keeps flat-topped modes (eigenvalue near 1) where they are.
    saddle = values[:, -1] > 1 + _SADDLE_MARGIN
    mode = values[:, -1] < 1 - _SADDLE_MARGIN
    centers.intensity[stopped[mode]] = density[mode]
    _polish(
        rows, centers, stopped[mode], (mean[mode], jacobian[mode]), bandwidth, dtype
    )
    if not saddle.any():
        return centers
    logger.info("%d stopped centers are saddle points: moving on", saddle.sum())
    index = stopped[saddle]
    away = _SADDLE_STEP * bandwidth * vectors[saddle, :, -1]
    both = np.repeat(index, 2)
    pos = centers.pos[both] + np.stack([away, -away], axis=1).reshape(len(both), -1)
    pair = Centers.moving(pos.astype(dtype), centers.mult[both] / 2)
    keep = np.ones(len(centers), dtype=bool)
    keep[index] = False
    return Centers.concat(centers.take(keep), pair)


def _polish(rows, centers, index, moments, bandwidth, dtype):
    """Newton steps on ``m(x) = x`` for the modes ``index``, in place.

    Linear convergence leaves a center up to ``tol * h`` short of its mode;
    each Newton step squares that error (it is the geometric tail of the
    shifts, in every direction). Steps go on, a pass over the rows each,
    while one moves a mode by more than ``_POLISH_DONE * h``: after a step
    that short the error left is of order its square, far below ``1e-6 h``.

    Parameters
    ----------
    moments : tuple of ndarray
        ``(mean, jacobian)`` of the modes ``index``, from :func:`_moments`.
    """
    eye = np.eye(centers.pos.shape[1])
    for _ in range(_POLISH_STEPS):
        if len(index) == 0:
            return
        mean, jacobian = moments
        delta = np.linalg.solve(eye - jacobian, mean[:, :, None])[..., 0]
        size = np.linalg.norm(delta, axis=1)
        short = size <= _SADDLE_STEP * bandwidth
        index, delta, size = index[short], delta[short], size[short]
        new = (centers.pos[index] + delta).astype(dtype).astype(np.float64)
        moved = np.any(new != centers.pos[index], axis=1)
        centers.pos[index] = new
        index = index[moved & (size > _POLISH_DONE * bandwidth)]
        if len(index):
            mean, jacobian, _, density = _moments(rows, centers.pos[index], bandwidth)
            moments = mean, jacobian
            centers.intensity[index] = density


def _moments(rows, points, bandwidth):
    """Mean shift vectors, Jacobians of the mean map, their eigen-decomposition,
    and the (untruncated) kernel density at ``points``."""
    weight, first, second = rows.map_reduce(_blocks.local_moments, points, bandwidth)
    mean = first / weight[:, None]
    cov = second / weight[:, None, None] - mean[:, :, None] * mean[:, None, :]
    jacobian = cov / bandwidth**2
    return mean, jacobian, np.linalg.eigh(jacobian), weight
