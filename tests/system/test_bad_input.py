"""Every bad input, through the command and the Python API.

Each gets one line naming the problem and the fix, exit code 2 from the
command, no traceback; the input is untouched and nothing is left behind.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings

import numpy as np
import pytest
import zarr
from commands import cli, run_cli
from data import write_zarr

from dist_meanshift import MeanShift

X3 = np.random.default_rng(0).normal(size=(400, 3)).astype(np.float32)


def _array(where, name, data, chunks=None):
    return zarr.open_array(write_zarr(where / name, data, chunks), mode="r+")


def _blobs(where):
    _array(where, "X.zarr", X3, chunks=(100, 3))


def _damaged_metadata(where):
    _blobs(where)
    (where / "X.zarr/zarr.json").write_text('{"zarr_format": 3, "node_type": "arr')


def _missing_chunk(where):
    _blobs(where)
    os.remove(where / "X.zarr/c/1/0")


def _truncated_chunk(where):
    _blobs(where)
    chunk = where / "X.zarr/c/2/0"
    chunk.write_bytes(chunk.read_bytes()[:20])


def _not_zarr(where):
    (where / "X.zarr").mkdir()
    (where / "X.zarr/notes.txt").write_text("not a zarr store")


def _group(where):
    group = zarr.open_group(str(where / "G.zarr"), mode="w")
    group.create_array("X", data=X3)


def _two_arrays(where):
    group = zarr.open_group(str(where / "G.zarr"), mode="w")
    group.create_array("X", data=X3)
    group.create_array("y", data=X3[:, 0])


def _shaped(shape, dtype="f4"):
    def make(where):
        _array(where, "X.zarr", np.zeros(shape, dtype=dtype))

    return make


def _strings(where):
    with warnings.catch_warnings():
        # zarr warns that its string type has no stable specification yet.
        warnings.simplefilter("ignore", zarr.errors.UnstableSpecificationWarning)
        _array(where, "X.zarr", np.array([["a", "b"], ["c", "d"]], dtype=str))


def _non_finite(where):
    data = X3.copy()
    data[5, 1] = np.nan
    data[300, 0] = np.inf
    _array(where, "X.zarr", data, chunks=(100, 3))


def _object_npy(where):
    np.save(where / "X.npy", np.array([[1, "a"], [2, "b"]], dtype=object))


def _model(where):
    model = zarr.open_group(str(where / "M.zarr"), mode="w")
    model.attrs.update({"format": "dist-meanshift-result/1", "complete": True})
    # As dist-meanshift writes results: every chunk stored, even all zeros.
    model.create_array(
        "cluster_centers",
        data=np.zeros((2, 2)),
        config={"write_empty_chunks": True},
    )
    _blobs(where)


def _existing_output(where):
    _blobs(where)
    (where / "o.zarr").mkdir()
    (where / "o.zarr/precious.txt").write_text("keep me")


FIT = ["fit", "X.zarr", "--out", "o.zarr"]

# id, make the input, command line, message on the command line.
COMMAND_CASES = [
    ("missing-path", None, FIT, "Input 'X.zarr' does not exist. Check the path"),
    ("not-zarr", _not_zarr, FIT, "is not a readable zarr array or group, nor a .npy"),
    ("damaged-metadata", _damaged_metadata, FIT, "is not a readable zarr array"),
    ("missing-chunk", _missing_chunk, FIT, "is missing 1 of 4 chunks, the first"),
    ("truncated-chunk", _truncated_chunk, FIT, "Input chunk for rows 200-299 of"),
    (
        "no-such-array",
        _group,
        ["fit", "G.zarr", "--array", "Y", "--out", "o.zarr"],
        "has no array 'Y'; it holds ['X']",
    ),
    ("1-d", _shaped((10,)), FIT, "Expected a 2-D array"),
    ("3-d", _shaped((10, 3, 2)), FIT, "Expected a 2-D array"),
    ("0-rows", _shaped((0, 3)), FIT, "at least 1 sample and 1 feature"),
    ("0-columns", _shaped((10, 0)), FIT, "at least 1 sample and 1 feature"),
    ("strings", _strings, FIT, "mean shift needs numeric coordinates"),
    ("booleans", _shaped((10, 2), "bool"), FIT, "mean shift needs numeric"),
    (
        "objects-npy",
        _object_npy,
        ["fit", "X.npy", "--out", "o.zarr"],
        "is not a plain numeric .npy file",
    ),
    (
        "nan-inf",
        _non_finite,
        FIT,
        "contains 2 NaN or infinite value(s), the first at row 5, column 1",
    ),
    *(
        (
            f"bandwidth-{b}",
            _blobs,
            [*FIT, "--bandwidth", b],
            (
                "'bandwidth' parameter of MeanShift must be a float in the range "
                f"(0, inf) or None. Got {float(b)!r}"
            ),
        )
        for b in ("0", "-1", "nan", "inf")
    ),
    ("bandwidth-word", _blobs, [*FIT, "--bandwidth", "wide"], "'wide' is not a valid"),
    ("kernel", _blobs, [*FIT, "--kernel", "cosine"], "'cosine' is not one of"),
    ("max-iter-0", _blobs, [*FIT, "--max-iter", "0"], "'max_iter' parameter"),
    (
        "predict-width",
        _model,
        ["predict", "M.zarr", "X.zarr", "--out", "o.zarr"],
        "X has 3 features, but MeanShift is expecting 2 features",
    ),
    (
        "output-is-input",
        _blobs,
        ["fit", "X.zarr", "--out", "X.zarr"],
        "is the input or lies inside it",
    ),
    (
        "output-inside-input",
        _blobs,
        ["fit", "X.zarr", "--out", "X.zarr/c/out.zarr"],
        "is the input or lies inside it",
    ),
    ("output-exists", _existing_output, FIT, "already exists. Pass --overwrite"),
]


def _snapshot(where):
    """Every file under ``where`` with a hash of its bytes."""
    files = {}
    for root, dirs, names in os.walk(where):
        for name in dirs + names:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, where)
            if os.path.isfile(path):
                with open(path, "rb") as f:
                    files[rel] = hashlib.sha256(f.read()).hexdigest()
            else:
                files[rel] = "dir"
    return files


def _cases(table):
    """pytest parameters of (id, make, call, message) rows."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


def _made(where, make):
    """Make the input (if any) in ``where``; return the snapshot to compare with."""
    if make is not None:
        make(where)
    return _snapshot(where)


@pytest.mark.parametrize("make,args,message", _cases(COMMAND_CASES))
def test_bad_input_on_the_command_line(tmp_path, make, args, message):
    before = _made(tmp_path, make)
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dist-meanshift: error: ")
    assert message in lines[0]
    assert "Traceback" not in done.stderr
    # The input is untouched and nothing new exists: no result, no temporary.
    assert _snapshot(tmp_path) == before


def _fit(path, **params):
    def run(where):
        MeanShift(**{"bandwidth": 1.0, **params}).fit(str(where / path))

    return run


def _predict_wrong_width(where):
    MeanShift(1.0).fit(X3).predict(X3[:, :2])


def _seeds_wrong_width(where):
    MeanShift(1.0, seeds=np.zeros((2, 2))).fit(X3)


def _numpy(data):
    def run(where):
        MeanShift(1.0).fit(data)

    return run


NAN = X3.copy()
NAN[7, 2] = np.nan

# id, make the input, call, message.
API_CASES = [
    ("missing-path", None, _fit("X.zarr"), "does not exist. Check the path"),
    ("not-zarr", _not_zarr, _fit("X.zarr"), "is not a readable zarr array"),
    ("damaged-metadata", _damaged_metadata, _fit("X.zarr"), "not a readable zarr"),
    ("missing-chunk", _missing_chunk, _fit("X.zarr"), "is missing 1 of 4 chunks"),
    ("truncated-chunk", _truncated_chunk, _fit("X.zarr"), "Input chunk for rows 200"),
    ("group", _two_arrays, _fit("G.zarr"), "is a zarr group, not an array"),
    ("1-d", _shaped((10,)), _fit("X.zarr"), "Expected a 2-D array"),
    ("3-d", _shaped((10, 3, 2)), _fit("X.zarr"), "Expected a 2-D array"),
    ("0-rows", _shaped((0, 3)), _fit("X.zarr"), "at least 1 sample"),
    ("0-columns", _shaped((10, 0)), _fit("X.zarr"), "at least 1 sample"),
    ("strings", _strings, _fit("X.zarr"), "needs numeric coordinates"),
    ("booleans", _shaped((10, 2), "bool"), _fit("X.zarr"), "needs numeric"),
    ("objects", None, _numpy(np.array([[1, "a"]], dtype=object)), "needs numeric"),
    ("numpy-nan", None, _numpy(NAN), "1 NaN or infinite value(s), the first at row 7"),
    ("zarr-nan", _non_finite, _fit("X.zarr"), "contains 2 NaN or infinite value(s)"),
    ("bandwidth-0", _blobs, _fit("X.zarr", bandwidth=0.0), "'bandwidth' parameter"),
    ("bandwidth-nan", _blobs, _fit("X.zarr", bandwidth=np.nan), "Got nan instead"),
    ("bandwidth-str", _blobs, _fit("X.zarr", bandwidth="1"), "Got '1' instead"),
    ("kernel", _blobs, _fit("X.zarr", kernel="cosine"), "Got 'cosine' instead"),
    ("max-iter-0", _blobs, _fit("X.zarr", max_iter=0), "range [1, inf). Got 0"),
    ("seeds-width", None, _seeds_wrong_width, "'seeds' parameter has 2 columns"),
    ("predict-width", None, _predict_wrong_width, "expecting 3 features"),
]


@pytest.mark.parametrize("make,call,message", _cases(API_CASES))
def test_bad_input_through_the_api(tmp_path, make, call, message):
    before = _made(tmp_path, make)
    with pytest.raises(ValueError) as caught:
        call(tmp_path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _snapshot(tmp_path) == before


def test_unreachable_scheduler_is_answered_within_30_seconds(tmp_path):
    _blobs(tmp_path)
    started = time.monotonic()
    done = cli(*FIT, "--scheduler", "tcp://127.0.0.1:9", cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert done.returncode == 2
    assert "Cannot reach the Dask scheduler" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.zarr").exists()
