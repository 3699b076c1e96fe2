"""Four jobs at once on one cluster; a run writes nothing outside its output."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import zarr
from clusters import dask_cluster
from commands import cli
from distributed import Client
from test_bad_input import _snapshot

from dist_meanshift import MeanShift

pytestmark = pytest.mark.timeout(400)

JOB = """
[input]
path = "{data}.zarr"
array = "X"

[model]
kernel = "{kernel}"
bandwidth = {bandwidth}
bin_seeding = {bin_seeding}

[output]
path = "{name}.zarr"
"""

RUN = [sys.executable, "-m", "dist_meanshift", "run"]

JOBS = {
    "a-flat": {"data": "a", "kernel": "flat", "bandwidth": 2.0, "bin_seeding": "false"},
    "a-gauss": {
        "data": "a",
        "kernel": "gaussian",
        "bandwidth": 1.5,
        "bin_seeding": "true",
    },
    "b-flat": {"data": "b", "kernel": "flat", "bandwidth": 1.5, "bin_seeding": "true"},
    "b-gauss": {
        "data": "b",
        "kernel": "gaussian",
        "bandwidth": 2.5,
        "bin_seeding": "true",
    },
}


def _make_data(where):
    data = {}
    for name, seed in (("a", 1), ("b", 2)):
        done = cli(
            "make-blobs",
            f"{name}.zarr",
            "--n-samples",
            8000,
            "--n-features",
            3,
            "--centers",
            5,
            "--seed",
            seed,
            "--chunk-rows",
            1000,
            cwd=where,
        )
        assert done.returncode == 0, done.stderr
        data[name] = zarr.open_array(str(where / f"{name}.zarr/X"), mode="r")[:]
    return data


# A load test (four runs at once, ~25 s on 2 cores): outside CI. One run per
# output and a shared cluster are tested in CI by test_nothing_lost and test_remote.
@pytest.mark.slow
def test_four_jobs_submitted_at_once_to_one_cluster_all_finish_correctly(tmp_path):
    data = _make_data(tmp_path)
    for name, spec in JOBS.items():
        (tmp_path / f"{name}.toml").write_text(JOB.format(name=name, **spec))
    with dask_cluster(tmp_path) as address, Client(address) as client:
        client.wait_for_workers(2, timeout=60)
        procs = {
            name: subprocess.Popen(
                [*RUN, f"{name}.toml", "--scheduler", address],
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for name in JOBS
        }
        outcomes = {
            name: (p.communicate(timeout=300), p.returncode)
            for name, p in procs.items()
        }
    for name, spec in JOBS.items():
        (_, err), code = outcomes[name]
        assert code == 0, f"{name}: {err}"
        result = zarr.open_group(str(tmp_path / f"{name}.zarr"), mode="r")
        assert result.attrs["complete"] is True
        model = MeanShift(
            spec["bandwidth"],
            kernel=spec["kernel"],
            bin_seeding=spec["bin_seeding"] == "true",
        ).fit(data[spec["data"]])
        np.testing.assert_array_equal(result["labels"][:], model.labels_)
        np.testing.assert_allclose(
            result["cluster_centers"][:], model.cluster_centers_, rtol=1e-6
        )


def test_a_run_writes_nothing_outside_its_output_path(tmp_path):
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    _make_data(work)
    (work / "job.toml").write_text(JOB.format(name="out", **JOBS["a-gauss"]))
    before = _snapshot(work)
    done = subprocess.run(
        [*RUN, "job.toml"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "TMPDIR": str(temp)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    after = _snapshot(work)
    new = set(after) - set(before)
    assert new and all(p == "out.zarr" or p.startswith("out.zarr/") for p in new)
    assert {p: after[p] for p in before} == before
    # Worker scratch space went to a temporary directory that is gone.
    assert os.listdir(temp) == []
