"""Labelled arrays: xarray datasets (zarr or NetCDF) in, a label variable out.

A dataset input names its sample dimension(s) (``dims``, e.g. ``["lat",
"lon"]``) and its feature variables (``variables``): every point of the
sample dimensions is a row, every variable a feature. The labels go back as
a dataset holding the variable ``label`` on the same dimensions and
coordinates, written aside and put in place complete.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np

from .._files import reading, require_file, require_path
from .._outputs import written
from ..errors import InputError, listed
from .base import Format, LabelsBeside, Option

#: Suffixes read as NetCDF datasets.
NETCDF = (".nc", ".nc4", ".netcdf", ".cdf")
#: The format of a labels dataset this package wrote (in its attributes).
FORMAT = "dist-meanshift-labels/1"


def is_dataset(path, variables=None):
    """Whether ``path`` is read as a labelled dataset: NetCDF, or variables named."""
    return variables is not None or os.fspath(path).lower().endswith(NETCDF)


@dataclass
class DatasetInput:
    """An xarray dataset opened for clustering, read lazily.

    Attributes
    ----------
    path : str
    dataset : xarray.Dataset
    variables : list of str
        The features.
    dims : list of str
        The sample dimensions, in row order (the last varies fastest).
    """

    path: str
    dataset: object
    variables: list
    dims: list
    _array: object = field(default=None, repr=False)

    @property
    def sample_shape(self):
        return tuple(self.dataset.sizes[d] for d in self.dims)

    @property
    def shape(self):
        return int(np.prod(self.sample_shape)), len(self.variables)

    @property
    def dtype(self):
        return np.result_type(*(self.dataset[v].dtype for v in self.variables))

    @property
    def columns(self):
        return self.variables

    chunks = None

    def to_dask(self):
        """The variables as the columns of a dask array, one row per sample point."""
        if self._array is not None:
            return self._array
        import dask.array as da

        columns = []
        for name in self.variables:
            data = self.dataset[name].transpose(*self.dims).data
            data = data if isinstance(data, da.Array) else da.from_array(data)
            columns.append(data.reshape(-1).astype(np.float64))
        self._array = da.stack(columns, axis=1).rechunk({1: -1})
        return self._array


def open_dataset(path, *, variables=None, dims=None):
    """Open an xarray dataset (zarr store or NetCDF file) lazily, checking its names.

    Parameters
    ----------
    path : str or os.PathLike
    variables : list of str, default=None
        The feature variables; by default every data variable over ``dims``.
    dims : list of str, default=None
        The sample dimensions; by default those of the first variable.

    Returns
    -------
    DatasetInput
    """
    import xarray as xr

    name = os.fspath(path)
    require_path(name)
    if name.lower().endswith(NETCDF):
        require_file(name)
    remedy = "Give a zarr store or NetCDF file written by xarray."
    with reading(name, "an xarray dataset", remedy):
        if name.lower().endswith(NETCDF):
            dataset = xr.open_dataset(name, chunks={})
        else:
            dataset = xr.open_zarr(name, consolidated=False)
    names = list(dataset.data_vars)
    variables = list(variables) if variables is not None else None
    unknown = [v for v in variables or [] if v not in names]
    if unknown or not names:
        raise InputError(
            f"Input {name!r} has no variable(s) {listed(unknown)}; it has "
            f"{listed(names)}. Check "
            "variables = [...] in [input]."
        )
    first = (variables or names)[0]
    dims = list(dims) if dims is not None else list(dataset[first].dims)
    absent = [d for d in dims if d not in dataset.dims]
    if absent or len(set(dims)) != len(dims):
        raise InputError(
            f"Input {name!r} has no dimension(s) {listed(absent or dims)} (or names "
            f"one twice); it has {listed(dataset.dims)}. Check dims = [...] in "
            "[input]."
        )
    if variables is None:
        variables = [v for v in names if set(dataset[v].dims) == set(dims)]
    wrong = [v for v in variables if set(dataset[v].dims) != set(dims)]
    if wrong:
        raise InputError(
            f"Variable(s) {wrong} of {name!r} are not over the sample dimensions "
            f"{dims} ({', '.join(f'{v}: {list(dataset[v].dims)}' for v in wrong)}). "
            "Give dims = [...] and variables over exactly those dimensions."
        )
    words = [v for v in variables if dataset[v].dtype.kind not in "iuf"]
    if words:
        raise InputError(
            f"Variable(s) {words} of {name!r} are not numeric; mean shift needs "
            "numeric features. Leave them out of variables = [...]."
        )
    return DatasetInput(name, dataset, variables, dims)


def write_label_variable(path, data, labels):
    """Write ``label`` on the input's sample dimensions and coordinates, atomically.

    A path ending in a NetCDF suffix is written as NetCDF, any other as zarr.
    ``labels`` are the result's stored labels, read back chunk by chunk.

    Parameters
    ----------
    path : str or os.PathLike
    data : DatasetInput
    labels : dask.array.Array of shape (n_samples,)
    """
    import dask.array as da
    import xarray as xr

    netcdf = os.fspath(path).lower().endswith(NETCDF)
    coords = {d: data.dataset[d] for d in data.dims if d in data.dataset.coords}
    image = da.asarray(labels).reshape(data.sample_shape)
    result = xr.Dataset(
        {"label": (data.dims, image)},
        coords=coords,
        # Attributes NetCDF 3 can hold: strings and numbers (complete is 1).
        attrs={
            "format": FORMAT,
            "complete": 1 if netcdf else True,
            "source": data.path,
            "features": ", ".join(data.variables),
        },
    )
    with written(path) as tmp:
        if netcdf:
            # NetCDF is written from this process (its writers take no distributed
            # tasks): the labels, one small integer per point, are gathered first.
            result.compute().to_netcdf(tmp)
        else:
            # Consolidated, so that xarray opens it without a warning (zarr
            # warns that zarr v3 has consolidated metadata only as an extension).
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Consolidated metadata", UserWarning)
                result.to_zarr(tmp, mode="w", consolidated=True)


def _read_netcdf_attrs(path):
    """The attributes of a NetCDF labels dataset (``complete`` read as a bool)."""
    import xarray as xr

    with xr.open_dataset(os.fspath(path)) as ds:
        attrs = dict(ds.attrs)
    attrs["complete"] = bool(attrs.get("complete") == 1)
    return attrs


def _describe_labels(name):
    """A labels dataset written beside a result (zarr or NetCDF), or None."""
    from .._outputs import output_status

    complete = output_status(name, (FORMAT,), _read_netcdf_attrs)
    if complete is None:
        return None
    import xarray as xr

    opened = (
        xr.open_dataset(name)
        if os.path.isfile(name)
        else xr.open_zarr(name, consolidated=False)
    )
    with opened as ds:
        shape = " x ".join(f"{d} {n}" for d, n in ds["label"].sizes.items())
        state = "complete" if complete else "INCOMPLETE"
        source, features = ds.attrs.get("source"), ds.attrs.get("features")
    return [f"labels dataset: {state}, label over {shape}, of {source} ({features})"]


SPEC = Format(
    name="datasets",
    what="labelled datasets",
    kind="dataset",
    reads="an xarray dataset (zarr or NetCDF; name its variables)",
    can_open=lambda path, options: is_dataset(path, options.get("variables")),
    open=lambda path, variables=None, dims=None: open_dataset(
        path, variables=variables, dims=dims
    ),
    options={
        "variables": Option(
            (list,), "A labelled dataset's feature variables (read with xarray)."
        ),
        "dims": Option(
            (list,),
            "A labelled dataset's sample dimensions (default: the first variable's).",
        ),
    },
    extra="labelled",
    modules=("xarray",),
    labels=LabelsBeside(
        key="dataset",
        doc="For labelled datasets: where the label variable goes (default: "
        "beside the result, zarr or NetCDF as the input).",
        title="labels dataset",
        suffix=lambda input_path: (
            ".labels.nc" if input_path.lower().endswith(NETCDF) else ".labels.zarr"
        ),
        marker=FORMAT,
        write=lambda path, data, labels, model, sizes, outputs: write_label_variable(
            path, data, labels
        ),
        read_attrs=_read_netcdf_attrs,
        describe=_describe_labels,
    ),
)
