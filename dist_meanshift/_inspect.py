"""What ``dist-meanshift inspect`` prints: a dataset, a result, a stopped run, a table."""

from __future__ import annotations

import json
import os

import zarr

from ._outputs import FORMAT, MARKER
from .errors import one_line


def describe(path):
    """Lines describing a dataset or a result, for ``dist-meanshift inspect``."""
    from ._summary import size_table

    name = os.fspath(path)
    if os.path.isfile(os.path.join(name, MARKER)):
        return _describe_table(name)
    labels = _describe_labels(name)
    if labels:
        return labels
    try:
        node = zarr.open(name, mode="r")
    except Exception:  # noqa: BLE001 - not zarr: a table, an image or a dataset
        return [_describe_input(name)]
    if isinstance(node, zarr.Array):
        return [_describe_array(os.fspath(path), node)]
    attrs = dict(node.attrs)
    lines = []
    if attrs.get("format") == FORMAT:
        try:
            headline = _describe_result(node, attrs)
            if "cluster_sizes" in node:
                sizes = node["cluster_sizes"][:].tolist()
                headline += size_table(sizes, attrs.get("n_unlabelled", 0))
        # A damaged result is described as damaged, whatever broke in it.
        except Exception as exc:  # noqa: BLE001
            detail = one_line(exc, None)
            headline = [f"result: DAMAGED ({_short(detail, 120)}): fit again"]
        lines += headline
    try:
        lines += [_describe_array(name, arr) for name, arr in sorted(node.arrays())]
    except Exception as exc:  # noqa: BLE001 - an array's metadata is damaged
        lines.append(f"arrays: DAMAGED ({_short(one_line(exc, None), 120)})")
    for key in sorted(attrs):
        if key not in ("trace", "input", "fingerprint"):
            lines.append(f"attr {key}: {_short(json.dumps(attrs[key]))}")
    return lines


def _describe_labels(name):
    """A labels dataset written beside a result (zarr or NetCDF), or None."""
    from ._outputs import output_status
    from .formats.datasets import SPEC

    complete = output_status(name, (SPEC.labels.marker,), SPEC.labels.read_attrs)
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


def _describe_table(name):
    """A labels table: its input, partitions and clusters."""
    with open(os.path.join(name, MARKER)) as f:
        meta = json.load(f)
    parts = sorted(os.listdir(os.path.join(name, "labels")))
    state = "complete" if meta.get("complete") else "INCOMPLETE"
    lines = [f"labels table: {state}, {len(parts)} partitions, of {meta.get('input')}"]
    centers = os.path.join(name, "centers.parquet")
    if os.path.exists(centers):
        import pandas as pd

        sizes = pd.read_parquet(centers)["size"].tolist()
        lines += [f"  cluster {i}: {n} points" for i, n in enumerate(sizes)]
    return lines


def _describe_input(name):
    """An input that is not zarr, as the run would open it (or why it cannot)."""
    from .inputs import open_input

    data = open_input(name)
    rows = (
        "rows counted when read" if data.shape[0] is None else f"{data.shape[0]} rows"
    )
    kind = type(data).__name__.replace("Input", "").lower()
    return f"{name}: {kind}, {rows}, {data.shape[1]} features, dtype {data.dtype}"


def _describe_result(node, attrs):
    """The headline of a result: complete (a fit's or a prediction's) or stopped."""
    if attrs.get("complete") is not True:
        recorded = dict(node["state"].attrs) if "state" in node else {}
        done = recorded.get("next_iteration")
        last = f" after iteration {done - 1}" if done else " before any iteration"
        return [
            (
                f"stopped run (INCOMPLETE, no result), stopped{last}: run its "
                "command again with --resume to continue, or with --overwrite to "
                "start afresh"
            )
        ]
    k = node["cluster_centers"].shape[0]
    if "model" in attrs:  # written by predict
        lines = [f"labels: complete, {k} clusters of the model {attrs['model']}"]
    else:
        lines = [
            f"result: complete, {k} clusters, bandwidth {attrs['bandwidth']:.4g}, "
            f"{attrs['n_iter']} iterations"
            + ("" if attrs.get("converged", True) else ", stopped at max_iter")
        ]
    if "input" in attrs:
        lines.append(f"input: {attrs['input']['path']} {attrs['input']['shape']}")
    return lines


def _short(text, width=160):
    """``text`` cut at a word boundary to about ``width`` characters."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width)
    return text[: cut if cut > width // 2 else width] + " ..."


def _describe_array(name, arr):
    return (
        f"{name}: shape {arr.shape}, dtype {arr.dtype}, chunks {arr.chunks}, "
        f"{arr.nbytes / 1e6:.1f} MB"
    )
