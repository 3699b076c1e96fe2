"""The command and the parameter table: every parameter an option, one message.

The same parameters and messages in ``MeanShift(...)``, a job file's
``[model]`` and ``fit``'s options; the command's summary of a fit that stops
at ``max_iter``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import zarr
from commands import run_cli
from data import BLOBS, SIX
from sklearn.exceptions import ConvergenceWarning

from dist_meanshift import Job, MeanShift
from dist_meanshift._params import COMMAND
from dist_meanshift.jobs import JobError


def _job(tmp_path, model):
    path = tmp_path / "job.toml"
    path.write_text(f'[input]\npath = "x.zarr"\n[model]\n{model}\n')
    return path


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


def test_fit_takes_every_model_parameter_on_the_command_line(tmp_path, zarr_input):
    zarr_input(np.repeat(SIX, 50, axis=0), name="x.zarr")
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


def test_max_iter_with_centers_still_moving_warns_and_says_so(tmp_path):
    with pytest.warns(ConvergenceWarning, match=r"stopped at max_iter=2 with \d+ of"):
        model = MeanShift(0.5, max_iter=2).fit(BLOBS)
    assert not model.converged_ and model.n_unconverged_ > 0
    assert model.n_iter_ == 2 == model.trace_[-1]["iteration"]
    np.save(tmp_path / "x.npy", BLOBS)
    done = run_cli(
        "fit",
        "x.npy",
        "--out",
        "out.zarr",
        "--bandwidth",
        "0.5",
        "--max-iter",
        "2",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "2 iterations" in done.stdout
    assert (
        "stopped at max_iter=2 with" in done.stdout and "raise max_iter" in done.stdout
    )
    assert "Warning" not in done.stderr
    import zarr

    attrs = zarr.open_group(str(tmp_path / "out.zarr"), mode="r").attrs
    assert attrs["converged"] is False and attrs["n_iter"] == 2
