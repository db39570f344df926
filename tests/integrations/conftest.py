"""Fixtures of the integration tests: rendered multi-face frames and the demo Detector."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def faces():
    """6 rendered 120x160 frames with 2 faces each: ``(frames, landmarks5, frame_index)``."""
    from auperf.synth import render_multiface

    m = render_multiface(6, n_faces=2, height=120, width=160, seed=3)
    lm = m.landmarks5.reshape(-1, 5, 2)
    fidx = np.repeat(np.arange(m.images.shape[0]), m.landmarks5.shape[1])
    return m.images, lm, fidx


@pytest.fixture(scope="session")
def detector():
    import auperf

    det = auperf.Detector(backend="onnxruntime-cpu", batch_size=8)
    yield det
    det.close()


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance (2 CPUs) for the whole test session, always shut down."""
    ray = pytest.importorskip("ray", reason="ray is not installed (auperf[ray])")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        try:
            from ray import serve

            serve.shutdown()
        finally:
            ray.shutdown()
