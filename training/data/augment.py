"""M0's train-time augmentations on batches of aligned uint8 crops, in torch.

A batch ``(B, 3, A, A)`` uint8 is cut to ``(B, 3, S, S)`` (a random crop per face), flipped
horizontally with probability ``flip_p``, turned grey with probability ``grayscale_p`` (ITU-R
BT.601 luma, repeated over the 3 channels) and normalised ``(x - mean) / std`` in 8-bit units.
Every random draw comes from the ``torch.Generator`` passed in, so a seeded generator gives the
same batch on every run. Inference uses :func:`centre_crop` and :func:`normalise` only, which
is what the exported manifest's alignment template describes.

Horizontal flips keep AU labels valid: the AUs used here are bilateral.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from auperf.errors import ShapeError, ValueRangeError

__all__ = [
    "random_crop",
    "centre_crop",
    "random_flip",
    "random_grayscale",
    "normalise",
    "augment_batch",
]

_LUMA = (0.299, 0.587, 0.114)


def _check(x: Tensor, size: int) -> None:
    if x.dim() != 4 or x.shape[1] != 3:
        raise ShapeError(f"x: expected shape (B, 3, H, W), got {tuple(x.shape)}")
    if size > x.shape[2] or size > x.shape[3] or size < 1:
        raise ShapeError(
            f"size: expected 1..{min(x.shape[2:])} for crops of {tuple(x.shape)}, got {size}"
        )


def random_crop(x: Tensor, size: int, generator: torch.Generator) -> Tensor:
    """A random ``size x size`` crop of every image of ``x`` ``(B, 3, H, W)`` (any dtype)."""
    _check(x, size)
    b, _, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (b,), generator=generator)
    ox = torch.randint(0, w - size + 1, (b,), generator=generator)
    ar = torch.arange(size)
    rows = (oy[:, None] + ar)[:, :, None]
    cols = (ox[:, None] + ar)[:, None, :]
    bi = torch.arange(b)[:, None, None]
    return x.permute(0, 2, 3, 1)[bi, rows, cols].permute(0, 3, 1, 2).contiguous()


def centre_crop(x: Tensor, size: int) -> Tensor:
    """The centre ``size x size`` crop (offset ``(H - size) // 2``; the aligned side and ``size``
    are chosen so that the offset is a whole number of pixels)."""
    _check(x, size)
    oy = (x.shape[2] - size) // 2
    ox = (x.shape[3] - size) // 2
    return x[:, :, oy : oy + size, ox : ox + size]


def random_flip(x: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Mirror each image left-right with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueRangeError(f"p: expected a probability in [0, 1], got {p!r}")
    m = torch.rand(x.shape[0], generator=generator) < p
    return torch.where(m[:, None, None, None], x.flip(-1), x)


def random_grayscale(x: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Replace each float image by its luma on all channels with probability ``p``."""
    if not 0.0 <= p <= 1.0:
        raise ValueRangeError(f"p: expected a probability in [0, 1], got {p!r}")
    m = torch.rand(x.shape[0], generator=generator) < p
    w = torch.tensor(_LUMA, dtype=x.dtype)
    grey = (x * w[None, :, None, None]).sum(dim=1, keepdim=True).expand_as(x)
    return torch.where(m[:, None, None, None], grey, x)


def normalise(
    x: Tensor, mean: Sequence[float], std: Sequence[float], colour_order: str = "RGB"
) -> Tensor:
    """RGB uint8 or float ``(B, 3, H, W)`` -> float32 ``(x - mean) / std`` in ``colour_order``
    (``mean``/``std`` in 8-bit units, in that order), as the manifest's input spec says."""
    x = x.float()
    if colour_order == "BGR":
        x = x.flip(1)
    elif colour_order != "RGB":
        raise ValueRangeError(f"colour_order: expected 'RGB' or 'BGR', got {colour_order!r}")
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (x - m) / s


def augment_batch(
    x: Tensor,
    size: int,
    generator: torch.Generator,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    colour_order: str = "RGB",
    flip_p: float = 0.5,
    grayscale_p: float = 0.2,
) -> Tensor:
    """Crop, flip, grey and normalise a uint8 batch ``(B, 3, A, A)`` -> float32 ``(B, 3, S, S)``."""
    out = random_crop(x, size, generator).float()
    out = random_flip(out, flip_p, generator)
    out = random_grayscale(out, grayscale_p, generator)
    return normalise(out, mean, std, colour_order)
