"""A job run from Python: dist_meanshift.run_job, no shell and no click."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from dist_meanshift import InputError, Job, MeanShift, RunResult, run_job

JOB = """
[input]
path = "blobs.zarr"
array = "X"

[input.make_blobs]
n_samples = 3000
n_features = 2
centers = 3
seed = 1
chunk_rows = 1000

[model]
bandwidth = 1.5

[cluster]
n_workers = 1
threads_per_worker = 2

[output]
path = "out.zarr"
"""


def test_run_job_returns_what_it_made_and_equals_the_estimator(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.toml").write_text(JOB)
    result = run_job("job.toml")
    assert isinstance(result, RunResult)
    assert result.output == str(tmp_path / "out.zarr")
    assert result.converged and result.bandwidth == 1.5
    group = zarr.open_group(result.output, mode="r")
    assert group.attrs["complete"] is True
    X = zarr.open_array(str(tmp_path / "blobs.zarr/X"), mode="r")[:]
    model = MeanShift(bandwidth=1.5).fit(X)
    np.testing.assert_array_equal(group["labels"][:], model.labels_)
    assert result.sizes == np.bincount(model.labels_).tolist()
    assert result.n_clusters == len(model.cluster_centers_)
    assert result.summary.splitlines()[0].startswith(f"{result.n_clusters} clusters")
    # Job.load(...).run() is the same stage; overwrite replaces the result.
    again = Job.load("job.toml").run(overwrite=True)
    assert again.sizes == result.sizes


def test_run_job_refuses_bad_input_with_input_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = Job(input={"path": "missing.zarr"}, output={"path": "o.zarr"})
    with pytest.raises(InputError, match="does not exist"):
        run_job(job)
    assert not (tmp_path / "o.zarr").exists()


def test_the_tasks_of_an_iteration_are_counted_as_they_finish(tmp_path):
    from distributed import Client, LocalCluster

    from dist_meanshift._dask import watch_tasks
    from dist_meanshift.demo import make_blobs_zarr

    make_blobs_zarr(tmp_path / "b.zarr", n_samples=40_000, n_features=2, centers=3,
                    chunk_rows=4_000)  # fmt: skip
    seen = []
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,  # fmt: skip
        Client(cluster),
        watch_tasks(lambda done, total: seen.append((done, total))),
    ):
        MeanShift(2.0, kernel="flat", bin_seeding=True).fit(tmp_path / "b.zarr/X")
    assert seen, "no iteration was watched"
    totals = {total for _, total in seen}
    assert all(total % 10 == 0 for total in totals)  # partitions x 10 chunks
    assert all(0 <= done <= total for done, total in seen)
    # Every watched computation ends with all its tasks done.
    ends = [i for i, (done, total) in enumerate(seen) if done == total]
    assert ends and ends[-1] == len(seen) - 1


def test_a_scheduler_that_runs_none_of_our_functions_only_stops_the_count(
    tmp_path, monkeypatch
):
    from distributed import Client, LocalCluster

    from dist_meanshift._dask import data, watch_tasks
    from dist_meanshift.demo import make_blobs_zarr

    make_blobs_zarr(tmp_path / "b.zarr", n_samples=40_000, n_features=2, centers=3,
                    chunk_rows=4_000)  # fmt: skip
    seen, asked = [], []
    # Look at the tasks as often as can be: the count is asked for at once.
    monkeypatch.setattr(data, "_WATCH_EVERY", 1e-4)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
        watch_tasks(lambda done, total: seen.append((done, total))),
    ):

        def refused(*args, **kwargs):
            asked.append(1)
            raise RuntimeError("pickled functions are not allowed")

        client.run_on_scheduler = refused
        model = MeanShift(2.0, kernel="flat", bin_seeding=True).fit(
            tmp_path / "b.zarr/X"
        )
    assert len(model.cluster_centers_) == 3
    assert asked  # the count was asked for, refused, and the fit went on
    assert all(done == total for done, total in seen)  # only the final counts
