"""Evaluation metrics against scikit-learn and hand-computed ICC values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from auperf.errors import ShapeError, ValueRangeError
from training.common.metrics import (
    evaluate_occurrence,
    f1_scores,
    icc3_1,
    intensity_icc,
    intensity_mae,
    mean_f1,
    roc_auc_scores,
    tune_thresholds,
)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    n, l_ = 120, 5
    y = (rng.random((n, l_)) < [0.1, 0.3, 0.5, 0.7, 0.2]).astype(np.int64)
    scores = np.clip(y * 0.3 + rng.random((n, l_)) * 0.8, 0, 1)
    scores[:, 2] = np.round(scores[:, 2], 1)  # ties
    y[rng.random((n, l_)) < 0.15] = -1  # unknown labels
    return y, scores


def test_f1_matches_sklearn(data):
    y, s = data
    pred = s >= 0.5
    got = f1_scores(y, pred)
    for k in range(y.shape[1]):
        known = y[:, k] >= 0
        assert got[k] == pytest.approx(f1_score(y[known, k], pred[known, k], zero_division=0.0))
    assert mean_f1(y, pred) == pytest.approx(got.mean())


def test_f1_zero_division():
    assert f1_scores([[0], [0], [-1]], [[0], [0], [1]]).tolist() == [0.0]


def test_auc_matches_sklearn_with_ties(data):
    y, s = data
    got = roc_auc_scores(y, s)
    for k in range(y.shape[1]):
        known = y[:, k] >= 0
        assert got[k] == pytest.approx(roc_auc_score(y[known, k], s[known, k]), rel=1e-12)


def test_auc_undefined_for_one_class():
    auc = roc_auc_scores([[1, 0], [1, 1], [-1, 0]], [[0.2, 0.1], [0.3, 0.9], [0.5, 0.5]])
    assert math.isnan(auc[0]) and auc[1] == 1.0


def _icc31_by_hand(table: list[list[float]]) -> float:
    n, k = len(table), len(table[0])
    grand = sum(sum(r) for r in table) / (n * k)
    row_means = [sum(r) / k for r in table]
    col_means = [sum(table[i][j] for i in range(n)) / n for j in range(k)]
    ss_total = sum((table[i][j] - grand) ** 2 for i in range(n) for j in range(k))
    ss_rows = k * sum((m - grand) ** 2 for m in row_means)
    ss_cols = n * sum((m - grand) ** 2 for m in col_means)
    bms = ss_rows / (n - 1)
    ems = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    return (bms - ems) / (bms + (k - 1) * ems)


def test_icc_shrout_fleiss_table():
    # The 6 targets x 4 judges example of Shrout and Fleiss (1979); ICC(3,1) = 0.71 there.
    table = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    hand = _icc31_by_hand(table)
    assert hand == pytest.approx(0.71, abs=0.005)
    assert icc3_1(table) == pytest.approx(hand, rel=1e-12)


def test_intensity_icc_and_mae_ignore_unknown():
    y = np.array([[0, 3], [1, -1], [2, 5], [4, np.nan], [5, 1]], dtype=float)
    p = np.array([[0.5, 2], [1, 9], [2.5, 4], [3, 9], [4, 1]], dtype=float)
    icc = intensity_icc(y, p)
    assert icc[0] == pytest.approx(_icc31_by_hand([[0, 0.5], [1, 1], [2, 2.5], [4, 3], [5, 4]]))
    assert icc[1] == pytest.approx(_icc31_by_hand([[3, 2], [5, 4], [1, 1]]))
    mae = intensity_mae(y, p)
    assert mae.tolist() == pytest.approx([(0.5 + 0 + 0.5 + 1 + 1) / 5, (1 + 1 + 0) / 3])


def test_tuned_thresholds_maximise_f1(data):
    y, s = data
    th = tune_thresholds(y, s)
    for k in range(y.shape[1]):
        known = y[:, k] >= 0
        yk, sk = y[known, k], s[known, k]
        best = max(f1_score(yk, sk >= c, zero_division=0.0) for c in np.unique(sk))
        assert f1_score(yk, sk >= th[k], zero_division=0.0) == pytest.approx(best)
    assert tune_thresholds([[0], [0], [-1]], [[0.2], [0.9], [0.1]]).tolist() == [0.5]


def test_evaluate_occurrence(data):
    y, s = data
    res = evaluate_occurrence(y, s, thresholds=[0.5] * 5, au_names=list("abcde"))
    assert set(res) == {"mean_f1", "mean_auc", "f1", "auc"}
    assert list(res["f1"]) == list("abcde")
    assert res["mean_f1"] == pytest.approx(mean_f1(y, s >= 0.5))


def test_errors():
    with pytest.raises(ValueRangeError, match="row 1, AU 0"):
        f1_scores([[1], [2]], [[1], [0]])
    with pytest.raises(ShapeError, match="predictions"):
        f1_scores([[1, 0]], [[1]])
    with pytest.raises(ShapeError, match="ratings"):
        icc3_1([[1, 2]])
