"""HDF5 datasets in (h5py), an HDF5 labels file out.

A 2-D numeric dataset of an HDF5 file is read by the workers block by block:
each task opens the file by its path (h5py objects do not travel), checks it
against its state when the run opened it, and reads whole chunks of rows (a
contiguous dataset in blocks of about 64 MiB). The labels go to a new HDF5
file beside the result, one per row, as ``labels``; the input file is only
ever opened for reading.
"""

from __future__ import annotations

import math
import os

import numpy as np

from .._files import (
    MAX_BLOCK_BYTES,
    file_identity,
    reading,
    require_file,
    require_unchanged,
)
from .._outputs import written
from ..errors import InputError, listed
from .base import Format, LabelsBeside

#: Suffixes read as HDF5 (and any file that starts with HDF5's signature).
SUFFIXES = (".h5", ".hdf5", ".he5", ".hdf")
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
#: The format of a labels file this package wrote (in its attributes).
FORMAT = "dist-meanshift-hdf5-labels/1"
#: Bytes of rows a task reads at most (whole chunks, at least one).
_BLOCK_BYTES = 64 * 2**20
_WHAT = "an HDF5 file"
_REMEDY = "Give an HDF5 file h5py can read (its filters installed)."


def is_hdf5(path):
    """Whether ``path`` names an HDF5 file: by suffix, or by its signature."""
    name = os.fspath(path)
    if name.lower().endswith(SUFFIXES):
        return True
    if not os.path.isfile(name):  # never open a pipe or a device to look
        return False
    try:
        with open(name, "rb") as f:
            return f.read(8) == _SIGNATURE
    except OSError:
        return False


def open_hdf5(path, array=None):
    """A 2-D numeric dataset of an HDF5 file as a dask array, read block by block.

    Parameters
    ----------
    path : str or os.PathLike
    array : str, default=None
        The dataset's path in the file; not needed when the file holds one
        2-D numeric dataset.

    Returns
    -------
    dask.array.Array
        Chunks of whole rows: the dataset's own chunks of rows, joined up to
        about 64 MiB.
    """
    import h5py

    name = os.fspath(path)
    require_file(name)
    name = os.path.abspath(name)
    with reading(name, _WHAT, _REMEDY), h5py.File(name, "r") as f:
        tables = _numeric_tables(f)
        array = _chosen(name, f, array, tables)
        ds = f[array]
        shape, dtype, chunks = ds.shape, ds.dtype, ds.chunks
    chunk = math.prod(chunks or (1,)) * dtype.itemsize
    if chunk > MAX_BLOCK_BYTES:
        raise InputError(
            f"Dataset {array!r} of {name!r} is stored in chunks of "
            f"{chunk / 2**20:.0f} MiB {chunks}, more than a task reads at once "
            f"({MAX_BLOCK_BYTES >> 20} MiB). Save it with smaller chunks, e.g. "
            "h5py's chunks=True."
        )
    if shape[0] == 0 or shape[1] == 0:
        raise InputError(
            f"Dataset {array!r} of {name!r} has shape {shape}: nothing to cluster. "
            "Give a dataset with rows and columns."
        )
    return _lazy(name, array, shape, dtype, chunks)


def _numeric_tables(f):
    import h5py

    found = []

    def visit(key, obj):
        if isinstance(obj, h5py.Dataset) and obj.ndim == 2 and obj.dtype.kind in "iuf":
            found.append(key)

    f.visititems(visit)
    return found


def _chosen(name, f, array, tables):
    """The dataset to cluster, or a one-line refusal that names the choices."""
    import h5py

    if array is None:
        if len(tables) == 1:
            return tables[0]
        if not tables:
            raise InputError(
                f"Input {name!r} holds no 2-D numeric dataset (rows x features). "
                "Give an HDF5 file with one."
            )
        raise InputError(
            f"Input {name!r} holds the 2-D numeric datasets {listed(tables)}. Name "
            'the one to cluster with --array NAME (array = "NAME" in a job file).'
        )
    node = f.get(array)
    if not isinstance(node, h5py.Dataset):
        raise InputError(
            f"Input {name!r} has no dataset {array!r}; its 2-D numeric datasets are "
            f"{listed(tables) or 'none'}. Check --array (array = ... in a job file)."
        )
    if node.ndim != 2 or node.dtype.kind not in "iuf":
        raise InputError(
            f"Dataset {array!r} of {name!r} is {node.ndim}-D {node.dtype}, not a 2-D "
            "numeric table of rows x features. Give such a dataset."
        )
    return array


def _lazy(name, array, shape, dtype, chunks):
    import dask
    import dask.array as da

    row_bytes = shape[1] * dtype.itemsize
    unit = chunks[0] if chunks else 1
    per_block = max(unit, unit * (_BLOCK_BYTES // max(1, row_bytes * unit)))
    starts = range(0, shape[0], per_block)
    identity = file_identity(name)
    token = dask.base.tokenize(name, array, identity, per_block)
    key = f"hdf5-{token}"
    graph = {
        (key, i, 0): (
            _read_rows,
            name,
            array,
            s,
            min(shape[0], s + per_block),
            identity,
        )
        for i, s in enumerate(starts)
    }
    sizes = tuple(min(shape[0], s + per_block) - s for s in starts)
    meta = np.empty((0, 0), dtype)
    return da.Array(graph, key, (sizes, (shape[1],)), meta=meta)


def _read_rows(name, array, start, stop, identity):
    """Rows ``start:stop`` of the dataset, read in a task (the file checked first)."""
    import h5py

    subject = f"Input rows {start}-{stop - 1} of {name!r}"
    require_unchanged(name, identity, subject)
    with reading(name, _WHAT, _REMEDY), h5py.File(name, "r") as f:
        return f[array][start:stop]


def write_labels_file(path, data, labels):
    """Write ``labels`` (one per row) to a new HDF5 file, atomically.

    The file holds ``labels`` (int, chunked as the stored labels) and the
    attributes ``format``, ``source`` (the input) and ``complete``, set last.

    Parameters
    ----------
    path : str or os.PathLike
    data : dask.array.Array
        The input as opened.
    labels : dask.array.Array of shape (n_rows,)
        The result's stored labels, read chunk by chunk.
    """
    import h5py

    del data  # the rows are not copied: the labels are numbered as they are
    rows = labels.chunks[0][0] if labels.chunks[0] else 1
    with written(path) as tmp, h5py.File(tmp, "w") as f:
        out = f.create_dataset(
            "labels", shape=labels.shape, dtype=labels.dtype, chunks=(max(1, rows),)
        )
        start = 0
        for block in labels.blocks:
            values = np.asarray(block.compute())
            out[start : start + len(values)] = values
            start += len(values)
        f.attrs["format"] = FORMAT
        f.attrs["complete"] = True


def read_labels_attrs(path):
    """The attributes of an HDF5 labels file (``complete`` as a bool)."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: v.item() if hasattr(v, "item") else v for k, v in f.attrs.items()}
    attrs["complete"] = attrs.get("complete") is True
    return attrs


def _describe_labels(name):
    """An HDF5 labels file written beside a result, or None."""
    if not (os.path.isfile(name) and is_hdf5(name)):
        return None
    import h5py

    try:
        attrs = read_labels_attrs(name)
        if attrs.get("format") != FORMAT:
            return None
        with h5py.File(name, "r") as f:
            n = f["labels"].shape[0]
    except (OSError, KeyError):
        return None
    state = "complete" if attrs["complete"] else "INCOMPLETE"
    return [f"labels file: {state}, {n} labels"]


SPEC = Format(
    name="hdf5",
    what="HDF5 files",
    kind="hdf5 dataset",
    reads="an HDF5 file (a 2-D numeric dataset)",
    can_open=lambda path, options: is_hdf5(path),
    open=open_hdf5,
    extra="hdf5",
    modules=("h5py",),
    takes_array=True,
    labels=LabelsBeside(
        key="hdf5",
        doc="For HDF5 inputs: the labels file, `labels` one per row (default: "
        "beside the result).",
        title="labels file",
        suffix=lambda input_path: ".labels.h5",
        marker=FORMAT,
        write=lambda path, data, labels, model, sizes, outputs: write_labels_file(
            path, data, labels
        ),
        read_attrs=read_labels_attrs,
        describe=_describe_labels,
    ),
)
