"""Tables and images end to end through the command, against zarr in the same run.

    python benchmarks/formats.py --workdir /tmp/formats           # both
    python benchmarks/formats.py --workdir /tmp/formats --table   # or one

--table: 10,000,000 x 3 blobs written as zarr and as a Parquet file of ten row groups;
``dist-meanshift fit`` clusters each (flat kernel, bandwidth 2, bin seeding), the two
alternating twice; prints wall time and the peak resident memory of the command
and its workers, and Parquet's ratios to zarr.

--image: scikit-learn's china.jpg upscaled to 9600 x 6405 (61 megapixels) with noise,
a tiled TIFF; ``dist-meanshift run`` segments it on 2 worker processes of 1 GiB
(binned mode, bandwidth 25 in 0-255 units) and writes the painted picture.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from run import PeakMemory

from dist_meanshift.demo import make_blobs_zarr

ROWS = 10_000_000
IMAGE_JOB = """
[input]
path = "{tif}"

[model]
kernel = "flat"
bandwidth = 25.0
bin_seeding = true
bin_data = 0.1
persist = false

[cluster]
n_workers = 2
threads_per_worker = 1
processes = true
memory_limit = "1GiB"

[output]
path = "{out}/image.result.zarr"
overwrite = true
image = "{out}/segmented.png"
"""


def command(*args):
    """Run the command; its JSON result, wall seconds, and the peak MiB of its
    process and its workers (summed; this process, which made the data, apart)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dist_meanshift", *args, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with PeakMemory(pid=proc.pid) as mem:
        out, err = proc.communicate()
    peak = mem.peak
    if proc.returncode:
        raise RuntimeError(err)
    return json.loads(out), time.perf_counter() - start, peak / 2**20


def tables(workdir):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zarr

    store, table = f"{workdir}/blobs.zarr", f"{workdir}/blobs.parquet"
    if not os.path.exists(table):
        make_blobs_zarr(store, n_samples=ROWS, n_features=3, centers=8,
                        chunk_rows=1_000_000)  # fmt: skip
        X = zarr.open_array(f"{store}/X", mode="r")
        with pq.ParquetWriter(
            table, pa.schema([(c, pa.float32()) for c in "xyz"])
        ) as w:
            for start in range(0, ROWS, 1_000_000):
                block = X[start : start + 1_000_000]
                w.write_table(pa.table(dict(zip("xyz", block.T, strict=True))))
    model = ["--kernel", "flat", "--bandwidth", "2", "--bin-seeding", "--overwrite"]
    inputs = {"zarr": [store, "--array", "X"], "parquet": [table]}
    seen = {"zarr": [], "parquet": []}
    for _ in range(2):
        for kind, source in inputs.items():
            out = f"{workdir}/{kind}.result.zarr"
            result, seconds, peak = command("fit", *source, *model, "--out", out)
            seen[kind].append((seconds, peak))
            print(f"{kind:8} {seconds:6.1f} s  peak {peak:6.0f} MiB  "
                  f"{result['n_clusters']} clusters, sizes {result['sizes'][:3]}...")  # fmt: skip
    t = np.median([s for s, _ in seen["parquet"]]) / np.median(
        [s for s, _ in seen["zarr"]]
    )
    m = np.median([p for _, p in seen["parquet"]]) / np.median(
        [p for _, p in seen["zarr"]]
    )
    print(f"Parquet / zarr: time {t:.2f}x, peak memory {m:.2f}x (medians)")


def image(workdir):
    import tifffile
    from PIL import Image
    from sklearn.datasets import load_sample_image

    tif = f"{workdir}/china61mp.tif"
    if not os.path.exists(tif):
        photo = Image.fromarray(load_sample_image("china.jpg"))
        pixels = np.asarray(photo.resize((9600, 6405), Image.BICUBIC)).astype(float)
        pixels += np.random.default_rng(0).normal(0, 3, pixels.shape)
        tifffile.imwrite(tif, np.clip(pixels, 0, 255).astype(np.uint8),
                         tile=(512, 512), compression="zlib")  # fmt: skip
    job = f"{workdir}/image.toml"
    with open(job, "w") as f:
        f.write(IMAGE_JOB.format(tif=tif, out=workdir))
    result, seconds, peak = command("run", job)
    print(f"61 MP TIFF, 2 workers of 1 GiB: {seconds:.1f} s, peak {peak:.0f} MiB "
          f"(command and workers), {result['n_clusters']} clusters, picture "
          f"{result['pictures'][0]}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", default="/tmp/dist-meanshift-formats")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--image", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    both = not (args.table or args.image)
    if args.table or both:
        tables(args.workdir)
    if args.image or both:
        image(args.workdir)


if __name__ == "__main__":
    main()
