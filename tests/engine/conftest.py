"""Fixtures of the engine tests: a tiny exported M0 model (small net, 64x64, 4 AUs) and a
private engine cache per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from _engine_helpers import HAS_RTX, HAS_TRT


def _export(out: Path, seed: int) -> Path:
    import torch

    from auperf.nets.m0 import M0Net
    from training.m0.export import export_m0

    torch.manual_seed(seed)
    net = M0Net(4, "smallnet", noisy_heads=False).eval()
    export_m0(
        net,
        out,
        name="tiny",
        au_ids=[1, 4, 6, 12],
        au_names=["inner brow raiser", "brow lowerer", "cheek raiser", "lip corner puller"],
        input_size=64,
        training_data="random tensors",
        thresholds=[0.5, 0.45, 0.55, 0.5],
        config={"backbone": "smallnet"},
    )
    return out


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A folder with tiny.json and tiny.onnx."""
    return _export(tmp_path_factory.mktemp("engine_model"), 0)


@pytest.fixture(scope="session")
def other_model(tmp_path_factory) -> Path:
    """The same network with other weights (another sha256)."""
    return _export(tmp_path_factory.mktemp("engine_model_other"), 1)


@pytest.fixture(scope="session")
def manifest(tiny_model):
    from auperf.models import load_manifest

    return load_manifest(tiny_model)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory) -> Path:
    """An engine cache shared by tests that only read what they build."""
    return tmp_path_factory.mktemp("engine_cache")


@pytest.fixture(scope="session")
def fp32_record(tiny_model, shared_cache):
    """An fp32 engine for sm80, batch 1..4..8, built once with the installed library."""
    if not (HAS_RTX or HAS_TRT):
        pytest.skip("neither tensorrt nor tensorrt_rtx is installed")
    from auperf import engine

    t = engine.Target(precision="fp32", min_batch=1, opt_batch=4, max_batch=8, gpu_arch="sm80")
    return engine.build(tiny_model, t, shared_cache)
