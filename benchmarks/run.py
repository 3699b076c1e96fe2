"""dist-meanshift against scikit-learn, side by side in one run, on the same data.

    python benchmarks/run.py                 # the in-memory table (about 15 minutes)
    python benchmarks/run.py --quick         # smaller sizes, a couple of minutes
    python benchmarks/run.py --out-of-core   # adds the 200,000,000-row zarr case
    python benchmarks/run.py --out-of-core-only --rows 30000000   # that case alone
    python benchmarks/run.py --founding  # Gaussian, every point a seed: 100k-1M rows
    python benchmarks/run.py --input-check-cost    # the chunk check on the store

Prints one table: wall time of each, their ratio, cluster counts, the adjusted Rand
index between the two labelings, and the peak resident memory of all processes
(this one and every worker) during the run. Out-of-core runs are reported as a
multiple of one plain streaming read of the same zarr array on the same cluster,
with the workers' compute time split by kind of task (in the same unit: the
workers' time for that read), which shows where the time beyond the reads goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
import threading
import time
import warnings

import dask
import dask.array as da
import numpy as np
import psutil
import zarr
from dask.utils import key_split
from sklearn.cluster import MeanShift as SkMeanShift
from sklearn.cluster import estimate_bandwidth as sk_estimate_bandwidth
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dist_meanshift import MeanShift
from dist_meanshift.demo import make_blobs_zarr
from dist_meanshift.results import write_result

BLOBS = {"centers": 8, "n_features": 3, "cluster_std": 1.0, "center_box": (-20, 20)}


class PeakMemory:
    """Peak of the summed resident memory of a process (this one) and its children."""

    def __init__(self, interval=0.05, pid=None):
        self.interval = interval
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        me = psutil.Process(self.pid)
        while not self._stop.is_set():
            total = 0
            try:
                tree = [me, *me.children(recursive=True)]
            except psutil.Error:  # the process ended
                return
            for p in tree:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(fn, *args, **kwargs):
    with PeakMemory() as mem:
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
    return out, seconds, mem.peak / 2**20


def blobs(n):
    X, _ = make_blobs(n_samples=n, random_state=0, **BLOBS)
    h = sk_estimate_bandwidth(X, quantile=0.1, n_samples=2000, random_state=0)
    return X, h


def row(name, ours, sk=None):
    (model, t, mem) = ours
    labels = np.asarray(model.labels_)
    k = len(model.cluster_centers_)
    if sk is None:
        return f"{name:<38} {t:>9.2f} {'-':>9} {'-':>7} {k:>4} {'-':>4} {'-':>7} {mem:>8.0f}"
    ref, t_ref, mem_ref = sk
    ari = adjusted_rand_score(ref.labels_, labels)
    return (
        f"{name:<38} {t:>9.2f} {t_ref:>9.2f} {t_ref / t:>6.1f}x {k:>4} "
        f"{len(ref.cluster_centers_):>4} {ari:>7.4f} {mem:>6.0f}/{mem_ref:.0f}"
    )


COMPILE = """
import time
start = time.perf_counter()
from dist_meanshift._blocks.kernels import _flat_loops
import numpy as np
from dist_meanshift._blocks.kernels.flat import flat_indexed_sums, flat_prepare
X = np.random.default_rng(0).normal(size=(1000, 3))
flat_indexed_sums(X[:40], flat_prepare(X, None, 1.0), 1.0)
print(time.perf_counter() - start)
"""


def _fresh_python(code, env=None):
    """The numbers ``code`` prints, run in a fresh Python process."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return [float(v) for v in done.stdout.split()]


def compile_cost():
    """The flat kernel's compiled loop: compiled from scratch (an empty numba
    cache), then loaded from the cache, each in a fresh process (import included)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-cache-")}
    (compiled,), (loaded,) = _fresh_python(COMPILE, env), _fresh_python(COMPILE, env)
    line = (
        f"numba: first call {compiled:.2f} s compiling (empty cache), "
        f"{loaded:.2f} s loading the cache (fresh processes)"
    )
    print(line, flush=True)
    return line


def photographs():
    """china.jpg and flower.jpg pixels (273,280 x 3, 0-255), flat, bin seeding, h = 20."""
    from sklearn.datasets import load_sample_image

    lines = []
    for name in ("china.jpg", "flower.jpg"):
        X = load_sample_image(name).reshape(-1, 3).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # china stops at max_iter, as sklearn's
            ours = timed(MeanShift(20, kernel="flat", bin_seeding=True).fit, X)
            sk = timed(SkMeanShift(bandwidth=20, bin_seeding=True, n_jobs=-1).fit, X)
        same = np.array_equal(ours[0].labels_, sk[0].labels_)
        lines.append(row(f"{name} pixels, flat, bin seeding", ours, sk))
        print(lines[-1], f"  labels equal: {same}", flush=True)
    return lines


def float32_order(n_rows=60_000, bandwidth=0.1):
    """Whether scikit-learn's float32 answer is determined by the data.

    A sample of china.jpg's pixels scaled to [0, 1], float64 and float32,
    with bin seeding at ``bandwidth``: scikit-learn on the rows and on the same
    rows permuted (its tree returns neighbours in another order, and
    ``np.mean`` of float32 rows sums in float32), and dist-meanshift.
    """
    from sklearn.datasets import load_sample_image

    rng = np.random.default_rng(0)
    pixels = load_sample_image("china.jpg").reshape(-1, 3)
    X = pixels[rng.choice(len(pixels), n_rows, replace=False)] / 255
    perm = rng.permutation(n_rows)
    back = np.argsort(perm)

    def gap(a, b):
        if len(a) != len(b):
            return float("nan")
        return float(np.abs(np.sort(a, axis=0) - np.sort(b, axis=0)).max())

    lines = []
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        sk = SkMeanShift(bandwidth=bandwidth, bin_seeding=True, n_jobs=-1).fit(Xd)
        moved = SkMeanShift(bandwidth=bandwidth, bin_seeding=True, n_jobs=-1)
        moved.fit(Xd[perm])
        ours = MeanShift(bandwidth, kernel="flat", bin_seeding=True).fit(Xd)
        lines.append(
            f"{np.dtype(dtype).name} china.jpg sample of {n_rows:,}, h={bandwidth}: "
            f"labels differing, scikit-learn against itself on permuted rows "
            f"{int((sk.labels_ != moved.labels_[back]).sum())}, ours against it "
            f"{int((np.asarray(ours.labels_) != sk.labels_).sum())}; largest center "
            f"gap {gap(sk.cluster_centers_, moved.cluster_centers_):.2g} and "
            f"{gap(ours.cluster_centers_, sk.cluster_centers_):.2g}"
        )
        print(lines[-1], flush=True)
    return lines


def warm_up():
    """One untimed fit of each library on 10,000 rows, in this process.

    The table times fits, not a process's one-time start: numba's (measured
    on its own by :func:`compile_cost`, as the first fit in a fresh process
    by ``--small``) and both libraries' lazy imports.
    """
    X, h = blobs(10_000)
    MeanShift(h, kernel="flat").fit(X)
    SkMeanShift(bandwidth=h, n_jobs=-1).fit(X[:2000])


def in_memory(sizes):
    lines = [compile_cost()]
    warm_up()
    n_all, n_bins, n_big = sizes
    for n in (n_all // 10 * 3, n_all):
        X, h = blobs(n)
        ours = timed(MeanShift(h, kernel="flat").fit, X)
        sk = timed(SkMeanShift(bandwidth=h, n_jobs=-1).fit, X)
        lines.append(row(f"{n:,} flat, every point a seed", ours, sk))
        print(lines[-1], flush=True)

    X, h = blobs(n_bins)
    # The headline row, best of 3 on both sides, alternating: a fit under a
    # second on a shared machine moves by half from one run to the next.
    flats, sks = [], []
    for _ in range(3):
        flats.append(timed(MeanShift(h, kernel="flat", bin_seeding=True).fit, X))
        sks.append(timed(SkMeanShift(bandwidth=h, bin_seeding=True, n_jobs=-1).fit, X))
    flat = min(flats, key=lambda r: r[1])
    sk = min(sks, key=lambda r: r[1])
    lines.append(row(f"{n_bins:,} flat, bin seeding (best of 3)", flat, sk))
    print(
        lines[-1],
        "  times:",
        " ".join(f"{r[1]:.2f}" for r in flats),
        "/",
        " ".join(f"{r[1]:.2f}" for r in sks),
        flush=True,
    )
    gauss = timed(MeanShift(h, kernel="gaussian", bin_seeding=True).fit, X)
    lines.append(row(f"{n_bins:,} gaussian, bin seeding", gauss, sk))
    print(lines[-1], f"  gaussian / flat time: {gauss[1] / flat[1]:.2f}", flush=True)
    binned = timed(MeanShift(h, kernel="flat", bin_seeding=True, bin_data=0.1).fit, X)
    lines.append(row(f"{n_bins:,} flat, bin seeding, binned data", binned, sk))
    print(lines[-1], flush=True)

    X, _ = make_blobs(n_samples=n_big, random_state=0, **BLOBS)
    big = timed(MeanShift(h, kernel="flat", bin_seeding=True).fit, X)
    lines.append(row(f"{n_big:,} flat, bin seeding", big))
    print(lines[-1], f"  growth x{n_big // n_bins}: {big[1] / flat[1]:.2f}", flush=True)
    lines += photographs()

    small, _ = blobs(2000)
    model, t, _ = timed(MeanShift(2.0, kernel="flat", max_iter=50).fit, small)
    print(f"small fit: {t / (model.n_iter_ + 1):.3f} s per iteration", flush=True)
    return lines


SMALL_PEER = """
import pandas as pd
from sklearn.cluster import MeanShift
X = pd.read_csv({path!r}).to_numpy()
MeanShift(bandwidth=0.8).fit(X)
"""

FIRST_FIT = """
import time
start = time.perf_counter()
from sklearn.datasets import load_iris
from dist_meanshift import MeanShift
X = load_iris().data
MeanShift(0.8, kernel="flat").fit(X)
cold = time.perf_counter() - start
start = time.perf_counter()
MeanShift(0.8, kernel="flat").fit(X)
print(cold, time.perf_counter() - start)
"""


def small_jobs(workdir, repeats=3):
    """Small inputs: the command on iris (150 rows) as CSV and as .npy, each a
    fresh process, against a fresh process that reads the CSV with pandas and
    fits scikit-learn; the API's first fit in a fresh process (cold: imports
    included) and its second (warm), against scikit-learn's fit. Best of
    ``repeats``."""
    import subprocess
    import sys

    import pandas as pd
    from sklearn.datasets import load_iris

    X = load_iris().data
    csv, npy = os.path.join(workdir, "iris.csv"), os.path.join(workdir, "iris.npy")
    pd.DataFrame(X, columns=["a", "b", "c", "d"]).to_csv(csv, index=False)
    np.save(npy, X)

    def wall(*cmd):
        best = np.inf
        for i in range(repeats):
            out = os.path.join(workdir, f"o{i}.zarr")
            shutil.rmtree(out, ignore_errors=True)
            args = [a.replace("OUT", out) for a in cmd]
            start = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True, cwd=workdir)
            best = min(best, time.perf_counter() - start)
        return best

    command = [sys.executable, "-m", "dist_meanshift", "fit"]
    flags = ["--kernel", "flat", "--bandwidth", "0.8", "--out", "OUT"]
    peer = wall(sys.executable, "-c", SMALL_PEER.format(path=csv))
    lines = []
    for name, path in (("CSV", csv), (".npy", npy)):
        ours = wall(*command, path, *flags)
        lines.append(
            f"iris as {name:<5} command {ours:6.2f} s, pandas + scikit-learn "
            f"{peer:6.2f} s: {ours / peer:.2f}x the peer's time"
        )
        print(lines[-1], flush=True)
    firsts = []
    for _ in range(repeats):
        firsts.append(_fresh_python(FIRST_FIT))
    cold, warm = np.min(firsts, axis=0)
    sk = min(timed(SkMeanShift(bandwidth=0.8).fit, X)[1] for _ in range(repeats))
    lines.append(
        f"iris API: first fit in a fresh process {cold:.2f} s (imports included), "
        f"warm {warm:.3f} s, scikit-learn {sk:.3f} s: {sk / warm:.2f}x"
    )
    print(lines[-1], flush=True)
    return lines


FOUNDING = {"centers": 8, "n_features": 3, "cluster_std": 1.0, "center_box": (-20, 20)}


def founding(sizes, exact_sizes):
    """The founding algorithm at scale: ``MeanShift(bandwidth=1.5)``, Gaussian,
    every point a seed, on the default local cluster (2 in-process workers).

    From 20,000 rows the centers climb on grid cells of h/4 first and finish
    on every row (``climb="auto"``); at ``exact_sizes`` the exact algorithm
    (``climb="rows"``) runs too, and the largest gap between their modes is
    printed in bandwidths, with whether the clusters and labels are the same.
    """
    from dist_meanshift import dask_cluster

    print(
        f"{'founding, gaussian':<30} {'s':>7} {'MiB':>6} {'iters':>5} {'k':>3} "
        f"{'exact s':>8} {'gap/h':>8} {'same':>5}"
    )
    lines = []
    for n in sizes:
        X, _ = make_blobs(n_samples=n, random_state=0, **FOUNDING)
        with dask_cluster.connect({}):
            fast, t, mem = timed(MeanShift(bandwidth=1.5).fit, X)
            exact = t_exact = None
            if n in exact_sizes:
                exact, t_exact, _ = timed(MeanShift(bandwidth=1.5, climb="rows").fit, X)
        k = len(fast.cluster_centers_)
        text = f"{n:>12,} rows, every point a seed {t:>7.1f} {mem:>6.0f} {fast.n_iter_:>5} {k:>3}"
        if exact is not None:
            same = len(exact.cluster_centers_) == k and np.array_equal(
                np.asarray(exact.labels_), np.asarray(fast.labels_)
            )
            gap = (
                np.abs(exact.cluster_centers_ - fast.cluster_centers_).max() / 1.5
                if same
                else np.inf
            )
            text += f" {t_exact:>8.1f} {gap:>8.1e} {same!s:>5}"
        lines.append(text)
        print(text, flush=True)
    return lines


def founding_zarr(sizes, workdir):
    """The founding algorithm on blobs in zarr (float32, chunks of 1,000,000 rows):
    on the default local cluster, then on 2 worker processes of 512 MiB (which
    keep the data in memory when it fits), then on those with the data streamed
    from zarr at every pass (``persist=False``). The data's reads are counted:
    zarr reads of every chunk (persisting and labelling included), over the
    number of chunks, and per iteration."""
    from distributed import get_task_stream

    from dist_meanshift import dask_cluster

    lines = []
    for n in sizes:
        path = os.path.join(workdir, f"founding-{n}.zarr")
        if not os.path.exists(path):
            print(f"writing {n:,} x 3 float32 to {path} ...", flush=True)
            make_blobs_zarr(
                path, n_samples=n, n_features=3, centers=8, chunk_rows=1_000_000
            )
        X = zarr.open_array(os.path.join(path, "X"), mode="r")
        n_chunks = -(-n // X.chunks[0])
        for where, cluster, persist in [
            ("default cluster", lambda: dask_cluster.connect({}), "auto"),
            ("2 x 512 MiB workers", _small_workers, "auto"),
            ("the same, streamed", _small_workers, False),
        ]:
            model = MeanShift(bandwidth=1.5, persist=persist)
            # Reads stay tasks of their own (not fused into their consumers),
            # so that the task stream counts every one.
            with (
                cluster(),
                dask.config.set({"optimization.fuse.active": False}),
                get_task_stream() as stream,
            ):
                model, t, mem = timed(lambda X=X, m=model: _labelled(m.fit(X)))
            reads = (
                sum(1 for task in stream.data if key_split(task["key"]) == "from-zarr")
                / n_chunks
            )
            text = (
                f"{n:>12,} rows in zarr, {where:<20} {t:>7.1f} s {mem:>6.0f} MiB "
                f"{model.n_iter_ + 1:>3} iterations {len(model.cluster_centers_):>3} "
                f"clusters, {reads:.1f} reads ({reads / (model.n_iter_ + 1):.2f} per "
                "iteration)"
            )
            lines.append(text)
            print(text, flush=True)
    return lines


def _labelled(model):
    """The model, its labels computed (as a run writes them)."""
    np.asarray(model.labels_)
    return model


def input_check_cost(n_rows, workdir, repeats=3):
    """What checking every chunk's identity before its read costs a streamed pass.

    The out-of-core store, read through dist-meanshift's reader on 2 workers of
    512 MiB, with and without the check, alternately; medians.
    """
    from dist_meanshift import _dask

    X = zarr.open_array(os.path.join(_ooc_store(n_rows, workdir), "X"), mode="r")
    times = {True: [], False: []}
    with _small_workers():
        for _ in range(repeats):
            for check in (True, False):
                start = time.perf_counter()
                _dask.from_zarr(X, check=check).sum().compute()
                times[check].append(time.perf_counter() - start)
    with_check, without = np.median(times[True]), np.median(times[False])
    line = (
        f"input check on {n_rows:,} rows ({X.nchunks} chunks): read {with_check:.2f} s "
        f"checked, {without:.2f} s unchecked, cost {with_check / without - 1:+.1%}"
    )
    print(line, flush=True)
    return [line]


@contextlib.contextmanager
def _small_workers():
    """The out-of-core cluster: 2 worker processes of 512 MiB, 1 thread each."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            memory_limit="512MiB",
            dashboard_address=":0",
        ) as cluster,
        Client(cluster),
    ):
        yield


def _ooc_store(n_rows, workdir):
    path = os.path.join(workdir, "big.zarr")
    if not os.path.exists(path):
        print(f"writing {n_rows:,} x 3 float32 to {path} ...", flush=True)
        make_blobs_zarr(
            path, n_samples=n_rows, n_features=3, centers=8, chunk_rows=2_000_000
        )
    return path


def out_of_core_fresh(n_rows, workdir):
    """:func:`out_of_core` in a fresh process started with ``python -c``.

    The workers of a local cluster are spawned processes that import the
    parent's main module again: from this file, scikit-learn and the rest
    of its imports, some 60 MiB of each 512 MiB worker that no user's run
    has (the command's main module imports little). With ``-c`` there is no
    main module to import.
    """
    import subprocess
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import sys; sys.path.insert(0, {here!r}); import run; "
        f"lines = run.out_of_core({n_rows}, {workdir!r}); "
        "print('LINES'); print('\\n'.join(lines))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, stdout=subprocess.PIPE, text=True
    )
    shown, _, lines = done.stdout.partition("LINES\n")
    print(shown, end="", flush=True)
    return lines.splitlines()


def out_of_core(n_rows, workdir):
    from distributed import get_task_stream

    path = _ooc_store(n_rows, workdir)
    X = zarr.open_array(os.path.join(path, "X"), mode="r")
    h = float(
        sk_estimate_bandwidth(X[:100_000], quantile=0.1, n_samples=2000, random_state=0)
    )
    lines = []
    with _small_workers():
        # The first read may find the store's files out of the page cache
        # (this machine is shared, and drops it): the passes then read them
        # from the cache, so the second, warm read is the unit.
        _, cold, _ = timed(lambda: da.from_zarr(X).sum().compute())
        with get_task_stream() as stream:
            _, read, read_mem = timed(lambda: da.from_zarr(X).sum().compute())
        read_work = sum(worker_seconds(stream.data).values())
        print(
            f"one streaming read: {read:.1f} s warm ({read_work:.1f} s of worker "
            f"time), {cold:.1f} s first; peak {read_mem:.0f} MiB",
            flush=True,
        )
        for name, params in [
            ("binned", {"bin_data": 0.1}),
            ("exact", {}),
        ]:
            model = MeanShift(h, kernel="flat", bin_seeding=True, **params)
            out = os.path.join(workdir, f"labels-{name}.zarr")
            shutil.rmtree(out, ignore_errors=True)

            def run(model=model, out=out):
                # What the CLI does: fit, then write the labels chunk by chunk
                # from the workers (with the cluster sizes, in the same pass).
                model.fit(X)
                write_result(
                    out,
                    labels=model.labels_,
                    centers=model.cluster_centers_,
                    attrs={"n_iter": model.n_iter_},
                )
                return model

            with get_task_stream() as stream:
                model, t, mem = timed(run)
            work = sorted(worker_seconds(stream.data).items(), key=lambda kv: -kv[1])
            print(
                f"  {name} worker time, in reads: "
                + ", ".join(f"{k} {v / read_work:.2f}" for k, v in work if v > 0.01)
            )
            lines.append(
                f"{n_rows:,} out-of-core {name:<7} {t:>8.1f} s = {t / read:.1f} reads "
                f"({model.n_iter_ + 1} iterations), peak {mem:.0f} MiB, "
                f"{len(model.cluster_centers_)} clusters"
            )
            print(lines[-1], flush=True)
    return lines


def worker_seconds(stream):
    """Seconds the workers computed, by kind of task, from a task stream."""
    seconds = {}
    for task in stream:
        kind = key_split(task["key"])
        for span in task["startstops"]:
            if span["action"] == "compute":
                seconds[kind] = seconds.get(kind, 0.0) + span["stop"] - span["start"]
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out-of-core", action="store_true")
    parser.add_argument(
        "--out-of-core-only",
        action="store_true",
        help="only: the out-of-core case (--rows rows in zarr, 2 workers of 512 MiB)",
    )
    parser.add_argument(
        "--founding",
        action="store_true",
        help="only: the founding algorithm at 100k, 200k and 1M rows (--large: 1M and 10M in zarr)",
    )
    parser.add_argument("--large", action="store_true")
    parser.add_argument(
        "--small", action="store_true", help="only: the small jobs on iris"
    )
    parser.add_argument(
        "--input-check-cost",
        action="store_true",
        help="only: the out-of-core store read with and without the chunk check",
    )
    parser.add_argument(
        "--float32",
        action="store_true",
        help="only: scikit-learn's float32 answer against itself on permuted rows",
    )
    parser.add_argument("--rows", type=int, default=200_000_000)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.float32:
        float32_order()
        return
    if args.small:
        small_jobs(args.workdir or tempfile.mkdtemp(prefix="dist-meanshift-bench-"))
        return
    if args.founding:
        sizes = (100_000, 200_000, 1_000_000)
        lines = founding(sizes, exact_sizes=(100_000, 200_000))
        if args.large:
            workdir = args.workdir or tempfile.mkdtemp(prefix="dist-meanshift-bench-")
            lines += founding_zarr((1_000_000, 10_000_000), workdir)
        print("\n".join(["", "summary:", *lines]))
        return
    if args.out_of_core_only:
        workdir = args.workdir or tempfile.mkdtemp(prefix="dist-meanshift-bench-")
        print("\n".join(["", "summary:", *out_of_core_fresh(args.rows, workdir)]))
        return
    if args.input_check_cost:
        workdir = args.workdir or tempfile.mkdtemp(prefix="dist-meanshift-bench-")
        input_check_cost(args.rows, workdir)
        return
    sizes = (
        (10_000, 100_000, 1_000_000) if args.quick else (100_000, 1_000_000, 10_000_000)
    )
    print(
        f"{'case':<38} {'ours s':>9} {'sklearn s':>9} {'ratio':>7} {'k':>4} {'k sk':>4} "
        f"{'ARI':>7} {'peak MiB ours/sk':>8}"
    )
    lines = in_memory(sizes)
    if args.out_of_core:
        workdir = args.workdir or tempfile.mkdtemp(prefix="dist-meanshift-bench-")
        lines += out_of_core_fresh(args.rows, workdir)
    print("\n".join(["", "summary:", *lines]))


if __name__ == "__main__":
    main()
