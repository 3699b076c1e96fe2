"""The result group: labels stored small and compressed, read back exactly."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr

from dist_meanshift.results import write_result


@pytest.mark.parametrize("n_clusters", [8, 200], ids=["int8", "int16"])
@pytest.mark.parametrize("lazy", [False, True], ids=["numpy", "dask"])
def test_labels_round_trip_in_the_smallest_dtype(tmp_path, n_clusters, lazy):
    rng = np.random.default_rng(0)
    labels = rng.integers(-1, n_clusters, 50_000)
    centers = rng.normal(size=(n_clusters, 3))
    given = da.from_array(labels, chunks=12_000) if lazy else labels
    sizes = write_result(
        tmp_path / "out.zarr", labels=given, centers=centers, attrs={"n_iter": 3}
    )
    group = zarr.open_group(tmp_path / "out.zarr", mode="r")
    stored = group["labels"]
    assert stored.dtype == (np.int8 if n_clusters <= 128 else np.int16)
    np.testing.assert_array_equal(stored[:], labels)
    np.testing.assert_array_equal(sizes, np.bincount(labels + 1)[1:])
    assert group.attrs["n_unlabelled"] == int((labels == -1).sum())
    # Blosc lz4 over bit planes: a reader needs only zarr (numcodecs' Blosc).
    (codec,) = stored.compressors
    assert isinstance(codec, zarr.codecs.BloscCodec)
    assert (codec.cname.value, codec.shuffle.value) == ("lz4", "bitshuffle")
