"""A zarr dataset larger than the cluster's memory clusters with bounded memory."""

from __future__ import annotations

import numpy as np
import psutil
import pytest
import zarr
from distributed import Client, LocalCluster
from sklearn.metrics import adjusted_rand_score

from dist_meanshift import MeanShift
from dist_meanshift.demo import make_blobs_zarr
from dist_meanshift.results import write_result


@pytest.mark.slow
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("bin_data", [0.1, None], ids=["binned", "exact"])
def test_larger_than_cluster_memory(tmp_path, bin_data):
    rows = 60_000_000  # 720 MB of float32, against 2 x 300 MiB of workers
    path = str(tmp_path / "big.zarr")
    make_blobs_zarr(path, n_samples=rows, n_features=3, centers=8, chunk_rows=1_000_000)
    X = zarr.open_array(path + "/X", mode="r")
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            memory_limit="300MiB",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        model = MeanShift(2.4, kernel="flat", bin_seeding=True, bin_data=bin_data)
        model.fit(X)
        sizes = write_result(
            str(tmp_path / "out.zarr"),
            labels=model.labels_,
            centers=model.cluster_centers_,
            attrs={},
        )
        worker_rss = client.run(lambda: psutil.Process().memory_info().rss)
    assert len(model.cluster_centers_) == 8
    assert sizes.sum() == rows
    # No worker was restarted for memory, and none holds the data.
    assert max(worker_rss.values()) < 300 * 2**20
    labels = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["labels"]
    head = MeanShift(2.4, kernel="flat", bin_seeding=True).fit(X[:200_000])
    assert adjusted_rand_score(head.predict(X[:200_000]), labels[:200_000]) >= 0.99
    assert np.isin(labels[-1000:], np.arange(8)).all()
