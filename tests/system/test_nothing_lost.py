"""Nothing lost: links, earlier results and outputs in use, on real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import zarr
from commands import cli
from test_bad_input import _snapshot

from dist_meanshift._outputs import output_lock

pytestmark = pytest.mark.timeout(300)

FIT = ["fit", "data.zarr", "--array", "X"]
BLOBS = ["--n-samples", 3000, "--n-features", 2, "--centers", 3, "--chunk-rows", 1000]


def _one_error_line(done, code=2):
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture
def data(tmp_path):
    done = cli("make-blobs", "data.zarr", *BLOBS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return tmp_path


def test_output_through_a_link_to_the_input_deletes_nothing(data):
    os.symlink("data.zarr", data / "link.zarr")
    before = _snapshot(data)
    for inp, out in (("link.zarr", "data.zarr"), ("data.zarr", "link.zarr")):
        args = f"fit {inp} --array X --out {out} --overwrite --bandwidth 2"
        done = cli(*args.split(), cwd=data)
        line = _one_error_line(done)
        assert "link" in line or "is the input" in line
        assert _snapshot(data) == before


def test_a_dataset_is_never_replaced_as_if_it_were_a_result(data):
    done = cli("make-blobs", "other.zarr", *BLOBS, cwd=data)
    assert done.returncode == 0
    before = _snapshot(data)
    done = cli(
        *FIT,
        "--out",
        "other.zarr",
        "--overwrite",
        "--bandwidth",
        2,
        cwd=data,
    )
    assert "is not a dist-meanshift result" in _one_error_line(done)
    assert _snapshot(data) == before


def test_an_output_that_is_a_link_to_an_earlier_result_is_refused(data):
    fit = [*FIT, "--bandwidth", 2, "--kernel", "flat"]
    assert cli(*fit, "--out", "first.zarr", cwd=data).returncode == 0
    os.symlink("first.zarr", data / "link.zarr")
    before = _snapshot(data)
    done = cli(*fit, "--out", "link.zarr", "--overwrite", cwd=data)
    assert "is a symbolic link" in _one_error_line(done)
    assert _snapshot(data) == before


def test_a_killed_overwrite_leaves_the_earlier_result_as_it_was(data):
    fit = [*FIT, "--bandwidth", 0.3, "--out", "r.zarr"]
    assert cli(*fit, "--kernel", "flat", cwd=data).returncode == 0
    earlier = _snapshot(data / "r.zarr")
    # A long Gaussian fit over it, killed once it has recorded an iteration.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dist_meanshift",
            *map(str, fit),
            "--overwrite",
            "--max-iter",
            "100000",
        ],
        cwd=data,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    partial = data / f"r.zarr.partial-{proc.pid}"
    while proc.poll() is None and not (partial / "state" / "zarr.json").exists():
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it recorded an iteration"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert _snapshot(data / "r.zarr") == earlier
    assert zarr.open_group(str(data / "r.zarr"), mode="r").attrs["complete"] is True
    # A later overwrite completes and replaces it.
    done = cli(*fit, "--overwrite", cwd=data)
    assert done.returncode == 0, done.stderr
    result = zarr.open_group(str(data / "r.zarr"), mode="r")
    assert result.attrs["params"]["kernel"] == "gaussian"
    assert len(result["labels"][:]) == 3000


HOLD = """
import time
from dist_meanshift._outputs import output_lock
with output_lock("r.zarr"):
    print("held", flush=True)
    time.sleep(600)
"""


def test_one_run_per_output_and_a_dead_holder_is_taken_over(data):
    fit = [*FIT, "--bandwidth", 2, "--out", "r.zarr"]
    with output_lock(data / "r.zarr"):
        done = cli(*fit, cwd=data)
        line = _one_error_line(done)
        assert f"pid {os.getpid()} on host" in line and "another run" in line
    assert not (data / "r.zarr").exists()
    # A holder killed with SIGKILL leaves its lock file; the next run takes it.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD,
        ],
        cwd=data,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    assert "another run" in _one_error_line(cli(*fit, cwd=data))
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    holder.stdout.close()
    assert (data / "r.zarr.lock").exists()
    done = cli(*fit, cwd=data)
    assert done.returncode == 0, done.stderr
    assert not (data / "r.zarr.lock").exists()
    assert np.asarray(zarr.open_group(str(data / "r.zarr"))["labels"]).shape == (3000,)


def _centers(values):
    def damage(model):
        group = zarr.open_group(str(model), mode="r+")
        group.create_array("cluster_centers", data=np.asarray(values), overwrite=True)

    return damage


def _chunk_file(model):
    return next(
        p
        for p in (model / "cluster_centers").rglob("*")
        if p.is_file() and p.name != "zarr.json"
    )


def _delete_chunk(model):
    _chunk_file(model).unlink()


def _garble_chunk(model):
    _chunk_file(model).write_bytes(b"\x00garbage\xff" * 3)


def _complete_as_string(model):
    zarr.open_group(str(model), mode="r+").attrs["complete"] = "false"


MODEL_DAMAGE = {
    "nan": (_centers([[0.0, np.nan], [1.0, 1.0]]), "NaN or infinite"),
    "inf": (_centers([[0.0, np.inf], [1.0, 1.0]]), "NaN or infinite"),
    "complex": (_centers([[0.0 + 1j, 0.0], [1.0, 1.0]]), "not real numbers"),
    "one-d": (_centers([0.0, 1.0]), "shape (2,)"),
    "no-rows": (_centers(np.zeros((0, 2))), "shape (0, 2)"),
    "missing-chunk": (_delete_chunk, "chunks missing"),
    "undecodable-chunk": (_garble_chunk, "unreadable"),
    "complete-string": (_complete_as_string, "not a complete dist-meanshift result"),
}


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    where = tmp_path_factory.mktemp("model")
    assert cli("make-blobs", "data.zarr", *BLOBS, cwd=where).returncode == 0
    done = cli(
        *FIT,
        "--bandwidth",
        2,
        "--kernel",
        "flat",
        "--out",
        "model.zarr",
        cwd=where,
    )
    assert done.returncode == 0, done.stderr
    return where


@pytest.mark.parametrize("case", list(MODEL_DAMAGE))
def test_predict_refuses_a_damaged_model_and_writes_nothing(fitted, tmp_path, case):
    import shutil

    damage, message = MODEL_DAMAGE[case]
    shutil.copytree(fitted / "model.zarr", tmp_path / "model.zarr")
    np.save(tmp_path / "new.npy", np.zeros((10, 2)))
    damage(tmp_path / "model.zarr")
    before = _snapshot(tmp_path)
    done = cli("predict", "model.zarr", "new.npy", "--out", "pred.zarr", cwd=tmp_path)
    assert message in _one_error_line(done)
    assert _snapshot(tmp_path) == before


CHANGING_JOB = """
[input]
path = "data.zarr"
array = "X"

[model]
kernel = "gaussian"
bandwidth = 0.3
tol = 1e-7
persist = false

[output]
path = "out.zarr"
"""


def test_a_chunk_deleted_under_a_streamed_run_stops_it(data):
    proc = _start_run(data)
    _wait_for_a_record(data, proc)
    (data / "data.zarr" / "X" / "c" / "1" / "0").unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "rows 1000-1999" in lines[0] and "changed during the run" in lines[0]
    assert zarr.open_group(str(data / "out.zarr"), mode="r").attrs["complete"] is False


def test_a_chunk_rewritten_between_iterations_stops_the_fit(data):
    from dist_meanshift import MeanShift
    from dist_meanshift._files import InputChanged

    chunk = data / "data.zarr" / "X" / "c" / "2" / "0"
    model = MeanShift(0.3, persist=False, tol=1e-7)
    with pytest.raises(InputChanged, match=r"rows 2000-2999 .* changed during the run"):
        for state in model.fit_iter(str(data / "data.zarr" / "X")):
            if state.iteration == 1:
                chunk.write_bytes(chunk.read_bytes())  # same bytes, a new write
                stat = chunk.stat()
                os.utime(chunk, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))


def _start_run(where, *extra, job="job.toml", env=None):
    if job == "job.toml":
        (where / job).write_text(CHANGING_JOB)
    return subprocess.Popen(
        [sys.executable, "-m", "dist_meanshift", "run", job, *extra],
        cwd=where,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _wait_for_a_record(where, proc):
    """Until the output records a whole iteration's state (as --resume reads it)."""
    state = where / "out.zarr" / "state" / "zarr.json"
    while proc.poll() is None and not _recorded(state):
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it recorded an iteration"


def _killed_midway(where, proc, pid):
    """SIGKILL ``pid`` once the run recorded an iteration; its one error line."""
    _wait_for_a_record(where, proc)
    os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _recorded(state):
    try:
        return "current" in json.loads(state.read_text())["attributes"]
    except (FileNotFoundError, ValueError, KeyError):
        return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_run_in_one_line_and_resume_continues(data, signum):
    scratch = data / "tmp"
    scratch.mkdir()
    proc = _start_run(data, env={"TMPDIR": str(scratch)})
    _wait_for_a_record(data, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"stopped by {signal.Signals(signum).name}" in lines[0]
    assert "dist-meanshift run job.toml --resume" in lines[0]
    assert not list(scratch.iterdir())  # the workers' scratch space is gone
    assert zarr.open_group(str(data / "out.zarr"), mode="r").attrs["complete"] is False
    done = cli("run", "job.toml", "--resume", cwd=data)
    assert done.returncode == 0, done.stderr
    assert "resuming after iteration" in done.stdout


def test_a_lost_scheduler_ends_the_run_in_one_line_naming_resume(data):
    from clusters import dask_cluster
    from distributed import Client

    with dask_cluster(data, n_workers=1) as address:
        with Client(address) as client:
            pid = client.run_on_scheduler(os.getpid)
        line = _killed_midway(data, _start_run(data, "--scheduler", address), pid)
    assert "lost the connection to the Dask scheduler" in line
    assert f"run dist-meanshift run job.toml --scheduler {address} --resume" in line


def test_a_closed_pipe_ends_the_command_quietly(data):
    proc = subprocess.Popen(
        [sys.executable, "-m", "dist_meanshift", "inspect", "data.zarr"],
        cwd=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # as `| head` does once it has read enough
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait() == 0 and err == b""


def test_an_estimated_bandwidth_of_zero_says_so(tmp_path):
    np.save(tmp_path / "same.npy", np.ones((50, 2)))
    done = cli("fit", "same.npy", "--out", "o.zarr", cwd=tmp_path)
    line = _one_error_line(done)
    assert "estimated bandwidth is 0 (all sampled rows are identical" in line
    assert "pass --bandwidth" in line
    assert not (tmp_path / "o.zarr").exists()


def test_successful_runs_print_no_warnings(tmp_path):
    rs = np.random.RandomState(0)
    # 2,000,000 labels in memory (16 MB): once sent in a task graph, warned.
    np.save(tmp_path / "big.npy", rs.normal(size=(2_000_000, 2)).astype(np.float32))
    np.save(tmp_path / "wide.npy", rs.normal(size=(300, 256)))
    for name, h in (("big", 3.0), ("wide", 30.0)):
        done = cli(
            "-q",
            "fit",
            f"{name}.npy",
            "--out",
            f"{name}.zarr",
            "--bandwidth",
            h,
            "--kernel",
            "flat",
            "--bin-seeding" if name == "big" else "--max-iter",
            *([] if name == "big" else [300]),
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr


def _job_on(where, address):
    text = CHANGING_JOB.replace(
        "[output]", f'[cluster]\nscheduler = "{address}"\nstall_timeout = 2\n\n[output]'
    )
    (where / "remote.toml").write_text(text)


def test_a_memory_limit_no_plan_fits_names_the_smallest_that_works(data):
    before = _snapshot(data)
    small = (
        "--out o.zarr --bandwidth 2 --kernel flat --n-workers 1 --memory-limit 40MiB"
    )
    done = cli(*FIT, *small.split(), cwd=data)
    line = _one_error_line(done)
    assert "No memory plan fits" in line and "before any data" in line
    assert _snapshot(data) == before
    # The limit it names is enough: the same run with it clusters the data.
    named = line.split("at least ")[1].split(" MiB")[0]
    done = cli(*FIT, *small.replace("40MiB", f"{named}MiB").split(), cwd=data)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "3 clusters" in done.stdout


def test_workers_stopped_as_they_start_are_refused_in_one_line(data):
    # Worker processes of 64 MiB: their nannies stop them as they load Python
    # (distributed would raise KilledWorker after the first tasks, or wait).
    job = data / "tiny.toml"
    job.write_text(
        '[input]\npath = "data.zarr"\narray = "X"\n\n'
        '[model]\nkernel = "flat"\nbandwidth = 2\n\n'
        '[cluster]\nn_workers = 1\nprocesses = true\nmemory_limit = "64MiB"\n\n'
        '[output]\npath = "o.zarr"\n'
    )
    before = _snapshot(data)
    line = _one_error_line(cli("run", "tiny.toml", cwd=data))
    assert "workers of 64 MiB are stopped as soon as they load Python" in line
    assert "Raise the memory limit to at least" in line
    assert _snapshot(data) == before


def test_paused_workers_end_the_run_in_one_line(data):
    from clusters import dask_cluster
    from distributed import Client

    # Workers that pause over 1% of their limit: paused from the start.
    pause = {"DASK_DISTRIBUTED__WORKER__MEMORY__PAUSE": "0.01"}
    with dask_cluster(data, n_workers=1, memory_limit="1GiB", worker_env=pause) as a:
        with Client(a) as client:
            client.wait_for_workers(1, timeout=60)
        _job_on(data, a)
        done = cli("run", "remote.toml", cwd=data)
    line = _one_error_line(done, code=1)
    assert "every worker is paused over its memory limit (1024 MiB)" in line
    assert "raise the memory limit" in line


def test_a_cluster_whose_workers_die_ends_the_run_in_one_line(data):
    from clusters import dask_cluster
    from distributed import Client

    with dask_cluster(data, n_workers=1, worker=["--no-nanny"]) as address:
        with Client(address) as client:
            client.wait_for_workers(1, timeout=60)
            (pid,) = client.run(os.getpid).values()
        _job_on(data, address)
        line = _killed_midway(data, _start_run(data, job="remote.toml"), pid)
    assert "the cluster has no worker" in line


def test_sigterm_before_any_record_leaves_no_output(data):
    proc = _start_run(data)
    out = data / "out.zarr"
    while proc.poll() is None and not (out / "zarr.json").exists():
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    # Either nothing was recorded yet and nothing is left, or the output holds
    # a resumable state; never an empty or complete-looking directory.
    # The message says which, and names a command that works.
    line = err.strip().splitlines()[-1]
    if out.exists():
        assert _recorded(out / "state" / "zarr.json")
        assert zarr.open_group(str(out), mode="r").attrs["complete"] is False
        assert "--resume" in line and "is kept" in line, line
    else:
        assert "nothing was kept" in line and "--resume" not in line, line
    assert not (data / "out.zarr.lock").exists()


@pytest.fixture
def small_fs(tmp_path):
    """A 16 KiB tmpfs at tmp_path / "fs" (root only); yields a mount function."""
    where = tmp_path / "fs"
    where.mkdir()
    mounted = []

    def mount(*options):
        opts = ",".join(("size=16k", *options))
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small filesystem here: {done.stderr!r}")
        mounted.append(where)
        return where

    yield mount
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


@pytest.mark.parametrize(
    "options,message,code",
    [
        ((), "filesystem is full", 1),
        # A read-only folder is refused before any work, as bad input.
        (("ro",), "is not writable", 2),
    ],
)
def test_a_full_or_read_only_filesystem_ends_in_one_line(
    tmp_path, small_fs, options, message, code
):
    rs = np.random.RandomState(0)
    np.save(tmp_path / "x.npy", rs.normal(size=(200_000, 2)).astype(np.float32))
    before = _snapshot(tmp_path)
    fs = small_fs(*options)
    done = cli(
        "fit",
        "x.npy",
        "--out",
        fs / "o.zarr",
        # Some 90 KiB of result (over the 16 KiB), fitted in seconds: with
        # bandwidth 3 every seed of every row held every row (240 s).
        "--bandwidth",
        0.5,
        "--bin-seeding",
        "--kernel",
        "flat",
        cwd=tmp_path,
    )
    line = _one_error_line(done, code=code)
    assert message in line and "choose another" in line.lower()
    assert not list(fs.iterdir())  # nothing complete-looking, no lock
    assert _snapshot(tmp_path) == before  # the input, and the empty mount point


def test_the_exit_after_a_signal_is_bounded_when_a_thread_never_ends():
    # A signal can interrupt a thread pool between starting a worker thread
    # and registering it: the interpreter then waits for that thread at exit.
    # Here a thread that never ends stands for it: the command's exit after
    # the signal's message still ends the process, with the signal's code.
    script = (
        "import sys, threading\n"
        "from dist_meanshift import _exits\n"
        "_exits.EXIT_GRACE = 0.5\n"
        "threading.Thread(target=threading.Event().wait).start()\n"
        "_exits._bound_the_exit(143)\n"
        "sys.exit(143)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=120)
    assert done.returncode == 143
