"""dist-meanshift: mean shift clustering at any scale, on Dask.

The estimator and functions follow scikit-learn's names and meanings; every fit
runs as Dask work on the active ``distributed.Client`` or on local threads.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from ._driver import IterationState
from .estimator import (
    BANDWIDTH_SAMPLE_SIZE,
    MeanShift,
    estimate_bandwidth,
    get_bin_seeds,
    mean_shift,
)

try:
    __version__ = version("dist-meanshift")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BANDWIDTH_SAMPLE_SIZE",
    "IterationState",
    "MeanShift",
    "__version__",
    "estimate_bandwidth",
    "get_bin_seeds",
    "mean_shift",
]
