"""A fitted model stays usable after the cluster it was fitted on is gone."""

from __future__ import annotations

import numpy as np
from data import BLOBS
from distributed import Client, LocalCluster

from dist_meanshift import MeanShift


def test_labels_outlive_the_client(zarr_input):
    # The docs' pattern: fit a zarr dataset on a cluster, read labels after it.
    path = zarr_input(BLOBS, chunks=100)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster),
    ):
        model = MeanShift(kernel="flat", bandwidth=1.0, persist=True).fit(path)
    labels = np.asarray(model.labels_)  # no client now: threads compute it
    expected = MeanShift(kernel="flat", bandwidth=1.0).fit(BLOBS)
    np.testing.assert_array_equal(labels, expected.labels_)
    np.testing.assert_array_equal(model.predict(BLOBS[:7]), expected.labels_[:7])
