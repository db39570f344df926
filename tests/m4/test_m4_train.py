"""A smoke M4 run (CI-sized), exact resume, the export, Features on it, and M0's backbone_init."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from auperf.errors import (
    ManifestError,
    NonFiniteError,
    SessionClosedError,
    ShapeError,
    WeightsError,
)
from training.common.checkpoint import latest_checkpoint
from training.common.config import ConfigError, config_from_dict
from training.m4.config import M4Config
from training.m4.train import train_m4

SMOKE = {
    "image_size": 32,
    "au_dim": 16,
    "pose_dim": 8,
    "decoder_channels": [8, 8, 4, 4],
    "warmup_epochs": 1,
    "curriculum": {"gap_start": 1, "gap_end": 3, "epochs": 2},
    "data": {
        "render_size": 64,
        "train_sequences": 3,
        "test_sequences": 1,
        "frames_per_sequence": 6,
        "pairs_per_epoch": 16,
        "augment": "off",
    },
    "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "device": "cpu", "progress": False},
}


def _cfg(tmp_path, name: str, **train) -> M4Config:
    d = json.loads(json.dumps(SMOKE))
    d["data"]["cache_dir"] = str(tmp_path / "cache")
    d["train"].update(out_dir=str(tmp_path / name), **train)
    return config_from_dict(M4Config, d)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("m4run")
    torch.set_num_threads(1)
    cfg = _cfg(tmp, "full")
    res = train_m4(cfg, resume=False)
    return tmp, cfg, res


def test_smoke_run_logs_and_exports(run):
    _, cfg, res = run
    hist = res["history"]
    assert [h["epoch"] for h in hist] == [1, 2]
    assert [h["train_max_gap"] for h in hist] == [1.0, 3.0]  # the curriculum widens the gap
    # Epoch 1 is the reconstruction warm-up: the logged total is L_rec alone; epoch 2 adds the
    # sparsity, cycles and embeddings (every term is a per-epoch mean, so this is exact).
    lam1, lam2, lam3 = cfg.lambda_sparsity, cfg.lambda_cycle, cfg.lambda_embedding
    h1, h2 = hist
    assert h1["train_loss"] == pytest.approx(h1["train_rec"])
    assert h1["train_cyc_au"] + h1["train_emb_au"] > 0  # logged, but not in the total
    full = (
        h2["train_rec"]
        + lam1 * h2["train_sparsity"]
        + lam2 * (h2["train_cyc_au"] + h2["train_cyc_pose"])
        + lam3 * (h2["train_emb_au"] + h2["train_emb_pose"])
    )
    assert h2["train_loss"] == pytest.approx(full)
    assert h2["train_cyc_au"] + h2["train_emb_au"] > 0  # so the two checks differ
    assert h1["train_field_au_px"] >= 0 and np.isfinite(h2["train_field_pose_px"])
    for key in ("train_rec", "train_sparsity", "train_cyc_au", "train_emb_pose", "val_rec"):
        assert np.isfinite(hist[-1][key]), key
    from auperf.manifest import Manifest

    m = Manifest.load(res["export"]["manifest"])
    m.verify_model()
    assert (m.method, m.task, m.aus) == ("M4", "features", ())
    assert [o.shape for o in m.outputs] == [("batch", 16), ("batch", 8)]
    assert m.input.size == (32, 32) and m.model.weights is not None
    assert res["export"]["max_abs_diff"] <= 1e-4


def test_resume_is_exact(run, tmp_path):
    tmp, cfg, _ = run
    from safetensors.torch import load_file

    part = _cfg(tmp, "part", epochs=1)
    train_m4(part, resume=False, export=False)
    train_m4(
        dataclasses.replace(part, train=dataclasses.replace(part.train, epochs=2)), export=False
    )
    a = load_file(str(latest_checkpoint(tmp / "full" / "checkpoints")))
    b = load_file(str(latest_checkpoint(tmp / "part" / "checkpoints")))
    model_keys = [k for k in a if k.startswith("model.")]
    assert model_keys and all(torch.equal(a[k], b[k]) for k in model_keys)


def test_resume_refuses_another_configuration(run):
    tmp, cfg, _ = run
    other = dataclasses.replace(cfg, lambda_sparsity=0.5)
    with pytest.raises(ConfigError, match="lambda_sparsity"):
        train_m4(other, export=False)


def _faces(n: int, size: int = 96):
    from auperf.synth import FaceRenderer, sample_params

    r = FaceRenderer(seed=3, size=size)
    out = r.render(sample_params(np.random.default_rng(4), n))
    return out.images, out.landmarks5, out.landmarks68


def test_features_match_the_torch_encoder(run):
    import auperf
    from auperf.nets.m4 import TCAEEncoder
    from training.common.checkpoint import load_weights
    from training.data.faces import align_images

    _, cfg, res = run
    images, lm5, lm68 = _faces(3)
    with auperf.Features(res["export"]["manifest"], backend="onnxruntime-cpu") as fx:
        got = fx.extract(images, lm5)
        got68 = fx.extract(images, lm68)
        one = fx.extract(images[1], lm5[1:2])
        empty = fx.extract(images, np.zeros((0, 5, 2)), np.zeros(0, np.int64))
    assert got.au_embedding.shape == (3, 16) and got.pose_embedding.shape == (3, 8)
    assert got.au_embedding.dtype == np.float32 and got.frame_index.tolist() == [0, 1, 2]
    assert empty.au_embedding.shape == (0, 16)
    enc = TCAEEncoder(cfg.backbone, cfg.au_dim, cfg.pose_dim)
    load_weights(enc, res["export"]["weights"])
    crops = align_images(images, lm5, 32)
    with torch.no_grad():
        phi, psi = enc.eval()(torch.from_numpy(crops).float() / 127.5 - 1.0)
    np.testing.assert_allclose(got.au_embedding, phi.numpy(), atol=2e-4)
    np.testing.assert_allclose(got.pose_embedding, psi.numpy(), atol=2e-4)
    np.testing.assert_allclose(one.au_embedding[0], got.au_embedding[1], atol=1e-5)
    # 68 points are reduced to the same 5 (eye centres from corners): close, not identical.
    assert np.abs(got68.au_embedding - got.au_embedding).max() < 0.5 * np.abs(phi.numpy()).max()


def test_features_errors(run):
    import auperf

    _, _, res = run
    images, lm5, _ = _faces(2)
    from auperf.models import DEMO_DIR

    with pytest.raises(ManifestError, match="task"):
        auperf.Features(DEMO_DIR)  # the M0 detector is not a feature model
    fx = auperf.Features(res["export"]["manifest"], backend="onnxruntime-cpu")
    bad = lm5.copy()
    bad[1, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"faces \[1\]"):
        fx.extract(images, bad)
    with pytest.raises(ShapeError, match="landmarks"):
        fx.extract(images, lm5[:, :4])
    with pytest.raises(ShapeError, match="frame_index"):
        fx.extract(images, lm5[:1])
    fx.close()
    with pytest.raises(SessionClosedError):
        fx.extract(images, lm5)


def test_m0_backbone_init_loads_the_tcae_backbone(run):
    from auperf.nets.m0 import M0Net
    from training.m0.backbone_init import load_backbone_init
    from training.m0.config import M0Config

    _, _, res = run
    from safetensors.torch import load_file

    enc = load_file(res["export"]["weights"])
    net = M0Net(3, "smallnet")
    head_before = net.views[0].clean_head.weight.clone()
    n = load_backbone_init(net, res["export"]["weights"])
    assert n == len([k for k in enc if k.startswith("backbone.")])
    for view in net.views:
        for k, v in view.backbone.state_dict().items():
            assert torch.equal(v, enc[f"backbone.{k}"]), k
    assert torch.equal(net.views[0].clean_head.weight, head_before)
    # A training checkpoint of the TCAE works too (keys model.encoder.backbone.*).
    tmp = run[0]
    net2 = M0Net(3, "smallnet")
    load_backbone_init(net2, latest_checkpoint(tmp / "full" / "checkpoints"))
    assert torch.equal(net2.views[1].backbone.stem[0].weight, enc["backbone.stem.0.weight"])
    with pytest.raises(WeightsError, match="does not fit"):
        load_backbone_init(M0Net(3, "resnet18"), res["export"]["weights"])
    with pytest.raises(WeightsError, match="does not exist"):
        load_backbone_init(net, tmp / "missing.safetensors")
    assert M0Config(backbone="smallnet", backbone_init="x.safetensors").backbone_init


def test_train_m0_starts_from_backbone_init(run, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import training.m0.backbone_init as bi
    from training.common.config import TrainConfig
    from training.m0.config import M0Config
    from training.m0.train import train_m0

    _, _, res = run
    weights = res["export"]["weights"]
    enc = load_file(weights)
    seen = []

    def spy(net, path):
        n = bi.load_backbone_init.__wrapped__(net, path)
        seen.append(
            all(
                torch.equal(v, enc[f"backbone.{k}"])
                for view in net.views
                for k, v in view.backbone.state_dict().items()
            )
        )
        return n

    spy.__wrapped__ = bi.load_backbone_init
    monkeypatch.setattr(bi, "load_backbone_init", spy)
    synth = {
        "render_size": 64,
        "train_identities": 2,
        "val_identities": 1,
        "test_identities": 1,
        "faces_per_identity": 2,
    }
    cfg = M0Config(
        au_ids=[1, 12],
        au_names=["AU1", "AU12"],
        backbone="smallnet",
        input_size=32,
        variant="bce_two_view",
        backbone_init=str(weights),
        data={"synth": synth, "cache_dir": str(tmp_path / "cache"), "aligned_size": 36},
        train=TrainConfig(epochs=1, batch_size=4, progress=False, out_dir=str(tmp_path / "m0")),
    )
    train_m0(cfg, export=False)
    assert seen == [True]
    bad = dataclasses.replace(
        cfg,
        backbone="resnet18",
        train=dataclasses.replace(cfg.train, out_dir=str(tmp_path / "m0b")),
    )
    with pytest.raises(WeightsError, match="does not fit"):
        train_m0(bad, export=False)
