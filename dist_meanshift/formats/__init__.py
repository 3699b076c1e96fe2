"""The formats read beside zarr and ``.npy``: one module each, found here.

- ``tables``: Parquet and CSV in, a labels table out;
- ``images``: TIFF, PNG, JPEG, OME-Zarr in, label images and pictures out;
- ``datasets``: xarray datasets (zarr, NetCDF) in, a label variable out;
- ``hdf5``: HDF5 datasets in, an HDF5 labels file out.

A format is one module declaring a :class:`~.base.Format` as its ``SPEC``:
what it opens, its ``[input]`` keys with their docs, how it reads, what it
writes beside the result. :func:`~..inputs.open_input`, the job file's
schema and the outputs beside a result iterate over :data:`FORMATS` and
name none. Each reads with the helpers of :mod:`.._files`, below them all.
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Format, LabelsBeside, Option

#: Every format, tried in this order (by module name) on an input path.
FORMATS = tuple(
    importlib.import_module(f"{__name__}.{m.name}").SPEC
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name)
    if m.name != "base"
)


def format_of(path, options):
    """The format that reads ``path`` with ``options`` (its ``[input]`` keys), or None.

    None: zarr or ``.npy``, the native inputs (see :func:`~..inputs.open_input`).
    """
    return next((f for f in FORMATS if f.can_open(str(path), options)), None)


def input_options():
    """Every ``[input]`` key some format takes, with its :class:`Option`."""
    return {k: o for f in FORMATS for k, o in f.options.items()}


__all__ = ["FORMATS", "Format", "LabelsBeside", "Option", "format_of", "input_options"]
