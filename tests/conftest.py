from __future__ import annotations

import pytest
from distributed import Client, LocalCluster


@pytest.fixture(params=["threads", "distributed"])
def scheduler(request):
    """Run the test on local threads, then on an in-process distributed cluster."""
    if request.param == "threads":
        yield None
        return
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture
def zarr_input(tmp_path):
    """Write an array as a zarr input in the test's folder; returns its path.

    ``zarr_input(X, chunks=None, name="X.zarr")``: see :func:`data.write_zarr`.
    """
    from data import write_zarr

    def make(X, chunks=None, name="X.zarr"):
        return write_zarr(tmp_path / name, X, chunks)

    return make
