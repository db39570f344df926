"""dL_E/dx: autograd vs finite differences, and the exported loss-and-gradient graph vs autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.nets.m3 import PARAM_DIM, Imitator, Parser, fit_loss, weighted_features


def _tiny(seed=0, dtype=torch.float32, arch="deconv"):
    torch.manual_seed(seed)
    g = Imitator(32, width=16, min_width=8, arch=arch).to(dtype).eval()
    p = Parser(32, width=8).to(dtype).eval()
    for n in (g, p):
        for q in n.parameters():
            q.requires_grad_(False)
    return g, p


@pytest.mark.parametrize("arch", Imitator.ARCHS)
def test_autograd_matches_central_differences(arch):
    g, p = _tiny(dtype=torch.float64, arch=arch)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(2, PARAM_DIM, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        t = weighted_features(p, g(torch.rand(2, PARAM_DIM, generator=gen, dtype=torch.float64)))
    xr = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(fit_loss(g, p, xr, t).sum(), xr)
    h = 1e-6
    for d in (0, 5, 20, 40, 76):
        e = torch.zeros_like(x)
        e[:, d] = h
        with torch.no_grad():
            fd = (fit_loss(g, p, x + e, t) - fit_loss(g, p, x - e, t)) / (2 * h)
        np.testing.assert_allclose(grad[:, d].numpy(), fd.numpy(), rtol=1e-4, atol=1e-9)


def test_shipped_fit_graph_matches_autograd(est_torch, est_ort, rendered):
    """On rendered target faces and parameters near them: ONNX loss and gradient == autograd."""
    crops, ok, _ = est_torch.align(rendered["frames"], rendered["lm5"])
    assert ok.all()
    images = np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32) / np.float32(255)
    t_torch = est_torch._b.targets(images)
    t_ort = est_ort._b.targets(images)
    for a, b in zip(t_torch, t_ort, strict=True):
        np.testing.assert_allclose(a.numpy(), b, atol=1e-4)
    rng = np.random.default_rng(5)
    x = np.clip(rendered["params"] + rng.normal(0, 0.05, rendered["params"].shape), 0, 1)
    x = x.astype(np.float32)
    lt, gt = est_torch._b.loss_grad(x, t_torch)
    lo, go = est_ort._b.loss_grad(x, [t.numpy() for t in t_torch])
    assert np.abs(gt).max() > 1e-4  # a gradient worth comparing
    np.testing.assert_allclose(lo, lt, atol=1e-4)
    np.testing.assert_allclose(go, gt, atol=1e-4)
