"""ELLA: Algorithm 1 end to end, revisits, persistence, reverse transfer, basis recovery."""

import numpy as np
import pytest
from scipy.linalg import subspace_angles

from ella_dist import ELLA, STL, ModelFormatError
from ella_dist.core import persistence
from ella_dist.core.basis import task_terms
from ella_dist.core.metrics import rmse
from ella_dist.datasets import make_synthetic
from tests.conftest import split_tasks


def snapshot(model):
    """Everything that defines a fitted ELLA, as plain arrays."""
    return {
        "L": model.L_.copy(),
        "A": model.A_.copy(),
        "b": model.b_.copy(),
        "tasks": {t: model.task_state(t) for t in model.task_ids_},
        "n_updates": model.n_updates_,
    }


def assert_same_model(a, b, atol=0.0):
    sa, sb = snapshot(a), snapshot(b)
    np.testing.assert_allclose(sa["L"], sb["L"], atol=atol, rtol=0)
    np.testing.assert_allclose(sa["A"], sb["A"], atol=atol, rtol=0)
    np.testing.assert_allclose(sa["b"], sb["b"], atol=atol, rtol=0)
    assert list(sa["tasks"]) == list(sb["tasks"])
    for t in sa["tasks"]:
        for field in ("theta", "D", "s"):
            np.testing.assert_allclose(getattr(sa["tasks"][t], field), getattr(sb["tasks"][t], field), atol=atol, rtol=0)
        assert sa["tasks"][t].n == sb["tasks"][t].n


def logistic_tasks(n_tasks=6, n=80, d=5, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(d + 1, 2))
    out = []
    for t in range(n_tasks):
        X = rng.normal(size=(n, d))
        z = np.hstack([X, np.ones((n, 1))]) @ (basis @ rng.normal(size=2))
        out.append((f"c{t}", X, (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)))
    return out


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_running_sums_match_their_definition(loss):
    tasks = make_synthetic(8, 30, k=3, d=4, random_state=0) if loss == "squared" else logistic_tasks()
    model = ELLA(k=3, mu=1e-3, lam=0.1, loss=loss, random_state=0)
    for tid, X, y in tasks:
        assert model.partial_fit(X, y, task_id=tid) is model
    A = sum(task_terms(st.s, st.theta, st.D)[0] for st in map(model.task_state, model.task_ids_))
    b = sum(task_terms(st.s, st.theta, st.D)[1] for st in map(model.task_state, model.task_ids_))
    np.testing.assert_allclose(model.A_, A, atol=1e-10)
    np.testing.assert_allclose(model.b_, b, atol=1e-10)
    T, kd = model.n_tasks_, A.shape[0]
    L = np.linalg.solve(A / T + 0.1 * np.eye(kd), b / T).reshape(model.L_.shape, order="F")
    np.testing.assert_allclose(model.L_, L, atol=1e-9)
    for tid, X, _ in tasks:
        np.testing.assert_allclose(model.decision_function(X, tid), np.hstack([X, np.ones((len(X), 1))]) @ (model.L_ @ model.task_state(tid).s))


@pytest.mark.parametrize("loss", ["squared", "logistic"])
def test_revisit_equals_one_call_with_all_the_data(loss):
    tasks = make_synthetic(5, 40, k=2, d=4, random_state=1) if loss == "squared" else logistic_tasks(5)
    twice = ELLA(k=2, loss=loss, random_state=0)
    for tid, X, y in tasks:
        twice.partial_fit(X[:15], y[:15], task_id=tid)
    for tid, X, y in tasks:
        twice.partial_fit(X[15:], y[15:], task_id=tid)
    assert twice.n_tasks_ == 5
    for tid, X, y in tasks:
        once = ELLA(k=2, loss=loss, random_state=0).partial_fit(X, y, task_id=tid)
        st1, st2 = once.task_state(tid), twice.task_state(tid)
        np.testing.assert_allclose(st2.theta, st1.theta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(st2.D, st1.D, rtol=1e-7, atol=1e-10)
        assert st2.n == st1.n == len(y)
    # A holds exactly one term per task: the old contributions were removed.
    A = sum(task_terms(st.s, st.theta, st.D)[0] for st in map(twice.task_state, twice.task_ids_))
    np.testing.assert_allclose(twice.A_, A, atol=1e-9)


def test_save_load_round_trips_exactly_and_training_continues_identically(tmp_path):
    tasks = make_synthetic(6, 30, k=2, d=3, random_state=2)
    model = ELLA(k=3, mu=0.01, lam=0.05, init="zeros", random_state=7).fit(tasks[:4])
    path = tmp_path / "m.npz"
    model.save(str(path))
    loaded = ELLA.load(str(path))
    assert loaded.get_params() == model.get_params()
    assert_same_model(model, loaded)
    for tid, X, y in tasks[4:] + [tasks[0]]:  # new tasks and a revisit, after loading
        model.partial_fit(X, y, task_id=tid)
        loaded.partial_fit(X, y, task_id=tid)
    assert_same_model(model, loaded)


def test_unfitted_model_round_trips():
    model = ELLA(k=4, loss="logistic")
    assert ELLA.from_bytes(model.to_bytes()).get_params() == model.get_params()


def test_unknown_format_version_fails_clearly(monkeypatch):
    with monkeypatch.context() as m:  # a file written by a hypothetical future version
        m.setattr(persistence, "FORMAT_VERSION", 99)
        bumped = ELLA(k=2).to_bytes()
    with pytest.raises(ModelFormatError, match="version 99"):
        ELLA.from_bytes(bumped)
    with pytest.raises(ModelFormatError, match="Not an ella-dist model file"):
        ELLA.from_bytes(b"not a zip file")
    other = persistence.dump_bytes("gomtl", {"params": {}, "fitted": False}, {})
    with pytest.raises(ModelFormatError, match="ella-dist/ella"):
        ELLA.from_bytes(other)


def test_refine_never_increases_the_objective():
    tasks = make_synthetic(20, 40, random_state=3)
    model = ELLA(k=6, mu=1e-2, lam=np.exp(-5), random_state=0).fit(tasks)
    before = model.objective()
    model.refine(n_passes=3)
    assert model.objective() <= before + 1e-12


@pytest.mark.parametrize("solver", ["cholesky", "eigen", "cg"])
def test_all_l_solvers_learn_the_same_model(solver):
    tasks = make_synthetic(10, 30, k=3, d=5, random_state=4)
    ref = ELLA(k=3, l_solver="cholesky", random_state=0).fit(tasks)
    other = ELLA(k=3, l_solver=solver, random_state=0).fit(tasks)
    np.testing.assert_allclose(other.L_, ref.L_, atol=1e-7)


def test_recovers_the_planted_basis_span():
    tasks, L_true = make_synthetic(60, 200, k=3, d=8, noise=0.1, random_state=5, return_basis=True)
    model = ELLA(k=3, mu=1e-4, lam=1e-4, random_state=0).fit(tasks).refine(2)
    angles = subspace_angles(model.L_, L_true)
    assert np.max(angles) < 0.1, np.degrees(angles)


def test_beats_stl_when_tasks_have_few_examples():
    tasks = make_synthetic(40, 30, k=2, d=12, noise=1.0, random_state=6)
    train, test = split_tasks(tasks, frac=0.5, seed=0)  # 15 training rows for 13 coefficients
    ella = ELLA(k=2, mu=1e-3, lam=1e-3, random_state=0).fit(train)
    stl = STL(ridge=1e-2).fit(train)
    err_ella = np.mean([rmse(y, ella.predict(X, t)) for t, X, y in test])
    err_stl = np.mean([rmse(y, stl.predict(X, t)) for t, X, y in test])
    assert err_ella < 0.8 * err_stl, (err_ella, err_stl)


def test_logistic_outputs():
    tasks = logistic_tasks()
    model = ELLA(k=2, loss="logistic", random_state=0).fit(tasks)
    tid, X, y = tasks[0]
    proba = model.predict_proba(X, tid)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(model.predict(X, tid), (proba[:, 1] > 0.5).astype(float))
    assert 0.5 < model.score(X, y, tid) <= 1.0
    # {-1, +1} labels are the same task as {0, 1}
    other = ELLA(k=2, loss="logistic", random_state=0).fit([(t, X_, 2 * y_ - 1) for t, X_, y_ in tasks])
    np.testing.assert_allclose(other.L_, model.L_)


def test_first_k_init_uses_task_thetas():
    tasks = make_synthetic(3, 50, k=2, d=3, random_state=8)
    model = ELLA(k=3, init="first_k", mu=1e-6, lam=1e-6)
    model.partial_fit(tasks[0].X, tasks[0].y, task_id="a")
    theta = model.task_state("a").theta
    np.testing.assert_allclose(model.L_ @ model.task_state("a").s, theta, rtol=1e-3)
    assert np.count_nonzero(np.linalg.norm(model.L_, axis=0) > 1e-9) == 1


def test_update_task_equals_partial_fit():
    """The sufficient-statistics entry point (used by the Ray engine) is Algorithm 1 exactly."""
    from ella_dist.core.single_task import TaskData, penalty_mask
    from ella_dist.core.validation import add_intercept

    tasks = make_synthetic(6, 30, k=2, d=3, random_state=9)
    a = ELLA(k=2, random_state=1).fit(tasks)
    b = ELLA(k=2, random_state=1)
    for tid, X, y in tasks:
        theta, D = TaskData.from_rows("squared", add_intercept(X), y).fit(b.ridge, penalty_mask(X.shape[1] + 1, True))
        b.update_task(tid, theta, D, len(y))
    np.testing.assert_array_equal(a.L_, b.L_)
