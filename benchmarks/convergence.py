"""Gaussian mean shift to the founding algorithm's modes, before and after.

"Before" is plain fixed-point iteration (every seed shifted until it moves by at
most 1e-9 h: shifting until nothing moves, as the founding text says), in dense
numpy; "after" is dist-meanshift's Gaussian fit (default tol 1e-3: stopping on
the geometric tail of the shifts, jumps along ridges, saddle restarts and a
Newton polish). Same data, same run. Prints modes, iterations, seconds and the
largest distance between matching modes, in bandwidths.

    python benchmarks/convergence.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from dist_meanshift import MeanShift


def fixed_point(X, h, tol=1e-9, max_iter=100_000, merge_tol=0.1):
    """Plain Gaussian mean shift of every point until nothing moves; then merge."""
    C = X.copy()
    active = np.ones(len(C), dtype=bool)
    n_iter = 0
    while active.any() and n_iter < max_iter:
        c = C[active]
        w = np.exp(-((c[:, None] - X[None]) ** 2).sum(-1) / (2 * h * h))
        new = w @ X / w.sum(1)[:, None]
        moved = np.linalg.norm(new - c, axis=1)
        C[active] = new
        active[np.flatnonzero(active)[moved <= tol * h]] = False
        n_iter += 1
    pairs = cKDTree(C).query_pairs(merge_tol * h, output_type="ndarray")
    n = len(C)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), (n, n))
    _, comp = connected_components(graph, directed=False)
    return np.array([C[comp == k].mean(0) for k in range(comp.max() + 1)]), n_iter


# The ridge datasets of the tests (tests/reference.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import ridges

CASES = {f"{name} {len(X)}, h={h:g}": (X, h) for name, (X, h) in ridges().items()}


def main():
    print(
        f"{'data':<26} {'fixed-point':>24} {'dist-meanshift':>24} {'iter ratio':>10} "
        f"{'mode error / h':>15}"
    )
    for name, (X, h) in CASES.items():
        start = time.perf_counter()
        modes, n_iter = fixed_point(X, h)
        t_before = time.perf_counter() - start
        start = time.perf_counter()
        model = MeanShift(h).fit(X)
        t_after = time.perf_counter() - start
        ours = model.cluster_centers_
        dist = np.linalg.norm(modes[:, None] - ours[None], axis=2)
        error = max(dist.min(1).max(), dist.min(0).max()) / h
        before = f"{len(modes)} modes {n_iter:>5} it {t_before:5.2f} s"
        after = f"{len(ours)} modes {model.n_iter_:>5} it {t_after:5.2f} s"
        print(
            f"{name:<26} {before:>24} {after:>24} {n_iter / model.n_iter_:>9.1f}x "
            f"{error:>15.1e}"
        )


if __name__ == "__main__":
    main()
