"""Smoke test of bench/paper.py and bench/scaling.py on tiny synthetic settings.

Checks that the harness runs end to end and writes the documented JSON fields (not
timings, not accuracy: benchmarks are not tests).
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def paper():
    pytest.importorskip("matplotlib")
    return _load("paper")


def test_paper_tiny_synthetic(paper, tmp_path, monkeypatch):
    monkeypatch.setenv("ELLA_BENCH_NO_PROGRESS", "1")
    cfg = paper.Config.quick_config(
        datasets=["synthetic"],
        syn_tasks=8,
        syn_n=30,
        splits=2,
        orders=2,
        k_grid=[1, 2],
        gomtl_k_grid=[2],
        lambdas=paper.LAMBDAS[:2],
        stl_ridge=[1e-2, 1.0],
        new_task_repeats=2,
        reverse_first=2,
    )
    report = paper.run(cfg, tmp_path, "tiny", "pytest")
    data = json.loads((tmp_path / "tiny.json").read_text())
    assert (tmp_path / "tiny.md").read_text().startswith("# ELLA paper reproduction")
    assert (tmp_path / "tiny_reverse_transfer.png").stat().st_size > 0
    assert data["benchmark"] == "paper" and data["figure"] == "tiny_reverse_transfer.png"
    for key in ("cpu_model", "logical_cores", "ram_gb", "python", "numpy", "date_utc"):
        assert key in data["machine"]
    r = data["results"]["synthetic"]
    assert r["n_tasks"] == 8 and r["metric"] == "rmse" and r["k_max"] == 2
    assert len(r["ella_chosen_per_split"]) == 2
    assert r["ella_grid_size"] == 2 * 2 * 1 * 2 * 1  # k x lambda x mu x ridge x init
    for method in ("ella", "ella_refine", "ella_test_selected", "gomtl", "stl"):
        t1 = r["table1"][method]
        assert math.isfinite(t1["score"]["mean"]) and t1["score"]["n"] == (2 if method in ("gomtl", "stl") else 4)
    assert len(r["runs"]["ella"]) == 4 and {"split", "order", "score", "pct"} <= set(r["runs"]["ella"][0])
    # % of GO-MTL for rMSE is GO-MTL / ELLA, per split
    run = r["runs"]["ella"][0]
    g = next(x["score"] for x in r["runs"]["gomtl"] if x["split"] == run["split"])
    assert run["pct"] == pytest.approx(100 * g / run["score"])
    for key in ("ella_all", "ella_new", "gomtl_all", "gomtl_new", "stl_all", "stl_new", "ella_refine_pass"):
        assert r["table2"]["seconds"][key]["median"] > 0
    assert set(r["table2"]["speedup_over_gomtl"]) == {"ella_all", "ella_new", "stl_all", "stl_new"}
    curve = r["reverse_transfer"]["mean_curve"]
    assert len(curve) == 2 and len(curve[0]) == 8
    assert report["results"]["synthetic"]["gomtl_params"]["k"] == 2


def test_percent_of_gomtl_directions(paper):
    ds_auc = paper.Dataset("x", "logistic", "auc", [], "")
    ds_rmse = paper.Dataset("x", "squared", "rmse", [], "")
    assert paper.pct_of_gomtl(ds_auc, 0.77, 0.78) == pytest.approx(100 * 0.77 / 0.78)
    assert paper.pct_of_gomtl(ds_rmse, 1.11, 1.084) == pytest.approx(100 * 1.084 / 1.11)
    assert paper.better(ds_rmse, 1.0, 2.0) and paper.better(ds_auc, 0.9, 0.8)
    assert not paper.better(ds_auc, float("nan"), 0.5)


def test_stratified_split_keeps_both_classes(paper):
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    y = np.r_[np.ones(4), np.zeros(36)]
    a, b = paper.split_tasks([("t", X, y)], np.random.default_rng(1), stratify=True)
    assert a[0][2].sum() == 2 and b[0][2].sum() == 2 and len(a[0][2]) + len(b[0][2]) == 40


def test_scaling_tiny(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("ELLA_BENCH_NO_PROGRESS", "1")
    scaling = _load("scaling")
    monkeypatch.setattr(scaling, "SOLVER_SIZES", [(2, 4), (3, 4)])
    monkeypatch.setattr(sys, "argv", ["scaling.py"])
    assert scaling.main(["--quick", "--sizes", "3", "6", "--repeats", "2", "--out", str(tmp_path), "--name", "s"]) == 0
    data = json.loads((tmp_path / "s.json").read_text())
    assert [r["T"] for r in data["streams"]] == [3, 6]
    for r in data["streams"]:
        assert {"ella_new", "stl_new", "gomtl_retrain", "gomtl_over_ella", "ella_over_stl"} <= set(r)
    assert {r["kd"] for r in data["solvers"]} == {10, 15}
    assert all(r[s]["max_abs_diff_L_vs_cholesky"] < 1e-6 for r in data["solvers"] for s in ("eigen", "cg"))
    assert (tmp_path / "s.png").stat().st_size > 0
