"""The ``dist-meanshift`` command: click commands, and errors turned into exit codes.

Exit codes: 0 done; 2 bad usage or bad input (one line on stderr, no
traceback); 1 a failure while running (one line, details with ``-v``);
128 + n when stopped by signal n (SIGINT 130, SIGTERM 143). Jobs run in
:func:`~.runner.run_job`; the options of ``fit`` come from the parameter
table in ``_params``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import click

from . import __version__
from ._params import COMMAND
from .errors import ClusterStalled, InputError, RunError
from .jobs import Job, JobError

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
        super().__init__(
            f"stopped by {name}; the state of the last finished iteration is kept "
            f"in the output: run {_resume_command()} to continue"
        )
        self.exit_code = 128 + signum


class _Terminate(BaseException):
    """Raised in the main thread by SIGTERM, as KeyboardInterrupt is by SIGINT.

    A BaseException, so that no ``except Exception`` swallows it: context
    managers close the cluster (removing its scratch directories) on the way.
    """


#: Signals received: the run also stops at the next iteration's end if an
#: exception raised by the handler was swallowed on its way up.
_SIGNALLED = []


def _on_signal(signum, frame):
    _SIGNALLED.append(signum)
    raise KeyboardInterrupt if signum == signal.SIGINT else _Terminate


def _check_signals():
    if _SIGNALLED:
        raise _Terminate


def _resume_command():
    """This command line with --resume added (to continue a stopped run)."""
    import shlex

    # --overwrite would start afresh: resuming continues the stopped run.
    args = [a for a in sys.argv[1:] if a != "--overwrite"]
    resume = [] if "--resume" in args else ["--resume"]
    return shlex.join(["dist-meanshift", *args, *resume])


class _Command(click.Group):
    """One line on stderr for every error: usage (2), input (2), failure (1)."""

    def main(self, *args, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            click.echo(f"dist-meanshift: error: {exc.format_message()}{hint}", err=True)
            sys.exit(EXIT_BAD_INPUT)
        except click.ClickException as exc:
            exc.show()
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


@click.group(cls=_Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dist-meanshift")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.pass_context
def main(ctx, verbose, quiet):
    """Mean shift clustering at any scale, on Dask."""
    ctx.obj = {"quiet": quiet, "verbose": verbose}
    _setup_logging(verbose)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM is how SLURM and Kubernetes stop jobs: end as Ctrl-C does.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _on_signal)


class _TableValue(click.ParamType):
    """A model parameter's value, parsed and checked by its row of the table."""

    def __init__(self, param):
        self.param = param
        self.name = param.kind

    def convert(self, value, option, ctx):
        try:
            return self.param.check(self.param.parse(value))
        except ValueError as exc:
            self.fail(str(exc), option, ctx)


def _model_option(p):
    name = "--" + p.name.replace("_", "-")
    shown = p.default is not None
    if p.kind == "bool" and not p.literals:
        flags = f"{name}/--no-{name[2:]}"
        return click.option(
            flags, p.name, default=p.default, help=p.doc, show_default=shown
        )
    if p.kind == "str":
        kind = click.Choice(p.choices)
    else:
        kind = _TableValue(p)
    words = [*p.literals, "true", "false"] if p.kind == "bool" else [p.kind.upper()]
    if p.kind != "bool":
        words += p.literals
    return click.option(
        name,
        p.name,
        type=kind,
        default=p.default,
        help=p.doc,
        show_default=shown,
        metavar=None if p.kind == "str" else "|".join(words),
    )


_cluster_options = [
    click.option("--scheduler", help="Address of a running Dask scheduler."),
    click.option("--report", help="Write a Dask performance report (HTML) here."),
    click.option("--plot", help="Write a PNG picture of the result here."),
]


def _with(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--out", help="Output zarr path (overrides output.path).")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the output.")
@click.option(
    "--resume", is_flag=True, help="Continue a stopped run from its last iteration."
)
@_with(_cluster_options)
@click.pass_context
def run(ctx, job_file, out, overwrite, resume, scheduler, report, plot):
    """Run the job described by JOB_FILE (TOML)."""
    try:
        job = Job.load(job_file)
    except JobError as exc:
        raise BadInput(str(exc)) from exc
    job.override("output", path=out, overwrite=overwrite, report=report, plot=plot)
    job.override("cluster", scheduler=scheduler)
    _execute(ctx, job, resume=resume)


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Output zarr path.")
@click.option("--array", help="Array name when INPUT is a zarr group.")
@_with([_model_option(p) for p in COMMAND])
@click.option("--n-workers", type=int, help="Workers of the local cluster.")
@click.option("--threads-per-worker", type=int, help="Threads per local worker.")
@click.option("--memory-limit", help="Memory per local worker, e.g. 2GiB.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the output.")
@_with(_cluster_options)
@click.pass_context
def fit(ctx, input_path, out, array, **options):
    """Cluster INPUT (zarr array or group, or .npy) and write the result to --out."""
    job = Job(input={"path": input_path})
    job.override("input", array=array)
    job.override("output", path=out, **_pop(options, "overwrite", "report", "plot"))
    cluster_keys = ("scheduler", "n_workers", "threads_per_worker", "memory_limit")
    job.override("cluster", **_pop(options, *cluster_keys))
    # Only the parameters given: a None (e.g. --truncate none) is given too.
    given = {
        k: v
        for k, v in options.items()
        if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
    }
    job.model.update(given)
    _execute(ctx, job)


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Output zarr path.")
@click.option("--array", help="Array name when INPUT is a zarr group.")
@click.option("--overwrite", is_flag=True, help="Replace the output.")
@click.option("--scheduler", help="Address of a running Dask scheduler.")
@click.pass_context
def predict(ctx, model_path, input_path, out, array, overwrite, scheduler):
    """Label INPUT with the clusters of a fitted result MODEL."""
    from ._outputs import check_output_path, output_lock
    from .cluster import connect
    from .io import open_input
    from .results import load_model, write_result

    model = load_model(model_path)
    data = open_input(input_path, array)
    check_output_path(out, overwrite, (input_path, model_path))
    with output_lock(out), connect({"scheduler": scheduler} if scheduler else {}):
        labels = model.predict(data)
        attrs = {
            "model": os.path.abspath(model_path),
            "input": {"path": os.path.abspath(input_path), "shape": list(data.shape)},
            "version": __version__,
        }
        sizes = write_result(
            out,
            labels=labels,
            centers=model.cluster_centers_,
            attrs=attrs,
            overwrite=overwrite,
        )
    _echo(ctx, f"labelled {sum(sizes)} points into {len(sizes)} clusters")
    _echo(ctx, f"result: {os.path.abspath(out)}")


@main.command("make-blobs")
@click.argument("output")
@click.option("--n-samples", type=click.IntRange(1), required=True)
@click.option("--n-features", type=click.IntRange(1), required=True)
@click.option("--centers", type=click.IntRange(1), required=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--chunk-rows", type=click.IntRange(1), default=100_000, show_default=True
)
@click.option("--overwrite", is_flag=True, help="Replace the output.")
@click.pass_context
def make_blobs(ctx, output, overwrite, **options):
    """Write a demo blobs dataset (X, y, centers) to a zarr group, chunk by chunk."""
    from ._outputs import BLOBS_FORMAT, check_output_path, output_lock
    from .io import make_blobs_zarr

    check_output_path(output, overwrite, replaceable=(BLOBS_FORMAT,))
    with output_lock(output):
        make_blobs_zarr(output, **options)
    _echo(ctx, f"wrote {options['n_samples']} x {options['n_features']} to {output}/X")


@main.command()
@click.argument("path")
def inspect(path):
    """Print what a dataset or a result holds."""
    from .results import describe

    if not os.path.exists(path):
        raise BadInput(f"{path!r} does not exist. Check the path.")
    for line in describe(path):
        click.echo(line)


def _execute(ctx, job, resume=False):
    from .runner import run_job

    quiet = ctx.obj["quiet"]
    echo = (lambda *_: None) if quiet else click.echo
    progress = _with_progress if not quiet and sys.stdout.isatty() else None
    result = run_job(
        job, resume=resume, echo=echo, progress=progress, after_iteration=_check_signals
    )
    echo(result.summary)


def _with_progress(states, length):
    """The states, shown on a progress bar."""

    def show(state):
        if state is None:
            return ""
        return f"{state.n_active} moving, largest shift {state.max_shift:.3g}"

    with click.progressbar(
        length=length,
        label="mean shift",
        item_show_func=show,
        show_eta=False,  # most fits converge long before max_iter
    ) as bar:
        for state in states:
            yield state
            bar.update(1, state)
        bar.update(bar.length - bar.pos)


def _pop(options, *keys):
    return {k: options.pop(k) for k in keys}


def _echo(ctx, line):
    if not ctx.obj["quiet"]:
        click.echo(line)


def _setup_logging(verbose):
    # distributed sets its loggers' levels when first imported: import it
    # first so that the levels below hold.
    import distributed  # noqa: F401

    level = logging.DEBUG if verbose else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # distributed's own logs (a lost scheduler, a failed task, the cluster
    # closing after it) go to our handler with -v only: without it the error
    # is the one line the command prints. Its workers are chatty below INFO.
    dist = logging.getLogger("distributed")
    # A handler of its own: LocalCluster(silence_logs=...) sets the level of
    # every handler of the "distributed" logger.
    dist_handler = logging.StreamHandler()
    dist_handler.setFormatter(handler.formatter)
    dist.handlers[:] = [dist_handler]
    dist.propagate = False
    dist.setLevel(logging.INFO if verbose else logging.CRITICAL)
    # Some of its loggers (distributed.client) carry their own handler and level.
    for name, child in list(logging.root.manager.loggerDict.items()):
        if name.startswith("distributed.") and isinstance(child, logging.Logger):
            child.handlers[:] = []
            child.propagate = True
            child.setLevel(logging.NOTSET)
    # asyncio reports the client's gather task, cancelled by Ctrl-C, as an
    # exception never retrieved: the one-line message already says it.
    logging.getLogger("asyncio").setLevel(level if verbose else logging.CRITICAL)
