"""Tables in, tables out: Parquet and CSV on a real LocalCluster, as numpy would."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from commands import ROOT, run_cli
from data import BLOBS

from dist_meanshift import InputError, Job, MeanShift, load, run_job

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

MODEL = '[model]\nbandwidth = 1.0\nkernel = "flat"\n'
CLUSTER = "[cluster]\nn_workers = 1\nthreads_per_worker = 2\n"


def _frame():
    frame = pd.DataFrame(BLOBS, columns=["x", "y"])
    frame["name"] = [f"p{i}" for i in range(len(frame))]
    frame.index = pd.Index(np.arange(len(frame)) * 10, name="id")
    return frame


def _job(tmp_path, inp, out=""):
    path = tmp_path / "job.toml"
    path.write_text(f'[input]\n{inp}\n{MODEL}{CLUSTER}[output]\npath = "o.zarr"\n{out}')
    return path


def test_parquet_folder_in_labels_table_out_partitioned_like_the_input(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    frame = _frame()
    (tmp_path / "points").mkdir()
    for i, rows in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[rows].to_parquet(tmp_path / "points" / f"part{i}.parquet")
    job = _job(
        tmp_path, 'path = "points"\ncolumns = ["x", "y"]', "table_columns = true"
    )
    result = run_job(job)
    expected = MeanShift(bandwidth=1.0, kernel="flat").fit(BLOBS).labels_
    assert result.table == str(tmp_path / "o.labels.parquet")
    parts = sorted((tmp_path / "o.labels.parquet" / "labels").glob("*.parquet"))
    assert len(parts) == 3
    table = pd.read_parquet(tmp_path / "o.labels.parquet" / "labels")
    np.testing.assert_array_equal(table["label"].to_numpy(), expected)
    np.testing.assert_array_equal(table["row"].to_numpy(), np.arange(len(frame)))
    np.testing.assert_array_equal(table.index.to_numpy(), frame.index.to_numpy())
    assert (table["name"] == frame["name"]).all()
    centers = pd.read_parquet(tmp_path / "o.labels.parquet" / "centers.parquet")
    assert list(centers.columns) == ["x", "y", "size"]
    assert centers["size"].tolist() == np.bincount(expected).tolist()
    # A glob of the same files is the same input.
    job = _job(tmp_path, 'path = "points/*.parquet"\ncolumns = ["x", "y"]')
    again = Job.load(job).run(overwrite=True)
    assert again.sizes == result.sizes


@pytest.mark.parametrize("read", ["whole", "by partition"])
def test_csv_with_missing_values_is_refused_by_name_or_dropped_and_counted(
    tmp_path, monkeypatch, read
):
    from dist_meanshift.formats import tables

    if read == "by partition":  # as a CSV file above SMALL_CSV_BYTES is read
        monkeypatch.setattr(tables, "SMALL_CSV_BYTES", 0)
    monkeypatch.chdir(tmp_path)
    frame = _frame()
    frame.loc[frame.index[[5, 17]], "y"] = np.nan
    frame.to_csv(tmp_path / "points.csv", index=False)
    with pytest.raises(InputError, match=r"missing values in column\(s\) 'y' \(2\)"):
        run_job(_job(tmp_path, 'path = "points.csv"\ncolumns = ["x", "y"]'))
    assert not (tmp_path / "o.zarr").exists()
    job = _job(tmp_path, 'path = "points.csv"\ncolumns = ["x", "y"]\nmissing = "drop"')
    result = run_job(job)
    assert result.n_dropped == 2
    assert "dropped 2 rows with missing values" in result.summary
    kept = np.delete(BLOBS, [5, 17], axis=0)
    expected = MeanShift(bandwidth=1.0, kernel="flat").fit(kept).labels_
    table = pd.read_parquet(tmp_path / "o.labels.parquet" / "labels")
    np.testing.assert_array_equal(table["label"].to_numpy(), expected)
    assert 5 not in table["row"].tolist() and len(table) == len(kept)


def test_a_small_csv_is_read_once_whole_and_damage_below_its_head_is_refused(
    tmp_path,
):
    from dist_meanshift.formats.tables import open_table

    frame = _frame()
    frame.to_csv(tmp_path / "p.csv", index=False)
    table = open_table(tmp_path / "p.csv")
    assert table.in_memory and table.columns == ["x", "y"]
    np.testing.assert_array_equal(table.to_dask(), frame[["x", "y"]])
    # Numbers for 1,000 rows, then text: a damaged file, not a text column.
    text = pd.concat([frame] * 6)
    text["y"] = text["y"].astype(object)
    text.iloc[1500, text.columns.get_loc("y")] = "n/a?"
    text.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(
        InputError,
        match=r"column 'y' holds numbers, then text at "
        r"data row 1501 \('n/a\?'\)\. Fix or re-export",
    ):
        open_table(tmp_path / "t.csv")
    (tmp_path / "h.csv").write_text("x,y\n")
    with pytest.raises(InputError, match="has a header and no rows"):
        open_table(tmp_path / "h.csv")
    (tmp_path / "e.csv").write_text("")
    with pytest.raises(InputError, match=r"e\.csv' cannot be read as a CSV table"):
        open_table(tmp_path / "e.csv")


def test_bad_columns_are_refused_by_name(tmp_path):
    _frame().to_parquet(tmp_path / "p.parquet")
    done = run_cli("fit", "p.parquet", "--out", "o.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # every numeric column: x and y
    assert "labels table:" in done.stdout
    job = Job(input={"path": str(tmp_path / "p.parquet"), "columns": ["x", "z"]})
    with pytest.raises(InputError, match=r"has no column\(s\) \['z'\]"):
        run_job(job.override("output", path=str(tmp_path / "q.zarr")))
    job.input["columns"] = ["x", "name"]
    with pytest.raises(InputError, match=r"\['name'\] .* are not numeric"):
        run_job(job)


def test_a_damaged_parquet_file_is_refused_in_one_line(tmp_path):
    _frame().to_parquet(tmp_path / "p.parquet")
    data = (tmp_path / "p.parquet").read_bytes()
    (tmp_path / "p.parquet").write_bytes(data[: len(data) // 2])
    done = run_cli("fit", "p.parquet", "--out", "o.zarr", cwd=tmp_path)
    assert done.returncode == 2
    assert "cannot be read as a Parquet table" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.zarr").exists()


def test_dataframes_in_python_keep_their_feature_names():
    dd = pytest.importorskip("dask.dataframe")
    frame = _frame()[["x", "y"]]
    expected = MeanShift(bandwidth=1.0).fit(BLOBS)
    model = MeanShift(bandwidth=1.0).fit(frame)
    assert model.feature_names_in_.tolist() == ["x", "y"]
    np.testing.assert_array_equal(model.labels_, expected.labels_)
    lazy = MeanShift(bandwidth=1.0).fit(dd.from_pandas(frame, npartitions=3))
    assert lazy.feature_names_in_.tolist() == ["x", "y"]
    np.testing.assert_array_equal(lazy.labels_.compute(), expected.labels_)


def test_json_names_the_labels_table(tmp_path):
    _frame().to_parquet(tmp_path / "p.parquet")
    done = run_cli("fit", "p.parquet", "--out", "o.zarr", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import pandas as pd

    result = json.loads(done.stdout)
    assert result["table_folder"] == str(tmp_path / "o.labels.parquet")
    # Each key names what a script reads directly.
    labels = pd.read_parquet(result["table"])
    assert len(labels) == len(_frame()) and {"row", "label"} <= set(labels.columns)
    centers = pd.read_parquet(result["centers_table"])
    assert centers["size"].sum() == len(labels)


def test_the_table_job_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "jobs" / "table.toml", tmp_path)
    (tmp_path / "results/table").mkdir(parents=True)
    frame = _frame()
    frame.loc[frame.index[3], "x"] = np.nan
    frame.to_parquet(tmp_path / "results/table/points.parquet", row_group_size=100)
    result = run_job("table.toml")
    assert result.n_dropped == 1
    table = pd.read_parquet(tmp_path / "results/table/result.labels.parquet/labels")
    assert len(table) == len(frame) - 1 and "name" in table.columns
    assert (
        len(list((tmp_path / "results/table/result.labels.parquet/labels").iterdir()))
        == 3
    )


def test_the_table_job_runs_as_shipped(tmp_path, monkeypatch):
    # On a fresh copy it makes its demo table (x, y and the text column blob).
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "jobs" / "table.toml", tmp_path)
    result = run_job("table.toml")
    assert result.n_clusters == 4
    table = pd.read_parquet(result.to_dict()["table"])
    assert len(table) == 20_000 and {"x", "y", "blob", "row", "label"} <= set(
        table.columns
    )
    # Each blob is one cluster.
    assert table.groupby("blob")["label"].nunique().eq(1).all()


def test_a_table_rewritten_during_a_run_stops_it(tmp_path):
    import os

    from dist_meanshift._files import InputChanged
    from dist_meanshift.formats.tables import open_table

    _frame().to_parquet(tmp_path / "p.parquet", row_group_size=100)
    table = open_table(tmp_path / "p.parquet", ["x", "y"])
    rows = table.to_dask()  # read once: the run has started
    _frame().iloc[::-1].to_parquet(tmp_path / "p.parquet", row_group_size=100)
    stat = os.stat(tmp_path / "p.parquet")
    os.utime(tmp_path / "p.parquet", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(InputChanged, match=r"p\.parquet changed during the run"):
        rows.sum().compute()


def test_a_failed_labels_table_leaves_nothing_behind(tmp_path, monkeypatch):
    from dist_meanshift.formats import tables

    _frame().to_parquet(tmp_path / "p.parquet")
    table = tables.open_table(tmp_path / "p.parquet", ["x", "y"])
    labels = np.zeros(table.to_dask().shape[0], dtype=np.int64)

    def broken(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(tables, "_write_part", broken)
    with pytest.raises(OSError, match="disk gone"):
        tables.write_label_table(
            tmp_path / "t.parquet", table, labels, np.zeros((1, 2)), [1]
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.parquet"]


def test_a_table_model_predicts_its_table_and_load_gives_back_what_was_saved(
    tmp_path,
):
    frame = _frame()
    frame["extra"] = np.arange(len(frame), dtype=float)  # a numeric non-feature
    frame.to_parquet(tmp_path / "t.parquet")
    (tmp_path / "job.toml").write_text(
        '[input]\npath = "t.parquet"\ncolumns = ["x", "y"]\n'
        '[model]\nkernel = "flat"\nbandwidth = 1.0\n[output]\npath = "m.zarr"\n'
    )
    fitted = run_cli("run", "job.toml", cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    model = load(str(tmp_path / "m.zarr"))
    assert model.feature_names_in_.tolist() == ["x", "y"]
    stored = np.asarray(model.labels_)
    assert len(stored) == len(frame)
    done = run_cli("predict", "m.zarr", "t.parquet", "--out", "p.zarr", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    import zarr

    predicted = zarr.open_array(str(tmp_path / "p.zarr" / "labels"), mode="r")[:]
    np.testing.assert_array_equal(predicted, stored)
