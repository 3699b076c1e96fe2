"""Pictures of a result (needs the ``plot`` extra: matplotlib and pillow)."""

from __future__ import annotations

import numpy as np

#: Points drawn in a scatter picture; more only hide each other.
MAX_POINTS = 20_000


def plot_result(path, X, labels, centers, trace, dims=(0, 1), seed=0):
    """Save a PNG: clusters in two dimensions beside the convergence trace.

    Parameters
    ----------
    path : str or os.PathLike
    X : array-like of shape (n_samples, n_features)
        numpy, dask or zarr; at most ``MAX_POINTS`` rows are drawn, evenly spaced.
    labels : array-like of shape (n_samples,)
    centers : ndarray of shape (n_clusters, n_features)
    trace : list of dict
        ``n_active`` and ``max_shift`` per iteration.
    dims : tuple of int, default=(0, 1)
        The two features to draw.
    seed : int, default=0
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = X.shape[0]
    rows = np.unique(np.linspace(0, n - 1, min(n, MAX_POINTS)).astype(np.int64))
    pts = np.asarray(_take(X, rows))
    lab = np.asarray(_take(labels, rows))
    i, j = dims
    fig, (ax, tr) = plt.subplots(1, 2, figsize=(12, 5))
    ax.scatter(pts[:, i], pts[:, j], c=lab, s=2, cmap="tab20", alpha=0.6)
    ax.scatter(centers[:, i], centers[:, j], c="black", marker="x", s=80)
    ax.set_xlabel(f"feature {i}")
    ax.set_ylabel(f"feature {j}")
    ax.set_title(f"{len(centers)} clusters ({len(rows)} of {n} points drawn)")
    its = [t["iteration"] for t in trace]
    tr.plot(its, [t["n_active"] for t in trace], "o-", label="moving centers")
    tr.set_xlabel("iteration")
    tr.set_ylabel("moving centers")
    tr.set_yscale("symlog")
    shift = tr.twinx()
    shift.plot(its, [max(t["max_shift"], 1e-16) for t in trace], "s--", color="C1")
    shift.set_yscale("log")
    shift.set_ylabel("largest shift", color="C1")
    tr.set_title("convergence")
    fig.tight_layout()
    from ._outputs import written

    with written(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)


def _take(a, rows):
    taken = a[rows]
    return taken.compute() if hasattr(taken, "compute") else taken
