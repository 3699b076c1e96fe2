"""The command under test: as a real subprocess, or in this process."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, cwd):
    """The command as a real subprocess: for exit codes, signals and kills."""
    return subprocess.run(
        [sys.executable, "-m", "dist_meanshift", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def run_cli(*args, cwd):
    """The command in this process (click's CliRunner), with what cli() returns.

    The command sets up logging for its own process; the loggers are put back
    as they were afterwards so that later tests see pytest's set-up.
    """
    from click.testing import CliRunner

    from dist_meanshift.cli import main

    names = (
        "dist_meanshift",
        "distributed",
        "distributed.worker",
        "distributed.batched",
        "asyncio",
    )
    saved = [
        (lg, lg.handlers[:], lg.level, lg.propagate)
        for lg in map(logging.getLogger, names)
    ]
    handlers = {n: signal.getsignal(n) for n in (signal.SIGINT, signal.SIGTERM)}
    here = os.getcwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(
            main, [str(a) for a in args], catch_exceptions=False
        )
    finally:
        os.chdir(here)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        for lg, handlers, level, propagate in saved:
            lg.handlers[:], lg.level, lg.propagate = handlers, level, propagate
    return types.SimpleNamespace(
        returncode=result.exit_code, stdout=result.stdout, stderr=result.stderr
    )
