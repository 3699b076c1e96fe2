"""The kernels, one module each: all that differs between kernels is declared there.

A new kernel is one module here, named as the kernel, defining a
:class:`~.base.Kernel` subclass and its ``KERNEL`` instance: it is found here
and offered wherever a kernel is named (the estimator, the job file, the
command's ``--kernel``).
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import Kernel

#: Every kernel by name, the default (Gaussian, the founding algorithm's) first.
KERNELS = {
    k.name: k
    for k in sorted(
        (
            importlib.import_module(f"{__name__}.{m.name}").KERNEL
            for m in pkgutil.iter_modules(__path__)
            if m.name != "base" and not m.name.startswith("_")
        ),
        key=lambda k: k.name != "gaussian",
    )
}

__all__ = ["KERNELS", "Kernel", "get"]


def get(kernel):
    """The kernel named ``kernel`` (a :class:`Kernel` is returned as it is)."""
    if isinstance(kernel, Kernel):
        return kernel
    try:
        return KERNELS[kernel]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown kernel {kernel!r}: use one of {', '.join(map(repr, KERNELS))}."
        ) from None
