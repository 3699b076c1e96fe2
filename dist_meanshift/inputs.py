"""Input datasets: one opener for every path, zarr chunks checked as read.

Every input path is opened by :func:`open_input`, read-only: a zarr array,
an array in a zarr group or a ``.npy`` file here, any other by its format
(:mod:`.formats`). A zarr chunk that is missing is
refused up front (zarr would read it as fill values); one that changes while
a run reads it stops the run (:func:`read_block`).
"""

from __future__ import annotations

import glob
import math
import os

import numpy as np
import zarr

from ._files import file_identity, require_file, require_unchanged
from .errors import InputError, listed, one_line


def open_input(path, array=None, **options):
    """Open a dataset for clustering: zarr, ``.npy``, or a format of :mod:`.formats`.

    Parameters
    ----------
    path : str or os.PathLike
        A zarr array, a zarr group (with ``array``, unless it holds one array
        only), a ``.npy`` file, or an input of a format (see
        :data:`~.formats.FORMATS`: tables, images, labelled datasets, HDF5).
    array : str, default=None
        Name of the array inside a zarr group (or of an HDF5 dataset).
    **options
        The ``[input]`` keys of the formats (``columns``, ``missing``,
        ``level``, ``spatial_scale``, ``variables``, ``dims``, ...): given to
        the format that opens ``path``; a key of another format is refused.

    Returns
    -------
    zarr.Array, numpy.ndarray, or what the format opens
        Opened read-only, by absolute path (workers with another working
        directory read the same store); a zarr array has every chunk present;
        a ``.npy`` file is memory-mapped, never unpickled.
    """
    from .formats import FORMATS, format_of

    name = os.fspath(path)
    given = {k: v for k, v in options.items() if v is not None}
    spec = format_of(name, given)
    for key in given:
        if spec is None or key not in spec.options:
            owner = next((f for f in FORMATS if key in f.options), None)
            if owner is None:
                raise TypeError(f"open_input() got an unknown option {key!r}")
            raise InputError(
                f"input.{key} applies to {owner.what}; {name!r} is not one. Drop "
                f"{key} = ... from [input]."
            )
    if spec is not None:
        spec.require_readers()
        if spec.takes_array:
            given["array"] = array
        elif array is not None:
            raise InputError(
                f"Input {name!r} is one of {spec.what}, so --array {array!r} does "
                "not apply. Drop --array (array = ... in a job file)."
            )
        return spec.open(name, **given)
    if not os.path.exists(name):
        raise InputError(f"Input {name!r} does not exist. Check the path.")
    path = os.path.abspath(name)
    if path.endswith(".npy"):
        require_file(name)
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            detail = one_line(exc, 160)
            raise InputError(
                f"Input {name!r} is not a plain numeric .npy file ({detail}). Save "
                "it with numpy.save from a numeric array."
            ) from exc
    try:
        node = zarr.open(path, mode="r")
    except Exception as exc:  # any reason to fail has the same remedy
        raise InputError(
            f"Input {name!r} is not a readable zarr array or group, nor a .npy file "
            f"({exc}). Give a zarr array or group, or a .npy file."
        ) from exc
    if isinstance(node, zarr.Array):
        if array is not None:
            raise InputError(
                f"Input {name!r} is a zarr array, so --array {array!r} does not "
                "apply. Drop --array, or give the path of the group."
            )
        return require_every_chunk(node, name)
    names = sorted(k for k, _ in node.arrays())
    if array is None and len(names) == 1:
        array = names[0]
    if array is None:
        inside = listed(os.path.join(name, k) for k in names)
        if any(node[k].metadata.dimension_names for k in names[:50]):
            # Written by xarray: its variables are the features.
            raise InputError(
                f"Input {name!r} is an xarray dataset of variables {listed(names)}. "
                "Name the feature variables (variables = [...] in a job file's "
                "[input]; dims = [...] for the sample dimensions), or give the path "
                f"of one array: {inside}."
            )
        raise InputError(
            f"Input {name!r} is a zarr group, not an array, holding arrays "
            f"{listed(names)}. Name the one to cluster with --array NAME (array = "
            '"NAME" in a job file), or give its path (in Python too): '
            f"{inside}."
        )
    if array not in names:
        raise InputError(
            f"Zarr group {name!r} has no array {array!r}; it holds {listed(names)}. "
            "Check --array (array = ... in a job file)."
        )
    return require_every_chunk(node[array], name)


def chunk_file(z, coords):
    """The file of chunk ``coords`` of ``z`` and its identity, or (None, None).

    The identity is the file's size and modification time in nanoseconds, or
    None when the file does not exist. Arrays of stores other than local
    directories have no file: their chunks are not checked.
    """
    root = getattr(z.store, "root", None)
    if root is None:
        return None, None
    key = z.metadata.encode_chunk_key(coords)
    file = (
        os.path.join(os.fspath(root), z.path, key)
        if z.path
        else os.path.join(os.fspath(root), key)
    )
    return file, file_identity(file)


def read_block(z, index, file=None, identity=None):
    """Read one block; name the rows if the store cannot give them or changed.

    Raises
    ------
    InputChanged
        When ``file`` no longer has ``identity`` (rewritten, added or deleted).
    ValueError
        When the block cannot be decoded.
    """
    rows = index[0]
    subject = f"Input chunk for rows {rows.start}-{rows.stop - 1} of {z.store_path}"
    if file is not None:
        require_unchanged(file, identity, subject)
    try:
        return np.asarray(z[index])
    except Exception as exc:  # a decoding failure of any codec means the same
        detail = one_line(exc)
        raise InputError(
            f"{subject} cannot be read ({detail}): the store is damaged. Write it "
            "again."
        ) from exc


def require_every_chunk(z, name):
    """``z``, refused when chunks are missing (zarr would read fill values)."""
    expected, present = z.nchunks, z.nchunks_initialized
    if present >= expected:
        return z
    chunks = z.shards or z.chunks
    grid = [math.ceil(n / c) for n, c in zip(z.shape, chunks, strict=True)]
    where = ""
    for coords in np.ndindex(*grid):
        file, identity = chunk_file(z, coords)
        if file is not None and identity is None:
            start = coords[0] * chunks[0]
            stop = min(z.shape[0], start + chunks[0])
            where = f", the first for rows {start}-{stop - 1}"
            break
    raise InputError(
        f"Input {name!r} is missing {expected - present} of {expected} chunks"
        f"{where}: the store is damaged or was not fully written. Write it again "
        "(if those rows really are all fill value, write it with "
        "config={'write_empty_chunks': True})."
    )


def input_fingerprint(path, array, shape, dtype):
    """What identifies an input: where it is, its shape, and when it changed."""
    path = os.path.abspath(path)
    node = os.path.join(path, array) if array else path
    meta = os.path.join(node, "zarr.json")
    if os.path.exists(meta):
        changed = os.path.getmtime(meta)
    else:  # a file, or a table's files
        files = glob.glob(node) + glob.glob(os.path.join(node, "*"))
        changed = max(os.path.getmtime(f) for f in files)
    return {
        "path": path,
        "array": array,
        "shape": list(shape),
        "dtype": str(dtype),
        "modified": changed,
    }
