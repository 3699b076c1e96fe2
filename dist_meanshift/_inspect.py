"""What ``dist-meanshift inspect`` prints: a dataset, a result, a stopped run, a table."""

from __future__ import annotations

import json
import os

import zarr

from ._outputs import FORMAT
from .errors import one_line


def describe(path):
    """Lines describing a dataset or a result, for ``dist-meanshift inspect``."""
    from ._summary import size_table
    from .formats import FORMATS

    name = os.fspath(path)
    # Labels a format wrote beside a result, as that format describes them.
    for spec in FORMATS:
        lines = spec.labels and spec.labels.describe and spec.labels.describe(name)
        if lines:
            return lines
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


def _describe_input(name):
    """An input that is not zarr, as the run would open it (or why it cannot)."""
    from .formats import format_of
    from .inputs import open_input

    data = open_input(name)
    rows = (
        "rows counted when read" if data.shape[0] is None else f"{data.shape[0]} rows"
    )
    spec = format_of(name, {})
    kind = spec.kind if spec else type(data).__name__.lower()
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
