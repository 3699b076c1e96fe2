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
