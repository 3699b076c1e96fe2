"""The default Gaussian bandwidth in any dimension: groups found, old rule and new.

Both rules start from scikit-learn's radius ``r`` (the mean distance to the
``k = int(quantile * m)``-th neighbour over ``m`` sampled rows). The old rule
matched the ball's second moment, ``r / sqrt(d + 2)``; the new one,
``r / sqrt(2 ln k)``, keeps the ``k`` rows the radius counts at real weight.
Every case is fitted with ``MeanShift(bandwidth=...)`` (every point a seed,
except the quickstart's bin seeding), and the clusters are compared with the
known groups (adjusted Rand index).

    python benchmarks/gaussian_bandwidth.py
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_iris, load_wine, make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from dist_meanshift import MeanShift, estimate_bandwidth
from dist_meanshift._seeds import BANDWIDTH_SAMPLE_SIZE, neighbours


def cases():
    """(name, X, true labels, quantile, bin seeding)."""
    rng = np.random.default_rng(0)
    centers = rng.uniform(-20, 20, size=(6, 3))
    y = rng.integers(0, 6, size=200_000)
    X = (centers[y] + rng.normal(size=(200_000, 3))).astype(np.float32)
    yield "quickstart (200k x 3, 6 blobs)", X, y, 0.1, True
    for d in (1, 2, 3, 16, 64, 256, 1000):
        X, y = make_blobs(
            n_samples=600 if d < 1000 else 300,
            n_features=d,
            centers=4,
            center_box=(-20, 20),
            random_state=0,
        )
        yield f"4 blobs, {d} features", X, y, 0.3, False
    X = np.vstack([rng.normal(size=(250, 256)), rng.normal(size=(250, 256)) + 5])
    yield "2 groups 5 apart, 256 features", X, np.repeat([0, 1], 250), 0.3, False
    for name, load in (
        ("iris", load_iris),
        ("wine", load_wine),
        ("breast_cancer", load_breast_cancer),
    ):
        bunch = load()
        X = StandardScaler().fit_transform(bunch.data)
        yield f"{name}, standardized", X, bunch.target, 0.3, False


def main():
    print(
        f"{'case':34s} {'groups':>6s} | {'old h':>7s} {'k':>4s} {'ARI':>5s} | "
        f"{'new h':>7s} {'k':>4s} {'ARI':>5s}"
    )
    for name, X, y, quantile, bins in cases():
        r = estimate_bandwidth(X, quantile=quantile)
        k = neighbours(min(len(X), BANDWIDTH_SAMPLE_SIZE), quantile)
        row = [f"{name:34s} {len(set(y)):6d}"]
        for h in (r / np.sqrt(X.shape[1] + 2), r / np.sqrt(2 * np.log(k))):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = MeanShift(bandwidth=h, bin_seeding=bins).fit(X)
            found = len(model.cluster_centers_)
            ari = adjusted_rand_score(y, np.asarray(model.labels_))
            row.append(f"{h:7.3g} {found:4d} {ari:5.2f}")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
