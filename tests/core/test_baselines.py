"""GO-MTL converges on the true objective; STL is independent; accuracy bounds on synthetic."""

import numpy as np
import pytest

from ella_dist import ELLA, GOMTL, STL
from ella_dist.core.metrics import rmse, roc_auc
from ella_dist.datasets import make_synthetic
from tests.conftest import split_tasks
from tests.core.test_ella import logistic_tasks


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_gomtl_objective_decreases_and_converges(loss):
    tasks = make_synthetic(12, 40, k=3, d=5, random_state=0) if loss == "squared" else logistic_tasks(8, 60)
    model = GOMTL(k=3, mu=1e-3, lam=1e-2, loss=loss).fit(tasks)
    obj = np.array(model.objective_)
    assert np.all(np.diff(obj) <= 1e-9 * np.abs(obj[:-1])), obj
    assert model.n_iter_ < model.max_iter
    assert abs(obj[-2] - obj[-1]) <= 1e-3 * abs(obj[-2])


def test_gomtl_is_at_least_as_good_as_ella_on_its_objective_data():
    tasks = make_synthetic(30, 100, random_state=1)
    train, test = split_tasks(tasks, seed=1)
    go = GOMTL(k=6, mu=1e-3, lam=np.exp(-5)).fit(train)
    el = ELLA(k=6, mu=1e-3, lam=np.exp(-5), random_state=0).fit(train).refine(2)
    stl = STL().fit(train)
    err = {
        name: np.mean([rmse(y, m.predict(X, t)) for t, X, y in test])
        for name, m in [("go", go), ("ella", el), ("stl", stl)]
    }
    assert err["go"] < err["stl"]
    assert err["ella"] < 1.05 * err["go"], err  # ELLA stays within 5% of batch MTL here


def test_stl_refits_only_the_given_task():
    tasks = logistic_tasks(3)
    model = STL(loss="logistic").fit(tasks)
    before = {t: model.thetas_[t].copy() for t in model.thetas_}
    tid, X, y = tasks[1]
    model.partial_fit(X, y, task_id=tid)  # more data for task 1 only
    np.testing.assert_array_equal(model.thetas_["c0"], before["c0"])
    assert not np.allclose(model.thetas_["c1"], before["c1"])
    assert roc_auc(y, model.decision_function(X, tid)) > 0.5


def test_roc_auc_known_values():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.4, 0.3, 0.2, 0.1]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert np.isnan(roc_auc([1, 1], [0.1, 0.2]))
