"""Job files: TOML data (never code), checked key by key into a :class:`JobFile`.

Below the runner, which reads them; :class:`~.jobs.Job` (public) is a job
file that runs itself.

The ``[model]`` section takes every parameter of the one table in
``_params`` (the ``fit`` command's options come from the same table); the
other sections are listed in :data:`SCHEMA`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field

from ._files import require_file
from ._params import COMMAND
from .errors import InputError
from .formats import FORMATS, input_options
from .formats.base import Option as Key

#: A job file is a page of TOML: what is read of it at most.
_MAX_JOB_BYTES = 1 << 20

_TOML_TYPES = {"float": (int, float), "int": (int,), "bool": (bool,), "str": (str,)}

#: Every key of a job file outside [model], in one table: section -> key ->
#: its TOML types, its meaning and its bounds. [input] takes the keys of every
#: format; [output] the labels each format writes beside the result; [model]
#: is the parameter table (``_params``); [cluster.options] takes any key.
KEYS = {
    "input": {
        "path": Key(
            (str,),
            "The data: a zarr array or group, a .npy file, "
            + ", ".join(f.reads for f in FORMATS)
            + ".",
        ),
        "array": Key(
            (str,),
            "The array to cluster in a zarr group or a file that holds several "
            "(not needed with one).",
        ),
        "image": Key(
            (str,),
            "A picture (or scikit-learn sample image) whose pixels are written to "
            "path first: a tiled TIFF for a .tif path, else zarr.",
        ),
        **input_options(),
    },
    "input.make_blobs": {
        "n_samples": Key(
            (int,),
            "Rows of a demo dataset made at input.path if it is missing, in the "
            "format the path names (zarr, Parquet, CSV or NetCDF).",
            low=1,
        ),
        "n_features": Key((int,), "Features of the demo dataset.", low=1),
        "centers": Key((int,), "Blobs (clusters) of the demo dataset.", low=1),
        "seed": Key((int,), "Random seed of the demo dataset."),
        "chunk_rows": Key((int,), "Rows per zarr chunk.", low=1),
        "std": Key((int, float), "Standard deviation of every blob.", 0, True),
    },
    "cluster": {
        "scheduler": Key(
            (str,), "Address of a running Dask scheduler (tcp:// or tls://)."
        ),
        "scheduler_file": Key(
            (str,), "A scheduler's JSON file (dask scheduler --scheduler-file)."
        ),
        "n_workers": Key((int,), "Workers of the local cluster (default 2).", low=1),
        "threads_per_worker": Key(
            (int,), "Threads per local worker (default 1).", low=1
        ),
        "memory_limit": Key((str, int), 'Memory per local worker, e.g. "2GiB".', 1),
        "processes": Key(
            (bool,), "Local workers as processes (default: threads in this process)."
        ),
        "host": Key(
            (str,),
            "Address a local cluster listens on (default 127.0.0.1: this machine "
            'only; "0.0.0.0" for every interface).',
        ),
        "timeout": Key(
            (int, float),
            "Seconds to wait for a remote scheduler (default 10).",
            0,
            True,
        ),
        "stall_timeout": Key(
            (int, float),
            "Seconds every worker may stay paused, or none be there, before the run "
            "stops (default 60).",
            0,
            True,
        ),
        "tls_ca_file": Key((str,), "TLS: the CA certificate."),
        "tls_cert": Key((str,), "TLS: this client's certificate."),
        "tls_key": Key((str,), "TLS: this client's key."),
        "manager": Key(
            (str,),
            'A cluster manager to start, "package.Class" '
            '(e.g. "dask_jobqueue.SLURMCluster").',
        ),
        "trust_manager": Key(
            (bool,), "Import a manager from outside the known Dask packages."
        ),
        "scale": Key((int,), "Workers to ask the manager for.", low=0),
        "start_timeout": Key(
            (int, float),
            "Seconds to wait for a manager's first worker (default 600).",
            0,
            True,
        ),
    },
    "cluster.adapt": {
        "minimum": Key((int,), "Adaptive scaling: fewest workers.", low=0),
        "maximum": Key((int,), "Adaptive scaling: most workers.", low=1),
    },
    "output": {
        "path": Key(
            (str,), "The result (zarr group); default: the input path + .result.zarr."
        ),
        "overwrite": Key(
            (bool,), "Replace an earlier result (never any other directory)."
        ),
        "plot": Key(
            (str,),
            "A picture of the clusters and the convergence (.png, .svg, .pdf).",
        ),
        "plot_dims": Key(
            (list,), "The two features the picture shows (default [0, 1])."
        ),
        "image": Key(
            (str,), "For images: every pixel painted with its cluster's colour."
        ),
        "report": Key((str,), "A Dask performance report (.html)."),
        "table_columns": Key(
            (bool,), "For tables: copy the input's columns beside the labels."
        ),
        **{f.labels.key: Key((str,), f.labels.doc) for f in FORMATS if f.labels},
        "label_image": Key(
            (str,),
            "For images: the labels as a PNG or TIFF of integers "
            "(label + 1; 0 is unlabelled).",
        ),
    },
}
#: [cluster.options]: keyword arguments of the cluster manager, any key.
_ANY = {"(any)": "Keyword arguments of the cluster manager."}

# Views of the one table, as the checks read them.
#: section -> key -> allowed TOML types. A job file may hold only these.
SCHEMA = {
    "input": {k: key.types for k, key in KEYS["input"].items()},
    "input.make_blobs": {k: key.types for k, key in KEYS["input.make_blobs"].items()},
    "model": {
        p.name: _TOML_TYPES[p.kind] + ((str,) if p.literals else ()) for p in COMMAND
    },
    "cluster": {k: key.types for k, key in KEYS["cluster"].items()},
    "cluster.options": None,
    "cluster.adapt": {k: key.types for k, key in KEYS["cluster.adapt"].items()},
    "output": {k: key.types for k, key in KEYS["output"].items()},
}
_MODEL = {p.name: p for p in COMMAND}
#: Numbers outside [low, high] are refused by key (None: no bound that side).
RANGES = {
    f"{section}.{k}": (key.low, None)
    for section, keys in KEYS.items()
    for k, key in keys.items()
    if key.low is not None
}
#: Numbers that must be above their lower bound, not equal to it.
_OPEN_BELOW = {
    f"{section}.{k}"
    for section, keys in KEYS.items()
    for k, key in keys.items()
    if key.open_below
}
#: What each key outside [model] means (the model's keys: the parameter table).
KEY_DOCS = {
    section: (
        _ANY
        if section == "cluster.options"
        else {k: key.doc for k, key in KEYS[section].items()}
    )
    for section in SCHEMA
    if section != "model"
}


def reference():
    """The job-file reference in Markdown, generated from the schema and the table."""
    lines = [
        "# Job-file reference",
        "",
        "Generated from the parameter table (`dist_meanshift/_params.py`) and the",
        "job schema (`dist_meanshift/_job_file.py`); `dist-meanshift fit --help` lists the",
        "same model parameters as options. Unknown keys and wrong types are refused",
        "by name.",
    ]
    for section, keys in SCHEMA.items():
        lines += [
            "",
            f"## [{section}]",
            "",
            "| key | type | meaning |",
            "|---|---|---|",
        ]
        if section == "model":
            for p in COMMAND:
                kind = p.kind + "".join(f' or "{w}"' for w in p.literals)
                default = _toml(p.default)
                lines.append(f"| `{p.name}` | {kind}, default {default} | {p.doc} |")
            continue
        for key, doc in KEY_DOCS[section].items():
            types = (keys or {}).get(key)
            kind = " or ".join(t.__name__ for t in types) if types else "any"
            lines.append(f"| `{key}` | {kind} | {doc} |")
    return "\n".join(lines) + "\n"


class JobError(InputError):
    """A job file that cannot be run as written."""


@dataclass
class JobFile:
    """A checked job: what to read, how to cluster, where to run, what to write.

    Attributes
    ----------
    input : dict
        ``path`` (zarr array or group, or ``.npy``), ``array``, ``image``.
    make_blobs : dict
        Parameters of a demo dataset made at ``input.path`` if it is missing.
    model : dict
        Model parameters (see ``dist-meanshift fit --help``).
    cluster : dict
        ``scheduler`` address, or the local cluster's size.
    output : dict
        ``path``, ``overwrite``, ``plot``, ``image``, ``report``.
    """

    input: dict = field(default_factory=dict)
    make_blobs: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    cluster: dict = field(default_factory=dict)
    output: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path):
        """Read and check a job file (relative paths are taken from the current directory).

        Parameters
        ----------
        path : str or os.PathLike

        Returns
        -------
        JobFile
            Of the class it is called on (:class:`~.jobs.Job` from there).
        """
        try:
            require_file(path, "Job file")
        except InputError as exc:
            raise JobError(str(exc)) from None
        try:
            with open(path, "rb") as f:
                raw = tomllib.loads(f.read(_MAX_JOB_BYTES).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise JobError(
                f"Job file {str(path)!r} is not UTF-8 text (byte {exc.start}); a job "
                "file is TOML. Check that you gave the job file."
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise JobError(f"Job file {str(path)!r} is not valid TOML: {exc}.") from exc
        sections = {section: {} for section in SCHEMA}
        _check_table(raw, "", sections)
        if "path" not in sections["input"]:
            raise JobError(
                f"Job file {str(path)!r} has no input path. Add [input] path = "
                '"data.zarr" to it.'
            )
        adapt = sections["cluster.adapt"]
        if adapt.get("maximum", float("inf")) < adapt.get("minimum", 0):
            raise JobError(
                f"[cluster.adapt] maximum ({adapt['maximum']}) is below its minimum "
                f"({adapt['minimum']}). Give maximum >= minimum."
            )
        sections["make_blobs"] = sections.pop("input.make_blobs")
        for sub in ("options", "adapt"):
            if sections[f"cluster.{sub}"]:
                sections["cluster"][sub] = sections[f"cluster.{sub}"]
            del sections[f"cluster.{sub}"]
        return cls(**sections)

    def override(self, section, **values):
        """Set the values that are not None (command-line options over the file)."""
        getattr(self, section).update(
            {k: v for k, v in values.items() if v is not None}
        )
        return self


def _toml(value):
    """A default as a job file writes it."""
    if value is None:
        return "none (omit the key)"
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _check_table(table, prefix, job):
    for key, value in table.items():
        name = f"{prefix}{key}"
        free = prefix and SCHEMA.get(prefix.rstrip(".")) is None
        if isinstance(value, dict) and not free:
            if name not in SCHEMA:
                raise JobError(
                    f"Unknown section [{name}] in the job file. Known sections: "
                    f"{', '.join(f'[{s}]' for s in SCHEMA)}."
                )
            _check_table(value, f"{name}.", job)
            continue
        section = prefix.rstrip(".")
        allowed = SCHEMA.get(section, {})
        if free:
            job[section][key] = value
            continue
        if key not in allowed:
            raise JobError(
                f"Unknown key '{name}' in the job file. Keys of [{section}]: "
                f"{', '.join(sorted(allowed))}."
                if section
                else f"Unknown top-level key '{name}' in the job file; keys belong "
                "in a section such as [model]."
            )
        job[section][key] = _checked(section, key, value, allowed[key])


def _checked(section, key, value, types):
    name = f"{section}.{key}"
    param = _MODEL.get(key) if section == "model" else None
    words = param.literals if param else ()
    numeric = param is not None and param.kind in ("int", "float") and words
    if numeric and isinstance(value, str) and value.strip().lower() not in words:
        types = types[:-1]  # a str in a number's place only as one of the words
    wrong_bool = isinstance(value, bool) and bool not in types
    if wrong_bool or not isinstance(value, types):
        want = " or ".join(t.__name__ for t in types)
        also = " (or " + ", ".join(f'"{w}"' for w in words) + ")" if words else ""
        raise JobError(
            f"Key '{name}' in the job file must be of type {want}{also}. Got "
            f"{value!r} ({type(value).__name__}) instead."
        )
    if param is None:
        return _in_range(name, value)
    try:
        return param.check(param.parse(value))
    except ValueError as exc:
        raise JobError(f"{exc} (key '{name}' of the job file)") from None


def _in_range(name, value):
    """``value``, refused by key when it is out of its range or not a finite number."""
    import math

    if name == "cluster.memory_limit" and isinstance(value, str):
        check_memory_limit(value, f"Key '{name}' in the job file")
    if name not in RANGES or isinstance(value, bool | str):
        return value
    low, high = RANGES[name]
    bad = isinstance(value, float) and not math.isfinite(value)
    bad = bad or (value <= low if name in _OPEN_BELOW else value < low)
    bad = bad or (high is not None and value > high)
    if bad:
        above = f"> {low}" if name in _OPEN_BELOW else f">= {low}"
        raise JobError(
            f"Key '{name}' in the job file must be a number {above}"
            f"{f' and <= {high}' if high is not None else ''}. Got {value!r} instead."
        )
    return value


def check_memory_limit(value, what):
    """``value``, refused unless it is "auto" or a size such as "2GiB" (> 0)."""
    from dask.utils import parse_bytes

    if value == "auto":
        return value
    try:
        ok = parse_bytes(value) > 0
    except (ValueError, TypeError):
        ok = False
    if not ok:
        raise JobError(
            f'{what} must be a size such as "2GiB", or "auto". Got {value!r} instead.'
        )
    return value
