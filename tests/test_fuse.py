"""auperf.ops.fuse_views (C++ CPU path) against the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auperf import errors
from auperf.ops import fuse_views
from auperf.ops.reference import fuse_reference


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 50),
    v=st.integers(1, 5),
    num_aus=st.integers(1, 20),
    seed=st.integers(0, 2**31 - 1),
    per_au=st.booleans(),
)
def test_matches_reference(n, v, num_aus, seed, per_au):
    rng = np.random.default_rng(seed)
    logits = (rng.normal(0, 4, (n, v, num_aus))).astype(np.float32)
    thr = rng.uniform(0.05, 0.95, num_aus).astype(np.float32) if per_au else np.float32(0.5)
    p, a = fuse_views(logits, thr)
    p_ref, _ = fuse_reference(logits, thr)
    assert p.shape == (n, num_aus) and p.dtype == np.float32 and a.dtype == np.bool_
    # exp and the division are float32: within a few units in the last place of the float64 rule.
    np.testing.assert_allclose(p, p_ref, rtol=1e-6, atol=3e-7)
    np.testing.assert_array_equal(a, p >= thr)


def test_mean_of_views_then_sigmoid_not_mean_of_sigmoids():
    logits = np.array([[[4.0, -1.0], [-2.0, -1.0]]], np.float32)  # mean s = [1, -1]
    p, a = fuse_views(logits, 0.5)
    np.testing.assert_allclose(p[0], 1 / (1 + np.exp(-np.array([1.0, -1.0]))), rtol=1e-6)
    assert a[0].tolist() == [True, False]


def test_large_and_infinite_logits_do_not_overflow():
    big = np.float32(3e38)
    logits = np.array([[[big, big, -big], [-big, -big, 1.0], [np.inf, 0.0, 1.0]]], np.float32)
    logits = logits.transpose(0, 2, 1).copy()  # (1, V=3, L=3)
    p, a = fuse_views(logits, 0.5)
    assert np.isfinite(p).all()
    assert p[0, 0] == pytest.approx(1.0) and p[0, 1] == pytest.approx(0.0)
    assert a[0].tolist() == [True, False, True]
    # +inf and -inf in one mean are undefined: NaN, never active (documented).
    p, a = fuse_views(np.array([[[np.inf], [-np.inf]]], np.float32))
    assert np.isnan(p[0, 0]) and not a[0, 0]
    wide = np.array([[[-1000.0, -88.0, 0.0, 88.0, 1000.0]]], np.float32)
    p, _ = fuse_views(wide)
    np.testing.assert_allclose(p, fuse_reference(wide)[0], rtol=1e-6, atol=3e-7)
    assert p[0, 0] == 0.0 and p[0, -1] == 1.0 and 0 < p[0, 1] < 1e-37


def test_float16_input_matches_float32_of_same_values(rng):
    logits = rng.normal(0, 5, (64, 2, 12)).astype(np.float16)
    p16, a16 = fuse_views(logits, 0.4)
    p32, a32 = fuse_views(logits.astype(np.float32), 0.4)
    np.testing.assert_array_equal(p16, p32)  # half -> float conversion is exact
    np.testing.assert_array_equal(a16, a32)
    extremes = np.array([[[65504.0], [-65504.0]], [[np.inf], [1.0]]], np.float16)
    p, _ = fuse_views(extremes)
    np.testing.assert_allclose(p[:, 0], [0.5, 1.0])


def test_subnormal_half_values_convert_exactly():
    bits = np.array([0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF], np.uint16)
    halves = bits.view(np.float16).reshape(1, 1, 5)
    p, _ = fuse_views(halves)
    np.testing.assert_allclose(p, fuse_reference(halves.astype(np.float32))[0], rtol=1e-6, atol=0)


def test_nan_logits_give_nan_and_inactive():
    logits = np.array([[[np.nan, 1.0]]], np.float32)
    p, a = fuse_views(logits)
    assert np.isnan(p[0, 0]) and not a[0, 0] and a[0, 1]


def test_threshold_edges():
    logits = np.zeros((2, 1, 3), np.float32)  # p = 0.5 exactly
    _, a = fuse_views(logits, np.array([0.5, 0.0, 1.0]))
    assert a.tolist() == [[True, True, False]] * 2


def test_empty_batch():
    p, a = fuse_views(np.zeros((0, 2, 12), np.float32))
    assert p.shape == (0, 12) and a.shape == (0, 12)


def test_non_contiguous_logits_are_accepted(rng):
    logits = rng.normal(size=(8, 2, 24)).astype(np.float32)[:, :, ::2]
    np.testing.assert_array_equal(fuse_views(logits)[0], fuse_views(logits.copy())[0])


@pytest.mark.parametrize(
    "logits, thr, exc, match",
    [
        (
            np.zeros((2, 12), np.float32),
            0.5,
            errors.ShapeError,
            r"logits: expected shape \(N, V, L\)",
        ),
        (np.zeros((2, 0, 12), np.float32), 0.5, errors.ShapeError, "V >= 1"),
        (np.zeros((2, 2, 0), np.float32), 0.5, errors.ShapeError, "L >= 1"),
        (np.zeros((2, 2, 3), np.float64), 0.5, errors.DTypeError, "float32 or float16"),
        (np.zeros((2, 2, 3), np.int32), 0.5, errors.DTypeError, "float32 or float16"),
        (np.zeros((2, 2, 3), np.float32), [0.5, 0.5], errors.ShapeError, r"\(3,\)"),
        (np.zeros((2, 2, 3), np.float32), 1.5, errors.ValueRangeError, "entry 0 is 1.5"),
        (np.zeros((2, 2, 3), np.float32), [0.1, -0.1, 0.2], errors.ValueRangeError, "entry 1"),
        (np.zeros((2, 2, 3), np.float32), np.nan, errors.ValueRangeError, "in \\[0, 1\\]"),
    ],
)
def test_bad_input(logits, thr, exc, match):
    with pytest.raises(exc, match=match):
        fuse_views(logits, thr)
