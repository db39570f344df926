"""auperf.teacher: blendshape -> AU scores, unknown AUs, threshold calibration."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from auperf import errors
from auperf.teacher import (
    BLENDSHAPE_NAMES,
    BLENDSHAPE_TO_AU,
    UNKNOWN,
    Teacher,
    au_scores,
    calibrate_thresholds,
)


def test_names_are_mediapipes_52_and_every_mapped_source_exists():
    assert len(BLENDSHAPE_NAMES) == 52 and len(set(BLENDSHAPE_NAMES)) == 52
    for au, sources in BLENDSHAPE_TO_AU.items():
        assert sources and all(s in BLENDSHAPE_NAMES for s in sources), au


def test_scores_are_the_mean_of_each_aus_blendshapes():
    rng = np.random.default_rng(0)
    bs = rng.random((6, 52)).astype(np.float32)
    col = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
    got = au_scores(bs, [12, 1, 23, 26])
    np.testing.assert_allclose(
        got[:, 0], 0.5 * (bs[:, col["mouthSmileLeft"]] + bs[:, col["mouthSmileRight"]]), 1e-6
    )
    np.testing.assert_allclose(got[:, 1], bs[:, col["browInnerUp"]], 1e-6)
    assert np.isnan(got[:, 2]).all()  # AU23: no blendshape
    np.testing.assert_allclose(got[:, 3], bs[:, col["jawOpen"]], 1e-6)


def test_named_columns_in_another_order():
    names = ["jawOpen", "mouthSmileRight", "mouthSmileLeft"]
    bs = np.array([[0.9, 0.2, 0.4]], np.float32)
    got = au_scores(bs, [12, 26, 4], names)
    np.testing.assert_allclose(got[0, :2], [0.3, 0.9], 1e-6)
    assert np.isnan(got[0, 2])  # brow blendshapes not among the columns


def test_labels_unknown_never_negative():
    teacher = Teacher([1, 12, 23], thresholds={12: 0.3})
    bs = np.zeros((3, 52), np.float32)
    col = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
    bs[0, col["mouthSmileLeft"]] = bs[0, col["mouthSmileRight"]] = 0.35
    bs[1, col["browInnerUp"]] = 0.7
    bs[2] = np.nan
    out = teacher(bs)
    assert out.labels.dtype == np.int8
    np.testing.assert_array_equal(
        out.labels, [[0, 1, UNKNOWN], [1, 0, UNKNOWN], [UNKNOWN, UNKNOWN, UNKNOWN]]
    )
    assert teacher.unknown_aus == (23,)
    np.testing.assert_array_equal(out.known, [True, True, False])


def _best_f1_brute_force(score, truth):
    best = -1.0
    for t in np.unique(score):
        best = max(best, f1_score(truth, score >= t, zero_division=0.0))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_calibration_reaches_the_brute_force_best_f1(seed):
    rng = np.random.default_rng(seed)
    n = 200
    truth = rng.random((n, 3)) < [0.2, 0.5, 0.05]
    scores = np.clip(truth * 0.3 + rng.normal(0.3, 0.15, (n, 3)), 0, 1).round(2)
    th = calibrate_thresholds(scores, truth.astype(int), [6, 12, 15])
    for j, au in enumerate([6, 12, 15]):
        if truth[:, j].sum() < 5:
            assert au not in th
            continue
        got = f1_score(truth[:, j], scores[:, j] >= th[au])
        assert got == pytest.approx(_best_f1_brute_force(scores[:, j], truth[:, j]), abs=1e-12)


def test_calibration_skips_nan_and_rare_aus():
    scores = np.array([[0.9, np.nan]] * 6 + [[0.1, np.nan]] * 6)
    truth = np.array([[1, 1]] * 6 + [[0, 0]] * 6)
    th = calibrate_thresholds(scores, truth, [12, 23])
    assert set(th) == {12} and 0.1 < th[12] < 0.9


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(errors.ShapeError, match="52"):
        au_scores(np.zeros((2, 51)), [12])
    with pytest.raises(errors.ShapeError, match="names"):
        au_scores(np.zeros((2, 3)), [12], ["a", "b"])
    with pytest.raises(errors.DTypeError):
        au_scores(np.array([["x"] * 52]), [12])
    with pytest.raises(errors.ParameterError, match="AU23"):
        Teacher([12], thresholds={23: 0.5})
    with pytest.raises(errors.ValueRangeError, match="1.5"):
        Teacher([12], thresholds={12: 1.5})
    with pytest.raises(errors.ValueRangeError):
        calibrate_thresholds(np.zeros((3, 1)), np.full((3, 1), 2), [12])
