"""Backbones: shapes, parameter counts derived from the architecture, channels-last, determinism."""

from __future__ import annotations

import pytest
import torch

from auperf.errors import ParameterError, ShapeError
from auperf.nets.backbones import (
    SmallNet,
    available_backbones,
    build_backbone,
    count_parameters,
)

# Parameter counts of the common ImageNet ResNets without their 1000-way fc layer.
PUBLISHED = {"resnet18": 11_176_512, "resnet34": 21_284_672, "resnet50": 23_508_032}
LAYERS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}


def _conv(k: int, cin: int, cout: int) -> int:
    return k * k * cin * cout


def _bn(c: int) -> int:
    return 2 * c


def _resnet_count(layers: tuple[int, ...], bottleneck: bool) -> int:
    """Parameters of a ResNet counted layer by layer from its definition (He et al. 2016)."""
    total = _conv(7, 3, 64) + _bn(64)
    cin = 64
    for stage, (width, n) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        for j in range(n):
            stride = 2 if stage > 0 and j == 0 else 1
            if bottleneck:
                cout = 4 * width
                total += _conv(1, cin, width) + _bn(width)
                total += _conv(3, width, width) + _bn(width)
                total += _conv(1, width, cout) + _bn(cout)
            else:
                cout = width
                total += _conv(3, cin, width) + _bn(width) + _conv(3, width, width) + _bn(width)
            if stride != 1 or cin != cout:
                total += _conv(1, cin, cout) + _bn(cout)
            cin = cout
    return total


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_parameter_counts(name):
    expected = _resnet_count(LAYERS[name], bottleneck=name == "resnet50")
    assert expected == PUBLISHED[name]
    assert count_parameters(build_backbone(name)) == expected


@pytest.mark.parametrize(
    "name, dim", [("resnet18", 512), ("resnet34", 512), ("resnet50", 2048), ("smallnet", 256)]
)
def test_output_shapes(name, dim):
    torch.manual_seed(0)
    net = build_backbone(name)
    assert net.feature_dim == dim
    for size in (32, 48):
        out = net(torch.randn(2, 3, size, size))
        assert out.shape == (2, dim)
        assert torch.isfinite(out).all()


def test_smallnet_is_small():
    net = build_backbone("smallnet")
    assert 300_000 <= count_parameters(net) <= 1_000_000
    assert net.feature_dim == 256


def test_registry_and_errors():
    assert available_backbones() == ["resnet18", "resnet34", "resnet50", "smallnet"]
    with pytest.raises(ParameterError, match="resnet99"):
        build_backbone("resnet99")
    net = build_backbone("smallnet")
    with pytest.raises(ShapeError, match=r"x: expected shape \(B, 3, H, W\)"):
        net(torch.randn(2, 1, 32, 32))
    with pytest.raises(ParameterError, match="widths"):
        SmallNet(widths=(32, 64), depths=(1,))


def test_zero_init_residual():
    net = build_backbone("resnet18", zero_init_residual=True)
    assert torch.count_nonzero(net.layer1[0].bn2.weight) == 0
    net = build_backbone("resnet50", zero_init_residual=True)
    assert torch.count_nonzero(net.layer1[0].bn3.weight) == 0


@pytest.mark.parametrize("name", ["resnet18", "smallnet"])
def test_channels_last_matches(name):
    torch.manual_seed(1)
    net = build_backbone(name)
    with torch.no_grad():  # give batch norm non-trivial statistics
        for _ in range(2):
            net(torch.randn(4, 3, 32, 32) * 2 + 0.5)
    net.eval()
    x = torch.randn(3, 3, 40, 40)
    ref = net(x)
    net_cl = net.to(memory_format=torch.channels_last)
    out = net_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_eval_determinism_and_seeded_init():
    torch.manual_seed(3)
    a = build_backbone("resnet18").eval()
    torch.manual_seed(3)
    b = build_backbone("resnet18").eval()
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(a(x), a(x))
    assert torch.equal(a(x), b(x))


def test_backward_reaches_stem():
    net = build_backbone("smallnet")
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert net.stem[0].weight.grad is not None
    assert torch.count_nonzero(net.stem[0].weight.grad) > 0
