"""The ``dist-meanshift`` command: jobs as a pipeline stage.

Exit codes: 0 done; 2 bad usage or bad input (one line on stderr, no
traceback); 1 a failure while running (one line, details in the log).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time

import click

from . import __version__
from .jobs import JobError, load_job

logger = logging.getLogger("dist_meanshift")

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


@click.group()
@click.version_option(__version__, prog_name="dist-meanshift")
def main():
    """Mean shift clustering at any scale, on Dask."""


@main.command()
@click.argument("job_file", type=click.Path(dir_okay=False))
@click.option("--scheduler", help="Address of a running Dask scheduler (tcp://...).")
@click.option("--out", "out", help="Output zarr path (overrides output.path).")
@click.option("--overwrite", is_flag=True, default=None, help="Replace the output.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def run(job_file, scheduler, out, overwrite, quiet, verbose):
    """Run the job described by JOB_FILE (TOML)."""
    _setup_logging(quiet, verbose)
    try:
        job = load_job(job_file)
        if scheduler:
            job["cluster"]["scheduler"] = scheduler
        if out:
            job["output"]["path"] = out
        if overwrite is not None:
            job["output"]["overwrite"] = overwrite
        summary = _run_job(job, echo=(lambda *_: None) if quiet else click.echo)
    except (JobError, ValueError, FileExistsError) as exc:
        _fail(EXIT_BAD_INPUT, exc)
    except Exception as exc:
        logger.debug("run failed", exc_info=True)
        _fail(EXIT_FAILED, f"{exc} (rerun with -v for the full log)")
    if not quiet:
        click.echo(summary)


def _run_job(job, echo):
    from .estimator import MeanShift, estimate_bandwidth
    from .io import make_blobs_zarr, write_result

    inp, model_params = job["input"], dict(job["model"])
    out_path = job["output"].get("path") or f"{inp['path'].rstrip('/')}.result.zarr"
    if os.path.exists(out_path) and not job["output"].get("overwrite", False):
        raise FileExistsError(
            f"Output {out_path!r} already exists. Pass --overwrite (or "
            "output.overwrite = true) to replace it, or choose another path."
        )
    if not os.path.exists(inp["path"]):
        if not job["input.make_blobs"]:
            raise ValueError(
                f"Input {inp['path']!r} does not exist. Check the path, or add an "
                "[input.make_blobs] section to make a demo dataset there."
            )
        echo(f"making a demo dataset at {inp['path']}")
        make_blobs_zarr(inp["path"], **job["input.make_blobs"])
    source = os.path.join(inp["path"], inp["array"]) if "array" in inp else inp["path"]
    quantile = model_params.pop("quantile", 0.3)
    started = time.perf_counter()
    with _cluster(job["cluster"]) as client:
        if client.dashboard_link and job["cluster"].get("scheduler") is None:
            echo(f"dashboard: {client.dashboard_link}")
        if model_params.get("bandwidth") is None:
            model_params["bandwidth"] = estimate_bandwidth(source, quantile=quantile)
        model = MeanShift(**model_params)
        for state in model.fit_iter(source):
            echo(
                f"iteration {state.iteration:>3}: {state.n_active:>7} moving "
                f"centers, largest shift {state.max_shift:.3g}"
            )
        attrs = {
            "input": {
                "path": os.path.abspath(source),
                "shape": list(model.labels_.shape),
            },
            "params": model.get_params(),
            "bandwidth": model.bandwidth_,
            "n_iter": model.n_iter_,
            "trace": model.trace_,
            "seconds": time.perf_counter() - started,
            "version": __version__,
        }
        sizes = write_result(
            out_path,
            labels=model.labels_,
            centers=model.cluster_centers_,
            attrs=attrs,
            overwrite=job["output"].get("overwrite", False),
        )
    elapsed = time.perf_counter() - started
    headline = (
        f"{len(sizes)} clusters in {model.n_iter_ + 1} iterations, {elapsed:.1f} s "
        f"(bandwidth {model.bandwidth_:.4g})"
    )
    lines = [
        headline,
        "cluster      size",
        *(f"{i:>7} {n:>9}" for i, n in enumerate(sizes)),
        f"result: {os.path.abspath(out_path)}",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _cluster(spec):
    from distributed import Client, LocalCluster

    if spec.get("scheduler"):
        with Client(spec["scheduler"], timeout="20s") as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=spec.get("n_workers", 2),
            threads_per_worker=spec.get("threads_per_worker", 1),
            memory_limit=spec.get("memory_limit", "auto"),
            processes=False,
            dashboard_address=":0",
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def _setup_logging(quiet, verbose):
    # Progress goes to stdout through click; library logs only with -v.
    level = logging.DEBUG if verbose else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    # The distributed scheduler and workers are chatty at INFO.
    logging.getLogger("distributed").setLevel(
        logging.DEBUG if verbose else logging.WARNING
    )


def _fail(code, message):
    click.echo(f"dist-meanshift: error: {message}", err=True)
    sys.exit(code)
