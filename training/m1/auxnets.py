"""The training-only networks of M1: generator, image discriminator, landmark detector,
identity (pair) discriminator and geometry discriminator.

Images are ``(B, 3, S, S)`` in ``[-1, 1]`` (``(pixel - 127.5) / 127.5``, RGB); the generator
ends in ``tanh`` so its output lives in the same range. ``S`` is a power of two >= 32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from auperf.errors import ShapeError

__all__ = ["Generator", "ImageDiscriminator", "LandmarkHead", "PairDiscriminator", "M1Aux"]


class Generator(nn.Module):
    """``G(z, a)``: ``(B, Dz)``, ``(B, Da)`` -> image ``(B, 3, S, S)`` in ``[-1, 1]``.

    A linear layer to a ``4 x 4`` map, then ``log2(S / 4)`` stages of nearest 2x upsampling +
    3x3 conv + BN + ReLU, and a 3x3 conv + tanh.
    """

    def __init__(self, z_dim: int, a_dim: int, size: int = 64, width: int = 32) -> None:
        super().__init__()
        n_up = size.bit_length() - 3
        if size < 32 or (1 << (n_up + 2)) != size:
            raise ShapeError(f"size: expected a power of two >= 32, got {size}")
        top = width * 4
        self.top = top
        self.fc = nn.Linear(z_dim + a_dim, top * 16)
        layers: list[nn.Module] = []
        ch = top
        for k in range(n_up):
            out = max(width, top >> (k + 1))
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(ch, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            ch = out
        layers += [nn.Conv2d(ch, 3, 3, padding=1), nn.Tanh()]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor, a: Tensor) -> Tensor:
        """``(B, Dz), (B, Da) -> (B, 3, S, S)``."""
        h = self.fc(torch.cat([z, a], dim=1)).reshape(z.shape[0], self.top, 4, 4)
        return self.body(torch.relu(h))


class ImageDiscriminator(nn.Module):
    """LSGAN patch discriminator: four 4x4 stride-2 convs with leaky ReLU -> ``(B, 1, S/16,
    S/16)`` real-ness scores (no sigmoid)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(w, 2 * w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * w, 1, 4, 2, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class LandmarkHead(nn.Module):
    """Embedding ``(B, D)`` -> ``(B, K, d*d)`` logits of the ``d x d`` response map of each of
    ``K`` landmarks (row-major cells, see :func:`training.m1.data.landmark_cells`)."""

    def __init__(self, in_dim: int, points: int = 49, grid: int = 16, hidden: int = 128) -> None:
        super().__init__()
        self.points, self.cells = points, grid * grid
        self.body = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, points * grid * grid),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x).reshape(x.shape[0], self.points, self.cells)


class PairDiscriminator(nn.Module):
    """Same person or not, from two AU embeddings: an MLP on the symmetric features
    ``[a_i * a_j, |a_i - a_j|]`` -> one logit per pair ``(P,)``."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(2 * dim, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(hidden, 1),
        )

    def forward(self, a1: Tensor, a2: Tensor) -> Tensor:
        return self.body(torch.cat([a1 * a2, (a1 - a2).abs()], dim=1))[:, 0]


class M1Aux(nn.Module):
    """All training-only parts, grouped so that one state dict holds them.

    Attributes:
        generator, landmarks (from ``a``): trained with the encoders (main step).
        image_disc, identity_disc, geometry_disc (landmarks from ``z``): the discriminators.
    """

    def __init__(self, embed_dim: int, size: int, gen_width: int, grid: int) -> None:
        super().__init__()
        self.generator = Generator(embed_dim, embed_dim, size, gen_width)
        self.landmarks = LandmarkHead(embed_dim, 49, grid)
        self.image_disc = ImageDiscriminator(gen_width)
        self.identity_disc = PairDiscriminator(embed_dim)
        self.geometry_disc = LandmarkHead(embed_dim, 49, grid)

    def discriminator_parameters(self) -> list[nn.Parameter]:
        return [
            *self.image_disc.parameters(),
            *self.identity_disc.parameters(),
            *self.geometry_disc.parameters(),
        ]

    def main_parameters(self) -> list[nn.Parameter]:
        return [*self.generator.parameters(), *self.landmarks.parameters()]
