"""Streamed chunks sorted into their cell index once per fit, kept on disk.

A chunk read from its store at every pass must be sorted into cells at every
pass before its sums (the flat kernel's ``flat_row_sums``): half of a pass's
work. Where the workers share this machine, the first pass instead writes
each chunk's cell index (:meth:`~.._blocks.kernels.base.Kernel.prepare`:
the rows in cell order, with their cells' prefix sums) into a scratch
directory, and every pass after reads it back and sums over it
(``flat_indexed_sums``) without sorting anything.

Each chunk's index is one file (a JSON header, then the arrays' bytes,
uncompressed), written under a temporary name and put in place when
complete (as outputs are: ``_outputs.written``), and read back by mapping
it: a pass reads only the pages its sums touch. A file that is missing or
cut short fails to load (zarr would read a missing chunk as fill values).
The directory is made with :func:`tempfile.mkdtemp` (new, private to this
user) under Dask's ``temporary-directory`` and removed when the fit ends.
"""

from __future__ import annotations

import json
import logging
import math
import mmap
import os
import shutil
import socket
import tempfile

import numpy as np

from .. import _blocks
from .._blocks.grid import ColumnIndex, PreparedRows, slabs
from .._outputs import written

logger = logging.getLogger(__name__)

#: Rows of one slab of a stored index: a chunk is indexed slab by slab, so
#: that its task holds some 80 MiB of temporaries at most (a 2M x 3 chunk in
#: one slab: 183 MiB, too much beside a 512 MiB worker's 250 MiB footprint).
SLAB_ROWS = 1 << 19
#: Free space a scratch directory must keep beyond what it is to hold.
_FREE_MARGIN = 1 << 30
_PREFIX = "dist-meanshift-scratch-"
#: ColumnIndex fields held as attributes rather than arrays.
_SCALARS = ("n_features", "col_side", "z_side", "scale")


def open_directory(client, nbytes):
    """A new scratch directory for ``nbytes`` of indexes, or None.

    None where a worker runs on another host (no directory is known to be
    shared with it) or where the disk lacks room for them with a margin.
    """
    here = socket.gethostname()
    hosts = set(client.run(socket.gethostname).values())
    if hosts != {here}:
        logger.info("workers on other hosts (%s): chunks sorted at every pass", hosts)
        return None
    import dask

    base = dask.config.get("temporary-directory", None) or tempfile.gettempdir()
    free = shutil.disk_usage(base).free
    if free < nbytes + _FREE_MARGIN:
        logger.info(
            "%.1f GB free in %s, %.1f GB needed: chunks sorted at every pass",
            free / 1e9,
            base,
            (nbytes + _FREE_MARGIN) / 1e9,
        )
        return None
    path = tempfile.mkdtemp(prefix=_PREFIX, dir=base)
    logger.info("chunks' cell indexes kept in %s (%.1f GB)", path, nbytes / 1e9)
    return path


def close_directory(path):
    """Remove a scratch directory :func:`open_directory` made."""
    if path and os.path.basename(path).startswith(_PREFIX):
        shutil.rmtree(path, ignore_errors=True)


def index_bytes(n_rows, n_features):
    """Bytes the stored indexes of ``n_rows`` rows take at most: the rows (as
    float64; float32 ones as they are), their weights where duplicates
    merge, and the cells' prefix sums (measured: 0.7 bytes a row)."""
    return n_rows * (8 * n_features + 9)


def sums_writing_index(
    centers, X, path, bandwidth, kernel, sample_weight=None, truncate=None
):
    """:func:`~.._blocks.shift_partial_sums` of one chunk, its cell index
    written into file ``path`` on the way where the kernel makes one to keep.

    The kernel prepares the rows slab by slab (:meth:`~.._blocks.kernels.base.
    Kernel.prepare`); where it keeps them as they are, or indexes them in a
    way not stored here (beyond 3 features), nothing is written and the sums
    are the plain ones.
    """
    kernel = _blocks.kernels.get(kernel)
    X = np.asarray(X)
    made = []
    for x, w in slabs(X, sample_weight, SLAB_ROWS):
        prepared = kernel.prepare(x, w, bandwidth, truncate)
        if prepared is None or prepared.ordered:
            made = None
            break
        if not all(isinstance(index, ColumnIndex) for index in prepared.slabs):
            made = None
            break
        for index in prepared.slabs:
            if X.dtype == np.float32:
                # float32 rows: exact in float32, half the bytes held and kept
                # (the sums' loops take each coordinate to float64 as read).
                index.coords = index.coords.astype(np.float32)
        made.extend(prepared.slabs)
    if not made:
        return _blocks.shift_partial_sums(
            centers, X, bandwidth, kernel, sample_weight, truncate
        )
    try:
        _save(made, X, path)
    except OSError as error:
        # A full disk, or a directory this worker may not write (another
        # user's worker on this host): the chunk is sorted at every pass.
        logger.info("chunk index not kept (%s): its rows are read each pass", error)
    prepared = PreparedRows(made, X.shape)
    return _blocks.shift_partial_sums(
        centers, prepared, bandwidth, kernel, truncate=truncate
    )


#: The first bytes of a stored index (then the header's length, 8 bytes).
_MAGIC = b"dist-meanshift index 1\n"
#: Every array starts at a multiple of this many bytes in the file.
_ALIGN = 64


def _save(made, X, path):
    """Write the index into one file, complete or not at all (a retried
    task's replaces the earlier try's, the same).

    The file holds a JSON header (each slab's scalars, and each array's
    name, dtype, shape and offset), then every array's bytes, aligned: read
    back by mapping the file, one open and no copy (:func:`read_index`).
    """
    slab_scalars, entries, values, end = [], [], [], 0
    for i, index in enumerate(made):
        fields = vars(index)
        slab_scalars.append({name: _scalar(fields[name]) for name in _SCALARS})
        for name, value in fields.items():
            if name in _SCALARS:
                continue
            value = np.ascontiguousarray(value)
            offset = _aligned(end)
            entries.append([i, name, value.dtype.str, list(value.shape), offset])
            values.append(value)
            end = offset + value.nbytes
    header = json.dumps(
        {"shape": list(X.shape), "scalars": slab_scalars, "arrays": entries}
    ).encode()
    start = _aligned(len(_MAGIC) + 8 + len(header))
    with written(path) as temporary, open(temporary, "wb") as file:
        file.write(_MAGIC + len(header).to_bytes(8, "little") + header)
        for entry, value in zip(entries, values, strict=True):
            file.seek(start + entry[4])
            file.write(memoryview(value).cast("B"))
        file.truncate(start + end)


def _aligned(n):
    """``n`` bytes rounded up to a multiple of ``_ALIGN``: where the arrays
    start after the header, and each after the one before."""
    return -(-n // _ALIGN) * _ALIGN


def _scalar(value):
    """A numpy scalar as the Python one JSON writes (floats exactly)."""
    return value.item() if isinstance(value, np.generic) else value


def read_index(path):
    """The :class:`~.._blocks.grid.PreparedRows` that :func:`sums_writing_index`
    wrote into ``path``: read-only arrays over the mapped file, whose pages
    are read only where the sums touch them (a ball's edge cells, the
    prefix sums at its runs' ends)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"a chunk's cell index {path} was removed while the fit ran: "
            "keep the scratch directory until the fit ends"
        )
    with open(path, "rb") as file:
        head = file.read(len(_MAGIC) + 8)
        if not head.startswith(_MAGIC):
            raise ValueError(f"{path} is not a chunk's cell index: remove it")
        header = json.loads(file.read(int.from_bytes(head[len(_MAGIC) :], "little")))
        start = _aligned(file.tell())
        size = os.fstat(file.fileno()).st_size
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    fields = [dict(scalars) for scalars in header["scalars"]]
    for i, name, dtype, shape, offset in header["arrays"]:
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        if not count:  # no bytes (unweighted rows' weights), wherever it is
            fields[i][name] = np.empty(shape, dtype)
            continue
        if start + offset + count * dtype.itemsize > size:
            raise ValueError(
                f"the chunk's cell index {path} is cut short: "
                "keep the scratch directory until the fit ends"
            )
        fields[i][name] = np.frombuffer(
            mapped, dtype=dtype, count=count, offset=start + offset
        ).reshape(shape)
    return PreparedRows([ColumnIndex(**f) for f in fields], tuple(header["shape"]))


def indexed_sums(centers, path, bandwidth, kernel, truncate=None):
    """:func:`~.._blocks.shift_partial_sums` over the chunk indexed in ``path``
    (with its weights)."""
    return _blocks.shift_partial_sums(
        centers, read_index(path), bandwidth, kernel, truncate=truncate
    )
