"""The same labels and centers whatever the chunks, workers, threads or processes."""

from __future__ import annotations

import numpy as np
import pytest
from data import write_zarr
from distributed import Client, LocalCluster
from sklearn.datasets import make_blobs

from dist_meanshift import MeanShift

pytestmark = pytest.mark.timeout(300)

X, _ = make_blobs(
    n_samples=3000, centers=5, n_features=3, cluster_std=1.2, random_state=11
)
PARAMS = {"bandwidth": 1.6, "kernel": "gaussian", "bin_seeding": True, "tol": 1e-6}

CLUSTERS = {
    "1 worker, 1 thread": {"n_workers": 1, "threads_per_worker": 1, "processes": False},
    "1 worker, 2 threads": {
        "n_workers": 1,
        "threads_per_worker": 2,
        "processes": False,
    },
    "2 worker processes": {"n_workers": 2, "threads_per_worker": 1, "processes": True},
}


def _fit(data, **extra):
    model = MeanShift(**PARAMS, **extra).fit(data)
    return np.asarray(model.labels_), model.cluster_centers_, model.n_iter_


@pytest.fixture(scope="module")
def reference():
    return _fit(X)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_zarr(tmp_path_factory.mktemp("det") / "X.zarr", X, 250)


def _same(result, reference):
    labels, centers, n_iter = result
    np.testing.assert_array_equal(labels, reference[0])
    # Gaussian sums are float64: other chunks, partitions and CPUs add them in
    # another order, about 1e-16 relative per sum; the README's bound for the
    # centers is 1e-9 of the data's scale (here ~10).
    np.testing.assert_allclose(centers, reference[1], rtol=0, atol=1e-8)
    assert n_iter == reference[2]


@pytest.mark.parametrize("cluster", list(CLUSTERS), ids=list(CLUSTERS))
def test_worker_counts_threads_and_processes_agree(reference, store, cluster):
    with (
        LocalCluster(**CLUSTERS[cluster], dashboard_address=":0") as lc,
        Client(lc),
    ):
        _same(_fit(X), reference)
        _same(_fit(store), reference)


@pytest.mark.parametrize("chunk_rows", [97, 1000, 3000])
def test_chunk_sizes_agree(reference, chunk_rows):
    _same(_fit(X, chunk_rows=chunk_rows), reference)


def test_repeated_runs_are_bitwise_equal(reference, store):
    for _ in range(2):
        labels, centers, _ = _fit(store)
        again_labels, again_centers, _ = _fit(store)
        np.testing.assert_array_equal(labels, again_labels)
        np.testing.assert_array_equal(centers, again_centers)
