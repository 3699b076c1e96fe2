"""Tables in and out: Parquet and CSV read chunk by chunk, labels written as Parquet.

A table input is a Parquet file, a folder of Parquet files, a CSV file, or a
glob of them, read with ``dask.dataframe`` partition by partition (never
whole). A single CSV file of at most ``SMALL_CSV_BYTES`` is read whole with
pandas instead, once, when opened: its types are inferred from every row
(dask's reader infers them from the first block and fails later on a text
cell below it), and the fit gets a numpy array with no dask dataframe made.
Its feature columns are checked once, when opened (present, numeric),
and once more in the first pass (missing values refused by name, or dropped
and counted when the job says ``missing = "drop"``). The labels go back as a
Parquet dataset partitioned like the input, with each row's number (and, on
request, the input's columns) beside its label, and the centers as a small
table; the folder is written aside and put in place complete.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field

import numpy as np

from .._files import (
    file_identity,
    reading,
    require_file,
    require_path,
    require_unchanged,
)
from .._outputs import MARKER, written
from ..errors import InputError, listed
from .base import Format, LabelsBeside, Option

#: Suffixes read as tables.
SUFFIXES = (".parquet", ".pq", ".csv")
#: The format of a labels table this package wrote (in its MARKER file).
FORMAT = "dist-meanshift-table/1"
MISSING = ("refuse", "drop")
#: A single CSV file of at most this size is read whole into memory when opened
#: (dask's reader makes one partition of it anyway: its default block is 64 MB).
SMALL_CSV_BYTES = 32 * 2**20
#: The columns a labels table adds beside the input's own.
ADDED_COLUMNS = ("row", "label")


def is_table(path):
    """Whether ``path`` names a table input: by suffix, glob, or a folder of Parquet."""
    name = os.fspath(path).rstrip("/")
    if name.lower().endswith(SUFFIXES):
        return True
    if os.path.isdir(name) and not os.path.exists(os.path.join(name, "zarr.json")):
        return bool(glob.glob(os.path.join(name, "*.parquet")))
    return False


@dataclass
class TableInput:
    """A table opened for clustering: its feature columns, read lazily.

    Attributes
    ----------
    path : str
    frame : dask.dataframe.DataFrame or pandas.DataFrame
        The feature columns (rows with missing values dropped, with ``drop``);
        a pandas frame for a small CSV file, read whole when opened.
    columns : list of str
    missing : {"refuse", "drop"}
    lengths : tuple of int or None
        Rows per partition, known after :meth:`to_dask`.
    n_dropped : int
        Rows dropped for missing values, known after :meth:`to_dask`.
    """

    path: str
    frame: object
    columns: list
    missing: str = "refuse"
    source: object = None
    lengths: tuple | None = None
    source_lengths: tuple | None = None
    n_dropped: int = 0
    _array: object = field(default=None, repr=False)

    @property
    def shape(self):
        rows = None if self.lengths is None else int(sum(self.lengths))
        return rows, len(self.columns)

    @property
    def dtype(self):
        return np.result_type(*self.frame.dtypes.tolist())

    chunks = None

    @property
    def in_memory(self):
        """Whether the table was read whole when opened (a small CSV file)."""
        return not hasattr(self.frame, "to_dask_array")

    def to_dask(self):
        """The feature columns as a dask array, after one checking pass.

        The pass counts missing values per column (refused by name, unless
        ``drop``) and the rows of every partition, so that the array's chunks
        are known and the labels can be written back partition by partition.
        A table read whole (:attr:`in_memory`) gives a numpy array instead.
        """
        if self._array is not None:
            return self._array
        frame = self.frame
        if self.in_memory:
            bad = frame.isna()
            counts = bad.sum()
            lengths = [len(frame)]
            kept = [len(frame) - int(bad.any(axis=1).sum())]
        else:
            import dask

            counts, lengths, kept = dask.compute(
                frame.isna().sum(),
                frame.map_partitions(len),
                frame.dropna().map_partitions(len),
            )
        counts = {c: int(n) for c, n in counts.items() if n}
        if counts and self.missing != "drop":
            named = ", ".join(f"{c!r} ({n})" for c, n in counts.items())
            raise InputError(
                f"Input {self.path!r} has missing values in column(s) {named}. "
                'Impute them, or drop those rows with missing = "drop" in [input].'
            )
        if counts:
            self.frame = frame.dropna()
            self.n_dropped = int(sum(lengths) - sum(kept))
        self.source_lengths = tuple(int(n) for n in lengths)
        self.lengths = tuple(int(n) for n in (kept if counts else lengths))
        if self.in_memory:
            self._array = np.ascontiguousarray(self.frame.to_numpy())
        else:
            self._array = self.frame.to_dask_array(lengths=list(self.lengths))
        return self._array


def open_table(path, columns=None, missing="refuse"):
    """Open a Parquet or CSV table (file, folder or glob), checking its columns.

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str, default=None
        The feature columns; by default every numeric column.
    missing : {"refuse", "drop"}, default="refuse"

    Returns
    -------
    TableInput
    """
    name = os.fspath(path)
    if missing not in MISSING:
        raise InputError(
            f"input.missing must be 'refuse' or 'drop'. Got {missing!r} instead."
        )
    require_path(name)
    csv = name.lower().rstrip("/").endswith(".csv")
    if csv and not any(ch in name for ch in "*?["):
        require_file(name)
        if os.path.getsize(name) <= SMALL_CSV_BYTES:
            with reading(name, "a CSV table", "Fix or re-export the file."):
                return _small_csv(name, columns, missing)
    with reading(
        name, f"a {'CSV' if csv else 'Parquet'} table", "Give a readable table."
    ):
        if csv:
            import dask.dataframe as dd

            source = dd.read_csv(name)
        else:
            source = _read_parquet(name)
    columns = feature_columns(source, columns, name)
    return TableInput(name, features(source, columns), columns, missing, source)


def _small_csv(name, columns, missing):
    """A small CSV file read whole, once: the table and its numeric columns.

    A column that is numeric in the file's first rows and holds text further
    down is refused by name and row (a damaged file: dask's reader, which
    infers types from the first block, would fail on it later), never taken
    for a text column and left out of the features.
    """
    import pandas as pd

    source = pd.read_csv(name)
    if not len(source):
        raise InputError(
            f"Input {name!r} has a header and no rows. Give a table with rows."
        )
    numeric = set(_numeric(source))
    for column in source.columns:
        if column in numeric:
            continue
        values = source[column]
        text = values.notna() & pd.to_numeric(values, errors="coerce").isna()
        rows = np.flatnonzero(text.to_numpy())
        if not len(rows) or rows[0] < _HEAD_ROWS:
            continue  # a text column (or text in its first rows: not damage)
        row = int(rows[0])
        raise InputError(
            f"Input {name!r}: column {column!r} holds numbers, then text at data "
            f"row {row + 1} ({str(values.iloc[row])[:40]!r}). Fix or re-export "
            "the file."
        )
    columns = feature_columns(source, columns, name)
    return TableInput(name, features(source, columns), columns, missing, source)


#: A small CSV column with no text in this many first rows and text below them
#: is damaged, not a text column (see _small_csv).
_HEAD_ROWS = 1000


def _numeric(frame):
    """The numeric (not boolean) columns of a frame, in order."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    return [
        c
        for c, t in frame.dtypes.items()
        if is_numeric_dtype(t) and not is_bool_dtype(t)
    ]


def features(frame, columns):
    """The feature columns as floats: float32 when every one is, else float64."""
    single = all(str(frame.dtypes[c]) == "float32" for c in columns)
    return frame[columns].astype("float32" if single else "float64")


def _read_parquet(name):
    """A Parquet file, folder or glob as a dask DataFrame of one partition per row group.

    Each partition is read with pyarrow, so that an index stored in the file
    comes back as the index (dask's reader fails on named indexes with
    pandas 3), and a task holds one row group, however large the files.
    """
    import dask.dataframe as dd
    import pyarrow.parquet as pq

    found = (
        glob.glob(os.path.join(name, "*.parquet"))
        if os.path.isdir(name)
        else glob.glob(name)
    )
    # Files only: a labels table written beside the input is a folder.
    files = sorted(f for f in found if os.path.isfile(f))
    if not files:
        raise InputError(f"Input {name!r} holds no Parquet file. Check the path.")
    # Each file's identity now: a row group read later from a changed file stops
    # the run instead of mixing two versions of the table. One footer read per
    # file gives its row groups and its schema.
    pieces, schema = [], None
    for f in files:
        footer = pq.ParquetFile(f)
        theirs = footer.schema_arrow
        if schema is None:
            schema = theirs  # with its pandas metadata: the index comes back
        elif not theirs.remove_metadata().equals(schema.remove_metadata()):
            diff = sorted(set(map(str, theirs)) ^ set(map(str, schema)), key=str)
            raise InputError(
                f"Input {name!r} mixes Parquet schemas: {os.path.basename(f)!r} "
                f"differs from {os.path.basename(files[0])!r} in {listed(diff, 4)}. "
                "Give files of one schema (or one file)."
            )
        identity = file_identity(f)
        pieces += [(f, i, identity) for i in range(footer.num_row_groups)]
    meta = schema.empty_table().to_pandas()
    return dd.from_map(_read_row_group, pieces, meta=meta, enforce_metadata=False)


def _read_row_group(piece):
    file, index, identity = piece
    import pyarrow.parquet as pq

    require_unchanged(file, identity, f"Row group {index} of input file {file}")
    return pq.ParquetFile(file).read_row_group(index).to_pandas()


def feature_columns(frame, columns, name):
    twice = _repeated(frame.columns)
    if twice:
        raise InputError(
            f"Input {name!r} has duplicate column name(s) {listed(twice)}: a "
            "feature must be one column. Rename them in the file."
        )
    numeric = _numeric(frame)
    if columns is None:
        if not numeric:
            raise InputError(
                f"Input {name!r} has no numeric column. Name the feature columns "
                "with columns = [...] in [input]."
            )
        return numeric
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise InputError(
            f"Input {name!r} has no column(s) {listed(absent)}; it has "
            f"{listed(frame.columns)}. Check columns = [...] in [input]."
        )
    twice = _repeated(columns)
    if twice:
        raise InputError(
            f"columns = [...] names {listed(twice)} more than once. Name each "
            "feature column once."
        )
    words = [c for c in columns if c not in numeric]
    if words:
        raise InputError(
            f"Column(s) {listed(words)} of {name!r} are not numeric; mean shift needs "
            "numeric features. Leave them out of columns = [...] or convert them."
        )
    return list(columns)


def _repeated(names):
    """The names given more than once, in order (linear: tables may be wide)."""
    from collections import Counter

    return sorted((n for n, k in Counter(names).items() if k > 1), key=str)


def write_label_table(path, table, labels, centers, sizes, *, with_columns=False):
    """Write the labels as a Parquet dataset partitioned like the input, atomically.

    ``path`` becomes a folder holding ``labels/`` (one file per input
    partition: ``row``, the row's number in the input, and ``label``, beside
    the input's named index and, with ``with_columns``, its columns; rows
    dropped for missing values are left out) and ``centers.parquet`` (one row
    per cluster: its features and ``size``).

    Parameters
    ----------
    path : str or os.PathLike
    table : TableInput
        After :meth:`TableInput.to_dask`.
    labels : dask.array.Array or ndarray of shape (n_rows,)
    centers : ndarray of shape (n_clusters, n_features)
    sizes : ndarray of shape (n_clusters,)
    with_columns : bool, default=False
    """
    import pandas as pd

    with written(path) as tmp:
        os.makedirs(tmp)
        keep = list(table.source.columns) if with_columns else []
        folder = os.path.join(tmp, "labels")
        os.makedirs(folder)
        if table.in_memory:
            first = _part_path(folder, 0)
            _write_part(table.source, np.asarray(labels), 0, table.columns, keep, first)
        else:
            _write_parts(table, labels, keep, folder)
        summary = pd.DataFrame(centers, columns=[str(c) for c in table.columns])
        summary["size"] = np.asarray(sizes, dtype=np.int64)
        summary.to_parquet(os.path.join(tmp, "centers.parquet"))
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump({"format": FORMAT, "complete": True, "input": table.path}, f)


def _write_parts(table, labels, keep, folder):
    """One file per input partition, written by the task that labels it (pandas
    and pyarrow write it: dask's own to_parquet warns under pandas 3)."""
    import dask
    import dask.array as da

    labels = da.asarray(labels).rechunk((table.lengths,))
    starts = np.concatenate([[0], np.cumsum(table.source_lengths)[:-1]]).tolist()
    writes = [
        dask.delayed(_write_part)(
            part,
            lab,
            start,
            table.columns,
            keep,
            _part_path(folder, i),
        )
        for i, (part, lab, start) in enumerate(
            zip(
                table.source.to_delayed(),
                labels.to_delayed().ravel(),
                starts,
                strict=True,
            )
        )
    ]
    dask.compute(*writes)


def _part_path(folder, i):
    return os.path.join(folder, f"part.{i:05d}.parquet")


def _write_part(part, labels, start, features, keep, path):
    _labelled(part, labels, start, features, keep).to_parquet(path)


def _labelled(part, labels, start, features, keep):
    """One partition of the labels table: its rows' numbers, labels (and columns)."""
    kept = part[features].notna().all(axis=1).to_numpy()
    out = part.loc[kept, keep].copy()
    out["row"] = start + np.flatnonzero(kept).astype(np.int64)
    out["label"] = np.asarray(labels, dtype=np.int64)
    if part.index.name is None:
        out = out.reset_index(drop=True)
    return out


def _write_beside(path, data, labels, model, sizes, outputs):
    write_label_table(
        path,
        data,
        labels,
        model.cluster_centers_,
        sizes,
        with_columns=outputs.get("table_columns", False),
    )


def _describe_labels(name):
    """A labels table: its input, partitions and clusters (None: not one)."""
    if not os.path.isfile(os.path.join(name, MARKER)):
        return None
    with open(os.path.join(name, MARKER)) as f:
        meta = json.load(f)
    parts = sorted(os.listdir(os.path.join(name, "labels")))
    state = "complete" if meta.get("complete") else "INCOMPLETE"
    lines = [f"labels table: {state}, {len(parts)} partitions, of {meta.get('input')}"]
    centers = os.path.join(name, "centers.parquet")
    if os.path.exists(centers):
        import pandas as pd

        sizes = pd.read_parquet(centers)["size"].tolist()
        lines += [f"  cluster {i}: {n} points" for i, n in enumerate(sizes)]
    return lines


SPEC = Format(
    name="tables",
    what="tables",
    kind="table",
    reads="a Parquet or CSV table (file, folder or glob)",
    can_open=lambda path, options: is_table(path) or any(c in path for c in "*?["),
    open=lambda path, columns=None, missing="refuse": open_table(
        os.path.abspath(path), columns, missing
    ),
    options={
        "columns": Option(
            (list,), "A table's feature columns (default: every numeric column)."
        ),
        "missing": Option(
            (str,), "A table's rows with missing values: refuse (default) or drop."
        ),
    },
    extra="tables",
    modules=("pandas", "pyarrow"),
    labels=LabelsBeside(
        key="table",
        doc="For tables: the labels table (default: beside the result).",
        title="labels table",
        suffix=lambda input_path: ".labels.parquet",
        marker=FORMAT,
        write=_write_beside,
        describe=_describe_labels,
    ),
)
