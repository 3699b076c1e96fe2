"""kernel="flat" reproduces scikit-learn's MeanShift."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from data import BLOBS, BLOBS_3D, SIX, UNEVEN
from sklearn.cluster import MeanShift as SkMeanShift
from sklearn.cluster import estimate_bandwidth as sk_estimate_bandwidth
from sklearn.cluster import get_bin_seeds as sk_get_bin_seeds

from dist_meanshift import MeanShift, estimate_bandwidth, get_bin_seeds, mean_shift

DATASETS = {"blobs": BLOBS, "blobs3d": BLOBS_3D, "uneven": UNEVEN, "six": SIX}


def assert_same_fit(ours, ref):
    assert ours.cluster_centers_.shape == ref.cluster_centers_.shape
    assert ours.cluster_centers_.dtype == ref.cluster_centers_.dtype
    np.testing.assert_allclose(
        ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_


@pytest.mark.parametrize("name", DATASETS)
@pytest.mark.parametrize(
    "params",
    [
        {"bandwidth": 1.0},
        {"bandwidth": 2.5},
        {"bandwidth": 0.6, "cluster_all": False},
        {"bandwidth": 1.5, "bin_seeding": True},
        {"bandwidth": 1.0, "bin_seeding": True, "min_bin_freq": 5},
        {"bandwidth": 1.0, "max_iter": 1},
        {"bandwidth": 1.0, "max_iter": 2},
        {},
    ],
    ids=repr,
)
def test_flat_kernel_matches_sklearn(name, params):
    X = DATASETS[name]
    if name == "six" and params.get("min_bin_freq", 1) > 1:
        # scikit-learn crashes on an empty seed list (max() of an empty
        # sequence); we refuse it by name instead.
        with pytest.raises(ValueError, match=r"'min_bin_freq'.*no seed"):
            MeanShift(kernel="flat", **params).fit(X)
        return
    with warnings.catch_warnings():
        # Binning every point into its own cell warns in both libraries alike.
        warnings.simplefilter("ignore", UserWarning)
        ref = SkMeanShift(**params).fit(X)
        ours = MeanShift(kernel="flat", **params).fit(X)
    assert_same_fit(ours, ref)
    np.testing.assert_array_equal(ours.predict(X[::7]), ref.predict(X[::7]))


@pytest.mark.parametrize("name", ["blobs", "blobs3d"])
def test_flat_float32_gives_float32_centers(name):
    X = DATASETS[name].astype(np.float32)
    ref = SkMeanShift(bandwidth=1.2).fit(X)
    ours = MeanShift(1.2, kernel="flat").fit(X)
    assert ours.cluster_centers_.dtype == np.float32
    assert_same_fit(ours, ref)


def test_flat_given_seeds_match_sklearn():
    seeds = np.array([[0.0, 4.0], [2.0, 1.0], [-1.5, 3.0], [1.0, 4.5]])
    ref = SkMeanShift(bandwidth=1.0, seeds=seeds).fit(BLOBS)
    ours = MeanShift(1.0, kernel="flat", seeds=seeds).fit(BLOBS)
    assert_same_fit(ours, ref)


def test_flat_cluster_all_false_gives_orphans_minus_one():
    X = np.vstack([BLOBS, [[30.0, 30.0]]])
    seeds = BLOBS[:50]
    ref = SkMeanShift(bandwidth=1.0, seeds=seeds, cluster_all=False).fit(X)
    ours = MeanShift(1.0, kernel="flat", seeds=seeds, cluster_all=False).fit(X)
    assert ours.labels_[-1] == -1
    assert_same_fit(ours, ref)


def test_distance_exactly_at_bandwidth_counts_as_inside():
    X = np.array([[0.0, 0.0], [3.0, 4.0], [20.0, 0.0]])
    ours = MeanShift(5.0, kernel="flat", seeds=[[0.0, 0.0]], max_iter=1).fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, [[1.5, 2.0]])
    assert ours.intensity_[0] == 2
    labels = MeanShift(5.0, kernel="flat", cluster_all=False).fit(X).labels_
    ref = SkMeanShift(bandwidth=5.0, cluster_all=False).fit(X).labels_
    np.testing.assert_array_equal(labels, ref)


def test_no_point_within_bandwidth_of_any_seed_raises():
    with pytest.raises(ValueError, match=r"No point was within bandwidth=1\.0+ of any"):
        MeanShift(1.0, kernel="flat", seeds=[[100.0, 100.0]]).fit(SIX)


def test_zero_estimated_bandwidth_matches_sklearn():
    X = np.repeat([[1.0, 1.0], [3.0, 3.0]], 5, axis=0)
    ref = SkMeanShift().fit(X)
    with pytest.warns(UserWarning, match="Every distinct row becomes a cluster"):
        ours = MeanShift(kernel="flat").fit(X)
    assert ours.bandwidth_ == 0.0
    assert_same_fit(ours, ref)


def test_mean_shift_function_matches_sklearn():
    centers, labels = mean_shift(BLOBS, bandwidth=1.0, kernel="flat")
    ref = SkMeanShift(bandwidth=1.0).fit(BLOBS)
    np.testing.assert_allclose(centers, ref.cluster_centers_)
    np.testing.assert_array_equal(labels, ref.labels_)


@pytest.mark.parametrize("quantile", [0.1, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("n_samples", [None, 50])
def test_estimate_bandwidth_matches_sklearn(quantile, n_samples):
    ours = estimate_bandwidth(BLOBS_3D, quantile=quantile, n_samples=n_samples)
    ref = sk_estimate_bandwidth(BLOBS_3D, quantile=quantile, n_samples=n_samples)
    assert ours == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("bin_size,min_bin_freq", [(1.0, 1), (1.0, 3), (2.5, 1)])
def test_get_bin_seeds_matches_sklearn(bin_size, min_bin_freq):
    ours = get_bin_seeds(BLOBS, bin_size, min_bin_freq)
    ref = sk_get_bin_seeds(BLOBS, bin_size, min_bin_freq)
    assert ours.dtype == ref.dtype
    sort = np.lexsort(ref.T[::-1])
    np.testing.assert_array_equal(ours, ref[sort])


def test_get_bin_seeds_falls_back_to_points_with_sklearn_warning():
    X = np.array([[0.0, 0.0], [5.0, 5.0]])
    with pytest.warns(UserWarning, match="Binning data failed"):
        seeds = get_bin_seeds(X, 1.0)
    np.testing.assert_array_equal(seeds, X)
    np.testing.assert_array_equal(get_bin_seeds(X, 0), X)


@pytest.mark.parametrize("repeats", [False, True], ids=["blobs", "integer rows"])
@pytest.mark.parametrize("seeding", ["bins", "seeds"])
def test_the_cell_index_matches_sklearn(repeats, seeding):
    # 20,000 rows held in this process are indexed once per fit (the
    # compiled loop); integer rows repeat, as a picture's colours do, and
    # are merged into weighted rows.
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=20_000, centers=6, cluster_std=1.5, random_state=4)
    X = np.round(X * 4) if repeats else X
    h = 6.0 if repeats else 1.5
    params = {"bin_seeding": True} if seeding == "bins" else {"seeds": X[::97]}
    ref = SkMeanShift(bandwidth=h, **params).fit(X)
    ours = MeanShift(h, kernel="flat", **params).fit(X)
    assert_same_fit(ours, ref)


@pytest.mark.parametrize("seeding", ["bins", "every row"])
def test_float32_rows_give_sklearns_centers_bit_for_bit(seeding):
    # scikit-learn's float32 means add the rows within the bandwidth in its
    # k-d tree's order, in float32: a path that float64 means leave by a few
    # ulps per shift, and slow walkers (the pixels of a picture, here 8,000
    # of china.jpg scaled to [0, 1]) then end elsewhere. The same sums in
    # the same order give its centers exactly, and so its labels.
    from sklearn.datasets import load_sample_image

    rng = np.random.default_rng(0)
    pixels = load_sample_image("china.jpg").reshape(-1, 3)
    X = (pixels[rng.choice(len(pixels), 8000, replace=False)] / 255).astype(np.float32)
    params = {"bin_seeding": True} if seeding == "bins" else {"seeds": X[::40]}
    ref = SkMeanShift(bandwidth=0.1, **params).fit(X)
    ours = MeanShift(0.1, kernel="flat", **params).fit(X)
    np.testing.assert_array_equal(ours.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
