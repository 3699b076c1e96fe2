"""Every Python block and every job file in the docs runs as written.

Each page's blocks run in order, in a folder holding the small data they name
(``data.zarr``, ``points.parquet``, ``slide.tif``, ``climate.nc``), so that a
block runs in seconds. Two substitutions, said here: the remote scheduler
``tcp://scheduler:8786`` is a real local cluster's address, and
``jobs/quickstart.toml`` is a copy making 20,000 rows instead of 200,000 (the
full quickstart is run by ``test_cli``). A job naming a batch-system manager is
built (its job script written), not submitted.
"""

from __future__ import annotations

import re
import shutil
import textwrap
import tomllib

import numpy as np
import pytest
from commands import ROOT
from distributed import LocalCluster

from dist_meanshift import Job

PAGES = sorted((ROOT / "docs").glob("*.md"))


def _blocks(page, language):
    text = page.read_text()
    found = re.findall(
        rf"^( *)```{language}\n(.*?)^\1```", text, re.DOTALL | re.MULTILINE
    )
    return [textwrap.dedent(body) for _, body in found]


def _data(where):
    """The small inputs the docs' examples name."""
    import pandas as pd
    import tifffile
    import xarray as xr

    from dist_meanshift.demo import make_blobs_zarr

    make_blobs_zarr(
        where / "data.zarr", n_samples=3000, n_features=2, centers=3, chunk_rows=1000
    )
    rng = np.random.default_rng(0)
    points = np.vstack([rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 6])
    frame = pd.DataFrame(points, columns=["x", "y"])
    frame.to_parquet(where / "points.parquet", row_group_size=200)
    picture = np.zeros((64, 48, 3), np.uint8)
    picture[:, 24:] = (200, 40, 40)
    picture += rng.integers(0, 10, size=picture.shape, dtype=np.uint8)
    tifffile.imwrite(where / "slide.tif", picture, tile=(32, 32), photometric="rgb")
    lat, lon = np.linspace(-60, 60, 12), np.linspace(0, 330, 12)
    warm = np.abs(lat)[:, None] < 25 + np.zeros(12)
    xr.Dataset(
        {
            "t2m": (("lat", "lon"), np.where(warm, 3.0, -3.0)),
            "tp": (("lat", "lon"), np.where(warm, -2.0, 2.0)),
        },
        coords={"lat": lat, "lon": lon},
    ).to_netcdf(where / "climate.nc", engine="scipy")
    (where / "jobs").mkdir()
    quickstart = (ROOT / "jobs" / "quickstart.toml").read_text()
    (where / "jobs" / "quickstart.toml").write_text(
        quickstart.replace("n_samples = 200000", "n_samples = 20000")
    )


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    _data(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p, "python")], ids=lambda p: p.name
)
def test_every_python_block_runs_as_written(page, workdir):
    blocks = _blocks(page, "python")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        namespace = {"__name__": "__docs__"}
        for block in blocks:
            code = block.replace("tcp://scheduler:8786", cluster.scheduler_address)
            # Running the docs' own code is what this test is for.
            exec(compile(code, f"{page.name} block", "exec"), namespace)  # noqa: S102


@pytest.mark.parametrize(
    "page", [p for p in PAGES if _blocks(p, "toml")], ids=lambda p: p.name
)
def test_every_job_in_the_docs_runs_as_written(page, workdir):
    for i, block in enumerate(_blocks(page, "toml")):
        parsed = tomllib.loads(block)
        manager = parsed.get("cluster", {}).get("manager", "")
        if manager.startswith("dask_jobqueue."):
            pytest.importorskip("dask_jobqueue")
            from dist_meanshift.dask_cluster import make_manager

            spec = dict(parsed["cluster"])
            with make_manager(spec) as cluster:
                assert "#SBATCH" in cluster.job_script()
            continue
        job = workdir / f"{page.stem}-{i}.toml"
        job.write_text(block)
        result = Job.load(job).run()
        assert result.n_clusters >= 2
        for made in (result.table, result.dataset, *result.pictures):
            assert made is None or (workdir / made).exists()


def test_the_readme_tour_runs(workdir):
    """The README's Python tour, on 3,000 rows of blobs like the quickstart's."""
    text = (ROOT / "README.md").read_text()
    (tour,) = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    import zarr

    from dist_meanshift.demo import make_blobs_zarr

    make_blobs_zarr(
        workdir / "tour.zarr", n_samples=3000, n_features=3, centers=6, seed=0
    )
    X = zarr.open_array(str(workdir / "tour.zarr" / "X"), mode="r")[:]
    shutil.rmtree(workdir / "tour.zarr")
    namespace = {"X": X}
    exec(compile(tour, "README tour", "exec"), namespace)  # noqa: S102
    assert namespace["result"].n_clusters == 6
