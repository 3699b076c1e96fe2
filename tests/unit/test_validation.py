"""Every validation error names the problem and the remedy."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from data import SIX

from dist_meanshift import MeanShift, estimate_bandwidth, get_bin_seeds


@pytest.mark.parametrize(
    "params,match",
    [
        (
            {"bandwidth": -1.0},
            (
                r"'bandwidth' parameter of MeanShift must be a float in"
                r" the range \(0, inf\) or None\. Got -1\.0 instead"
            ),
        ),
        ({"bandwidth": 0}, r"'bandwidth'.*Got 0 instead"),
        ({"bandwidth": float("nan")}, r"'bandwidth'.*Got nan instead"),
        ({"bandwidth": float("inf")}, r"'bandwidth'.*Got inf instead"),
        ({"bandwidth": "wide"}, r"'bandwidth'.*Got 'wide' instead"),
        (
            {"kernel": "epanechnikov"},
            (
                r"'kernel' parameter of MeanShift must be a str "
                r"among \{'flat', 'gaussian'\}\. Got 'epanechnikov'"
            ),
        ),
        ({"bin_seeding": "yes"}, r"'bin_seeding'.*'bool'\. Got 'yes'"),
        ({"cluster_all": 1}, r"'cluster_all'.*'bool'\. Got 1"),
        ({"min_bin_freq": 0}, r"'min_bin_freq'.*\[1, inf\)\. Got 0"),
        ({"max_iter": 0}, r"'max_iter'.*\[1, inf\)\. Got 0"),
        ({"max_iter": 2.5}, r"'max_iter'.*Got 2\.5"),
        ({"tol": -1e-3}, r"'tol'.*Got -0\.001"),
        ({"merge_tol": float("nan")}, r"'merge_tol'.*Got nan"),
        ({"chunk_rows": 0}, r"'chunk_rows'.*Got 0"),
        (
            {"persist": "sometimes"},
            r"'persist'.*'auto', True or False\. Got 'sometimes'",
        ),
    ],
)
def test_bad_parameters_are_refused_by_name(params, match):
    with pytest.raises(ValueError, match=match):
        MeanShift(**params).fit(SIX)


@pytest.mark.parametrize(
    "X,match",
    [
        (np.arange(5.0), r"Expected 2D array"),
        (np.zeros((0, 2)), r"0 sample\(s\)"),
        (np.zeros((3, 0)), r"0 feature\(s\)"),
        (np.array([["a", "b"], ["c", "d"]]), r"dtype <U1; mean shift needs numeric"),
        (np.array([[True, False], [False, True]]), r"dtype bool; mean shift needs"),
        (
            np.array([[1.0, np.nan], [2.0, np.inf], [np.nan, 0]]),
            r"contains 3 NaN or infinite value\(s\), the first at row 0, column 1",
        ),
    ],
    ids=["1d", "no-rows", "no-columns", "strings", "bool", "nan"],
)
def test_bad_numpy_input_is_refused(X, match):
    with pytest.raises(ValueError, match=match):
        MeanShift(1.0).fit(X)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: da.zeros(5), r"Expected a 2-D array for X.*Reshape it"),
        (lambda: da.zeros((2, 2, 2)), r"got 3-D with shape \(2, 2, 2\)"),
        (lambda: da.zeros((0, 3)), r"shape \(0, 3\); mean shift needs at least 1"),
        (lambda: da.zeros((4, 2), dtype=bool), r"dtype bool"),
        (
            lambda: da.from_array(np.array([[1.0, 2.0], [3.0, np.inf]])),
            r"contains 1 NaN or infinite value\(s\), the first at row 1, column 1",
        ),
    ],
    ids=["1d", "3d", "no-rows", "bool", "inf"],
)
def test_bad_dask_input_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        MeanShift(1.0).fit(make())


def test_predict_with_the_wrong_width_is_refused():
    # numpy and zarr input: see test_bad_input's API cases.
    model = MeanShift(1.0).fit(SIX)
    with pytest.raises(
        ValueError, match=r"X has 3 features, but MeanShift is expecting 2"
    ):
        model.predict(da.zeros((2, 3)))


def test_function_parameters_are_refused_by_name():
    with pytest.raises(ValueError, match=r"'quantile'.*\[0, 1\]\. Got 1\.5"):
        estimate_bandwidth(SIX, quantile=1.5)
    with pytest.raises(ValueError, match=r"'n_samples'.*Got 0"):
        estimate_bandwidth(SIX, n_samples=0)
    with pytest.raises(ValueError, match=r"'bin_size'.*Got -1"):
        get_bin_seeds(SIX, -1)


def test_an_input_kind_without_its_readers_names_the_extra(monkeypatch):
    import importlib.util

    from dist_meanshift import InputError
    from dist_meanshift.inputs import open_input

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pyarrow" else real(name, *a),
    )
    with pytest.raises(InputError, match=r"needs pyarrow: install the tables extra"):
        open_input("points.parquet")
