"""Result groups: written atomically and marked complete last; read back checked.

A result is a zarr group holding ``labels``, ``cluster_centers`` and
``cluster_sizes`` with the run's description in its attributes; while a run
goes on it also holds the state of its last iteration (see ``_checkpoint``).
"""

from __future__ import annotations

import os
import shutil
import time

import dask
import dask.array as da
import numpy as np
import zarr

from ._outputs import (
    EVERY_CHUNK,
    FORMAT,
    check_output_path,
    is_empty_dir,
    jsonable,
    output_status,
    partial_path,
    remove_output,
    replace,
)
from .errors import InputError, one_line, shown

# Labels are small integers: Blosc's lz4 over bit planes writes a 2M-row int8
# chunk in 3.0 ms and 759 kB, against 20.8 ms and 890 kB for zarr's default
# zstd (measured here; at 200M rows the default was some 0.4 of a data read).
LABEL_CODEC = zarr.codecs.BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle")


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
    if output_status(path) is True:
        where = partial_path(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        remove_output(path)
    # One write makes the group with its attributes: a kill cannot leave a
    # group that is not recognisably ours.
    return zarr.create_group(
        where,
        attributes={
            **jsonable(attrs),
            "format": FORMAT,
            "complete": False,
            "destination": path,
        },
    )


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
    if not os.path.exists(path) or is_empty_dir(path):
        return None
    return zarr.open_group(os.path.abspath(os.fspath(path)), mode="r+")


def finish_result(group, *, labels, centers, attrs, before_complete=None):
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
    before_complete : callable, default=None
        ``before_complete(cluster_sizes)`` writes what goes beside the group
        (a labels table), after the group's arrays and before it is marked
        complete.

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
        compressors=LABEL_CODEC,
        overwrite=True,
        config=EVERY_CHUNK,
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
            key, data=np.asarray(value), overwrite=True, config=EVERY_CHUNK
        )
    if before_complete is not None:  # outputs beside the group, complete first
        before_complete(sizes[1:])
    # One atomic write of the attributes marks the result complete, after every
    # byte of it. The recorded state goes after that: a kill in between leaves
    # a complete result, never a result-less output without its state.
    destination = group.attrs.get("destination", group_path(group))
    group.attrs.put(
        {
            **jsonable(attrs),
            "format": FORMAT,
            "n_unlabelled": int(sizes[0]),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "complete": True,
        }
    )
    if "state" in group:
        del group["state"]
    if os.path.abspath(group_path(group)) != destination:
        replace(group_path(group), destination)
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


def group_path(group):
    """The directory of a zarr group on a local store."""
    return os.fspath(group.store.root)


def discard_output(group):
    """Delete an output this run created (never an earlier one it replaces)."""
    path = group_path(group)
    if output_status(path) is False:
        shutil.rmtree(path, ignore_errors=True)


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
        raise InputError(
            f"Model {name!r} is not a dist-meanshift result ({exc}). Give "
            "the output of 'dist-meanshift run' or 'fit'."
        ) from exc
    if group.attrs.get("format") != FORMAT:
        raise InputError(
            f"Model {name!r} has format {shown(group.attrs.get('format'))}, not "
            f"{FORMAT!r}: it is not a dist-meanshift result. Give the output of "
            "'dist-meanshift run' or 'fit', or of MeanShift.save."
        )
    if "cluster_centers" not in group or group.attrs.get("complete") is not True:
        raise InputError(
            f"Model {name!r} is not a complete dist-meanshift result. "
            "Give the output of a finished 'dist-meanshift run' or 'fit'."
        )
    return group


def _require_inside(group, key, name):
    """Refuse an array of a local store that lies outside it (a link out of the model)."""
    root = getattr(group.store, "root", None)
    if root is None:
        return
    top = os.path.realpath(os.path.join(os.fspath(root), group.path))
    node = os.path.join(top, key)
    inside = os.path.realpath(node).startswith(top + os.sep)
    for folder, dirs, files in os.walk(node):
        for entry in dirs + files:
            inside = inside and not os.path.islink(os.path.join(folder, entry))
    if not inside:
        raise InputError(
            f"Model {name!r} has {key} behind a symbolic link; a model's arrays lie "
            "inside its own folder. Give an intact result."
        )


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
    _require_inside(group, "cluster_centers", name)
    node = group["cluster_centers"]
    if not isinstance(node, zarr.Array):
        raise InputError(damaged.format("not an array"))
    if node.nchunks_initialized < node.nchunks:
        missing = node.nchunks - node.nchunks_initialized
        raise InputError(damaged.format(f"{missing} of {node.nchunks} chunks missing"))
    try:
        centers = node[...]
    except Exception as exc:  # any codec's failure means the same
        detail = one_line(exc, 120)
        raise InputError(damaged.format(f"unreadable: {detail}")) from exc
    if centers.dtype.kind not in "iuf":
        raise InputError(damaged.format(f"dtype {centers.dtype}, not real numbers"))
    if centers.ndim != 2 or centers.shape[0] == 0 or centers.shape[1] == 0:
        raise InputError(damaged.format(f"shape {centers.shape}"))
    if not np.isfinite(centers).all():
        raise InputError(damaged.format("NaN or infinite values"))
    return centers
