"""kernel="gaussian" finds the modes of the founding algorithm."""

from __future__ import annotations

import numpy as np
import pytest
from data import BLOBS, BLOBS_3D, SIX, UNEVEN
from reference import founding_mean_shift

from dist_meanshift import MeanShift

CASES = [
    (BLOBS, 1.0, {}),
    (BLOBS, 0.5, {}),
    (BLOBS_3D, 2.0, {}),
    (UNEVEN, 1.0, {}),
    (UNEVEN, 0.7, {"tol": 1e-4, "merge_tol": 0.05}),
    (SIX, 1.0, {}),
]


@pytest.mark.parametrize("X,bandwidth,params", CASES)
def test_gaussian_matches_founding_algorithm(X, bandwidth, params):
    modes, labels = founding_mean_shift(X, bandwidth, **params)
    model = MeanShift(bandwidth, **params).fit(X)
    assert model.cluster_centers_.shape == modes.shape
    np.testing.assert_allclose(model.cluster_centers_, modes, atol=1e-3 * bandwidth)
    np.testing.assert_array_equal(model.labels_, labels)


def test_gaussian_is_the_default_kernel_and_gamma_is_documented():
    assert MeanShift().kernel == "gaussian"
    assert "gamma = 1 / (2 h^2)" in MeanShift.__doc__


def test_gaussian_with_given_seeds():
    seeds = np.array([[0.0, 4.0], [2.0, 1.0], [-1.5, 3.0]])
    modes, labels = founding_mean_shift(BLOBS, 1.0, seeds=seeds)
    model = MeanShift(1.0, seeds=seeds).fit(BLOBS)
    np.testing.assert_allclose(model.cluster_centers_, modes, atol=1e-3)
    np.testing.assert_array_equal(model.labels_, labels)


def test_gaussian_cluster_all_false_labels_far_points_minus_one():
    X = np.vstack([BLOBS, [[40.0, 40.0]]])
    seeds = BLOBS[:40]
    model = MeanShift(1.0, seeds=seeds, cluster_all=False).fit(X)
    assert model.labels_[-1] == -1
    assert (model.labels_[:-1] >= -1).all()
    far = np.min(
        np.linalg.norm(X[:, None] - model.cluster_centers_[None], axis=2), axis=1
    )
    np.testing.assert_array_equal(model.labels_ == -1, far > 1.0)


def test_gaussian_float32_gives_float32_centers_close_to_float64():
    m32 = MeanShift(1.0).fit(BLOBS.astype(np.float32))
    m64 = MeanShift(1.0).fit(BLOBS)
    assert m32.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(m32.cluster_centers_, m64.cluster_centers_, atol=1e-3)
    np.testing.assert_array_equal(m32.labels_, m64.labels_)


def test_seeds_far_beyond_reach_are_dropped_and_all_dropped_raises():
    # exp(-d^2 / 2h^2) underflows to 0 beyond ~38 bandwidths: no weight at all.
    with pytest.raises(ValueError, match="No point was within bandwidth"):
        MeanShift(0.1, seeds=[[1e3, 1e3]]).fit(SIX)
    model = MeanShift(1.0, seeds=[[1e3, 1e3], [1.0, 1.0]]).fit(SIX)
    assert len(model.cluster_centers_) == 1
