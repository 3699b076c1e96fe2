"""Streamed chunks' cell indexes, written once per fit into a scratch directory."""

from __future__ import annotations

import os

import dask
import numpy as np
import pytest
import zarr
from distributed import Client, LocalCluster
from sklearn.datasets import make_blobs

from dist_meanshift import MeanShift
from dist_meanshift._blocks import shift_partial_sums
from dist_meanshift._dask import scratch

H = 2.0
CHUNK = 20_000  # beyond the 8,192 rows from which the flat kernel indexes a block


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(80_000, n_features=3, centers=4, random_state=0)
    return X.astype(np.float32)


@pytest.fixture
def cluster(tmp_path):
    base = tmp_path / "tmp"
    base.mkdir()
    with (
        dask.config.set({"temporary-directory": str(base)}),
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as lc,
        Client(lc),
    ):
        yield base


def _store(path, X):
    z = zarr.create_array(
        str(path), shape=X.shape, chunks=(CHUNK, X.shape[1]), dtype=X.dtype
    )
    z[:] = X
    return zarr.open_array(str(path), mode="r")


def _ours(base):
    """Scratch directories of this library under ``base`` (the workers keep
    theirs there too)."""
    return [n for n in os.listdir(base) if n.startswith("dist-meanshift-scratch-")]


def _indexes(base):
    """The chunk indexes of the one scratch directory under ``base``."""
    (directory,) = _ours(base)
    return sorted(os.listdir(base / directory)), base / directory


def test_streamed_chunks_are_indexed_once_and_removed_when_the_fit_ends(
    tmp_path, cluster, blobs
):
    z = _store(tmp_path / "x.zarr", blobs)
    model = MeanShift(H, kernel="flat", bin_seeding=True, persist=False)
    states = model.fit_iter(z)
    next(states)
    # After the first pass: one complete index per chunk, no part left.
    names, _ = _indexes(cluster)
    assert len(names) == len(blobs) // CHUNK
    assert not [n for n in names if n.endswith(".part")]
    for _ in states:
        pass
    assert _ours(cluster) == []  # removed with the fit
    # The same rows in float64 in memory (float32 ones are summed there in
    # scikit-learn's float32 order instead).
    whole = MeanShift(H, kernel="flat", bin_seeding=True).fit(blobs.astype(float))
    assert len(whole.cluster_centers_) == 4 and model.n_iter_ == whole.n_iter_
    # The same rows within h of every center: float64 sums that differ only
    # in their order, by some n * eps of the coordinates' scale (1e-11 here),
    # then rounded to float32 as the data: one float32 step apart at most.
    assert model.cluster_centers_.dtype == np.float32
    np.testing.assert_allclose(
        model.cluster_centers_,
        whole.cluster_centers_.astype(np.float32),
        rtol=0,
        atol=np.spacing(np.float32(16)),
    )
    np.testing.assert_array_equal(np.asarray(model.labels_), whole.labels_)


def test_an_index_is_not_written_again_by_later_passes(tmp_path, cluster, blobs):
    z = _store(tmp_path / "x.zarr", blobs)
    states = MeanShift(H, kernel="flat", bin_seeding=True, persist=False).fit_iter(z)
    next(states)
    names, directory = _indexes(cluster)
    inodes = {n: os.stat(directory / n).st_ino for n in names}
    next(states), next(states)
    assert {n: os.stat(directory / n).st_ino for n in names} == inodes
    states.close()  # stopped early: removed too
    assert _ours(cluster) == []


def test_a_removed_index_stops_the_fit_naming_it(tmp_path, cluster, blobs):
    z = _store(tmp_path / "x.zarr", blobs)
    states = MeanShift(H, kernel="flat", bin_seeding=True, persist=False).fit_iter(z)
    next(states)
    names, directory = _indexes(cluster)
    os.remove(directory / names[0])
    with pytest.raises(FileNotFoundError, match="removed while the fit ran"):
        next(states)
    assert _ours(cluster) == []


def test_weighted_repeated_float64_rows_and_wide_rows(tmp_path, cluster):
    rs = np.random.RandomState(0)
    # Rows on a lattice repeat: each chunk's index merges them into weights.
    X = np.round(rs.normal(scale=2.0, size=(60_000, 2)), 1)
    w = rs.uniform(0.5, 2.0, size=len(X))
    z = _store(tmp_path / "x.zarr", X)
    model = MeanShift(H, kernel="flat", bin_seeding=True, persist=False)
    states = model.fit_iter(z, sample_weight=w)
    next(states)
    names, directory = _indexes(cluster)
    merged = scratch.read_index(directory / names[0]).slabs[0].row_w
    assert 0 < len(merged) < CHUNK  # fewer rows than the chunk, with weights
    for _ in states:
        pass
    kept = MeanShift(H, kernel="flat", bin_seeding=True).fit(X, sample_weight=w)
    np.testing.assert_allclose(model.cluster_centers_, kept.cluster_centers_, atol=1e-9)
    np.testing.assert_array_equal(np.asarray(model.labels_), np.asarray(kept.labels_))
    # Beyond 3 features the index is not kept: the chunks are sorted each pass.
    wide = _store(tmp_path / "w.zarr", rs.normal(size=(40_000, 4)))
    states = MeanShift(3.0, kernel="flat", bin_seeding=True, persist=False).fit_iter(
        wide
    )
    next(states)
    assert _indexes(cluster)[0] == []
    states.close()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_stored_index_gives_the_rows_sums(tmp_path, blobs, dtype):
    X = blobs[:CHUNK].astype(dtype)
    rs = np.random.RandomState(1)
    centers = X[rs.choice(len(X), 200)].astype(np.float64)
    path = str(tmp_path / "0")
    written = scratch.sums_writing_index(centers, X, path, H, "flat")
    # A second try of the same task (its worker lost after writing) keeps it.
    again = scratch.sums_writing_index(centers, X, path, H, "flat")
    assert os.listdir(tmp_path) == ["0"]
    read = scratch.indexed_sums(centers, path, H, "flat")
    rows = shift_partial_sums(centers, X, H, "flat")
    for got in (written, again, read):
        np.testing.assert_array_equal(got[1], rows[1])  # the same rows within h
        np.testing.assert_allclose(got[0], rows[0], rtol=1e-12)


def test_an_index_that_cannot_be_written_leaves_the_rows_sums(tmp_path, blobs):
    # A directory that cannot be made (here: a file in its place; or a full
    # disk, or one the worker may not write): the sums are the rows', and
    # nothing is left that could pass for an index.
    X = blobs[:CHUNK]
    centers = X[:200].astype(np.float64)
    (tmp_path / "taken").write_text("")
    path = str(tmp_path / "taken" / "0")
    got = scratch.sums_writing_index(centers, X, path, H, "flat")
    rows = shift_partial_sums(centers, X, H, "flat")
    np.testing.assert_array_equal(got[1], rows[1])
    np.testing.assert_allclose(got[0], rows[0], rtol=1e-12)
    assert os.listdir(tmp_path) == ["taken"]
    assert (tmp_path / "taken").read_text() == ""


def test_an_index_cut_short_or_not_an_index_fails_naming_it(tmp_path, blobs):
    # zarr reads a missing chunk as fill values; a stored index is read
    # whole or not at all.
    X = blobs[:CHUNK]
    centers = X[:50].astype(np.float64)
    path = tmp_path / "0"
    scratch.sums_writing_index(centers, X, str(path), H, "flat")
    data = path.read_bytes()
    short = tmp_path / "short"
    short.write_bytes(data[: len(data) - 1])
    with pytest.raises(ValueError, match="cut short"):
        scratch.indexed_sums(centers, str(short), H, "flat")
    other = tmp_path / "other"
    other.write_bytes(b"\x93NUMPY" + data[8:])
    with pytest.raises(ValueError, match="not a chunk's cell index"):
        scratch.indexed_sums(centers, str(other), H, "flat")
    # Read back, the index's arrays are the file's pages, read-only.
    (index,) = scratch.read_index(str(path)).slabs
    assert not index.coords.flags.writeable
