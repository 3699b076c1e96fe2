"""Every job file in jobs/ runs as shipped from a fresh copy of the repository.

Each job has its test; this file holds the ones no other file has (the remote
job on a real scheduler at its address, the Kubernetes job validated and
built) and checks that no job is left without one.
"""

from __future__ import annotations

import ast
import shutil
import socket
from pathlib import Path

import pytest
import zarr
from commands import cli

from dist_meanshift import Job

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
#: Each job file and the test that runs it (or, for a cluster scheduler that
#: cannot run here, builds its cluster without submitting anything).
SHIPPED = {
    "quickstart.toml": "system/test_cli.py::"
    "test_quickstart_job_runs_and_its_result_equals_the_in_memory_fit",
    "image.toml": "system/test_cli.py::test_image_job_segments_the_photograph",
    "large.toml": "system/test_cli.py::"
    "test_large_job_runs_scaled_down_on_memory_limited_workers",
    "table.toml": "integration/test_tables.py::test_the_table_job_runs_as_shipped",
    "tiff.toml": "integration/test_images.py::test_the_tiff_job_runs_as_shipped",
    "xarray.toml": "integration/test_labelled.py::test_the_xarray_job_runs_as_shipped",
    "managed.toml": "integration/test_managers.py::"
    "test_the_managed_job_runs_on_a_local_cluster_through_the_spec",
    "slurm.toml": "integration/test_managers.py::"
    "test_slurm_job_builds_its_batch_script_without_submitting",
    "remote.toml": "system/test_shipped_jobs.py::"
    "test_the_remote_job_runs_on_a_scheduler_at_its_address",
    "kubernetes.toml": "system/test_shipped_jobs.py::"
    "test_the_kubernetes_job_is_valid_and_builds_its_cluster",
}


def _tests_in(path):
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_every_job_file_has_a_test_that_runs_it():
    assert {p.name for p in (ROOT / "jobs").glob("*.toml")} == set(SHIPPED)
    for job, test in SHIPPED.items():
        path, name = test.split("::")
        assert name in _tests_in(TESTS / path), f"{job}: no test {test}"


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.timeout(300)
def test_the_remote_job_runs_on_a_scheduler_at_its_address(tmp_path):
    from clusters import dask_cluster

    spec = Job.load(ROOT / "jobs" / "remote.toml").cluster
    port = int(spec["scheduler"].rsplit(":", 1)[1])
    if not _port_free(port):
        pytest.skip(f"port {port} is in use on this machine")
    fresh, elsewhere = tmp_path / "copy", tmp_path / "cluster"
    fresh.mkdir(), elsewhere.mkdir()
    shutil.copytree(ROOT / "jobs", fresh / "jobs")
    # The scheduler and workers run in another folder: the job's relative
    # paths must reach them as the client resolved them.
    with dask_cluster(elsewhere, port=port):
        done = cli("run", "jobs/remote.toml", cwd=fresh)
    assert done.returncode == 0, done.stderr
    assert "5 clusters" in done.stdout
    result = zarr.open_group(str(fresh / "results/remote/result.zarr"), mode="r")
    assert result.attrs["complete"] is True
    assert result["cluster_sizes"][:].sum() == 100_000


def test_the_kubernetes_job_is_valid_and_builds_its_cluster(tmp_path):
    job = Job.load(ROOT / "jobs" / "kubernetes.toml")
    spec = job.cluster
    assert spec["manager"] == "dask_kubernetes.operator.KubeCluster"
    # Built, not submitted: the DaskCluster resource the operator would get.
    operator = pytest.importorskip("dask_kubernetes.operator")
    options = spec["options"]
    resource = operator.make_cluster_spec(
        name=options["name"], image=options["image"], resources=options["resources"]
    )
    workers = resource["spec"]["worker"]["spec"]["containers"][0]
    assert workers["image"] == options["image"]
    assert workers["resources"] == options["resources"]
