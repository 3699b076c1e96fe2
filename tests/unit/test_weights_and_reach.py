"""sample_weight in every part of a fit; kernels that stop at their reach."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from data import BLOBS, BLOBS_3D, UNEVEN
from reference import founding_mean_shift

from dist_meanshift import MeanShift, estimate_bandwidth, get_bin_seeds
from dist_meanshift._blocks import shift_partial_sums
from dist_meanshift._blocks.grid import grid_groups

WEIGHTS = np.random.default_rng(0).integers(0, 4, len(BLOBS))
REPEATED = np.repeat(BLOBS, WEIGHTS, axis=0)


@pytest.mark.parametrize("bin_seeding", [False, True])
def test_integer_weights_equal_repeated_rows_flat(bin_seeding):
    weighted = MeanShift(kernel="flat", bin_seeding=bin_seeding).fit(
        BLOBS, sample_weight=WEIGHTS
    )
    repeated = MeanShift(kernel="flat", bin_seeding=bin_seeding).fit(REPEATED)
    np.testing.assert_allclose(
        weighted.cluster_centers_, repeated.cluster_centers_, atol=1e-12
    )
    np.testing.assert_array_equal(weighted.predict(REPEATED), repeated.labels_)
    assert weighted.bandwidth_ == pytest.approx(repeated.bandwidth_, rel=1e-12)


def test_integer_weights_equal_repeated_rows_gaussian_and_dask_weights():
    weighted = MeanShift(1.0).fit(
        da.from_array(BLOBS, chunks=(70, 2)),
        sample_weight=da.from_array(WEIGHTS, chunks=50),
    )
    repeated = MeanShift(1.0).fit(REPEATED)
    np.testing.assert_allclose(
        weighted.cluster_centers_, repeated.cluster_centers_, atol=1e-4
    )


def test_weights_reach_bandwidth_and_bins():
    assert estimate_bandwidth(BLOBS, sample_weight=WEIGHTS) == pytest.approx(
        estimate_bandwidth(REPEATED), rel=1e-12
    )
    assert estimate_bandwidth(BLOBS, sample_weight=np.ones(len(BLOBS))) == (
        pytest.approx(estimate_bandwidth(BLOBS), rel=1e-12)
    )
    model = MeanShift(1.0, kernel="flat", bin_seeding=True, min_bin_freq=8)
    weighted = model.fit(BLOBS, sample_weight=WEIGHTS).cluster_centers_
    repeated = MeanShift(1.0, kernel="flat", bin_seeding=True, min_bin_freq=8).fit(
        REPEATED
    )
    np.testing.assert_allclose(weighted, repeated.cluster_centers_, atol=1e-12)
    assert len(get_bin_seeds(REPEATED, 1.0, 8)) > 0


@pytest.mark.parametrize(
    "weights,match",
    [
        (np.ones(5), r"sample_weight has shape \(5,\).*300 rows"),
        (-np.ones(300), r"finite and non-negative\. Got minimum -1\.0"),
        (np.full(300, np.nan), r"finite and non-negative"),
        (np.zeros(300), r"all zero"),
        (np.array(["a"] * 300), r"Give one number per row"),
    ],
    ids=["length", "negative", "nan", "zeros", "strings"],
)
def test_bad_sample_weight_is_refused(weights, match):
    with pytest.raises(ValueError, match=match):
        MeanShift(1.0).fit(BLOBS, sample_weight=weights)


@pytest.mark.parametrize("X,bandwidth", [(BLOBS, 1.0), (BLOBS_3D, 1.5), (UNEVEN, 0.5)])
def test_truncated_gaussian_moves_modes_by_less_than_1e5_bandwidth(X, bandwidth):
    exact = MeanShift(bandwidth, truncate=None).fit(X)
    truncated = MeanShift(bandwidth, truncate=6.0).fit(X)
    modes, labels = founding_mean_shift(X, bandwidth)
    np.testing.assert_allclose(exact.cluster_centers_, modes, atol=1e-3 * bandwidth)
    np.testing.assert_allclose(
        truncated.cluster_centers_, exact.cluster_centers_, atol=1e-5 * bandwidth
    )
    np.testing.assert_array_equal(truncated.labels_, labels)


def test_far_points_cost_nothing_and_change_nothing():
    near = BLOBS
    far = BLOBS + 1000.0
    both = np.vstack([near, far])
    centers = near[:20]
    for kernel, truncate in [("flat", None), ("gaussian", 6.0)]:
        alone = shift_partial_sums(centers, near, 1.0, kernel, truncate=truncate)
        mixed = shift_partial_sums(centers, both, 1.0, kernel, truncate=truncate)
        # Gaussian sums are float32 within blocks of rows: blocks made of
        # other rows round differently.
        rtol = 1e-12 if kernel == "flat" else 1e-6
        np.testing.assert_allclose(mixed[0], alone[0], rtol=rtol)
        np.testing.assert_allclose(mixed[1], alone[1], rtol=rtol)
    # The far rows are not even visited: no run of rows reaches them.
    order, groups = grid_groups(centers, both, 6.0)
    visited = np.concatenate([order[a:b] for _, runs in groups for a, b in runs])
    assert visited.max() < len(near)


def test_float32_gaussian_is_computed_close_to_float64():
    m32 = MeanShift(1.0).fit(BLOBS_3D.astype(np.float32))
    m64 = MeanShift(1.0).fit(BLOBS_3D)
    np.testing.assert_allclose(m32.cluster_centers_, m64.cluster_centers_, atol=1e-3)
    np.testing.assert_array_equal(m32.labels_, m64.labels_)
