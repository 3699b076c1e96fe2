"""The founding algorithm climbing on grid cells first (``climb="cells"``).

Its answer is the exact algorithm's (``climb="rows"``): the same number of
clusters, modes within 1e-6 h, the same labels and the same order by
intensity. The first stage's error bound (``Gaussian.cell_shift_bound``) is
checked against the exact shifts where it is tightest and loosest.
"""

from __future__ import annotations

import numpy as np
import pytest
from data import BLOBS_3D
from reference import ridges
from sklearn.datasets import make_blobs

from dist_meanshift import MeanShift
from dist_meanshift._blocks import cell_sums
from dist_meanshift._blocks.kernels.gaussian import KERNEL as GAUSSIAN
from dist_meanshift.estimator import CLIMB_CELL

# Modes agree this closely: both runs end with the same exact iterations
# and Newton polish, which leaves each mode about (1e-5 h)^2 / h from the
# density's true mode (_loop._POLISH_DONE).
MODE_TOL = 1e-6


def _saddle_pair():
    """Two blobs just far enough apart for the density to keep two modes."""
    rs = np.random.RandomState(3)
    return np.r_[rs.normal(0, 1, (600, 2)), rs.normal((4.2, 0), 1, (400, 2))], 1.0


def _cases():
    wide, _ = make_blobs(1500, centers=3, n_features=3, random_state=5)
    narrow, _ = make_blobs(800, centers=3, n_features=2, random_state=6)
    sixteen, _ = make_blobs(1500, centers=4, n_features=16, random_state=7)
    line = np.random.RandomState(8).normal(size=(1000, 1)) * [[1.0]]
    line[:400] += 6
    cases = {
        "blobs 3-D": (BLOBS_3D, 1.5),
        "near a saddle": _saddle_pair(),
        "wide bandwidth": (wide, 20.0),
        "narrow bandwidth": (narrow, 0.05),
        "16 features": (sixteen, 3.0),
        "1 feature": (line, 0.7),
    }
    cases.update(ridges())
    return cases


CASES = _cases()


def _fit(X, h, climb, **kw):
    return MeanShift(bandwidth=h, climb=climb, **kw).fit(X)


def _same_answer(cells, rows, h):
    assert len(cells.cluster_centers_) == len(rows.cluster_centers_)
    gap = np.abs(cells.cluster_centers_ - rows.cluster_centers_).max()
    assert gap <= MODE_TOL * h
    np.testing.assert_array_equal(cells.labels_, rows.labels_)
    # The density at the same polished modes, summed in another order.
    np.testing.assert_allclose(cells.intensity_, rows.intensity_, rtol=1e-9)


@pytest.mark.parametrize("name", list(CASES))
def test_climbing_on_cells_first_gives_the_exact_algorithms_answer(name):
    X, h = CASES[name]
    _same_answer(_fit(X, h, "cells"), _fit(X, h, "rows"), h)


def test_weighted_rows_climb_on_cells_to_the_same_answer():
    X, h = _saddle_pair()
    weights = np.random.RandomState(9).uniform(0.2, 3.0, len(X))
    weights[::7] = 0  # rows that are not there
    cells = MeanShift(bandwidth=h, climb="cells").fit(X, sample_weight=weights)
    rows = MeanShift(bandwidth=h, climb="rows").fit(X, sample_weight=weights)
    _same_answer(cells, rows, h)


def test_auto_climbs_on_cells_from_20000_rows_to_the_exact_answer():
    X, _ = make_blobs(20_000, centers=3, n_features=2, random_state=1)
    auto = MeanShift(bandwidth=1.0).fit(X)
    # The first stage's centers are grid cells, far fewer than the rows.
    assert auto.trace_[0]["n_centers"] < len(X) / 4
    _same_answer(auto, _fit(X, 1.0, "rows"), 1.0)
    for seeding in ({"bin_seeding": True}, {"seeds": X[::100]}):
        _same_answer(
            _fit(X, 1.0, "auto", **seeding), _fit(X, 1.0, "rows", **seeding), 1.0
        )


def test_auto_skips_cells_that_hold_a_row_each():
    # Cells of h/4 in 16 features hold one row each: auto climbs on the rows.
    # The first iteration tells (the whole fit on rows took 36 s of the CI).
    X, _ = make_blobs(20_000, centers=4, n_features=16, random_state=0)
    first = next(iter(MeanShift(bandwidth=3.0, climb="auto").fit_iter(X)))
    assert first.n_centers == len(X)  # every row a center at once
    assert first.checkpoint.stage == "rows"


def test_a_fit_stopped_on_cells_resumes_to_the_same_answer():
    X, h = BLOBS_3D, 1.5
    whole = _fit(X, h, "cells")
    est = MeanShift(bandwidth=h, climb="cells")
    first = next(iter(est.fit_iter(X)))
    assert first.checkpoint.stage == "cells"
    resumed = MeanShift(bandwidth=h, climb="cells")
    for _ in resumed.fit_iter(X, resume=first.checkpoint):
        pass
    np.testing.assert_array_equal(resumed.cluster_centers_, whole.cluster_centers_)
    np.testing.assert_array_equal(resumed.labels_, whole.labels_)


def test_the_flat_kernel_refuses_to_climb_on_cells():
    with pytest.raises(ValueError, match="climb='cells' needs a smooth kernel"):
        MeanShift(bandwidth=1.0, kernel="flat", climb="cells").fit(BLOBS_3D)


def _exact_shifts(centers, X, weights, h):
    """Untruncated shifts; NaN for a center no row reaches (all weights underflow)."""
    out = []
    for c in centers:
        g = weights * np.exp(-((X - c) ** 2).sum(1) / (2 * h * h))
        out.append(g @ X / g.sum() - c if g.sum() > 0 else np.full(len(c), np.nan))
    return np.array(out)


@pytest.mark.parametrize(
    "name",
    [
        "blobs 3-D",
        "near a saddle",
        "wide bandwidth",
        "narrow bandwidth",
        "16 features",
        "1 feature",
        "weighted",
    ],
)
def test_the_cell_stage_shifts_are_within_their_stated_bound(name):
    X, h = CASES[name] if name != "weighted" else _saddle_pair()
    weights = np.ones(len(X))
    if name == "weighted":
        weights = np.random.RandomState(2).uniform(0.1, 5.0, len(X))
    size = CLIMB_CELL * h
    _, w, sums = cell_sums(X, size, weights)
    means = sums / w[:, None]
    # Each cell's farthest row from its mean (the bound's r; cells_sums'
    # cells are floor(x / size), in the order np.unique gives them).
    cell = np.unique(np.floor(X / size), axis=0, return_inverse=True)[1].ravel()
    radius = np.zeros(len(w))
    np.maximum.at(radius, cell, np.linalg.norm(X - means[cell], axis=1))
    assert np.all(radius <= np.sqrt(X.shape[1]) * size)  # the cell diagonal
    # Centers where the approximation is worst: on rows, between modes, far out.
    far = X.max(0) + np.r_[2 * h, np.zeros(X.shape[1] - 1)]
    centers = np.r_[X[:: max(1, len(X) // 40)], X.mean(0, keepdims=True), [far]]
    exact = _exact_shifts(centers, X, weights, h)
    on_cells = _exact_shifts(centers, means, w, h)
    error = np.linalg.norm(exact - on_cells, axis=1)
    reached = np.isfinite(error)
    assert reached.sum() > len(centers) // 2
    centers, error = centers[reached], error[reached]
    # float64 sums of the shifts round at about 1e-12 h.
    for r in (radius, np.sqrt(X.shape[1]) * size):
        bound = GAUSSIAN.cell_shift_bound(centers, means, w, h, r)
        assert np.all(error <= bound + 1e-12 * h)
