"""The errors a run reports: bad input (exit code 2) and failures while running (1)."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input or parameters: the data, a path, a job file or a model.

    The message names the problem and the remedy. The command reports it in one
    line with exit code 2.
    """


class RunError(RuntimeError):
    """A run failed for a reason outside its input: the cluster, the disk, a change.

    The command reports it in one line with exit code 1.

    Parameters
    ----------
    message : str
    resume_when : str or None, default=None
        When the state of the last finished iteration is kept, what must
        happen before resuming (``""`` when nothing must): the message then
        says how to resume.
    """

    def __init__(self, message, resume_when=None):
        super().__init__(message)
        self.message = message
        self.resume_when = resume_when

    def __str__(self):
        if self.resume_when is None:
            return self.message
        return f"{self.message}: {self.resume_when}run again with resume=True"


class ClusterStalled(RunError):
    """No worker could make progress for the stall timeout: the run was stopped."""


def listed(names, limit=8):
    """``names`` for a one-line message: the first ``limit`` and how many more.

    An error that lists every column of a 10,000-column table is not a line.
    """
    names = list(names)
    shown = ", ".join(repr(str(n))[:60] for n in names[:limit])
    more = len(names) - limit
    return f"[{shown}{f', ... and {more} more' if more > 0 else ''}]"


def one_line(exc, limit=200):
    """``exc`` as one line for a message: its type and text, whitespace folded, cut."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:limit]


def shown(value, limit=60):
    """``repr(value)`` cut to ``limit`` characters, for a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def user_stacklevel():
    """The ``stacklevel`` of ``warnings.warn`` that points at the user's line.

    Counted from the function that calls this one: the first frame outside
    this package (a fit reaches its warnings through generators of varying
    depth, so no fixed number is right).
    """
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level
