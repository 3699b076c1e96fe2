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
        sub = state.create_group(name, overwrite=True)
        for f in fields(self.centers):
            value = getattr(self.centers, f.name)
            sub.create_array(f.name, data=value, config=EVERY_CHUNK)
        previous = state.attrs.get("current")
        meta = {
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
        missing = [k for k in _REQUIRED if k not in sub]
        if missing:
            raise ValueError(f"the recorded state lacks {', '.join(missing)}")
        arrays = {name: np.asarray(arr[:]) for name, arr in sub.arrays()}
        return cls(
            centers=Centers.from_arrays(arrays),
            next_iteration=int(meta["next_iteration"]),
            trace=list(meta["trace"]),
            bandwidth=meta["bandwidth"],
            fingerprint=meta.get("fingerprint"),
            stage=meta.get("stage", "rows"),
        )
