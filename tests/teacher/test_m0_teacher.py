"""training.experiments.m0_teacher: the pieces that turn a label folder into M0 data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auperf.labeling import label_media, read_label_dir


@pytest.fixture(scope="module")
def label_dir(tmp_path_factory):
    import cv2

    from auperf.synth import FaceRenderer, sample_params

    root = tmp_path_factory.mktemp("m0t")
    photos = root / "photos"
    photos.mkdir()
    r = FaceRenderer(seed=1, size=160).render(sample_params(np.random.default_rng(2), 4))
    for i, im in enumerate(r.images):
        cv2.imwrite(str(photos / f"p{i}.png"), cv2.cvtColor(im, cv2.COLOR_RGB2BGR))
    label_media([photos], root / "labels", crop_size=64, num_faces=1)
    return root / "labels"


def test_balance_weights_with_unknown_columns_match_the_known_columns_alone():
    from training.m0.losses import au_balance_weights

    g = torch.Generator().manual_seed(0)
    y = (torch.rand(40, 5, generator=g) < 0.3).float()
    y[:, 2] = -1  # an AU the teacher never labels
    y[:5, 0] = -1
    w = au_balance_weights(y, allow_unknown_columns=True)
    assert w[2] == 1.0
    ref = au_balance_weights(y[:, [0, 1, 3, 4]])
    torch.testing.assert_close(w[[0, 1, 3, 4]], ref)
    with pytest.raises(ValueError):
        au_balance_weights(y)  # refused unless asked for


def test_real_faces_realign_and_relabel(label_dir):
    from training.experiments.m0_teacher import real_faces

    t = read_label_dir(label_dir)
    ids = [1, 12, 23, 26]
    images, labels, scores, held, source = real_faces(label_dir, ids, 48, ("p0.png",), "table")
    assert images.shape == (len(t), 3, 48, 48) and images.dtype == np.uint8
    assert held.sum() == 1 and source[held][0].endswith("p0.png")
    cols = [t.au_ids.index(a) for a in ids]
    np.testing.assert_array_equal(labels, t.labels[:, cols])
    _, half, _, _, _ = real_faces(label_dir, ids, 48, ("p0.png",), "half")
    assert (half[:, 2] == -1).all()  # AU23 stays unknown
    known = (t.labels[:, cols] >= 0).any(axis=0)
    np.testing.assert_array_equal(half[:, known], (scores[:, known] >= 0.5).astype(np.int8))


def test_agreement_against_hand_counts():
    from training.experiments.m0_teacher import _agreement

    prob = np.array([[0.9, 0.2, 0.7], [0.1, 0.8, 0.6], [0.6, 0.4, 0.1], [0.2, 0.9, 0.3]])
    y = np.array([[1, -1, 1], [0, -1, 1], [0, -1, 0], [0, -1, 0]], np.int8)
    scores = np.array([[0.8, np.nan, 0.5], [0.1, np.nan, 0.4], [0.3, np.nan, 0.1], [0.2, 0, 0]])
    out = _agreement(prob, [0.5, 0.5, 0.5], y, scores, [1, 23, 12])
    assert set(out["per_au"]) == {"AU1", "AU12"}  # AU23 unknown in every row: not scored
    au1 = out["per_au"]["AU1"]
    # AU1: predictions 1, 0, 1, 0 against 1, 0, 0, 0 -> 3 of 4 agree, F1 = 2 / (2 + 1)
    assert au1["accuracy"] == 0.75 and au1["f1"] == pytest.approx(2 / 3)
    assert au1["auc"] == 1.0  # 0.9 ranks above every negative
    assert out["per_au"]["AU12"]["accuracy"] == 1.0
    assert out["accuracy"] == pytest.approx(7 / 8)
    # ranks 4, 3, 1, 2 against 4, 3, 2, 1: rho = 1 - 6 * 2 / (4 * 15) = 0.8
    assert out["au12_spearman_vs_smile"] == pytest.approx(0.8)


def test_experiment_end_to_end_on_a_tiny_config(label_dir, tmp_path):
    """Rendered clean faces + the label folder as the noisy set, every run for one epoch."""
    import json

    import yaml
    from click.testing import CliRunner

    from training.experiments.m0_teacher import main

    root = Path(__file__).resolve().parents[2]
    cfg = yaml.safe_load((root / "training/configs/m0_teacher.yaml").read_text())
    cfg["input_size"] = 32
    cfg["refine_epochs"] = 1
    cfg["data"]["synth"].update(
        train_identities=6,
        val_identities=3,
        test_identities=3,
        faces_per_identity=4,
        render_size=64,
        augment="off",
    )
    cfg["data"]["cache_dir"] = str(tmp_path / "cache")
    cfg["train"].update(epochs=1, batch_size=16, progress=False)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        [
            "--config",
            str(path),
            "--labels",
            str(label_dir),
            "--held-out",
            "p0.png",
            "--out",
            str(out),
            "--runs",
            str(tmp_path / "runs"),
            "--teacher-thresholds",
            "half",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((out / "m0_teacher_half.json").read_text())
    assert set(data["runs"]) == {"a_synth_only", "b_m0_teacher", "c_bce_union", "demo"}
    s = data["settings"]
    assert (s["synth_train"], s["synth_test"], s["real_held_out"]) == (24, 12, 1)
    assert s["real_train"] == 3
    b = data["runs"]["b_m0_teacher"]
    assert b["refinement"] is not None and 0.0 <= b["test_mean_f1"] <= 1.0
    md = (out / "m0_teacher_half.md").read_text()
    assert "(b) M0, rendered clean + teacher-labelled real noisy" in md
