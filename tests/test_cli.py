"""The auperf command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import auperf
from auperf.cli import main


def test_info_json_matches_build_info():
    res = CliRunner().invoke(main, ["info", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["version"] == auperf.__version__
    assert data["cuda_device_count"] == auperf.build_info()["cuda_device_count"]
    # backends: every registered provider, with a reason exactly where it cannot load
    from auperf import backends, models

    assert set(data["backends"]) == set(backends.unavailable_reasons())
    assert data["backends"]["onnxruntime-cpu"] is None
    assert data["backends"]["torch-cuda"] is not None  # the CPU build of torch
    # models: the shipped demo among them, read from its manifest
    by_path = {m["path"]: m for m in data["models"]}
    demo = models.load_manifest(None)
    assert by_path["demo"]["name"] == demo.name and by_path["demo"]["task"] == "au_occurrence"
    assert by_path["demo"]["bytes"] == sum(
        p.stat().st_size for p in models.DEMO_DIR.iterdir() if p.is_file()
    )
    assert all("error" not in m for m in data["models"]), data["models"]
    assert data["frontends"]["given"] is None


def test_info_table_and_version():
    res = CliRunner().invoke(main, ["info"])
    assert res.exit_code == 0 and "cuda_compiled" in res.output
    res = CliRunner().invoke(main, ["--version"])
    assert res.exit_code == 0 and auperf.__version__ in res.output


def test_unknown_command_fails_with_usage():
    res = CliRunner().invoke(main, ["frobnicate"])
    assert res.exit_code == 2 and "No such command" in res.output


def test_demo_runs_the_shipped_detector_on_rendered_faces_a_clip_and_a_photo():
    res = CliRunner().invoke(main, ["demo", "--faces", "6", "--seed", "3", "--frames", "20"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("model 'm0-smallnet-synth-demo' on onnxruntime-cpu, 6 rendered")
    stills = lines[: lines.index("")]
    assert len([ln for ln in stills if ln[:4].strip().isdigit()]) == 6
    assert "agreement with the renderer's labels" in stills[-1]
    clip = lines[lines.index("") + 1 :]
    assert clip[0].startswith("rendered clip: 20 frames") and "2 faces crossing" in clip[0]
    assert "identity switches: 0" in clip
    tracks = [ln for ln in clip[2:] if ln[:5].strip().isdigit()]
    assert 1 <= len(tracks) <= 2
    assert any(ln.startswith(("skimage astronaut", "photo: skipped")) for ln in lines)


def test_demo_detector_ranks_faces_by_their_true_aus():
    """On rendered faces the demo detector's AU probabilities must rank faces with an AU above
    faces without it (mean ROC AUC over the AUs present), not merely agree on easy negatives."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from auperf.synth import AU_IDS, FaceRenderer, sample_params

    rng = np.random.default_rng(11)
    faces = FaceRenderer(seed=11, size=256).render(sample_params(rng, 96))
    with auperf.Detector(backend="onnxruntime-cpu") as det:
        probs = det.detect(faces.images, faces.landmarks5).probabilities
    aucs = []
    for j, au in enumerate(det.au_ids):
        y = faces.au_occurrence[:, list(AU_IDS).index(au)]
        if 3 <= y.sum() <= len(y) - 3:
            aucs.append(roc_auc_score(y, probs[:, j]))
    assert len(aucs) >= 8
    assert float(np.mean(aucs)) > 0.75, aucs


def test_demo_rejects_unknown_backend():
    res = CliRunner().invoke(main, ["demo", "--faces", "1", "--backend", "nope"])
    assert res.exit_code == 1
    assert res.output.startswith("Error: UnknownProviderError") and "'nope'" in res.output


def test_build_lists_targets_builds_and_reuses_the_cache(tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT-RTX (the test extra) is not installed")
    from auperf.models import DEMO_DIR

    runner = CliRunner()
    res = runner.invoke(main, ["build", "--list-targets"])
    assert res.exit_code == 0 and "m0_tensorrt-fp16_dynamic-1x8x64_sm86" in res.output
    args = [
        "build",
        str(DEMO_DIR),
        "-t",
        "m0_tensorrt-fp32_dynamic-1x8x64_sm80",
        "--cache-dir",
        str(tmp_path),
        "--json",
    ]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    (record,) = json.loads(first.output)
    assert record["cached"] is False and record["precision"] == "fp32"
    engine = Path(record["path"])
    assert engine.is_file() and engine.stat().st_size > 10_000
    second = runner.invoke(main, args)
    assert second.exit_code == 0 and json.loads(second.output)[0]["cached"] is True
    bad = runner.invoke(
        main,
        [
            "build",
            str(DEMO_DIR),
            "-t",
            "m0_tensorrt-fp32_dynamic-1x8x64_sm90",
            "--cache-dir",
            str(tmp_path),
        ],
    )
    assert bad.exit_code == 1 and "cannot build for sm90" in bad.output
    missing = runner.invoke(main, ["build", str(DEMO_DIR)])
    assert missing.exit_code == 2 and "--target" in missing.output
