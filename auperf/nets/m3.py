"""M3 networks: the imitator G, the face parser (W, F) and the amortised predictor.

M3 (``docs/m3.md``) estimates the renderer's parameter vector ``x`` (``auperf.synth`` layout:
pose 3 | expression 23 | identity 51, every dim in ``[0, 1]``) of an aligned face by gradient
descent on ``L_E(x, y) = sum_l || W(G(x)) F_l(G(x)) - W(y) F_l(y) ||_1``.

Conventions (all three networks):
    - Images are ``(N, 3, S, S)`` float32 RGB with values ``pixel / 255`` in ``[0, 1]``, NCHW,
      aligned to ``auperf.align.template(S)`` (the renderer's default framing). ``S`` is a
      multiple of 16 (64 for the shipped demo; 256 or 512 by configuration).
    - Parameters are ``(N, PARAM_DIM)`` float32 in ``[0, 1]``.
    - Parsing classes are :data:`PARSE_CLASSES` (left/right as seen in the image).

None of the networks holds batch norm in the path the fitting differentiates (imitator and
parser), so the loss and its gradient are plain functions of ``x`` that export to ONNX.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ParameterError, ShapeError

__all__ = [
    "PARAM_DIM",
    "PARSE_CLASSES",
    "NUM_PARSE_CLASSES",
    "NUM_FEATURE_LAYERS",
    "Imitator",
    "Parser",
    "Predictor",
    "weighted_features",
    "fit_loss",
]

#: Length of the parameter vector (``auperf.synth.PARAM_DIM``).
PARAM_DIM = 77
#: The M3 face-parsing classes (index = class id). Left/right as seen in the image.
PARSE_CLASSES = (
    "background",
    "skin",
    "brow_left",
    "brow_right",
    "eye_left",
    "eye_right",
    "nose",
    "upper_lip",
    "mouth",
    "lower_lip",
    "hair",
)
NUM_PARSE_CLASSES = len(PARSE_CLASSES)
#: Number of parser feature maps F_l used by the loss (the first three encoder layers).
NUM_FEATURE_LAYERS = 3


def _check_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 32 or size % 16:
        raise ParameterError(f"size: expected an integer >= 32 and a multiple of 16, got {size!r}")
    return size


def _check_images(y: Tensor, size: int, name: str = "images") -> None:
    if y.dim() != 4 or y.shape[1] != 3 or y.shape[2] != size or y.shape[3] != size:
        raise ShapeError(f"{name}: expected shape (N, 3, {size}, {size}), got {tuple(y.shape)}")


class Imitator(nn.Module):
    """G: parameters -> aligned face image, a decoder network.

    A linear layer maps ``x`` to a ``(width, 4, 4)`` tensor; ``log2(size / 4)`` stages double the
    resolution, a 3x3 convolution gives 3 channels and a sigmoid the ``[0, 1]`` image. Two stage
    designs (``arch``):

    - ``"deconv"``: a transposed convolution (kernel 4, stride 2, padding 1) and LeakyReLU 0.1;
      channels shrink by half (by a quarter below 32), never below ``min_width``.
    - ``"upconv"``: nearest 2x upsampling, then two 3x3 convolutions with LeakyReLU 0.1
      (no checkerboard pattern, twice the depth); channels halve at each stage, never below
      ``min_width``.

    Args:
        size: output side ``S`` in pixels (multiple of 16, >= 32).
        width: channels at 4x4.
        min_width: smallest channel count.
        arch: ``"deconv"`` or ``"upconv"``.

    Shapes:
        ``forward(x)``: ``(N, PARAM_DIM)`` -> ``(N, 3, S, S)`` in ``[0, 1]``.
    """

    ARCHS = ("deconv", "upconv")

    def __init__(
        self, size: int = 64, width: int = 64, min_width: int = 16, arch: str = "deconv"
    ) -> None:
        super().__init__()
        self.size = _check_size(size)
        self.width = int(width)
        self.min_width = int(min_width)
        if arch not in self.ARCHS:
            raise ParameterError(f"arch: expected one of {self.ARCHS}, got {arch!r}")
        self.arch = arch
        stages = int(round(math.log2(size / 4)))
        if 4 * 2**stages != size:
            raise ParameterError(f"size: expected 4 * 2**k, got {size!r}")
        self.fc = nn.Linear(PARAM_DIM, width * 16)
        layers: list[nn.Module] = []
        ch = width
        for _ in range(stages):
            if arch == "deconv":
                out = max(min_width, ch // 2 if ch > 32 else ch * 3 // 4)
                layers += [nn.ConvTranspose2d(ch, out, 4, 2, 1), nn.LeakyReLU(0.1)]
            else:
                out = max(min_width, ch // 2)
                layers += [
                    _Upsample2x(),
                    nn.Conv2d(ch, out, 3, 1, 1),
                    nn.LeakyReLU(0.1),
                    nn.Conv2d(out, out, 3, 1, 1),
                    nn.LeakyReLU(0.1),
                ]
            ch = out
        self.up = nn.Sequential(*layers)
        self.out = nn.Conv2d(ch, 3, 3, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != PARAM_DIM:
            raise ShapeError(f"x: expected shape (N, {PARAM_DIM}), got {tuple(x.shape)}")
        h = F.leaky_relu(self.fc(x), 0.1).reshape(x.shape[0], self.width, 4, 4)
        return torch.sigmoid(self.out(self.up(h)))


def _up2x(t: Tensor) -> Tensor:
    """Nearest 2x upsampling of ``(N, C, H, W)`` written with expand + reshape (it exports to
    ONNX together with its gradient)."""
    n, c, h, w = t.shape
    return t[:, :, :, None, :, None].expand(n, c, h, 2, w, 2).reshape(n, c, 2 * h, 2 * w)


class _Upsample2x(nn.Module):
    def forward(self, t: Tensor) -> Tensor:
        return _up2x(t)


class Parser(nn.Module):
    """Face parser: a small encoder-decoder (U-Net style) over :data:`PARSE_CLASSES`.

    Encoder: four 3x3 convolutions with ReLU, each of stride 2; the outputs of the first three
    are the feature maps ``F_1..F_3`` (resolutions ``S/2``, ``S/4``, ``S/8``; channels ``w``,
    ``3w/2``, ``2w`` for ``width`` ``w``; the fourth has ``3w``). Decoder: nearest 2x upsampling,
    concatenation with the encoder map of the same resolution and a 3x3 convolution with ReLU,
    back to ``S/2``; a 1x1 convolution gives class logits, upsampled (nearest) to ``S``.
    The input is normalised inside (``2 * y - 1``).

    Shapes:
        ``forward(y)``: ``(N, 3, S, S)`` in ``[0, 1]`` -> logits ``(N, K, S, S)``.
        ``features(y)``: ``(logits, [F_1, F_2, F_3])``.
    """

    def __init__(self, size: int = 64, width: int = 16) -> None:
        super().__init__()
        self.size = _check_size(size)
        self.width = int(width)
        c1, c2, c3, c4 = width, 3 * width // 2, 2 * width, 3 * width
        self.channels = (c1, c2, c3, c4)
        self.enc1 = nn.Conv2d(3, c1, 3, 2, 1)
        self.enc2 = nn.Conv2d(c1, c2, 3, 2, 1)
        self.enc3 = nn.Conv2d(c2, c3, 3, 2, 1)
        self.enc4 = nn.Conv2d(c3, c4, 3, 2, 1)
        self.dec3 = nn.Conv2d(c4 + c3, c3, 3, 1, 1)
        self.dec2 = nn.Conv2d(c3 + c2, c2, 3, 1, 1)
        self.dec1 = nn.Conv2d(c2 + c1, c1, 3, 1, 1)
        self.head = nn.Conv2d(c1, NUM_PARSE_CLASSES, 1)

    @staticmethod
    def _up(t: Tensor) -> Tensor:
        return _up2x(t)

    def features(self, y: Tensor) -> tuple[Tensor, list[Tensor]]:
        _check_images(y, self.size)
        f1 = F.relu(self.enc1(2.0 * y - 1.0))
        f2 = F.relu(self.enc2(f1))
        f3 = F.relu(self.enc3(f2))
        f4 = F.relu(self.enc4(f3))
        d3 = F.relu(self.dec3(torch.cat([self._up(f4), f3], 1)))
        d2 = F.relu(self.dec2(torch.cat([self._up(d3), f2], 1)))
        d1 = F.relu(self.dec1(torch.cat([self._up(d2), f1], 1)))
        return self._up(self.head(d1)), [f1, f2, f3]

    def forward(self, y: Tensor) -> Tensor:
        return self.features(y)[0]


def _pool(t: Tensor, k: int) -> Tensor:
    """Mean over k x k blocks, written with reshape + mean so that it exports with its gradient."""
    if k == 1:
        return t
    n, c, h, w = t.shape
    return t.reshape(n, c, h // k, k, w // k, k).mean(dim=(3, 5))


def weighted_features(parser: Parser, y: Tensor) -> list[Tensor]:
    """``W(y) F_l(y)`` for the first :data:`NUM_FEATURE_LAYERS` layers.

    ``W(y)`` is the softmax of the parser's logits, averaged over blocks to each layer's
    resolution. Layer ``l`` gives ``(N, K, C_l, H_l, W_l)``: every feature channel masked by every
    class probability map.
    """
    logits, feats = parser.features(y)
    w = torch.softmax(logits, dim=1)
    out = []
    for f in feats:
        k = w.shape[-1] // f.shape[-1]
        out.append(_pool(w, k)[:, :, None] * f[:, None])
    return out


def fit_loss(imitator: Imitator, parser: Parser, x: Tensor, targets: list[Tensor]) -> Tensor:
    """Per-face M3 objective ``L_E(x, y)``.

    ``L_E = sum_l mean |W(G(x)) F_l(G(x)) - T_l|``, with ``T_l = W(y) F_l(y)`` from
    :func:`weighted_features` computed once per target face. Each layer's L1 norm is divided by
    its element count (a mean), so the layers weigh alike whatever their resolution.

    Args:
        x: ``(N, PARAM_DIM)`` parameters.
        targets: the ``NUM_FEATURE_LAYERS`` target tensors ``(N, K, C_l, H_l, W_l)``.

    Returns:
        ``(N,)`` loss per face.
    """
    cur = weighted_features(parser, imitator(x))
    loss = x.new_zeros(x.shape[0])
    for c, t in zip(cur, targets, strict=True):
        loss = loss + (c - t).abs().flatten(1).mean(1)
    return loss


class Predictor(nn.Module):
    """Amortised predictor: aligned image -> parameters (the fitting's starting point).

    Five 3x3 stride-2 convolutions with batch norm and ReLU (``width`` doubling up to
    ``8 * width``), global average pooling, a linear layer and a sigmoid.

    Shapes:
        ``forward(y)``: ``(N, 3, S, S)`` in ``[0, 1]`` -> ``(N, PARAM_DIM)`` in ``(0, 1)``.
    """

    def __init__(self, size: int = 64, width: int = 24) -> None:
        super().__init__()
        self.size = _check_size(size)
        chans = [3, width, 2 * width, 4 * width, 8 * width, 8 * width]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(a, b, 3, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(chans[-1], PARAM_DIM)

    def forward(self, y: Tensor) -> Tensor:
        _check_images(y, self.size)
        return torch.sigmoid(self.fc(self.body(2.0 * y - 1.0).mean(dim=(2, 3))))
