"""The command as people expect it: JSON, verbosity anywhere, clear summaries."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import zarr
from commands import run_cli
from data import BLOBS

import dist_meanshift
from dist_meanshift import MeanShift


@pytest.fixture
def data(tmp_path, zarr_input):
    zarr_input(BLOBS, chunks=100)
    return tmp_path


FIT = ["fit", "X.zarr", "--bandwidth", "1.0", "--out"]


def test_json_result_for_an_orchestrator(data):
    done = run_cli(*FIT, "o.zarr", "--json", cwd=data)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)  # nothing but the JSON on stdout
    model = MeanShift(bandwidth=1.0).fit(BLOBS)
    assert result["output"] == str(data / "o.zarr")
    assert result["sizes"] == np.bincount(model.labels_).tolist()
    assert result["n_clusters"] == len(model.cluster_centers_)
    assert result["n_unlabelled"] == 0 and result["converged"] is True
    assert set(result["timings"]) == {"fit"}
    again = run_cli(*FIT, "o.zarr", "--resume", cwd=data)  # fit resumes as run does
    assert again.returncode == 0 and "already complete" in again.stdout


def test_quiet_and_verbose_after_the_subcommand(data):
    quiet = run_cli(*FIT, "q.zarr", "-q", cwd=data)
    assert quiet.returncode == 0 and quiet.stdout == ""
    verbose = run_cli(*FIT, "v.zarr", "-v", cwd=data)
    assert "INFO dist_meanshift" in verbose.stderr
    assert "DEBUG" not in verbose.stderr


def test_a_small_input_is_fitted_without_workers_unless_a_cluster_is_named(data):
    here = run_cli(*FIT, "here.zarr", "-v", cwd=data)
    assert here.returncode == 0, here.stderr
    assert "fitted in this process, without workers" in here.stderr
    assert "dashboard:" not in here.stdout
    named = run_cli(*FIT, "named.zarr", "-v", "--n-workers", "2", cwd=data)
    assert named.returncode == 0, named.stderr
    assert "without workers" not in named.stderr
    assert "dashboard:" in named.stdout
    # The same answer either way.
    labels = [
        zarr.open_array(str(data / name / "labels"), mode="r")[:]
        for name in ("here.zarr", "named.zarr")
    ]
    np.testing.assert_array_equal(*labels)


def test_a_small_fit_imports_neither_distributed_nor_numba(data):
    # A small input fitted in the command's process needs no cluster, and a
    # few pairs need no compiled loop: neither import is paid for, and the
    # labels are the API's.
    code = (
        "import sys\n"
        "from dist_meanshift.cli import main\n"
        "try:\n"
        f"    main({[*FIT, 'o.zarr', '--kernel', 'flat']!r})\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(sorted({'distributed', 'numba'} & set(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=data,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
    model = MeanShift(bandwidth=1.0, kernel="flat").fit(BLOBS)
    labels = zarr.open_array(str(data / "o.zarr/labels"), mode="r")[:]
    np.testing.assert_array_equal(labels, model.labels_)


def test_unlabelled_points_have_their_own_line(data):
    done = run_cli(*FIT, "o.zarr", "--kernel", "flat", "--no-cluster-all", cwd=data)
    assert done.returncode == 0, done.stderr
    labels = zarr.open_array(str(data / "o.zarr/labels"), mode="r")[:]
    far = int((labels == -1).sum())
    assert far > 0
    line = next(ln for ln in done.stdout.splitlines() if "unlabelled" in ln)
    assert line.split()[1] == str(far)
    shares = [
        float(ln.split()[-1].rstrip("%"))
        for ln in done.stdout.splitlines()
        if ln.strip().endswith("%")
    ]
    assert sum(shares) == pytest.approx(100, abs=0.1 * len(shares))


def test_report_is_named_and_a_bad_picture_suffix_fails_before_the_run(data):
    done = run_cli(*FIT, "o.zarr", "--report", "r.html", cwd=data)
    assert done.returncode == 0, done.stderr
    assert f"report: {data / 'r.html'}" in done.stdout
    assert (data / "r.html").exists()
    bad = run_cli(*FIT, "p.zarr", "--plot", "x.foo", cwd=data)
    assert bad.returncode == 2
    assert "--plot 'x.foo' cannot be written" in bad.stderr
    assert not (data / "p.zarr").exists()


def test_inspect_a_prediction_and_a_stopped_run(data):
    assert run_cli(*FIT, "o.zarr", cwd=data).returncode == 0
    assert (
        run_cli("predict", "o.zarr", "X.zarr", "--out", "p.zarr", cwd=data).returncode
        == 0
    )
    shown = run_cli("inspect", "p.zarr", cwd=data).stdout
    assert "labels: complete, 4 clusters of the model" in shown
    assert "nan" not in shown and "?" not in shown
    from dist_meanshift.results import create_output

    create_output(data / "stopped.zarr", {"params": {"x": "y " * 200}})
    shown = run_cli("inspect", "stopped.zarr", cwd=data).stdout
    assert "stopped run (INCOMPLETE" in shown and "--resume" in shown
    assert all(len(line) < 220 for line in shown.splitlines())


def test_scheduler_file_names_the_scheduler(data, tmp_path_factory):
    from clusters import dask_cluster

    where = tmp_path_factory.mktemp("cluster")
    with dask_cluster(where, n_workers=1) as address:
        (data / "scheduler.json").write_text(json.dumps({"address": address}))
        done = run_cli(*FIT, "o.zarr", "--scheduler-file", "scheduler.json", cwd=data)
        assert done.returncode == 0, done.stderr
    missing = run_cli(*FIT, "m.zarr", "--scheduler-file", "none.json", cwd=data)
    assert missing.returncode == 2
    assert "Scheduler file 'none.json' does not exist" in missing.stderr


def test_a_model_saved_in_python_predicts_in_the_command_and_back(data):
    model = MeanShift(bandwidth=1.0).fit(BLOBS)
    model.save(data / "model.zarr")
    done = run_cli("predict", "model.zarr", "X.zarr", "--out", "p.zarr", cwd=data)
    assert done.returncode == 0, done.stderr
    labels = zarr.open_array(str(data / "p.zarr/labels"), mode="r")[:]
    np.testing.assert_array_equal(labels, model.labels_)
    assert run_cli(*FIT, "fit.zarr", cwd=data).returncode == 0
    loaded = dist_meanshift.load(data / "fit.zarr")
    np.testing.assert_array_equal(loaded.predict(BLOBS), model.labels_)
    assert loaded.bandwidth_ == 1.0 and loaded.get_params()["kernel"] == "gaussian"
    with pytest.raises(FileExistsError, match="already exists"):
        model.save(data / "model.zarr")


def test_inspect_tables_and_inputs_that_are_not_zarr(tmp_path):
    pd = pytest.importorskip("pandas")
    pd.DataFrame(BLOBS, columns=["x", "y"]).to_csv(tmp_path / "p.csv", index=False)
    assert (
        run_cli(
            "fit", "p.csv", "--bandwidth", "1", "--out", "o.zarr", cwd=tmp_path
        ).returncode
        == 0
    )
    shown = run_cli("inspect", "o.labels.parquet", cwd=tmp_path)
    assert shown.returncode == 0
    assert shown.stdout.startswith("labels table: complete, 1 partitions")
    assert (
        "p.csv: table, rows counted when read, 2 features"
        in run_cli("inspect", "p.csv", cwd=tmp_path).stdout
    )
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    bad = run_cli("inspect", "bad.tif", cwd=tmp_path)
    assert bad.returncode == 2 and "cannot be read as an image" in bad.stderr


def test_an_object_half_made_by_a_signal_prints_nothing_when_freed():
    # Ctrl-C inside a distributed Future's __init__ left it without an
    # attribute its __del__ reads: Python printed "Exception ignored in"
    # and a traceback under the command's one line.
    code = (
        "from dist_meanshift.cli import _setup_logging\n"
        "_setup_logging(0)\n"
        "class Future:\n"
        "    def __init__(self): raise KeyboardInterrupt\n"
        "    def __del__(self): self._cleared\n"
        "try: Future()\n"
        "except KeyboardInterrupt: pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
