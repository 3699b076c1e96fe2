"""numpy, dask and zarr input; chunk layouts; schedulers: the same answer."""

from __future__ import annotations

import pathlib

import dask.array as da
import numpy as np
import pytest
import zarr
from data import BLOBS, BLOBS_3D, write_zarr
from distributed import Client, LocalCluster, get_task_stream

from dist_meanshift import MeanShift, estimate_bandwidth, get_bin_seeds

KERNELS = [("flat", 1.0), ("gaussian", 1.0)]


def to_zarr(tmp_path, X, chunk_rows=64):
    return pathlib.Path(write_zarr(tmp_path / "X.zarr", X, chunk_rows))


@pytest.fixture(scope="module")
def reference():
    return {k: MeanShift(h, kernel=k).fit(BLOBS) for k, h in KERNELS}


@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
@pytest.mark.parametrize("kind", ["numpy", "dask", "zarr-array", "zarr-path"])
def test_input_kinds_give_the_same_labels(
    tmp_path, reference, kernel, bandwidth, kind, scheduler
):
    X = {
        "numpy": lambda: BLOBS,
        "dask": lambda: da.from_array(BLOBS, chunks=(50, 2)),
        "zarr-array": lambda: zarr.open_array(to_zarr(tmp_path, BLOBS), mode="r"),
        "zarr-path": lambda: str(to_zarr(tmp_path, BLOBS)),
    }[kind]()
    model = MeanShift(bandwidth, kernel=kernel).fit(X)
    ref = reference[kernel]
    labels = model.labels_
    if kind == "numpy":
        assert isinstance(labels, np.ndarray)
    else:
        assert isinstance(labels, da.Array)
        labels = labels.compute()
    np.testing.assert_array_equal(labels, ref.labels_)
    np.testing.assert_allclose(model.cluster_centers_, ref.cluster_centers_, atol=1e-9)
    predicted = model.predict(X)
    assert type(predicted) is type(model.labels_)
    np.testing.assert_array_equal(np.asarray(predicted), ref.labels_)


@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
@pytest.mark.parametrize("chunk_rows", [1, 7, 100, len(BLOBS)])
def test_chunk_sizes_give_the_same_labels(reference, kernel, bandwidth, chunk_rows):
    model = MeanShift(bandwidth, kernel=kernel, chunk_rows=chunk_rows).fit(BLOBS)
    np.testing.assert_array_equal(model.labels_, reference[kernel].labels_)
    np.testing.assert_allclose(
        model.cluster_centers_, reference[kernel].cluster_centers_, atol=1e-9
    )


def test_dask_input_chunked_by_columns_is_rechunked():
    X = da.from_array(BLOBS_3D, chunks=(100, 1))
    model = MeanShift(2.0, kernel="flat").fit(X)
    ref = MeanShift(2.0, kernel="flat").fit(BLOBS_3D)
    np.testing.assert_array_equal(model.labels_.compute(), ref.labels_)


@pytest.mark.parametrize("persist", [True, False, "auto"])
def test_persisted_and_streamed_zarr_agree(tmp_path, reference, persist):
    path = str(to_zarr(tmp_path, BLOBS, chunk_rows=37))
    model = MeanShift(1.0, kernel="flat", persist=persist).fit(path)
    np.testing.assert_array_equal(model.labels_.compute(), reference["flat"].labels_)


def test_zarr_integer_and_float32_input(tmp_path):
    Xi = np.round(BLOBS * 10).astype(np.int32)
    model = MeanShift(10.0, kernel="flat").fit(str(to_zarr(tmp_path, Xi)))
    ref = MeanShift(10.0, kernel="flat").fit(Xi)
    assert model.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(model.labels_.compute(), ref.labels_)
    X32 = BLOBS.astype(np.float32)
    m32 = MeanShift(1.0, kernel="flat").fit(da.from_array(X32, chunks=(40, 2)))
    assert m32.cluster_centers_.dtype == np.float32
    np.testing.assert_array_equal(
        m32.labels_.compute(), MeanShift(1.0, kernel="flat").fit(X32).labels_
    )


def test_bandwidth_and_bin_seeds_agree_across_input_kinds(tmp_path):
    dX = da.from_array(BLOBS_3D, chunks=(33, 3))
    assert estimate_bandwidth(dX) == pytest.approx(estimate_bandwidth(BLOBS_3D))
    assert estimate_bandwidth(dX, n_samples=40) == pytest.approx(
        estimate_bandwidth(BLOBS_3D, n_samples=40)
    )
    np.testing.assert_array_equal(get_bin_seeds(dX, 2.0), get_bin_seeds(BLOBS_3D, 2.0))
    model = MeanShift(kernel="flat", bin_seeding=True).fit(dX)
    ref = MeanShift(kernel="flat", bin_seeding=True).fit(BLOBS_3D)
    np.testing.assert_array_equal(model.labels_.compute(), ref.labels_)


def test_input_is_not_modified(tmp_path):
    X = BLOBS.copy()
    MeanShift(1.0).fit(X)
    np.testing.assert_array_equal(X, BLOBS)
    path = to_zarr(tmp_path, BLOBS)
    MeanShift(1.0).fit(str(path))
    np.testing.assert_array_equal(zarr.open_array(str(path), mode="r")[:], BLOBS)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kernel,bandwidth", KERNELS)
def test_local_cluster_with_worker_processes_matches_in_process(
    tmp_path, reference, kernel, bandwidth
):
    path = str(to_zarr(tmp_path, BLOBS, chunk_rows=50))
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        with get_task_stream(client) as stream:
            numpy_model = MeanShift(bandwidth, kernel=kernel).fit(BLOBS)
            zarr_model = MeanShift(bandwidth, kernel=kernel, chunk_rows=25).fit(path)
            zarr_labels = zarr_model.labels_.compute()
        workers = set(client.scheduler_info()["workers"])
        shift_workers = {
            t["worker"] for t in stream.data if "shift_partial_sums" in t["key"]
        }
        # The shifts ran as tasks on the worker processes, both of them.
        assert shift_workers == workers
    np.testing.assert_array_equal(numpy_model.labels_, reference[kernel].labels_)
    np.testing.assert_array_equal(zarr_labels, reference[kernel].labels_)
    np.testing.assert_allclose(
        zarr_model.cluster_centers_, reference[kernel].cluster_centers_, atol=1e-9
    )
