"""The Gaussian kernel: every row weighs ``exp(-||x - c||^2 / (2 h^2))``.

The founding algorithm's kernel. Its reach is unbounded unless truncated;
its bandwidth is a standard deviation (see :meth:`Gaussian.bandwidth`);
stopped centers merge within ``merge_tol * h``, are checked for saddles, and
moving ones take accelerated steps.
"""

from __future__ import annotations

import numpy as np

from .base import Kernel


class Gaussian(Kernel):
    """Smooth weights ``exp(-||x - c||^2 / (2 h^2))``, truncated at ``truncate * h``."""

    name = "gaussian"
    summary = "every point weighs exp(-d^2 / 2h^2)"
    indicator = False
    # Below this many centers, sorting the rows into grid cells costs more
    # than evaluating every pair (measured on blobs in 3-D).
    grid_min_centers = 16
    sklearn_postprocess = False
    merges_stopped = True
    checks_saddles = True
    accelerated = True
    climbs_on_cells = True

    def reach(self, bandwidth, truncate=None):
        if bandwidth == 0:
            return bandwidth
        return None if truncate is None else truncate * bandwidth

    def bandwidth(self, radius, n_neighbours):
        """``r / sqrt(2 ln k)``: the ``k`` rows within the radius, even all at
        its edge, weigh together as much as a seed's own row."""
        return radius / np.sqrt(2 * np.log(n_neighbours))

    def cell_shift_bound(self, centers, means, weights, bandwidth, radius):
        """How far the mean shift on grid cells can be from the one on rows.

        The first stage of ``climb="cells"`` replaces the rows of each grid
        cell of side ``cell_size`` by their weighted mean ``mu_k``, weighted by
        their total weight ``n_k``. For a center ``c``, with ``u_k = mu_k - c``
        and ``r`` the largest distance of a row from its cell's mean (at most
        the cell's diagonal, ``sqrt(d) * cell_size``), every row's weight is its cell's ``g(u_k)`` times ``e^a`` with
        ``|a| <= t_k = (|u_k| r + r^2 / 2) / h^2``, and the rows' offsets from
        their mean sum to 0, so that (Taylor, second order)::

            |W - W~| <= B_W = sum_k n_k g(u_k) eps_k,
                eps_k = r^2 / 2h^2 + t_k^2 / 2 * e^t_k
            |S - S~| <= B_S = sum_k n_k g(u_k) (|u_k| eps_k + r (e^t_k - 1))

        for the weight ``W`` and the first moment ``S`` about ``c``, exact and
        on cells (``~``). The shift ``S / W`` then differs from the one on
        cells by at most ``(B_S + |S~ / W~| B_W) / (W~ - B_W)``.

        A worst-case bound: it assumes every row as far from its cell's mean
        as the farthest. With ``r`` the diagonal of cells of side ``h / 4``,
        on 3-D blobs, it is some tenths of ``h`` where the shifts differ by
        about ``1e-4 h``. The final modes do not depend on
        it: the last iterations, the saddle check and the polish run on rows.

        Parameters
        ----------
        centers : ndarray of shape (n_centers, n_features)
        means : ndarray of shape (n_cells, n_features)
            The weighted mean of each cell's rows.
        weights : ndarray of shape (n_cells,)
            The total weight of each cell's rows.
        bandwidth : float
        radius : float or ndarray of shape (n_cells,)
            ``r``, for all cells or for each.

        Returns
        -------
        ndarray of shape (n_centers,)
            The bound on ``|m(c) - m~(c)|`` per center; ``inf`` where the
            weight on cells does not exceed its own error bound.
        """
        centers = np.asarray(centers, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        r = np.asarray(radius, dtype=np.float64)
        h2 = bandwidth**2
        out = np.empty(len(centers))
        for i, c in enumerate(centers):
            u = means - c
            dist = np.sqrt(np.einsum("ij,ij->i", u, u))
            log_g = -(dist**2) / (2 * h2)
            t = (dist * r + r**2 / 2) / h2
            # g e^t in one exponent: far cells have e^t huge and g tiny.
            g, g_up = weights * np.exp(log_g), weights * np.exp(log_g + t)
            g_eps = g * r**2 / (2 * h2) + g_up * t**2 / 2
            w, bound_w = g.sum(), g_eps.sum()
            s = g @ u
            bound_s = g_eps @ dist + np.sum(r * (g_up - g))
            shift = np.linalg.norm(s) / w if w > 0 else 0.0
            spare = w - bound_w
            out[i] = (bound_s + shift * bound_w) / spare if spare > 0 else np.inf
        return out


KERNEL = Gaussian()
