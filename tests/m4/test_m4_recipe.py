"""The training recipe: warm-up weights, config checks, the identity warp of equal frames."""

from __future__ import annotations

import pytest
import torch

from auperf.nets.m4 import TCAENet
from training.common.config import ConfigError, config_from_dict
from training.m4.config import M4Config
from training.m4.method import M4Method

TINY = {"image_size": 16, "au_dim": 4, "pose_dim": 4, "decoder_channels": [4, 4, 4, 4]}


def test_weights_at_switch_after_the_warm_up():
    cfg = config_from_dict(
        M4Config,
        {
            **TINY,
            "warmup_epochs": 2,
            "lambda_sparsity": 0.5,
            "lambda_cycle": 2.0,
            "lambda_embedding": 3.0,
            "detach_targets": False,
        },
    )
    m = M4Method(cfg)
    for epoch in (1, 2):
        w = m.weights_at(epoch)
        assert (w.sparsity, w.cycle, w.embedding) == (0.0, 0.0, 0.0)
        assert w.detach_targets is False
    for epoch in (3, 10):
        w = m.weights_at(epoch)
        assert (w.sparsity, w.cycle, w.embedding, w.norm) == (0.5, 2.0, 3.0, 256.0)


def test_defaults_and_config_errors():
    cfg = config_from_dict(M4Config, dict(TINY))
    assert (cfg.lambda_sparsity, cfg.lambda_cycle, cfg.lambda_embedding) == (0.001, 1.0, 0.01)
    assert cfg.detach_targets and cfg.antisymmetric_decoders and cfg.warmup_epochs == 0
    with pytest.raises(ConfigError, match="warmup_epochs"):
        config_from_dict(M4Config, {**TINY, "warmup_epochs": -1})
    net = M4Method(config_from_dict(M4Config, {**TINY, "antisymmetric_decoders": False})).model
    assert not net.decoder_au.antisymmetric and not net.decoder_pose.antisymmetric


def test_equal_frames_give_the_identity_warp_with_any_weights():
    torch.manual_seed(0)
    net = TCAENet(image_size=16, au_dim=4, pose_dim=4, decoder_channels=(4, 4, 4, 4))
    for p in net.parameters():  # far from the zero start
        torch.nn.init.normal_(p, std=0.2)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = net(x, x)
    assert (
        float(out.field_au.detach().abs().max())
        == 0.0
        == float(out.field_pose.detach().abs().max())
    )
    torch.testing.assert_close(out.reconstruction, x)
    y = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    assert float(net(x, y).field.detach().abs().mean()) > 1e-3  # different frames: a non-zero field


def test_diagnose_prints_statistics_and_gradients(tmp_path):
    import json

    import yaml
    from click.testing import CliRunner

    from training.m4.diagnose import main

    run_file = tmp_path / "tiny.yaml"
    data = {"render_size": 64, "train_sequences": 2, "test_sequences": 1}
    data.update(frames_per_sequence=6, augment="off", cache_dir=str(tmp_path / "cache"))
    cfg = {**TINY, "image_size": 32, "curriculum": {"gap_start": 1, "gap_end": 3}, "data": data}
    run_file.write_text(yaml.safe_dump(cfg))
    args = ["--config", str(run_file), "--steps", "3", "--batch", "4", "--every", "1"]
    res = CliRunner().invoke(main, [*args, "--name", "t", "--warmup-steps", "1", "--plain"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.output.splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2] and {r["v"] for r in rows} == {"t"}
    for r in rows:
        assert r["fA"] >= 0 and r["phistd"] > 0 and r["nowarp"] > 0
    assert rows[0]["tr"]["loss"] == rows[0]["tr"]["rec"]  # the warm-up step: L_rec alone
    res = CliRunner().invoke(main, ["--config", str(run_file), "--gradients", "--gap", "2"])
    assert res.exit_code == 0, res.output
    grads = {r["term"]: r for r in map(json.loads, res.output.splitlines())}
    assert set(grads) == {"rec", "emb", "cyc"}
    assert grads["rec"]["encoder"] == 0.0  # the decoders' last layers start at zero
    assert grads["emb"]["encoder"] > 0.0
