"""The mathematics of mean shift as pure numpy functions over one block.

Every function works on in-memory numpy arrays only: one block of centers
against one block of data rows. The Dask layer (``_dask.py``) maps them over
chunks and reduces their results. Nothing in this package imports dask.

- ``sums``: the partial mean shift sums of a block (the map step), routed
  through a grid of the kernel's reach when that pays;
- ``kernels``: one module per kernel, declaring all that differs by kernel
  (the flat kernel's cell index and its compiled loop among it);
- ``dense``: weights and sums of every center against every row;
- ``grid``: cell keys, sorted runs, the rows around a group of centers, the
  two-level cell index with its aggregates;
- ``binning``: grid cells of the data (bin seeds, binned data);
- ``labels``: the nearest center of every row;
- ``merge``: merging close centers, scikit-learn's ordering and suppression.
"""

from __future__ import annotations

from .binning import bin_counts, cell_sums, combine_bin_counts, combine_cell_sums
from .dense import add_partials, local_moments
from .kernels import KERNELS
from .labels import assign_labels, nearest_center
from .merge import merge_close_centers, order_by_intensity, suppress_near_duplicates
from .sums import GRID_MAX_FEATURES, shift_partial_sums

__all__ = [
    "GRID_MAX_FEATURES",
    "KERNELS",
    "add_partials",
    "assign_labels",
    "bin_counts",
    "cell_sums",
    "combine_bin_counts",
    "combine_cell_sums",
    "local_moments",
    "merge_close_centers",
    "nearest_center",
    "order_by_intensity",
    "shift_partial_sums",
    "suppress_near_duplicates",
]
