"""TCAENet: shapes, the identity warp at initialisation, the cycles, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from auperf.errors import ParameterError, ShapeError
from auperf.nets.m4 import FieldDecoder, M4Features, TCAEEncoder, TCAENet, warp_by_field


def _net() -> TCAENet:
    torch.manual_seed(0)
    return TCAENet(image_size=32, au_dim=8, pose_dim=6, decoder_channels=(8, 8, 4, 4))


def _pair(b: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, 3, 32, 32, generator=g), torch.rand(b, 3, 32, 32, generator=g)


def test_shapes_and_identity_warp_at_initialisation():
    net = _net().eval()
    s, t = _pair()
    out = net(s, t)
    assert out.phi_s.shape == (3, 8) and out.psi_t.shape == (3, 6)
    for f in (out.field_au, out.field_pose, out.field, out.field_au_back, out.field_pose_back):
        assert f.shape == (3, 2, 32, 32)
    assert out.alpha_au.shape == (3, 1, 32, 32)
    # The decoders' last layer starts at zero: zero fields, equal masks, tau(I_s) = I_s.
    assert torch.allclose(out.alpha_au, torch.full_like(out.alpha_au, 0.5))
    assert torch.allclose(out.reconstruction, s, atol=1e-5)
    assert torch.allclose(out.cycle_au, s, atol=1e-5)


def test_forward_matches_its_definition():
    net = _net()
    for p in net.parameters():  # leave the zero start so every path does something
        torch.nn.init.normal_(p, std=0.05)
    net.eval()
    s, t = _pair(2)
    out = net(s, t)
    phi_s, psi_s = net.encode(s)
    phi_t, psi_t = net.encode(t)
    fa, la = net.decoder_au(phi_s, phi_t)
    fp, lp = net.decoder_pose(psi_s, psi_t)
    alpha = torch.softmax(torch.cat([la, lp], 1), dim=1)[:, :1]
    tau = alpha * fa + (1 - alpha) * fp
    torch.testing.assert_close(out.field, tau, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.reconstruction, warp_by_field(s, tau), atol=1e-5, rtol=1e-5)
    i_a = warp_by_field(s, fa)
    phi_a, psi_a = net.encode(i_a)
    torch.testing.assert_close(out.phi_a, phi_a, atol=1e-5, rtol=1e-5)
    back, _ = net.decoder_au(phi_a, phi_s)  # tau^{-A}: from I_A back to I_s
    torch.testing.assert_close(out.cycle_au, warp_by_field(i_a, back), atol=1e-5, rtol=1e-5)
    i_p = warp_by_field(s, fp)
    phi_p, psi_p = net.encode(i_p)
    back_p, _ = net.decoder_pose(psi_p, psi_s)
    torch.testing.assert_close(out.cycle_pose, warp_by_field(i_p, back_p), atol=1e-5, rtol=1e-5)
    assert float(fa.detach().abs().max()) <= net.decoder_au.max_displacement


def test_gradients_reach_encoder_and_both_decoders():
    from training.m4.losses import m4_loss

    net = _net()
    s, t = _pair(2)
    out = net(s, t)
    m4_loss(out, s, t).total.backward()
    for name in (
        "encoder.backbone.stem.0.weight",
        "encoder.au_proj.weight",
        "encoder.pose_proj.weight",
        "decoder_au.out.weight",
        "decoder_pose.out.weight",
    ):
        grad = dict(net.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_errors():
    net = _net()
    s, _ = _pair(1)
    with pytest.raises(ShapeError, match="target"):
        net(s, torch.rand(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="source"):
        net(torch.rand(1, 1, 32, 32), s)
    with pytest.raises(ParameterError, match="image_size"):
        FieldDecoder(8, image_size=40)
    with pytest.raises(ParameterError, match="au_dim"):
        TCAEEncoder(au_dim=0)


def test_features_wrapper_is_the_encoder():
    net = _net().eval()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    phi, psi = M4Features(net.encoder)(x)
    ref = net.encoder(x)
    assert torch.equal(phi, ref[0]) and torch.equal(psi, ref[1])


def test_antisymmetric_decoder_by_construction():
    torch.manual_seed(3)
    dec = FieldDecoder(5, image_size=16, channels=(4, 4, 4, 4), max_displacement=3.0)
    for p in dec.parameters():  # leave the zero start so the output is not trivially zero
        torch.nn.init.normal_(p, std=0.3)
    a, b = torch.randn(2, 5), torch.randn(2, 5)
    f_ab, m_ab = dec(a, b)
    f_ba, m_ba = dec(b, a)
    torch.testing.assert_close(f_ab, -f_ba)
    torch.testing.assert_close(m_ab, m_ba)
    assert float(f_ab.detach().abs().mean()) > 1e-3
    f_aa, _ = dec(a, a)
    assert float(f_aa.detach().abs().max()) == 0.0
    # Against its definition: 3 tanh((g(a, b) - g(b, a)) / 2) and (m(a, b) + m(b, a)) / 2.
    g_ab, g_ba = dec._raw(a, b), dec._raw(b, a)
    torch.testing.assert_close(f_ab, 3.0 * torch.tanh(0.5 * (g_ab[:, :2] - g_ba[:, :2])))
    torch.testing.assert_close(m_ab, 0.5 * (g_ab[:, 2:] + g_ba[:, 2:]))


def test_plain_decoder_is_not_antisymmetric():
    torch.manual_seed(3)
    dec = FieldDecoder(5, image_size=16, channels=(4, 4, 4, 4), antisymmetric=False)
    for p in dec.parameters():
        torch.nn.init.normal_(p, std=0.3)
    a, b = torch.randn(2, 5), torch.randn(2, 5)
    f_ab, m_ab = dec(a, b)
    g = dec._raw(a, b)
    torch.testing.assert_close(f_ab, dec.max_displacement * torch.tanh(g[:, :2]))
    torch.testing.assert_close(m_ab, g[:, 2:])
    assert not torch.allclose(f_ab, -dec(b, a)[0], atol=1e-3)
