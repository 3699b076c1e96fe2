"""Small fixed datasets shared by the tests (import them: ``from data import BLOBS``)."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs

BLOBS, BLOBS_Y = make_blobs(
    n_samples=300, centers=4, n_features=2, cluster_std=0.6, random_state=0
)
BLOBS_3D, _ = make_blobs(
    n_samples=400,
    centers=5,
    n_features=3,
    cluster_std=1.0,
    center_box=(-10, 10),
    random_state=1,
)
UNEVEN, _ = make_blobs(
    n_samples=[200, 60, 15],
    centers=[[0, 0], [4, 4], [8, 0]],
    cluster_std=0.8,
    random_state=2,
)
SIX = np.array([[1, 1], [2, 1], [1, 0], [4, 7], [3, 5], [3, 6]], dtype=float)


def write_zarr(path, X, chunks=None):
    """Write ``X`` as a zarr array at ``path``: the one way tests make a zarr input.

    ``chunks`` is rows per chunk (an int) or a chunk shape; by default one chunk.
    Empty chunks are written too, so an array of zeros is stored as given.
    Returns ``path`` as a string.
    """
    import zarr

    X = np.asarray(X)
    if isinstance(chunks, int):
        chunks = (chunks, *X.shape[1:])
    arr = zarr.create_array(
        str(path),
        shape=X.shape,
        dtype=X.dtype,
        chunks=chunks or X.shape or (1,),
        config={"write_empty_chunks": True},
    )
    if X.size:
        arr[...] = X
    return str(path)
