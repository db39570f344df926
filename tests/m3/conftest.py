"""Fixtures of the M3 tests: the shipped demo models and a few rendered, held-out faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def est_torch():
    import auperf

    return auperf.Estimator(backend="torch")


@pytest.fixture(scope="session")
def est_ort():
    import auperf

    return auperf.Estimator(backend="onnxruntime")


@pytest.fixture(scope="session")
def rendered():
    """6 faces of new identities rendered at 128 px: frames, 5-point landmarks, params, pose."""
    from auperf.synth import FaceRenderer, sample_params

    x = sample_params(np.random.default_rng(4321), 6)
    r = FaceRenderer(seed=4321, size=128).render(x)
    return {
        "frames": r.images,
        "lm5": r.landmarks5,
        "lm68": r.landmarks68,
        "params": x,
        "pose": r.pose_deg,
    }
