"""Shared fixtures: real image content for the kernels and seeded random generators."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """skimage's astronaut photo, (512, 512, 3) uint8 RGB: real image statistics for warping."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def frame_1080p(astronaut) -> np.ndarray:
    """A 1080p frame made of the astronaut photo (upscaled) with a little noise."""
    import cv2

    big = cv2.resize(astronaut, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(7)
    noisy = big.astype(np.int16) + rng.integers(-3, 4, big.shape, dtype=np.int16)
    return np.clip(noisy, 0, 255).astype(np.uint8)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
