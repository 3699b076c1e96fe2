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
