"""What a kernel declares: the one place the others differ by kernel."""

from __future__ import annotations

import numpy as np

from ..dense import dense_sums
from ..grid import grid_groups, take_runs


class Kernel:
    """A mean shift kernel: one subclass per module of :mod:`..kernels`.

    Nothing outside a kernel's module compares kernel names: code asks the
    kernel. Attributes are class constants; methods take plain numbers and
    numpy arrays of one block.

    Attributes
    ----------
    name : str
        As given to ``MeanShift(kernel=...)``: the module's name.
    summary : str
        Its weights in a few words, for the command's help.
    indicator : bool
        Weights are 1 within the reach and 0 beyond (else smooth).
    grid_min_centers : int
        From this many centers on, rows are sorted into grid cells of the
        reach (when the reach is finite); below, every pair is evaluated.
    sklearn_postprocess : bool
        Final centers are ordered by intensity and near duplicates suppressed
        as scikit-learn does; else ordered by intensity only.
    merges_stopped : bool
        Stopped centers within ``merge_tol * h`` of each other merge after
        every iteration.
    checks_saddles : bool
        Stopped centers are checked for saddle points of the density (needs
        smooth weights: a kernel-weighted covariance).
    accelerated : bool
        Centers take the accelerated steps of :func:`~..._centers.step`
        (jumps along a steady direction); else scikit-learn's plain step.
    climbs_on_cells : bool
        Centers may climb on the data reduced to grid cells first and finish
        on every row (``MeanShift(climb=...)``): the modes are the same, as
        the kernel is smooth and the last iterations are exact.
    """

    name: str
    summary: str
    indicator: bool
    grid_min_centers: int
    sklearn_postprocess: bool
    merges_stopped: bool
    checks_saddles: bool
    accelerated: bool
    climbs_on_cells: bool

    def reach(self, bandwidth, truncate=None):
        """Distance beyond which the kernel gives no weight, or None (unbounded).

        Parameters
        ----------
        bandwidth : float
        truncate : float, default=None
            Smooth kernels: ignore rows farther than ``truncate * bandwidth``.

        Returns
        -------
        float or None
        """
        raise NotImplementedError

    def bandwidth(self, radius, n_neighbours):
        """The bandwidth matching a neighbourhood radius (see ``estimate_bandwidth``).

        Parameters
        ----------
        radius : float
            The mean distance to the ``n_neighbours``-th nearest row.
        n_neighbours : int

        Returns
        -------
        float
        """
        raise NotImplementedError

    def all_pairs(self, centers, X, bandwidth, reach, sample_weight):
        """Sums of every center against every row, pair by pair (see
        :func:`~..dense.dense_sums`); arguments as :meth:`group_sums`'."""
        return dense_sums(centers, X, bandwidth, self.indicator, reach, sample_weight)

    def group_sums(self, centers, X, bandwidth, reach, sample_weight):
        """Sums of a group of centers against the rows around them.

        By default :meth:`all_pairs`.

        Parameters
        ----------
        centers : ndarray of shape (n_centers, n_features), float64
        X : ndarray of shape (n_rows, n_features)
        bandwidth : float
        reach : float or None
            From :meth:`reach`.
        sample_weight : ndarray of shape (n_rows,) or None

        Returns
        -------
        sums : ndarray of shape (n_centers, n_features)
        weights : ndarray of shape (n_centers,)
        """
        return self.all_pairs(centers, X, bandwidth, reach, sample_weight)

    def row_sums(self, centers, X, bandwidth, reach, sample_weight):
        """Sums of many centers over a block of rows met once, or None.

        A kernel may sum a block that is read for one pass only (a task's
        chunk, a streamed chunk) in compiled loops of its own (the flat
        kernel sorts the block's rows by cells within the task), where
        :meth:`prepare`'s index would cost more to build than it saves. None
        (the default): :meth:`grid_sums` does it. Arguments as
        :meth:`group_sums`'.
        """

    def prepare(self, X, sample_weight, bandwidth, truncate=None, kd_tree=None):
        """The rows of one block made ready for many passes of sums, or None.

        A kernel may sort a block's rows into an index once per fit; the fit
        then hands the prepared block (with its weights) to
        :meth:`prepared_sums` at every pass. None (the default): the rows
        are used as they are.

        Parameters
        ----------
        X : ndarray of shape (n_rows, n_features)
        sample_weight : ndarray of shape (n_rows,) or None
        bandwidth : float
        truncate : float, default=None
        kd_tree : callable, optional
            Given when the block holds every row: returns the arrays
            ``(index, nodes, bounds)`` of scikit-learn's k-d tree of them,
            the order in which its ``MeanShift`` meets them (None where it
            searches by brute force).

        Returns
        -------
        PreparedRows or None
        """

    def prepared_sums(self, centers, prepared, bandwidth):
        """Sums of ``centers`` over a block that :meth:`prepare` made."""
        raise NotImplementedError

    def grid_sums(self, centers, X, bandwidth, reach, sample_weight):
        """Sums of many centers against rows, through a grid of cells ``reach`` wide.

        By default the rows are sorted into cells, and each group of close
        centers meets the rows of the cells around it (:meth:`group_sums`);
        arguments as :meth:`group_sums`'.
        """
        sums = np.zeros(centers.shape)
        weights = np.zeros(len(centers))
        order, groups = grid_groups(centers, X, reach)
        # Rows sorted by cell: the rows around a group of centers are a few slices.
        X = np.asarray(X)[order]
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight)[order]
        for members, runs in groups:
            # One block per group: a copy of a few slices costs less than a
            # call per slice.
            xs = take_runs(X, runs)
            sw = None if sample_weight is None else take_runs(sample_weight, runs)
            s, w = self.group_sums(centers[members], xs, bandwidth, reach, sw)
            sums[members] += s
            weights[members] += w
        return sums, weights

    def __repr__(self):
        return f"<kernel {self.name!r}>"

    def __reduce__(self):
        # One instance per kernel, also in worker processes.
        return (_by_name, (self.name,))


def _by_name(name):
    """The kernel of module ``name`` (how a kernel is unpickled: one instance)."""
    import importlib

    return importlib.import_module(f"{__package__}.{name}").KERNEL
