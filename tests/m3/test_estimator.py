"""auperf.Estimator: batched fitting, per-face stopping, backends, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import auperf
from auperf.errors import (
    BackendError,
    DTypeError,
    NonFiniteError,
    ParameterError,
    ShapeError,
    ValueRangeError,
)
from auperf.estimator import ALIGN_FAILED


def test_fit_lowers_the_loss_and_fills_every_field(est_torch, rendered):
    fit = est_torch.fit(rendered["frames"], rendered["lm5"], iterations=25, tolerance=0.0)
    n = len(rendered["frames"])
    assert fit.params.shape == (n, 77) and fit.expression.shape == (n, 23)
    assert fit.identity.shape == (n, 51) and fit.pose.shape == (n, 3)
    assert fit.au_intensity.shape == (n, 15)
    assert fit.ok.all() and (fit.iterations == 25).all() and (fit.status == 3).all()
    assert (fit.params >= 0).all() and (fit.params <= 1).all()
    assert (fit.loss < fit.start_loss).all()
    np.testing.assert_allclose(
        fit.au_intensity, 5 * fit.expression[:, auperf.synth.AU_TO_EXPRESSION], atol=1e-5
    )
    # roll comes from the alignment: within a few degrees of the truth
    assert np.abs(fit.pose[:, 2] - rendered["pose"][:, 2]).max() < 5.0


def test_loop_matches_numpy_adam(est_torch, rendered):
    """The estimator's loop (compiled adam_step) == a NumPy Adam on the same gradients."""
    fit = est_torch.fit(
        rendered["frames"][:3],
        rendered["lm5"][:3],
        iterations=6,
        tolerance=0.0,
        lr=0.02,
        lr_schedule="constant",
    )
    crops, _, _ = est_torch.align(rendered["frames"][:3], rendered["lm5"][:3])
    images = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / np.float32(255)
    t = est_torch._b.targets(images)
    x = est_torch._b.predict(images).astype(np.float64)
    x[:, 2] = 0.5
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for k in range(1, 7):
        _, g = est_torch._b.loss_grad(x.astype(np.float32), t)
        g = g.astype(np.float64)
        g[:, 2] = 0
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        step = 0.02 * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
        x = np.clip(x - step, 0, 1)
    got = fit.params.copy()
    got[:, 2] = 0.5
    np.testing.assert_allclose(got, x, atol=2e-4)


def test_each_face_stops_on_its_own(est_torch, rendered):
    # a loose tolerance stops faces early, each at its own step; the cap still holds
    fit = est_torch.fit(rendered["frames"], rendered["lm5"], iterations=40, tolerance=0.003)
    assert (fit.status == 2).any() and len(set(fit.iterations.tolist())) > 1
    stopped = fit.status == 2
    assert (fit.iterations[stopped] < 40).all()
    assert ((fit.status == 2) | (fit.status == 3)).all()
    assert (fit.iterations[fit.status == 3] == 40).all()


def test_zero_iterations_is_the_start_point(est_torch, rendered):
    fit = est_torch.fit(rendered["frames"], rendered["lm5"], iterations=0)
    np.testing.assert_array_equal(fit.params, fit.start_params)
    np.testing.assert_allclose(fit.loss, fit.start_loss)
    assert (fit.iterations == 0).all() and (fit.status == 0).all()
    mid = est_torch.fit(rendered["frames"], rendered["lm5"], iterations=0, init="mid")
    assert np.allclose(np.delete(mid.params, 2, axis=1), 0.5)


def test_backends_agree(est_torch, est_ort, rendered):
    a = est_torch.fit(rendered["frames"], rendered["lm68"], iterations=10, tolerance=0.0)
    b = est_ort.fit(rendered["frames"], rendered["lm68"], iterations=10, tolerance=0.0)
    np.testing.assert_allclose(a.start_params, b.start_params, atol=1e-4)
    np.testing.assert_allclose(a.params, b.params, atol=1e-3)
    np.testing.assert_allclose(a.loss, b.loss, rtol=1e-3)


def test_bad_landmarks_get_a_status_not_a_row(est_torch, rendered):
    lm = rendered["lm5"].copy()
    lm[1, 2, 0] = np.nan
    lm[3] = 10.0  # all points coincide
    fit = est_torch.fit(rendered["frames"], lm, iterations=3)
    assert list(fit.ok) == [True, False, True, False, True, True]
    assert fit.status[1] == ALIGN_FAILED and fit.status[3] == ALIGN_FAILED
    assert np.isnan(fit.params[[1, 3]]).all() and np.isnan(fit.au_intensity[[1, 3]]).all()
    good = est_torch.fit(rendered["frames"][[0, 2]], rendered["lm5"][[0, 2]], iterations=3)
    np.testing.assert_allclose(fit.params[[0, 2]], good.params, atol=1e-4)


def test_aligned_crops_without_landmarks(est_torch, rendered):
    crops, _, _ = est_torch.align(rendered["frames"], rendered["lm5"])
    fit = est_torch.fit(crops, iterations=2)
    assert fit.ok.all() and (fit.pose[:, 2] == 0).all()


def test_bad_input_raises_typed_errors(est_torch, rendered):
    fr, lm = rendered["frames"], rendered["lm5"]
    with pytest.raises(ShapeError, match="empty batch"):
        est_torch.fit(fr[:0], lm[:0])
    with pytest.raises(DTypeError, match="frames: expected uint8, got float32"):
        est_torch.fit(fr.astype(np.float32), lm)
    with pytest.raises(ShapeError, match=r"landmarks: expected shape \(6, 5, 2\)"):
        est_torch.fit(fr, lm[:, :4])
    with pytest.raises(ShapeError, match="square aligned crops"):
        est_torch.fit(fr[:, :100])
    with pytest.raises(ValueRangeError, match="iterations"):
        est_torch.fit(fr, lm, iterations=-1)
    with pytest.raises(ValueRangeError, match="tolerance"):
        est_torch.fit(fr, lm, tolerance=float("nan"))
    with pytest.raises(ValueRangeError, match="init: expected 'predictor', 'mid'"):
        est_torch.fit(fr, lm, init="zero")
    with pytest.raises(ParameterError, match="init: values must lie in"):
        est_torch.fit(fr, lm, init=np.full((6, 77), 1.5))
    with pytest.raises(NonFiniteError, match="init"):
        est_torch.fit(fr, lm, init=np.full((6, 77), np.nan))
    with pytest.raises(ValueRangeError, match="lr"):
        est_torch.fit(fr, lm, lr=0)
    with pytest.raises(ValueRangeError, match="lr_schedule"):
        est_torch.fit(fr, lm, lr_schedule="step")
    with pytest.raises(BackendError, match="backend: expected 'torch' or 'onnxruntime'"):
        auperf.Estimator(backend="tensorrt")


def test_render_returns_uint8_images(est_torch):
    img = est_torch.render(np.full((2, 77), 0.5))
    assert img.shape == (2, est_torch.size, est_torch.size, 3) and img.dtype == np.uint8
    with pytest.raises(NonFiniteError):
        est_torch.render(np.full((1, 77), np.nan))


def test_dims_mask_freezes_identity(est_torch, rendered):
    fit = est_torch.fit(
        rendered["frames"][:2], rendered["lm5"][:2], iterations=5, dims="pose_expression"
    )
    np.testing.assert_array_equal(fit.identity, fit.start_params[:, 26:])
    assert np.abs(fit.expression - fit.start_params[:, 3:26]).max() > 0
    with pytest.raises(ValueRangeError, match="dims"):
        est_torch.fit(rendered["frames"][:1], rendered["lm5"][:1], dims="identity")
    with pytest.raises(ValueRangeError, match="dims"):
        est_torch.fit(rendered["frames"][:1], rendered["lm5"][:1], dims=np.ones(77))


def test_stopped_faces_leave_the_batch(est_torch, rendered, monkeypatch):
    """Once a face stops, later gradient evaluations no longer include it."""
    sizes = []
    inner = est_torch._b.loss_grad

    def counting(x, targets):
        sizes.append(len(x))
        return inner(x, targets)

    monkeypatch.setattr(est_torch._b, "loss_grad", counting)
    fit = est_torch.fit(rendered["frames"], rendered["lm5"], iterations=40, tolerance=0.003)
    assert sizes[0] == 6 and sizes == sorted(sizes, reverse=True)
    assert sum(sizes) == int(fit.iterations.sum())
    assert sizes[-1] < 6 and len(set(fit.iterations.tolist())) > 1
