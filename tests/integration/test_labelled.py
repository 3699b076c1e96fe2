"""Labelled arrays: xarray datasets over zarr and NetCDF, labels on their coordinates."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from commands import ROOT

from dist_meanshift import InputError, Job, MeanShift, run_job

xr = pytest.importorskip("xarray")


def _dataset(nlat=30, nlon=40, seed=0):
    """Two climates over a grid: a warm dry band and a cold wet one, with noise."""
    rng = np.random.default_rng(seed)
    lat, lon = np.linspace(-60, 60, nlat), np.linspace(0, 350, nlon)
    warm = (np.abs(lat) < 25)[:, None] & np.ones(nlon, bool)
    t2m = np.where(warm, 3.0, -3.0) + rng.normal(0, 0.3, (nlat, nlon))
    tp = np.where(warm, -2.0, 2.0) + rng.normal(0, 0.3, (nlat, nlon))
    return xr.Dataset(
        {
            "t2m": (("lat", "lon"), t2m),
            "tp": (("lat", "lon"), tp),
            "trend": (("time",), np.arange(5.0)),
        },
        coords={"lat": lat, "lon": lon, "time": np.arange(5)},
    )


def _job(tmp_path, path, extra=""):
    job = tmp_path / "job.toml"
    job.write_text(
        f'[input]\npath = "{path}"\nvariables = ["t2m", "tp"]\ndims = ["lat", "lon"]\n'
        f'{extra}[model]\nkernel = "flat"\nbandwidth = 1.0\n[cluster]\nn_workers = 1\n'
        '[output]\npath = "o.zarr"\noverwrite = true\n'
    )
    return job


@pytest.mark.parametrize("store", ["grid.zarr", "grid.nc"])
def test_labels_come_back_on_the_same_coordinates(tmp_path, monkeypatch, store):
    monkeypatch.chdir(tmp_path)
    ds = _dataset()
    if store.endswith(".nc"):
        ds.to_netcdf(store, engine="scipy")
    else:
        ds.chunk({"lat": 10, "lon": 20}).to_zarr(store, consolidated=False)
    result = run_job(_job(tmp_path, store))
    rows = np.c_[ds["t2m"].values.ravel(), ds["tp"].values.ravel()]
    expected = MeanShift(bandwidth=1.0, kernel="flat").fit(rows).labels_
    out = f"o.labels{'.nc' if store.endswith('.nc') else '.zarr'}"
    # Opened as a user would, without a warning (they are errors here).
    opened = xr.open_dataset(out) if out.endswith(".nc") else xr.open_zarr(out)
    with opened as labels:
        assert labels["label"].dims == ("lat", "lon")
        np.testing.assert_array_equal(labels["lat"].values, ds["lat"].values)
        np.testing.assert_array_equal(labels["label"].values.ravel(), expected)
    assert result.n_clusters == 2 and result.dataset == str(tmp_path / out)
    # A second run replaces its own labels dataset.
    assert run_job(_job(tmp_path, store)).sizes == result.sizes


def test_names_that_do_not_fit_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _dataset().to_netcdf("grid.nc", engine="scipy")
    job = Job.load(_job(tmp_path, "grid.nc"))
    job.input["variables"] = ["t2m", "rain"]
    with pytest.raises(InputError, match=r"has no variable\(s\) \['rain'\]"):
        run_job(job)
    job.input["variables"] = ["t2m", "trend"]
    with pytest.raises(InputError, match=r"\['trend'\] .* are not over the sample"):
        run_job(job)


def test_a_damaged_netcdf_file_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.nc").write_bytes(b"CDF\x01" + b"\x00" * 7)
    with pytest.raises(InputError, match="cannot be read as an xarray dataset"):
        run_job(_job(tmp_path, "grid.nc"))


def test_the_xarray_job_runs_as_shipped(tmp_path, monkeypatch):
    # On a fresh copy it makes its demo grid (4 blobs as variables x and y).
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "jobs" / "xarray.toml", tmp_path)
    result = Job.load("xarray.toml").run()
    assert result.n_clusters == 4
    with xr.open_dataset("results/xarray/result.labels.nc") as labels:
        assert labels["label"].shape == (141, 141)
        assert set(np.unique(labels["label"].values)) == {0, 1, 2, 3}


def test_an_xarray_store_fitted_without_variables_says_how_to_name_them(tmp_path):
    _dataset().to_zarr(tmp_path / "d.zarr", consolidated=False)
    with pytest.raises(InputError, match=r"is an xarray dataset of variables") as err:
        MeanShift().fit(str(tmp_path / "d.zarr"))
    assert "--array" not in str(err.value) and "variables = [...]" in str(err.value)


def test_inspect_names_a_labels_dataset(tmp_path, monkeypatch):
    from dist_meanshift._inspect import describe

    monkeypatch.chdir(tmp_path)
    _dataset().to_netcdf("grid.nc", engine="scipy")
    job = Job(
        input={"path": "grid.nc", "variables": ["t2m", "tp"], "dims": ["lat", "lon"]},
        model={"kernel": "flat", "bandwidth": 1.5},
        output={"path": "r.zarr"},
    )
    job.run()
    (line,) = describe("r.labels.nc")
    assert line.startswith("labels dataset: complete, label over lat 30 x lon 40")
