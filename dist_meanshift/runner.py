"""Run a job from Python: input, resume, fit, write, pictures, summary.

:func:`run_job` is the pipeline stage: the ``dist-meanshift run`` command
calls it, and so can a script, with no shell and no click. Every run holds
its output's lock, records its state after every iteration (so that it can be
resumed) and marks its result complete last.
"""

from __future__ import annotations

import errno
import logging
import time
import warnings

from . import dask_cluster
from ._job_file import JobFile
from ._params import BY_NAME
from ._side_outputs import SideOutputs
from ._summary import make_result, result_attrs, stored_result
from .errors import ClusterStalled, InputError, RunError, one_line
from .memory_plan import MemoryPlan, plan_memory

logger = logging.getLogger(__name__)

#: Input of at most this many bytes (as float64) is fitted in this process,
#: without starting workers, unless the job names a cluster (see
#: ``docs/benchmarks.md``: a local cluster costs about 1-2 s to start).
SMALL_INPUT_BYTES = 64 * 2**20

_FS_ERRORS = {
    errno.ENOSPC: ("the output's filesystem is full", "free space"),
    errno.EDQUOT: ("the output's disk quota is used up", "free space"),
    errno.EROFS: ("the output's filesystem is read-only", "make it writable"),
}
_LOST = {
    "CommClosedError",
    "StreamClosedError",
    "FutureCancelledError",
    "CancelledError",
    "TimeoutError",
}


def run_job(
    job,
    *,
    scheduler=None,
    overwrite=None,
    resume=False,
    echo=None,
    progress=None,
    after_iteration=None,
):
    """Run a job file (or a :class:`~.jobs.Job`): fit, write the result, summarise.

    Parameters
    ----------
    job : str, os.PathLike or Job
    scheduler : str, default=None
        Address of a Dask scheduler (overrides ``[cluster] scheduler``).
    overwrite : bool, default=None
        Replace an earlier result (overrides ``[output] overwrite``).
    resume : bool, default=False
        Continue from the state recorded after the last iteration of a stopped
        run with the same input and parameters.
    echo : callable, default=None
        Where the lines a person reads go (the default logs them at INFO).
    progress : callable, default=None
        ``progress(states, max_states)`` wraps the iteration states (the
        command's progress bar).
    after_iteration : callable, default=None
        Called after every recorded iteration and before the result is
        written; an exception it raises stops the run, its state kept.

    Returns
    -------
    RunResult

    Raises
    ------
    InputError
        Bad job, input, parameters or output path (the command's exit code 2).
    RunError
        A failure while running: the cluster, the disk (exit code 1).
    FileExistsError
        The output exists, or another run writes it (exit code 2).
    """
    if not isinstance(job, JobFile):
        job = JobFile.load(job)
    job.override("cluster", scheduler=scheduler)
    job.override("output", overwrite=overwrite)
    run = _Run(job, echo or logger.info, progress, after_iteration or (lambda: None))
    try:
        return run.start(resume)
    except InputError:
        raise
    except OSError as exc:
        if exc.errno not in _FS_ERRORS:
            raise
        what, remedy = _FS_ERRORS[exc.errno]
        raise RunError(
            f"{what} ({exc.strerror}: {exc.filename or 'the output'}); nothing "
            f"complete was left there: {remedy} or choose another output path, "
            "then run again"
        ) from exc
    except Exception as exc:
        unreadable = _unreadable(exc)
        if unreadable is not None:
            detail = one_line(unreadable)
            raise InputError(
                f"Input {job.input['path']!r} cannot be read past a point "
                f"({detail}). Fix or re-export the file, then run again."
            ) from exc
        if _scheduler_lost(exc):
            raise RunError(
                "lost the connection to the Dask scheduler mid-run; the state of "
                "the last finished iteration is kept in the output",
                resume_when="once the scheduler is back, ",
            ) from exc
        raise


#: What table readers raise, inside a task, on a file damaged past its header.
_UNREADABLE = {"ParserError", "ArrowInvalid", "ArrowTypeError", "EmptyDataError"}


def _unreadable(exc):
    """The reader's error in ``exc`` (or what caused it) on a damaged file, or None."""
    return _cause(exc, _UNREADABLE)


def _scheduler_lost(exc):
    """Whether ``exc`` (or what caused it) is the client losing its scheduler."""
    return _cause(exc, _LOST) is not None


def _cause(exc, names):
    """The first of ``exc`` and its causes whose type is named in ``names``."""
    while exc is not None:
        if type(exc).__name__ in names:
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class _Run:
    """One run of a job; its steps in the order they happen."""

    def __init__(self, job, echo, progress, after_iteration):
        self.job, self.echo = job, echo
        self.progress = progress or (lambda states, _: states)
        self.after_iteration = after_iteration
        self.inp, self.out = job.input, job.output
        self.path = (
            self.out.get("path") or f"{self.inp['path'].rstrip('/')}.result.zarr"
        )
        self.timings = {}
        self.beside = SideOutputs(job, self.path)
        self.plan = MemoryPlan()

    def start(self, resume):
        from ._outputs import check_output_path, output_lock

        overwrite = self.out.get("overwrite", False)
        self.beside.check(overwrite, resume)
        dask_cluster.resolve_address(self.job.cluster)
        check_output_path(self.path, overwrite, self.beside.inputs(), resume=resume)
        with output_lock(self.path):
            return self._locked(overwrite, resume)

    def _open(self):
        """The input, its image shape (for pictures) and its fingerprint."""
        from . import inputs
        from .formats import input_options

        image_shape = _prepare_input(self.job, self.echo)
        data = inputs.open_input(
            self.inp["path"],
            self.inp.get("array"),
            **{k: self.inp[k] for k in input_options() if k in self.inp},
        )
        fp = {
            "input": inputs.input_fingerprint(
                self.inp["path"], self.inp.get("array"), data.shape, data.dtype
            ),
            "model": self.job.model,
        }
        return data, getattr(data, "image_shape", image_shape), fp

    def _locked(self, overwrite, resume):
        from .results import open_stopped_output

        data, image_shape, fp = self._open()
        self.beside.check_data(data)
        group = open_stopped_output(self.path, (self.inp["path"],)) if resume else None
        if group is not None and group.attrs.get("complete"):
            # Killed after its last byte: the run is done, resuming changes nothing.
            _check_fingerprint(group.attrs["fingerprint"], fp, "finished run")
            return stored_result(group, self.path)
        saved = _saved_state(group, fp, self.echo) if resume else None
        started = time.perf_counter()
        spec = self.job.cluster
        if self._runs_here(data):
            # Small input, no cluster named: fitted on this process's threads,
            # the data read once and kept in memory (persist="auto").
            logger.info("small input: fitted in this process, without workers")
            model, sizes = self._fit(data, fp, saved, group, overwrite, started)
            pictures = self.beside.pictures(data, model, image_shape, self.echo)
            return self._made(data, model, sizes, pictures, started)
        with (
            dask_cluster.connect(spec) as client,
            dask_cluster.report(self.out.get("report")),
            dask_cluster.watchdog(
                client, spec.get("stall_timeout", dask_cluster.STALL_TIMEOUT)
            ) as watch,
        ):
            try:
                # The fit's own imports first (scikit-learn's 38 MiB): a local
                # cluster of threads is this process, measured by the plan.
                from . import estimator  # noqa: F401

                self.plan = plan_memory(client, data, spec, self.job.model)
                if dask_cluster.has_dashboard(
                    client, remote=bool(spec.get("scheduler") or spec.get("manager"))
                ):
                    self.echo(f"dashboard: {dask_cluster.dashboard_link(client, spec)}")
                model, sizes = self._fit(data, fp, saved, group, overwrite, started)
            except BaseException:
                # The watchdog's interrupt may be swallowed on its way up and
                # come back as another error, or as the stop its handler
                # asked for at the next iteration's end: it was the stall.
                if watch.reason:
                    raise ClusterStalled(watch.reason) from None
                raise
            pictures = self.beside.pictures(data, model, image_shape, self.echo)
        return self._made(data, model, sizes, pictures, started)

    def _runs_here(self, data):
        """Whether the job runs in this process: no cluster named, no report
        asked (it needs a scheduler), and input of at most ``SMALL_INPUT_BYTES``
        (as float64)."""
        if self.job.cluster or self.out.get("report"):
            return False
        import math

        # A table's rows are counted by its checking pass (kept for the fit).
        # Any shape: a wrong one is refused by the fit's own checks.
        shape = (data.to_dask() if hasattr(data, "to_dask") else data).shape
        return math.prod(shape) * 8 <= SMALL_INPUT_BYTES

    def _made(self, data, model, sizes, pictures, started):
        seconds = time.perf_counter() - started
        n_unlabelled = model.labels_.shape[0] - int(sum(sizes))
        made = {
            "pictures": pictures,
            "report": self.out.get("report"),
            "timings": self.timings,
            **self.beside.made(data),
            "n_dropped": getattr(data, "n_dropped", 0),
        }
        return make_result(model, sizes, n_unlabelled, seconds, self.path, made)

    def _model(self, data, saved, started):
        """The estimator of the job, its bandwidth recorded, given or estimated."""
        from .estimator import MeanShift

        params = dict(self.job.model)
        quantile = params.pop("quantile", BY_NAME["quantile"].default)
        # Fitted to the workers' memory where the job leaves them open.
        if params.get("chunk_rows") is None and self.plan.chunk_rows:
            params["chunk_rows"] = self.plan.chunk_rows
        if params.get("persist", "auto") == "auto" and self.plan.persist is not None:
            params["persist"] = self.plan.persist
        if saved is not None:
            params["bandwidth"] = saved.bandwidth
        elif params.get("bandwidth") is None:
            if hasattr(self.progress, "step"):
                self.progress.step(f"estimating the bandwidth (quantile {quantile:g})")
            params["bandwidth"] = _estimate(data, quantile, params)
            self.timings["estimate_bandwidth"] = time.perf_counter() - started
        return MeanShift(**params)

    def _fit(self, data, fp, saved, group, overwrite, started):
        from ._outputs import state_recorded
        from .results import discard_output, finish_result, group_path

        model = self._model(data, saved, started)
        recorded, beside, made = saved is not None, False, None
        try:
            if saved is None:
                # A stopped run with nothing recorded yet is started afresh.
                group = made = _created_output(
                    self.path,
                    {"fingerprint": fp},
                    overwrite=overwrite or group is not None,
                    inputs=(self.inp["path"],),
                )
            # Written beside an earlier output (swapped in when complete): its
            # recorded state cannot be resumed from there, so it goes on failure.
            beside = group.attrs.get("destination") not in (None, group_path(group))
            from sklearn.exceptions import ConvergenceWarning

            with warnings.catch_warnings():
                # Said in the summary instead, in the command's own words.
                warnings.simplefilter("ignore", ConvergenceWarning)
                states = model.fit_iter(data, resume=saved)
                for state in self.progress(states, model.max_iter + 1):
                    checkpoint = state.checkpoint
                    checkpoint.fingerprint = fp
                    checkpoint.save(group)
                    recorded = True
                    self.after_iteration()
            self.timings["fit"] = (
                time.perf_counter() - started - sum(self.timings.values())
            )
            attrs = result_attrs(self.inp, data, model, self.timings)
            attrs["fingerprint"] = fp
            attrs["resumed_after_iteration"] = (
                None if saved is None else saved.next_iteration - 1
            )
            self.after_iteration()
            sizes = finish_result(
                group,
                labels=model._session_labels(),
                centers=model.cluster_centers_,
                attrs=attrs,
                before_complete=lambda sizes: self.beside.write(
                    group, data, model, sizes
                ),
            )
        except BaseException as exc:
            if saved is None and made is None:
                # Stopped while the output was being made (see _created_output).
                _remove_unrecorded(self.path, exc)
                raise
            # A signal in the middle of the first save may come after its
            # state was written whole: what is on disk decides.
            recorded = recorded or state_recorded(group_path(group))
            if not recorded or beside:
                # Nothing to resume: leave nothing that looks like a result
                # (and an earlier result as it was).
                discard_output(group)
            raise
        return model, sizes


def _created_output(path, attrs, **kwargs):
    """``results.create_output``, leaving nothing if a signal stops it midway.

    The group is made by one write; a signal that lands after it (while zarr
    returns, or before the caller's own cleanup takes over) would leave an
    incomplete output with no state to resume: it is removed, never an output
    that holds a recorded state or a finished result.
    """
    from .results import create_output

    try:
        return create_output(path, attrs, **kwargs)
    except BaseException as exc:
        _remove_unrecorded(path, exc)
        raise


def _remove_unrecorded(path, exc):
    """After a signal (not a refusal), remove the incomplete output at ``path``
    if it holds no recorded state."""
    from ._outputs import output_status, remove_output, state_recorded

    stopped = not isinstance(exc, Exception)
    if stopped and output_status(path) is False and not state_recorded(path):
        remove_output(path)


def _estimate(data, quantile, params):
    from ._seeds import estimate_bandwidth

    bandwidth = estimate_bandwidth(
        data, quantile=quantile, kernel=params.get("kernel", "gaussian")
    )
    if bandwidth == 0:
        raise InputError(
            "estimated bandwidth is 0 (all sampled rows are identical, or there is "
            "one row); pass --bandwidth (bandwidth = ... in a job file)"
        )
    return bandwidth


def _prepare_input(job, echo):
    """Make the demo or image dataset the job asks for, if it is not there yet."""
    inp = job.input
    from ._files import exists

    tiff = inp["path"].lower().endswith((".tif", ".tiff"))
    if exists(inp["path"]):
        if "image" in inp and not tiff:
            from .formats.images import stored_picture_shape

            return stored_picture_shape(inp["path"])
        return None
    if "image" in inp:
        from .demo import write_picture

        echo(f"writing the pixels of {inp['image']} to {inp['path']}")
        return write_picture(inp["path"], inp["image"])
    if job.make_blobs:
        from .demo import make_demo

        echo(f"making a demo dataset at {inp['path']}")
        make_demo(inp["path"], **job.make_blobs)
        return None
    raise InputError(
        f"Input {inp['path']!r} does not exist. Check the path, or add an "
        "[input.make_blobs] section to make a demo dataset there."
    )


def _check_fingerprint(before, now, what):
    """Refuse a resume when the model parameters or the input changed, by name."""
    for key in sorted(set(before["model"]) | set(now["model"])):
        old, new = before["model"].get(key), now["model"].get(key)
        if old != new:
            raise InputError(
                f"--resume refused: model parameter '{key}' was {old!r} in the "
                f"{what} and is {new!r} now. Restore it, or run without "
                "--resume to start afresh."
            )
    for key in ("path", "array", "shape", "dtype", "modified"):
        if before["input"][key] != now["input"][key]:
            raise InputError(
                f"--resume refused: the input's {key} changed since the {what} "
                f"({before['input'][key]!r}, now {now['input'][key]!r}). "
                "Run without --resume to start afresh."
            )


def _saved_state(group, fingerprint, echo):
    """The recorded state to resume from, refused if input or parameters changed."""
    from ._checkpoint import Checkpoint

    try:
        saved = None if group is None else Checkpoint.load(group)
    except Exception as exc:  # any damage has the same remedy
        raise InputError(
            f"The state recorded in the output cannot be read ({exc}). "
            "Run with --overwrite instead of --resume to start afresh."
        ) from exc
    if saved is None:
        echo("nothing to resume: no recorded state, starting from the beginning")
        return None
    _check_fingerprint(saved.fingerprint, fingerprint, "stopped run")
    echo(f"resuming after iteration {saved.next_iteration - 1}")
    return saved


def predict_input(
    model_path, input_path, out, *, array=None, overwrite=False, scheduler=None
):
    """Label an input with a fitted result's clusters and write them as a result.

    What ``dist-meanshift predict`` runs. A model fitted on named features
    (a table's columns) picks the same ones from an input that has them.

    Parameters
    ----------
    model_path, input_path, out : str
    array : str, default=None
    overwrite : bool, default=False
    scheduler : str, default=None
        A running Dask scheduler's address; by default a local cluster.

    Returns
    -------
    cluster_sizes : ndarray of shape (n_clusters,)
    """
    import os

    from . import __version__
    from ._outputs import check_output_path, output_lock
    from .estimator import load
    from .formats import format_of
    from .inputs import open_input
    from .results import write_result

    model = load(model_path)
    names = getattr(model, "feature_names_in_", None)
    spec = format_of(input_path, {})
    picks = names is not None and spec is not None and "columns" in spec.options
    data = open_input(input_path, array, columns=list(names) if picks else None)
    check_output_path(out, overwrite, (input_path, model_path))
    spec = {"scheduler": scheduler} if scheduler else {}
    with output_lock(out), dask_cluster.connect(spec):
        labels = model.predict(data)
        attrs = {
            "model": os.path.abspath(model_path),
            "input": {"path": os.path.abspath(input_path), "shape": list(data.shape)},
            "version": __version__,
        }
        return write_result(
            out,
            labels=labels,
            centers=model.cluster_centers_,
            attrs=attrs,
            overwrite=overwrite,
        )
