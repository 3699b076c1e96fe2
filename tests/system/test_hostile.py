"""The new surface against hostile files, job files and output paths.

Every case runs the command as a real subprocess on real files: code named in
a job file is never imported, outputs never land on or in an input, and each
bad file or value ends in one line naming it, exit code 2, before any work,
with the inputs byte-identical afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import sys
import textwrap

import numpy as np
import pytest
import zarr
from commands import cli, run_cli

PNG = pytest.importorskip("PIL.Image")

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("imported")

class Worker:
    pass
"""


def _snapshot(root):
    """Every file under root (links not followed) and its content's digest."""
    seen = {}
    for folder, dirs, files in os.walk(root):
        for name in sorted(
            files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]
        ):
            path = os.path.join(folder, name)
            if os.path.islink(path) or not os.path.isfile(path):
                seen[path] = "special"
                continue
            with open(path, "rb") as f:
                seen[path] = hashlib.sha256(f.read()).hexdigest()
    return seen


def _refused(done, *words, code=2):
    """One line on stderr naming the problem, exit ``code``, no traceback."""
    assert done.returncode == code, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "Warning" not in done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def _refused_untouched(where, args, *words):
    """The command refuses in one line, writes no result, leaves inputs byte-identical."""
    before = _snapshot(where)
    line = _refused(cli(*args, cwd=where), *words)
    assert _snapshot(where) == before
    assert not (where / "r.zarr").exists()
    return line


#: A job clustering x.npy with the flat kernel; sections follow.
_NPY_JOB = """
[input]
path = "x.npy"
[model]
kernel = "flat"
bandwidth = 2.0
"""


def _job(where, text, name="job.toml"):
    path = where / name
    path.write_text(textwrap.dedent(text))
    return path


def _image_job(where, output, path="img.png", extra=""):
    """A job clustering the picture ``path`` with ``output`` lines in [output]."""
    return _job(
        where,
        f"""
[input]
path = "{path}"
{extra}
[model]
kernel = "flat"
bandwidth = 40.0
bin_seeding = true
[output]
path = "r.zarr"
{output}
""",
    )


def _npy(where, n=300, d=2, name="x.npy"):
    rs = np.random.RandomState(0)
    data = np.vstack([rs.normal(size=(n // 2, d)), rs.normal(size=(n - n // 2, d)) + 6])
    np.save(where / name, data)
    return where / name


def _png(where, name="img.png", mode="RGB", size=(24, 16)):
    rs = np.random.RandomState(1)
    bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode] if mode != "1" else 1
    pixels = rs.randint(0, 255, size=(size[1], size[0], bands), dtype=np.uint8)
    if mode == "1":
        PNG.fromarray(pixels[..., 0] > 127).convert("1").save(where / name)
    else:
        PNG.fromarray(pixels if bands > 1 else pixels[..., 0], mode).save(where / name)
    return where / name


# --- code named in a job file ------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        # SpecCluster would import os.system as the scheduler's class and call it.
        """
        [cluster]
        manager = "distributed.SpecCluster"
        [cluster.options.scheduler]
        cls = "os.system"
        [cluster.options.scheduler.options]
        command = "touch {marker}"
        """,
        # LocalCluster's workers would import the named module.
        """
        [cluster]
        manager = "distributed.LocalCluster"
        [cluster.options]
        worker_class = "payload.Worker"
        """,
        # A preload module, nested in the worker options.
        """
        [cluster]
        manager = "distributed.LocalCluster"
        [cluster.options.worker_options]
        preload = ["payload"]
        """,
        # A nested spec's class, in a list of workers.
        """
        [cluster]
        manager = "distributed.SpecCluster"
        [cluster.options.workers.a]
        cls = "payload.Worker"
        """,
    ],
    ids=["speccluster-os-system", "worker-class", "preload", "nested-spec"],
)
def test_no_code_named_in_a_job_file_is_imported(tmp_path, options):
    marker = tmp_path / "MARKER"
    (tmp_path / "payload.py").write_text(PAYLOAD.format(marker=str(marker)))
    _npy(tmp_path)
    job = _job(tmp_path, _NPY_JOB + textwrap.dedent(options).format(marker=marker))
    _refused_untouched(
        tmp_path,
        ("run", job, "--out", "r.zarr"),
        "trust_manager = true",
        "data, not code",
    )
    assert not marker.exists()


def test_a_trusted_job_may_name_a_class(tmp_path):
    from dist_meanshift.dask_cluster import code_keys

    options = {
        "workers": {"a": {"cls": "x.Y", "options": {"preload": ["m"]}}},
        "worker_extra_args": ["--nthreads", "1", "--preload=m"],
        "queue": "normal",
    }
    assert code_keys(options) == [
        "cluster.options.workers.a.cls",
        "cluster.options.workers.a.options.preload",
        "cluster.options.worker_extra_args[2]",
    ]
    _npy(tmp_path)
    job = _job(
        tmp_path,
        _NPY_JOB
        + """
        [cluster]
        manager = "distributed.LocalCluster"
        trust_manager = true
        scale = 1
        [cluster.options]
        n_workers = 0
        processes = false
        worker_class = "distributed.Worker"
        """,
    )
    done = cli("run", job, "--out", "r.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "2 clusters" in done.stdout


# --- a local cluster listens on loopback only --------------------------------

LISTENING = """
import json, sys
import psutil
from dist_meanshift import Job

seen = set()

def record():
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        for c in proc.net_connections("inet"):
            if c.status == psutil.CONN_LISTEN:
                seen.add(c.laddr.ip)

job = Job(
    input={"path": "x.npy"},
    model={"kernel": "flat", "bandwidth": 2.0},
    cluster=json.loads(sys.argv[1]),
    output={"path": "r.zarr", "overwrite": True},
)
job.run(after_iteration=record, echo=print)
print(json.dumps(sorted(seen)))
"""


@pytest.mark.parametrize(
    "spec",
    [
        # A cluster named (a small input with none runs without workers).
        {"n_workers": 2},
        {"processes": True, "n_workers": 1},
        {
            "manager": "distributed.LocalCluster",
            "scale": 1,
            "options": {"n_workers": 0, "processes": False, "dashboard_address": ":0"},
        },
    ],
    ids=["threads", "processes", "manager"],
)
def test_a_local_cluster_listens_on_loopback_only(tmp_path, spec):
    import subprocess

    _npy(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", LISTENING, json.dumps(spec)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    addresses = json.loads(done.stdout.strip().splitlines()[-1])
    assert addresses, "the running job listened on no socket: nothing was checked"
    assert set(addresses) <= {"127.0.0.1", "::1"}, addresses
    # The dashboard printed is the one that listens.
    for line in done.stdout.splitlines():
        if line.startswith("dashboard:"):
            assert line.startswith("dashboard: http://127.0.0.1:"), line


# --- outputs that would destroy inputs or each other -------------------------


@pytest.mark.parametrize(
    "output,words",
    [
        ('image = "img.png"', ["is the input"]),
        ('plot = "img.png"', ["is the input"]),
        ('label_image = "img.png"', ["is the input"]),
        ('plot = "r.zarr/plot.png"', ["inside the other"]),
        ('image = "seg.png"\nlabel_image = "seg.png"', ["same path"]),
    ],
)
def test_an_output_on_an_input_or_another_output_is_refused(tmp_path, output, words):
    _png(tmp_path)
    job = _image_job(tmp_path, output)
    _refused_untouched(tmp_path, ("run", job), *words)


def test_a_plot_inside_the_input_store_is_refused(tmp_path, zarr_input):
    zarr_input(np.random.RandomState(0).normal(size=(100, 2)), name="data.zarr")
    args = ("fit", "data.zarr", "--out", "r.zarr", "--plot", "data.zarr/plot.png")
    _refused_untouched(
        tmp_path, (*args, "--kernel", "flat", "--bandwidth", 1), "inside it"
    )


def test_the_table_and_the_result_cannot_share_a_path(tmp_path):
    pd = pytest.importorskip("pandas")
    pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0) % 7}).to_parquet(
        tmp_path / "t.parquet"
    )
    job = _job(
        tmp_path,
        """
        [input]
        path = "t.parquet"
        [model]
        kernel = "flat"
        bandwidth = 3.0
        [output]
        path = "r.zarr"
        table = "r.zarr"
        """,
    )
    _refused(cli("run", job, cwd=tmp_path), "same path")
    assert not (tmp_path / "r.zarr").exists()


@pytest.mark.parametrize(
    "key,suffix",
    [
        ("plot", ".png"),
        ("report", ".html"),
        ("label_image", ".png"),
    ],
)
def test_an_existing_file_output_needs_overwrite(tmp_path, key, suffix):
    _png(tmp_path)
    existing = tmp_path / f"mine{suffix}"
    existing.write_bytes(b"a user's own file")
    job = _image_job(tmp_path, f'{key} = "mine{suffix}"')
    _refused_untouched(tmp_path, ("run", job), "already exists", "--overwrite")


def test_a_linked_picture_output_is_refused(tmp_path):
    _npy(tmp_path)
    (tmp_path / "elsewhere.png").write_bytes(b"precious")
    os.symlink(tmp_path / "elsewhere.png", tmp_path / "p.png")
    done = cli(
        "fit",
        "x.npy",
        "--out",
        "r.zarr",
        "--plot",
        "p.png",
        "--overwrite",
        "--kernel",
        "flat",
        "--bandwidth",
        2,
        cwd=tmp_path,
    )
    _refused(done, "symbolic link")
    assert (tmp_path / "elsewhere.png").read_bytes() == b"precious"


def test_labels_table_columns_never_replace_input_columns(tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"a": np.arange(60.0) % 9, "b": np.arange(60.0) % 4, "label": ["t"] * 60}
    )
    frame.to_parquet(tmp_path / "t.parquet")
    job = _job(
        tmp_path,
        """
        [input]
        path = "t.parquet"
        columns = ["a", "b"]
        [model]
        kernel = "flat"
        bandwidth = 3.0
        [output]
        path = "r.zarr"
        table_columns = true
        """,
    )
    _refused_untouched(tmp_path, ("run", job), "'label'", "table_columns")


# --- no work thrown away: refused before the fit ------------------------------


def test_picture_mistakes_are_refused_before_any_work(tmp_path):
    _npy(tmp_path)
    (tmp_path / "afile").write_text("not a folder")
    base = ("fit", "x.npy", "--out", "r.zarr", "--kernel", "flat", "--bandwidth", 2)
    _refused(cli(*base, "--plot", "afile/p.png", cwd=tmp_path), "not a folder")
    job = _job(
        tmp_path,
        _NPY_JOB
        + """
        [output]
        path = "r.zarr"
        plot = "p.png"
        plot_dims = [0, 7]
        """,
    )
    _refused(cli("run", job, cwd=tmp_path), "plot_dims", "0..1")
    assert not (tmp_path / "r.zarr").exists()
    # A missing folder is made, as the result's is.
    done = cli(*base, "--plot", "new/p.png", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "p.png").is_file()


def test_an_rgba_picture_into_jpeg_is_refused_before_any_work(tmp_path):
    _png(tmp_path, mode="RGBA")
    job = _image_job(tmp_path, 'image = "seg.jpg"')
    _refused(cli("run", job, cwd=tmp_path), "JPEG", "4")
    assert not (tmp_path / "r.zarr").exists()


# --- files read wrongly or too greedily ----------------------------------------


def _giant_strip_tiff(path, side=100_000):
    """A 176-byte-ish TIFF that declares side x side pixels in one strip."""
    entries = [
        (256, 4, 1, side),  # ImageWidth
        (257, 4, 1, side),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 8),  # Compression: deflate
        (262, 3, 1, 1),  # Photometric: black is zero
        (273, 4, 1, 0),  # StripOffsets (patched below)
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, side),  # RowsPerStrip: all rows in one strip
        (279, 4, 1, 16),  # StripByteCounts
    ]
    ifd = 8
    data = ifd + 2 + 12 * len(entries) + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", ifd))
    out += struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        value = data if tag == 273 else value
        packed = (
            struct.pack("<H", value) + b"\0\0"
            if kind == 3
            else struct.pack("<I", value)
        )
        out += struct.pack("<HHI", tag, kind, count) + packed
    out += struct.pack("<I", 0) + bytes(16)
    path.write_bytes(bytes(out))


def test_hostile_images_are_refused_in_one_line(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    base = ("--out", "r.zarr", "--kernel", "flat", "--bandwidth", 20)
    tifffile.imwrite(
        tmp_path / "pages.tif",
        np.random.RandomState(0).randint(0, 255, (3, 64, 48), dtype=np.uint8),
        photometric="minisblack",
    )
    _refused(cli("fit", "pages.tif", *base, cwd=tmp_path), "stack", "one 2-D image")
    _giant_strip_tiff(tmp_path / "giant.tif")
    assert (tmp_path / "giant.tif").stat().st_size < 200
    _refused(cli("fit", "giant.tif", *base, cwd=tmp_path), "strips", "tiled")
    # A PNG that declares more pixels than deflate can have packed in it.
    _png(tmp_path, "small.png", mode="L", size=(64, 64))
    data = bytearray((tmp_path / "small.png").read_bytes())
    data[16:24] = struct.pack(">II", 5000, 5000)  # IHDR width, height
    import zlib

    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    _refused(cli("fit", "bomb.png", *base, cwd=tmp_path), "declares")
    assert not (tmp_path / "r.zarr").exists()


def test_a_one_bit_png_is_read_as_zeros_and_ones(tmp_path):
    from dist_meanshift.formats.images import open_image

    _png(tmp_path, "bits.png", mode="1")
    image = open_image(str(tmp_path / "bits.png"))
    values = np.unique(np.asarray(image.to_dask()))
    assert set(values.tolist()) == {0.0, 1.0}
    done = cli(
        "fit",
        "bits.png",
        "--out",
        "r.zarr",
        "--kernel",
        "flat",
        "--bandwidth",
        0.5,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "2 clusters" in done.stdout


def test_a_picture_past_pil_limit_gives_no_warning(tmp_path, monkeypatch):
    from dist_meanshift.formats.images import read_picture

    _png(tmp_path, "big.png", size=(120, 100))
    # PIL warns past MAX_IMAGE_PIXELS; our own checks replace its warning.
    monkeypatch.setattr(PNG, "MAX_IMAGE_PIXELS", 10_000)
    assert read_picture(str(tmp_path / "big.png")).shape == (100, 120, 3)


def test_an_ome_zarr_level_outside_its_store_is_refused(tmp_path, zarr_input):
    zarr_input(np.full((8, 8), 7, dtype="u1"), name="secret.zarr")
    image = zarr.open_group(str(tmp_path / "img.zarr"), mode="w")
    image.attrs["multiscales"] = [
        {"version": "0.4", "axes": ["y", "x"], "datasets": [{"path": "../secret.zarr"}]}
    ]
    done = cli(
        "fit",
        "img.zarr",
        "--out",
        "r.zarr",
        "--kernel",
        "flat",
        "--bandwidth",
        1,
        cwd=tmp_path,
    )
    _refused(done, "outside its own store")


def test_a_model_array_behind_a_link_is_refused(tmp_path):
    from dist_meanshift import MeanShift, load

    X = np.random.RandomState(0).normal(size=(60, 2))
    MeanShift(kernel="flat", bandwidth=1.0).fit(X).save(str(tmp_path / "m.zarr"))
    MeanShift(kernel="flat", bandwidth=9.0).fit(X + 5).save(
        str(tmp_path / "other.zarr")
    )
    centers = tmp_path / "m.zarr" / "cluster_centers"
    os.rename(centers, tmp_path / "moved")
    os.symlink(tmp_path / "other.zarr" / "cluster_centers", centers)
    with pytest.raises(ValueError, match="symbolic link"):
        load(str(tmp_path / "m.zarr"))


def test_pipes_and_folders_posing_as_files_are_refused(tmp_path):
    os.mkfifo(tmp_path / "x.npy")
    os.mkfifo(tmp_path / "sched.json")
    os.mkdir(tmp_path / "d.npy")
    _npy(tmp_path, name="ok.npy")
    base = ("--out", "r.zarr", "--kernel", "flat", "--bandwidth", 2)
    _refused(cli("fit", "x.npy", *base, cwd=tmp_path), "named pipe")
    _refused(cli("fit", "d.npy", *base, cwd=tmp_path), "a folder")
    done = cli("fit", "ok.npy", *base, "--scheduler-file", "sched.json", cwd=tmp_path)
    _refused(done, "named pipe")
    assert not (tmp_path / "r.zarr").exists()


# --- bad values: exit 2, one line, before any work ------------------------------

_BLOBS_JOB = """
[input]
path = "b.zarr"
array = "X"
[input.make_blobs]
n_samples = 200
n_features = 2
centers = 2
{blobs}
[model]
kernel = "flat"
bandwidth = 2.0
{model}
[cluster]
{cluster}
"""


@pytest.mark.parametrize(
    "blobs,model,cluster,words",
    [
        ("chunk_rows = 0", "", "", ["chunk_rows", ">= 1"]),
        ("", "", "n_workers = -1", ["n_workers", ">= 1"]),
        ("", "", 'memory_limit = "lots"', ["memory_limit", "2GiB"]),
        ("", "", 'scheduler = "bogus://host:1"', ["bogus", "tcp://host:8786"]),
        ("", "", 'manager = "distributed.LocalCluster"\nscale = -3', ["scale"]),
        ("", "bandwidth = 1e-300", "", ["bandwidth", "give a bandwidth in"]),
        ("", "bandwidth = 1e308", "", ["bandwidth", "give a bandwidth in"]),
    ],
)
def test_bad_values_are_refused_by_name(tmp_path, blobs, model, cluster, words):
    text = _BLOBS_JOB.format(blobs=blobs, model=model, cluster=cluster)
    job = _job(tmp_path, text.replace("bandwidth = 2.0\nbandwidth", "bandwidth"))
    _refused(cli("run", job, "--out", "r.zarr", cwd=tmp_path), *words)
    assert not (tmp_path / "r.zarr").exists()


def test_bad_files_are_refused_by_name(tmp_path):
    pd = pytest.importorskip("pandas")
    base = ("--out", "r.zarr", "--kernel", "flat", "--bandwidth", 2)
    (tmp_path / "bin.toml").write_bytes(bytes(range(256)))
    _refused(cli("run", "bin.toml", cwd=tmp_path), "not UTF-8")
    (tmp_path / "empty.npy").write_bytes(b"")
    _refused(cli("fit", "empty.npy", *base, cwd=tmp_path), ".npy")
    (tmp_path / "sched.json").write_text(json.dumps({"address": 8786}))
    _npy(tmp_path)
    done = cli("fit", "x.npy", *base, "--scheduler-file", "sched.json", cwd=tmp_path)
    _refused(done, "not a string")
    (tmp_path / "text.png").write_text("hello")
    job = _job(
        tmp_path,
        '[input]\npath = "pix.zarr"\nimage = "text.png"\n[model]\nbandwidth = 1.0\n',
    )
    _refused(cli("run", job, "--out", "r.zarr", cwd=tmp_path), "text.png")
    # Parquet: mixed schemas in a folder, duplicate names in a file.
    (tmp_path / "parts").mkdir()
    pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(tmp_path / "parts" / "0.parquet")
    pd.DataFrame({"b": ["x", "y"]}).to_parquet(tmp_path / "parts" / "1.parquet")
    _refused(cli("fit", "parts", *base, cwd=tmp_path), "mixes Parquet schemas")
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table([pa.array([1.0, 2.0]), pa.array([3.0, 4.0])], names=["a", "a"])
    pq.write_table(table, tmp_path / "dup.parquet")
    _refused(cli("fit", "dup.parquet", *base, cwd=tmp_path), "duplicate column")
    # A column missing among 10,000: the line stays a line.
    wide = pd.DataFrame(np.zeros((3, 10_000)), columns=[f"c{i}" for i in range(10_000)])
    wide.to_parquet(tmp_path / "wide.parquet")
    job = _job(
        tmp_path,
        '[input]\npath = "wide.parquet"\ncolumns = ["nope"]\n'
        "[model]\nbandwidth = 1.0\n",
    )
    line = _refused(cli("run", job, "--out", "r.zarr", cwd=tmp_path), "'nope'")
    assert len(line) < 600
    assert not (tmp_path / "r.zarr").exists()


def test_a_ragged_csv_row_deep_in_the_file_exits_2(tmp_path):
    rows = "\n".join(f"{i % 7}.0,{i % 5}.0" for i in range(40_000))
    (tmp_path / "t.csv").write_text("a,b\n" + rows + "\n1.0,2.0,3.0,4.0\n")
    done = cli(
        "fit",
        "t.csv",
        "--out",
        "r.zarr",
        "--kernel",
        "flat",
        "--bandwidth",
        2,
        "--bin-seeding",
        cwd=tmp_path,
    )
    _refused(done, "t.csv", "Fix or re-export")


def test_a_dataset_dimension_that_is_not_there_is_refused(tmp_path):
    xr = pytest.importorskip("xarray")
    xr.Dataset(
        {"t": (("y", "x"), np.zeros((4, 5))), "p": (("y", "x"), np.ones((4, 5)))}
    ).to_zarr(tmp_path / "d.zarr", consolidated=False)
    job = _job(
        tmp_path,
        '[input]\npath = "d.zarr"\nvariables = ["t", "p"]\ndims = ["nope"]\n'
        "[model]\nbandwidth = 1.0\n",
    )
    _refused(cli("run", job, "--out", "r.zarr", cwd=tmp_path), "'nope'", "dims")


def test_a_spatial_scale_past_float32_is_refused_quietly(tmp_path):
    _png(tmp_path)
    job = _image_job(tmp_path, "", extra="spatial_scale = 1e308")
    _refused(cli("run", job, "--out", "r.zarr", cwd=tmp_path), "spatial_scale")


@pytest.mark.parametrize(
    "attrs,words",
    [
        ({"format": "nope"}, ["format 'nope'"]),
        ({"bandwidth": -5}, ["bandwidth -5"]),
        ({"params": 7}, ["params 7"]),
        ({"params": {"kernel": "evil"}}, ["'kernel' parameter"]),
    ],
)
def test_a_damaged_model_is_refused_on_load_and_described(tmp_path, attrs, words):
    from dist_meanshift import MeanShift, load

    X = np.random.RandomState(0).normal(size=(60, 2))
    MeanShift(kernel="flat", bandwidth=1.0).fit(X).save(str(tmp_path / "m.zarr"))
    group = zarr.open_group(str(tmp_path / "m.zarr"), mode="r+")
    group.attrs.update(attrs)
    with pytest.raises(ValueError, match=words[0].replace("(", r"\(")):
        load(str(tmp_path / "m.zarr"))
    np.save(tmp_path / "x.npy", X)
    done = cli("predict", "m.zarr", "x.npy", "--out", "p.zarr", cwd=tmp_path)
    _refused(done, *words)
    # inspect describes the damaged store instead of failing.
    shown = run_cli("inspect", "m.zarr", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "cluster_centers: shape (" in shown.stdout


# --- quiet and clean -------------------------------------------------------------


def test_a_failing_sbatch_ends_in_one_line(tmp_path):
    pytest.importorskip("dask_jobqueue")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sbatch = bin_dir / "sbatch"
    sbatch.write_text("#!/bin/sh\necho 'sbatch: error: invalid account' >&2\nexit 1\n")
    sbatch.chmod(0o755)
    _npy(tmp_path)
    job = _job(
        tmp_path,
        _NPY_JOB
        + """
        [cluster]
        manager = "dask_jobqueue.SLURMCluster"
        scale = 1
        start_timeout = 30
        [cluster.options]
        cores = 1
        memory = "1GiB"
        """,
    )
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "dist_meanshift", "run", str(job), "--out", "r.zarr"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    # Stopped at the failure, which it names, not after start_timeout.
    assert "could not start a worker" in lines[0] and "sbatch" in lines[0]


def test_a_managed_run_leaves_no_scratch(tmp_path):
    import shutil
    import subprocess

    from commands import ROOT

    shutil.copy(ROOT / "jobs" / "managed.toml", tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(os.environ, TMPDIR=str(scratch))
    done = subprocess.run(
        [sys.executable, "-m", "dist_meanshift", "run", "managed.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert os.listdir(scratch) == []


def test_a_planar_rgb_tiff_is_read_as_height_width_channels(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    from dist_meanshift.formats.images import open_image

    planes = np.random.RandomState(0).randint(0, 255, (3, 64, 48), dtype=np.uint8)
    tifffile.imwrite(
        tmp_path / "rgb.tif", planes, photometric="rgb", planarconfig="separate"
    )
    image = open_image(str(tmp_path / "rgb.tif"))
    assert image.image_shape == (64, 48, 3)
    np.testing.assert_array_equal(np.asarray(image.pixels), planes.transpose(1, 2, 0))


@pytest.mark.parametrize(
    "option,words",
    [
        (("--n-workers", "-1"), ["--n-workers", "x>=1"]),
        (("--memory-limit", "lots"), ["--memory-limit", "2GiB"]),
        (("--scheduler", "bogus://host:1"), ["bogus", "tcp://host:8786"]),
        (("--bandwidth", "1e308"), ["give a bandwidth in"]),
    ],
)
def test_bad_values_on_the_command_line_are_refused_by_name(tmp_path, option, words):
    _npy(tmp_path)
    done = cli(
        "fit", "x.npy", "--out", "r.zarr", "--kernel", "flat", *option, cwd=tmp_path
    )
    _refused(done, *words)
    assert not (tmp_path / "r.zarr").exists()
