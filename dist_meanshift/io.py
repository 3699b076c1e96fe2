"""zarr in and out: demo datasets written chunk by chunk, results written atomically."""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import dask
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


def write_array(path, data, attrs=None):
    """Write an in-memory array to a zarr array, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    data : ndarray
    attrs : dict, default=None
    """
    tmp = _partial_path(path)
    data = np.asarray(data)
    chunks = (min(len(data), 65536), *data.shape[1:])
    arr = zarr.create_array(tmp, shape=data.shape, dtype=data.dtype, chunks=chunks)
    arr[:] = data
    arr.attrs.update(json.loads(json.dumps(attrs or {}, default=list)))
    _replace(tmp, path)


def save_state(path, checkpoint, meta):
    """Record a fit's state after an iteration, atomically (temp file + rename).

    Parameters
    ----------
    path : str
        The state file (``.npz``).
    checkpoint : dict
        :attr:`IterationState.checkpoint`: arrays, ``next_iteration``, ``trace``.
    meta : dict
        JSON-serialisable: the fingerprint of input and parameters, the bandwidth.
    """
    arrays = {k: checkpoint[k] for k in ("pos", "mult", "active", "intensity")}
    meta = {
        **meta,
        "next_iteration": checkpoint["next_iteration"],
        "trace": checkpoint["trace"],
    }
    tmp = f"{path}.tmp-{os.getpid()}.npz"
    np.savez(tmp, meta=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def load_state(path):
    """Read a state written by :func:`save_state` (never unpickles)."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f["meta"]))
        arrays = {k: f[k] for k in ("pos", "mult", "active", "intensity")}
    return {**arrays, **meta}


def input_fingerprint(path, array, shape, dtype):
    """What identifies an input: where it is, its shape, and when it changed."""
    path = os.path.abspath(path)
    node = os.path.join(path, array) if array else path
    meta = os.path.join(node, "zarr.json")
    changed = os.path.getmtime(meta if os.path.exists(meta) else node)
    return {
        "path": path,
        "array": array,
        "shape": list(shape),
        "dtype": str(dtype),
        "modified": changed,
    }


def open_input(path, array=None):
    """Open a dataset for clustering: a zarr array, an array in a zarr group, or .npy.

    Parameters
    ----------
    path : str or os.PathLike
        A zarr array, a zarr group (with ``array``), or a ``.npy`` file.
    array : str, default=None
        Name of the array inside a zarr group.

    Returns
    -------
    zarr.Array or numpy.ndarray
        Opened read-only; a ``.npy`` file is memory-mapped, never unpickled.
    """
    if not os.path.exists(path):
        raise ValueError(f"Input {os.fspath(path)!r} does not exist. Check the path.")
    # Absolute, so that workers with another working directory read the same store.
    path = os.path.abspath(path)
    if path.endswith(".npy"):
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(
                f"Input {path!r} is not a plain numeric .npy file ({exc}). Save it "
                "with numpy.save from a numeric array."
            ) from exc
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:
        raise ValueError(
            f"Input {path!r} is neither a zarr store nor a .npy file ({exc}). "
            "Give a zarr array or group, or a .npy file."
        ) from exc
    if isinstance(node, zarr.Array):
        if array is not None:
            raise ValueError(
                f"Input {path!r} is a zarr array, so --array {array!r} does not "
                "apply. Drop --array, or give the path of the group."
            )
        return node
    names = sorted(k for k, _ in node.arrays())
    if array is None:
        if len(names) == 1:
            return node[names[0]]
        raise ValueError(
            f"Input {path!r} is a zarr group holding arrays {names}. Name the one "
            'to cluster with --array NAME (array = "NAME" in a job file).'
        )
    if array not in names:
        raise ValueError(
            f"Zarr group {path!r} has no array {array!r}; it holds {names}. "
            "Check --array (array = ... in a job file)."
        )
    return node[array]


def write_result(path, *, labels, centers, attrs, overwrite=False):
    """Write a fit's result to a zarr group, atomically.

    ``labels`` is written chunk by chunk by the workers (a dask array is stored
    in place, never gathered on the client) into a temporary group, which takes
    the final name only once complete, with ``attrs["complete"] = True``
    written last.

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
        Points per cluster (points labelled -1 are counted in
        ``attrs["n_unlabelled"]``).
    """
    check_output_path(path, overwrite)
    tmp = _partial_path(path)
    group = zarr.open_group(tmp, mode="w")
    group.attrs.update({**json.loads(json.dumps(attrs)), "complete": False})
    labels = labels if isinstance(labels, da.Array) else da.from_array(labels)
    rows = labels.chunks[0][0]
    if any(c != rows for c in labels.chunks[0][:-1]):
        labels = labels.rechunk({0: rows})
    out = group.create_array("labels", shape=labels.shape, dtype="i8", chunks=(rows,))
    stored = da.store(labels.astype("i8"), out, lock=False, compute=False)
    counts = da.bincount(labels + 1, minlength=len(centers) + 1)
    _, sizes = dask.compute(stored, counts)
    group.create_array("cluster_centers", data=np.asarray(centers))
    group.create_array("cluster_sizes", data=sizes[1:].astype("i8"))
    group.attrs["n_unlabelled"] = int(sizes[0])
    group.attrs["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    group.attrs["complete"] = True
    _replace(tmp, path)
    return sizes[1:]


def check_output_path(path, overwrite, inputs=()):
    """Refuse an output that exists (without overwrite) or would overwrite input."""
    out = os.path.abspath(os.fspath(path))
    for inp in inputs:
        inp = os.path.abspath(os.fspath(inp))
        if out == inp or out.startswith(inp + os.sep) or inp.startswith(out + os.sep):
            raise ValueError(
                f"Output {os.fspath(path)!r} is the input or lies inside it (or holds "
                "it). Choose an output path outside the input."
            )
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(
            f"Output {os.fspath(path)!r} already exists. Pass --overwrite (or "
            "output.overwrite = true) to replace it, or choose another path."
        )


def read_result(path):
    """Open a complete result group written by :func:`write_result`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    zarr.Group
    """
    try:
        group = zarr.open_group(os.fspath(path), mode="r")
    except Exception as exc:
        raise ValueError(
            f"Model {os.fspath(path)!r} is not a dist-meanshift result ({exc}). Give "
            "the output of 'dist-meanshift run' or 'fit'."
        ) from exc
    if "cluster_centers" not in group or not group.attrs.get("complete"):
        raise ValueError(
            f"Model {os.fspath(path)!r} is not a complete dist-meanshift result. "
            "Give the output of a finished 'dist-meanshift run' or 'fit'."
        )
    return group


def describe(path):
    """Lines describing a dataset or a result, for ``dist-meanshift inspect``."""
    node = zarr.open(os.fspath(path), mode="r")
    lines = []
    if isinstance(node, zarr.Array):
        return [_describe_array(os.fspath(path), node)]
    attrs = dict(node.attrs)
    if "cluster_centers" in node:
        sizes = node["cluster_sizes"][:] if "cluster_sizes" in node else []
        lines.append(
            f"result: {'complete' if attrs.get('complete') else 'INCOMPLETE'}, "
            f"{node['cluster_centers'].shape[0]} clusters, bandwidth "
            f"{attrs.get('bandwidth', float('nan')):.4g}, "
            f"{attrs.get('n_iter', '?')} iterations"
        )
        if "input" in attrs:
            lines.append(f"input: {attrs['input']['path']} {attrs['input']['shape']}")
        lines.extend(f"  cluster {i}: {n} points" for i, n in enumerate(sizes))
    for name, arr in sorted(node.arrays()):
        lines.append(_describe_array(name, arr))
    for key in sorted(attrs):
        if key not in ("trace", "input"):
            lines.append(f"attr {key}: {json.dumps(attrs[key])[:120]}")
    return lines


def _describe_array(name, arr):
    return (
        f"{name}: shape {arr.shape}, dtype {arr.dtype}, chunks {arr.chunks}, "
        f"{arr.nbytes / 1e6:.1f} MB"
    )


def _partial_path(path):
    # Absolute, so that workers with another working directory write into it.
    return f"{os.path.abspath(path).rstrip('/')}.partial-{os.getpid()}"


def _replace(tmp, path):
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)
