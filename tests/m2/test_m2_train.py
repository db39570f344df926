"""M2 trainer: a smoke run, resume after a kill, export parity, config and data errors,
the dataset adapters (RAF-DB, AffectNet, FERPlus layouts written from rendered faces)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from auperf.errors import DatasetError
from auperf.manifest import Manifest
from training.common.checkpoint import list_checkpoints
from training.common.config import ConfigError, config_from_dict, load_config
from training.common.loop import Trainer
from training.m2.config import M2Config
from training.m2.data import ExpressionBatches, build_m2_data, dataset_expression_faces
from training.m2.export import load_m2_weights
from training.m2.method import M2Method, predict_m2
from training.m2.train import train_m2

torch.set_num_threads(1)


class Killed(RuntimeError):
    pass


def _cfg(tmp_path, name="run", **over):
    d = {
        "backbone": "smallnet",
        "input_size": 32,
        "importance": {"relabel_after": 1, "delta2": 0.0},
        "data": {
            "synth": {
                "train_identities": 6,
                "val_identities": 2,
                "test_identities": 2,
                "faces_per_identity": 6,
                "render_size": 64,
                "augment": "off",
            },
            "noise": "symmetric",
            "noise_rate": 0.4,
            "cache_dir": str(tmp_path.parent / "m2cache"),
        },
        "train": {
            "epochs": 3,
            "batch_size": 12,
            "lr": 0.003,
            "device": "cpu",
            "out_dir": str(tmp_path / name),
            "progress": False,
        },
    }
    for k, v in over.items():
        d[k] = v
    return config_from_dict(M2Config, d)


def test_smoke_run_export_and_resume_is_read_back(tmp_path):
    cfg = _cfg(tmp_path)
    res = train_m2(cfg, restart=True)
    assert res["train_faces"] == 36 and res["flipped"] > 0
    assert 0 <= res["test"]["accuracy"] <= 1 and res["test"]["n"] == 12
    assert np.asarray(res["test"]["confusion"]).sum() == 12
    assert res["alpha_auc"] is not None and 0 <= res["alpha_auc"] <= 1
    # Relabelling ran (delta2 = 0: every low-group sample whose arg max differs is relabelled)
    # and its bookkeeping agrees with the label store.
    assert res["relabel_changes"] > 0
    # Each repair removes one wrong label, each break adds one, other changes keep the count.
    assert res["labels_wrong_after"] == (
        res["labels_wrong_before"] - res["relabel_repaired"] + res["relabel_broken"]
    )
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]
    assert "train_rr" in json.loads(lines[0]) and "train_relabelled" in json.loads(lines[-1])
    m = Manifest.load(res["export"]["manifest"])
    assert m.task == "expression" and m.method == "M2" and m.postprocess.kind == "softmax"
    assert m.classes == ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")
    m.verify_model()
    assert res["export"]["onnx_max_abs_diff"] < 1e-4
    net = load_m2_weights(res["export"]["weights"])
    assert net.has_importance and net.num_classes == 7
    # alpha AUC against scikit-learn on the exported network's importances.
    from sklearn.metrics import roc_auc_score

    data = build_m2_data(cfg)
    batches = ExpressionBatches(
        data.faces.images[data.train_idx],
        data.train_labels,
        data.train_labels,
        32,
        64,
        cfg.mean,
        cfg.std,
        train=False,
    )
    alpha = predict_m2(net, batches(0, None))["alpha"]
    assert res["alpha_auc"] == pytest.approx(roc_auc_score(data.flipped, 1 - alpha), abs=1e-6)
    # Same command again: nothing left to train, same numbers.
    again = train_m2(cfg, export=False)
    assert again["epochs_run_by_this_call"] == 0
    assert again["test"] == res["test"]


def test_resume_after_kill_is_bit_identical(tmp_path):
    cfg_a = _cfg(tmp_path, "a")
    data = build_m2_data(cfg_a)
    torch.manual_seed(5)
    ref = M2Method(cfg_a, data.train_labels)
    Trainer(ref, cfg_a.train, data.train, data.val).fit()

    cfg_b = _cfg(tmp_path, "b")
    torch.manual_seed(5)
    victim = M2Method(cfg_b, data.train_labels)
    step = victim.training_step

    def dying(batch, ctx):
        if ctx.epoch == 3 and ctx.step == 7:  # inside epoch 3 (3 steps per epoch)
            raise Killed("power cut")
        return step(batch, ctx)

    victim.training_step = dying
    with pytest.raises(Killed):
        Trainer(victim, cfg_b.train, data.train, data.val).fit()
    assert [e for e, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [1, 2]
    torch.manual_seed(999)
    resumed = M2Method(cfg_b, data.train_labels)
    hist = Trainer(resumed, cfg_b.train, data.train, data.val).fit()
    assert [h["epoch"] for h in hist] == [3]
    for k, v in ref.model.state_dict().items():
        assert torch.equal(v, resumed.model.state_dict()[k]), k
    assert torch.equal(ref.store.current, resumed.store.current)
    assert ref.store.changes > 0
    assert (ref.repaired, ref.broken, ref.store.changes) == (
        resumed.repaired,
        resumed.broken,
        resumed.store.changes,
    )


def test_plain_ce_baseline_has_no_importance(tmp_path):
    cfg = _cfg(tmp_path, importance={"enabled": False})
    cfg.train.epochs = 1
    res = train_m2(cfg, restart=True, export=False)
    assert res["alpha_auc"] is None and res["relabel_changes"] == 0


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="data.noise"):
        config_from_dict(M2Config, {"data": {"noise": "random"}})
    with pytest.raises(ConfigError, match="data.num_classes"):
        config_from_dict(M2Config, {"data": {"num_classes": 5}})
    with pytest.raises(ConfigError, match="importance.beta"):
        config_from_dict(M2Config, {"importance": {"beta": 0}})
    with pytest.raises(ConfigError, match="importance.delta3"):
        config_from_dict(M2Config, {"importance": {"delta3": 0}})
    with pytest.raises(ConfigError, match="backbone"):
        config_from_dict(M2Config, {"backbone": "vgg"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  noise_rate: 1.5\n")
    with pytest.raises(ConfigError, match="bad.yaml.*noise_rate"):
        load_config(bad, M2Config)


def test_shipped_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "training" / "configs"
    for path in sorted(root.glob("m2_*.yaml")):
        load_config(path, M2Config)


def _render(n, seed):
    from auperf import synth

    rng = np.random.default_rng(seed)
    params = synth.sample_params(rng, n, expression="neutral")
    expr, labels = synth.sample_category(rng, n, categories=list(range(7)))
    params[:, synth.EXPRESSION_SLICE] = expr
    out = synth.FaceRenderer(seed=seed, size=64).render(params)
    return out, labels


@pytest.mark.parametrize("layout", ["rafdb", "affectnet", "ferplus"])
def test_dataset_adapters_read_every_layout(tmp_path, layout):
    from auperf import datasets

    out, labels = _render(10, 3)
    root = tmp_path / layout
    if layout == "rafdb":
        with datasets.RAFDBWriter(root) as w:
            for i in range(10):
                w.add(
                    out.images[i],
                    split="test" if i >= 8 else "train",
                    expression=int(labels[i]),
                    landmarks=out.landmarks5[i],
                )
    elif layout == "affectnet":
        with datasets.AffectNetWriter(root) as w:
            for i in range(10):
                w.add(
                    out.images[i],
                    split="val" if i >= 8 else "train",
                    name=f"f{i}.jpg",
                    expression=int(labels[i]),
                    landmarks=out.landmarks5[i],
                )
    else:
        with datasets.FERPlusWriter(root) as w:
            for i in range(10):
                w.add(
                    out.images[i],
                    split="test" if i >= 8 else "train",
                    expression=int(labels[i]),
                    landmarks=out.landmarks5[i],
                )
    faces = dataset_expression_faces(root, 36, layout=layout, val_fraction=0.25)
    assert faces.images.shape == (10, 3, 36, 36)
    assert sorted(faces.labels.tolist()) == sorted(labels.tolist())
    assert (faces.split == 2).sum() == 2 and (faces.split == 1).sum() >= 1


def test_dataset_without_landmarks_is_refused(tmp_path):
    from auperf import datasets

    out, labels = _render(3, 4)
    root = tmp_path / "raf"
    with datasets.RAFDBWriter(root) as w:
        for i in range(3):
            w.add(out.images[i], split="train", expression=int(labels[i]))
    with pytest.raises(DatasetError, match="landmarks"):
        dataset_expression_faces(root, 36, layout="rafdb")


def test_warmup_epochs_train_plain_cross_entropy(tmp_path):
    cfg = _cfg(tmp_path, importance={"warmup_epochs": 1, "relabel_after": 1})
    cfg.train.epochs = 2
    train_m2(cfg, restart=True, export=False)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    # Epoch 1: plain CE (no rank term, loss = CE); epoch 2: gamma * RR + (1 - gamma) * WCE.
    assert lines[0]["train_rr"] == 0.0
    assert lines[0]["train_loss"] == pytest.approx(lines[0]["train_wce"], rel=1e-6)
    assert lines[1]["train_loss"] == pytest.approx(
        0.5 * lines[1]["train_rr"] + 0.5 * lines[1]["train_wce"], rel=1e-5
    )


def test_experiment_grid_and_tables(tmp_path):
    from training.experiments.m2_noise import render_tables, run_grid

    base = _cfg(tmp_path)
    base.train.epochs = 1
    res = run_grid(base, tmp_path / "grid", conditions=(("sym20", "symmetric", 0.2),))
    s, c = res["runs"]["sym20"]["scn"], res["runs"]["sym20"]["ce"]
    assert s["flipped"] == c["flipped"] > 0 and c["alpha_auc"] is None
    text = render_tables(res)
    row = next(x for x in text.splitlines() if x.startswith("| symmetric 20% | "))
    assert f"{s['test_accuracy']:.3f}" in row and f"{c['test_accuracy']:.3f}" in row
    # A finished run is read back, not retrained.
    again = run_grid(base, tmp_path / "grid", conditions=(("sym20", "symmetric", 0.2),))
    assert again["runs"] == res["runs"]
