"""Clusters to run on: connect or start one, check it can work, watch it, report.

A job runs on the scheduler at ``[cluster] scheduler`` (TLS with its
certificates) or on a local cluster started for the run and closed after it.
Before any task a memory plan fits the run to the workers (see
:mod:`.memory_plan`); during the run a watchdog stops a run that no worker
can make progress on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import threading
import time

from ._files import require_file
from .errors import InputError, RunError, one_line, shown
from .memory_plan import _memory_limit, return_freed_memory

#: Set-ups to run once distributed is imported (the command's log levels for
#: distributed's loggers, which distributed sets when it is first imported).
_ON_IMPORT = []


def when_distributed_imported(setup):
    """Run ``setup()`` once distributed is imported: now if it is already.

    distributed is imported only when a run needs a cluster (a small input
    fitted in the command's process never imports it), and it sets its
    loggers' levels as it is imported: the command's own levels are set after.
    """
    import sys

    if "distributed" in sys.modules:
        setup()
    else:
        _ON_IMPORT.append(setup)


def _import_distributed():
    """Import distributed, then run what waited for it."""
    import distributed  # noqa: F401

    while _ON_IMPORT:
        _ON_IMPORT.pop(0)()


logger = logging.getLogger(__name__)
#: Seconds to wait for a remote scheduler before refusing it.
CONNECT_TIMEOUT = 10
#: Seconds every worker may stay paused over its memory limit (or the cluster
#: without workers) before the run is stopped; ``[cluster] stall_timeout``.
STALL_TIMEOUT = 60


def resolve_address(spec):
    """Set ``spec["scheduler"]`` from ``spec["scheduler_file"]`` when one is given.

    A scheduler file is how HPC deployments publish their scheduler
    (``dask scheduler --scheduler-file``, ``dask-mpi``): JSON with its address.
    """
    path = spec.get("scheduler_file")
    if spec.get("manager") and (path or spec.get("scheduler")):
        raise InputError(
            "[cluster] names a manager and a scheduler: a run starts a cluster or "
            "joins one. Keep manager (and its options), or scheduler."
        )
    if not path:
        return spec
    if spec.get("scheduler"):
        raise InputError(
            "Both a scheduler address and a scheduler file are given. Give one: "
            "--scheduler (scheduler = ...) or --scheduler-file (scheduler_file = ...)."
        )
    require_file(path, "Scheduler file")
    try:
        with open(path, "rb") as f:
            address = json.loads(f.read(1 << 20))["address"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        detail = one_line(exc, 120)
        raise InputError(
            f"Scheduler file {path!r} cannot be read as a Dask scheduler file "
            f"({detail}). Give the file the scheduler wrote with --scheduler-file."
        ) from exc
    check_address(address, f"The address in scheduler file {path!r},")
    spec["scheduler"] = address
    return spec


@contextlib.contextmanager
def connect(spec):
    """A client of the scheduler at spec["scheduler"], or of a new local cluster."""
    _import_distributed()
    from distributed import Client, LocalCluster

    address = spec.get("scheduler")
    if address:
        check_address(address)
        security = _security(spec, address)
        timeout = spec.get("timeout", CONNECT_TIMEOUT)
        try:
            client = Client(address, timeout=f"{timeout}s", security=security)
        except (OSError, TimeoutError) as exc:
            raise InputError(
                f"Cannot reach the Dask scheduler at {address} within {timeout} s "
                f"({type(exc).__name__}). Check the address and that the scheduler "
                "runs (and, for tls://, the certificates)."
            ) from exc
        with client:
            yield client
        return
    if spec.get("manager"):
        with (
            scratch_space(),
            _closed_after(make_manager(spec)) as cluster,
            Client(cluster) as client,
        ):
            _start_workers(cluster, client, spec)
            yield client
        return
    processes = spec.get("processes", False)
    if not processes:
        return_freed_memory()
    with (
        scratch_space(),
        LocalCluster(
            n_workers=spec.get("n_workers", 2),
            threads_per_worker=spec.get("threads_per_worker", 1),
            memory_limit=spec.get("memory_limit", "auto"),
            processes=processes,
            # Worker processes log at this process's level: their memory
            # warnings show with -v only (the plan has fitted the memory).
            silence_logs=logging.getLogger("distributed").getEffectiveLevel(),
            **listening(spec.get("host", LOOPBACK), processes),
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


#: Where a local cluster listens unless the job names another interface: a
#: scheduler runs whatever task a client sends it, so nobody else may reach it.
LOOPBACK = "127.0.0.1"


def listening(host, processes):
    """LocalCluster keywords that keep every port (scheduler, workers, dashboards)
    on ``host``. In-process workers talk to the scheduler in memory (inproc://)
    and only their dashboards listen."""
    where = {
        "dashboard_address": f"{_bracketed(host)}:0",
        "worker_dashboard_address": f"{_bracketed(host)}:0",
    }
    if processes:
        where["host"] = host
    return where


def _bracketed(host):
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def scratch_space():
    """Worker scratch (locks, spilled data) in a temporary folder removed at the end,
    not in dask's shared ``dask-scratch-space``, whatever kind of cluster starts."""
    import dask

    with (
        tempfile.TemporaryDirectory(prefix="dist-meanshift-") as scratch,
        dask.config.set({"temporary-directory": scratch}),
    ):
        yield scratch


def check_address(address, where="cluster.scheduler"):
    """Refuse a scheduler address that is not ``scheme://host:port`` of a known comm.

    Checked before a client is made: a client of a malformed address fails
    again when it is collected, with a traceback on stderr.
    """
    _import_distributed()
    from distributed.comm.addressing import parse_address, parse_host_port

    schemes = ("tcp", "tls", "ws", "wss", "ucx", "inproc")
    try:
        if not isinstance(address, str):
            raise ValueError(f"not a string but {type(address).__name__}")
        scheme, location = parse_address(address)
        if scheme not in schemes:
            raise ValueError(f"unknown scheme {scheme!r}")
        if scheme != "inproc":
            parse_host_port(location)
    except ValueError as exc:
        raise InputError(
            f"{where} {shown(address, 80)} is not a Dask scheduler address ({exc}). "
            f"Give one such as tcp://host:8786 (schemes: {', '.join(schemes)})."
        ) from None


#: Keys of ``[cluster.options]``, at any depth, whose values name code that
#: distributed or a cluster manager would import or run: a class (``cls`` in
#: SpecCluster specs, ``worker_class``, ``scheduler_class``...), a preload
#: module or script, a plugin, a worker command or a job script's shell lines.
#: Keys ending in ``_class`` or ``_cls`` are refused as well.
CODE_KEYS = frozenset(
    {
        "cls",
        "class",
        "preload",
        "preload_argv",
        "preload_nanny",
        "preload_nanny_argv",
        "plugins",
        "security_loader",
        "worker_command",
        "job_script_prologue",
        "env_extra",
        "python",
        "shebang",
    }
)


#: Command-line flags of ``dask worker`` and ``dask scheduler`` that import or
#: run code, as a manager's extra arguments would pass them (dask-jobqueue's
#: ``worker_extra_args``).
CODE_FLAGS = ("--preload", "--worker-class", "--plugin", "--nanny-class")


def code_keys(options, prefix="cluster.options"):
    """The dotted names of every key of ``options`` that names code to import or run."""
    found = []
    items = options.items() if isinstance(options, dict) else enumerate(options)
    for key, value in items:
        name = f"{prefix}.{key}" if isinstance(key, str) else f"{prefix}[{key}]"
        if isinstance(key, str) and (
            key.lower() in CODE_KEYS or key.lower().endswith(("_class", "_cls"))
        ):
            found.append(name)
        elif isinstance(value, dict | list):
            found += code_keys(value, name)
        elif isinstance(value, str) and value.strip().lower().startswith(CODE_FLAGS):
            found.append(name)
    return found


#: Names of distributed's LocalCluster as a manager: kept on loopback too.
LOCAL_MANAGERS = ("distributed.LocalCluster", "distributed.deploy.local.LocalCluster")
#: Packages whose cluster managers a job file may name without trust_manager.
TRUSTED_MANAGERS = (
    "distributed",
    "dask_jobqueue",
    "dask_kubernetes",
    "dask_cloudprovider",
    "dask_gateway",
    "dask_yarn",
    "coiled",
)
#: Seconds to wait for the first worker of a managed cluster (a batch queue).
START_TIMEOUT = 600


def make_manager(spec):
    """The cluster manager a job names: ``manager`` built with ``options``.

    In the style of dask-ctl: ``manager = "dask_jobqueue.SLURMCluster"`` and
    ``[cluster.options]`` as its keyword arguments. A job file is data, never
    code: only classes of :data:`TRUSTED_MANAGERS` packages are imported
    unless the job sets ``trust_manager = true``, and the class must be a
    ``distributed`` cluster.

    Returns
    -------
    distributed.deploy.Cluster
        Started (its scheduler), with no worker asked for yet.
    """
    import importlib

    _import_distributed()
    from distributed.deploy import Cluster

    name = spec["manager"]
    module, _, attr = name.rpartition(".")
    if not module or not attr:
        raise InputError(
            f"cluster.manager {name!r} is not a 'package.Class' name. Give one such "
            'as "dask_jobqueue.SLURMCluster".'
        )
    trusted = spec.get("trust_manager", False)
    if module.split(".")[0] not in TRUSTED_MANAGERS and not trusted:
        raise InputError(
            f"cluster.manager {name!r} is not from a known Dask cluster package "
            f"({', '.join(TRUSTED_MANAGERS)}). A job file is data, not code: set "
            "trust_manager = true in [cluster] to import it anyway."
        )
    options = dict(spec.get("options", {}))
    named = code_keys(options)
    if named and not trusted:
        raise InputError(
            f"{', '.join(named[:3])}{' ...' if len(named) > 3 else ''} name code "
            "to import or run (a class, a preload, a command). A job file is data, "
            "not code: drop the key(s), or set trust_manager = true in [cluster] "
            "if you trust this file."
        )
    if name in LOCAL_MANAGERS:
        # Only this machine reaches a local cluster, unless the options say otherwise.
        host = options.get("host", LOOPBACK)
        for key, value in listening(host, options.get("processes", True)).items():
            # A port alone (":0") names no interface: it stays on the host.
            if str(options.get(key, "")).startswith(":"):
                options[key] = f"{_bracketed(host)}{options[key]}"
            options.setdefault(key, value)
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(
            f"cluster.manager {name!r} cannot be imported ({type(exc).__name__}: "
            f"{exc}). Install its package, or check the name."
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Cluster)):
        raise InputError(
            f"cluster.manager {name!r} is not a Dask cluster class (a subclass of "
            "distributed.deploy.Cluster). Name a cluster manager."
        )
    try:
        return cls(**options)
    # A manager fails as it likes (a bad keyword, a worker that cannot start
    # with it): what the job gave it is what to check first.
    except Exception as exc:
        detail = one_line(exc)
        raise InputError(
            f"{name} could not start with these cluster.options ({detail}). Check "
            "[cluster.options] against its documentation."
        ) from exc


@contextlib.contextmanager
def _closed_after(cluster):
    """A manager's cluster, closed on the way out.

    When an error stops the run, a failure to close the cluster is logged and
    the error goes on: dask_jobqueue's close asserts that every job it asked
    for started ("AssertionError: Status.created"), which hid the line that
    says why none did (an sbatch that failed), as a race decided.
    """
    try:
        yield cluster
    except BaseException:
        try:
            cluster.close()
        except Exception:  # the error in flight says more
            logger.debug("closing the cluster failed as well", exc_info=True)
        raise
    cluster.close()


def _start_workers(cluster, client, spec):
    """Ask for the workers of ``scale`` or ``adapt``; wait for the first of them."""
    adapt = spec.get("adapt")
    if adapt is not None:
        cluster.adapt(minimum=adapt.get("minimum", 0), maximum=adapt.get("maximum"))
    elif spec.get("scale") is not None:
        cluster.scale(spec["scale"])
    wanted = adapt.get("minimum", 0) if adapt is not None else spec.get("scale", 0)
    if not wanted:
        return
    timeout = spec.get("start_timeout", START_TIMEOUT)
    failures = _Failures()
    watched = [logging.getLogger(n) for n in ("tornado.application", "distributed")]
    saved = [(lg.level, lg.propagate) for lg in watched]
    for lg in watched:
        lg.addHandler(failures)
        if not lg.isEnabledFor(logging.ERROR):
            # Heard here, shown nowhere (the command prints one line).
            lg.setLevel(logging.ERROR)
            lg.propagate = False
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.wait_for_workers(
                    1, timeout=max(0.1, min(1.0, deadline - time.monotonic()))
                )
                return
            except (TimeoutError, AssertionError) as exc:
                # A manager whose job failed to start may also fail its own
                # state check (dask_jobqueue: "AssertionError: Status.created"),
                # as a race decides: wait on for the failure it logs.
                if failures.fatal:
                    # The manager could not ask for a worker (an sbatch that
                    # failed): none will come, whatever the timeout.
                    raise RunError(
                        f"{spec['manager']} could not start a worker "
                        f"({failures.fatal}): check [cluster.options] and its "
                        "platform"
                    ) from exc
                if time.monotonic() < deadline:
                    continue
                seen = f" (last failure: {failures.last})" if failures.last else ""
                raise RunError(
                    f"no worker of {spec['manager']} started within {timeout:g} s"
                    f"{seen}: check its queue or platform (the jobs may wait, or "
                    "fail at start), or raise [cluster] start_timeout"
                ) from exc
    finally:
        for lg, (level, propagate) in zip(watched, saved, strict=True):
            lg.removeHandler(failures)
            lg.setLevel(level)
            lg.propagate = propagate


class _Failures(logging.Handler):
    """The last line of the last error a manager logged while starting workers
    (an sbatch that failed says why on its stderr)."""

    last = fatal = None

    def __init__(self):
        super().__init__(logging.ERROR)

    def emit(self, record):
        exc = record.exc_info[1] if record.exc_info else None
        text = str(exc) if exc is not None else record.getMessage()
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines:
            self.last = lines[-1][:200]
            # A callback of the manager failed (tornado logs it): its workers
            # were not asked for.
            if record.name.startswith("tornado"):
                self.fatal = self.last


def dashboard_link(client, spec):
    """The dashboard's address as it listens: a local cluster's on its own host.

    ``client.dashboard_link`` names the machine's address for an in-process
    scheduler, where nothing listens (the dashboard is on loopback).
    """
    local = spec.get("manager") in LOCAL_MANAGERS
    remote = spec.get("scheduler") or (spec.get("manager") and not local)
    port = client.scheduler_info().get("services", {}).get("dashboard")
    if remote or not port:
        return client.dashboard_link
    host = spec.get("options", {}).get("host") if local else spec.get("host")
    return f"http://{_bracketed(host or LOOPBACK)}:{port}/status"


def has_dashboard(client, remote):
    """Whether the link would show a dashboard: it is drawn with bokeh."""
    import importlib.util

    served = "dashboard" in client.scheduler_info().get("services", {})
    return served and (remote or importlib.util.find_spec("bokeh") is not None)


class Watch:
    """What the watchdog saw: ``reason`` is set when it stopped the run."""

    reason = None


@contextlib.contextmanager
def watchdog(client, timeout):
    """Stop the run when the cluster cannot make progress; yield a :class:`Watch`.

    Every worker paused over its memory limit, or no worker at all, for
    ``timeout`` seconds in a row: distributed itself would wait for ever. The
    main thread is interrupted (``KeyboardInterrupt``) with ``reason`` set.
    """
    import _thread

    stop = threading.Event()
    seen = Watch()

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
                seen.reason = _stall_reason(workers, timeout)
                _thread.interrupt_main()
                return

    thread = threading.Thread(target=watch, daemon=True, name="dist-meanshift-watch")
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join()


def _stall_reason(workers, timeout):
    if not workers:
        why = (
            "the cluster has no worker; start workers or check why they die "
            "(dist-meanshift -v shows their logs)"
        )
    else:
        why = (
            "every worker is paused over its memory limit "
            f"({_memory_limit(workers) / 2**20:.0f} MiB), past the memory plan made "
            "at the start (other work on them?); raise the memory limit"
        )
    return f"no worker could run for {timeout:g} s: {why}"


def _security(spec, address):
    tls = {k: spec[k] for k in ("tls_ca_file", "tls_cert", "tls_key") if k in spec}
    if not address.startswith("tls://"):
        if tls:
            raise InputError(
                f"TLS certificates are given but the scheduler address {address} is "
                "not tls://. Use a tls:// address, or drop the tls_* keys."
            )
        return None
    missing = {"tls_ca_file", "tls_cert", "tls_key"} - set(tls)
    if missing:
        raise InputError(
            f"A tls:// scheduler needs tls_ca_file, tls_cert and tls_key; missing "
            f"{', '.join(sorted(missing))}. Add them to [cluster] in the job file."
        )
    for key, path in tls.items():
        require_file(path, f"cluster.{key}")
    _import_distributed()
    from distributed.security import Security

    return Security(
        tls_ca_file=tls["tls_ca_file"],
        tls_client_cert=tls["tls_cert"],
        tls_client_key=tls["tls_key"],
        require_encryption=True,
    )


@contextlib.contextmanager
def report(path):
    if not path:
        yield
        return
    _import_distributed()
    from distributed import performance_report

    try:
        import bokeh  # noqa: F401 - the report is drawn with it
    except ImportError:
        raise InputError(
            "--report needs bokeh. Install the plot extra: pip install "
            "'dist-meanshift[plot]'."
        ) from None
    with performance_report(filename=path):
        yield
