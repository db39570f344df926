"""The train command end to end on a tiny synthetic set: every variant, refinement, export,
resume; the experiments table generator."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime as ort
import pytest
import yaml
from click.testing import CliRunner

from auperf.manifest import Manifest
from training.common.config import ConfigError, TrainConfig, load_config
from training.experiments.m0_noise import BEGIN, END, insert_into_readme, render_tables
from training.m0.__main__ import main as cli
from training.m0.config import M0Config
from training.m0.train import SingleViewNet, as_two_view_net, train_m0

AUS = [1, 4, 12, 25]
SYNTH = {
    "render_size": 64,
    "train_identities": 4,
    "val_identities": 2,
    "test_identities": 2,
    "faces_per_identity": 3,
}


def _cfg(tmp_path, variant="m0", **kw) -> M0Config:
    return M0Config(
        au_ids=AUS,
        au_names=[f"AU{a}" for a in AUS],
        backbone="smallnet",
        input_size=32,
        variant=variant,
        refine_gamma=0.3,
        data={
            "synth": SYNTH,
            "cache_dir": str(tmp_path / "cache"),
            "aligned_size": 36,
            "accurate_fraction": 0.5,
            "noise": "flip",
            "noise_rate": 0.3,
        },
        train=TrainConfig(epochs=1, batch_size=8, progress=False, out_dir=str(tmp_path / variant)),
        **kw,
    )


def test_train_m0_refine_and_export(tmp_path):
    cfg = _cfg(tmp_path, refine_epochs=1, refine_scope="all")
    res = train_m0(cfg, extra_gammas=(0.5,))
    ref = res["refinement"]
    assert set(ref["gammas"]) == {"0.5", "0.3"}
    # gamma 0.5 with hardening at 0.5 cannot change a hard label
    assert ref["gammas"]["0.5"]["changed"] == 0
    assert ref["gammas"]["0.5"]["agreement_after"] == pytest.approx(ref["agreement_before"])
    assert len(res["evaluation_after_refine"]["thresholds"]) == 4
    assert "test" in res["evaluation"] and "mean_f1" in res["evaluation"]["test"]
    m = Manifest.load(res["export"]["manifest"])
    m.verify_model()
    assert m.au_ids == AUS and list(m.thresholds) == res["evaluation_after_refine"]["thresholds"]
    assert m.input.size == (32, 32)
    assert (tmp_path / "m0" / "refine" / "metrics.jsonl").is_file()
    assert json.loads((tmp_path / "m0" / "results.json").read_text())["variant"] == "m0"
    # resumed: nothing is retrained, the same numbers come back
    again = train_m0(cfg, export=False, extra_gammas=(0.5,))
    for key in ("thresholds",):
        assert again["evaluation_after_refine"][key] == res["evaluation_after_refine"][key]
    assert (
        again["evaluation_after_refine"]["test"]["f1"]
        == res["evaluation_after_refine"]["test"]["f1"]
    )


@pytest.mark.parametrize("variant", ["bce_two_view", "bce_single_view"])
def test_baselines(tmp_path, variant):
    res = train_m0(_cfg(tmp_path, variant), export=False)
    assert "refinement" not in res and res["variant"] == variant
    cfg_seen = yaml.safe_load((tmp_path / variant / "config.yaml").read_text())
    assert cfg_seen["variant"] == variant


def test_single_view_export_net_matches():
    import torch

    net = SingleViewNet(3, "smallnet").eval()
    two = as_two_view_net(net).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        z1 = net(x).clean
        z2 = two(x).clean
    torch.testing.assert_close(z1, z2)
    torch.testing.assert_close(z2[:, 0], z2[:, 1])


def test_cli_train(tmp_path):
    cfg = _cfg(tmp_path)
    path = tmp_path / "run.yaml"
    from training.common.config import save_config

    save_config(cfg, path)
    r = CliRunner().invoke(cli, ["train", "--config", str(path), "--name", "tiny"])
    assert r.exit_code == 0, r.output
    assert "test mean F1" in r.output
    onnx_path = tmp_path / "m0" / "export" / "tiny.onnx"
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    out = sess.run(None, {"image": np.zeros((1, 3, 32, 32), np.float32)})[0]
    assert out.shape == (1, 2, 4)


def test_config_variant_checked(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("variant: three_view\n")
    with pytest.raises(ConfigError, match="variant"):
        load_config(p, M0Config)


def _fake_results():
    run = {
        "test_mean_f1": 0.5,
        "test_mean_auc": 0.8,
        "val_mean_f1": 0.5,
        "test_f1": {},
        "thresholds": [],
        "train_time_s": 1.0,
    }
    conds = []
    for name, noise, rate in (("clean", "none", 0.0), ("flip20", "flip", 0.2)):
        runs = {k: dict(run) for k in ("m0", "m0_refined", "bce_two_view", "bce_single_view")}
        runs["bce_two_view"]["test_mean_f1"] = 0.6
        conds.append(
            {
                "name": name,
                "noise": noise,
                "rate": rate,
                "runs": runs,
                "refinement": {
                    "agreement_before": 0.8,
                    "noisy_head_agreement": 0.85,
                    "gammas": {
                        "0.5": {"agreement_after": 0.8, "changed": 0, "labels": 10},
                        "0.3": {"agreement_after": 0.84, "changed": 2, "labels": 10},
                    },
                },
            }
        )
    settings = {
        "au_ids": AUS,
        "backbone": "smallnet",
        "input_size": 72,
        "epochs": 3,
        "batch_size": 32,
        "refine_epochs": 2,
        "refine_gamma": 0.3,
        "accurate_faces": 10,
        "inaccurate_faces": 30,
        "train_identities": 4,
        "val_faces": 5,
        "test_faces": 5,
    }
    machine = {"cpu": "x", "threads": 1, "train_time_min": 1.0, "wall_time_min": 1.0}
    return {"conditions": conds, "settings": settings, "machine": machine}


def test_tables_generated_and_inserted(tmp_path):
    table = render_tables(_fake_results())
    assert "| 20% | flip | 0.500 (0.800) | 0.500 (0.800) | **0.600 (0.800)** |" in table
    assert "| 20% | flip | 0.800 | 0.850 | 0.800 | 0.840 | 2 of 10 |" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nstale entry\n{END}\nend\n")
    insert_into_readme(readme, table)
    text = readme.read_text()
    assert "stale entry" not in text and table in text and text.endswith(f"{END}\nend\n")
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        insert_into_readme(readme, table)


def test_resume_refuses_a_different_config(tmp_path):
    cfg = _cfg(tmp_path, "bce_single_view")
    train_m0(cfg, export=False)
    other = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, lr=0.5))
    with pytest.raises(ConfigError, match=r"differs in \['train'\].*--restart"):
        train_m0(other, export=False)
    train_m0(other, export=False, resume=False)  # starting over is allowed
