"""Each M4 loss against a value computed by hand on tiny tensors; the warp against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import ShapeError, ValueRangeError
from auperf.nets.m4 import TCAEOutputs, combine_fields, warp_by_field
from training.m4.losses import M4LossWeights, embedding_sq, field_l1, image_l1, m4_loss


def test_image_l1_hand_value():
    # One 1x2x2 image per batch entry, C = 1 here: |diffs| = (1, 2, 3, 4) -> sum 10 / (2*2*1).
    a = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])
    b = torch.tensor([[[[0.0, 0.0], [0.0, 0.0]]], [[[0.5, -0.5], [0.5, -0.5]]]])
    # pair 0: 10 / 4 = 2.5; pair 1: 2 / 4 = 0.5; batch mean 1.5
    assert float(image_l1(a, b)) == pytest.approx(1.5)


def test_image_l1_three_channels_normalises_by_whc():
    a = torch.ones(1, 3, 2, 2)
    b = torch.zeros(1, 3, 2, 2)
    b[0, 1, 0, 0] = 4.0  # |1 - 4| = 3 there, 1 elsewhere: sum 11 + 3 = 14 over 12 entries
    assert float(image_l1(a, b)) == pytest.approx(14.0 / 12.0)


def test_field_l1_hand_value():
    f = torch.zeros(1, 2, 2, 2)
    f[0, 0, 0, 0] = 3.0  # dx
    f[0, 1, 1, 1] = -1.0  # dy
    assert float(field_l1(f)) == pytest.approx(4.0 / (2 * 2 * 2))


def test_embedding_sq_hand_value():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    assert embedding_sq(a, b).tolist() == [8.0, 3.0]


def test_shape_errors_name_the_values():
    with pytest.raises(ShapeError, match="a, b"):
        image_l1(torch.zeros(1, 3, 2, 2), torch.zeros(1, 3, 2, 3))
    with pytest.raises(ShapeError, match="field"):
        field_l1(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ShapeError, match="a, b"):
        embedding_sq(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueRangeError, match="sparsity"):
        M4LossWeights(sparsity=-1.0)
    with pytest.raises(ValueRangeError, match="norm"):
        M4LossWeights(norm=0.0)


def _outputs(**over) -> TCAEOutputs:
    """A hand-filled TCAEOutputs: B = 1, 1x1 images of 3 channels, D = 2."""
    z3 = torch.zeros(1, 3, 1, 1)
    z2 = torch.zeros(1, 2, 1, 1)
    e = torch.zeros(1, 2)
    base = dict(
        phi_s=e,
        psi_s=e,
        phi_t=e,
        psi_t=e,
        field_au=z2,
        field_pose=z2,
        alpha_au=torch.full((1, 1, 1, 1), 0.5),
        field=z2,
        reconstruction=z3,
        au_changed=z3,
        pose_changed=z3,
        phi_a=e,
        psi_a=e,
        phi_p=e,
        psi_p=e,
        field_au_back=z2,
        field_pose_back=z2,
        cycle_au=z3,
        cycle_pose=z3,
    )
    base.update(over)
    return TCAEOutputs(**base)


def test_m4_loss_total_hand_value():
    src = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    tgt = torch.tensor([0.3, 0.4, 0.1]).view(1, 3, 1, 1)
    out = _outputs(
        reconstruction=torch.tensor([0.3, 0.5, 0.3]).view(1, 3, 1, 1),  # |d| 0, .1, .2 -> .3/3
        field_au=torch.tensor([2.0, -4.0]).view(1, 2, 1, 1),  # 6 / 2 = 3
        cycle_au=torch.tensor([0.2, 0.4, 0.0]).view(1, 3, 1, 1),  # .6 / 3 = .2
        cycle_pose=torch.tensor([0.5, 0.4, 0.6]).view(1, 3, 1, 1),  # .3 / 3 = .1
        psi_a=torch.tensor([[1.0, 0.0]]),  # ||psi_a - psi_s||^2 = 1
        phi_t=torch.tensor([[0.0, 2.0]]),  # ||phi_a - phi_t||^2 = 4
        phi_p=torch.tensor([[0.0, 1.0]]),  # ||phi_p - phi_s||^2 = 1
        psi_t=torch.tensor([[3.0, 0.0]]),  # ||psi_p - psi_t||^2 = 9
    )
    w = M4LossWeights(sparsity=0.5, cycle=2.0, embedding=3.0, norm=4.0)
    terms = m4_loss(out, src, tgt, w)
    assert float(terms.rec) == pytest.approx(0.1)
    assert float(terms.sparsity) == pytest.approx(3.0)
    assert float(terms.cycle_au) == pytest.approx(0.2)
    assert float(terms.cycle_pose) == pytest.approx(0.1)
    assert float(terms.emb_au) == pytest.approx(5.0 / 4.0)
    assert float(terms.emb_pose) == pytest.approx(10.0 / 4.0)
    want = 0.1 + 0.5 * 3.0 + 2.0 * (0.2 + 0.1) + 3.0 * (5.0 + 10.0) / 4.0
    assert float(terms.total) == pytest.approx(want)
    assert terms.scalars()["loss"] == pytest.approx(want)


def test_m4_loss_default_weights():
    w = M4LossWeights()
    assert (w.sparsity, w.cycle, w.embedding, w.norm) == (0.001, 1.0, 0.01, 256.0)
    assert w.detach_targets


@pytest.mark.parametrize("detach", [True, False])
def test_embedding_targets_stop_gradient_by_hand(detach):
    # B = 1, D = 2, norm 4, lambda_3 = 1: L_emb^A = (||psi_a - psi_s||^2 + ||phi_a - phi_t||^2)/4
    # d/d phi_a = 2 (phi_a - phi_t) / 4 = (-0.5, 1.0); d/d phi_t is its negative unless detached.
    phi_a = torch.tensor([[1.0, 2.0]], requires_grad=True)
    phi_t = torch.tensor([[2.0, 0.0]], requires_grad=True)
    out = _outputs(phi_a=phi_a, phi_t=phi_t)
    z = torch.zeros(1, 3, 1, 1)
    w = M4LossWeights(sparsity=0.0, cycle=0.0, embedding=1.0, norm=4.0, detach_targets=detach)
    terms = m4_loss(out, z, z, w)
    assert float(terms.emb_au.detach()) == pytest.approx((1.0 + 4.0) / 4.0)  # same either way
    terms.total.backward()
    assert phi_a.grad[0].tolist() == pytest.approx([-0.5, 1.0])
    if detach:
        assert phi_t.grad is None
    else:
        assert phi_t.grad[0].tolist() == pytest.approx([0.5, -1.0])


def test_warp_integer_shift_matches_numpy():
    rng = np.random.default_rng(0)
    img = rng.random((1, 3, 6, 7)).astype(np.float32)
    field = torch.zeros(1, 2, 6, 7)
    field[:, 0] = 2.0  # sample 2 pixels to the right
    field[:, 1] = -1.0  # and 1 pixel up
    out = warp_by_field(torch.from_numpy(img), field).numpy()
    ys, xs = np.meshgrid(np.arange(6), np.arange(7), indexing="ij")
    ref = img[:, :, np.clip(ys - 1, 0, 5), np.clip(xs + 2, 0, 6)]  # border clamp
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_warp_half_pixel_is_the_neighbours_mean_and_zero_field_is_identity():
    rng = np.random.default_rng(1)
    img = torch.from_numpy(rng.random((2, 1, 4, 5)).astype(np.float32))
    assert torch.allclose(warp_by_field(img, torch.zeros(2, 2, 4, 5)), img, atol=1e-6)
    field = torch.zeros(2, 2, 4, 5)
    field[:, 0] = 0.5
    out = warp_by_field(img, field)
    ref = 0.5 * (img[..., :-1] + img[..., 1:])
    assert torch.allclose(out[..., :-1], ref, atol=1e-6)
    with pytest.raises(ShapeError, match="field"):
        warp_by_field(img, torch.zeros(2, 2, 4, 4))


def test_combine_fields_weights_sum_to_one():
    fa = torch.full((1, 2, 2, 2), 4.0)
    fp = torch.full((1, 2, 2, 2), -2.0)
    la = torch.tensor([0.0, 1.0, -1.0, 0.3]).view(1, 1, 2, 2)
    lp = torch.tensor([0.0, -1.0, 1.0, 0.3]).view(1, 1, 2, 2)
    tau, alpha = combine_fields(fa, fp, la, lp)
    ea, ep = np.exp(la.numpy()), np.exp(lp.numpy())
    ref_alpha = ea / (ea + ep)
    np.testing.assert_allclose(alpha.numpy(), ref_alpha, rtol=1e-6)
    ref_tau = np.broadcast_to(ref_alpha * 4.0 + (1 - ref_alpha) * -2.0, (1, 2, 2, 2))
    np.testing.assert_allclose(tau.numpy(), ref_tau, rtol=1e-5)
