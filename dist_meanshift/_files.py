"""What an input file must be before anything opens it: a regular file.

Opening a named pipe blocks until a writer comes, for ever; a device may never
end; a folder named like a file fails later with a reader's error. Every file
the command reads (an input, a job file, a scheduler file, a certificate) is
checked here first, without opening it.
"""

from __future__ import annotations

import os
import stat

from .errors import InputError

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
