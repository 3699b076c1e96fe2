"""One parameter table: the estimator, the job file and the command agree on it."""

from __future__ import annotations

import inspect

import pytest

from dist_meanshift import Job, MeanShift
from dist_meanshift._params import COMMAND, ESTIMATOR
from dist_meanshift.jobs import JobError


def test_the_table_is_the_estimators_signature():
    signature = inspect.signature(MeanShift).parameters
    assert [p.name for p in ESTIMATOR] == list(signature)
    for p in ESTIMATOR:
        assert signature[p.name].default == p.default, p.name


def _job(tmp_path, model):
    path = tmp_path / "job.toml"
    path.write_text(f'[input]\npath = "x.zarr"\n[model]\n{model}\n')
    return path


def test_a_job_file_says_auto_and_none(tmp_path):
    job = Job.load(_job(tmp_path, 'persist = "auto"\ntruncate = "none"\nbandwidth = 1'))
    assert job.model == {"persist": "auto", "truncate": None, "bandwidth": 1}
    job = Job.load(_job(tmp_path, "persist = false\nchunk_rows = 100"))
    assert job.model == {"persist": False, "chunk_rows": 100}
    with pytest.raises(JobError, match="must be of type int or float"):
        Job.load(_job(tmp_path, 'tol = "small"'))


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
