"""Helpers shared by the training tests."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

L = 3


def cuda_device() -> torch.device:
    """The CUDA device, or a skip with the reason."""
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device visible (the CPU paths are tested elsewhere)")
    return torch.device("cuda")


class RandomFaces(Dataset):
    """Random 32x32 'faces' with accurate labels on even rows and noisy labels on odd rows."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 3, 32, 32, generator=g)
        y = (torch.rand(n, L, generator=g) > 0.5).float()
        clean = y.clone()
        clean[1::2] = -1
        noisy = y.clone()
        noisy[0::2] = -1
        self.clean, self.noisy = clean, noisy

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        # Random augmentation from the global RNG, as a data pipeline would draw it.
        x = self.x[i].flip(-1) if torch.rand(()) < 0.5 else self.x[i]
        x = x + 0.1 * torch.randn_like(x)
        return {"image": x, "clean_labels": self.clean[i], "noisy_labels": self.noisy[i]}
