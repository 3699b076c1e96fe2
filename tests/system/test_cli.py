"""The dist-meanshift command, in this process and as a real subprocess."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import zarr
from commands import ROOT, cli, run_cli

from dist_meanshift import MeanShift


def _run_shipped_job(name, where):
    """Run a job file of jobs/ as a subprocess in ``where``; it must succeed."""
    shutil.copy(ROOT / "jobs" / name, where / name)
    done = cli("run", where / name, cwd=where)
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.timeout(300)
def test_quickstart_job_runs_and_its_result_equals_the_in_memory_fit(tmp_path):
    done = _run_shipped_job("quickstart.toml", tmp_path)
    assert "result:" in done.stdout and "6 clusters" in done.stdout
    assert (tmp_path / "results/quickstart/result.png").stat().st_size > 10_000
    result = zarr.open_group(str(tmp_path / "results/quickstart/result.zarr"), mode="r")
    assert result.attrs["complete"] is True
    labels = result["labels"][:]
    X = zarr.open_array(str(tmp_path / "results/quickstart/blobs.zarr/X"), mode="r")
    assert labels.shape == (X.shape[0],)
    assert labels.dtype == np.int8  # the smallest type for 6 clusters and -1
    model = MeanShift(
        result.attrs["bandwidth"], bin_seeding=True, kernel="gaussian"
    ).fit(X[:])
    np.testing.assert_allclose(result["cluster_centers"][:], model.cluster_centers_)
    np.testing.assert_array_equal(labels, model.labels_)
    assert result["cluster_sizes"][:].sum() == X.shape[0]
    # A second run without overwrite refuses and leaves the result intact.
    job = tmp_path / "quickstart.toml"
    job.write_text(job.read_text().replace("overwrite = true", "overwrite = false"))
    again = run_cli("run", job, cwd=tmp_path)
    assert again.returncode == 2
    assert "already exists. Pass --overwrite" in again.stderr
    assert zarr.open_group(str(tmp_path / "results/quickstart/result.zarr")).attrs[
        "complete"
    ]


@pytest.mark.parametrize(
    "text,message",
    [
        ("[input\npath = 1", "is not valid TOML"),
        (
            '[input]\npath = "x.zarr"\n[model]\nbandwith = 1.0\n',
            "Unknown key 'model.bandwith'",
        ),
        (
            '[input]\npath = "x.zarr"\n[model]\nbandwidth = "wide"\n',
            "Key 'model.bandwidth' in the job file must be of type int or float",
        ),
        ("[model]\nbandwidth = 1.0\n", "has no input path"),
        ('[input]\npath = "missing.zarr"\n', "Input 'missing.zarr' does not exist"),
        ('[input]\npath = "x.zarr"\n[extra]\na = 1\n', "Unknown section [extra]"),
    ],
    ids=[
        "not-toml",
        "unknown-key",
        "wrong-type",
        "no-input",
        "missing-input",
        "section",
    ],
)
def test_bad_job_files_exit_2_with_one_line(tmp_path, text, message):
    job = tmp_path / "job.toml"
    job.write_text(text)
    done = run_cli("run", job, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.result.zarr"))


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    where = tmp_path_factory.mktemp("blobs")
    done = run_cli(
        "make-blobs",
        "blobs.zarr",
        "--n-samples",
        3000,
        "--n-features",
        2,
        "--centers",
        3,
        "--seed",
        1,
        "--chunk-rows",
        700,
        cwd=where,
    )
    assert done.returncode == 0, done.stderr
    X = zarr.open_array(str(where / "blobs.zarr/X"), mode="r")[:]
    return where / "blobs.zarr", X


def test_make_blobs_writes_chunked_data_and_true_labels(blobs):
    path, _ = blobs
    group = zarr.open_group(str(path), mode="r")
    assert group["X"].shape == (3000, 2) and group["X"].chunks == (700, 2)
    assert group["X"].dtype == np.float32
    assert set(np.unique(group["y"][:])) == {0, 1, 2}
    assert group.attrs["complete"] is True


def test_fit_predict_and_inspect(blobs, tmp_path):
    path, X = blobs
    done = run_cli(
        "fit",
        path,
        "--array",
        "X",
        "--out",
        "fit.zarr",
        "--bandwidth",
        2.0,
        "--kernel",
        "flat",
        "--bin-seeding",
        "--max-iter",
        50,
        "--no-cluster-all",
        "--report",
        "report.html",
        "--plot",
        "fit.png",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    result = zarr.open_group(str(tmp_path / "fit.zarr"), mode="r")
    ref = MeanShift(
        2.0, kernel="flat", bin_seeding=True, max_iter=50, cluster_all=False
    ).fit(X)
    np.testing.assert_array_equal(result["labels"][:], ref.labels_)
    assert result["labels"].chunks == (700,)
    assert result.attrs["params"]["cluster_all"] is False
    assert result.attrs["input"]["shape"] == [3000, 2]
    assert {"dask", "zarr", "numpy"} <= set(result.attrs["versions"])
    assert len(result.attrs["trace"]) == result.attrs["n_iter"] + 1
    assert (tmp_path / "report.html").stat().st_size > 1000
    assert (tmp_path / "fit.png").stat().st_size > 1000

    np.save(tmp_path / "new.npy", X[:100].astype(np.float64))
    done = run_cli("predict", "fit.zarr", "new.npy", "--out", "pred.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    pred = zarr.open_group(str(tmp_path / "pred.zarr"), mode="r")["labels"][:]
    np.testing.assert_array_equal(pred, ref.predict(X[:100]))

    shown = run_cli("inspect", "fit.zarr", cwd=tmp_path)
    assert shown.returncode == 0
    assert "result: complete, 3 clusters" in shown.stdout
    data = run_cli("inspect", path, cwd=tmp_path)
    assert "X: shape (3000, 2), dtype float32" in data.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["fit", "missing.zarr", "--out", "o.zarr"], "Input 'missing.zarr' does not"),
        (["fit", "BLOBS", "--out", "o.zarr"], "Name the one to cluster with --array"),
        (["fit", "BLOBS", "--array", "Z", "--out", "o.zarr"], "has no array 'Z'"),
        (
            ["fit", "BLOBS", "--array", "X", "--out", "BLOBS/inside.zarr"],
            "lies inside it",
        ),
        (
            ["fit", "BLOBS", "--array", "X", "--out", "o.zarr", "--bandwidth", "-1"],
            "'bandwidth' parameter of MeanShift must be",
        ),
        (
            ["predict", "BLOBS", "BLOBS", "--array", "X", "--out", "p.zarr"],
            "it is not a dist-meanshift result",
        ),
        (["inspect", "nowhere"], "'nowhere' does not exist"),
        (["fit", "BLOBS", "--kernel", "cosine", "--out", "o.zarr"], "cosine"),
    ],
    ids=[
        "missing",
        "group",
        "no-array",
        "inside",
        "bandwidth",
        "model",
        "inspect",
        "kernel",
    ],
)
def test_bad_command_lines_exit_2_with_one_line(blobs, tmp_path, args, message):
    path, _ = blobs
    done = cli(
        *(str(path) if a == "BLOBS" else a.replace("BLOBS", str(path)) for a in args),
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.timeout(300)
def test_image_job_segments_the_photograph(tmp_path):
    from PIL import Image

    _run_shipped_job("image.toml", tmp_path)
    with Image.open(tmp_path / "results/image/segmented.png") as img:
        assert img.size == (640, 427)
        colours = np.unique(np.asarray(img).reshape(-1, 3), axis=0)
    result = zarr.open_group(str(tmp_path / "results/image/result.zarr"), mode="r")
    # Every pixel is painted with one of the cluster colours.
    assert len(colours) == result["cluster_centers"].shape[0]
    # The shipped job converges (no center still moving at max_iter).
    assert result.attrs["converged"] is True
    assert result.attrs["trace"][-1]["n_active"] == 0


def test_progress_bar_on_a_terminal_quiet_and_verbose(blobs, tmp_path):
    path, _ = blobs
    fit = f"fit {path} --array X --bandwidth 2.0 --kernel flat --out"
    on_tty = subprocess.run(
        [
            "script",
            "-qec",
            f"{sys.executable} -m dist_meanshift {fit} tty.zarr",
            "/dev/null",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert on_tty.returncode == 0, on_tty.stdout
    assert "mean shift" in on_tty.stdout and "moving, largest shift" in on_tty.stdout
    piped = cli(*fit.split(), "piped.zarr", cwd=tmp_path)
    assert "mean shift  [" not in piped.stdout and "result:" in piped.stdout
    quiet = cli("-q", *fit.split(), "quiet.zarr", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
    verbose = cli("-v", *fit.split(), "verbose.zarr", cwd=tmp_path)
    assert "DEBUG" in verbose.stderr or "INFO dist_meanshift" in verbose.stderr


@pytest.mark.timeout(300)
def test_large_job_runs_scaled_down_on_memory_limited_workers(tmp_path):
    job = tmp_path / "large.toml"
    text = (ROOT / "jobs" / "large.toml").read_text()
    job.write_text(
        text.replace("n_samples = 200000000", "n_samples = 2000000").replace(
            "chunk_rows = 1000000", "chunk_rows = 250000"
        )
    )
    done = cli("run", job, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "8 clusters" in done.stdout
    result = zarr.open_group(str(tmp_path / "results/large/result.zarr"), mode="r")
    assert result.attrs["complete"] is True
    # The memory plan keeps the input's chunks or splits them to fit the
    # workers (numba's compiled loops hold some 110 MiB of each).
    assert result["labels"].chunks[0] <= 250000
    assert result["cluster_sizes"][:].sum() == 2_000_000


def test_help_answers_without_loading_dask_or_scikit_learn(tmp_path):
    code = (
        "import sys; from click.testing import CliRunner;"
        "from dist_meanshift.cli import main;"
        "out = CliRunner().invoke(main, ['--help']).output;"
        "assert 'run' in out, out;"
        "print(sorted({'dask', 'sklearn', 'distributed'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"
    import dist_meanshift

    assert dist_meanshift.MeanShift is MeanShift
    assert "mean_shift" in dir(dist_meanshift)
    with pytest.raises(AttributeError, match="no attribute 'KMeans'"):
        dist_meanshift.KMeans  # noqa: B018
