"""Shared fixtures. Data-set tests skip cleanly (with the reason) when files are absent."""

from __future__ import annotations

import numpy as np
import pytest

from ella_dist.datasets import load_landmine, load_school


@pytest.fixture(scope="session")
def landmine():
    try:
        return load_landmine()
    except FileNotFoundError as exc:
        pytest.skip(f"land-mine data set not available: {exc}")


@pytest.fixture(scope="session")
def school():
    try:
        return load_school()
    except FileNotFoundError as exc:
        pytest.skip(f"London-schools data set not available: {exc}")


def split_tasks(tasks, frac=0.5, seed=0):
    """Random per-task train/test split: two lists of (task_id, X, y)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for t in tasks:
        p = rng.permutation(len(t.y))
        h = int(round(frac * len(p)))
        train.append((t.task_id, t.X[p[:h]], t.y[p[:h]]))
        test.append((t.task_id, t.X[p[h:]], t.y[p[h:]]))
    return train, test
