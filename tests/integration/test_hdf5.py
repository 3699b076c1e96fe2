"""HDF5 in, HDF5 labels out: chunked and contiguous datasets on a real LocalCluster."""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest
from commands import cli
from data import BLOBS

from dist_meanshift import InputError, MeanShift, run_job
from dist_meanshift.inputs import open_input

h5py = pytest.importorskip("h5py")


def _file(path, chunks=None, extra=None):
    """BLOBS (float32) as ``points`` in an HDF5 file; ``extra`` datasets beside."""
    with h5py.File(path, "w") as f:
        f.create_dataset("group/points", data=BLOBS.astype(np.float32), chunks=chunks)
        for name, values in (extra or {}).items():
            f.create_dataset(name, data=values)
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _job(tmp_path, path, extra=""):
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\n{extra}[model]\nkernel = "flat"\nbandwidth = 1.0\n'
        '[cluster]\nn_workers = 1\n[output]\npath = "o.zarr"\noverwrite = true\n'
    )
    return job


@pytest.mark.parametrize("chunks", [(7, 2), None], ids=["chunked", "contiguous"])
def test_labels_of_an_hdf5_dataset_equal_the_in_memory_fit(
    tmp_path, monkeypatch, chunks
):
    monkeypatch.chdir(tmp_path)
    path = _file(tmp_path / "points.h5", chunks)
    before = _digest(path)
    result = run_job(_job(tmp_path, path))
    expected = MeanShift(bandwidth=1.0, kernel="flat").fit(BLOBS.astype(np.float32))
    labels_file = tmp_path / "o.labels.h5"
    assert result.labels_beside == {"hdf5": str(labels_file)}
    with h5py.File(labels_file, "r") as f:
        np.testing.assert_array_equal(f["labels"][:], expected.labels_)
        assert f.attrs["complete"] and f.attrs["format"].startswith("dist-meanshift")
    assert _digest(path) == before  # the input is only read
    shown = cli("inspect", "o.labels.h5", cwd=tmp_path)
    assert shown.stdout.strip() == f"labels file: complete, {len(BLOBS)} labels"
    shown = cli("inspect", "points.h5", cwd=tmp_path)
    assert f"points.h5: hdf5 dataset, {len(BLOBS)} rows, 2 features" in shown.stdout
    # A second run replaces its own labels file.
    assert run_job(_job(tmp_path, path)).sizes == result.sizes
    # The labels file may not be the input itself.
    collide = _job(tmp_path, path, "").read_text() + f'hdf5 = "{path}"\n'
    (tmp_path / "collide.toml").write_text(collide)
    with pytest.raises(InputError, match="is the input"):
        run_job(tmp_path / "collide.toml")
    assert _digest(path) == before


def test_a_dataset_is_read_in_chunks_of_whole_rows(tmp_path):
    path = _file(tmp_path / "points.h5", (4, 2))
    X = open_input(path)
    assert X.shape == BLOBS.shape and X.dtype == np.float32
    assert all(n % 4 == 0 for n in X.chunks[0][:-1])
    np.testing.assert_array_equal(X.compute(), BLOBS.astype(np.float32))


def test_a_file_of_several_datasets_names_them(tmp_path):
    path = _file(tmp_path / "two.h5", extra={"other": np.ones((5, 2))})
    with pytest.raises(InputError, match=r"'group/points', 'other'.*--array NAME"):
        open_input(path)
    assert open_input(path, "other").shape == (5, 2)
    with pytest.raises(InputError, match="has no dataset 'nope'"):
        open_input(path, "nope")


def test_an_hdf5_mistake_is_one_line_and_leaves_the_file_alone(tmp_path):
    _file(tmp_path / "cube.h5", extra={"cube": np.ones((2, 3, 4))})
    (tmp_path / "fake.h5").write_bytes(b"not hdf5 at all")
    os.mkfifo(tmp_path / "pipe.h5")
    with h5py.File(tmp_path / "giant.h5", "w") as f:
        # 640 MiB chunks declared in a file of a few kB (nothing written).
        f.create_dataset("x", shape=(20_000_000, 8), chunks=(20_000_000, 8), dtype="f4")
    cases = {
        ("fake.h5",): "cannot be read as an HDF5 file",
        ("cube.h5", "--array", "cube"): "is 3-D float64, not a 2-D numeric table",
        ("pipe.h5",): "is a named pipe",
        ("giant.h5",): "chunks of 610 MiB",
    }
    for args, message in cases.items():
        before = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
        done = cli("fit", *args, "--out", "o.zarr", "--bandwidth", "1", cwd=tmp_path)
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
        after = {p.name: _digest(p) for p in tmp_path.iterdir() if p.is_file()}
        assert after == before and not (tmp_path / "o.zarr").exists()
