"""A run killed with SIGKILL resumes from its last recorded iteration."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from test_cli import cli

JOB = """
[input]
path = "blobs.zarr"
array = "X"

[input.make_blobs]
n_samples = 4000
n_features = 2
centers = 4
seed = 7
chunk_rows = 1000

[model]
kernel = "gaussian"
bandwidth = 0.6
tol = 1e-7
{extra}

[output]
path = "out.zarr"
overwrite = true
"""


def write_job(where, extra=""):
    job = where / "job.toml"
    job.write_text(JOB.format(extra=extra))
    return job


def read(where, name):
    group = zarr.open_group(str(where / name), mode="r")
    return group["labels"][:], group["cluster_centers"][:], dict(group.attrs)


@pytest.mark.timeout(600)
def test_sigkill_then_resume_gives_the_uninterrupted_result(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    done = cli("run", write_job(straight), cwd=straight)
    assert done.returncode == 0, done.stderr
    labels, centers, attrs = read(straight, "out.zarr")
    assert attrs["n_iter"] >= 8

    # Make the data first, then kill the run once a few iterations are recorded.
    assert (
        cli(
            "make-blobs",
            "blobs.zarr",
            "--n-samples",
            4000,
            "--n-features",
            2,
            "--centers",
            4,
            "--seed",
            7,
            "--chunk-rows",
            1000,
            cwd=killed,
        ).returncode
        == 0
    )
    job = write_job(killed)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dist_meanshift", "run", str(job)],
        cwd=killed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = killed / "out.zarr.state.npz"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if state.exists() and np.load(state)["pos"].size and _iteration(state) >= 4:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stopped_at = _iteration(state)
    assert not (killed / "out.zarr").exists()

    again = cli("run", job, "--resume", cwd=killed)
    assert again.returncode == 0, again.stderr
    assert f"resuming at iteration {stopped_at + 1}" in again.stdout
    resumed_labels, resumed_centers, resumed_attrs = read(killed, "out.zarr")
    assert resumed_attrs["resumed_at_iteration"] == stopped_at
    np.testing.assert_array_equal(resumed_labels, labels)
    np.testing.assert_allclose(resumed_centers, centers, rtol=0, atol=1e-12)
    assert resumed_attrs["n_iter"] == attrs["n_iter"]
    assert len(resumed_attrs["trace"]) == len(attrs["trace"])
    assert not state.exists()


def _iteration(state):
    import json

    with np.load(state, allow_pickle=False) as f:
        return json.loads(str(f["meta"]))["next_iteration"]


def test_resume_refuses_changed_parameters_and_input(tmp_path):
    from dist_meanshift.io import save_state

    job = write_job(tmp_path)
    assert cli("run", job, cwd=tmp_path).returncode == 0
    # A state as a stopped run with bandwidth 0.6 would have left it.
    checkpoint = {
        "pos": np.zeros((1, 2)),
        "mult": np.ones(1),
        "active": np.ones(1, bool),
        "intensity": np.zeros(1),
        "next_iteration": 3,
        "trace": [],
    }
    from dist_meanshift.io import input_fingerprint

    X = zarr.open_array(str(tmp_path / "blobs.zarr/X"), mode="r")
    fingerprint = {
        "input": input_fingerprint(str(tmp_path / "blobs.zarr"), "X", X.shape, X.dtype),
        "model": {"kernel": "gaussian", "bandwidth": 0.6, "tol": 1e-7},
    }
    state = str(tmp_path / "out.zarr.state.npz")
    save_state(state, checkpoint, {"fingerprint": fingerprint, "bandwidth": 0.6})
    changed = (
        write_job(tmp_path).read_text().replace("bandwidth = 0.6", "bandwidth = 0.7")
    )
    (tmp_path / "job.toml").write_text(changed)
    done = cli("run", job, "--resume", cwd=tmp_path)
    assert done.returncode == 2
    assert (
        "model parameter 'bandwidth' was 0.6 in the stopped run and is 0.7"
        in done.stderr
    )

    (tmp_path / "job.toml").write_text(JOB.format(extra=""))
    fingerprint["input"]["shape"] = [999, 2]
    save_state(state, checkpoint, {"fingerprint": fingerprint, "bandwidth": 0.6})
    done = cli("run", job, "--resume", cwd=tmp_path)
    assert done.returncode == 2
    assert "the input's shape changed" in done.stderr
