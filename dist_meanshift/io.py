"""zarr in and out: demo datasets written chunk by chunk, results written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import dask.array as da
import numpy as np
import zarr

logger = logging.getLogger(__name__)


def make_blobs_zarr(
    path, *, n_samples, n_features, centers, seed=0, chunk_rows=100_000, std=1.0
):
    """Write a Gaussian-blobs dataset to a zarr group, one chunk at a time.

    The group holds ``X`` (float32, ``(n_samples, n_features)``), ``y`` (true
    labels) and ``centers``. Memory stays at one chunk whatever ``n_samples``.

    Parameters
    ----------
    path : str or os.PathLike
    n_samples, n_features, centers : int
    seed : int, default=0
    chunk_rows : int, default=100_000
    std : float, default=1.0
        Standard deviation of every blob; blob centers are uniform in [-20, 20].
    """
    rng = np.random.default_rng(seed)
    true_centers = rng.uniform(-20, 20, size=(centers, n_features))
    tmp = _partial_path(path)
    group = zarr.open_group(tmp, mode="w")
    X = group.create_array(
        "X", shape=(n_samples, n_features), dtype="f4", chunks=(chunk_rows, n_features)
    )
    y = group.create_array("y", shape=(n_samples,), dtype="i4", chunks=(chunk_rows,))
    group.create_array("centers", data=true_centers)
    for start in range(0, n_samples, chunk_rows):
        stop = min(n_samples, start + chunk_rows)
        chunk_rng = np.random.default_rng([seed, start])
        labels = chunk_rng.integers(0, centers, size=stop - start)
        points = true_centers[labels] + chunk_rng.normal(
            scale=std, size=(stop - start, n_features)
        )
        X[start:stop] = points.astype(np.float32)
        y[start:stop] = labels
    group.attrs["complete"] = True
    _replace(tmp, path)


def write_result(path, *, labels, centers, attrs, overwrite=False):
    """Write a fit's result to a zarr group, atomically.

    ``labels`` is written chunk by chunk by the workers (a dask array) or at once
    (numpy) into a temporary group, which takes the final name only once
    complete, with ``attrs["complete"] = True`` written last.

    Parameters
    ----------
    path : str or os.PathLike
    labels : ndarray or dask.array.Array of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    attrs : dict
        JSON-serialisable run description.
    overwrite : bool, default=False

    Returns
    -------
    cluster_sizes : ndarray of shape (n_clusters,)
    """
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Output {str(path)!r} already exists. Pass --overwrite (or "
            "output.overwrite = true) to replace it, or choose another path."
        )
    tmp = _partial_path(path)
    group = zarr.open_group(tmp, mode="w")
    group.attrs.update({**json.loads(json.dumps(attrs)), "complete": False})
    labels = labels if isinstance(labels, da.Array) else da.from_array(labels)
    out = group.create_array(
        "labels", shape=labels.shape, dtype="i8", chunks=(labels.chunks[0][0],)
    )
    da.store(labels.astype("i8"), out, lock=False)
    group.create_array("cluster_centers", data=np.asarray(centers))
    sizes = np.bincount(np.asarray(out[:]) + 1, minlength=len(centers) + 1)
    group.create_array("cluster_sizes", data=sizes[1:].astype("i8"))
    group.attrs["n_unlabelled"] = int(sizes[0])
    group.attrs["complete"] = True
    group.attrs["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    _replace(tmp, path)
    return sizes[1:]


def _partial_path(path):
    return f"{os.fspath(path).rstrip('/')}.partial-{os.getpid()}"


def _replace(tmp, path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)
