"""A fit survives one of its workers being killed with SIGKILL mid-iteration."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from clusters import dask_cluster
from data import write_zarr
from distributed import Client
from sklearn.datasets import make_blobs

from dist_meanshift import MeanShift

pytestmark = pytest.mark.timeout(300)


def _kill_a_busy_worker(client, pids, killed):
    """SIGKILL the first worker seen running a shift task; record what it ran."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for address, keys in client.processing().items():
            shifting = [k for k in keys if "shift_partial_sums" in str(k)]
            if shifting and address in pids:
                os.kill(pids[address], signal.SIGKILL)
                killed.append((address, shifting))
                return
        time.sleep(0.005)


@pytest.mark.parametrize("source", ["zarr", "numpy"])
def test_sigkill_of_a_worker_mid_iteration_leaves_the_result_unchanged(
    tmp_path, source
):
    X, _ = make_blobs(
        n_samples=60_000, centers=5, n_features=3, cluster_std=1.0, random_state=4
    )
    X = X.astype(np.float32)
    if source == "zarr":
        data = write_zarr(tmp_path / "X.zarr", X, 6_000)
    else:
        data = X
    params = {"bandwidth": 1.5, "kernel": "gaussian", "seeds": X[::300], "tol": 1e-6}
    with dask_cluster(tmp_path) as address, Client(address) as client:
        client.wait_for_workers(2, timeout=60)
        undisturbed = MeanShift(**params).fit(data)
        expected = np.asarray(undisturbed.labels_)
        pids = client.run(os.getpid)
        killed = []
        model = MeanShift(**params)
        for state in model.fit_iter(data):
            if state.iteration == 2:
                killer = threading.Thread(
                    target=_kill_a_busy_worker, args=(client, pids, killed)
                )
                killer.start()
        killer.join()
        client.wait_for_workers(2, timeout=60)
        new_pids = client.run(os.getpid)
        labels = np.asarray(model.labels_)
    # One worker died while it ran shift tasks of iteration 3 or later, and its
    # nanny started a new process.
    assert len(killed) == 1
    assert killed[0][0] not in new_pids
    assert set(new_pids.values()).isdisjoint({pids[killed[0][0]]})
    assert model.n_iter_ >= 3
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(model.cluster_centers_, undisturbed.cluster_centers_)
