"""Validation at the edge: the input array, row weights, seeds, and the one finite check.

Every error names the input, the value found and the remedy. Parameters are
checked against their table in ``_params``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import zarr

from . import inputs
from .errors import InputError


@dataclass
class InputData:
    """A validated 2-D numeric dataset.

    Attributes
    ----------
    source : ndarray, dask.array.Array or zarr.Array
        The data as given (numpy: as a float array).
    kind : {"numpy", "dask", "zarr"}
    array : dask.array.Array or None
        The data as a float dask array chunked by rows only, once
        :func:`~._dask.as_dask` has made it.
    persisted : bool
        Whether ``array`` was persisted (see :func:`~._dask.prepare`).
    resident : bool
        Whether ``array``'s chunks are in memory (in this process or the
        cluster's) rather than read from their source at every pass.
    """

    source: object
    kind: str
    array: da.Array | None = None
    persisted: bool = False

    @property
    def resident(self):
        return self.kind == "numpy" or self.persisted

    @property
    def numpy(self):
        """The in-memory array when the input was in memory, else None."""
        return self.source if self.kind == "numpy" else None

    @property
    def shape(self):
        return self.source.shape


def check_input(X, *, name="X", estimator=None, reset=True):
    """Validate numpy, dask or zarr input (or a path to one) as :class:`InputData`.

    Parameters
    ----------
    X : array-like, dask.array.Array, zarr.Array or str or os.PathLike
        A path is opened by :func:`~.inputs.open_input`, read-only.
    name : str, default="X"
        How the input is called in error messages.
    estimator : estimator instance, default=None
        When given, ``n_features_in_`` is set (``reset=True``) or checked.
    reset : bool, default=True

    Returns
    -------
    InputData
    """
    if isinstance(X, str | os.PathLike):
        X = inputs.open_input(X)
    names = None
    if _is_dask_frame(X):  # a dask DataFrame: its numeric columns
        from .formats.tables import TableInput, feature_columns, features

        columns = feature_columns(X, list(X.columns), name)
        X = TableInput(name, features(X, columns), columns, source=X)
    if hasattr(X, "to_dask"):  # a table or an image, read lazily
        if hasattr(X, "columns"):
            names = np.asarray([str(c) for c in X.columns], dtype=object)
        X = X.to_dask()
    if isinstance(X, zarr.Array | da.Array):
        kind = "zarr" if isinstance(X, zarr.Array) else "dask"
        _check_lazy(X, name)
        if kind == "zarr":
            inputs.require_every_chunk(X, name)
        _check_features(estimator, X.shape[1], reset, name, names)
        return InputData(X, kind)
    if getattr(X, "dtype", None) is not None and np.dtype(X.dtype).kind == "b":
        raise InputError(_dtype_message(name, X.dtype))
    kwargs = {"dtype": [np.float64, np.float32], "ensure_all_finite": False}
    try:
        if estimator is not None:
            from sklearn.utils.validation import validate_data

            Xn = validate_data(estimator, X, reset=reset, **kwargs)
        else:
            from sklearn.utils import check_array

            Xn = check_array(X, input_name=name, **kwargs)
    except ValueError as exc:
        if "could not convert" in str(exc) or "dtype" in str(exc).lower():
            raise InputError(
                _dtype_message(name, getattr(X, "dtype", "object"))
            ) from exc
        raise InputError(str(exc)) from exc
    check_finite(*non_finite(Xn), name=name)
    return InputData(Xn, "numpy")


class NonFiniteValues(InputError):
    """A block of data holds NaN or infinity (see :func:`require_finite`)."""


def non_finite(X):
    """Number of NaN or infinite values of ``X`` and the (row, column) of the first.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    count : int
    first : tuple of int or None
    """
    if X.dtype.kind != "f":
        return 0, None
    bad = ~np.isfinite(X)
    count = int(np.count_nonzero(bad))
    if not count:
        return 0, None
    row, col = np.argwhere(bad)[0]
    return count, (int(row), int(col))


def require_finite(X, first_row=0):
    """``X`` itself, once checked to hold no NaN or infinity (run in tasks).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    first_row : int, default=0
        Row number of ``X[0]`` in the whole dataset, for the message.

    Returns
    -------
    X : ndarray

    Raises
    ------
    NonFiniteValues
        Naming the block's count and where its first is; the caller counts
        the whole dataset with :func:`check_finite`.
    """
    if X.dtype.kind != "f" or np.isfinite(X).all():
        return X
    count, (row, col) = non_finite(X)
    rows = f" in rows {first_row}-{first_row + len(X) - 1}"
    raise NonFiniteValues(_finite_message("X", count, (first_row + row, col), rows))


def check_finite(count, first, *, name="X"):
    """Refuse data with NaN or infinity, saying how many and where.

    Parameters
    ----------
    count : int
        Number of non-finite values (from :func:`non_finite`, or
        :func:`~._dask.count_non_finite` for lazy data).
    first : tuple of int or None
        (row, column) of the first one.
    name : str, default="X"
    """
    if count:
        raise InputError(_finite_message(name, count, first))


def _finite_message(name, count, first, rows=""):
    return (
        f"Input {name} contains {count} NaN or infinite value(s){rows}, the first at "
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
            raise InputError(
                f"sample_weight has shape {sample_weight.shape} but X has {n_rows} "
                f"rows. Give one weight per row, shape ({n_rows},)."
            )
        w = sample_weight.astype(np.float64).rechunk((data.array.chunks[0],))
        values, wnp = w, None
        lo, total, finite = dask.compute(w.min(), w.sum(), da.isfinite(w).all())
    else:
        wnp = np.asarray(sample_weight)
        if wnp.dtype.kind not in "iuf" or wnp.ndim != 1 or wnp.shape[0] != n_rows:
            raise InputError(
                f"sample_weight has shape {wnp.shape} and dtype {wnp.dtype} but X has "
                f"{n_rows} rows. Give one number per row, shape ({n_rows},)."
            )
        wnp = wnp.astype(np.float64)
        lo, total, finite = wnp.min(), wnp.sum(), np.isfinite(wnp).all()
        values = da.from_array(wnp, chunks=(data.array.chunks[0],))
    if not finite or lo < 0:
        raise InputError(
            "sample_weight must be finite and non-negative. Got minimum "
            f"{lo}, sum {total}. Fix or drop the offending weights."
        )
    if total <= 0:
        raise InputError(
            "sample_weight are all zero: no row would count. Give some rows a "
            "positive weight."
        )
    return SampleWeight(values, wnp)


def check_seeds(seeds, n_features):
    """Validate user seeds: a finite 2-D array as wide as the data."""
    try:
        from sklearn.utils import check_array

        seeds = check_array(seeds, dtype=[np.float64, np.float32], input_name="seeds")
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    if seeds.shape[1] != n_features:
        raise InputError(
            f"The 'seeds' parameter has {seeds.shape[1]} columns but X has "
            f"{n_features} features. Give seeds of shape (n_seeds, {n_features})."
        )
    return seeds


def _dtype_message(name, dtype):
    return (
        f"Input {name} has dtype {dtype}; mean shift needs numeric coordinates. "
        f"Convert it first, e.g. {name}.astype(float) if the values are numbers."
    )


def _check_lazy(X, name):
    if X.dtype.kind not in "iuf":
        raise InputError(_dtype_message(name, X.dtype))
    if X.ndim != 2:
        raise InputError(
            f"Expected a 2-D array for {name} (rows are samples), got {X.ndim}-D with "
            f"shape {X.shape}. Reshape it to (n_samples, n_features)."
        )
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise InputError(
            f"Input {name} has shape {X.shape}; mean shift needs at least 1 sample "
            "and 1 feature. Check the input path and array name."
        )


def _is_dask_frame(X):
    module = type(X).__module__
    return module.startswith("dask") and hasattr(X, "to_dask_array")


def _check_features(estimator, n_features, reset, name, names=None):
    if estimator is None:
        return
    if reset:
        estimator.n_features_in_ = n_features
        if names is not None:
            estimator.feature_names_in_ = names
        elif hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise InputError(
            f"{name} has {n_features} features, but {type(estimator).__name__} is "
            f"expecting {estimator.n_features_in_} features as input. Give data "
            "with the columns of the data it was fitted on."
        )
