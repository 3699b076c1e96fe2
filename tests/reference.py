"""A plain-numpy transcription of the founding mean shift algorithm.

Dense, slow and obvious on purpose: the reference the Gaussian engine is tested
against. Every seed climbs to the RBF-weighted mean of all points
(``exp(-||x - c||^2 / (2 h^2))``) until it moves by at most ``tol * h``
(by default ``1e-9``: until no center moves, as the founding text says);
stopped centers within ``merge_tol * h`` of each other (transitively) are merged
into their seed-weighted mean after every iteration; iteration ends when no
center moves; each point gets the label of its nearest center, centers ordered
by decreasing kernel density at their last shift.
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import make_blobs, make_circles, make_moons


def founding_mean_shift(
    X,
    bandwidth,
    *,
    seeds=None,
    max_iter=100_000,
    tol=1e-9,
    merge_tol=0.1,
    return_n_iter=False,
):
    X = np.asarray(X, dtype=np.float64)
    centers = [np.array(s, dtype=np.float64) for s in (X if seeds is None else seeds)]
    count = [1.0] * len(centers)
    density = [0.0] * len(centers)
    moving = [True] * len(centers)
    for t in range(max_iter + 1):
        idx = [i for i in range(len(centers)) if moving[i]]
        C = np.array([centers[i] for i in idx]).reshape(len(idx), X.shape[1])
        W = np.exp(-((C[:, None, :] - X[None]) ** 2).sum(axis=2) / (2 * bandwidth**2))
        new = W @ X / W.sum(axis=1)[:, None]
        for j, i in enumerate(idx):
            moving[i] = np.linalg.norm(new[j] - C[j]) > tol * bandwidth and t < max_iter
            centers[i], density[i] = new[j], W[j].sum()
        centers, count, density, moving = _merge_stopped(
            centers, count, density, moving, merge_tol * bandwidth
        )
        if not any(moving):
            break
    order = sorted(
        range(len(centers)), key=lambda i: (density[i], tuple(centers[i])), reverse=True
    )
    modes = np.array([centers[i] for i in order])
    labels = np.argmin(((X[:, None, :] - modes[None]) ** 2).sum(axis=2), axis=1)
    return (modes, labels, t) if return_n_iter else (modes, labels)


def _merge_stopped(centers, count, density, moving, radius):
    stopped = [i for i in range(len(centers)) if not moving[i]]
    group = {i: i for i in stopped}

    def root(i):
        while group[i] != i:
            i = group[i]
        return i

    for a in stopped:
        for b in stopped:
            if a < b and np.linalg.norm(centers[a] - centers[b]) <= radius:
                group[root(b)] = root(a)
    out = ([], [], [], [])
    members = {}
    for i in stopped:
        members.setdefault(root(i), []).append(i)
    for idx in members.values():
        n = sum(count[i] for i in idx)
        out[0].append(sum(centers[i] * count[i] for i in idx) / n)
        out[1].append(n)
        out[2].append(max(density[i] for i in idx))
        out[3].append(False)
    for i in range(len(centers)):
        if moving[i]:
            for lst, val in zip(
                out, (centers[i], count[i], density[i], True), strict=True
            ):
                lst.append(val)
    return out


def ridges():
    """Data whose modes are reached along slow ridges, each with its bandwidth.

    Shared by the tests and ``benchmarks/convergence.py``.
    """
    rs = np.random.RandomState(0)
    t = np.sqrt(rs.rand(400)) * 3 * np.pi
    spiral = np.c_[t * np.cos(t), t * np.sin(t)] / 3 + rs.normal(0, 0.05, (400, 2))
    return {
        "moons": (make_moons(300, noise=0.05, random_state=0)[0], 0.25),
        "circles": (make_circles(300, noise=0.05, factor=0.5, random_state=0)[0], 0.2),
        "spiral": (spiral, 0.3),
        "elongated": (
            make_blobs(300, centers=3, random_state=0)[0] @ np.diag([4.0, 0.5]),
            1.0,
        ),
    }
