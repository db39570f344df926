"""The M0 network and its inference wrapper."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from auperf.errors import ParameterError, ShapeError
from auperf.nets.m0 import M0Inference, M0Net

L = 3


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = M0Net(L, "smallnet")
    with torch.no_grad():
        for _ in range(2):
            n(torch.randn(4, 3, 32, 32) + torch.randn(4, 1, 1, 1))
    return n.eval()


def _images(b: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(b, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")


def test_shapes_and_noisy_logits(net):
    out = net(_images(2))
    assert out.clean.shape == (2, 2, L)
    assert out.noisy_residual.shape == (2, 2, L)
    assert out.features.shape == (2, 2, 256)
    torch.testing.assert_close(out.noisy, out.clean + out.noisy_residual)
    # noisy probability = sigmoid(clean + noisy head)
    v = net.views[1]
    f = v.backbone(_images(2))
    torch.testing.assert_close(
        torch.sigmoid(out.noisy[:, 1]), torch.sigmoid(v.clean_head(f) + v.noisy_head(f))
    )


def test_views_have_their_own_weights(net):
    p0 = dict(net.views[0].named_parameters())
    p1 = dict(net.views[1].named_parameters())
    assert p0.keys() == p1.keys()
    assert all(p0[k].data_ptr() != p1[k].data_ptr() for k in p0)
    assert not torch.equal(p0["clean_head.weight"], p1["clean_head.weight"])


def test_per_view_inputs(net):
    a, b = _images(2, seed=1), _images(2, seed=2)
    both = net(torch.stack([a, b], dim=1))
    torch.testing.assert_close(both.clean[:, 0], net(a).clean[:, 0])
    torch.testing.assert_close(both.clean[:, 1], net(b).clean[:, 1])


def test_clean_head_matrices(net):
    w1, w2 = net.clean_head_matrices()
    assert w1.shape == w2.shape == (L, 256 + 1)
    torch.testing.assert_close(w1[:, -1], net.views[0].clean_head.bias)
    torch.testing.assert_close(w2[:, :-1], net.views[1].clean_head.weight)
    assert w1.requires_grad


def test_inference_wrapper_matches_clean_logits(net):
    x = _images(3)
    logits = M0Inference(net)(x)
    assert logits.shape == (3, 2, L)
    torch.testing.assert_close(logits, net(x).clean)
    assert not torch.allclose(logits[0], logits[1])  # faces give different outputs


def test_semi_supervised_variant_has_no_noisy_heads():
    n = M0Net(L, "smallnet", noisy_heads=False)
    out = n(_images(2))
    assert out.noisy is None and out.noisy_residual is None
    assert n.noisy_head_parameters() == []


def test_errors(net):
    with pytest.raises(ShapeError, match="x: expected shape"):
        net(torch.randn(2, 3, 3, 32, 32))
    with pytest.raises(ShapeError, match="image: expected shape"):
        M0Inference(net)(torch.randn(2, 32, 32))
    with pytest.raises(ParameterError, match="num_aus"):
        M0Net(0, "smallnet")
    with pytest.raises(ParameterError, match="backbone"):
        M0Net(2, "vgg")


@pytest.mark.parametrize("module", ["auperf.nets", "auperf.manifest"])
def test_import_does_not_load_torch(module):
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
