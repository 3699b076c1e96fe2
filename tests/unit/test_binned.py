"""Binned mode agrees with exact mode; bin_data validation."""

from __future__ import annotations

import numpy as np
import pytest
from data import BLOBS, BLOBS_3D, UNEVEN
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dist_meanshift import MeanShift
from dist_meanshift._blocks import cell_sums, combine_cell_sums

DENSE, _ = make_blobs(
    n_samples=60_000,
    centers=6,
    n_features=3,
    cluster_std=1.0,
    center_box=(-15, 15),
    random_state=4,
)
DENSE_2D, _ = make_blobs(
    n_samples=40_000,
    centers=[[0, 0], [5, 1], [2, 6]],
    cluster_std=[1.0, 0.7, 1.2],
    random_state=5,
)


def nearest_gap(a, b):
    return np.linalg.norm(a[:, None] - b[None], axis=2).min(axis=1).max()


@pytest.mark.parametrize("kernel", ["flat", "gaussian"])
@pytest.mark.parametrize(
    "X,bandwidth",
    [(DENSE, 2.5), (DENSE_2D, 1.2), (BLOBS, 1.0), (BLOBS_3D, 2.0), (UNEVEN, 1.0)],
    ids=["dense3d", "dense2d", "blobs", "blobs3d", "uneven"],
)
def test_binned_mode_agrees_with_exact_mode(X, bandwidth, kernel):
    exact = MeanShift(bandwidth, kernel=kernel, bin_seeding=True).fit(X)
    binned = MeanShift(bandwidth, kernel=kernel, bin_seeding=True, bin_data=0.05).fit(X)
    assert len(binned.cluster_centers_) == len(exact.cluster_centers_)
    assert adjusted_rand_score(exact.labels_, binned.labels_) >= 0.99
    # Every mode within a few hundredths of the bandwidth of its exact twin.
    gap = nearest_gap(binned.cluster_centers_, exact.cluster_centers_)
    assert gap <= 0.05 * bandwidth


def test_binned_mode_streams_zarr_and_labels_every_row(zarr_input):
    path = zarr_input(DENSE.astype("f4"), chunks=7000)
    model = MeanShift(2.5, kernel="flat", bin_seeding=True, bin_data=0.05).fit(path)
    labels = model.labels_.compute()
    assert labels.shape == (len(DENSE),) and labels.min() >= 0
    exact = MeanShift(2.5, kernel="flat", bin_seeding=True).fit(DENSE)
    assert adjusted_rand_score(exact.labels_, labels) >= 0.99


def test_cell_sums_over_any_split_equal_the_whole():
    whole = cell_sums(DENSE_2D, 0.1)
    parts = combine_cell_sums(
        cell_sums(DENSE_2D[:12345], 0.1), cell_sums(DENSE_2D[12345:], 0.1)
    )
    for a, b in zip(whole, parts, strict=True):
        np.testing.assert_allclose(a, b)
    assert whole[1].sum() == len(DENSE_2D)
    np.testing.assert_allclose(whole[2].sum(axis=0), DENSE_2D.sum(axis=0))


@pytest.mark.parametrize("value", [0, -0.1, float("inf"), "fine"])
def test_bad_bin_data_is_refused(value):
    with pytest.raises(ValueError, match=r"'bin_data' parameter of MeanShift must be"):
        MeanShift(1.0, bin_data=value).fit(BLOBS)


@pytest.mark.parametrize("value", [0, -1.0, "far"])
def test_bad_truncate_is_refused(value):
    with pytest.raises(ValueError, match=r"'truncate' parameter of MeanShift must be"):
        MeanShift(1.0, truncate=value).fit(BLOBS)
