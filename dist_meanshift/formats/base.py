"""What a format declares: the one place the others differ by format.

The anchor is xarray's backends: each engine says whether it can open a
path and which options it takes, and one loop tries them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._files import require_extra


@dataclass(frozen=True)
class Option:
    """A job-file key: its TOML types, what it means, and its lower bound.

    Formats declare their ``[input]`` keys with it; the job file's other
    keys are the same kind of entry (``_job_file.KEYS``).
    """

    types: tuple
    doc: str
    #: Numbers below this are refused (None: no bound).
    low: float | None = None
    #: The bound itself is refused too (a number must be above it).
    open_below: bool = False


@dataclass(frozen=True)
class LabelsBeside:
    """Labels a format writes beside the result, in the input's own format.

    Attributes
    ----------
    key : str
        The ``[output]`` key naming the path (by default ``<result>.labels<suffix>``).
    doc : str
        What the key means, for the job-file reference.
    title : str
        How the run's summary calls it ("labels table").
    suffix : callable
        ``suffix(input_path)``: the default path's suffix.
    marker : str
        The ``format`` attribute of such an output: one of ours may be replaced.
    write : callable
        ``write(path, data, labels, outputs)``: ``labels`` lazily read from the
        result, ``outputs`` the job's ``[output]``.
    read_attrs : callable
        ``read_attrs(path)``: the attributes of an existing output (a file;
        folders and zarr groups are read by the output checks themselves).
    describe : callable
        ``describe(path)``: what ``inspect`` says of such an output, as lines,
        or None when ``path`` is not one.
    """

    key: str
    doc: str
    title: str
    suffix: object
    marker: str
    write: object
    read_attrs: object = None
    describe: object = None


@dataclass(frozen=True)
class Format:
    """An input format: one per module of :mod:`..formats`, as its ``SPEC``.

    Attributes
    ----------
    name : str
        The module's name.
    what : str
        How messages name its inputs, e.g. "tables".
    kind : str
        One input of it, as ``inspect`` names it: "table".
    reads : str
        What it reads, for the job-file reference: "a Parquet or CSV table".
    can_open : callable
        ``can_open(path, options)``: whether this format reads ``path`` (by
        suffix, by content, or because an option of its own is given).
    open : callable
        ``open(path, **options)``: the opened input, read lazily; given only
        the options the format takes (and ``array`` where it takes it).
    options : dict of str to Option
        The ``[input]`` keys it takes beside ``path``.
    extra : str or None
        The pip extra that installs ``modules``, its readers.
    modules : tuple of str
    labels : LabelsBeside or None
        What it writes beside the result.
    takes_array : bool
        ``open`` takes ``array``, the name of one array among several in a
        file (given as ``--array``, ``array = ...`` in a job file).
    """

    name: str
    what: str
    kind: str
    reads: str
    can_open: object
    open: object
    options: dict = field(default_factory=dict)
    extra: str | None = None
    modules: tuple = ()
    labels: LabelsBeside | None = None
    takes_array: bool = False

    def require_readers(self):
        """Refuse in one line, naming the extra to install, when a reader is missing."""
        require_extra(self.extra, self.what, *self.modules)
