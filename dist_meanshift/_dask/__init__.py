"""Dask orchestration: the only package that builds task graphs.

- ``data``: the input as a row-chunked dask array (numpy sent once, zarr read
  chunk by chunk and checked), persisted when it fits, checked for NaN as read;
- ``work``: the map-reduces of a fit (shift sums, bins, binned data, labels).

With an active ``distributed.Client`` the work goes to its cluster; with none it
runs on dask's in-process thread pool, without starting any cluster.
"""

from __future__ import annotations

from .data import (
    as_dask,
    auto_chunk_rows,
    checked_finite,
    compute,
    count_non_finite,
    current_client,
    from_zarr,
    output,
    prepare,
    to_dask_array,
    watch_tasks,
)
from .work import Rows, bin_data, bin_seeds, label, sample_rows

__all__ = [
    "Rows",
    "as_dask",
    "auto_chunk_rows",
    "bin_data",
    "bin_seeds",
    "checked_finite",
    "compute",
    "count_non_finite",
    "current_client",
    "from_zarr",
    "label",
    "output",
    "prepare",
    "sample_rows",
    "to_dask_array",
    "watch_tasks",
]
