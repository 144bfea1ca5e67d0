"""The paper's data sets: land mine, London schools (from .mat files) and synthetic.

Each loader returns a list of :class:`Task` (``task_id``, ``X`` without a bias column,
``y``). The real data sets are read from, in order: the ``path`` argument, the
directory in ``$ELLA_DATA_DIR``, then ``../shared/data`` beside the checkout (and the
working directory's ``../shared/data``). They are public research data and are never
copied into this repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np


class Task(NamedTuple):
    task_id: str
    X: np.ndarray
    y: np.ndarray


def data_dirs() -> list[Path]:
    """Where the loaders look for the .mat files, in order."""
    dirs = []
    if os.environ.get("ELLA_DATA_DIR"):
        dirs.append(Path(os.environ["ELLA_DATA_DIR"]))
    repo = Path(__file__).resolve().parent.parent
    dirs += [repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", Path.cwd() / "data"]
    return dirs


def find_data_file(name: str, path: str | os.PathLike | None = None) -> Path:
    """Locate ``name`` (e.g. ``"landmine.mat"``), or raise FileNotFoundError naming where we looked."""
    if path is not None:
        p = Path(path)
        p = p / name if p.is_dir() else p
        if p.is_file():
            return p
        raise FileNotFoundError(f"{name}: no such file at {p}.")
    tried = []
    for d in data_dirs():
        p = d / name
        if p.is_file():
            return p
        tried.append(str(p))
    raise FileNotFoundError(
        f"Could not find {name}. Looked in: {', '.join(tried)}. Pass path=... or set ELLA_DATA_DIR."
    )


def _load_mat(name: str, path: str | os.PathLike | None) -> dict:
    from scipy.io import loadmat

    return loadmat(find_data_file(name, path))


def load_landmine(path: str | os.PathLike | None = None) -> list[Task]:
    """The 29 land-mine detection tasks (Xue et al., JMLR 2007): 9 features, labels {0, 1}.

    Tasks are named ``mine-0`` .. ``mine-28`` in the file's order.
    """
    m = _load_mat("landmine.mat", path)
    feats, labels = m["feature"][0], m["label"][0]
    return [
        Task(f"mine-{i}", np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64).ravel())
        for i, (X, y) in enumerate(zip(feats, labels))
    ]


def load_school(path: str | os.PathLike | None = None) -> list[Task]:
    """The 139 London-schools exam tasks (MALSAR encoding): 27 features, raw scores 1..70.

    The file's last column is a constant bias and is dropped (models add their own).
    Tasks are named ``school-0`` .. ``school-138``.
    """
    m = _load_mat("school.mat", path)
    return [
        Task(f"school-{i}", np.asarray(X, dtype=np.float64)[:, :-1], np.asarray(y, dtype=np.float64).ravel())
        for i, (X, y) in enumerate(zip(m["X"][0], m["Y"][0]))
    ]


def make_synthetic(
    n_tasks: int = 100,
    n_per_task: int = 100,
    k: int = 6,
    d: int = 12,
    sparsity: float = 0.5,
    noise: float = 1.0,
    random_state: int | None = None,
    return_basis: bool = False,
) -> list[Task] | tuple[list[Task], np.ndarray]:
    """The paper's synthetic regression tasks.

    A basis L of ``k`` components in R^(d+1) (the last coordinate is the intercept),
    codes s(t) with a fraction ``sparsity`` of zeros (at least one non-zero), X ~ N(0, 1)
    of shape (n_per_task, d), ``y = [X, 1] L s(t) + noise * N(0, 1)``.

    Returns
    -------
    tasks : list of Task
        Named ``syn-0`` .. ``syn-{n_tasks-1}``.
    L : ndarray of shape (d + 1, k)
        The planted basis, only if ``return_basis`` (as scikit-learn's
        ``make_regression(coef=True)`` does), for tests of basis recovery.
    """
    rng = np.random.default_rng(random_state)
    L = rng.standard_normal((d + 1, k))
    tasks = []
    for t in range(n_tasks):
        s = rng.standard_normal(k) * (rng.random(k) >= sparsity)
        if not s.any():
            s[rng.integers(k)] = rng.standard_normal()
        X = rng.standard_normal((n_per_task, d))
        y = X @ (L[:-1] @ s) + L[-1] @ s + noise * rng.standard_normal(n_per_task)
        tasks.append(Task(f"syn-{t}", X, y))
    return (tasks, L) if return_basis else tasks
