"""MeanShift is a scikit-learn estimator in full; fit_iter yields the fit's states."""

from __future__ import annotations

import numpy as np
import pytest
from data import BLOBS, SIX
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from dist_meanshift import IterationState, MeanShift


@pytest.mark.parametrize("kernel", ["gaussian", "flat"])
# Some checks fit rows repeated three times or more: the estimate is 0, as
# scikit-learn's, and dist-meanshift says so.
@pytest.mark.filterwarnings("ignore:The estimated bandwidth is 0:UserWarning")
def test_sklearn_check_estimator(kernel):
    results = check_estimator(MeanShift(kernel=kernel), on_skip=None)
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    # Only checks needing what is not installed are skipped: SCIPY_ARRAY_API
    # for the array-API check, pandas for the pandas one.
    assert skipped <= {"check_array_api_input", "check_sample_weights_pandas_series"}


def test_get_set_params_and_clone():
    model = MeanShift(2.0, kernel="flat", max_iter=5)
    params = model.get_params()
    assert params["bandwidth"] == 2.0 and params["kernel"] == "flat"
    assert params["max_iter"] == 5
    copy = clone(model).set_params(max_iter=7)
    assert copy.max_iter == 7 and model.max_iter == 5
    assert not hasattr(copy, "labels_")


def test_in_a_pipeline():
    pipe = make_pipeline(StandardScaler(), MeanShift(0.5, kernel="flat"))
    labels = pipe.fit_predict(BLOBS)
    scaled = StandardScaler().fit_transform(BLOBS)
    np.testing.assert_array_equal(
        labels, MeanShift(0.5, kernel="flat").fit(scaled).labels_
    )
    np.testing.assert_array_equal(pipe.predict(BLOBS[:10]), labels[:10])


@pytest.mark.parametrize("kernel", ["gaussian", "flat"])
def test_fit_iter_yields_every_iteration_then_sets_attributes(kernel):
    model = MeanShift(1.0, kernel=kernel)
    states = list(model.fit_iter(BLOBS))
    assert all(isinstance(s, IterationState) for s in states)
    # One count everywhere: the states, the trace and n_iter_ (scikit-learn's).
    assert [s.iteration for s in states] == list(range(len(states)))
    assert [t["iteration"] for t in model.trace_] == list(range(len(states)))
    assert states[-1].iteration == model.n_iter_
    assert model.converged_ and model.n_unconverged_ == 0
    assert states[-1].n_active == 0
    assert all(s.n_centers == len(s.centers) for s in states)
    assert model.n_iter_ == len(states) - 1
    assert [t["n_active"] for t in model.trace_] == [s.n_active for s in states]
    reference = MeanShift(1.0, kernel=kernel).fit(BLOBS)
    np.testing.assert_array_equal(model.labels_, reference.labels_)
    # The labels of a state label every point by its nearest current center.
    labels = states[0].labels()
    assert labels.shape == (len(BLOBS),)
    assert labels.max() < states[0].n_centers


def test_fit_iter_can_stop_early():
    model = MeanShift(1.0)
    for state in model.fit_iter(BLOBS):
        if state.iteration == 2:
            break
    assert state.n_active > 0
    assert not hasattr(model, "labels_")


def test_fit_predict_equals_fit_labels():
    model = MeanShift(2.0, kernel="flat")
    np.testing.assert_array_equal(model.fit_predict(SIX), model.fit(SIX).labels_)
    assert model.n_features_in_ == 2
    assert model.bandwidth_ == 2.0


def test_the_trace_counts_the_centers_still_moving_at_max_iter():
    # The plot draws the trace: at max_iter it must agree with the summary.
    with pytest.warns(ConvergenceWarning):
        model = MeanShift(1.0, kernel="flat", max_iter=2).fit(BLOBS)
    assert model.n_unconverged_ > 0
    assert model.trace_[-1]["n_active"] == model.n_unconverged_


@pytest.mark.parametrize("kernel", ["flat", "gaussian"])
def test_an_estimated_bandwidth_of_zero_is_a_warning_that_says_why(kernel):
    # Two distinct rows, each repeated: every row's nearest 30% are copies.
    X = np.repeat([[0.0, 0.0], [5.0, 5.0]], 10, axis=0)
    with pytest.warns(UserWarning, match="The estimated bandwidth is 0") as seen:
        model = MeanShift(kernel=kernel).fit(X)
    assert "copies of them" in str(seen[0].message)
    assert "duplicate points" not in str(seen[0].message)
    assert seen[0].filename == __file__  # the user's line, not ours
    assert len(model.cluster_centers_) == 2
