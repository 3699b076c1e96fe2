"""What a run reports: the :class:`RunResult`, its summary table, the result's attributes."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field

from . import __version__


@dataclass
class RunResult:
    """What a run made.

    Attributes
    ----------
    output : str
        Absolute path of the result group.
    sizes : list of int
        Points per cluster, in the order of the clusters.
    n_iter : int
    converged : bool
    bandwidth : float
    seconds : float
    pictures : list of str
        Pictures written.
    summary : str
        The table the command prints.
    """

    output: str
    sizes: list
    n_iter: int
    converged: bool
    bandwidth: float
    seconds: float
    pictures: list = field(default_factory=list)
    summary: str = ""

    @property
    def n_clusters(self):
        return len(self.sizes)


def make_result(model, sizes, seconds, path, pictures):
    headline = (
        f"{len(sizes)} clusters, {model.n_iter_} iterations, {seconds:.1f} s, "
        f"bandwidth {model.bandwidth_:.4g}"
    )
    lines = [headline]
    if not model.converged_:
        n_centers = model.trace_[-1]["n_centers"] if model.trace_ else "?"
        lines.append(
            f"stopped at max_iter={model.max_iter} with {model.n_unconverged_} of "
            f"{n_centers} centers still moving; raise max_iter"
        )
    lines.append(f"{'cluster':>7} {'size':>10} {'share':>7}")
    total = max(1, int(sum(sizes)))
    lines += [f"{i:>7} {n:>10} {n / total:>7.1%}" for i, n in enumerate(sizes)]
    lines.append(f"result: {os.path.abspath(path)}")
    lines += [f"picture: {os.path.abspath(p)}" for p in pictures]
    return RunResult(
        output=os.path.abspath(path),
        sizes=[int(n) for n in sizes],
        n_iter=int(model.n_iter_),
        converged=bool(model.converged_),
        bandwidth=float(model.bandwidth_),
        seconds=seconds,
        pictures=[os.path.abspath(p) for p in pictures],
        summary="\n".join(lines),
    )


def stored_result(group, path):
    """The result of a run already complete on disk."""
    attrs = group.attrs
    model = types.SimpleNamespace(
        n_iter_=attrs["n_iter"],
        bandwidth_=attrs["bandwidth"],
        max_iter=attrs["params"]["max_iter"],
        converged_=attrs.get("converged", True),
        n_unconverged_=attrs.get("n_unconverged", 0),
        trace_=attrs.get("trace", []),
    )
    seconds = sum(attrs.get("timings", {}).values())
    result = make_result(model, group["cluster_sizes"][:], seconds, path, [])
    result.summary = f"already complete, nothing to resume\n{result.summary}"
    return result


def result_attrs(inp, data, model, timings):
    import dask
    import distributed
    import numpy
    import sklearn
    import zarr

    return {
        "input": {
            "path": os.path.abspath(inp["path"]),
            "array": inp.get("array"),
            "shape": list(data.shape),
        },
        "params": {k: v for k, v in model.get_params().items() if k != "seeds"},
        "bandwidth": model.bandwidth_,
        "n_iter": model.n_iter_,
        "converged": bool(model.converged_),
        "n_unconverged": int(model.n_unconverged_),
        "trace": model.trace_,
        "timings": timings,
        "versions": {
            "dist_meanshift": __version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "zarr": zarr.__version__,
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
            "python": sys.version.split()[0],
        },
    }
