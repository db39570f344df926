"""CUDA vs CPU: warp_faces, fuse_views and estimate_similarity give the same results."""

from __future__ import annotations

import numpy as np
import pytest

from auperf import align, errors
from auperf.ops import fuse_views, warp_faces

pytestmark = pytest.mark.gpu


def _mats(rng, n, hw, size):
    out = []
    for _ in range(n):
        s, a = rng.uniform(0.4, 2.5), rng.uniform(-np.pi, np.pi)
        m = np.array([[np.cos(a) * s, -np.sin(a) * s, 0], [np.sin(a) * s, np.cos(a) * s, 0]])
        c = rng.uniform([-50, -50], [hw[1] + 50, hw[0] + 50])
        m[:, 2] = size / 2 - m[:, :2] @ c
        out.append(m)
    return np.stack(out)


@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_warp_cuda_matches_cpu(cuda, dtype, layout):
    import torch

    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (3, 301, 517, 3), dtype=np.uint8)
    mats = _mats(rng, 40, (301, 517), 96)
    idx = rng.integers(0, 3, 40)
    kw = dict(size=96, dtype=dtype, layout=layout, border_value=(5, 100, 250))
    if dtype != "uint8":
        kw.update(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), output_order="BGR")
    cpu = warp_faces(frames, mats, idx, **kw)
    gpu = warp_faces(
        torch.from_numpy(frames).to(cuda),
        torch.from_numpy(mats).to(cuda),
        torch.from_numpy(idx).to(cuda),
        **kw,
    )
    assert isinstance(gpu, torch.Tensor) and gpu.device == cuda
    got = gpu.cpu().numpy()
    if dtype == "uint8":
        assert np.abs(got.astype(int) - cpu.astype(int)).max() <= 1
        assert (got == cpu).mean() > 0.999
    else:
        np.testing.assert_allclose(
            got.astype(np.float32),
            cpu.astype(np.float32),
            atol=1e-5 if dtype == "float32" else 2e-3,
            rtol=0,
        )


def test_warp_cuda_strided_frames_and_stream(cuda):
    import torch

    rng = np.random.default_rng(4)
    frames = rng.integers(0, 256, (2, 200, 300, 3), dtype=np.uint8)
    mats = _mats(rng, 6, (100, 300), 48)
    idx = np.array([0, 1, 0, 1, 1, 0])
    cpu = warp_faces(frames[:, ::2], mats, idx, size=48)
    dev = torch.from_numpy(frames).to(cuda)[:, ::2]  # strided rows on the device
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        gpu = warp_faces(
            dev, torch.from_numpy(mats).to(cuda), torch.from_numpy(idx).to(cuda), size=48
        )
    stream.synchronize()
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, atol=1e-5)


def test_warp_cuda_validation_errors(cuda):
    import torch

    frames = torch.zeros((1, 8, 8, 3), dtype=torch.uint8, device=cuda)
    m = torch.tensor([[[1.0, 0, 0], [0, 1, 0]]], dtype=torch.float64, device=cuda)
    with pytest.raises(errors.IndexRangeError):
        warp_faces(frames, m, torch.tensor([3], device=cuda), size=8)
    with pytest.raises(errors.SingularMatrixError):
        warp_faces(frames, torch.zeros_like(m), size=8)
    with pytest.raises(errors.DeviceError, match="one device"):
        warp_faces(frames, m.cpu().numpy(), size=8)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_fuse_cuda_matches_cpu(cuda, dtype):
    import torch

    rng = np.random.default_rng(5)
    logits = (rng.normal(0, 6, (1000, 2, 15))).astype(dtype)
    logits[0, 0, 0] = 3e4
    thr = rng.uniform(0.1, 0.9, 15).astype(np.float32)
    p_cpu, a_cpu = fuse_views(logits, thr)
    p_gpu, a_gpu = fuse_views(torch.from_numpy(logits).to(cuda), thr)
    assert p_gpu.device == cuda and a_gpu.dtype == torch.bool
    np.testing.assert_allclose(p_gpu.cpu().numpy(), p_cpu, atol=1e-6, rtol=0)
    agree = a_gpu.cpu().numpy() == a_cpu
    near = np.abs(p_cpu - thr) < 1e-6
    assert (agree | near).all()


def test_similarity_cuda_matches_cpu(cuda):
    import torch

    rng = np.random.default_rng(6)
    pts = align.TEMPLATE_112[None] * rng.uniform(0.5, 4, (500, 1, 1)) + rng.uniform(
        0, 1000, (500, 1, 2)
    )
    pts += rng.normal(0, 1.5, pts.shape)
    cpu = align.estimate_similarity(pts, align.TEMPLATE_256)
    gpu = align.estimate_similarity(torch.from_numpy(pts).to(cuda), align.TEMPLATE_256)
    np.testing.assert_allclose(gpu.cpu().numpy(), cpu, atol=1e-9, rtol=1e-9)
    bad = torch.from_numpy(pts[:3].copy()).to(cuda)
    bad[1] = 7.0
    with pytest.raises(errors.SingularMatrixError, match=r"faces \[1\]"):
        align.estimate_similarity(bad, align.TEMPLATE_256)


def test_cupy_arrays_work_too(cuda):
    cupy = pytest.importorskip("cupy", reason="cupy is not installed")
    rng = np.random.default_rng(8)
    frames = rng.integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    mats = _mats(rng, 4, (64, 64), 32)
    gpu = warp_faces(cupy.asarray(frames), cupy.asarray(mats), size=32)
    assert isinstance(gpu, cupy.ndarray)
    np.testing.assert_allclose(gpu.get(), warp_faces(frames, mats, size=32), atol=1e-5)
