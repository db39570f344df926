"""The relabelling dry run of the M2 diagnostics against hand-counted values and against the
training-time rule (training.common.importance.relabel)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import ShapeError
from training.common.importance import relabel
from training.experiments.m2_diagnose import relabel_dry_run, render_diagnosis

# Five faces, three classes. alpha ranks them 0 > 1 > 2 > 3 > 4; with beta 0.6 the high group is
# round(0.6 * 5) = 3 faces (0, 1, 2), the low group faces 3 and 4.
PROBS = np.array(
    [
        [0.1, 0.8, 0.1],  # given 0, true 1: the rule would repair it, but it is in the high group
        [0.7, 0.2, 0.1],  # given 0, true 0: nothing (given label is the arg max)
        [0.2, 0.7, 0.1],  # given 0, true 0: would break, high group
        [0.1, 0.2, 0.7],  # given 0, true 2: margin 0.6 > 0.2, low group -> repair
        [0.35, 0.45, 0.2],  # given 0, true 0: margin 0.1 <= 0.2 -> kept
    ]
)
GIVEN = np.array([0, 0, 0, 0, 0])
TRUE = np.array([1, 0, 0, 2, 0])
ALPHA = np.array([0.9, 0.8, 0.7, 0.2, 0.1])


def test_dry_run_low_group_hand_counts():
    out = relabel_dry_run(PROBS, GIVEN, TRUE, ALPHA, beta=0.6, delta2=0.2)
    assert out == {"candidates": 1, "repair": 1, "break": 0, "other": 0}


def test_dry_run_all_faces_hand_counts():
    out = relabel_dry_run(PROBS, GIVEN, TRUE, None, beta=0.6, delta2=0.2)
    # faces 0 (repair), 2 (break), 3 (repair); face 4's margin is too small
    assert out == {"candidates": 3, "repair": 2, "break": 1, "other": 0}


def test_dry_run_counts_wrong_to_wrong_as_other():
    probs = np.array([[0.1, 0.1, 0.8], [0.9, 0.05, 0.05]])
    out = relabel_dry_run(probs, np.array([0, 0]), np.array([1, 0]), None, delta2=0.2)
    assert out == {"candidates": 1, "repair": 0, "break": 0, "other": 1}


def test_dry_run_matches_training_rule():
    g = torch.Generator().manual_seed(3)
    probs = torch.softmax(3 * torch.randn(40, 7, generator=g), 1)
    labels = torch.randint(0, 7, (40,), generator=g)
    alpha = torch.rand(40, generator=g)
    new, changed = relabel(probs, labels, alpha, beta=0.7, delta2=0.2)
    # with true = the rule's new labels every change counts as a repair or a break
    true = labels.clone()
    true[changed] = new[changed]
    out = relabel_dry_run(probs.numpy(), labels.numpy(), true.numpy(), alpha.numpy(), 0.7, 0.2)
    assert out["candidates"] == int(changed.sum()) > 0
    assert out["repair"] == int(changed.sum())
    assert out["break"] == 0


def test_dry_run_rejects_bad_shapes():
    with pytest.raises(ShapeError, match="alpha"):
        relabel_dry_run(PROBS, GIVEN, TRUE, ALPHA[:3])
    with pytest.raises(ShapeError, match="probs, given, true"):
        relabel_dry_run(PROBS, GIVEN[:2], TRUE, None)


def test_render_lists_every_epoch():
    row = {
        "epoch": 1,
        "acc_true": 0.5,
        "acc_test": 0.4,
        "fit_flipped": 0.1,
        "alpha_clean": 0.6,
        "alpha_flipped": 0.6,
        "auc_alpha_flipped": 0.5,
        "auc_alpha_wrong": 0.7,
        "auc_loss_flipped": 0.8,
        "relabel_repair": 3,
        "relabel_break": 9,
        "relabel_repair_all": 5,
        "relabel_break_all": 20,
    }
    res = {
        "meta": {"date": "d", "cpu": "c", "torch": "t", "setting": "s", "cpu_time": "x"},
        "runs": {"scn": {"rows": [row, {**row, "epoch": 2}]}, "ce": {"rows": [row]}},
    }
    md = render_diagnosis(res)
    assert md.count("| 1 | 0.500 | 0.400 |") == 2
    assert "| 2 | 0.500" in md
    assert "| 3/9 | 5/20 |" in md


def test_run_one_records_every_epoch_and_matches_independent_numbers(tmp_path):
    from sklearn.metrics import roc_auc_score

    from training.common.config import config_from_dict
    from training.experiments.m2_diagnose import diagnose, run_one
    from training.m2.config import M2Config
    from training.m2.data import build_m2_data

    torch.set_num_threads(1)
    cfg = config_from_dict(
        M2Config,
        {
            "backbone": "smallnet",
            "input_size": 32,
            "importance": {"relabel": False, "warmup_epochs": 1},
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
                "epochs": 2,
                "batch_size": 12,
                "out_dir": str(tmp_path / "r"),
                "progress": False,
            },
        },
    )
    data = build_m2_data(cfg)
    out = run_one(cfg, data)
    assert [r["epoch"] for r in out["rows"]] == [1, 2]
    last = out["rows"][-1]
    # The network read back from the last checkpoint gives the same numbers as the run did.
    row = diagnose(_trained(cfg, data, tmp_path), data, cfg, 2)
    assert row == last
    assert row.keys() == last.keys()
    flipped = data.flipped
    assert 0 < flipped.sum() < flipped.size
    for key in ("acc_true", "acc_test", "auc_alpha_flipped", "auc_loss_flipped"):
        assert row[key] is None or 0.0 <= row[key] <= 1.0
    assert (
        row["relabel_candidates"]
        == row["relabel_repair"] + row["relabel_break"] + row["relabel_other"]
    )
    assert row["relabel_candidates"] <= row["relabel_candidates_all"]
    # AUC of 1 - alpha against scikit-learn on the same alpha
    from training.m2.data import ExpressionBatches
    from training.m2.method import predict_m2

    model = _trained(cfg, data, tmp_path)
    tr = ExpressionBatches(
        data.faces.images[data.train_idx],
        data.train_labels,
        data.faces.labels[data.train_idx],
        cfg.input_size,
        256,
        cfg.mean,
        cfg.std,
        cfg.colour_order,
        train=False,
    )
    pred = predict_m2(model, tr(0, None))
    want = roc_auc_score(flipped.astype(int), 1 - pred["alpha"])
    assert abs(row["auc_alpha_flipped"] - want) < 1e-9
    true = data.faces.labels[data.train_idx]
    assert row["acc_true"] == pytest.approx(float((pred["pred"] == true).mean()))


def _trained(cfg, data, tmp_path):
    """The run's final network, read back from its last checkpoint."""
    from auperf.nets.m2 import M2Net
    from training.common.checkpoint import load_weights

    net = M2Net(cfg.num_classes, cfg.backbone, importance=True)
    load_weights(net, tmp_path / "r" / "checkpoints" / "epoch-0002.safetensors")
    return net
