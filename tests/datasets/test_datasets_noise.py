from __future__ import annotations

import numpy as np
import pytest

from auperf.datasets import (
    ASYMMETRIC_EXPRESSION_MAP,
    EXPRESSIONS,
    flip_expressions,
    flip_labels,
    weak_model_labels,
)
from auperf.errors import NonFiniteError, ShapeError, ValueRangeError

N = 40_000


def _within_binomial(k: int, n: int, p: float, z: float = 5.0) -> bool:
    return abs(k - n * p) <= z * np.sqrt(n * p * (1 - p)) + 1


def _labels(rng, n=N, n_aus=4, unknown=0.1, pos=(0.1, 0.3, 0.5, 0.05)):
    y = (rng.random((n, n_aus)) < np.asarray(pos[:n_aus])).astype(np.int8)
    y[rng.random((n, n_aus)) < unknown] = -1
    return y


def test_flip_rates_and_unknowns():
    rng = np.random.default_rng(0)
    y = _labels(rng)
    y_before = y.copy()
    per_au = np.array([0.0, 0.1, 0.25, 0.5])
    noisy, mask = flip_labels(y, 0.3, 1, per_au=per_au)
    assert noisy.dtype == y.dtype and noisy.shape == y.shape
    np.testing.assert_array_equal(noisy == y, ~mask)
    assert (noisy[y == -1] == -1).all() and not mask[y == -1].any()
    known = y >= 0
    for k, r in enumerate(per_au):
        assert _within_binomial(int(mask[:, k].sum()), int(known[:, k].sum()), r)
    noisy2, mask2 = flip_labels(y, 0.2, 1)
    assert _within_binomial(int(mask2.sum()), int(known.sum()), 0.2)
    # Same seed, same flips; a different seed, different flips.
    np.testing.assert_array_equal(flip_labels(y, 0.2, np.random.default_rng(1))[0], noisy2)
    assert not np.array_equal(flip_labels(y, 0.2, 2)[0], noisy2)
    np.testing.assert_array_equal(y, y_before)  # the input is not modified


@pytest.mark.parametrize(
    ("rate", "err", "message"),
    [
        (1.5, ValueRangeError, r"rate: expected rates in \[0, 1\], got \[1.5, 1.5\]"),
        (-0.1, ValueRangeError, r"rate: expected rates in \[0, 1\]"),
        (float("nan"), NonFiniteError, r"rate: expected rates in \[0, 1\], got NaN"),
        ([0.1, 0.2, 0.3], ShapeError, r"rate: expected a scalar or shape \(2,\), got \(3,\)"),
    ],
)
def test_bad_rates(rate, err, message):
    y = np.zeros((5, 2), np.int8)
    with pytest.raises(err, match=message):
        flip_labels(y, rate, 0)
    with pytest.raises(err, match="error_" + message):
        weak_model_labels(y, np.ones((5, 1)), 0, error_rate=rate)
    if np.ndim(rate) == 0:
        with pytest.raises(err, match=message.split(",")[0]):
            flip_expressions(np.zeros(5, np.int64), rate, 0)


def test_bad_labels():
    with pytest.raises(
        ValueRangeError, match=r"labels: expected 0, 1 or -1 \(unknown\), got 2 at \[1, 0\]"
    ):
        flip_labels(np.array([[0], [2]]), 0.1, 0)
    with pytest.raises(ShapeError, match=r"features: expected shape \(2, F\)"):
        weak_model_labels(np.zeros((2, 1), int), np.zeros((3, 2)), 0, error_rate=0.1)
    with pytest.raises(NonFiniteError, match="features: expected finite values"):
        weak_model_labels(np.zeros((2, 1), int), np.array([[np.nan], [0.0]]), 0, error_rate=0.1)
    with pytest.raises(
        ValueRangeError, match=r"labels: expected -1 or a class in \[0, 7\), got 7 at \[1\]"
    ):
        flip_expressions(np.array([0, 7]), 0.1, 0)


def _faces(rng, n=N):
    """Appearance covariates: brow height, mouth-corner baseline, skin tone."""
    return rng.standard_normal((n, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, 3.0]


@pytest.mark.parametrize("temperature", [0.0, 0.25, 2.0])
def test_weak_model_rates(temperature):
    rng = np.random.default_rng(5)
    y = _labels(rng)
    x = _faces(rng)
    rates = np.array([0.05, 0.2, 0.4, 0.1])
    noisy, mask = weak_model_labels(y, x, 9, error_rate=rates, temperature=temperature)
    np.testing.assert_array_equal(noisy == y, ~mask)
    assert (noisy[y == -1] == -1).all()
    for k, r in enumerate(rates):
        for cls in (0, 1):
            sel = y[:, k] == cls
            n_sel, k_sel = int(sel.sum()), int(mask[sel, k].sum())
            if temperature == 0:
                assert k_sel == round(r * n_sel)  # exact when deterministic
            else:
                assert _within_binomial(k_sel, n_sel, r), (k, cls, k_sel / n_sel, r)
    a = weak_model_labels(y, x, 9, error_rate=rates, temperature=temperature)
    np.testing.assert_array_equal(a.labels, noisy)


def test_weak_model_errors_follow_appearance():
    rng = np.random.default_rng(6)
    n = 20_000
    y = _labels(rng, n=n, n_aus=2, unknown=0.0, pos=(0.3, 0.3))
    x = _faces(rng, n)
    w = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]])  # AU a <- brow height, AU b <- skin tone
    noisy, mask = weak_model_labels(y, x, 3, error_rate=0.2, weights=w)
    rnd, rmask = flip_labels(y, 0.2, 3)

    def corr(m, feature, cls, k):
        sel = y[:, k] == cls
        return np.corrcoef(m[sel, k].astype(float), x[sel, feature])[0, 1]

    # False alarms fall on faces with high covariate, misses on faces with low covariate.
    assert corr(mask, 0, 0, 0) > 0.5 and corr(mask, 0, 1, 0) < -0.5
    assert corr(mask, 2, 0, 1) > 0.5 and corr(mask, 2, 1, 1) < -0.5
    assert abs(corr(mask, 1, 0, 0)) < 0.05  # an unweighted covariate plays no part
    assert abs(corr(rmask, 0, 0, 0)) < 0.05  # random flips ignore appearance
    # The same kind of face gets the same wrong label: duplicate faces flip together.
    y2 = np.concatenate([y, y])
    x2 = np.concatenate([x, x])
    _, m2 = weak_model_labels(y2, x2, 4, error_rate=0.2, weights=w)
    both = (m2[:n] & m2[n:]).sum() / max(m2[:n].sum(), 1)
    _, r2 = flip_labels(y2, 0.2, 4)
    both_random = (r2[:n] & r2[n:]).sum() / max(r2[:n].sum(), 1)
    assert both > 0.6 and both_random < 0.3


def test_weak_model_coupling():
    rng = np.random.default_rng(8)
    n = 20_000
    y = _labels(rng, n=n, n_aus=2, unknown=0.0, pos=(0.3, 0.3))
    x = rng.standard_normal((n, 1))
    c = np.array([[0.0, 3.0], [0.0, 0.0]])  # AU a active pushes the model to report AU b
    _, mask = weak_model_labels(y, x, 1, error_rate=0.15, weights=np.zeros((1, 2)), coupling=c)
    neg_b = y[:, 1] == 0
    fa_with_a = mask[neg_b & (y[:, 0] == 1), 1].mean()
    fa_without_a = mask[neg_b & (y[:, 0] == 0), 1].mean()
    assert fa_with_a > 3 * fa_without_a


def test_weak_model_edge_rates():
    rng = np.random.default_rng(2)
    y = _labels(rng, n=1000)
    x = _faces(rng, 1000)
    noisy, mask = weak_model_labels(y, x, 0, error_rate=0.0)
    np.testing.assert_array_equal(noisy, y)
    noisy, mask = weak_model_labels(y, x, 0, error_rate=1.0)
    np.testing.assert_array_equal(mask, y >= 0)


@pytest.mark.parametrize("num_classes", [7, 8])
def test_expression_flips(num_classes):
    rng = np.random.default_rng(11)
    y = rng.integers(-1, num_classes, size=N)
    known = y >= 0
    noisy, mask = flip_expressions(y, 0.3, 5, num_classes=num_classes)
    assert _within_binomial(int(mask.sum()), int(known.sum()), 0.3)
    assert (noisy[mask] != y[mask]).all() and (noisy[~mask] == y[~mask]).all()
    assert (noisy[~known] == -1).all()
    # Symmetric: a flipped label goes to each other class about equally often.
    c = 1
    counts = np.bincount(noisy[mask & (y == c)], minlength=num_classes)
    others = np.delete(counts, c)
    assert counts[c] == 0 and all(
        _within_binomial(int(k), int(others.sum()), 1 / (num_classes - 1)) for k in others
    )
    np.testing.assert_array_equal(flip_expressions(y, 0.3, 5, num_classes=num_classes)[0], noisy)

    noisy, mask = flip_expressions(y, 0.3, 5, mode="asymmetric", num_classes=num_classes)
    assert _within_binomial(int(mask.sum()), int(known.sum()), 0.3)
    for cls in range(num_classes):
        assert (noisy[mask & (y == cls)] == ASYMMETRIC_EXPRESSION_MAP[cls]).all()
    fear, surprise = EXPRESSIONS.index("fear"), EXPRESSIONS.index("surprise")
    assert (
        ASYMMETRIC_EXPRESSION_MAP[fear] == surprise and ASYMMETRIC_EXPRESSION_MAP[surprise] == fear
    )


def test_expression_mapping_errors():
    y = np.arange(7)
    with pytest.raises(ValueRangeError, match=r"mapping: no target for class 6 \(anger\)"):
        flip_expressions(y, 0.1, 0, mode="asymmetric", mapping={i: (i + 1) % 6 for i in range(6)})
    with pytest.raises(
        ValueRangeError, match=r"mapping: class 0 \(neutral\) must map to another class"
    ):
        flip_expressions(y, 0.1, 0, mode="asymmetric", mapping={i: i for i in range(7)})
    with pytest.raises(
        ValueRangeError, match=r"class 6 \(anger\) must map to another class in \[0, 7\), got 7"
    ):
        flip_expressions(y, 0.1, 0, mode="asymmetric", mapping={**ASYMMETRIC_EXPRESSION_MAP, 6: 7})
