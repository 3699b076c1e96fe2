"""dist-meanshift: mean shift clustering at any scale, on Dask.

The estimator and functions follow scikit-learn's names and meanings; every fit
runs as Dask work on the active ``distributed.Client`` or on local threads.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

# Public names and the modules defining them, imported on first use: the
# command answers ``--help`` and bad input without loading dask and
# scikit-learn (their imports dominate its start).
_LAZY = {
    "BANDWIDTH_SAMPLE_SIZE": "_seeds",
    "Checkpoint": "_checkpoint",
    "InputError": "errors",
    "IterationState": "_loop",
    "Job": "jobs",
    "MeanShift": "estimator",
    "RunError": "errors",
    "RunResult": "_summary",
    "estimate_bandwidth": "_seeds",
    "get_bin_seeds": "_seeds",
    "load": "estimator",
    "mean_shift": "estimator",
    "run_job": "runner",
}

try:
    __version__ = version("dist-meanshift")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "BANDWIDTH_SAMPLE_SIZE",
    "Checkpoint",
    "InputError",
    "IterationState",
    "Job",
    "MeanShift",
    "RunError",
    "RunResult",
    "__version__",
    "estimate_bandwidth",
    "get_bin_seeds",
    "load",
    "mean_shift",
    "run_job",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
