"""Cost of the block functions alone, on one thread, per pair or per row.

    python benchmarks/blocks.py

The numbers behind the levers in the README's "How it scales": each block
function timed (best of three) on the blobs of ``run.py``, with BLAS held to one
thread and no Dask. Use it to compare a change to ``_blocks/`` with the code
before it in the same sitting: the machine is shared, so only ratios from one
sitting mean much.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

from dist_meanshift import _blocks, get_bin_seeds

BLOBS = {"centers": 8, "n_features": 3, "cluster_std": 1.0, "center_box": (-20, 20)}
BANDWIDTH = 2.93  # estimate_bandwidth(quantile=0.1) of these blobs


def best_of(fn, repeat=3):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def converge(centers, X, steps):
    """Centers after ``steps`` flat mean shift iterations."""
    for _ in range(steps):
        sums, weights = _blocks.shift_partial_sums(centers, X, BANDWIDTH, "flat")
        centers = sums[weights > 0] / weights[weights > 0, None]
    return centers


def main():
    h = BANDWIDTH
    X, _ = make_blobs(n_samples=500_000, random_state=0, **BLOBS)
    X32 = X.astype(np.float32)
    seeds = get_bin_seeds(X, h)
    every, _ = make_blobs(n_samples=100_000, random_state=0, **BLOBS)
    rows = []
    with threadpool_limits(limits=1, user_api="blas"):
        for name, centers in [
            ("bin seeds, iteration 1", seeds),
            ("bin seeds, iteration 4", converge(seeds, X, 3)),
        ]:
            for kernel in ("flat", "gaussian"):
                t = best_of(
                    lambda c=centers, k=kernel: _blocks.shift_partial_sums(c, X, h, k)
                )
                rows.append(
                    (
                        f"{kernel} sums, {len(centers)} {name}",
                        t / len(X) * 1e9,
                        "ns/row",
                    )
                )
        for name, centers in [
            ("every point, iteration 1", every[:20_000]),
            ("every point, iteration 3", converge(every[:20_000], every, 2)),
        ]:
            t = best_of(
                lambda c=centers: _blocks.shift_partial_sums(c, every, h, "flat"), 1
            )
            pairs = len(centers) * len(every)
            rows.append(
                (
                    f"flat sums, {len(centers)} centers, {name}",
                    t / pairs * 1e9,
                    "ns/pair",
                )
            )
        t = best_of(lambda: _blocks.cell_sums(X32, 0.1 * h))
        rows.append(("cell_sums, float32, cells of h/10", t / len(X) * 1e9, "ns/row"))
        t = best_of(lambda: _blocks.bin_counts(X32, h))
        rows.append(("bin_counts, float32, bins of h", t / len(X) * 1e9, "ns/row"))
        # The 8 modes most seeds reach (as a fit's cluster centers: distinct;
        # the first 8 seeds all reach one mode, whose ties no cell can settle).
        reached, count = np.unique(converge(seeds, X, 8), axis=0, return_counts=True)
        modes = reached[np.argsort(-count, kind="stable")[:8]]
        t = best_of(lambda: _blocks.assign_labels(X32, modes))
        rows.append(("assign_labels, 8 centers, float32", t / len(X) * 1e9, "ns/row"))
    for name, value, unit in rows:
        print(f"{name:<52} {value:8.2f} {unit}")


if __name__ == "__main__":
    main()
