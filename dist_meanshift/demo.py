"""Demo datasets in the format their path names, so that every shipped job runs.

``[input.make_blobs]`` makes Gaussian blobs at ``[input] path`` when it is
missing: a zarr group (the default), a Parquet or CSV table, or a NetCDF
dataset. ``[input] image`` with a TIFF path writes a picture (a file, or
scikit-learn's sample photograph) as a tiled TIFF. Each is written aside and
put in place complete.
"""

from __future__ import annotations

import os

import numpy as np
import zarr

from ._outputs import BLOBS_FORMAT, EVERY_CHUNK, jsonable, written
from .errors import InputError
from .formats.datasets import NETCDF as _NETCDF
from .formats.tables import SUFFIXES as _TABLES

#: Suffixes of TIFF pictures.
_TIFF = (".tif", ".tiff")


def make_demo(path, **blobs):
    """Write a Gaussian-blobs demo at ``path`` in the format its suffix names.

    A table holds the features as columns ``x``, ``y``, ``z`` (``f0``, ``f1``...
    beyond three) and each row's blob as the text column ``blob``; a NetCDF
    dataset holds them as variables of the same names over a ``lat`` x ``lon``
    grid of about ``n_samples`` points; anything else is a zarr group (see
    :func:`make_blobs_zarr`).
    """
    name = os.fspath(path).lower().rstrip("/")
    if not name.endswith(_TABLES + _NETCDF):
        make_blobs_zarr(path, **blobs)
        return
    points, labels = blob_points(**blobs)
    names = feature_names(points.shape[1])
    with written(path) as tmp:
        if name.endswith(_NETCDF):
            _netcdf(tmp, points, names)
            return
        import pandas as pd

        frame = pd.DataFrame(points, columns=names)
        frame["blob"] = [f"b{i}" for i in labels]
        if name.endswith(".csv"):
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)


def feature_names(n_features):
    """The demo's feature names: x, y, z, or f0, f1, ... beyond three."""
    return (
        list("xyz"[:n_features])
        if n_features <= 3
        else [f"f{i}" for i in range(n_features)]
    )


def blob_points(*, n_samples, n_features, centers, seed=0, std=1.0, chunk_rows=None):
    """The blobs of :func:`make_blobs_zarr` in memory (float32) and their labels."""
    del chunk_rows  # one file: written whole
    rng = np.random.default_rng(seed)
    true_centers = rng.uniform(-20, 20, size=(centers, n_features))
    labels = rng.integers(0, centers, size=n_samples)
    points = true_centers[labels] + rng.normal(scale=std, size=(n_samples, n_features))
    return points.astype(np.float32), labels


def _netcdf(tmp, points, names):
    import xarray as xr

    n = len(points)
    height = max(1, int(np.sqrt(n)))
    width = n // height
    grid = points[: height * width].reshape(height, width, -1)
    xr.Dataset(
        {name: (("lat", "lon"), grid[..., i]) for i, name in enumerate(names)},
        coords={
            "lat": np.linspace(-90, 90, height),
            "lon": np.linspace(-180, 180, width, endpoint=False),
        },
    ).to_netcdf(tmp)


def write_picture(path, image):
    """Write the picture ``image`` (a file, or a scikit-learn sample) at ``path``.

    A TIFF path gets a tiled TIFF of the picture's own pixels (read later
    tile by tile); any other path, the pixels as float rows in zarr with the
    picture's shape in its attributes.

    Returns
    -------
    tuple or None
        The picture's shape, for a zarr path (a TIFF is an image input).
    """
    from .formats.images import load_picture

    if os.fspath(path).lower().endswith(_TIFF):
        import tifffile

        pixels = np.round(load_picture(image) * 255).astype(np.uint8)
        with written(path) as tmp:
            tifffile.imwrite(tmp, pixels, tile=(256, 256), photometric="rgb")
        return None
    if os.fspath(path).lower().endswith(_TABLES + _NETCDF):
        raise InputError(
            f"input.image writes a picture as a TIFF or as zarr, not as {path!r}. "
            "Give a .tif or .zarr input path."
        )
    pixels = load_picture(image)
    write_array(path, pixels.reshape(-1, 3), {"image_shape": pixels.shape})
    return pixels.shape


def make_blobs_zarr(
    path, *, n_samples, n_features, centers, seed=0, chunk_rows=100_000, std=1.0
):
    """Write a Gaussian-blobs dataset to a zarr group, one chunk at a time.

    The group holds ``X`` (float32, ``(n_samples, n_features)``), ``y`` (true
    labels) and ``centers``. Memory stays at one chunk whatever ``n_samples``.

    Parameters
    ----------
    path : str or os.PathLike
    n_samples, n_features, centers : int
    seed : int, default=0
    chunk_rows : int, default=100_000
    std : float, default=1.0
        Standard deviation of every blob; blob centers are uniform in [-20, 20].
    """
    rng = np.random.default_rng(seed)
    true_centers = rng.uniform(-20, 20, size=(centers, n_features))
    with written(path) as tmp:
        group = zarr.open_group(tmp, mode="w")
        X = group.create_array(
            "X",
            shape=(n_samples, n_features),
            dtype="f4",
            chunks=(chunk_rows, n_features),
            config=EVERY_CHUNK,
        )
        y = group.create_array(
            "y",
            shape=(n_samples,),
            dtype="i4",
            chunks=(chunk_rows,),
            config=EVERY_CHUNK,
        )
        group.create_array("centers", data=true_centers, config=EVERY_CHUNK)
        for start in range(0, n_samples, chunk_rows):
            stop = min(n_samples, start + chunk_rows)
            chunk_rng = np.random.default_rng([seed, start])
            labels = chunk_rng.integers(0, centers, size=stop - start)
            points = true_centers[labels] + chunk_rng.normal(
                scale=std, size=(stop - start, n_features)
            )
            X[start:stop] = points.astype(np.float32)
            y[start:stop] = labels
        group.attrs.update({"format": BLOBS_FORMAT, "complete": True})


def write_array(path, data, attrs=None):
    """Write an in-memory array to a zarr array, atomically.

    Parameters
    ----------
    path : str or os.PathLike
    data : ndarray
    attrs : dict, default=None
    """
    data = np.asarray(data)
    chunks = (min(len(data), 65536), *data.shape[1:])
    with written(path) as tmp:
        arr = zarr.create_array(
            tmp, shape=data.shape, dtype=data.dtype, chunks=chunks, config=EVERY_CHUNK
        )
        arr[:] = data
        arr.attrs.update(jsonable(attrs or {}))
