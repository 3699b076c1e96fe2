"""The state of a fit after an iteration, and its record in a result's zarr group.

A run that records a :class:`Checkpoint` after every iteration can be stopped
at any moment (a signal, a lost scheduler, a killed process) and resumed
from the last iteration it finished.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np

from ._centers import Centers
from ._outputs import EVERY_CHUNK

# Arrays a record must hold; later ones (see Centers) start afresh if missing.
_REQUIRED = ("pos", "mult", "active", "intensity")


@dataclass
class Checkpoint:
    """Everything needed to resume a fit after an iteration.

    Attributes
    ----------
    centers : Centers
        The distinct centers and their history.
    next_iteration : int
        The iteration to run next.
    trace : list of dict
        The figures of the iterations done.
    bandwidth : float
        The bandwidth of the fit (estimated ones are not estimated again).
    fingerprint : dict or None
        What identifies the input and the parameters (see ``runner``): a
        resume with others is refused.
    stage : {"rows", "cells"}
        What the centers climb on: every row, or the data reduced to grid
        cells (the first stage of ``climb="cells"``).
    """

    centers: Centers
    next_iteration: int
    trace: list
    bandwidth: float
    fingerprint: dict | None = None
    stage: str = "rows"

    def save(self, group):
        """Record the checkpoint in a result group, atomically.

        The arrays go to a new subgroup ``state/<next_iteration>``; then the
        ``state`` group's attributes (one file, replaced atomically) are pointed
        at it; then the previous subgroup is deleted. A kill at any moment
        leaves a readable state: the previous one or the new one.

        Parameters
        ----------
        group : zarr.Group
        """
        state = group.require_group("state")
        name = str(self.next_iteration)
        # One array of every field's columns (float64: bools and counts are
        # exact in it), so that a record costs one array per iteration.
        columns = [
            np.asarray(getattr(self.centers, f.name), dtype=np.float64).reshape(
                len(self.centers), -1
            )
            for f in fields(self.centers)
        ]
        state.create_array(
            name, data=np.hstack(columns), overwrite=True, config=EVERY_CHUNK
        )
        layout = [
            [f.name, c.shape[1], getattr(self.centers, f.name).ndim, str(value.dtype)]
            for f, c in zip(fields(self.centers), columns, strict=True)
            for value in [getattr(self.centers, f.name)]
        ]
        previous = state.attrs.get("current")
        meta = {
            "layout": layout,
            "fingerprint": self.fingerprint,
            "bandwidth": self.bandwidth,
            "current": name,
            "next_iteration": self.next_iteration,
            "trace": self.trace,
            "stage": self.stage,
        }
        state.attrs.put(json.loads(json.dumps(meta, default=list)))
        if previous is not None and previous != name and previous in state:
            del state[previous]

    @classmethod
    def load(cls, group):
        """The checkpoint recorded in ``group``, or None (never unpickles).

        Raises
        ------
        ValueError
            When the record lacks an array it needs.
        """
        if "state" not in group:
            return None
        state = group["state"]
        meta = dict(state.attrs)
        if "current" not in meta:
            return None
        sub = state[meta["current"]]
        arrays = _unpacked(sub, meta.get("layout"))
        missing = [k for k in _REQUIRED if k not in arrays]
        if missing:
            raise ValueError(f"the recorded state lacks {', '.join(missing)}")
        return cls(
            centers=Centers.from_arrays(arrays),
            next_iteration=int(meta["next_iteration"]),
            trace=list(meta["trace"]),
            bandwidth=meta["bandwidth"],
            fingerprint=meta.get("fingerprint"),
            stage=meta.get("stage", "rows"),
        )


def _unpacked(record, layout):
    """The arrays of a recorded state: columns of one array (``layout``: each
    field's name, width, dimensions and type), or, as written before, one
    array per field."""
    if layout is None:
        return {name: np.asarray(arr[:]) for name, arr in record.arrays()}
    packed = np.asarray(record[:], dtype=np.float64)
    arrays, start = {}, 0
    for name, width, ndim, dtype in layout:
        value = packed[:, start : start + width]
        arrays[name] = (value if ndim == 2 else value[:, 0]).astype(dtype)
        start += width
    return arrays
