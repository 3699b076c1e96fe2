"""Input files for every format: what they must be, how their reads fail.

Below every reader (the zarr opener of ``io``, tables, images, labelled
data): a path must name something, a file must be a regular file before
anything opens it, a reader's failure becomes one line, and a file that
changes during a run stops it.

What an input file must be before anything opens it: a regular file.

Opening a named pipe blocks until a writer comes, for ever; a device may never
end; a folder named like a file fails later with a reader's error. Every file
the command reads (an input, a job file, a scheduler file, a certificate) is
checked here first, without opening it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat

from .errors import InputError, RunError, one_line

#: The largest block of a file a task may decode (a TIFF tile or strip, an
#: HDF5 chunk): all of it is read at once, whatever rows the task needs.
MAX_BLOCK_BYTES = 512 * 2**20

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def require_file(path, what="Input"):
    """Refuse ``path`` unless it is a regular file (links followed); return it.

    Parameters
    ----------
    path : str or os.PathLike
    what : str, default="Input"
        What the file is, to begin the message ("Job file", "Scheduler file").

    Raises
    ------
    InputError
        When ``path`` does not exist or is not a regular file.
    """
    name = os.fspath(path)
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        raise InputError(f"{what} {name!r} does not exist. Check the path.") from None
    except OSError as exc:
        raise InputError(
            f"{what} {name!r} cannot be read ({exc.strerror}). Check the path and "
            "its permissions."
        ) from None
    for test, kind in _KINDS:
        if test(mode):
            raise InputError(
                f"{what} {name!r} is {kind}, not a regular file. Give the path of "
                "a file."
            )
    return name


class InputChanged(RunError):
    """A chunk of the input changed, vanished or appeared during a run."""


def require_extra(extra, what, *modules):
    """Refuse, in one line naming the extra to install, a kind of input missing its readers."""
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise InputError(
            f"Reading {what} needs {', '.join(missing)}: install the {extra} extra "
            f"(pip install 'dist-meanshift[{extra}]')."
        )


def exists(name):
    """Whether an input path (or glob) names something."""
    return os.path.exists(name) or bool(glob.glob(name))


def require_path(name):
    """Refuse an input path (or glob) that names nothing."""
    if not exists(name):
        raise InputError(f"Input {name!r} does not exist. Check the path.")


@contextlib.contextmanager
def reading(name, what, remedy):
    """Turn a reader's failure into one line naming the input, what it should be, the fix."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:  # any reader's failure has the same remedy
        detail = one_line(exc)
        raise InputError(
            f"Input {name!r} cannot be read as {what} ({detail}). {remedy}"
        ) from exc


def require_unchanged(file, identity, subject):
    """Stop a run whose input ``file`` changed since it was opened.

    ``identity`` is the file's :func:`file_identity` when the run opened it;
    ``subject`` names what was about to be read (rows of a store, a row group
    of a table, rows of an image) and begins the message.
    """
    if file_identity(file) != identity:
        raise InputChanged(
            f"{subject} changed during the run (its file was rewritten, added or "
            "deleted). Leave the input alone while it is clustered, then run again."
        )


def file_identity(file):
    """A file's size and modification time in nanoseconds, or None if it is gone."""
    try:
        st = os.stat(file)
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns
