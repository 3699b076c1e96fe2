"""Jobs against a real `dask scheduler` and two `dask worker` processes."""

from __future__ import annotations

import numpy as np
import pytest
import zarr
from clusters import dask_cluster, make_tls_files
from commands import ROOT, cli
from distributed import Client
from distributed.security import Security

from dist_meanshift import MeanShift

pytestmark = pytest.mark.timeout(240)


def _blobs(tmp_path):
    done = cli(
        "make-blobs",
        tmp_path / "blobs.zarr",
        "--n-samples",
        6000,
        "--n-features",
        3,
        "--centers",
        4,
        "--seed",
        3,
        "--chunk-rows",
        1000,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return zarr.open_array(str(tmp_path / "blobs.zarr/X"), mode="r")[:]


def _executed(client):
    return client.run(lambda dask_worker: dask_worker.state.executed_count)


def test_remote_job_runs_on_the_workers_and_equals_the_in_memory_fit(tmp_path):
    X = _blobs(tmp_path)
    with dask_cluster(tmp_path) as address, Client(address) as client:
        client.wait_for_workers(2, timeout=60)
        before = _executed(client)
        job = tmp_path / "remote.toml"
        job.write_text(
            (ROOT / "jobs" / "remote.toml").read_text().replace("results/remote/", "")
        )
        done = cli("run", job, "--scheduler", address, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        after = _executed(client)
    # Both worker processes did work for the job.
    assert len(after) == 2
    assert all(after[w] > before.get(w, 0) for w in after)
    result = zarr.open_group(str(tmp_path / "result.zarr"), mode="r")
    assert result.attrs["complete"] is True
    params = {"bandwidth": result.attrs["bandwidth"], "bin_seeding": True}
    # The store fitted in this process: the same float64 sums, rounded to
    # float32 alike.
    stored = zarr.open_array(str(tmp_path / "blobs.zarr/X"), mode="r")
    model = MeanShift(kernel="flat", **params).fit(stored)
    np.testing.assert_allclose(result["cluster_centers"][:], model.cluster_centers_)
    np.testing.assert_array_equal(result["labels"][:], model.labels_)
    # The rows in memory: float32 means in scikit-learn's order, rows added
    # one by one in float32, within the bound of such a sum of n rows,
    # n * 2^-24 * max |x| (Higham, recursive summation), of the exact mean.
    model = MeanShift(kernel="flat", **params).fit(X)
    np.testing.assert_allclose(
        result["cluster_centers"][:],
        model.cluster_centers_,
        rtol=0,
        atol=len(X) * 2**-24 * float(np.abs(X).max()),
    )
    np.testing.assert_array_equal(result["labels"][:], model.labels_)


def test_tls_scheduler_with_certificates_from_the_job_file(tmp_path):
    X = _blobs(tmp_path)
    tls = make_tls_files(tmp_path)
    with dask_cluster(tmp_path, tls=tls) as address:
        assert address.startswith("tls://")
        security = Security(
            tls_ca_file=tls["ca"],
            tls_client_cert=tls["cert"],
            tls_client_key=tls["key"],
            require_encryption=True,
        )
        with Client(address, security=security) as client:
            client.wait_for_workers(2, timeout=60)
        job = tmp_path / "tls.toml"
        job.write_text(
            f'[input]\npath = "blobs.zarr"\narray = "X"\n'
            f'[model]\nkernel = "flat"\nbandwidth = 2.0\n'
            f'[cluster]\nscheduler = "{address}"\ntls_ca_file = "{tls["ca"]}"\n'
            f'tls_cert = "{tls["cert"]}"\ntls_key = "{tls["key"]}"\n'
            f'[output]\npath = "out.zarr"\n'
        )
        done = cli("run", job, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        plain = cli(
            "fit",
            "blobs.zarr",
            "--array",
            "X",
            "--bandwidth",
            2.0,
            "--out",
            "plain.zarr",
            "--scheduler",
            address.replace("tls://", "tcp://"),
            cwd=tmp_path,
        )
    labels = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["labels"][:]
    np.testing.assert_array_equal(labels, MeanShift(2.0, kernel="flat").fit(X).labels_)
    assert plain.returncode == 2
    assert "Cannot reach the Dask scheduler" in plain.stderr
    assert len(plain.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plain.zarr").exists()
