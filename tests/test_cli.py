"""The dist-meanshift command, run as a real subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

from dist_meanshift import MeanShift

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "dist_meanshift", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.timeout(300)
def test_quickstart_job_runs_and_its_result_equals_the_in_memory_fit(tmp_path):
    job = tmp_path / "quickstart.toml"
    shutil.copy(ROOT / "jobs" / "quickstart.toml", job)
    done = cli("run", job, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "result:" in done.stdout and "6 clusters" in done.stdout
    result = zarr.open_group(str(tmp_path / "results/quickstart/result.zarr"), mode="r")
    assert result.attrs["complete"] is True
    labels = result["labels"][:]
    X = zarr.open_array(str(tmp_path / "results/quickstart/blobs.zarr/X"), mode="r")
    assert labels.shape == (X.shape[0],)
    model = MeanShift(
        result.attrs["bandwidth"], bin_seeding=True, kernel="gaussian"
    ).fit(X[:])
    np.testing.assert_allclose(result["cluster_centers"][:], model.cluster_centers_)
    np.testing.assert_array_equal(labels, model.labels_)
    assert result["cluster_sizes"][:].sum() == X.shape[0]
    # A second run without overwrite refuses and leaves the result intact.
    job.write_text(job.read_text().replace("overwrite = true", "overwrite = false"))
    again = cli("run", job, cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists. Pass --overwrite" in again.stderr
    assert zarr.open_group(str(tmp_path / "results/quickstart/result.zarr")).attrs[
        "complete"
    ]


@pytest.mark.parametrize(
    "text,message",
    [
        ("[input\npath = 1", "is not valid TOML"),
        (
            '[input]\npath = "x.zarr"\n[model]\nbandwith = 1.0\n',
            "Unknown key 'model.bandwith'",
        ),
        (
            '[input]\npath = "x.zarr"\n[model]\nbandwidth = "wide"\n',
            "Key 'model.bandwidth' in the job file must be of type int or float",
        ),
        ("[model]\nbandwidth = 1.0\n", "has no input path"),
        ('[input]\npath = "missing.zarr"\n', "Input 'missing.zarr' does not exist"),
        ('[input]\npath = "x.zarr"\n[extra]\na = 1\n', "Unknown section [extra]"),
    ],
    ids=[
        "not-toml",
        "unknown-key",
        "wrong-type",
        "no-input",
        "missing-input",
        "section",
    ],
)
def test_bad_job_files_exit_2_with_one_line(tmp_path, text, message):
    job = tmp_path / "job.toml"
    job.write_text(text)
    done = cli("run", job, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.result.zarr"))
