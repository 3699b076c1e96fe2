"""Where results may go: output path checks, the output lock, atomic replacement.

Nothing here writes a result; these are the rules every writer follows so
that no run deletes a user's data and no half-written output looks complete:
an output is never the input (links resolved) nor a link, only our own
outputs are replaced, a second run on the same output is refused, and a new
result replaces an old one only once it is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket

import zarr

from .errors import InputError

#: The ``format`` attribute of every result group this package writes.
FORMAT = "dist-meanshift-result/1"
#: The ``format`` attribute of demo datasets made by :func:`~.demo.make_blobs_zarr`.
BLOBS_FORMAT = "dist-meanshift-blobs/1"
#: The zarr array configuration of every array this package writes: every
#: chunk is stored, even one all of fill value, so that a missing chunk always
#: means a damaged store (read as fill values, it would pass for data).
EVERY_CHUNK = {"write_empty_chunks": True}


def check_output_path(
    path, overwrite, inputs=(), resume=False, replaceable=None, read_attrs=None
):
    """Refuse an output that would overwrite input, or that exists unless allowed.

    Paths are compared after resolving every symbolic link, so an output
    reached through a link to the input is refused like the input itself; an
    output that is itself a link is refused (replacing it would act on what it
    points to). An existing path may be replaced (``overwrite``) or resumed
    (``resume``) only if it is a dist-meanshift output of a ``replaceable``
    format: results by default, never a dataset. ``read_attrs`` reads the
    attributes of an output that is one file (see :func:`output_status`).
    """
    replaceable = (FORMAT,) if replaceable is None else replaceable
    name = os.fspath(path)
    if os.path.islink(name):
        raise InputError(
            f"Output {name!r} is a symbolic link (to {os.readlink(name)!r}); it is "
            "left alone. Give the path it points to, or another path."
        )
    _check_not_input(name, inputs)
    check_parent(name)
    if not os.path.exists(name) or is_empty_dir(name):
        return
    complete = output_status(name, replaceable, read_attrs)
    if complete is None:
        if overwrite or resume:
            raise FileExistsError(
                f"Output {name!r} exists and is not a dist-meanshift result, so it "
                "is left alone. Choose another output path."
            )
    elif resume:
        return
    elif not complete and not overwrite:
        raise FileExistsError(
            f"Output {name!r} holds a stopped run. Pass --resume to "
            "continue it, --overwrite to start afresh, or choose another path."
        )
    if not overwrite:
        raise FileExistsError(
            f"Output {name!r} already exists. Pass --overwrite (or "
            "output.overwrite = true) to replace it, or choose another path."
        )


def check_file_output(path, key, overwrite, inputs=()):
    """Refuse a file output (a picture, a report) that may not be written here.

    The rules of every output (see :func:`check_output_path`): not a link, not
    the input nor inside it; an existing file is replaced only with
    ``overwrite``, and only a regular file; its folder can be written.
    """
    name = os.fspath(path)
    _check_not_input(name, inputs)
    if os.path.lexists(name):
        if os.path.islink(name):
            raise InputError(
                f"output.{key} {name!r} is a symbolic link; it is left alone. Give "
                "another path."
            )
        if not os.path.isfile(name):
            raise InputError(
                f"output.{key} {name!r} exists and is not a file; it is left alone. "
                "Give another path."
            )
        if not overwrite:
            raise FileExistsError(
                f"output.{key} {name!r} already exists. Pass --overwrite (or "
                "output.overwrite = true) to replace it, or choose another path."
            )
    check_parent(name, f"output.{key}")


def check_parent(path, what="Output"):
    """Refuse an output whose folder cannot be made or written.

    Missing folders are made when the output is written (as for the result);
    the nearest one that exists must be a folder this process can write.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise InputError(
            f"{what} {os.fspath(path)!r} cannot be written: {folder!r} is not a "
            "folder. Choose another path."
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"{what} {os.fspath(path)!r} cannot be written: folder {folder!r} is not "
            "writable. Choose another path, or make the folder writable."
        )


def check_distinct(outputs):
    """Refuse two outputs of one run that are the same path or lie one in the other.

    Parameters
    ----------
    outputs : dict of str to path
        What each output is (``"output.plot"``) and its path.
    """
    seen = []
    for what, path in outputs.items():
        real = os.path.realpath(os.fspath(path))
        for other, other_real in seen:
            if _overlap(real, other_real):
                raise InputError(
                    f"{what} {os.fspath(path)!r} and {other} "
                    f"{os.fspath(outputs[other])!r} are the same path or one lies "
                    "inside the other, once links are resolved. Give each output "
                    "its own path."
                )
        seen.append((what, real))


def _overlap(a, b):
    return (
        a == b
        or a.startswith(b.rstrip(os.sep) + os.sep)
        or b.startswith(a.rstrip(os.sep) + os.sep)
    )


def _check_not_input(name, inputs):
    out = os.path.realpath(name)
    for inp in inputs:
        if _overlap(out, os.path.realpath(os.fspath(inp))):
            raise InputError(
                f"Output {name!r} is the input or lies inside it (or holds it), "
                "once links are resolved. Choose an output path outside the input."
            )


@contextlib.contextmanager
def output_lock(path):
    """Hold the lock of an output for as long as a run writes it.

    The lock is ``flock`` on a file beside the output (``<output>.lock``,
    removed at the end) that names its holder. A second run for the same output
    is refused, naming the holder; the kernel drops the lock of a process that
    died, so its successor takes the lock over without asking.

    Raises
    ------
    FileExistsError
        When a live run holds the lock.
    """
    lock = f"{os.path.realpath(os.fspath(path)).rstrip(os.sep)}.lock"
    made = _make_parents(os.path.dirname(lock))
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip()
            os.close(fd)
            raise FileExistsError(
                f"Output {os.fspath(path)!r} is being written by another run "
                f"({holder or 'starting'}). Wait for it to end, or choose another "
                "output path."
            ) from None
        try:
            # The holder before us may have removed the file after we opened it.
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}".encode())
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)
        for folder in reversed(made):  # those made for nothing go again
            with contextlib.suppress(OSError):
                os.rmdir(folder)


def _make_parents(folder):
    """Create ``folder`` and its missing parents; return those created."""
    missing = []
    while folder and not os.path.exists(folder):
        missing.append(folder)
        folder = os.path.dirname(folder)
    for made in reversed(missing):
        os.makedirs(made, exist_ok=True)
    return missing[::-1]


#: The file marking a folder output that is not a zarr group (a labels table).
MARKER = "dist-meanshift.json"


def output_status(path, formats=None, read_attrs=None):
    """True/False for a complete/incomplete output of ``formats``, else None.

    A folder with a MARKER file, a zarr group, or a file whose attributes
    ``read_attrs(path)`` reads (its format's :class:`~.formats.LabelsBeside`).
    """
    formats = (FORMAT,) if formats is None else formats
    marker = os.path.join(os.fspath(path), MARKER)
    try:
        if os.path.isfile(marker):  # a folder of files (a labels table)
            with open(marker) as f:
                attrs = json.load(f)
        elif os.path.isfile(os.fspath(path)):  # one file: its format reads it
            if read_attrs is None:
                return None
            attrs = read_attrs(os.fspath(path))
        else:
            attrs = dict(zarr.open_group(os.fspath(path), mode="r").attrs)
    except (OSError, ValueError, ImportError):  # not ours, or unreadable
        return None
    if attrs.get("format") not in formats:
        return None
    return attrs.get("complete") is True


@contextlib.contextmanager
def written(path):
    """A temporary path beside ``path`` (same suffix) put in its place once written.

    A file or folder output is never seen half-written: a failure (a signal
    included) removes the temporary one, and the earlier output (if any) stays
    until the new one replaces it (see :func:`replace`).
    """
    stem, suffix = os.path.splitext(os.path.abspath(os.fspath(path)))
    tmp = f"{stem}.partial-{os.getpid()}{suffix}"
    # Missing folders are made, as for the result (checked writable before).
    os.makedirs(os.path.dirname(tmp), exist_ok=True)
    try:
        yield tmp
        replace(tmp, os.fspath(path))
    finally:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)


def is_empty_dir(path):
    return os.path.isdir(path) and not os.listdir(path)


def partial_path(path):
    # Absolute, so that workers with another working directory write into it.
    return f"{os.path.abspath(path).rstrip('/')}.partial-{os.getpid()}"


def replace(tmp, path):
    """Put the complete ``tmp`` at ``path``; the earlier ``path`` goes last.

    The earlier one is renamed aside first and deleted only once ``tmp`` is in
    place: a kill in between leaves both, never neither. Links were refused
    before any write (see :func:`check_output_path`).
    """
    if not os.path.lexists(path):
        os.replace(tmp, path)
        return
    aside = f"{path}.old-{os.getpid()}"
    os.rename(path, aside)
    os.rename(tmp, path)
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside)
    else:
        os.remove(aside)


def remove_output(path):
    """Delete a stopped output; its metadata, which marks it as ours, goes last."""
    meta = os.path.join(path, "zarr.json")
    for entry in os.scandir(path):
        if entry.name == "zarr.json":
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.remove(entry.path)
    if os.path.exists(meta):
        os.remove(meta)
    os.rmdir(path)


def jsonable(value):
    return json.loads(json.dumps(value, default=list))


def state_recorded(path):
    """Whether the output at ``path`` holds a recorded iteration's state.

    Read from the metadata files themselves, not through zarr: a signal may
    have interrupted zarr in the middle of a call (even of the save that
    wrote the state, which is then whole: zarr replaces files atomically),
    and its I/O loop may not answer again in this process.
    """
    import json

    state = os.path.join(os.fspath(path), "state")
    try:
        with open(os.path.join(state, "zarr.json")) as f:
            current = json.load(f)["attributes"]["current"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return os.path.exists(os.path.join(state, str(current), "zarr.json"))
