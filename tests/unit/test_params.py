"""One parameter table: the estimator, the job file and the command agree on it."""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import zarr
from commands import run_cli
from conftest import SIX

from dist_meanshift import Job, MeanShift
from dist_meanshift._params import COMMAND, ESTIMATOR
from dist_meanshift.jobs import JobError


def test_the_table_is_the_estimators_signature():
    signature = inspect.signature(MeanShift).parameters
    assert [p.name for p in ESTIMATOR] == list(signature)
    for p in ESTIMATOR:
        assert signature[p.name].default == p.default, p.name


def test_every_command_parameter_is_a_fit_option_with_help_and_default(tmp_path):
    done = run_cli("fit", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for p in COMMAND:
        option = "--" + p.name.replace("_", "-")
        assert option in text, option
        assert p.doc.split()[0] in text, p.name
    assert "[default: 300]" in text  # --max-iter
    assert "[default: 0.3]" in text  # --quantile


def _job(tmp_path, model):
    path = tmp_path / "job.toml"
    path.write_text(f'[input]\npath = "x.zarr"\n[model]\n{model}\n')
    return path


@pytest.mark.parametrize(
    "name,value,word",
    [
        ("tol", -1, "-1"),
        ("max_iter", 0, "0"),
        ("truncate", 0.0, "0"),
        ("kernel", "cosine", "cosine"),
        ("persist", "sometimes", "sometimes"),
    ],
)
def test_a_bad_value_gets_the_same_message_everywhere(tmp_path, name, value, word):
    with pytest.raises(ValueError) as caught:
        MeanShift(**{name: value}).fit(SIX)
    rule = str(caught.value).split(". Got")[0]
    assert rule.startswith(f"The '{name}' parameter of MeanShift must be")
    toml = f'"{value}"' if isinstance(value, str) else value
    with pytest.raises(JobError, match=re.escape(rule)):
        Job.load(_job(tmp_path, f"{name} = {toml}"))
    option = "--" + name.replace("_", "-")
    done = run_cli("fit", "x.zarr", "--out", "o.zarr", option, word, cwd=tmp_path)
    assert done.returncode == 2
    if name != "kernel":  # click's own choice message names the choices
        assert rule in " ".join(done.stderr.split())


def test_a_job_file_says_auto_and_none(tmp_path):
    job = Job.load(_job(tmp_path, 'persist = "auto"\ntruncate = "none"\nbandwidth = 1'))
    assert job.model == {"persist": "auto", "truncate": None, "bandwidth": 1}
    job = Job.load(_job(tmp_path, "persist = false\nchunk_rows = 100"))
    assert job.model == {"persist": False, "chunk_rows": 100}
    with pytest.raises(JobError, match="must be of type int or float"):
        Job.load(_job(tmp_path, 'tol = "small"'))


def test_fit_takes_every_model_parameter_on_the_command_line(tmp_path):
    zarr.create_array(str(tmp_path / "x.zarr"), data=np.repeat(SIX, 50, axis=0))
    done = run_cli(
        "fit", "x.zarr", "--out", "o.zarr", "--bandwidth", "2",
        "--tol", "1e-4", "--merge-tol", "0.2", "--truncate", "none",
        "--chunk-rows", "100", "--persist", "false", "--max-iter", "50",
        "--no-cluster-all",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    params = zarr.open_group(str(tmp_path / "o.zarr"), mode="r").attrs["params"]
    assert params["tol"] == 1e-4 and params["merge_tol"] == 0.2
    assert params["truncate"] is None and params["persist"] is False
    assert params["chunk_rows"] == 100 and params["max_iter"] == 50
    assert params["cluster_all"] is False


def test_the_job_reference_in_docs_is_generated_from_the_table():
    from commands import ROOT

    from dist_meanshift.jobs import KEY_DOCS, SCHEMA, reference

    for section, keys in SCHEMA.items():
        if section != "model" and keys is not None:
            assert set(keys) == set(KEY_DOCS[section]), section
    text = reference()
    assert all(f"| `{p.name}` |" in text for p in COMMAND)
    # The committed page is what the docs build (docs/hooks.py) writes.
    assert (ROOT / "docs" / "job-reference.md").read_text() == text
