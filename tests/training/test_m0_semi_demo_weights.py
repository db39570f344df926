"""The torch backend's weights file: written by ``export_m0`` beside the ONNX file, and shipped
with the demo model, where ``Detector(backend="torch-cpu")`` must give the probabilities of
``Detector(backend="onnxruntime-cpu")`` on rendered faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

import auperf
from auperf import synth
from auperf.backends.torch import build_network, load_weights
from auperf.manifest import AlignmentSpec, Manifest, sha256_file
from auperf.models import weights_path
from auperf.nets.m0 import M0Inference, M0Net
from training.m0.export import WEIGHTS_FORMAT, ExportError, export_m0, export_weights

DEMO = Path(__file__).resolve().parents[2] / "auperf" / "models" / "demo"
S = 64
ALIGN = AlignmentSpec(
    "test64", ((22.0, 29.5), (42.0, 29.4), (32.0, 41.0), (23.7, 52.8), (40.4, 52.7))
)


@pytest.fixture(scope="module")
def net() -> M0Net:
    torch.manual_seed(0)
    n = M0Net(3, "smallnet")
    with torch.no_grad():  # non-trivial batch-norm statistics
        for _ in range(2):
            n(torch.randn(4, 3, S, S) + torch.randn(4, 1, 1, 1))
    return n


def test_export_m0_writes_backend_weights(tmp_path, net):
    res = export_m0(
        net,
        tmp_path,
        name="tiny",
        au_ids=[1, 2, 4],
        au_names=["a", "b", "c"],
        input_size=S,
        training_data="random tensors",
        alignment=ALIGN,
        config={"backbone": "smallnet"},
    )
    path = tmp_path / "tiny.safetensors"
    assert res.weights_path == path and path.is_file()
    assert res.weights_sha256 == sha256_file(path)
    assert res.weights_max_abs_diff is not None and res.weights_max_abs_diff <= 1e-6
    assert weights_path(res.manifest) == path  # where the torch backend looks
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    assert meta["format"] == WEIGHTS_FORMAT and meta["name"] == "tiny"
    assert meta["onnx_sha256"] == res.manifest.model.sha256
    # exactly the runtime network's state dict: no training-only noisy heads
    assert keys == set(M0Net(3, "smallnet", noisy_heads=False).state_dict())
    assert not any("noisy_head" in k for k in keys)

    # the backend's own loader and network reproduce the trained network
    fresh = build_network(res.manifest)
    load_weights(fresh, path)
    x = torch.randn(5, 3, S, S)
    with torch.no_grad():
        ref = M0Inference(net.eval())(x)
        got = M0Inference(fresh.eval())(x)
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-6)


def test_export_weights_reproducible_and_readable(tmp_path, net):
    """The same network gives the same bytes (the demo's sha256 does not drift on re-export),
    and safetensors' own reader gets the tensors back."""
    from safetensors.torch import load_file

    meta = {"name": "tiny", "b": "2", "a": "1"}
    export_weights(net, tmp_path / "a.safetensors", S, metadata=meta)
    export_weights(net, tmp_path / "b.safetensors", S, metadata=dict(reversed(meta.items())))
    assert (tmp_path / "a.safetensors").read_bytes() == (tmp_path / "b.safetensors").read_bytes()
    got = load_file(str(tmp_path / "a.safetensors"))
    want = {k: v for k, v in net.state_dict().items() if "noisy_head" not in k}
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert got[k].dtype == v.dtype and torch.equal(got[k], v), k


def test_export_m0_weights_optional(tmp_path, net):
    res = export_m0(
        net,
        tmp_path,
        name="tiny",
        au_ids=[1, 2, 4],
        au_names=["a", "b", "c"],
        input_size=S,
        training_data="random tensors",
        alignment=ALIGN,
        weights=False,
    )
    assert res.weights_path is None and not (tmp_path / "tiny.safetensors").exists()


def test_export_weights_rejects_bad_metadata(tmp_path, net):
    with pytest.raises(ValueError, match="metadata"):
        export_weights(net, tmp_path / "w.safetensors", S, metadata={"epoch": 3})
    assert issubclass(ExportError, RuntimeError)


def _demo_manifest() -> Manifest:
    files = sorted(DEMO.glob("*.json"))
    assert len(files) == 1, f"expected one manifest in {DEMO}, found {files}"
    return Manifest.load(files[0])


def test_demo_ships_weights_and_stays_small():
    manifest = _demo_manifest()
    path = weights_path(manifest)
    if not path.is_file():
        pytest.skip(f"{path.name} is not shipped in {DEMO}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == WEIGHTS_FORMAT
    assert meta["onnx_sha256"] == manifest.model.sha256  # exported with this ONNX file
    total = sum(p.stat().st_size for p in DEMO.iterdir() if p.is_file())
    assert total <= 20 * 1024 * 1024


def test_demo_torch_backend_matches_onnxruntime():
    manifest = _demo_manifest()
    if not weights_path(manifest).is_file():
        pytest.skip(f"{weights_path(manifest).name} is not shipped in {DEMO}")
    rng = np.random.default_rng(11)
    faces = synth.FaceRenderer(seed=5, size=128).render(synth.sample_params(rng, 32))
    with auperf.Detector(backend="onnxruntime-cpu") as ref_det:
        ref = ref_det.detect(faces.images, faces.landmarks5)
    with auperf.Detector(backend="torch-cpu") as torch_det:
        assert torch_det.session.describe().backend == "torch"
        got = torch_det.detect(faces.images, faces.landmarks5)
    assert got.probabilities.shape == (32, len(manifest.aus))
    np.testing.assert_allclose(got.probabilities, ref.probabilities, rtol=0, atol=1e-4)
