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

    def reach(self, bandwidth, truncate=None):
        if bandwidth == 0:
            return bandwidth
        return None if truncate is None else truncate * bandwidth

    def bandwidth(self, radius, n_neighbours):
        """``r / sqrt(2 ln k)``: the ``k`` rows within the radius, even all at
        its edge, weigh together as much as a seed's own row."""
        return radius / np.sqrt(2 * np.log(n_neighbours))


KERNEL = Gaussian()
