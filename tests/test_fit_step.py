"""auperf.ops.adam_step (C++ CPU path) against the NumPy reference and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import auperf
from auperf import errors
from auperf.ops import FitStatus, adam_step
from auperf.ops.reference import adam_step_reference


def _state(rng, n, d, *, lower=0.0, upper=1.0, steps=None):
    """A fit state after a few iterations: params in the box, moments of past gradients."""
    x = rng.uniform(lower, upper, (n, d)).astype(np.float32)
    g = rng.normal(0, 1, (n, d)).astype(np.float32)
    m = rng.normal(0, 0.3, (n, d)).astype(np.float32)
    v = rng.uniform(0.01, 1.0, (n, d)).astype(np.float32)
    step = (rng.integers(1, 40, n) if steps is None else np.full(n, steps)).astype(np.int32)
    return x, g, m, v, step


def _copy(*arrays):
    return tuple(np.array(a, copy=True) for a in arrays)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    d=st.integers(1, 90),
    seed=st.integers(0, 2**31 - 1),
    per_face_lr=st.booleans(),
    lr=st.floats(1e-4, 0.5),
    lower=st.floats(-2.0, 0.5),
    width=st.floats(0.05, 3.0),
    beta1=st.sampled_from([0.0, 0.5, 0.9]),
    beta2=st.sampled_from([0.9, 0.99, 0.999]),
    cap=st.one_of(st.none(), st.integers(1, 45)),
    uint8_active=st.booleans(),
)
def test_matches_reference(
    n, d, seed, per_face_lr, lr, lower, width, beta1, beta2, cap, uint8_active
):
    rng = np.random.default_rng(seed)
    upper = lower + width
    x, g, m, v, step = _state(rng, n, d, lower=lower - 0.2, upper=upper + 0.2)
    active = rng.random(n) < 0.8
    if uint8_active:
        active = active.astype(np.uint8)
    lrs = rng.uniform(1e-4, 0.5, n).astype(np.float32) if per_face_lr else lr
    kw = dict(lr=lrs, beta1=beta1, beta2=beta2, lower=lower, upper=upper, max_iterations=cap)
    ref = adam_step_reference(x, g, m, v, step, active, **kw)
    status = np.full(n, -1, np.int8)
    left = adam_step(x, g, m, v, step, active, status=status, **kw)
    np.testing.assert_allclose(x, ref["params"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(m, ref["m"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(v, ref["v"], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(step, ref["step"])
    np.testing.assert_array_equal(active.astype(bool), ref["active"])
    np.testing.assert_array_equal(status, ref["status"])
    assert left == int(ref["active"].sum())
    stepped = ref["status"] >= 0
    assert (x[stepped] >= np.float32(lower)).all() and (x[stepped] <= np.float32(upper)).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(1, 80), seed=st.integers(0, 2**31 - 1))
def test_convergence_flags_match_reference(n, d, seed):
    rng = np.random.default_rng(seed)
    x, g, m, v, step = _state(rng, n, d)
    lrs = (10.0 ** rng.uniform(-5, -1, n)).astype(np.float32)
    loss = rng.uniform(0.5, 1.0, n).astype(np.float32)
    prev = (loss * (1 + rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-6, -1, n))).astype(np.float32)
    active = rng.random(n) < 0.9
    probe = adam_step_reference(x, g, m, v, step, active, lr=lrs)
    # Tolerances halfway (in log scale) between neighbouring values, never on a face's value.
    dx = np.sort(probe["max_dx"][probe["status"] >= 0])
    rel = np.sort(np.abs(prev - loss).astype(np.float64) / np.abs(prev))
    k = int(rng.integers(0, max(len(dx) - 1, 1)))
    tol_param = (
        float(np.sqrt(dx[k] * dx[k + 1])) if len(dx) > 1 and dx[k + 1] > dx[k] * 1.01 else 0.0
    )
    j = int(rng.integers(0, n - 1))
    tol_loss = float(np.sqrt(rel[j] * rel[j + 1])) if rel[j + 1] > rel[j] * 1.01 else 0.0
    kw = dict(lr=lrs, tol_param=tol_param, tol_loss=tol_loss, max_iterations=int(step.max()))
    ref = adam_step_reference(x, g, m, v, step, active, loss=loss, prev_loss=prev, **kw)
    status = np.full(n, -1, np.int8)
    left = adam_step(x, g, m, v, step, active, loss=loss, prev_loss=prev, status=status, **kw)
    np.testing.assert_array_equal(status, ref["status"])
    np.testing.assert_array_equal(active, ref["active"])
    np.testing.assert_array_equal(prev, ref["prev_loss"].astype(np.float32))
    assert left == int(ref["active"].sum())
    np.testing.assert_allclose(x, ref["params"], rtol=0, atol=1e-6)


def test_bias_correction_by_hand_t1_t2():
    beta1, beta2, eps, lr = 0.9, 0.999, 1e-8, 0.01
    x = np.array([[0.5, 0.3]], np.float32)
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    step = np.zeros(1, np.int32)
    active = np.ones(1, bool)
    g1 = np.array([[0.2, -4.0]], np.float32)
    adam_step(x, g1, m, v, step, active, lr=lr)
    # The kernel holds beta in float32: 1 - float32(0.999) = 0.00099998713 (not 0.001).
    b1, b2 = float(np.float32(beta1)), float(np.float32(beta2))
    # t = 1: m = (1 - b1) g, v = (1 - b2) g^2, mhat = g, vhat = g^2: x moves by lr g / (|g| + eps).
    np.testing.assert_allclose(m[0], [(1 - b1) * 0.2, (1 - b1) * -4.0], rtol=1e-6)
    np.testing.assert_allclose(v[0], [(1 - b2) * 0.04, (1 - b2) * 16.0], rtol=1e-6)
    assert abs(v[0, 0] - 4e-5) > 4e-10  # the float32 rounding of beta2 is visible
    np.testing.assert_allclose(x[0], [0.5 - 0.01, 0.3 + 0.01], atol=2e-7)
    assert step[0] == 1
    g2 = np.array([[-0.1, 2.0]], np.float32)
    x1 = x.astype(np.float64).copy()
    adam_step(x, g2, m, v, step, active, lr=lr)
    # t = 2, written out with the float32 settings the kernel uses.
    for d, (ga, gb) in enumerate([(0.2, -0.1), (-4.0, 2.0)]):
        m2 = b1 * (1 - b1) * ga + (1 - b1) * gb
        v2 = b2 * (1 - b2) * ga**2 + (1 - b2) * gb**2
        mhat, vhat = m2 / (1 - b1**2), v2 / (1 - b2**2)
        expected = x1[0, d] - lr * mhat / (math.sqrt(vhat) + eps)
        assert m[0, d] == pytest.approx(m2, rel=1e-6)
        assert v[0, d] == pytest.approx(v2, rel=1e-5)
        assert x[0, d] == pytest.approx(expected, abs=1e-7)
    assert step[0] == 2
    # The hand values differ from an uncorrected step (mhat = m, vhat = v) by far more than 1e-7.
    assert abs(x[0, 0] - (x1[0, 0] - lr * m[0, 0] / (math.sqrt(v[0, 0]) + eps))) > 1e-3


def test_projection_clamps_to_the_bounds_exactly():
    x = np.array([[0.79, 0.21, 0.5]], np.float32)
    g = np.array([[-1.0, 1.0, 1.0]], np.float32)  # pushes up, down, down
    m, v = np.zeros_like(x), np.zeros_like(x)
    step, active = np.zeros(1, np.int32), np.ones(1, bool)
    adam_step(x, g, m, v, step, active, lr=0.05, lower=0.2, upper=0.8)
    assert x[0, 0] == np.float32(0.8) and x[0, 1] == np.float32(0.2)
    assert x[0, 2] == pytest.approx(0.45, abs=1e-6)
    # Unbounded box: plain Adam.
    y = np.array([[5.0]], np.float32)
    adam_step(
        y,
        np.ones((1, 1), np.float32),
        np.zeros_like(y),
        np.zeros_like(y),
        np.zeros(1, np.int32),
        np.ones(1, bool),
        lr=0.5,
        lower=-np.inf,
        upper=np.inf,
    )
    assert y[0, 0] == pytest.approx(4.5, abs=1e-6)
    # Parameters that start outside the box are projected in.
    z = np.array([[1.7, -3.0]], np.float32)
    adam_step(
        z,
        np.full((1, 2), 1e-3, np.float32),
        np.zeros_like(z),
        np.zeros_like(z),
        np.zeros(1, np.int32),
        np.ones(1, bool),
        lr=1e-3,
    )
    assert z[0].tolist() == [1.0, 0.0]


def test_per_face_learning_rate():
    n, d = 4, 6
    x = np.full((n, d), 0.5, np.float32)
    g = np.tile(np.linspace(-1, 1, d, dtype=np.float32) + 0.05, (n, 1))
    lrs = np.array([1e-3, 1e-2, 5e-2, 0.1], np.float32)
    adam_step(
        x, g, np.zeros_like(x), np.zeros_like(x), np.zeros(n, np.int32), np.ones(n, bool), lr=lrs
    )
    # At t = 1 every coordinate moves by lr_i against the sign of its gradient.
    np.testing.assert_allclose(0.5 - x, lrs[:, None] * np.sign(g), rtol=1e-5, atol=1e-7)
    # A list is accepted as well as an array.
    y = np.full((2, 1), 0.5, np.float32)
    adam_step(
        y,
        np.ones((2, 1), np.float32),
        np.zeros_like(y),
        np.zeros_like(y),
        np.zeros(2, np.int32),
        np.ones(2, bool),
        lr=[0.1, 0.2],
    )
    np.testing.assert_allclose(y[:, 0], [0.4, 0.3], atol=1e-6)


def test_parameter_tolerance_rule():
    n, d = 3, 5
    rng = np.random.default_rng(0)
    x, g, m, v, step = _state(rng, n, d, steps=3)
    x[2] = 1.0
    g[2] = -1.0  # pushed against the upper bound (with past momentum upwards): it does not move
    m[2] = -0.5
    lrs = np.array([1e-4, 0.1, 0.1], np.float32)
    ref = adam_step_reference(x, g, m, v, step, np.ones(n, bool), lr=lrs, tol_param=1e-3)
    assert ref["max_dx"][0] < 1e-3 < ref["max_dx"][1] and ref["max_dx"][2] == 0.0
    status = np.zeros(n, np.int8)
    active = np.ones(n, bool)
    left = adam_step(x, g, m, v, step, active, lr=lrs, tol_param=1e-3, status=status)
    assert left == 1
    assert active.tolist() == [False, True, False]
    assert status.tolist() == [
        FitStatus.CONVERGED_PARAM,
        FitStatus.RUNNING,
        FitStatus.CONVERGED_PARAM,
    ]
    assert step.tolist() == [4, 4, 4]  # the converging step is counted


def test_loss_tolerance_rule_and_prev_loss_copy():
    n, d = 4, 3
    rng = np.random.default_rng(1)
    x, g, m, v, _ = _state(rng, n, d)
    step = np.array([5, 5, 0, 5], np.int32)
    prev = np.array([1.0, 1.0, 0.2, 0.0], np.float32)
    loss = np.array([0.9999, 0.5, 0.2, 5e-13], np.float32)
    active = np.ones(n, bool)
    status = np.zeros(n, np.int8)
    left = adam_step(
        x, g, m, v, step, active, lr=0.01, loss=loss, prev_loss=prev, tol_loss=1e-3, status=status
    )
    # face 0: relative change 1e-4 <= 1e-3; face 1: 0.5; face 2: equal losses but t = 1 (no
    # previous loss yet); face 3: prev 0 -> the floor 1e-12 makes 5e-13 <= 1e-15 false.
    assert status.tolist() == [FitStatus.CONVERGED_LOSS, 0, 0, 0]
    assert active.tolist() == [False, True, True, True] and left == 3
    np.testing.assert_array_equal(prev, loss)
    # With a looser tolerance the floor counts: |0 - 5e-13| <= 1 * max(0, 1e-12).
    prev2 = np.array([0.0], np.float32)
    active2 = np.ones(1, bool)
    adam_step(
        x[:1].copy(),
        g[:1],
        m[:1].copy(),
        v[:1].copy(),
        np.array([3], np.int32),
        active2,
        lr=0.01,
        loss=np.array([5e-13], np.float32),
        prev_loss=prev2,
        tol_loss=1.0,
    )
    assert not active2[0]


def test_iteration_cap_and_rule_order():
    n, d = 3, 4
    rng = np.random.default_rng(2)
    x, g, m, v, _ = _state(rng, n, d)
    step = np.array([4, 2, 4], np.int32)
    lrs = np.array([0.1, 0.1, 1e-6], np.float32)
    active = np.ones(n, bool)
    status = np.zeros(n, np.int8)
    left = adam_step(
        x, g, m, v, step, active, lr=lrs, max_iterations=5, tol_param=1e-4, status=status
    )
    # face 2 meets both the tolerance and the cap: the tolerance is reported first.
    assert status.tolist() == [FitStatus.MAX_ITERATIONS, 0, FitStatus.CONVERGED_PARAM]
    assert left == 1 and step.tolist() == [5, 3, 5]
    # A cap of 1 stops every face after its first step.
    active = np.ones(n, bool)
    assert adam_step(x, g, m, v, np.zeros(n, np.int32), active, lr=0.1, max_iterations=1) == 0


def test_negative_and_saturated_step_counts():
    x = np.full((2, 3), 0.5, np.float32)
    g = np.ones((2, 3), np.float32)
    step = np.array([-7, 2**31 - 1], np.int32)
    adam_step(x, g, np.zeros_like(x), np.zeros_like(x), step, np.ones(2, bool), lr=0.1)
    assert step.tolist() == [1, 2**31 - 1]
    # t = 1 for the first face (full bias correction: a step of lr); for the second,
    # beta**t = 0 so mhat = m = 0.1 g and vhat = v = 0.001 g^2: a step of about 0.316 lr.
    np.testing.assert_allclose(x[0], 0.4, atol=1e-6)
    np.testing.assert_allclose(x[1], 0.5 - 0.1 * 0.1 / np.sqrt(0.001), atol=1e-5)


def test_inactive_faces_untouched_bit_for_bit():
    n, d = 6, 77
    rng = np.random.default_rng(3)
    x, g, m, v, step = _state(rng, n, d)
    active = np.array([1, 0, 1, 0, 0, 1], bool)
    g[1] = np.nan  # an inactive face's gradients are not even read
    g[3] = np.inf
    loss = rng.uniform(0, 1, n).astype(np.float32)
    prev = rng.uniform(0, 1, n).astype(np.float32)
    status = np.array([9, 9, 9, 9, 9, 9], np.int8)
    before = _copy(x, m, v, step, prev)
    adam_step(
        x,
        g,
        m,
        v,
        step,
        active,
        lr=0.05,
        loss=loss,
        prev_loss=prev,
        status=status,
        tol_param=1e-9,
        max_iterations=10_000,
    )
    for after, orig in zip((x, m, v, step, prev), before, strict=True):
        for i in (1, 3, 4):
            assert after[i].tobytes() == orig[i].tobytes()
        for i in (0, 2, 5):
            assert after[i].tobytes() != orig[i].tobytes()
    assert status.tolist() == [0, 9, 0, 9, 9, 0]
    assert active.tolist() == [True, False, True, False, False, True]


def test_non_finite_gradient_or_parameter_stops_the_face_without_writing():
    n, d = 4, 5
    rng = np.random.default_rng(4)
    x, g, m, v, step = _state(rng, n, d)
    g[1, 3] = np.nan
    g[2, 0] = -np.inf
    x[3, 4] = np.nan
    loss, prev = np.ones(n, np.float32), np.full(n, 2.0, np.float32)
    before = _copy(x, m, v, step, prev)
    active = np.ones(n, bool)
    status = np.zeros(n, np.int8)
    left = adam_step(x, g, m, v, step, active, lr=0.1, loss=loss, prev_loss=prev, status=status)
    assert left == 1
    assert status.tolist() == [0, FitStatus.NON_FINITE, FitStatus.NON_FINITE, FitStatus.NON_FINITE]
    assert active.tolist() == [True, False, False, False]
    for after, orig in zip((x, m, v, step, prev), before, strict=True):
        assert after[1:].tobytes() == orig[1:].tobytes()
    assert np.isfinite(x[0]).all() and step[0] == before[3][0] + 1


def test_thread_counts_give_identical_bits():
    n, d = 3000, 77  # large enough for several threads (about 425 faces per thread)
    rng = np.random.default_rng(5)
    x0, g, m0, v0, step0 = _state(rng, n, d)
    active0 = rng.random(n) < 0.9
    lrs = rng.uniform(1e-3, 0.1, n).astype(np.float32)
    before = auperf.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 3):
            auperf.set_num_threads(threads)
            x, m, v, step, active = _copy(x0, m0, v0, step0, active0)
            status = np.zeros(n, np.int8)
            left = adam_step(
                x, g, m, v, step, active, lr=lrs, tol_param=2e-3, max_iterations=30, status=status
            )
            results.append(
                (
                    left,
                    x.tobytes(),
                    m.tobytes(),
                    v.tobytes(),
                    step.tobytes(),
                    active.tobytes(),
                    status.tobytes(),
                )
            )
    finally:
        auperf.set_num_threads(before)
    assert results[0] == results[1] == results[2]
    assert 0 < results[0][0] < n  # some faces stopped, some did not: the flags were exercised


def test_minimises_per_face_quadratics_to_the_projected_optimum():
    n, d = 32, 77
    rng = np.random.default_rng(6)
    centre = rng.uniform(-0.5, 1.5, (n, d))  # optima inside and outside [0, 1]
    curvature = rng.uniform(0.5, 4.0, (n, d))
    x = np.full((n, d), 0.5, np.float32)
    m, v = np.zeros_like(x), np.zeros_like(x)
    step, active = np.zeros(n, np.int32), np.ones(n, bool)
    loss, prev = np.zeros(n, np.float32), np.zeros(n, np.float32)
    status = np.zeros(n, np.int8)
    base_lr = rng.uniform(0.02, 0.08, n).astype(np.float32)
    left, iterations = n, 0
    while left and iterations < 3000:
        r = x.astype(np.float64) - centre
        grads = (curvature * r).astype(np.float32)
        loss[:] = 0.5 * (curvature * r * r).sum(axis=1)
        lrs = base_lr / np.sqrt(1.0 + step / 50.0).astype(np.float32)  # per-face decay
        left = adam_step(
            x,
            grads,
            m,
            v,
            step,
            active,
            lr=lrs,
            loss=loss,
            prev_loss=prev,
            tol_param=1e-6,
            max_iterations=3000,
            status=status,
        )
        iterations += 1
    assert left == 0 and not active.any()
    assert set(status.tolist()) <= {FitStatus.CONVERGED_PARAM, FitStatus.CONVERGED_LOSS}
    np.testing.assert_allclose(x, np.clip(centre, 0, 1), atol=1e-4)
    assert (x[centre >= 1] == 1).all() and (x[centre <= 0] == 0).all()
    assert len(set(step.tolist())) > 1  # faces stopped on their own


def test_returns_count_and_handles_empty_batches():
    x = np.zeros((0, 7), np.float32)
    assert (
        adam_step(x, x, x.copy(), x.copy(), np.zeros(0, np.int32), np.zeros(0, bool), lr=0.1) == 0
    )
    y = np.full((3, 2), 0.5, np.float32)
    active = np.array([True, False, True])
    assert (
        adam_step(
            y,
            np.ones_like(y),
            np.zeros_like(y),
            np.zeros_like(y),
            np.zeros(3, np.int32),
            active,
            lr=0.1,
        )
        == 2
    )


def test_torch_cpu_tensors_are_updated_in_place():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    x = torch.full((2, 3), 0.5, requires_grad=True)
    (x * torch.tensor([1.0, -2.0, 3.0])).sum().backward()
    m, v = torch.zeros(2, 3), torch.zeros(2, 3)
    step = torch.zeros(2, dtype=torch.int32)
    active = torch.ones(2, dtype=torch.bool)
    assert adam_step(x, x.grad, m, v, step, active, lr=0.1, max_iterations=1) == 0
    np.testing.assert_allclose(x.detach().numpy(), [[0.4, 0.6, 0.4]] * 2, atol=1e-6)
    assert step.tolist() == [1, 1] and active.tolist() == [False, False]


def _good(n=3, d=4):
    rng = np.random.default_rng(7)
    x, g, m, v, step = _state(rng, n, d)
    return dict(params=x, grads=g, m=m, v=v, step=step, active=np.ones(n, bool))


@pytest.mark.parametrize(
    "change, error, match",
    [
        (dict(params=np.zeros((3, 4), np.float64)), errors.DTypeError, "params: expected float32"),
        (dict(params=np.zeros((3, 4, 1), np.float32)), errors.ShapeError, r"params: expected"),
        (dict(params=np.zeros((3, 0), np.float32)), errors.ShapeError, "D >= 1"),
        (dict(m=np.zeros((3, 5), np.float32)), errors.ShapeError, r"m: expected shape \(3, 4\)"),
        (dict(v=np.zeros((4, 3), np.float32).T), errors.ShapeError, "v: expected a C-contiguous"),
        (dict(grads=np.zeros((2, 4), np.float32)), errors.ShapeError, "grads: expected shape"),
        (dict(grads=np.zeros((3, 4), np.int32)), errors.DTypeError, "grads: expected float32"),
        (dict(step=np.zeros(3, np.int64)), errors.DTypeError, "step: expected int32"),
        (dict(step=np.zeros(4, np.int32)), errors.ShapeError, r"step: expected shape \(3,\)"),
        (dict(active=np.ones(3, np.int32)), errors.DTypeError, "active: expected bool or uint8"),
        (dict(active=[True] * 3), errors.DTypeError, "active: expected a NumPy array"),
    ],
)
def test_array_errors(change, error, match):
    kw = _good()
    kw.update(change)
    with pytest.raises(error, match=match):
        adam_step(**kw, lr=0.1)


def test_read_only_state_is_refused():
    kw = _good()
    kw["m"].setflags(write=False)
    with pytest.raises(errors.ShapeError, match="m: the array is read-only"):
        adam_step(**kw, lr=0.1)


@pytest.mark.parametrize(
    "settings_, match",
    [
        (dict(lr=0.0), r"lr: got 0.0"),
        (dict(lr=-1.0), r"lr: got -1.0"),
        (dict(lr=float("nan")), r"lr: got nan"),
        (dict(lr=float("inf")), r"lr: got inf"),
        (dict(lr=np.array([0.1, 0.0, 0.1], np.float32)), r"lr: entry 1 is 0.0"),
        (dict(lr=np.array([0.1, 0.1, np.nan], np.float32)), r"lr: entry 2 is nan"),
        (dict(beta1=1.0), r"beta1: got 1.0"),
        (dict(beta1=-0.1), r"beta1: got -0.1"),
        (dict(beta2=1.0), r"beta2: got 1.0"),
        (dict(beta2=0.99999999999), r"beta2: got 1.0"),  # rounds to 1 in float32
        (dict(eps=0.0), r"eps: got 0.0"),
        (dict(lower=1.0, upper=1.0), r"lower/upper: got lower=1.0, upper=1.0"),
        (dict(lower=float("nan")), r"lower/upper: got lower=nan"),
        (dict(tol_param=-1e-3), r"tol_param: got -0.001"),
        (dict(tol_loss=float("inf")), r"tol_loss: got inf"),
        (dict(tol_loss=1e-3), r"tol_loss: 0.001 > 0 needs loss and prev_loss"),
        (dict(max_iterations=0), r"max_iterations: got 0"),
        (dict(max_iterations=2.5), r"max_iterations: got 2.5"),
        (dict(max_iterations=2**31), r"max_iterations: got 2147483648"),
        (dict(loss=np.zeros(3, np.float32)), r"loss/prev_loss: give both or neither"),
    ],
)
def test_setting_errors(settings_, match):
    kw = _good()
    kw.update(lr=0.1)
    kw.update(settings_)
    with pytest.raises(errors.ValueRangeError, match=match):
        adam_step(**kw)


def test_non_numeric_setting_is_a_dtype_error():
    with pytest.raises(errors.DTypeError, match="beta1: expected a number, got 'high'"):
        adam_step(**_good(), lr=0.1, beta1="high")
    with pytest.raises(errors.DTypeError, match="lr: expected a float"):
        adam_step(**_good(), lr="fast")


def test_loss_and_status_array_errors():
    kw = _good()
    with pytest.raises(errors.ShapeError, match=r"loss: expected shape \(3,\)"):
        adam_step(**kw, lr=0.1, loss=np.zeros(2, np.float32), prev_loss=np.zeros(3, np.float32))
    with pytest.raises(errors.DTypeError, match="prev_loss: expected float32"):
        adam_step(**kw, lr=0.1, loss=np.zeros(3, np.float32), prev_loss=np.zeros(3))
    with pytest.raises(errors.DTypeError, match="status: expected int8"):
        adam_step(**kw, lr=0.1, status=np.zeros(3, np.int32))
    with pytest.raises(errors.ShapeError, match=r"lr: expected a float or shape \(3,\)"):
        adam_step(**kw, lr=np.full(2, 0.1, np.float32))


def test_overlapping_arrays_are_refused():
    kw = _good()
    with pytest.raises(errors.ShapeError, match="params/m: the arrays overlap"):
        adam_step(**{**kw, "m": kw["params"]}, lr=0.1)
    with pytest.raises(errors.ShapeError, match="v/grads: the arrays overlap"):
        adam_step(**{**kw, "grads": kw["v"]}, lr=0.1)
    big = np.full((2, 3, 4), 0.5, np.float32)
    with pytest.raises(errors.ShapeError, match="params/grads"):  # rows 0-2 and rows 1-3
        adam_step(**{**kw, "params": big[0], "grads": big.reshape(6, 4)[1:4]}, lr=0.1)
    # Adjacent halves of one buffer do not overlap: accepted.
    assert adam_step(**{**kw, "params": big[0], "grads": big[1]}, lr=0.1) == 3


def test_validation_happens_before_any_write():
    kw = _good()
    before = _copy(*kw.values())
    with pytest.raises(errors.ValueRangeError):
        adam_step(**kw, lr=np.array([0.1, 0.1, -1.0], np.float32))
    for after, orig in zip(kw.values(), before, strict=True):
        assert after.tobytes() == orig.tobytes()


def test_cuda_entry_reports_missing_device():
    if auperf.build_info()["cuda_device_count"] > 0:
        pytest.skip("a CUDA device is visible: the device path is tested in tests/gpu")
    from auperf import _core

    with pytest.raises(errors.CudaUnavailableError, match="fit_cuda"):
        _core.fit_cuda(
            0, 0, 0, 0, 0, 0, 1, 1, 0.1, 0, 0, 0, 0, 0.9, 0.999, 1e-8, 0.0, 1.0, 0.0, 0.0, 0, 0, 0
        )


class _FakeDeviceArray:
    """Describes CUDA memory through the CUDA array interface without any GPU: the device
    path's checks run on it, and the launch itself then fails with a typed error."""

    def __init__(self, shape, dtype, ptr, strides=None):
        self.__cuda_array_interface__ = {
            "shape": tuple(shape),
            "typestr": np.dtype(dtype).str,
            "data": (ptr, False),
            "strides": strides,
            "version": 3,
        }


def _fake_state(n=4, d=3, base=1 << 20):
    size = n * d * 4
    return dict(
        params=_FakeDeviceArray((n, d), np.float32, base),
        grads=_FakeDeviceArray((n, d), np.float32, base + size),
        m=_FakeDeviceArray((n, d), np.float32, base + 2 * size),
        v=_FakeDeviceArray((n, d), np.float32, base + 3 * size),
        step=_FakeDeviceArray((n,), np.int32, base + 4 * size),
        active=_FakeDeviceArray((n,), np.bool_, base + 5 * size),
    )


def test_device_path_checks_then_launches():
    if auperf.build_info()["cuda_device_count"] > 0:
        pytest.skip("a CUDA device is visible: the fake device pointers must not be launched")
    state = _fake_state()
    with pytest.raises(errors.CudaUnavailableError, match="fit_cuda"):
        adam_step(**state, lr=0.1)
    extras = dict(
        loss=_FakeDeviceArray((4,), np.float32, 1 << 24),
        prev_loss=_FakeDeviceArray((4,), np.float32, (1 << 24) + 64),
        status=_FakeDeviceArray((4,), np.int8, (1 << 24) + 128),
    )
    with pytest.raises(errors.CudaUnavailableError, match="fit_cuda"):
        adam_step(**state, **extras, lr=0.1, tol_loss=1e-3, max_iterations=9)
    with pytest.raises(errors.DTypeError, match="status: expected int8"):
        adam_step(**state, **{**extras, "status": extras["loss"]}, lr=0.1)
    bad = {
        "step": (_FakeDeviceArray((4,), np.int64, 1 << 24), errors.DTypeError, "step: expected"),
        "active": (_FakeDeviceArray((4,), np.int32, 1 << 24), errors.DTypeError, "active"),
        "m": (_FakeDeviceArray((4, 2), np.float32, 1 << 24), errors.ShapeError, r"m: expected"),
        "v": (
            _FakeDeviceArray((4, 3), np.float32, 1 << 24, strides=(4, 16)),
            errors.ShapeError,
            "v: expected a C-contiguous",
        ),
        "grads": (_FakeDeviceArray((4, 3), np.int32, 1 << 24), errors.DTypeError, "grads"),
    }
    for name, (array, error, match) in bad.items():
        with pytest.raises(error, match=match):
            adam_step(**{**state, name: array}, lr=0.1)
    overlapping = {**state, "m": _FakeDeviceArray((4, 3), np.float32, (1 << 20) + 8)}
    with pytest.raises(errors.ShapeError, match="params/m: the arrays overlap"):
        adam_step(**overlapping, lr=0.1)
    with pytest.raises(errors.DeviceError, match="one device"):
        adam_step(**{**state, "v": np.zeros((4, 3), np.float32)}, lr=0.1)
    with pytest.raises(errors.ValueRangeError, match="beta2"):
        adam_step(**state, lr=0.1, beta2=1.5)
