"""Images in, label images out: TIFF, OME-Zarr and PNG on a real LocalCluster."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import zarr
from commands import ROOT

from dist_meanshift import InputError, Job, MeanShift, run_job

tifffile = pytest.importorskip("tifffile")


def _picture(height=96, width=80, seed=0):
    """Three colour regions with noise: a left band, a right band, a square."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3))
    img[:, : width // 2] = [200, 40, 40]
    img[:, width // 2 :] = [40, 40, 200]
    img[height // 4 : height // 2, width // 4 : width // 2 + 10] = [40, 200, 40]
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _job(tmp_path, inp, out="", model='kernel = "flat"\nbandwidth = 30.0\n'):
    path = tmp_path / "job.toml"
    path.write_text(
        f"[input]\n{inp}\n[model]\n{model}[cluster]\nn_workers = 1\n"
        f'threads_per_worker = 2\n[output]\npath = "o.zarr"\n{out}'
    )
    return path


def _expected(rows, **params):
    return (
        MeanShift(**{"kernel": "flat", "bandwidth": 30.0, **params}).fit(rows).labels_
    )


def test_tiled_tiff_gives_a_label_image_of_its_size_and_tiles(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    img = _picture()
    tifffile.imwrite("img.tif", img, tile=(32, 32))
    before = (tmp_path / "img.tif").read_bytes()
    out = 'image = "seg.png"\nlabel_image = "labels.tif"'
    result = run_job(_job(tmp_path, 'path = "img.tif"', out))
    assert (tmp_path / "img.tif").read_bytes() == before  # never modified
    expected = _expected(img.reshape(-1, 3).astype(np.float32))
    group = zarr.open_group("o.zarr", mode="r")
    np.testing.assert_array_equal(group["labels"][:], expected)
    label_image = group["label_image/0"]
    assert label_image.shape == (96, 80) and label_image.chunks == (32, 32)
    np.testing.assert_array_equal(label_image[:], expected.reshape(96, 80))
    # NGFF 0.5, the version for a zarr v3 group: one version, under "ome".
    ome = group["label_image"].attrs["ome"]
    assert group.metadata.zarr_format == 3 and ome["version"] == "0.5"
    assert ome["image-label"]["source"]["image"] == "img.tif"
    assert ome["multiscales"][0]["datasets"][0]["path"] == "0"
    assert "version" not in ome["multiscales"][0]
    assert result.n_clusters == 3 and result.pictures == [str(tmp_path / "seg.png")]
    stored = tifffile.imread("labels.tif")
    assert stored.dtype == np.uint16  # 16-bit labels, whatever their number
    np.testing.assert_array_equal(stored, expected.reshape(96, 80) + 1)
    from PIL import Image

    with Image.open("seg.png") as seg:
        painted = np.asarray(seg)
    assert painted.shape == img.shape
    assert np.abs(painted.astype(int) - img).mean() < 10  # each region its colour


def test_ome_zarr_level_with_spatial_features(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    img = _picture(128, 96)
    group = zarr.open_group("img.ome.zarr", mode="w")
    chw = img.transpose(2, 0, 1)
    group.create_array("0", data=chw, chunks=(3, 64, 64))
    group.create_array("1", data=chw[:, ::2, ::2], chunks=(3, 32, 32))
    axes = [{"name": "c", "type": "channel"}, {"name": "y"}, {"name": "x"}]
    group.attrs["multiscales"] = [
        {"version": "0.4", "axes": axes, "datasets": [{"path": "0"}, {"path": "1"}]}
    ]
    job = _job(tmp_path, 'path = "img.ome.zarr"\nlevel = 1\nspatial_scale = 2.0')
    run_job(job)
    half = img[::2, ::2]
    y, x = np.indices(half.shape[:2]) * 2.0
    rows = np.c_[half.reshape(-1, 3), y.ravel(), x.ravel()].astype(np.float32)
    labels = zarr.open_array("o.zarr/label_image/0", mode="r")
    assert labels.shape == (64, 48) and labels.chunks == (32, 32)
    np.testing.assert_array_equal(labels[:].ravel(), _expected(rows))
    with pytest.raises(InputError, match="resolution levels 0 to 1; level 2"):
        run_job(_job(tmp_path, 'path = "img.ome.zarr"\nlevel = 2'), overwrite=True)


def test_png_and_a_damaged_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from PIL import Image

    img = _picture(40, 30)
    Image.fromarray(img).save("img.png")
    run_job(_job(tmp_path, 'path = "img.png"'))
    labels = zarr.open_array("o.zarr/labels", mode="r")[:]
    np.testing.assert_array_equal(
        labels, _expected(img.reshape(-1, 3).astype(np.float32))
    )
    with open("broken.tif", "wb") as f:
        f.write(b"II*\x00garbage")
    with pytest.raises(InputError, match=r"'broken\.tif' cannot be read as an image"):
        run_job(_job(tmp_path, 'path = "broken.tif"'), overwrite=True)


def test_the_tiff_job_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "jobs" / "tiff.toml", tmp_path)
    (tmp_path / "results/tiff").mkdir(parents=True)
    tifffile.imwrite("results/tiff/slide.tif", _picture(256, 192), tile=(64, 64))
    result = Job.load("tiff.toml").run()
    assert result.n_clusters >= 3
    assert (tmp_path / "results/tiff/segmented.png").exists()
    label_image = zarr.open_array("results/tiff/result.zarr/label_image/0", mode="r")
    assert label_image.shape == (256, 192) and label_image.chunks == (64, 64)


def test_the_tiff_job_runs_as_shipped(tmp_path, monkeypatch):
    # On a fresh copy it writes scikit-learn's photograph as a tiled TIFF first.
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "jobs" / "tiff.toml", tmp_path)
    result = Job.load("tiff.toml").run()
    assert result.n_clusters >= 2
    with tifffile.TiffFile("results/tiff/slide.tif") as tif:
        assert tif.pages[0].is_tiled and tif.pages[0].shape == (427, 640, 3)
    label_image = zarr.open_array("results/tiff/result.zarr/label_image/0", mode="r")
    assert label_image.shape == (427, 640) and label_image.chunks == (256, 256)


def test_a_tiff_rewritten_during_a_run_stops_it(tmp_path):
    import os

    from dist_meanshift._files import InputChanged
    from dist_meanshift.formats.images import open_image

    tifffile.imwrite(tmp_path / "img.tif", _picture(), tile=(32, 32))
    image = open_image(tmp_path / "img.tif")
    rows = image.to_dask()
    tifffile.imwrite(tmp_path / "img.tif", _picture(seed=1), tile=(32, 32))
    stat = os.stat(tmp_path / "img.tif")
    os.utime(tmp_path / "img.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(InputChanged, match=r"img\.tif changed during the run"):
        rows.sum().compute()


def test_a_png_label_file_holds_16_bit_labels(tmp_path, monkeypatch):
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    tifffile.imwrite("img.tif", _picture(), tile=(32, 32))
    run_job(_job(tmp_path, 'path = "img.tif"', 'label_image = "labels.png"'))
    with Image.open("labels.png") as png:
        assert png.mode.startswith("I;16") or png.mode == "I"
        stored = np.asarray(png)
    group = zarr.open_group("o.zarr", mode="r")
    np.testing.assert_array_equal(stored, group["labels"][:].reshape(96, 80) + 1)
