"""GPU tests: the CUDA path of every kernel compared with the CPU path on the same inputs.

Inputs are generated on the CPU with fixed seeds and then moved to the device. Every test here
needs a visible CUDA device, a CUDA build of the core and torch with CUDA; where any is missing,
the test is skipped with the reason (never silently dropped).
"""

from __future__ import annotations

import pytest

import auperf


def _gpu_skip_reason() -> str | None:
    info = auperf.build_info()
    if not info["cuda_compiled"]:
        return "auperf was built without CUDA"
    if info["cuda_device_count"] == 0:
        return "no CUDA device is visible"
    try:
        import torch
    except ImportError:
        return "torch is not installed (the GPU tests move arrays with torch)"
    if not torch.cuda.is_available():
        return "torch has no CUDA support on this machine"
    return None


@pytest.fixture(scope="session")
def cuda():
    reason = _gpu_skip_reason()
    if reason:
        pytest.skip(reason)
    import torch

    return torch.device("cuda", torch.cuda.current_device())
