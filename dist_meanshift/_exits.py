"""How the command ends: exit codes, one-line errors, and signals.

Exit codes: 0 done; 2 bad usage or bad input (one line on stderr, no
traceback); 1 a failure while running (one line, details with ``-v``);
128 + n when stopped by signal n (SIGINT 130, SIGTERM 143).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings

import click

from .errors import ClusterStalled, InputError, RunError

logger = logging.getLogger("dist_meanshift")
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """Bad usage or input: one line on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None):
        click.echo(f"dist-meanshift: error: {self.format_message()}", err=True)


class RunFailed(click.ClickException):
    """A failure while running: one line on stderr, exit code 1."""

    exit_code = EXIT_FAILED
    show = BadInput.show


class Stopped(RunFailed):
    """Stopped by a signal: one line, exit code 128 + the signal's number."""

    def __init__(self, signum):
        name = signal.Signals(signum).name
        if _state_kept():
            told = (
                "the state of the last finished iteration is kept in the output: "
                f"run {_resume_command()} to continue"
            )
        else:
            told = f"nothing was kept to resume: run {_again_command()} to start again"
        super().__init__(f"stopped by {name}; {told}")
        self.exit_code = 128 + signum


#: The result path of the run under way (set by the command before it runs).
OUTPUT = []


def _state_kept():
    """Whether the run's output holds a stopped run's recorded state now.

    Read from the metadata files themselves, not through zarr: a signal may
    have interrupted zarr in the middle of a call, and its I/O loop may not
    answer again in this process.
    """
    if not OUTPUT:
        return False
    import json

    from ._outputs import FORMAT, state_recorded

    path = OUTPUT[-1]
    try:
        with open(os.path.join(path, "zarr.json")) as f:
            root = json.load(f).get("attributes", {})
    except (OSError, ValueError, AttributeError):
        return False
    stopped = root.get("format") == FORMAT and root.get("complete") is False
    return stopped and state_recorded(path)


def _again_command():
    """This command line without --resume (nothing to resume from)."""
    import shlex

    return shlex.join(["dist-meanshift", *(a for a in sys.argv[1:] if a != "--resume")])


class _Terminate(BaseException):
    """Raised in the main thread by SIGTERM, as KeyboardInterrupt is by SIGINT.

    A BaseException, so that no ``except Exception`` swallows it: context
    managers close the cluster (removing its scratch directories) on the way.
    """


#: Signals received: the run also stops at the next iteration's end if an
#: exception raised by the handler was swallowed on its way up.
_SIGNALLED = []


def on_signal(signum, frame):
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt if signum == signal.SIGINT else _Terminate


def check_signals():
    if _SIGNALLED:
        raise _Terminate


#: Seconds the interpreter's shutdown may take after a signal stopped the run.
EXIT_GRACE = 10.0


def _bound_the_exit(code):
    """End the process with ``code`` if its shutdown hangs after a signal.

    A signal interrupts whatever the main thread was running, library code
    included: a thread pool interrupted between starting a worker thread and
    registering it leaves a thread that the interpreter waits for at exit,
    forever (seen once in 40 runs stopped while zarr wrote the output). The
    run's own cleanup has run by now; the usual exit follows, and if it has
    not finished within ``EXIT_GRACE`` seconds a daemon thread ends the
    process.
    """
    import threading

    def _end():
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)

    timer = threading.Timer(EXIT_GRACE, _end)
    timer.daemon = True
    timer.start()


def _resume_command():
    """This command line with --resume added (to continue a stopped run)."""
    import shlex

    # --overwrite would start afresh: resuming continues the stopped run.
    args = [a for a in sys.argv[1:] if a != "--overwrite"]
    resume = [] if "--resume" in args else ["--resume"]
    return shlex.join(["dist-meanshift", *args, *resume])


class Command(click.Group):
    """One line on stderr for every error: usage (2), input (2), failure (1)."""

    def main(self, *args, **kwargs):
        # A zarr write that fails (a full disk) abandons the coroutines of its
        # batch not yet started; Python warns of them as they are collected,
        # at exit, after the command's one-line error: noise, not news.
        warnings.filterwarnings(
            "ignore",
            message="coroutine '.*' was never awaited",
            category=RuntimeWarning,
        )
        # A dashboard whose port is taken moves to a free one; the command's
        # dashboard line names the port it got.
        warnings.filterwarnings(
            "ignore", message="Port .* is already in use", category=UserWarning
        )
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"dist-meanshift: error: {exc.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            exc.show()
            if isinstance(exc, Stopped):
                _bound_the_exit(exc.exit_code)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("dist-meanshift: error: aborted", err=True)
            sys.exit(EXIT_FAILED)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader stopped reading (`| head`): the output was cut short,
            # as asked. Later writes (and the flush at exit) go nowhere.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except (KeyboardInterrupt, _Terminate) as exc:
            sig = (
                signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
            )
            raise Stopped(_SIGNALLED[0] if _SIGNALLED else sig) from None
        except Exception as exc:
            raise _exit_error(exc) from exc


def _exit_error(exc):
    """The one-line error the command reports for ``exc``."""
    logger.debug("command failed", exc_info=exc)
    if isinstance(exc, ClusterStalled):  # its interrupt ran the SIGINT handler
        return RunFailed(exc.message)
    if _SIGNALLED:  # what the signal interrupted failed on its way out
        return Stopped(_SIGNALLED[0])
    if isinstance(exc, InputError | FileExistsError):
        return BadInput(str(exc).splitlines()[0] if str(exc) else repr(exc))
    if isinstance(exc, RunError):
        if exc.resume_when is None:
            return RunFailed(exc.message)
        return RunFailed(f"{exc.message}: {exc.resume_when}run {_resume_command()}")
    return RunFailed(f"{type(exc).__name__}: {exc} (rerun with -v for the full log)")
