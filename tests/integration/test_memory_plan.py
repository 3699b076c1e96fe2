"""The memory plan fits chunk rows and persist-or-stream to a real cluster's workers."""

from __future__ import annotations

import contextlib
import gc

import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster

from dist_meanshift import MeanShift, memory_plan
from dist_meanshift._dask import from_zarr

pytestmark = pytest.mark.timeout(300)
MiB = 2**20


@pytest.fixture
def tall(zarr_input):
    """400,000 x 8 float64 rows (25.6 MB) in one zarr chunk."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(-20, 20, size=(3, 8))
    X = centers[rng.integers(0, 3, 400_000)] + rng.normal(size=(400_000, 8))
    return zarr.open_array(zarr_input(X, name="tall.zarr"), mode="r")


def test_a_chunk_read_in_slices_is_the_same_data(tall):
    sliced = from_zarr(tall, rows=150_000)
    assert sliced.chunks[0] == (150_000, 150_000, 100_000)
    np.testing.assert_array_equal(sliced.compute(), tall[:])


def _cluster(limit):
    return LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        memory_limit=limit,
        dashboard_address="127.0.0.1:0",
    )


@contextlib.contextmanager
def _room_for(room):
    """Two in-process workers whose limit leaves ``room`` beyond what this
    process holds, measured in the same cluster just before the limit is set.

    Measured in another cluster, what this process holds drifts by some
    25 MiB under xdist (earlier tests' memory freed in between): more than
    the margins of the plans tested here.
    """
    memory_plan.return_freed_memory()  # as a local cluster of threads does
    with _cluster("4GiB") as lc, Client(lc) as client:
        gc.collect()
        held = max(found[2] for found in client.run(memory_plan._footprint).values())
        limit = int((held + memory_plan._MARGIN + room) / memory_plan._PAUSE)
        for worker in lc.workers.values():  # what the worker pauses at
            worker.memory_manager.memory_limit = limit
        for state in lc.scheduler.workers.values():  # what the plan reads
            state.memory_limit = limit
        yield client, limit


def test_a_chunk_too_big_for_the_workers_is_streamed_in_slices(tall):
    # Two in-process workers share this process, with 150 MiB beyond what it
    # holds. Two tasks of the stored chunk (3 float64 copies, 77 MB, and
    # 16 MiB of work each) take 178 MiB and its labels 3 MiB more; slices of it
    # read from the decoded chunk (2 x 25.6 MB a task) fit from 138 MiB, and
    # with the data kept (25.6 MB) from 162 MiB: streamed in slices, 12 MiB
    # from either edge.
    with _room_for(150 * MiB) as (client, _):
        plan = memory_plan.plan_memory(client, tall, {"processes": False})
        assert plan.persist is False
        assert memory_plan._MIN_CHUNK_ROWS <= plan.chunk_rows < tall.shape[0]
        model = MeanShift(
            4.0,
            kernel="flat",
            bin_seeding=True,
            chunk_rows=plan.chunk_rows,
            persist=False,
        )
        labels = np.asarray(model.fit(tall).labels_)
        # No worker paused: every task ran within the plan.
        statuses = {w["status"] for w in client.scheduler_info()["workers"].values()}
        assert statuses == {"running"}
    whole = MeanShift(4.0, kernel="flat", bin_seeding=True).fit(tall[:])
    assert len(model.cluster_centers_) == 3
    np.testing.assert_array_equal(labels, whole.labels_)


def test_data_that_fits_is_kept_in_memory_with_its_chunks(tall):
    with _cluster("4GiB") as lc, Client(lc) as client:
        plan = memory_plan.plan_memory(client, tall, {"processes": False})
    assert plan == memory_plan.MemoryPlan(chunk_rows=None, persist=True)


def test_chunk_rows_given_are_kept_or_refused_with_the_limit_they_need(tall):
    with _room_for(160 * MiB) as (client, limit):
        plan = memory_plan.plan_memory(client, tall, {}, {"chunk_rows": 10_000})
        assert plan.chunk_rows == 10_000
        with pytest.raises(
            memory_plan.InputError, match="No memory plan fits"
        ) as refused:
            memory_plan.plan_memory(
                client, tall, {}, {"chunk_rows": 400_000, "persist": True}
            )
    named = int(str(refused.value).split("at least ")[1].split(" MiB")[0])
    # Two tasks of three float64 copies of the chunk, and the chunk kept.
    assert (
        named * MiB
        > limit + (2 * 3 * tall.nbytes + tall.nbytes - 160 * MiB) / memory_plan._PAUSE
    )
