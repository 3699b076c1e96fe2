"""Right answers in the corners: units, slow ridges, many features, ties."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from reference import founding_mean_shift, ridges
from sklearn.cluster import MeanShift as SklearnMeanShift
from sklearn.datasets import (
    load_digits,
    load_iris,
    make_blobs,
)
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from dist_meanshift import MeanShift, estimate_bandwidth

UNITS_X, _ = make_blobs(1500, centers=5, n_features=2, random_state=1)


@pytest.fixture(scope="module")
def unit_reference():
    return SklearnMeanShift(bandwidth=1.5, bin_seeding=True).fit(UNITS_X).labels_


@pytest.mark.parametrize("scale", [1e-12, 1e-9, 1e-3, 1.0, 1e3, 1e9, 1e12])
@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_units_and_offsets_never_change_the_labels(unit_reference, scale, offset):
    # An offset of 1e6 spreads 10: float64 still resolves 1e-10 of the spread.
    X = (UNITS_X + offset) * scale
    model = MeanShift(1.5 * scale, kernel="flat", bin_seeding=True).fit(X)
    np.testing.assert_array_equal(model.labels_, unit_reference)
    np.testing.assert_array_equal(model.predict(X), model.labels_)
    gauss = MeanShift(0.8 * scale).fit(X)
    base = MeanShift(0.8).fit(UNITS_X)
    np.testing.assert_array_equal(gauss.labels_, base.labels_)
    np.testing.assert_allclose(
        gauss.cluster_centers_ / scale - offset, base.cluster_centers_, atol=1e-6
    )


RIDGES = ridges()


@pytest.mark.parametrize("name", list(RIDGES))
def test_gaussian_reaches_the_founding_modes_on_ridges_in_fewer_iterations(name):
    X, h = RIDGES[name]
    modes, labels, founding_iter = founding_mean_shift(X, h, return_n_iter=True)
    model = MeanShift(h).fit(X)
    assert model.cluster_centers_.shape == modes.shape
    # The same modes, in the same order (by density), within 1e-3 h.
    np.testing.assert_allclose(model.cluster_centers_, modes, rtol=0, atol=1e-3 * h)
    np.testing.assert_array_equal(model.labels_, labels)
    assert model.converged_
    assert model.n_iter_ < founding_iter / 2


def test_moons_finds_five_modes_where_a_small_shift_stopped_at_seven():
    X, h = RIDGES["moons"]
    assert len(MeanShift(h).fit(X).cluster_centers_) == 5


@pytest.mark.parametrize("n_features", [65, 256, 1000])
def test_many_features_in_every_mode(n_features, caplog):
    X, _ = make_blobs(300, n_features=n_features, centers=3, random_state=0)
    h = 1.5 * np.sqrt(n_features)
    with caplog.at_level(logging.INFO, logger="dist_meanshift"):
        MeanShift(h, kernel="flat").fit(X)
    assert f"{n_features} features: no grid" in caplog.text
    for params in (
        {"kernel": "flat"},
        {"kernel": "flat", "bin_data": 0.1},
        {"kernel": "gaussian"},
        {"kernel": "gaussian", "bin_data": 0.1},
    ):
        model = MeanShift(h, **params).fit(X)
        assert len(model.cluster_centers_) == 3, params
    # Bin seeds sit on grid corners, far from every point in many dimensions:
    # scikit-learn refuses the same way.
    with pytest.raises(ValueError, match="No point was within bandwidth"):
        SklearnMeanShift(bandwidth=h, bin_seeding=True).fit(X)
    with pytest.raises(ValueError, match="No point was within bandwidth"):
        MeanShift(h, kernel="flat", bin_seeding=True).fit(X)
    model = MeanShift(h, kernel="gaussian", bin_seeding=True).fit(X)
    assert len(model.cluster_centers_) >= 1


@pytest.mark.parametrize(
    "bandwidth",
    [
        25.0,
        pytest.param(22.0, marks=pytest.mark.slow),
        pytest.param(25.5, marks=pytest.mark.slow),
    ],
)
def test_digits_in_64_dimensions_equal_scikit_learn(bandwidth):
    X = load_digits().data
    # One reference for both dtypes (its fit is most of this test's time): the
    # digits are integers 0-16, the same numbers in uint8 and float64, and
    # scikit-learn's neighbour search computes in float64 either way.
    assert np.array_equal(X, X.astype(np.uint8))
    ref = SklearnMeanShift(bandwidth=bandwidth).fit(X)
    for dtype in (np.float64, np.uint8):
        ours = MeanShift(bandwidth, kernel="flat").fit(X.astype(dtype))
        np.testing.assert_allclose(
            ours.cluster_centers_, ref.cluster_centers_, atol=1e-9
        )
        np.testing.assert_array_equal(ours.labels_, ref.labels_)


def test_bandwidth_estimate_suits_the_kernel():
    X, _ = make_blobs(n_samples=3000, centers=5, n_features=3, random_state=0)
    flat = estimate_bandwidth(X, quantile=0.1)
    gauss = estimate_bandwidth(X, quantile=0.1, kernel="gaussian")
    assert type(flat) is np.float64 and type(gauss) is np.float64
    # 3000 rows, quantile 0.1: the radius counts k = 300 neighbours.
    assert gauss == pytest.approx(flat / np.sqrt(2 * np.log(300)), rel=1e-12)
    # The README's quickstart: 5 blobs with the default (Gaussian) kernel.
    assert len(MeanShift(bandwidth=gauss).fit(X).cluster_centers_) == 5
    iris = StandardScaler().fit_transform(load_iris().data)
    assert len(MeanShift().fit(iris).cluster_centers_) > 1
    with pytest.raises(ValueError, match="'kernel' parameter of estimate_bandwidth"):
        estimate_bandwidth(X, kernel="epanechnikov")


def test_small_in_memory_fits_build_no_task_graph_per_iteration():
    from dask.callbacks import Callback

    started = []

    class Record(Callback):
        def _pretask(self, key, dsk, state):
            started.append(str(key))

    X, h = RIDGES["moons"]
    with Record():
        model = MeanShift(h).fit(X)
    assert model.n_iter_ > 10
    # The labels are one small graph; no shift or moment task ran.
    assert not any("shift_partial_sums" in k or "local_moments" in k for k in started)
    assert len(started) < 50


@pytest.mark.parametrize("n_features", [2, 3, 16, 64, 256])
def test_default_gaussian_bandwidth_finds_the_groups_in_any_dimension(n_features):
    # Under r / sqrt(d + 2) every row of the 256-feature case was its own
    # cluster (rows sit ~22 apart, sigma was 1.42).
    X, y = make_blobs(
        n_samples=400,
        n_features=n_features,
        centers=4,
        center_box=(-20, 20),
        random_state=0,
    )
    model = MeanShift().fit(X)
    assert len(model.cluster_centers_) == 4
    assert adjusted_rand_score(y, model.labels_) == 1.0


def test_default_gaussian_bandwidth_two_groups_in_256_features():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(250, 256)), rng.normal(size=(250, 256)) + 5])
    model = MeanShift().fit(X)
    assert len(model.cluster_centers_) == 2
    assert adjusted_rand_score(np.repeat([0, 1], 250), model.labels_) == 1.0
