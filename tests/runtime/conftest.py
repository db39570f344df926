"""Fixtures of the runtime tests: a tiny exported M0 model (small net, 64x64 input) and
rendered faces."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from _runtime_helpers import export_tiny


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A folder with tiny.json, tiny.onnx and tiny.safetensors (M0, smallnet, 4 AUs)."""
    out = tmp_path_factory.mktemp("tiny_model")
    export_tiny(out, 0, config={"backbone": "smallnet"})
    return out


@pytest.fixture
def model_copy(tiny_model, tmp_path) -> Path:
    """A private copy of :func:`tiny_model` that a test may damage."""
    dst = tmp_path / "model"
    shutil.copytree(tiny_model, dst)
    return dst


@pytest.fixture(scope="session")
def faces():
    """Rendered faces: 6 frames of 96x96 RGB with their 68 and 5 landmarks."""
    from auperf.synth import FaceRenderer, sample_params

    r = FaceRenderer(seed=3, size=96)
    out = r.render(sample_params(np.random.default_rng(11), 6))
    return out
