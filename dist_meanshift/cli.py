"""The ``dist-meanshift`` command: mean shift as a pipeline stage.

Exit codes: 0 done; 2 bad usage or bad input (one line on stderr, no
traceback); 1 a failure while running (one line, details with ``-v``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import sys
import tempfile
import threading
import time
import types
import warnings

import click

from . import __version__
from .jobs import SCHEMA, JobError, load_job

logger = logging.getLogger("dist_meanshift")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

#: Seconds to wait for a remote scheduler before refusing it.
CONNECT_TIMEOUT = 10
#: Seconds every worker may stay paused over its memory limit (or the cluster
#: without workers) before the run is stopped; ``[cluster] stall_timeout``.
STALL_TIMEOUT = 60
#: Bytes a task holds beyond its data chunk: block work arrays, cell tables.
_TASK_OVERHEAD = 64 * 2**20
#: Copies of its data chunk a task may hold at once (read, float64, sorted).
_CHUNK_COPIES = 3


class BadInput(click.ClickException):
    """Bad usage or input: one line on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file=None):
        click.echo(f"dist-meanshift: error: {self.format_message()}", err=True)


class RunFailed(BadInput):
    """A failure while running: one line on stderr, exit code 1."""

    exit_code = EXIT_FAILED


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


_FS_ERRORS = {
    errno.ENOSPC: ("the output's filesystem is full", "free space"),
    errno.EDQUOT: ("the output's disk quota is used up", "free space"),
    errno.EROFS: ("the output's filesystem is read-only", "make it writable"),
}


def _scheduler_lost(exc):
    """Whether ``exc`` (or what caused it) is the client losing its scheduler."""
    lost = {
        "CommClosedError",
        "StreamClosedError",
        "FutureCancelledError",
        "CancelledError",
        "TimeoutError",
    }
    while exc is not None:
        if type(exc).__name__ in lost:
            return True
        exc = exc.__cause__ or exc.__context__
    return False


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
            if _STALLED:
                raise RunFailed(_STALLED.pop()) from None
            if _SIGNALLED:
                raise Stopped(_SIGNALLED[0]) from None
            sig = (
                signal.SIGINT if isinstance(exc, KeyboardInterrupt) else signal.SIGTERM
            )
            raise Stopped(sig) from None
        except Exception as exc:
            logger.debug("command failed", exc_info=True)
            if _SIGNALLED:  # what the signal interrupted failed on its way out
                raise Stopped(_SIGNALLED[0]) from None
            if isinstance(exc, OSError) and exc.errno in _FS_ERRORS:
                what, remedy = _FS_ERRORS[exc.errno]
                raise RunFailed(
                    f"{what} ({exc.strerror}: {exc.filename or 'the output'}); "
                    f"nothing complete was left there: {remedy} or choose another "
                    "output path, then run again"
                ) from exc
            if _scheduler_lost(exc):
                raise RunFailed(
                    "lost the connection to the Dask scheduler mid-run; the state of "
                    "the last finished iteration is kept in the output: once the "
                    f"scheduler is back, run {_resume_command()}"
                ) from exc
            raise RunFailed(
                f"{type(exc).__name__}: {exc} (rerun with -v for the full log)"
            ) from exc


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
    job = _guard(load_job, job_file)
    _override(job, "output", path=out, overwrite=overwrite, report=report, plot=plot)
    _override(job, "cluster", scheduler=scheduler)
    _execute(ctx, job, resume=resume)


@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Output zarr path.")
@click.option("--array", help="Array name when INPUT is a zarr group.")
@click.option("--bandwidth", type=float, help="Kernel bandwidth (default: estimated).")
@click.option("--quantile", type=float, help="Quantile for bandwidth estimation.")
@click.option("--kernel", type=click.Choice(["gaussian", "flat"]))
@click.option("--bin-seeding", is_flag=True, default=None, help="Seed from grid bins.")
@click.option("--min-bin-freq", type=int, help="Points a bin needs to seed.")
@click.option("--max-iter", type=int, help="Iterations per seed at most.")
@click.option("--no-cluster-all", is_flag=True, help="Label far points -1.")
@click.option(
    "--bin-data", type=float, help="Binned mode: cells of this many bandwidths."
)
@click.option("--n-workers", type=int, help="Workers of the local cluster.")
@click.option("--threads-per-worker", type=int, help="Threads per local worker.")
@click.option("--memory-limit", help="Memory per local worker, e.g. 2GiB.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the output.")
@_with(_cluster_options)
@click.pass_context
def fit(ctx, input_path, out, array, no_cluster_all, **options):
    """Cluster INPUT (zarr array or group, or .npy) and write the result to --out."""
    job = {section: {} for section in SCHEMA}
    job["input"]["path"] = input_path
    _override(job, "input", array=array)
    _override(job, "output", path=out, **_pop(options, "overwrite", "report", "plot"))
    cluster_keys = ("scheduler", "n_workers", "threads_per_worker", "memory_limit")
    _override(job, "cluster", **_pop(options, *cluster_keys))
    _override(job, "model", cluster_all=False if no_cluster_all else None, **options)
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
    from .estimator import MeanShift
    from .io import (
        check_output_path,
        open_input,
        output_lock,
        read_centers,
        read_result,
        write_result,
    )

    group = _guard(read_result, model_path)
    centers = _guard(read_centers, group, model_path)
    data = _guard(open_input, input_path, array)
    _guard(check_output_path, out, overwrite, (input_path, model_path))
    model = MeanShift()
    model.cluster_centers_ = centers
    model.n_features_in_ = centers.shape[1]
    with contextlib.ExitStack() as stack:
        _guard(stack.enter_context, output_lock(out))
        stack.enter_context(_connect({"scheduler": scheduler} if scheduler else {}))
        labels = _guard(model.predict, data)
        attrs = {
            "model": os.path.abspath(model_path),
            "input": {"path": os.path.abspath(input_path), "shape": list(data.shape)},
            "version": __version__,
        }
        sizes = _guard(
            write_result,
            out,
            labels=labels,
            centers=centers,
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
    from .io import BLOBS_FORMAT, check_output_path, make_blobs_zarr, output_lock

    _guard(check_output_path, output, overwrite, replaceable=(BLOBS_FORMAT,))
    with contextlib.ExitStack() as stack:
        _guard(stack.enter_context, output_lock(output))
        make_blobs_zarr(output, **options)
    _echo(ctx, f"wrote {options['n_samples']} x {options['n_features']} to {output}/X")


@main.command()
@click.argument("path")
def inspect(path):
    """Print what a dataset or a result holds."""
    from .io import describe

    if not os.path.exists(path):
        raise BadInput(f"{path!r} does not exist. Check the path.")
    for line in _guard(describe, path):
        click.echo(line)


def _execute(ctx, job, resume=False):
    quiet = ctx.obj["quiet"]
    echo = (lambda *_: None) if quiet else click.echo
    progress = not quiet and sys.stdout.isatty()
    echo(_guard(run_job, job, echo=echo, progress=progress, resume=resume))


def run_job(job, *, echo=print, progress=False, resume=False):
    """Run a checked job: make or open the input, fit, write, picture, summary.

    Parameters
    ----------
    job : dict
        As returned by :func:`dist_meanshift.jobs.load_job`.
    echo : callable, default=print
        Where the lines a person reads go.
    progress : bool, default=False
        Show a progress bar over iterations.
    resume : bool, default=False
        Continue from the state recorded after the last iteration of a stopped
        run with the same input and parameters.

    Returns
    -------
    str
        The summary table.
    """
    from .io import check_output_path, output_lock

    inp, out = job["input"], job["output"]
    out_path = out.get("path") or f"{inp['path'].rstrip('/')}.result.zarr"
    overwrite = out.get("overwrite", False)
    check_output_path(out_path, overwrite, (inp["path"],), resume=resume)
    with output_lock(out_path):
        return _run_locked(job, out_path, overwrite, echo, progress, resume)


def _run_locked(job, out_path, overwrite, echo, progress, resume):
    from .estimator import MeanShift, estimate_bandwidth
    from .io import (
        create_output,
        discard_output,
        finish_result,
        group_path,
        input_fingerprint,
        open_input,
        open_stopped_output,
        save_state,
    )

    inp, out, params = job["input"], job["output"], dict(job["model"])
    image_shape = _prepare_input(job, echo)
    data = open_input(inp["path"], inp.get("array"))
    fingerprint = {
        "input": input_fingerprint(
            inp["path"], inp.get("array"), data.shape, data.dtype
        ),
        "model": job["model"],
    }
    group = open_stopped_output(out_path, (inp["path"],)) if resume else None
    if group is not None and group.attrs.get("complete"):
        # Killed after its last byte: the run is done, resuming changes nothing.
        _check_fingerprint(group.attrs["fingerprint"], fingerprint, "finished run")
        return _stored_summary(group, out_path)
    saved = _saved_state(group, fingerprint, echo) if resume else None
    quantile = params.pop("quantile", 0.3)
    timings = {}
    started = time.perf_counter()
    with (
        _connect(job["cluster"]) as client,
        _report(out.get("report")),
        _watchdog(client, job["cluster"].get("stall_timeout", STALL_TIMEOUT)),
    ):
        _check_worker_memory(client, data, job["cluster"])
        if _has_dashboard(client, remote=bool(job["cluster"].get("scheduler"))):
            echo(f"dashboard: {client.dashboard_link}")
        if saved is not None:
            params["bandwidth"] = saved["bandwidth"]
        elif params.get("bandwidth") is None:
            params["bandwidth"] = estimate_bandwidth(
                data, quantile=quantile, kernel=params.get("kernel", "gaussian")
            )
            if params["bandwidth"] == 0:
                raise ValueError(
                    "estimated bandwidth is 0 (all sampled rows are identical, or "
                    "there is one row); pass --bandwidth (bandwidth = ... in a job "
                    "file)"
                )
            timings["estimate_bandwidth"] = time.perf_counter() - started
        model = MeanShift(**params)
        meta = {"fingerprint": fingerprint, "bandwidth": params["bandwidth"]}
        if saved is None:
            # A stopped run with nothing recorded yet is started afresh.
            group = create_output(
                out_path,
                {"fingerprint": fingerprint},
                overwrite=overwrite or group is not None,
                inputs=(inp["path"],),
            )
        recorded = saved is not None
        # Written beside an earlier output (swapped in when complete): its
        # recorded state cannot be resumed from there, so it goes on failure.
        beside = group.attrs.get("destination") not in (None, group_path(group))
        try:
            from sklearn.exceptions import ConvergenceWarning

            with warnings.catch_warnings():
                # Said in the summary instead, in the command's own words.
                warnings.simplefilter("ignore", ConvergenceWarning)
                for state in _with_progress(
                    model._fit_iter(data, resume=saved), model.max_iter + 1, progress
                ):
                    save_state(group, state.checkpoint, meta)
                    recorded = True
                    _check_signals()
            timings["fit"] = time.perf_counter() - started - sum(timings.values())
            attrs = _result_attrs(inp, data, model, timings)
            attrs["fingerprint"] = fingerprint
            attrs["resumed_after_iteration"] = (
                None if saved is None else saved["next_iteration"] - 1
            )
            _check_signals()
            sizes = finish_result(
                group, labels=model.labels_, centers=model.cluster_centers_, attrs=attrs
            )
        except BaseException:
            if not recorded or beside:
                # Nothing to resume: leave nothing that looks like a result
                # (and an earlier result as it was).
                discard_output(group)
            raise
        pictures = _pictures(job, data, model, image_shape, echo)
    return _summary(model, sizes, time.perf_counter() - started, out_path, pictures)


def _has_dashboard(client, remote):
    """Whether the link would show a dashboard: it is drawn with bokeh."""
    import importlib.util

    served = "dashboard" in client.scheduler_info().get("services", {})
    return served and (remote or importlib.util.find_spec("bokeh") is not None)


def _prepare_input(job, echo):
    """Make the demo or image dataset the job asks for, if it is not there yet."""
    inp = job["input"]
    if os.path.exists(inp["path"]):
        if "image" in inp:
            import zarr

            return tuple(zarr.open_array(inp["path"], mode="r").attrs["image_shape"])
        return None
    if "image" in inp:
        from .io import write_array
        from .plot import load_image

        pixels = load_image(inp["image"])
        echo(f"writing the pixels of {inp['image']} to {inp['path']}")
        write_array(inp["path"], pixels.reshape(-1, 3), {"image_shape": pixels.shape})
        return pixels.shape
    if job["input.make_blobs"]:
        from .io import make_blobs_zarr

        echo(f"making a demo dataset at {inp['path']}")
        make_blobs_zarr(inp["path"], **job["input.make_blobs"])
        return None
    raise ValueError(
        f"Input {inp['path']!r} does not exist. Check the path, or add an "
        "[input.make_blobs] section to make a demo dataset there."
    )


def _with_progress(states, length, progress):
    """The states, shown on a progress bar when ``progress``."""
    if not progress:
        yield from states
        return

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


def _check_fingerprint(before, now, what):
    """Refuse --resume when the model parameters or the input changed, by name."""
    for key in sorted(set(before["model"]) | set(now["model"])):
        old, new = before["model"].get(key), now["model"].get(key)
        if old != new:
            raise ValueError(
                f"--resume refused: model parameter '{key}' was {old!r} in the "
                f"{what} and is {new!r} now. Restore it, or run without "
                "--resume to start afresh."
            )
    for key in ("path", "array", "shape", "dtype", "modified"):
        if before["input"][key] != now["input"][key]:
            raise ValueError(
                f"--resume refused: the input's {key} changed since the {what} "
                f"({before['input'][key]!r}, now {now['input'][key]!r}). "
                "Run without --resume to start afresh."
            )


def _saved_state(group, fingerprint, echo):
    """The recorded state to resume from, refused if input or parameters changed."""
    from .io import load_state

    try:
        saved = None if group is None else load_state(group)
    except Exception as exc:  # any damage has the same remedy
        raise ValueError(
            f"The state recorded in the output cannot be read ({exc}). "
            "Run with --overwrite instead of --resume to start afresh."
        ) from exc
    if saved is None:
        echo("nothing to resume: no recorded state, starting from the beginning")
        return None
    _check_fingerprint(saved["fingerprint"], fingerprint, "stopped run")
    echo(f"resuming after iteration {saved['next_iteration'] - 1}")
    return saved


def _result_attrs(inp, data, model, timings):
    import dask
    import distributed
    import numpy
    import sklearn
    import zarr

    return {
        "input": {
            "path": os.path.abspath(inp["path"]),
            "array": inp.get("array"),
            "shape": list(data.shape),
        },
        "params": {k: v for k, v in model.get_params().items() if k != "seeds"},
        "bandwidth": model.bandwidth_,
        "n_iter": model.n_iter_,
        "converged": bool(model.converged_),
        "n_unconverged": int(model.n_unconverged_),
        "trace": model.trace_,
        "timings": timings,
        "versions": {
            "dist_meanshift": __version__,
            "dask": dask.__version__,
            "distributed": distributed.__version__,
            "zarr": zarr.__version__,
            "numpy": numpy.__version__,
            "scikit-learn": sklearn.__version__,
            "python": sys.version.split()[0],
        },
    }


def _pictures(job, data, model, image_shape, echo):
    out = job["output"]
    made = []
    wanted = [out.get("plot")] + ([out.get("image")] if image_shape else [])
    if not any(wanted):
        return made
    try:
        from . import plot
    except ImportError:  # pragma: no cover - plot extra missing
        echo("no picture: install the plot extra (pip install 'dist-meanshift[plot]')")
        return made
    try:
        if out.get("plot"):
            dims = tuple(out.get("plot_dims", (0, 1)))
            plot.plot_result(
                out["plot"],
                data,
                model.labels_,
                model.cluster_centers_,
                model.trace_,
                dims=dims,
            )
            made.append(out["plot"])
        if image_shape and out.get("image"):
            labels = model.labels_
            labels = labels.compute() if hasattr(labels, "compute") else labels
            segmented = model.cluster_centers_[labels].reshape(image_shape)
            plot.save_image(out["image"], segmented)
            made.append(out["image"])
    except ImportError:
        echo("no picture: install the plot extra (pip install 'dist-meanshift[plot]')")
    return made


def _stored_summary(group, out_path):
    """The summary of a result already complete on disk."""
    attrs = group.attrs
    model = types.SimpleNamespace(
        n_iter_=attrs["n_iter"],
        bandwidth_=attrs["bandwidth"],
        max_iter=attrs["params"]["max_iter"],
        converged_=attrs.get("converged", True),
        n_unconverged_=attrs.get("n_unconverged", 0),
        trace_=attrs.get("trace", []),
    )
    seconds = sum(attrs.get("timings", {}).values())
    sizes = group["cluster_sizes"][:]
    summary = _summary(model, sizes, seconds, out_path, [])
    return f"already complete, nothing to resume\n{summary}"


def _summary(model, sizes, seconds, out_path, pictures):
    headline = (
        f"{len(sizes)} clusters, {model.n_iter_} iterations, {seconds:.1f} s, "
        f"bandwidth {model.bandwidth_:.4g}"
    )
    lines = [headline]
    if not model.converged_:
        lines.append(_unconverged_line(model))
    lines += [
        f"{'cluster':>7} {'size':>10} {'share':>7}",
    ]
    total = max(1, int(sum(sizes)))
    lines += [f"{i:>7} {n:>10} {n / total:>7.1%}" for i, n in enumerate(sizes)]
    lines.append(f"result: {os.path.abspath(out_path)}")
    lines += [f"picture: {os.path.abspath(p)}" for p in pictures]
    return "\n".join(lines)


def _unconverged_line(model):
    n_centers = model.trace_[-1]["n_centers"] if model.trace_ else "?"
    return (
        f"stopped at max_iter={model.max_iter} with {model.n_unconverged_} of "
        f"{n_centers} centers still moving; raise max_iter"
    )


@contextlib.contextmanager
def _connect(spec):
    """A client of the scheduler at spec["scheduler"], or of a new local cluster."""
    import dask
    from distributed import Client, LocalCluster

    address = spec.get("scheduler")
    if address:
        security = _security(spec, address)
        timeout = spec.get("timeout", CONNECT_TIMEOUT)
        try:
            client = Client(address, timeout=f"{timeout}s", security=security)
        except (OSError, TimeoutError) as exc:
            raise ValueError(
                f"Cannot reach the Dask scheduler at {address} within {timeout} s "
                f"({type(exc).__name__}). Check the address and that the scheduler "
                "runs (and, for tls://, the certificates)."
            ) from exc
        with client:
            yield client
        return
    with (
        # Worker scratch (locks, spilled data) goes to a temporary directory
        # removed at the end, not to dask's shared dask-scratch-space.
        tempfile.TemporaryDirectory(prefix="dist-meanshift-") as scratch,
        dask.config.set({"temporary-directory": scratch}),
        LocalCluster(
            n_workers=spec.get("n_workers", 2),
            threads_per_worker=spec.get("threads_per_worker", 1),
            memory_limit=spec.get("memory_limit", "auto"),
            processes=spec.get("processes", False),
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _check_worker_memory(client, data, spec):
    """Refuse before any task runs when workers cannot hold one task.

    A worker pauses above 80% of its memory limit and runs nothing more: a
    limit below what one task needs would leave the run waiting for ever. With
    in-process workers (a local cluster of threads) the limit is measured on
    this whole process, so its present memory counts too.
    """
    import numpy as np
    import psutil

    from ._driver import _auto_chunk_rows

    if len(data.shape) != 2:
        return  # refused by the input checks, with a better message
    limit = _memory_limit(client.scheduler_info()["workers"].values())
    if not limit:
        return
    itemsize = max(8, np.dtype(data.dtype).itemsize)
    # zarr: its chunks; in memory: the chunks the fit will send (float32 stays
    # float32, anything else becomes float64).
    if getattr(data, "chunks", None):
        rows = data.chunks[0]
    else:
        sent = 4 if data.dtype == np.float32 else 8
        rows = _auto_chunk_rows(data.shape, sent, client)
    need = _CHUNK_COPIES * rows * data.shape[1] * itemsize + _TASK_OVERHEAD
    in_process = not spec.get("scheduler") and not spec.get("processes", False)
    held = psutil.Process().memory_info().rss if in_process else 0
    if held + need <= 0.8 * limit:
        return
    mib = 2**20
    shared = (
        f" and share this process's {held / mib:.0f} MiB (in-process workers)"
        if held
        else ""
    )
    raise ValueError(
        f"each task needs about {need / mib:.0f} MiB; workers have "
        f"{limit / mib:.0f} MiB{shared} and pause above 80% of it: raise "
        f"--memory-limit to at least {(held + need) / 0.8 / mib:.0f} MiB or lower "
        "the input's chunk rows"
    )


def _memory_limit(workers):
    """The smallest memory limit among workers that have one (0 if none has)."""
    return min((w["memory_limit"] for w in workers if w.get("memory_limit")), default=0)


_STALLED = []


@contextlib.contextmanager
def _watchdog(client, timeout):
    """Stop the run (exit 1, one line) when the cluster cannot make progress.

    Every worker paused over its memory limit, or no worker at all, for
    ``timeout`` seconds in a row: distributed itself would wait for ever.
    """
    import _thread

    stop = threading.Event()

    def watch():
        since = None
        while not stop.wait(0.5):
            try:
                workers = list(client.scheduler_info()["workers"].values())
            # A busy, closing or lost client raises what it may: a lost one is
            # reported by the run itself; look again in a moment.
            except Exception as exc:  # noqa: BLE001
                logger.debug("watchdog: no scheduler info (%r)", exc)
                since = None
                continue
            stuck = not workers or all(w.get("status") == "paused" for w in workers)
            since = (since or time.monotonic()) if stuck else None
            if since is not None and time.monotonic() - since > timeout:
                limit = _memory_limit(workers)
                _STALLED.append(
                    f"no worker could run for {timeout:g} s: "
                    + (
                        f"every worker is paused over its memory limit "
                        f"({limit / 2**20:.0f} MiB); raise --memory-limit or lower "
                        "the input's chunk rows"
                        if workers
                        else "the cluster has no worker; start workers or check "
                        "why they die (dist-meanshift -v shows their logs)"
                    )
                )
                _thread.interrupt_main()
                return

    thread = threading.Thread(target=watch, daemon=True, name="dist-meanshift-watch")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _security(spec, address):
    tls = {k: spec[k] for k in ("tls_ca_file", "tls_cert", "tls_key") if k in spec}
    if not address.startswith("tls://"):
        if tls:
            raise ValueError(
                f"TLS certificates are given but the scheduler address {address} is "
                "not tls://. Use a tls:// address, or drop the tls_* keys."
            )
        return None
    missing = {"tls_ca_file", "tls_cert", "tls_key"} - set(tls)
    if missing:
        raise ValueError(
            f"A tls:// scheduler needs tls_ca_file, tls_cert and tls_key; missing "
            f"{', '.join(sorted(missing))}. Add them to [cluster] in the job file."
        )
    for key, path in tls.items():
        if not os.path.isfile(path):
            raise ValueError(f"cluster.{key} {path!r} does not exist. Check the path.")
    from distributed.security import Security

    return Security(
        tls_ca_file=tls["tls_ca_file"],
        tls_client_cert=tls["tls_cert"],
        tls_client_key=tls["tls_key"],
        require_encryption=True,
    )


@contextlib.contextmanager
def _report(path):
    if not path:
        yield
        return
    from distributed import performance_report

    try:
        import bokeh  # noqa: F401 - the report is drawn with it
    except ImportError:
        raise ValueError(
            "--report needs bokeh. Install the plot extra: pip install "
            "'dist-meanshift[plot]'."
        ) from None
    with performance_report(filename=path):
        yield


def _guard(fn, *args, **kwargs):
    """Call fn, turning bad-input errors into a one-line exit 2."""
    try:
        return fn(*args, **kwargs)
    except (JobError, ValueError, FileExistsError) as exc:
        logger.debug("bad input", exc_info=True)
        raise BadInput(str(exc).splitlines()[0] if str(exc) else repr(exc)) from exc


def _override(job, section, **values):
    job[section].update({k: v for k, v in values.items() if v is not None})


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
