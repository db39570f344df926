"""ONNX export of a tiny untrained M0 (small net, 64x64) and its manifest."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from auperf.errors import ParameterError
from auperf.manifest import AlignmentSpec, Manifest
from auperf.nets.m0 import M0Net
from training.common.checkpoint import save_weights
from training.common.config import save_config
from training.m0.__main__ import main as cli
from training.m0.config import M0Config
from training.m0.export import ExportError, export_m0, export_onnx

S = 64
ALIGN = AlignmentSpec(
    "test64", ((22.0, 29.5), (42.0, 29.4), (32.0, 41.0), (23.7, 52.8), (40.4, 52.7))
)


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = M0Net(3, "smallnet")
    with torch.no_grad():  # non-trivial batch-norm statistics
        for _ in range(2):
            n(torch.randn(4, 3, S, S) + torch.randn(4, 1, 1, 1))
    return n


def _faces(b: int, seed: int) -> np.ndarray:
    g = torch.Generator().manual_seed(seed)
    low = torch.randn(b, 3, 8, 8, generator=g)
    x = torch.nn.functional.interpolate(low, size=(S, S), mode="bilinear") + torch.randn(
        b, 1, 1, 1, generator=g
    )
    return x.numpy().astype(np.float32)


def test_export_m0(tmp_path, net):
    res = export_m0(
        net,
        tmp_path,
        name="tiny",
        au_ids=[1, 2, 4],
        au_names=["a", "b", "c"],
        input_size=S,
        training_data="random tensors",
        metrics={"mean_f1": 0.25},
        thresholds=[0.5, 0.4, 0.6],
        alignment=ALIGN,
    )
    assert net.training  # mode restored
    assert res.max_abs_diff <= 1e-4
    m = Manifest.load(res.manifest_path)
    m.verify_model()
    assert m.method == "M0" and m.au_ids == [1, 2, 4] and m.thresholds == (0.5, 0.4, 0.6)
    assert m.input.size == (S, S) and m.input.layout == "NCHW" and m.input.alignment == ALIGN
    assert m.output("logits").shape == ("batch", 2, 3)
    assert m.postprocess.kind == "fuse_views" and m.model.opset == 17
    assert m.training.metrics == {"mean_f1": 0.25}

    model = onnx.load(str(res.onnx_path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, S, S]
    assert model.opset_import[0].version == 17

    sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
    net.eval()
    try:
        for b in (1, 5):
            x = _faces(b, seed=b)
            got = sess.run(["logits"], {"image": x})[0]
            with torch.no_grad():
                ref = net(torch.from_numpy(x)).clean.numpy()
            assert got.shape == (b, 2, 3)
            np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
        # The fused probability the runtime computes from the output.
        p = 1 / (1 + np.exp(-got.mean(axis=1)))
        with torch.no_grad():
            p_ref = torch.sigmoid(net(torch.from_numpy(x)).clean.mean(dim=1)).numpy()
        np.testing.assert_allclose(p, p_ref, atol=1e-5)
        assert np.ptp(got[:, 0, 0]) > 0  # faces give different outputs
    finally:
        net.train()


def test_export_checks_fail_loudly(tmp_path, net):
    with pytest.raises(ExportError, match="differs from torch"):
        export_onnx(net, tmp_path / "x.onnx", S, atol=-1.0)
    with pytest.raises(ParameterError, match="opset"):
        export_onnx(net, tmp_path / "x.onnx", S, opset=13)
    with pytest.raises(ParameterError, match="au_ids"):
        export_m0(
            net,
            tmp_path,
            name="t",
            au_ids=[1],
            au_names=["a"],
            input_size=S,
            training_data="x",
            alignment=ALIGN,
        )


def test_cli_export(tmp_path, net, monkeypatch):
    cfg = M0Config(au_ids=[1, 2, 4], au_names=["a", "b", "c"], backbone="smallnet", input_size=S)
    save_config(cfg, tmp_path / "run.yaml")
    save_weights(net, tmp_path / "w.safetensors")
    (tmp_path / "metrics.json").write_text(json.dumps({"mean_f1": 0.3}))
    import training.m0.export as export_mod

    monkeypatch.setattr(export_mod, "default_alignment", lambda size: ALIGN)
    out = CliRunner().invoke(
        cli,
        [
            "export",
            "--config",
            str(tmp_path / "run.yaml"),
            "--weights",
            str(tmp_path / "w.safetensors"),
            "--out",
            str(tmp_path / "out"),
            "--name",
            "cli",
            "--metrics",
            str(tmp_path / "metrics.json"),
        ],
    )
    assert out.exit_code == 0, out.output
    m = Manifest.load(tmp_path / "out" / "cli.json")
    m.verify_model()
    assert m.training.metrics == {"mean_f1": 0.3}
    assert m.training.config["backbone"] == "smallnet"


def test_default_alignment_from_auperf_align():
    align = pytest.importorskip(
        "auperf.align", reason="auperf.align needs the compiled core helpers"
    )
    from training.m0.export import default_alignment

    spec = default_alignment(224)
    np.testing.assert_allclose(np.asarray(spec.points), np.asarray(align.template(256)) - 16.0)
