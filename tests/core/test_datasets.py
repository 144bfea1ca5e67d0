"""The data-set loaders: shapes the paper states, and a clear error when files are absent."""

import numpy as np
import pytest

from ella_dist.datasets import load_landmine, make_synthetic


def test_landmine(landmine):
    assert len(landmine) == 29
    assert sum(len(t.y) for t in landmine) == 14820
    assert all(t.X.shape[1] == 9 for t in landmine)
    assert set(np.unique(np.concatenate([t.y for t in landmine]))) == {0.0, 1.0}


def test_school(school):
    assert len(school) == 139
    assert sum(len(t.y) for t in school) == 15362
    assert all(t.X.shape[1] == 27 for t in school)


def test_missing_file_names_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        load_landmine(tmp_path / "nothing.mat")


def test_synthetic_matches_the_paper_setting():
    tasks = make_synthetic(random_state=0)
    assert len(tasks) == 100
    assert all(t.X.shape == (100, 12) and t.y.shape == (100,) for t in tasks)
    again = make_synthetic(random_state=0)
    np.testing.assert_array_equal(tasks[5].y, again[5].y)
