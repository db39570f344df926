"""Feature extractors: ResNet-18/34/50 and a small depthwise-separable net for CPU demos.

Every backbone maps normalised images ``(B, 3, H, W)`` to pooled features ``(B, D)`` and exposes
``feature_dim`` (``D``). None holds a classification layer: heads are added by the method that
uses the backbone (for example :class:`auperf.nets.m0.M0Net`).

The ResNets follow the ImageNet design of He et al. (2016): a 7x7 stride-2 convolution with 64
channels, batch norm, ReLU and a 3x3 stride-2 max pool, then four stages of residual blocks with
64, 128, 256 and 512 base channels, stages 2-4 starting with stride 2 (on the 3x3 convolution of
bottleneck blocks), and global average pooling. Their parameter counts equal those of the common
ImageNet models without the final fully connected layer: 11,176,512 (ResNet-18), 21,284,672
(ResNet-34) and 23,508,032 (ResNet-50).

Any input size of at least 32x32 works (the total stride is 32 and the pooling is global).

Example::

    net = build_backbone("resnet34")
    feats = net(torch.randn(2, 3, 224, 224))   # (2, 512)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from ..errors import ParameterError, ShapeError

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "SmallNet",
    "resnet18",
    "resnet34",
    "resnet50",
    "smallnet",
    "build_backbone",
    "available_backbones",
    "count_parameters",
]


def _conv3x3(in_ch: int, out_ch: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1, groups=groups, bias=False)


def _conv1x1(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False)


def _check_images(x: Tensor) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ShapeError(f"x: expected shape (B, 3, H, W), got {tuple(x.shape)}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34).

    Args:
        in_ch: input channels.
        width: channels of both convolutions; the output has ``width * expansion`` channels.
        stride: stride of the first convolution (1 or 2).
    """

    expansion = 1

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = _conv3x3(in_ch, width, stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(_conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))

    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn2

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, width, H / stride, W / stride)``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (carrying the stride), 1x1 expand by 4, with a residual connection.

    Args:
        in_ch: input channels.
        width: channels of the inner convolutions; the output has ``4 * width`` channels.
        stride: stride of the 3x3 convolution (1 or 2).
    """

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = _conv1x1(in_ch, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = _conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = _conv1x1(width, out_ch)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.downsample = nn.Sequential(_conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))

    def last_bn(self) -> nn.BatchNorm2d:
        """The batch norm closing the residual branch (zeroed by ``zero_init_residual``)."""
        return self.bn3

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W) -> (B, 4 * width, H / stride, W / stride)``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A residual network without its classifier: images ``(B, 3, H, W)`` -> features ``(B, D)``.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: number of blocks in each of the four stages, e.g. ``(3, 4, 6, 3)``.
        zero_init_residual: start every residual branch at zero (its last batch-norm scale is 0),
            which often helps training from scratch.

    Attributes:
        feature_dim: ``D``, 512 for basic blocks and 2048 for bottlenecks.
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4 or any(int(n) < 1 for n in layers):
            raise ParameterError(f"layers: expected 4 positive block counts, got {layers!r}")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_ch = 64
        stages = []
        for i, (width, n_blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
            blocks = []
            for j in range(int(n_blocks)):
                stride = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(in_ch, width, stride))
                in_ch = width * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_ch
        _init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    nn.init.zeros_(m.last_bn().weight)

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features.

        Args:
            x: normalised images, shape ``(B, 3, H, W)``, H and W at least 32.

        Returns:
            Features, shape ``(B, feature_dim)``.
        """
        _check_images(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


class _SeparableBlock(nn.Module):
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN (+ identity when shapes match) + ReLU."""

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.dw = _conv3x3(in_ch, in_ch, stride, groups=in_ch)
        self.bn_dw = nn.BatchNorm2d(in_ch)
        self.pw = _conv1x1(in_ch, out_ch)
        self.bn_pw = nn.BatchNorm2d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn_dw(self.dw(x)))
        out = self.bn_pw(self.pw(out))
        if self.residual:
            out = out + x
        return self.relu(out)


class SmallNet(nn.Module):
    """A small, fast backbone for CPU demos: about 0.31 M parameters, 256-d features.

    A 3x3 stride-2 stem with 16 channels, then four stages of depthwise-separable blocks
    (widths 32, 64, 128, 256; depths 1, 2, 4, 4; each stage starts with stride 2, later blocks
    are residual), and global average pooling. The total stride is 32, as in the ResNets.

    Args:
        widths: output channels of the four stages; the last is ``feature_dim``.
        depths: blocks per stage.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (32, 64, 128, 256),
        depths: tuple[int, ...] = (1, 2, 4, 4),
    ) -> None:
        super().__init__()
        if len(widths) != len(depths) or not widths or min(widths) < 1 or min(depths) < 1:
            raise ParameterError(
                f"widths, depths: expected equal-length positive tuples, got {widths!r}, {depths!r}"
            )
        stem_ch = 16
        self.stem = nn.Sequential(
            _conv3x3(3, stem_ch, 2), nn.BatchNorm2d(stem_ch), nn.ReLU(inplace=True)
        )
        blocks = []
        in_ch = stem_ch
        for width, depth in zip(widths, depths, strict=True):
            for j in range(depth):
                blocks.append(_SeparableBlock(in_ch, width, 2 if j == 0 else 1))
                in_ch = width
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.feature_dim = in_ch
        _init_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        """Pooled features: ``(B, 3, H, W) -> (B, feature_dim)``."""
        _check_images(x)
        return torch.flatten(self.avgpool(self.blocks(self.stem(x))), 1)


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def resnet18(**kwargs) -> ResNet:
    """ResNet-18 features (D = 512, 11,176,512 parameters)."""
    return ResNet(BasicBlock, (2, 2, 2, 2), **kwargs)


def resnet34(**kwargs) -> ResNet:
    """ResNet-34 features (D = 512, 21,284,672 parameters); M0's backbone in the source."""
    return ResNet(BasicBlock, (3, 4, 6, 3), **kwargs)


def resnet50(**kwargs) -> ResNet:
    """ResNet-50 features (D = 2048, 23,508,032 parameters)."""
    return ResNet(Bottleneck, (3, 4, 6, 3), **kwargs)


def smallnet(**kwargs) -> SmallNet:
    """The small depthwise-separable net (D = 256, about 0.31 M parameters)."""
    return SmallNet(**kwargs)


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "smallnet": smallnet,
}


def available_backbones() -> list[str]:
    """The names :func:`build_backbone` accepts, sorted."""
    return sorted(_REGISTRY)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a backbone by name.

    Args:
        name: one of :func:`available_backbones` (``"resnet18"``, ``"resnet34"``,
            ``"resnet50"``, ``"smallnet"``).
        **kwargs: passed to the constructor (e.g. ``zero_init_residual=True`` for ResNets).

    Returns:
        A module mapping ``(B, 3, H, W)`` to ``(B, D)``, with attribute ``feature_dim`` = ``D``.

    Raises:
        ParameterError: unknown name.
    """
    if name not in _REGISTRY:
        raise ParameterError(
            f"name: unknown backbone {name!r}; expected one of {available_backbones()}"
        )
    return _REGISTRY[name](**kwargs)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``module`` (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
