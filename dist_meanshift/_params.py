"""The one table of model parameters: names, types, ranges, defaults and docs.

:class:`~.estimator.MeanShift` checks its parameters against it; the job
file's ``[model]`` section and the ``fit`` command's options are generated
from it, so the three accept the same names and values and refuse them with
the same message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np

from ._blocks.kernels import KERNELS
from .errors import InputError

INF = math.inf


@dataclass(frozen=True)
class Param:
    """One model parameter.

    Attributes
    ----------
    name : str
    kind : {"float", "int", "bool", "str", "array"}
    default : object
    doc : str
        One line for the command's help and the job-file reference.
    low, high : float
        Range of numbers; ``closed`` says which ends belong to it.
    closed : str
        ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    choices : tuple
        The allowed values of a str parameter.
    literals : tuple
        Words allowed besides the kind's values (``"none"`` for None,
        ``"auto"``), as job files and the command spell them.
    estimator : bool
        A parameter of MeanShift (``quantile`` belongs to the bandwidth
        estimate of a job).
    command : bool
        Given in a job file and on the command line (array-valued and
        compatibility-only parameters are not).
    """

    name: str
    kind: str
    default: object
    doc: str
    low: float = -INF
    high: float = INF
    closed: str = "both"
    choices: tuple = ()
    literals: tuple = ()
    estimator: bool = True
    command: bool = True

    @property
    def allowed(self):
        """What the parameter must be, in scikit-learn's words."""
        if self.kind == "bool" and self.literals:
            return ", ".join(map(repr, self.literals)) + ", True or False"
        if self.kind == "bool":
            text = "an instance of 'bool'"
        elif self.kind == "str":
            text = "a str among {" + ", ".join(map(repr, sorted(self.choices))) + "}"
        elif self.kind == "array":
            text = "an array-like"
        else:
            left = "[" if self.closed in ("both", "left") else "("
            right = "]" if self.closed in ("both", "right") else ")"
            article = "an" if self.kind == "int" else "a"
            text = f"{article} {self.kind}"
            if (self.low, self.high) != (-INF, INF):
                text += (
                    f" in the range {left}{_num(self.low)}, {_num(self.high)}{right}"
                )
        return text + (" or None" if "none" in self.literals else "")

    def check(self, value, owner="MeanShift"):
        """``value``, or a ValueError naming the parameter, the rule and the value."""
        if value is None and "none" in self.literals:
            return value
        if isinstance(value, str) and value in self.literals and value != "none":
            return value
        if not self._fits(value):
            raise InputError(
                f"The '{self.name}' parameter of {owner} must be {self.allowed}. "
                f"Got {value!r} instead."
            )
        return value

    def parse(self, text):
        """The value a job file's or the command's word stands for."""
        if isinstance(text, str):
            word = text.strip().lower()
            if word == "none" and "none" in self.literals:
                return None
            if word in self.literals:
                return word
            if self.kind in ("float", "int") or (
                self.kind == "bool" and word in ("true", "false")
            ):
                return self._number(word, text)
        return text

    def _number(self, word, text):
        if self.kind == "bool":
            return word == "true"
        try:
            return int(word) if self.kind == "int" else float(word)
        except ValueError:
            raise InputError(
                f"{text!r} is not a valid {self.kind}: the '{self.name}' parameter "
                f"must be {self.allowed}."
            ) from None

    def _fits(self, v):
        if self.kind == "bool":
            return isinstance(v, bool | np.bool_)
        if self.kind == "str":
            return isinstance(v, str) and v in self.choices
        if self.kind == "array":
            return True
        if self.kind == "int":
            if not isinstance(v, Integral) or isinstance(v, bool):
                return False
        elif not isinstance(v, Real) or isinstance(v, bool) or math.isnan(v):
            return False
        above = v >= self.low if self.closed in ("both", "left") else v > self.low
        below = v <= self.high if self.closed in ("both", "right") else v < self.high
        return above and below


def _num(x):
    return "inf" if x == INF else ("-inf" if x == -INF else f"{x:g}")


PARAMS = (
    Param(
        "bandwidth",
        "float",
        None,
        "Kernel bandwidth (default: estimated).",
        0,
        INF,
        "neither",
        literals=("none",),
    ),
    Param(
        "quantile",
        "float",
        0.3,
        "Quantile of the nearest-neighbour distances that estimates the bandwidth.",
        0,
        1,
        estimator=False,
    ),
    Param(
        "kernel",
        "str",
        "gaussian",
        "; ".join(f"{k.name}: {k.summary}" for k in KERNELS.values()) + ".",
        choices=tuple(KERNELS),
    ),
    Param(
        "seeds",
        "array",
        None,
        "Initial kernel locations.",
        command=False,
        literals=("none",),
    ),
    Param("bin_seeding", "bool", False, "Seed from the occupied cells of a grid."),
    Param(
        "min_bin_freq", "int", 1, "Points a grid cell needs to seed.", 1, INF, "left"
    ),
    Param("cluster_all", "bool", True, "Label every point (else far points get -1)."),
    Param("max_iter", "int", 300, "Iterations per seed at most.", 1, INF, "left"),
    Param(
        "tol",
        "float",
        1e-3,
        "A center stops when it moves by at most tol * h.",
        0,
        INF,
        "left",
    ),
    Param(
        "merge_tol",
        "float",
        0.1,
        "Gaussian: stopped centers within merge_tol * h merge.",
        0,
        INF,
        "left",
    ),
    Param(
        "truncate",
        "float",
        6.0,
        "Gaussian: ignore points beyond truncate * h ('none' is exact).",
        0,
        INF,
        "right",
        literals=("none",),
    ),
    Param(
        "bin_data",
        "float",
        None,
        "Binned mode: cells of bin_data * h stand for their points (approximate).",
        0,
        INF,
        "neither",
        literals=("none",),
    ),
    Param(
        "climb",
        "str",
        "auto",
        "Gaussian: climb on grid cells of h/4, then finish on every row "
        "(auto: from 20,000 rows).",
        choices=("auto", "cells", "rows"),
    ),
    Param(
        "chunk_rows",
        "int",
        None,
        "Rows per data chunk (default: the input's).",
        1,
        INF,
        "left",
        literals=("none",),
    ),
    Param(
        "persist",
        "bool",
        "auto",
        "Keep the data in cluster memory: auto (when it takes at most half), true, false.",
        literals=("auto",),
    ),
    Param(
        "n_jobs",
        "int",
        None,
        "Ignored: Dask sets the parallelism.",
        literals=("none",),
        command=False,
    ),
)

#: Parameters by name.
BY_NAME = {p.name: p for p in PARAMS}
#: Parameters of MeanShift, in the order of its signature.
ESTIMATOR = tuple(p for p in PARAMS if p.estimator)
#: Parameters of a job's [model] section and of the fit command.
COMMAND = tuple(p for p in PARAMS if p.command)


def check_params(est):
    """Check the parameters of an estimator; raise on the first bad one."""
    for p in ESTIMATOR:
        p.check(getattr(est, p.name), type(est).__name__)
    kernel = KERNELS[est.kernel]
    if est.climb == "cells" and not kernel.climbs_on_cells:
        raise InputError(
            f"climb='cells' needs a smooth kernel and kernel={est.kernel!r} is not: "
            "its modes would change. Use climb='auto' or 'rows', or "
            "kernel='gaussian'."
        )
