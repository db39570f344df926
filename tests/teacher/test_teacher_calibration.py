"""training.experiments.teacher_calibration: fit on half the identities, score on the rest."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from auperf.synth import AU_IDS
from auperf.teacher import Teacher, load_calibration


def test_evaluate_scores_only_the_held_out_half():
    from training.experiments.teacher_calibration import evaluate

    rng = np.random.default_rng(0)
    n = 200
    truth = (rng.random((n, len(AU_IDS))) < 0.3).astype(np.int8)
    scores = np.clip(0.4 * truth + 0.6 * rng.random(truth.shape), 0, 1).astype(np.float32)
    scores[:, AU_IDS.index(23)] = np.nan  # no blendshape
    fit = np.arange(n) % 2 == 0
    rows = evaluate(scores, truth, fit, min_auc=0.6)
    j = AU_IDS.index(12)
    row = next(r for r in rows if r["au"] == 12)
    assert row["n_held_out"] == n // 2
    assert row["auc"] == roc_auc_score(truth[~fit, j], scores[~fit, j])
    assert row["reliable"]
    assert not next(r for r in rows if r["au"] == 23)["reliable"]


def test_script_writes_a_calibration_the_teacher_loads(tmp_path):
    from training.experiments.teacher_calibration import main

    out = tmp_path / "th.json"
    res = CliRunner().invoke(
        main,
        ["--faces", "48", "--size", "128", "--out", str(out), "--results", str(tmp_path / "r")],
    )
    assert res.exit_code == 0, res.output
    cal = load_calibration(out)
    table = json.loads((tmp_path / "r" / "calibration.json").read_text())
    assert table["meta"]["faces_found"] <= 48 and table["meta"]["n_fit"] > 0
    reliable = {r["au"] for r in table["rows"] if r["reliable"]}
    assert set(cal["reliable_aus"]) == reliable
    teacher = Teacher.calibrated(AU_IDS, out)
    assert 23 in teacher.unknown_aus
    assert set(teacher.unknown_aus) == {a for a in AU_IDS if a not in reliable}
