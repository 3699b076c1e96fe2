"""Job files: TOML data (never code), checked key by key against a schema."""

from __future__ import annotations

import os
import tomllib

# section -> key -> allowed types. A job file may hold only these.
SCHEMA = {
    "input": {"path": (str,), "array": (str,), "image": (str,)},
    "input.make_blobs": {
        "n_samples": (int,),
        "n_features": (int,),
        "centers": (int,),
        "seed": (int,),
        "chunk_rows": (int,),
        "std": (int, float),
    },
    "model": {
        "bandwidth": (int, float),
        "quantile": (int, float),
        "kernel": (str,),
        "bin_seeding": (bool,),
        "min_bin_freq": (int,),
        "cluster_all": (bool,),
        "max_iter": (int,),
        "tol": (int, float),
        "merge_tol": (int, float),
        "truncate": (int, float),
        "bin_data": (int, float),
        "persist": (bool,),
    },
    "cluster": {
        "scheduler": (str,),
        "n_workers": (int,),
        "threads_per_worker": (int,),
        "memory_limit": (str, int),
        "processes": (bool,),
        "timeout": (int, float),
        "stall_timeout": (int, float),
        "tls_ca_file": (str,),
        "tls_cert": (str,),
        "tls_key": (str,),
    },
    "output": {
        "path": (str,),
        "overwrite": (bool,),
        "plot": (str,),
        "plot_dims": (list,),
        "image": (str,),
        "report": (str,),
    },
}


class JobError(ValueError):
    """A job file that cannot be run as written."""


def load_job(path):
    """Read and check a job file.

    Relative paths inside the job are taken relative to the current directory.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        ``{"input": {...}, "input.make_blobs": {...}, "model": {...},
        "cluster": {...}, "output": {...}}``, each section present (maybe empty).
    """
    if not os.path.isfile(path):
        raise JobError(f"Job file {str(path)!r} does not exist. Check the path.")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise JobError(f"Job file {str(path)!r} is not valid TOML: {exc}.") from exc
    job = {section: {} for section in SCHEMA}
    _check_table(raw, "", job)
    if "path" not in job["input"]:
        raise JobError(
            f"Job file {str(path)!r} has no input path. Add [input] path = "
            '"data.zarr" to it.'
        )
    return job


def _check_table(table, prefix, job):
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if name not in SCHEMA:
                raise JobError(
                    f"Unknown section [{name}] in the job file. Known sections: "
                    f"{', '.join(f'[{s}]' for s in SCHEMA)}."
                )
            _check_table(value, f"{name}.", job)
            continue
        section = prefix.rstrip(".")
        allowed = SCHEMA.get(section, {})
        if key not in allowed:
            raise JobError(
                f"Unknown key '{name}' in the job file. Keys of [{section}]: "
                f"{', '.join(sorted(allowed))}."
                if section
                else f"Unknown top-level key '{name}' in the job file; keys belong "
                "in a section such as [model]."
            )
        types = allowed[key]
        wrong_bool = isinstance(value, bool) and bool not in types
        if wrong_bool or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise JobError(
                f"Key '{name}' in the job file must be of type {want}. Got "
                f"{value!r} ({type(value).__name__}) instead."
            )
        job[section][key] = value
