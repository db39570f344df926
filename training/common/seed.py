"""Seeding for reproducible runs.

A run is reproducible when everything random derives from one seed. The trainer reseeds at the
start of every epoch from ``(seed, epoch)`` (:func:`epoch_seed`), so a run resumed from the
checkpoint of epoch ``e`` draws exactly the same data order, augmentation and dropout for epoch
``e + 1`` as a run that was never interrupted.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["seed_everything", "epoch_seed", "seed_worker"]


def epoch_seed(seed: int, epoch: int) -> int:
    """A 31-bit seed derived from ``(seed, epoch)`` with NumPy's ``SeedSequence`` (well mixed)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF])
    return int(state.generate_state(1, dtype=np.uint32)[0] >> 1)


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU).

    Args:
        seed: the seed.
        deterministic: also ask torch for deterministic algorithms (a warning, not an error,
            for operations that have none), turn off cuDNN autotuning, and set
            ``CUBLAS_WORKSPACE_CONFIG`` when unset (needed by deterministic cuBLAS).
    """
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for data loaders: seeds ``random`` and NumPy from torch's worker seed."""
    s = torch.initial_seed() % 2**32
    random.seed(s)
    np.random.seed(s)
