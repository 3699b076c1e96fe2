"""Real Dask scheduler and worker processes on 127.0.0.1, for CLI tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


@contextlib.contextmanager
def dask_cluster(
    tmp_path,
    n_workers=2,
    tls=None,
    timeout=60,
    memory_limit="2GiB",
    worker=(),
    worker_env=None,
    port=0,
):
    """Start `dask scheduler` and `dask worker` processes; yield the address.

    tls : dict, optional
        ``{"ca": path, "cert": path, "key": path}`` to serve tls:// only.
    memory_limit, worker, worker_env : the workers' memory limit, extra flags
        and environment variables.
    port : int, default=0
        The scheduler's port (0: any free one).
    """
    scheduler_file = Path(tmp_path) / "scheduler.json"
    flags = []
    if tls:
        flags = [
            "--tls-ca-file",
            tls["ca"],
            "--tls-cert",
            tls["cert"],
            "--tls-key",
            tls["key"],
        ]
    procs = []
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    try:
        procs.append(
            _start(
                [
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--dashboard-address",
                    ":0",
                    "--scheduler-file",
                    str(scheduler_file),
                    *(["--protocol", "tls"] if tls else []),
                    *flags,
                ],
                tmp_path / "scheduler.log",
                env,
            )
        )
        deadline = time.monotonic() + timeout
        while not scheduler_file.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        for i in range(n_workers):
            procs.append(
                _start(
                    [
                        "worker",
                        address,
                        "--name",
                        f"w{i}",
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--dashboard-address",
                        ":0",
                        "--memory-limit",
                        memory_limit,
                        *worker,
                        *flags,
                    ],
                    tmp_path / f"worker{i}.log",
                    {**env, **(worker_env or {})},
                )
            )
        yield address
    finally:
        for p in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def make_tls_files(tmp_path):
    """A self-signed certificate for 127.0.0.1, used as its own CA."""
    cert, key = Path(tmp_path) / "cert.pem", Path(tmp_path) / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return {"ca": str(cert), "cert": str(cert), "key": str(key)}


def _start(args, log, env):
    with open(log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dask", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
