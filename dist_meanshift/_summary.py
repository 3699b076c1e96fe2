"""What a run reports: the :class:`RunResult`, its summary table, the result's attributes."""

from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass, field, fields

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
    n_unlabelled : int
        Points labelled -1 (farther than the bandwidth from every center,
        with ``cluster_all = false``).
    n_iter : int
    converged : bool
    bandwidth : float
    seconds : float
        Wall time of the run.
    timings : dict
        Seconds per step (``estimate_bandwidth``, ``fit``).
    pictures : list of str
        Pictures written.
    report : str or None
        The Dask performance report, when one was asked for.
    table : str or None
        The labels table (Parquet) of a table input.
    dataset : str or None
        The labels dataset (zarr or NetCDF) of a labelled-array input.
    label_image : str or None
        The labels of an image input as a PNG or TIFF file.
    labels_beside : dict of str to str
        Every labels output beside the result in the input's own format, by
        its ``[output]`` key (``table`` and ``dataset`` among them).
    n_dropped : int
        Rows of a table input dropped for missing values.
    summary : str
        The table the command prints.
    """

    output: str
    sizes: list
    n_unlabelled: int
    n_iter: int
    converged: bool
    bandwidth: float
    seconds: float
    timings: dict = field(default_factory=dict)
    pictures: list = field(default_factory=list)
    report: str | None = None
    table: str | None = None
    dataset: str | None = None
    label_image: str | None = None
    labels_beside: dict = field(default_factory=dict)
    n_dropped: int = 0
    summary: str = ""

    @property
    def n_clusters(self):
        return len(self.sizes)

    def to_dict(self):
        """The result as JSON-serialisable values (what ``--json`` prints).

        Each path names what a script opens directly: ``table`` the labels
        table's Parquet dataset (``pandas.read_parquet(d["table"])``),
        ``centers_table`` the centers' Parquet file, ``label_image`` the
        image file, ``dataset`` the labels dataset; ``table_folder`` is the
        folder holding both tables.
        """
        out = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name != "summary"
        }
        folder = out.pop("table")
        out["table"] = os.path.join(folder, "labels") if folder else None
        out["centers_table"] = (
            os.path.join(folder, "centers.parquet") if folder else None
        )
        out["table_folder"] = folder
        return {**out, "n_clusters": self.n_clusters}


def make_result(model, sizes, n_unlabelled, seconds, path, made=None):
    """The :class:`RunResult` of a fitted model and its summary table.

    ``made`` maps what else was written (``pictures``, ``report``,
    ``timings``, ``label_image``, and ``beside``: the labels beside the
    result by their ``[output]`` key, each as (how the summary calls it, path)).
    """
    made = made or {}
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
    lines += size_table(sizes, n_unlabelled)
    lines.append(f"result: {os.path.abspath(path)}")
    pictures = [os.path.abspath(p) for p in made.get("pictures", [])]
    lines += [f"picture: {p}" for p in pictures]
    # Files beside the result, each on a line of its own.
    titled = {
        **made.get("beside", {}),
        "label_image": ("label image", made.get("label_image")),
        "report": ("report", made.get("report")),
    }
    paths = {key: os.path.abspath(p) for key, (_, p) in titled.items() if p}
    lines += [f"{titled[key][0]}: {p}" for key, p in paths.items()]
    n_dropped = int(made.get("n_dropped", 0))
    if n_dropped:
        lines.insert(1, f"dropped {n_dropped} rows with missing values")
    return RunResult(
        output=os.path.abspath(path),
        sizes=[int(n) for n in sizes],
        n_unlabelled=int(n_unlabelled),
        n_iter=int(model.n_iter_),
        converged=bool(model.converged_),
        bandwidth=float(model.bandwidth_),
        seconds=seconds,
        timings=dict(made.get("timings", {})),
        pictures=pictures,
        table=paths.get("table"),
        dataset=paths.get("dataset"),
        label_image=paths.get("label_image"),
        report=paths.get("report"),
        labels_beside={k: p for k, p in paths.items() if k in made.get("beside", {})},
        n_dropped=n_dropped,
        summary="\n".join(lines),
    )


def size_table(sizes, n_unlabelled):
    """Lines of cluster sizes and shares of all points; unlabelled points apart."""
    total = max(1, int(sum(sizes)) + int(n_unlabelled))
    lines = [f"{'cluster':>10} {'size':>10} {'share':>7}"]
    lines += [f"{i:>10} {n:>10} {n / total:>7.1%}" for i, n in enumerate(sizes)]
    if n_unlabelled:
        lines.append(
            f"{'unlabelled':>10} {n_unlabelled:>10} {n_unlabelled / total:>7.1%}"
        )
    return lines


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
    timings = attrs.get("timings", {})
    sizes = group["cluster_sizes"][:]
    made = {"timings": timings}
    n_unlabelled = attrs.get("n_unlabelled", 0)
    result = make_result(model, sizes, n_unlabelled, sum(timings.values()), path, made)
    result.summary = f"already complete, nothing to resume\n{result.summary}"
    return result


def result_attrs(inp, data, model, timings):
    """The attributes of a run's result group: the model's, the input and timings."""
    return {
        "input": {
            "path": os.path.abspath(inp["path"]),
            "array": inp.get("array"),
            "shape": list(data.shape),
        },
        **model_attrs(model),
        "timings": timings,
    }


def model_attrs(model):
    """A fitted model's parameters and figures, and the versions that made it."""
    from importlib.metadata import version

    import dask
    import numpy
    import sklearn
    import zarr

    return {
        "params": {k: v for k, v in model.get_params().items() if k != "seeds"},
        "bandwidth": model.bandwidth_,
        "n_iter": model.n_iter_,
        "converged": bool(model.converged_),
        "n_unconverged": int(model.n_unconverged_),
        "trace": model.trace_,
        # A table's feature columns: predict picks them from a table again.
        "feature_names_in": (
            [str(c) for c in model.feature_names_in_]
            if hasattr(model, "feature_names_in_")
            else None
        ),
        "versions": {
            "dist_meanshift": __version__,
            "dask": dask.__version__,
            # Read from its metadata: a fit without a cluster never imports it.
            "distributed": version("distributed"),
            "zarr": zarr.__version__,
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
            "python": sys.version.split()[0],
        },
    }
