"""Validation at the edge: parameters and input arrays, checked once.

Every error names the parameter or input, the value found and the remedy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from numbers import Integral, Real

import dask
import dask.array as da
import numpy as np
import zarr
from sklearn.utils import check_array
from sklearn.utils.validation import validate_data

from . import _driver
from ._blocks import KERNELS


@dataclass
class InputData:
    """A validated 2-D float dataset.

    Attributes
    ----------
    array : dask.array.Array
        The data as a dask array chunked by rows only.
    numpy : ndarray or None
        The in-memory array when the input was in memory (numpy in, numpy out).
    kind : {"numpy", "dask", "zarr"}
    """

    array: da.Array
    numpy: np.ndarray | None
    kind: str

    @property
    def shape(self):
        return self.array.shape

    def to_output(self, result):
        """numpy in, numpy out; dask or zarr in, the lazy dask array."""
        return _driver.compute(result)[0] if self.kind == "numpy" else result


def check_input(X, *, name="X", estimator=None, reset=True, chunk_rows=None):
    """Validate numpy, dask or zarr input and return it as :class:`InputData`.

    Parameters
    ----------
    X : array-like, dask.array.Array, zarr.Array or str or os.PathLike
        A path is opened as a zarr array, read-only.
    name : str, default="X"
        How the input is called in error messages.
    estimator : estimator instance, default=None
        When given, ``n_features_in_`` is set (``reset=True``) or checked.
    reset : bool, default=True
    chunk_rows : int, default=None
        Rows per chunk; by default the chunks of dask and zarr input are kept
        and in-memory input is chunked automatically.

    Returns
    -------
    InputData
    """
    if isinstance(X, str | os.PathLike):
        X = _open_zarr_array(X, name)
    if isinstance(X, zarr.Array | da.Array):
        kind = "zarr" if isinstance(X, zarr.Array) else "dask"
        _check_lazy(X, name)
        arr = _from_zarr(X, name) if kind == "zarr" else X
        if arr.dtype.kind in "iu" or arr.dtype.itemsize > 8:
            arr = arr.astype(np.float64)
        elif arr.dtype.itemsize < 4:
            arr = arr.astype(np.float32)
        if arr.numblocks[1] > 1:
            arr = arr.rechunk({1: -1})
        if chunk_rows is not None:
            arr = arr.rechunk({0: chunk_rows})
        _check_features(estimator, arr.shape[1], reset, name)
        return InputData(arr, None, kind)

    if getattr(X, "dtype", None) is not None and np.dtype(X.dtype).kind == "b":
        raise ValueError(_dtype_message(name, X.dtype))
    kwargs = {"dtype": [np.float64, np.float32], "ensure_all_finite": False}
    try:
        if estimator is not None:
            Xn = validate_data(estimator, X, reset=reset, **kwargs)
        else:
            Xn = check_array(X, input_name=name, **kwargs)
    except ValueError as exc:
        if "could not convert" in str(exc) or "dtype" in str(exc).lower():
            raise ValueError(
                _dtype_message(name, getattr(X, "dtype", "object"))
            ) from exc
        raise
    check_finite(*_count_non_finite_numpy(Xn), name=name)
    return InputData(_driver.to_dask_array(Xn, chunk_rows), Xn, "numpy")


def check_finite(count, first, *, name="X"):
    """Refuse data with NaN or infinity, saying how many and where.

    Parameters
    ----------
    count : int
        Number of non-finite values.
    first : tuple of int or None
        (row, column) of the first one.
    name : str, default="X"
    """
    if count:
        raise ValueError(
            f"Input {name} contains {count} NaN or infinite value(s), the first at "
            f"row {first[0]}, column {first[1]}. Remove or impute them before "
            "clustering."
        )


@dataclass
class SampleWeight:
    """Validated row weights, as a dask array chunked like the data's rows."""

    array: da.Array
    numpy: np.ndarray | None

    def to_numpy(self):
        if self.numpy is None:
            self.numpy = np.asarray(self.array.compute())
        return self.numpy


def check_sample_weight(sample_weight, data):
    """Validate row weights: one finite, non-negative value per row, not all 0.

    Parameters
    ----------
    sample_weight : array-like, dask array or None
    data : InputData

    Returns
    -------
    SampleWeight or None
    """
    if sample_weight is None:
        return None
    n_rows = data.shape[0]
    if isinstance(sample_weight, da.Array):
        if sample_weight.ndim != 1 or sample_weight.shape[0] != n_rows:
            raise ValueError(
                f"sample_weight has shape {sample_weight.shape} but X has {n_rows} "
                f"rows. Give one weight per row, shape ({n_rows},)."
            )
        w = sample_weight.astype(np.float64).rechunk((data.array.chunks[0],))
        values, wnp = w, None
        lo, total, finite = dask.compute(w.min(), w.sum(), da.isfinite(w).all())
    else:
        wnp = np.asarray(sample_weight)
        if wnp.dtype.kind not in "iuf" or wnp.ndim != 1 or wnp.shape[0] != n_rows:
            raise ValueError(
                f"sample_weight has shape {wnp.shape} and dtype {wnp.dtype} but X has "
                f"{n_rows} rows. Give one number per row, shape ({n_rows},)."
            )
        wnp = wnp.astype(np.float64)
        lo, total, finite = wnp.min(), wnp.sum(), np.isfinite(wnp).all()
        values = da.from_array(wnp, chunks=(data.array.chunks[0],))
    if not finite or lo < 0:
        raise ValueError(
            "sample_weight must be finite and non-negative. Got minimum "
            f"{lo}, sum {total}. Fix or drop the offending weights."
        )
    if total <= 0:
        raise ValueError(
            "sample_weight are all zero: no row would count. Give some rows a "
            "positive weight."
        )
    return SampleWeight(values, wnp)


def check_seeds(seeds, n_features):
    """Validate user seeds: a finite 2-D array as wide as the data."""
    seeds = check_array(seeds, dtype=[np.float64, np.float32], input_name="seeds")
    if seeds.shape[1] != n_features:
        raise ValueError(
            f"The 'seeds' parameter has {seeds.shape[1]} columns but X has "
            f"{n_features} features. Give seeds of shape (n_seeds, {n_features})."
        )
    return seeds


def check_params(est):
    """Check the parameters of a MeanShift estimator; raise on the first bad one."""
    cls = type(est).__name__
    b = est.bandwidth
    if b is not None and not (_is_real(b) and 0 < b < math.inf):
        _param_error(cls, "bandwidth", "a float in the range (0, inf) or None", b)
    if est.kernel not in KERNELS:
        _param_error(cls, "kernel", "a str among {'flat', 'gaussian'}", est.kernel)
    for p in ("bin_seeding", "cluster_all"):
        if not isinstance(getattr(est, p), bool | np.bool_):
            _param_error(cls, p, "an instance of 'bool'", getattr(est, p))
    if not (_is_int(est.min_bin_freq) and est.min_bin_freq >= 1):
        _param_error(
            cls, "min_bin_freq", "an int in the range [1, inf)", est.min_bin_freq
        )
    if not (_is_int(est.max_iter) and est.max_iter >= 1):
        _param_error(cls, "max_iter", "an int in the range [1, inf)", est.max_iter)
    if not (_is_real(est.tol) and 0 <= est.tol < math.inf):
        _param_error(cls, "tol", "a float in the range [0, inf)", est.tol)
    if not (_is_real(est.merge_tol) and 0 <= est.merge_tol < math.inf):
        _param_error(cls, "merge_tol", "a float in the range [0, inf)", est.merge_tol)
    if est.truncate is not None and not (_is_real(est.truncate) and est.truncate > 0):
        _param_error(
            cls, "truncate", "a float in the range (0, inf] or None", est.truncate
        )
    if est.bin_data is not None and not (
        _is_real(est.bin_data) and 0 < est.bin_data < math.inf
    ):
        _param_error(
            cls, "bin_data", "a float in the range (0, inf) or None", est.bin_data
        )
    if est.chunk_rows is not None and not (
        _is_int(est.chunk_rows) and est.chunk_rows >= 1
    ):
        _param_error(
            cls, "chunk_rows", "an int in the range [1, inf) or None", est.chunk_rows
        )
    if not (est.persist == "auto" or isinstance(est.persist, bool | np.bool_)):
        _param_error(cls, "persist", "'auto', True or False", est.persist)
    if est.n_jobs is not None and not _is_int(est.n_jobs):
        _param_error(cls, "n_jobs", "an int or None", est.n_jobs)


def _param_error(cls, name, allowed, value):
    raise ValueError(
        f"The '{name}' parameter of {cls} must be {allowed}. Got {value!r} instead."
    )


def _is_real(v):
    return isinstance(v, Real) and not isinstance(v, bool) and not math.isnan(v)


def _is_int(v):
    return isinstance(v, Integral) and not isinstance(v, bool)


def _dtype_message(name, dtype):
    return (
        f"Input {name} has dtype {dtype}; mean shift needs numeric coordinates. "
        f"Convert it first, e.g. {name}.astype(float) if the values are numbers."
    )


def _open_zarr_array(path, name):
    if not os.path.exists(path):
        raise ValueError(
            f"Input {name} path {str(path)!r} does not exist. Check the path."
        )
    try:
        # Absolute, so that workers with another working directory read it too.
        node = zarr.open(os.path.abspath(path), mode="r")
    except Exception as exc:
        raise ValueError(
            f"Input {name} path {str(path)!r} is not a readable zarr array ({exc}). "
            "Give the path of a zarr array."
        ) from exc
    if not isinstance(node, zarr.Array):
        inside = [os.path.join(str(path), k) for k, _ in node.arrays()] or [
            os.path.join(str(path), "ARRAY")
        ]
        raise ValueError(
            f"Input {name} path {str(path)!r} is a zarr group, not an array. Give "
            f"the path of an array inside it: {', '.join(map(repr, inside))}."
        )
    return node


def _from_zarr(z, name):
    """A dask array over a zarr array whose chunks are all present and readable.

    zarr returns the fill value for a missing chunk: a damaged or partly
    written store would silently become zeros. Missing chunks are refused
    here; a chunk that cannot be decoded is named when it is read.
    """
    # Sharded arrays: one task per shard, not per (small) inner chunk.
    chunks = z.shards or z.chunks
    expected, present = z.nchunks, z.nchunks_initialized
    if present < expected:
        grid = [math.ceil(n / c) for n, c in zip(z.shape, chunks, strict=True)]
        first = next(c for c in np.ndindex(*grid) if not _chunk_exists(z, c))
        start = first[0] * chunks[0]
        stop = min(z.shape[0], start + chunks[0])
        raise ValueError(
            f"Input {name} ({z.store_path}) is missing {expected - present} of "
            f"{expected} chunks, the first for rows {start}-{stop - 1}: the store "
            "is damaged or was not fully written. Write it again (if those rows "
            "really are all fill value, write it with "
            "config={'write_empty_chunks': True})."
        )
    return _checked_reads(z, chunks)


class InputChanged(RuntimeError):
    """A chunk of the input changed, vanished or appeared during a run."""


def _checked_reads(z, chunks, check=True):
    """A dask array reading ``z`` block by block, each checked against its start.

    The identity of every chunk's file (its size and modification time, in
    nanoseconds) is recorded now; every later read of a block first checks its
    file against that record, so that a chunk rewritten or deleted while a
    streamed run goes on stops the run instead of being read as other data or
    as fill values. Stores other than local directories are read unchecked.
    """
    grid = [math.ceil(n / c) for n, c in zip(z.shape, chunks, strict=True)]
    root = getattr(z.store, "root", None) if check else None
    token = dask.base.tokenize(z, chunks, check)
    name = f"from-zarr-{token}"
    source = f"zarr-source-{token}"
    dsk = {source: z}
    for coords in np.ndindex(*grid):
        index = tuple(
            slice(i * c, min(n, (i + 1) * c))
            for i, c, n in zip(coords, chunks, z.shape, strict=True)
        )
        file = None if root is None else _chunk_file(z, root, coords)
        dsk[(name, *coords)] = (_read_zarr_block, source, index, file, _identity(file))
    block_chunks = tuple(
        tuple(min(n, (i + 1) * c) - i * c for i in range(g))
        for n, c, g in zip(z.shape, chunks, grid, strict=True)
    )
    return da.Array(dsk, name, block_chunks, meta=np.empty((0,) * z.ndim, z.dtype))


def _chunk_file(z, root, coords):
    key = z.metadata.encode_chunk_key(coords)
    return (
        os.path.join(os.fspath(root), z.path, key)
        if z.path
        else os.path.join(os.fspath(root), key)
    )


def _identity(file):
    if file is None:
        return None
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def _chunk_exists(z, coords):
    key = z.metadata.encode_chunk_key(coords)
    return zarr.core.sync.sync(z.store.exists(f"{z.path}/{key}" if z.path else key))


def _read_zarr_block(z, index, file=None, identity=None):
    """Read one block; name the rows if the store cannot give them or changed."""
    rows = index[0]
    if file is not None and _identity(file) != identity:
        raise InputChanged(
            f"Input chunk for rows {rows.start}-{rows.stop - 1} of {z.store_path} "
            "changed during the run (its file was rewritten, added or deleted). "
            "Leave the input alone while it is clustered, then run again."
        )
    try:
        return np.asarray(z[index])
    except Exception as exc:  # a decoding failure of any codec means the same
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
        raise ValueError(
            f"Input chunk for rows {rows.start}-{rows.stop - 1} of {z.store_path} "
            f"cannot be read ({detail}): the store is damaged. Write it again."
        ) from exc


def _check_lazy(X, name):
    if X.dtype.kind not in "iuf":
        raise ValueError(_dtype_message(name, X.dtype))
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2-D array for {name} (rows are samples), got {X.ndim}-D with "
            f"shape {X.shape}. Reshape it to (n_samples, n_features)."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            f"Input {name} has shape {X.shape}; mean shift needs at least 1 sample "
            "and 1 feature. Check the input path and array name."
        )


def _check_features(estimator, n_features, reset, name):
    if estimator is None:
        return
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"{name} has {n_features} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input. Give data "
            "with the columns of the data it was fitted on."
        )


def _count_non_finite_numpy(X):
    bad = ~np.isfinite(X)
    count = int(bad.sum())
    if not count:
        return 0, None
    row, col = np.argwhere(bad)[0]
    return count, (int(row), int(col))
