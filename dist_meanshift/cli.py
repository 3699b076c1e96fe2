"""The ``dist-meanshift`` command: click commands, and errors turned into exit codes.

Exit codes and one-line errors: see ``_exits``. Jobs run in
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

from . import __version__, dask_cluster
from ._exits import BadInput, Command, check_signals, on_signal
from ._params import COMMAND
from .errors import one_line
from .jobs import Job, JobError

logger = logging.getLogger("dist_meanshift")


def _set_verbosity(ctx, param, value):
    """-q and -v, before or after the subcommand: the later ones add up."""
    obj = ctx.find_root().ensure_object(dict)
    if param.name == "quiet":
        obj["quiet"] = obj.get("quiet", False) or value
    else:
        obj["verbose"] = obj.get("verbose", 0) + value
    if value and ctx.parent is not None:  # given after the subcommand
        _setup_logging(obj["verbose"])


_verbosity = [
    click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Log each step (-vv: and debug messages).",
    ),
    click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="Print nothing but errors.",
    ),
]


def _with(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dist-meanshift")
@_with(_verbosity)
@click.pass_context
def main(ctx):
    """Mean shift clustering at any scale, on Dask."""
    _setup_logging(ctx.ensure_object(dict).get("verbose", 0))
    _threads_unless_a_cluster()
    if threading.current_thread() is threading.main_thread():
        # SIGTERM is how SLURM and Kubernetes stop jobs: end as Ctrl-C does.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, on_signal)


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


def _key_option(section, key, **given):
    """The option of a job-file key (``_job_file.KEYS``): its help and bounds."""
    from ._job_file import KEYS

    entry = KEYS[section][key]
    settings = {"help": entry.doc}
    if entry.types == (int,):
        settings["type"] = (
            int
            if entry.low is None
            else click.IntRange(entry.low, min_open=entry.open_below)
        )
    elif entry.types == (int, float):
        settings["type"] = (
            float
            if entry.low is None
            else click.FloatRange(entry.low, min_open=entry.open_below)
        )
    return click.option("--" + key.replace("_", "-"), key, **{**settings, **given})


_resume = click.option(
    "--resume", is_flag=True, help="Continue a stopped run from its last iteration."
)
_overwrite = click.option(
    "--overwrite", is_flag=True, default=None, help="Replace the output."
)
_cluster_options = [
    _key_option("cluster", "scheduler"),
    _key_option("cluster", "scheduler_file"),
    click.option("--report", help="Write a Dask performance report (HTML) here."),
    click.option(
        "--plot", help="Write a PNG (or SVG, PDF) picture of the result here."
    ),
    click.option(
        "--json", "as_json", is_flag=True, help="Print the result as JSON, not a table."
    ),
    *_verbosity,
]


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--out", help="Output zarr path (overrides output.path).")
@_with([_overwrite, _resume, *_cluster_options])
@click.pass_context
def run(ctx, job_file, out, overwrite, resume, as_json, **options):
    """Run the job described by JOB_FILE (TOML)."""
    try:
        job = Job.load(job_file)
    except JobError as exc:
        raise BadInput(str(exc)) from exc
    job.override(
        "output", path=out, overwrite=overwrite, **_pop(options, "report", "plot")
    )
    job.override("cluster", **options)
    _execute(ctx, job, resume=resume, as_json=as_json)


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Output zarr path.")
@click.option("--array", help="Array name when INPUT is a zarr group.")
@_with([_model_option(p) for p in COMMAND])
@_key_option("cluster", "n_workers")
@_key_option("cluster", "threads_per_worker")
@_key_option("cluster", "memory_limit", callback=lambda ctx, param, value: _size(value))
@_with([_overwrite, _resume, *_cluster_options])
@click.pass_context
def fit(ctx, input_path, out, array, resume, as_json, **options):
    """Cluster INPUT and write the result to --out.

    INPUT is a zarr array or group, a .npy file, a Parquet or CSV table (every
    numeric column), an image (TIFF, PNG, JPEG, OME-Zarr) or a NetCDF dataset;
    a job file names columns, variables and image options.
    """
    job = Job(input={"path": input_path})
    job.override("input", array=array)
    job.override("output", path=out, **_pop(options, "overwrite", "report", "plot"))
    cluster_keys = (
        "scheduler",
        "scheduler_file",
        "n_workers",
        "threads_per_worker",
        "memory_limit",
    )
    job.override("cluster", **_pop(options, *cluster_keys))
    # Only the parameters given: a None (e.g. --truncate none) is given too.
    given = {
        k: v
        for k, v in options.items()
        if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE
    }
    job.model.update(given)
    _execute(ctx, job, resume=resume, as_json=as_json)


@main.command()
@click.argument("model_path", metavar="MODEL")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Output zarr path.")
@click.option("--array", help="Array name when INPUT is a zarr group.")
@click.option("--overwrite", is_flag=True, help="Replace the output.")
@_key_option("cluster", "scheduler")
@_with(_verbosity)
@click.pass_context
def predict(ctx, model_path, input_path, out, array, overwrite, scheduler):
    """Label INPUT with the clusters of a fitted result MODEL."""
    from .runner import predict_input

    sizes = predict_input(
        model_path,
        input_path,
        out,
        array=array,
        overwrite=overwrite,
        scheduler=scheduler,
    )
    _echo(ctx, f"labelled {sum(sizes)} points into {len(sizes)} clusters")
    _echo(ctx, f"result: {os.path.abspath(out)}")


@main.command("make-blobs")
@click.argument("output")
@_key_option(
    "input.make_blobs", "n_samples", required=True, help="Rows of the dataset."
)
@_key_option("input.make_blobs", "n_features", required=True)
@_key_option("input.make_blobs", "centers", required=True)
@_key_option("input.make_blobs", "seed", default=0, show_default=True)
@_key_option("input.make_blobs", "chunk_rows", default=100_000, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the output.")
@_with(_verbosity)
@click.pass_context
def make_blobs(ctx, output, overwrite, **options):
    """Write a demo blobs dataset (X, y, centers) to a zarr group, chunk by chunk."""
    from ._outputs import BLOBS_FORMAT, check_output_path, output_lock
    from .demo import make_blobs_zarr

    check_output_path(output, overwrite, replaceable=(BLOBS_FORMAT,))
    with output_lock(output):
        make_blobs_zarr(output, **options)
    _echo(ctx, f"wrote {options['n_samples']} x {options['n_features']} to {output}/X")


@main.command()
@click.argument("path")
@_with(_verbosity)
def inspect(path):
    """Print what a dataset or a result holds."""
    from ._inspect import describe

    if not os.path.exists(path):
        raise BadInput(f"{path!r} does not exist. Check the path.")
    for line in describe(path):
        click.echo(line)


def _execute(ctx, job, resume=False, as_json=False):
    import json

    from ._exits import OUTPUT
    from .runner import run_job

    path = job.output.get("path") or f"{job.input['path'].rstrip('/')}.result.zarr"
    OUTPUT.append(path)
    quiet = ctx.find_root().obj.get("quiet", False) or as_json
    echo = (lambda *_: None) if quiet else click.echo
    progress = _Progress() if not quiet and sys.stdout.isatty() else None
    result = run_job(
        job, resume=resume, echo=echo, progress=progress, after_iteration=check_signals
    )
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    echo(result.summary)


class _Progress:
    """What a terminal shows of a run: the share of centers stopped, and the tasks
    of the iteration under way (a long iteration moves the line, not the bar)."""

    def __init__(self):
        self.bar, self.state, self.tasks, self.last = None, None, "", None

    def step(self, text):
        """A step before the iterations (the bandwidth estimate)."""
        click.echo(text)

    def __call__(self, states, length):
        from ._dask import watch_tasks

        self.last = length - 1  # the index of the last iteration there can be
        with (
            click.progressbar(
                length=1000,
                label="mean shift",
                item_show_func=self._show,
                show_eta=False,  # centers stop unevenly: no honest estimate
                update_min_steps=0,  # a new line of text is news too
            ) as self.bar,
            watch_tasks(self._on_tasks),
        ):
            for state in states:
                self.state, self.tasks = state, ""
                stopped = 1 - state.n_active / max(1, state.n_centers)
                self.bar.update(int(1000 * stopped) - self.bar.pos, state)
                yield state
            self.bar.update(self.bar.length - self.bar.pos)

    def _on_tasks(self, done, total):
        state = self.state
        if state is not None and (state.n_active == 0 or state.iteration >= self.last):
            # No iteration follows: the tasks label the points.
            self.tasks = f"labelling: tasks {done}/{total}"
        else:
            n = 1 if state is None else state.iteration + 2
            self.tasks = f"iteration {n}: tasks {done}/{total}"
        self.bar.update(0, self.state)

    def _show(self, state):
        if state is None:
            return self.tasks or "iteration 1"
        text = (
            f"{state.n_active} of {state.n_centers} centers moving, largest shift "
            f"{state.max_shift:.3g}"
        )
        return f"{text}; {self.tasks}" if self.tasks else text


def _size(value):
    """A --memory-limit checked as the job file's memory_limit is."""
    from .jobs import check_memory_limit

    if value is None:
        return value
    try:
        return check_memory_limit(value, "--memory-limit")
    except JobError as exc:
        raise click.BadParameter(str(exc)) from None


def _pop(options, *keys):
    return {k: options.pop(k) for k in keys}


def _echo(ctx, line):
    if not ctx.find_root().obj.get("quiet"):
        click.echo(line)


def _setup_logging(verbose):
    """Our log at WARNING; -v: INFO (each step) and distributed's; -vv: DEBUG."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    # The logs of distributed, asyncio and tornado have a handler of their own:
    # LocalCluster(silence_logs=...) sets the level of every handler of the
    # "distributed" logger.
    others = logging.StreamHandler()
    others.setFormatter(handler.formatter)
    # asyncio reports the client's gather task, cancelled by Ctrl-C, as an
    # exception never retrieved; tornado logs a cluster manager's failed
    # callback (an sbatch that fails) with its traceback: the one-line message
    # already says it, and -v shows them.
    for name in ("asyncio", "tornado"):
        other = logging.getLogger(name)
        other.handlers[:] = [others]
        other.propagate = False
        other.setLevel(level if verbose else logging.CRITICAL)
    # distributed sets its loggers' levels as it is imported (only when a run
    # needs a cluster): ours are set after that.
    dask_cluster.when_distributed_imported(lambda: _quiet_distributed(verbose, others))
    # An object half made when a signal interrupted its __init__ (a
    # distributed Future) fails in its __del__ later, and Python prints
    # "Exception ignored in ..." with a traceback: the command's one line has
    # said why it stopped; -vv shows them.
    sys.unraisablehook = _unraisable


def _threads_unless_a_cluster():
    """Compute on this process's threads unless a client (or the user) says otherwise.

    dask's default scheduler imports distributed to look for a client, which
    a run without a cluster never has: a third of a second that a small job
    need not spend. A client made for a run sets itself as the scheduler for
    its lifetime.
    """
    import dask
    import dask.threaded

    if dask.config.get("scheduler", None) is None:
        dask.config.set(scheduler=dask.threaded.get)


def _quiet_distributed(verbose, handler):
    """distributed's loggers as the command wants them, once it is imported."""
    # distributed's own logs (a lost scheduler, a failed task, the cluster
    # closing after it) go to ``handler`` with -v only: without it the error
    # is the one line the command prints. Its workers are chatty below INFO.
    dist = logging.getLogger("distributed")
    dist.handlers[:] = [handler]
    dist.propagate = False
    dist.setLevel(logging.INFO if verbose else logging.CRITICAL)
    # Some of its loggers (distributed.client) carry their own handler and
    # level; tornado's and asyncio's children too.
    for name, child in list(logging.root.manager.loggerDict.items()):
        ours = name.startswith(("distributed.", "tornado.", "asyncio."))
        if ours and isinstance(child, logging.Logger):
            child.handlers[:] = []
            child.propagate = True
            child.setLevel(logging.NOTSET)


def _unraisable(unraisable):
    # Named, not repr'd: the repr of a half-made object may fail in turn.
    where = getattr(unraisable.object, "__qualname__", type(unraisable.object).__name__)
    logger.debug("exception ignored in %s: %s", where, one_line(unraisable.exc_value))
