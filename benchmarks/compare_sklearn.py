"""Side-by-side: dist-meanshift (flat and gaussian) against scikit-learn's MeanShift.

Same data, same parameters, same run. Prints wall times, their ratio, cluster counts
and the adjusted Rand index between the two labelings.

    python benchmarks/compare_sklearn.py [--sizes 2000 5000 20000]
"""

from __future__ import annotations

import argparse
import time

from sklearn.cluster import MeanShift as SkMeanShift
from sklearn.cluster import estimate_bandwidth
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dist_meanshift import MeanShift


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 5000, 20000])
    args = parser.parse_args()
    header = (
        f"{'n':>7} {'seeding':>8} {'kernel':>8} {'sklearn s':>10} {'ours s':>8} "
        f"{'speedup':>8} {'k sk':>5} {'k ours':>6} {'ARI':>6} {'same labels':>11}"
    )
    print(header)
    for n in args.sizes:
        X, _ = make_blobs(
            n_samples=n,
            centers=8,
            n_features=3,
            cluster_std=1.0,
            center_box=(-20, 20),
            random_state=0,
        )
        h = estimate_bandwidth(X, quantile=0.1, n_samples=2000, random_state=0)
        for bin_seeding in (False, True):
            sk = SkMeanShift(bandwidth=h, bin_seeding=bin_seeding, n_jobs=-1)
            ref, t_ref = timed(sk.fit, X)
            for kernel in ("flat", "gaussian"):
                est = MeanShift(h, kernel=kernel, bin_seeding=bin_seeding)
                ours, t_ours = timed(est.fit, X)
                ari = adjusted_rand_score(ref.labels_, ours.labels_)
                same = bool((ref.labels_ == ours.labels_).all())
                print(
                    f"{n:>7} {('bins' if bin_seeding else 'all'):>8} {kernel:>8} "
                    f"{t_ref:>10.2f} {t_ours:>8.2f} {t_ref / t_ours:>8.2f} "
                    f"{len(ref.cluster_centers_):>5} {len(ours.cluster_centers_):>6} "
                    f"{ari:>6.3f} {same!s:>11}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
