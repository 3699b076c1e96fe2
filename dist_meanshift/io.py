"""zarr in and out: demo datasets written chunk by chunk, results written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import socket
import time

import dask
import dask.array as da
import numpy as np
import zarr

logger = logging.getLogger(__name__)

#: The ``format`` attribute of every result group this package writes.
FORMAT = "dist-meanshift-result/1"
#: The ``format`` attribute of demo datasets made by :func:`make_blobs_zarr`.
BLOBS_FORMAT = "dist-meanshift-blobs/1"
# Every chunk is stored, even one that is all fill value, so that a missing
# chunk always means a damaged store.
_EVERY_CHUNK = {"write_empty_chunks": True}
_STATE_ARRAYS = ("pos", "mult", "active", "intensity")


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
        "X",
        shape=(n_samples, n_features),
        dtype="f4",
        chunks=(chunk_rows, n_features),
        config=_EVERY_CHUNK,
    )
    y = group.create_array(
        "y", shape=(n_samples,), dtype="i4", chunks=(chunk_rows,), config=_EVERY_CHUNK
    )
    group.create_array("centers", data=true_centers, config=_EVERY_CHUNK)
    for start in range(0, n_samples, chunk_rows):
        stop = min(n_samples, start + chunk_rows)
        chunk_rng = np.random.default_rng([seed, start])
        labels = chunk_rng.integers(0, centers, size=stop - start)
        points = true_centers[labels] + chunk_rng.normal(
            scale=std, size=(stop - start, n_features)
        )
        X[start:stop] = points.astype(np.float32)
        y[start:stop] = labels
    group.attrs.update({"format": BLOBS_FORMAT, "complete": True})
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
    arr = zarr.create_array(
        tmp, shape=data.shape, dtype=data.dtype, chunks=chunks, config=_EVERY_CHUNK
    )
    arr[:] = data
    arr.attrs.update(_jsonable(attrs or {}))
    _replace(tmp, path)


def save_state(group, checkpoint, meta):
    """Record a fit's state after an iteration in its output group, atomically.

    The arrays go to a new subgroup ``state/<iteration>``; then the ``state``
    group's attributes (one file, replaced atomically) are pointed at it; then
    the previous subgroup is deleted. A kill at any moment leaves a readable
    state: the previous one or the new one.

    Parameters
    ----------
    group : zarr.Group
        The output group made by :func:`create_output`.
    checkpoint : dict
        :attr:`IterationState.checkpoint`: arrays, ``next_iteration``, ``trace``.
    meta : dict
        JSON-serialisable: the fingerprint of input and parameters, the bandwidth.
    """
    state = group.require_group("state")
    name = str(checkpoint["next_iteration"])
    sub = state.create_group(name, overwrite=True)
    for key, value in checkpoint.items():
        if isinstance(value, np.ndarray):
            sub.create_array(key, data=value, config=_EVERY_CHUNK)
    previous = state.attrs.get("current")
    state.attrs.put(
        _jsonable(
            {
                **meta,
                "current": name,
                "next_iteration": checkpoint["next_iteration"],
                "trace": checkpoint["trace"],
            }
        )
    )
    if previous is not None and previous != name and previous in state:
        del state[previous]


def load_state(group):
    """The state recorded by :func:`save_state`, or None (never unpickles).

    Parameters
    ----------
    group : zarr.Group

    Returns
    -------
    dict or None
        The arrays of the checkpoint and the recorded metadata.
    """
    if "state" not in group:
        return None
    state = group["state"]
    meta = dict(state.attrs)
    if "current" not in meta:
        return None
    sub = state[meta["current"]]
    missing = [k for k in _STATE_ARRAYS if k not in sub]
    if missing:
        raise ValueError(f"the recorded state lacks {', '.join(missing)}")
    return {**{name: arr[:] for name, arr in sub.arrays()}, **meta}


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


def create_output(path, attrs, *, overwrite=False, inputs=()):
    """Create a result group marked incomplete, replacing an older output.

    Parameters
    ----------
    path : str or os.PathLike
    attrs : dict
        JSON-serialisable run description.
    overwrite : bool, default=False
        Replace an existing dist-meanshift output (never any other directory).
    inputs : sequence of path, default=()
        Paths the output must not be, lie in, or hold.

    Returns
    -------
    zarr.Group
    """
    check_output_path(path, overwrite, inputs)
    path = os.path.abspath(os.fspath(path))
    # An earlier result stays as it is until the new one is complete: the new
    # one is written beside it and swapped in by finish_result. A stopped run
    # (ours, checked above) has nothing to keep and is replaced in place, so
    # that --resume finds the new run's state.
    where = path
    if _output_status(path) is True:
        where = _partial_path(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        _remove_output(path)
    # One write makes the group with its attributes: a kill cannot leave a
    # group that is not recognisably ours.
    return zarr.create_group(
        where,
        attributes={
            **_jsonable(attrs),
            "format": FORMAT,
            "complete": False,
            "destination": path,
        },
    )


def _remove_output(path):
    """Delete a stopped output; its metadata, which marks it as ours, goes last."""
    meta = os.path.join(path, "zarr.json")
    for entry in os.scandir(path):
        if entry.name == "zarr.json":
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)
    if os.path.exists(meta):
        os.remove(meta)
    os.rmdir(path)


def group_path(group):
    """The directory of a zarr group on a local store."""
    return os.fspath(group.store.root)


def discard_output(group):
    """Delete an output this run created (never an earlier one it replaces)."""
    path = group_path(group)
    if _output_status(path) is False:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def output_lock(path):
    """Hold the lock of an output for as long as a run writes it.

    The lock is ``flock`` on a file beside the output (``<output>.lock``,
    removed at the end) that names its holder. A second run for the same output
    is refused, naming the holder; the kernel drops the lock of a process that
    died, so its successor takes the lock over without asking.

    Raises
    ------
    FileExistsError
        When a live run holds the lock.
    """
    lock = f"{os.path.realpath(os.fspath(path)).rstrip(os.sep)}.lock"
    made = _make_parents(os.path.dirname(lock))
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip()
            os.close(fd)
            raise FileExistsError(
                f"Output {os.fspath(path)!r} is being written by another run "
                f"({holder or 'starting'}). Wait for it to end, or choose another "
                "output path."
            ) from None
        try:
            # The holder before us may have removed the file after we opened it.
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)
        for folder in reversed(made):  # those made for nothing go again
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _make_parents(folder):
    """Create ``folder`` and its missing parents; return those created."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for made in reversed(missing):
        os.makedirs(made, exist_ok=True)
    return missing[::-1]


def open_stopped_output(path, inputs=()):
    """The group of a stopped (or finished) run at ``path``, or None if there is none.

    Parameters
    ----------
    path : str or os.PathLike
    inputs : sequence of path, default=()

    Returns
    -------
    zarr.Group or None
    """
    check_output_path(path, overwrite=False, inputs=inputs, resume=True)
    if not os.path.exists(path) or _is_empty_dir(path):
        return None
    return zarr.open_group(os.path.abspath(os.fspath(path)), mode="r+")


def finish_result(group, *, labels, centers, attrs):
    """Write a fit's result into its output group; mark it complete last.

    ``labels`` is written chunk by chunk by the workers (a dask array is stored
    in place, never gathered on the client). ``attrs["complete"] = True`` is
    written after every other byte of the result, in the same atomic write as
    the other attributes; the recorded state is deleted after it.

    Parameters
    ----------
    group : zarr.Group
        Made by :func:`create_output`.
    labels : ndarray or dask.array.Array of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    attrs : dict
        JSON-serialisable run description.

    Returns
    -------
    cluster_sizes : ndarray of shape (n_clusters,)
        Points per cluster (points labelled -1 are counted in
        ``attrs["n_unlabelled"]``).
    """
    # The smallest signed integer holding -1 and every cluster index: int8
    # up to 128 clusters, an eighth of the bytes of int64 to compress and write.
    label_dtype = np.min_scalar_type(-max(1, len(centers)))
    in_memory = not isinstance(labels, da.Array)
    if in_memory:
        # Written from here: a task graph would carry the labels themselves.
        labels = np.asarray(labels)
        rows = min(max(1, len(labels)), 1 << 20)
    else:
        rows = labels.chunks[0][0]
        if any(c != rows for c in labels.chunks[0][:-1]):
            labels = labels.rechunk({0: rows})
    out = group.create_array(
        "labels",
        shape=labels.shape,
        dtype=label_dtype,
        chunks=(rows,),
        overwrite=True,
        config=_EVERY_CHUNK,
    )
    if in_memory:
        out[:] = labels.astype(label_dtype)
        sizes = np.bincount(labels + 1, minlength=len(centers) + 1)
    else:
        stored = da.store(labels.astype(label_dtype), out, lock=False, compute=False)
        counts = da.bincount(labels + 1, minlength=len(centers) + 1)
        _, sizes = dask.compute(stored, counts)
    for key, value in (("cluster_centers", centers), ("cluster_sizes", sizes[1:])):
        group.create_array(
            key, data=np.asarray(value), overwrite=True, config=_EVERY_CHUNK
        )
    # One atomic write of the attributes marks the result complete, after every
    # byte of it. The recorded state goes after that: a kill in between leaves
    # a complete result, never a result-less output without its state.
    destination = group.attrs.get("destination", group_path(group))
    group.attrs.put(
        {
            **_jsonable(attrs),
            "format": FORMAT,
            "n_unlabelled": int(sizes[0]),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "complete": True,
        }
    )
    if "state" in group:
        del group["state"]
    if os.path.abspath(group_path(group)) != destination:
        _replace(group_path(group), destination)
    return sizes[1:]


def write_result(path, *, labels, centers, attrs, overwrite=False, inputs=()):
    """Create a result group at ``path`` and write a fit's result into it.

    :func:`create_output`, then :func:`finish_result`: until the last byte is
    written the group is marked incomplete.

    Parameters
    ----------
    path : str or os.PathLike
    labels : ndarray or dask.array.Array of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    attrs : dict
    overwrite : bool, default=False
    inputs : sequence of path, default=()

    Returns
    -------
    cluster_sizes : ndarray of shape (n_clusters,)
    """
    group = create_output(path, attrs, overwrite=overwrite, inputs=inputs)
    return finish_result(group, labels=labels, centers=centers, attrs=attrs)


def check_output_path(path, overwrite, inputs=(), resume=False, replaceable=None):
    """Refuse an output that would overwrite input, or that exists unless allowed.

    Paths are compared after resolving every symbolic link, so an output
    reached through a link to the input is refused like the input itself; an
    output that is itself a link is refused (replacing it would act on what it
    points to). An existing path may be replaced (``overwrite``) or resumed
    (``resume``) only if it is a dist-meanshift output of a ``replaceable``
    format: results by default, never a dataset.
    """
    replaceable = (FORMAT,) if replaceable is None else replaceable
    name = os.fspath(path)
    if os.path.islink(name):
        raise ValueError(
            f"Output {name!r} is a symbolic link (to {os.readlink(name)!r}); it is "
            "left alone. Give the path it points to, or another path."
        )
    out = os.path.realpath(name)
    for inp in inputs:
        inp = os.path.realpath(os.fspath(inp))
        if out == inp or out.startswith(inp + os.sep) or inp.startswith(out + os.sep):
            raise ValueError(
                f"Output {name!r} is the input or lies inside it (or holds it), "
                "once links are resolved. Choose an output path outside the input."
            )
    if not os.path.exists(name) or _is_empty_dir(name):
        return
    complete = _output_status(name, replaceable)
    if complete is None:
        if overwrite or resume:
            raise FileExistsError(
                f"Output {name!r} exists and is not a dist-meanshift result, so it "
                "is left alone. Choose another output path."
            )
    elif resume:
        return
    elif not complete and not overwrite:
        raise FileExistsError(
            f"Output {name!r} holds a stopped run. Pass --resume to "
            "continue it, --overwrite to start afresh, or choose another path."
        )
    if not overwrite:
        raise FileExistsError(
            f"Output {name!r} already exists. Pass --overwrite (or "
            "output.overwrite = true) to replace it, or choose another path."
        )


def _is_empty_dir(path):
    return os.path.isdir(path) and not os.listdir(path)


def _output_status(path, formats=None):
    """True/False for a complete/incomplete output of ``formats``, else None."""
    formats = (FORMAT,) if formats is None else formats
    try:
        attrs = dict(zarr.open_group(os.fspath(path), mode="r").attrs)
    except (OSError, ValueError):  # not a zarr group, or unreadable metadata
        return None
    if attrs.get("format") not in formats:
        return None
    return attrs.get("complete") is True


def read_result(path):
    """Open a complete result group written by :func:`write_result`.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    zarr.Group
    """
    name = os.fspath(path)
    try:
        group = zarr.open_group(name, mode="r")
    except Exception as exc:
        raise ValueError(
            f"Model {name!r} is not a dist-meanshift result ({exc}). Give "
            "the output of 'dist-meanshift run' or 'fit'."
        ) from exc
    if "cluster_centers" not in group or group.attrs.get("complete") is not True:
        raise ValueError(
            f"Model {name!r} is not a complete dist-meanshift result. "
            "Give the output of a finished 'dist-meanshift run' or 'fit'."
        )
    return group


def read_centers(group, path):
    """The cluster centers of a result, checked as strictly as input data.

    Every chunk must be present (zarr would read a missing one as fill values)
    and decodable; the centers must be a non-empty 2-D array of finite real
    numbers.

    Parameters
    ----------
    group : zarr.Group
        From :func:`read_result`.
    path : str or os.PathLike
        The model's path, for the messages.

    Returns
    -------
    ndarray of shape (n_clusters, n_features)
    """
    name = os.fspath(path)
    damaged = (
        f"Model {name!r} has damaged cluster_centers ({{}}). Fit again, or give "
        "an intact result."
    )
    node = group["cluster_centers"]
    if not isinstance(node, zarr.Array):
        raise ValueError(damaged.format("not an array"))
    if node.nchunks_initialized < node.nchunks:
        missing = node.nchunks - node.nchunks_initialized
        raise ValueError(damaged.format(f"{missing} of {node.nchunks} chunks missing"))
    try:
        centers = node[...]
    except Exception as exc:  # any codec's failure means the same
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:120]
        raise ValueError(damaged.format(f"unreadable: {detail}")) from exc
    if centers.dtype.kind not in "iuf":
        raise ValueError(damaged.format(f"dtype {centers.dtype}, not real numbers"))
    if centers.ndim != 2 or centers.shape[0] == 0 or centers.shape[1] == 0:
        raise ValueError(damaged.format(f"shape {centers.shape}"))
    if not np.isfinite(centers).all():
        raise ValueError(damaged.format("NaN or infinite values"))
    return centers


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
            + ("" if attrs.get("converged", True) else ", stopped at max_iter")
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


def _jsonable(value):
    return json.loads(json.dumps(value, default=list))


def _partial_path(path):
    # Absolute, so that workers with another working directory write into it.
    return f"{os.path.abspath(path).rstrip('/')}.partial-{os.getpid()}"


def _replace(tmp, path):
    """Put the complete ``tmp`` at ``path``; the earlier ``path`` goes last.

    The earlier one is renamed aside first and deleted only once ``tmp`` is in
    place: a kill in between leaves both, never neither. Links were refused
    before any write (see :func:`check_output_path`).
    """
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    aside = f"{path}.old-{os.getpid()}"
    os.rename(path, aside)
    os.rename(tmp, path)
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside)
    else:
        os.remove(aside)
