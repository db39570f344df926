"""CUDA vs CPU: adam_step gives the same bits on the device as on the host.

The maths is written once (fit_body.h) with unfused float32 operations, so the device result
is compared bit for bit with the CPU result, which the CPU tests compare with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from auperf import errors
from auperf.ops import FitStatus, adam_step

pytestmark = pytest.mark.gpu


def _case(seed, n, d):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-0.2, 1.2, (n, d)).astype(np.float32)
    g = rng.normal(0, 1, (n, d)).astype(np.float32)
    m = rng.normal(0, 0.3, (n, d)).astype(np.float32)
    v = rng.uniform(0.01, 1.0, (n, d)).astype(np.float32)
    step = rng.integers(0, 30, n).astype(np.int32)
    active = rng.random(n) < 0.8
    if n >= 5:
        g[3, d // 2] = np.nan  # stopped as non-finite
        g[4] = np.nan  # but face 4 is inactive: never read
        active[3], active[4] = True, False
    loss = rng.uniform(0.5, 1.0, n).astype(np.float32)
    prev = (loss * (1 + rng.choice([1e-5, 0.1], n))).astype(np.float32)
    lrs = rng.uniform(1e-4, 0.1, n).astype(np.float32)
    status = np.full(n, -1, np.int8)
    return dict(
        params=x,
        grads=g,
        m=m,
        v=v,
        step=step,
        active=active,
        loss=loss,
        prev_loss=prev,
        status=status,
    ), lrs


_SETTINGS = dict(tol_param=2e-3, tol_loss=1e-4, max_iterations=25, lower=0.0, upper=1.0)
_STATE = ("params", "m", "v", "step", "active", "prev_loss", "status")


def _cpu(arrays, lrs):
    host = {k: v.copy() for k, v in arrays.items()}
    left = adam_step(**host, lr=lrs, **_SETTINGS)
    return left, host


@pytest.mark.parametrize("n, d", [(1, 77), (257, 77), (64, 5), (33, 300)])
def test_adam_step_cuda_matches_cpu_bit_for_bit(cuda, n, d):
    import torch

    arrays, lrs = _case(n + d, n, d)
    left_cpu, host = _cpu(arrays, lrs)
    dev = {k: torch.from_numpy(v.copy()).to(cuda) for k, v in arrays.items()}
    left = adam_step(**dev, lr=torch.from_numpy(lrs).to(cuda), **_SETTINGS)
    assert left == left_cpu
    for name in _STATE:
        got = dev[name].cpu().numpy()
        assert got.tobytes() == host[name].tobytes(), name
    if n >= 5:
        assert host["status"][3] == FitStatus.NON_FINITE and host["status"][4] == -1


def test_adam_step_cuda_host_lr_scalar_lr_and_stream(cuda):
    import torch

    arrays, lrs = _case(11, 100, 77)
    left_cpu, host = _cpu(arrays, lrs)
    dev = {k: torch.from_numpy(v.copy()).to(cuda) for k, v in arrays.items()}
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        left = adam_step(**dev, lr=lrs, **_SETTINGS)  # host per-face lr is copied
    stream.synchronize()
    assert left == left_cpu
    for name in _STATE:
        assert dev[name].cpu().numpy().tobytes() == host[name].tobytes(), name
    # An explicit stream handle and a scalar learning rate.
    arrays, _ = _case(12, 40, 77)
    host = {k: v.copy() for k, v in arrays.items()}
    left_cpu = adam_step(**host, lr=0.03, **_SETTINGS)
    dev = {k: torch.from_numpy(v.copy()).to(cuda) for k, v in arrays.items()}
    other = torch.cuda.Stream()
    left = adam_step(**dev, lr=0.03, stream=other.cuda_stream, **_SETTINGS)
    assert left == left_cpu
    for name in _STATE:
        assert dev[name].cpu().numpy().tobytes() == host[name].tobytes(), name


def test_adam_step_cuda_repeated_steps_until_all_stop(cuda):
    import torch

    rng = np.random.default_rng(13)
    n, d = 200, 77
    centre = rng.uniform(-0.5, 1.5, (n, d)).astype(np.float32)
    x0 = np.full((n, d), 0.5, np.float32)
    host = dict(
        params=x0.copy(),
        m=np.zeros_like(x0),
        v=np.zeros_like(x0),
        step=np.zeros(n, np.int32),
        active=np.ones(n, bool),
    )
    dev = {k: torch.from_numpy(v.copy()).to(cuda) for k, v in host.items()}
    c_dev = torch.from_numpy(centre).to(cuda)
    left_cpu = left_gpu = n
    for _ in range(400):
        left_cpu = adam_step(
            host["params"],
            host["params"] - centre,
            host["m"],
            host["v"],
            host["step"],
            host["active"],
            lr=0.02,
            tol_param=1e-5,
            max_iterations=400,
        )
        left_gpu = adam_step(
            dev["params"],
            dev["params"] - c_dev,
            dev["m"],
            dev["v"],
            dev["step"],
            dev["active"],
            lr=0.02,
            tol_param=1e-5,
            max_iterations=400,
        )
        assert left_gpu == left_cpu
        if left_cpu == 0:
            break
    for name, a in host.items():
        assert dev[name].cpu().numpy().tobytes() == a.tobytes(), name


def test_adam_step_cupy_arrays(cuda):
    cupy = pytest.importorskip("cupy", reason="cupy is not installed")
    arrays, lrs = _case(21, 50, 77)
    left_cpu, host = _cpu(arrays, lrs)
    dev = {k: cupy.asarray(v) for k, v in arrays.items()}
    left = adam_step(**dev, lr=cupy.asarray(lrs), **_SETTINGS)
    assert left == left_cpu
    for name in _STATE:
        assert dev[name].get().tobytes() == host[name].tobytes(), name


def test_adam_step_cuda_errors(cuda):
    import torch

    arrays, lrs = _case(31, 10, 4)
    dev = {k: torch.from_numpy(v.copy()).to(cuda) for k, v in arrays.items()}
    with pytest.raises(errors.DeviceError, match="one device"):
        adam_step(**{**dev, "m": arrays["m"]}, lr=0.1)
    with pytest.raises(errors.DTypeError, match="step: expected int32"):
        adam_step(**{**dev, "step": dev["step"].long()}, lr=0.1)
    with pytest.raises(errors.ShapeError, match="params: expected a C-contiguous"):
        t = torch.zeros((4, 10), device=cuda).T
        adam_step(**{**dev, "params": t}, lr=0.1)
    bad = lrs.copy()
    bad[2] = -1
    with pytest.raises(errors.ValueRangeError, match="lr: entry 2 is -1.0"):
        adam_step(**dev, lr=torch.from_numpy(bad).to(cuda))
