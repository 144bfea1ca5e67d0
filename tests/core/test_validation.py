"""Every bad input gets a clear error, and the model is exactly as it was afterwards."""

import numpy as np
import pytest

from ella_dist import ELLA, GOMTL, STL, NotFittedError, UnknownTaskError
from ella_dist.datasets import make_synthetic
from tests.core.test_ella import assert_same_model, logistic_tasks

rng = np.random.default_rng(0)
X5 = rng.normal(size=(20, 5))
y5 = rng.normal(size=20)
y01 = (rng.random(20) < 0.5).astype(float)

BAD_TRAIN = [
    # (description, loss, X, y, task_id, exception, message regex)
    ("X 1-D", "squared", np.ones(5), np.ones(5), "t0", ValueError, "2-D array"),
    ("X 3-D", "squared", np.ones((2, 5, 1)), np.ones(2), "t0", ValueError, "2-D array"),
    ("len mismatch", "squared", X5, y5[:-1], "t0", ValueError, "inconsistent numbers of samples"),
    ("wrong d", "squared", X5[:, :4], y5, "t0", ValueError, "4 features, but task 't0' was trained with 5"),
    ("wrong d new task", "squared", X5[:, :4], y5, "new", ValueError, "4 features, but the model was trained with 5"),
    ("NaN in X", "squared", np.where(np.eye(20, 5) > 0, np.nan, X5), y5, "t0", ValueError, "X contains NaN"),
    ("inf in X", "squared", np.where(np.eye(20, 5) > 0, np.inf, X5), y5, "t0", ValueError, "X contains infinity"),
    ("NaN in y", "squared", X5, np.r_[np.nan, y5[1:]], "t0", ValueError, "y contains NaN"),
    ("empty task", "squared", np.empty((0, 5)), np.empty(0), "t0", ValueError, "0 sample"),
    ("y 2-D", "squared", X5, np.ones((20, 2)), "t0", ValueError, "1-D array"),
    ("strings", "squared", [["a"] * 5] * 3, [1, 2, 3], "t0", ValueError, "numeric 2-D"),
    ("labels not binary", "logistic", X5, np.arange(20) % 3, "t0", ValueError, "binary labels"),
    ("labels 1/2", "logistic", X5, 1 + (np.arange(20) % 2), "t0", ValueError, "binary labels"),
    ("single class new task", "logistic", X5, np.zeros(20), "new", ValueError, "single class"),
    ("empty task id", "squared", X5, y5, "", ValueError, "task_id"),
    ("task id None", "squared", X5, y5, None, ValueError, "task_id"),
]


def trained(loss):
    tasks = make_synthetic(4, 20, k=2, d=5, random_state=1) if loss == "squared" else logistic_tasks(4, 20, 5)
    tasks = [("t0", X5, y5 if loss == "squared" else y01)] + list(tasks)
    return ELLA(k=2, loss=loss, random_state=0).fit(tasks)


@pytest.mark.parametrize("case", BAD_TRAIN, ids=[c[0] for c in BAD_TRAIN])
def test_bad_training_input_is_rejected_and_changes_nothing(case):
    _, loss, X, y, task_id, exc, msg = case
    model = trained(loss)
    reference = trained(loss)
    rng_state = model._rng.bit_generator.state
    with pytest.raises(exc, match=msg):
        model.partial_fit(X, y, task_id=task_id)
    assert_same_model(model, reference)
    assert model._rng.bit_generator.state == rng_state
    # and it keeps learning exactly as the untouched model does
    Xn, yn = X5 + 1.0, (y5 if loss == "squared" else y01)
    model.partial_fit(Xn, yn, task_id="after")
    reference.partial_fit(Xn, yn, task_id="after")
    assert_same_model(model, reference)


def test_rejected_first_call_leaves_an_untrained_model():
    model = ELLA(k=2, loss="logistic")
    with pytest.raises(ValueError, match="single class"):
        model.partial_fit(X5, np.ones(20), task_id="a")
    assert not hasattr(model, "L_") and model.n_tasks_ == 0
    model.partial_fit(X5, y01, task_id="a")  # a valid call then works
    assert model.n_tasks_ == 1


def test_prediction_errors():
    model = trained("logistic")
    with pytest.raises(UnknownTaskError, match="Unknown task_id 'nope'") as info:
        model.predict(X5, task_id="nope")
    assert isinstance(info.value, KeyError)
    with pytest.raises(ValueError, match="4 features, but task 't0' was trained with 5"):
        model.predict(X5[:, :4], task_id="t0")
    with pytest.raises(ValueError, match="X contains NaN"):
        model.decision_function(np.full((2, 5), np.nan), task_id="t0")
    with pytest.raises(NotFittedError, match="not been trained"):
        ELLA().predict(X5, task_id="t0")
    with pytest.raises(ValueError, match="loss='logistic'"):
        trained("squared").predict_proba(X5, task_id="t0")


@pytest.mark.parametrize(
    "params, msg",
    [
        ({"k": 0}, "'k' parameter of ELLA must be an int in the range \\[1, inf\\). Got 0"),
        ({"k": 2.5}, "'k' parameter"),
        ({"mu": -0.5}, "'mu' parameter of ELLA must be a float in the range \\[0, inf\\). Got -0.5"),
        ({"lam": 0.0}, "'lam' parameter of ELLA must be a float in the range \\(0, inf\\)"),
        ({"lam": float("nan")}, "'lam' parameter"),
        ({"loss": "hinge"}, "'loss' parameter of ELLA must be one of 'squared', 'logistic'. Got 'hinge'"),
        ({"init": "svd"}, "'init' parameter"),
        ({"ridge": -1}, "'ridge' parameter"),
        ({"fit_intercept": "yes"}, "'fit_intercept' parameter of ELLA must be a bool"),
        ({"random_state": -3}, "'random_state' parameter"),
        ({"l_solver": "qr"}, "'l_solver' parameter"),
    ],
)
def test_bad_hyper_parameters(params, msg):
    with pytest.raises(ValueError, match=msg):
        ELLA(**params)


def test_baselines_validate_too():
    with pytest.raises(ValueError, match="'tol' parameter of GOMTL"):
        GOMTL(tol=-1)
    with pytest.raises(ValueError, match="'loss' parameter of STL"):
        STL(loss="abs")
    with pytest.raises(ValueError, match="at least one task"):
        GOMTL().fit([])
    with pytest.raises(ValueError, match="binary labels"):
        STL(loss="logistic").fit([("a", X5, y5)])


def test_update_task_rejects_bad_statistics_and_changes_nothing():
    model = trained("squared")
    reference = trained("squared")
    d = 6
    for theta, D, n, msg in [
        (np.ones(d), np.eye(d - 1), 5, "shape"),
        (np.ones(d - 1), np.eye(d - 1), 5, "d=6"),
        (np.r_[np.nan, np.ones(d - 1)], np.eye(d), 5, "NaN"),
        (np.ones(d), np.eye(d), 0, "positive int"),
    ]:
        with pytest.raises(ValueError, match=msg):
            model.update_task("x", theta, D, n)
    assert_same_model(model, reference)


def test_single_class_batch_is_fine_for_a_task_that_has_both_classes():
    model = trained("logistic")
    n_before = model.task_state("t0").n
    model.partial_fit(X5[:5], np.zeros(5), task_id="t0")
    assert model.task_state("t0").n == n_before + 5
