"""M0's semi-supervised variant in the data pipeline and the train command, on a tiny
synthetic set: withheld labels never reach the loss, unlabelled faces are trained on the other
view's pseudo-labels, the network has no noisy heads, and ``train`` runs and exports."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from auperf.errors import ParameterError
from auperf.manifest import Manifest
from auperf.nets.m0 import M0Inference, M0Net
from training.common.config import ConfigError, TrainConfig, load_config, save_config
from training.data import TRAIN, TrainBatches, build_m0_data
from training.experiments.m0_semi import BEGIN, END, RUNS, render_table
from training.m0.__main__ import main as cli
from training.m0.config import M0Config
from training.m0.losses import clean_loss
from training.m0.method import M0Method
from training.m0.train import build_variant, train_m0

ROOT = Path(__file__).resolve().parents[2]
AUS = [1, 4, 12, 25]
SYNTH = {
    "render_size": 64,
    "train_identities": 4,
    "val_identities": 2,
    "test_identities": 2,
    "faces_per_identity": 3,
}


def _cfg(cache: Path, out: Path, variant: str = "semi_supervised", **data) -> M0Config:
    d = {
        "synth": SYNTH,
        "cache_dir": str(cache),
        "aligned_size": 36,
        "accurate_fraction": 1.0,
        "unlabelled_fraction": 0.5,
        **data,
    }
    return M0Config(
        au_ids=AUS,
        au_names=[f"AU{a}" for a in AUS],
        backbone="smallnet",
        input_size=32,
        variant=variant,
        noisy_heads=False,
        data=d,
        train=TrainConfig(epochs=1, batch_size=4, progress=False, out_dir=str(out)),
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("semi_cache")


@pytest.fixture(scope="module")
def data(cache, tmp_path_factory):
    return build_m0_data(_cfg(cache, tmp_path_factory.mktemp("semi_run")))


def test_split_withholds_whole_identities(data, cache, tmp_path):
    train = data.faces.indices(TRAIN)
    assert data.unlabelled.size == 6 and data.accurate.size == 6 and data.inaccurate.size == 0
    assert sorted(np.concatenate([data.accurate, data.unlabelled])) == sorted(train)
    subj = data.faces.subject
    assert not set(subj[data.unlabelled]) & set(subj[data.accurate])
    # true labels of the unlabelled faces are kept for evaluation only
    np.testing.assert_array_equal(
        data.given_labels[data.unlabelled], data.true_labels[data.unlabelled]
    )
    # no withheld labels: the accurate / inaccurate split is the one without the key
    cfg0 = _cfg(cache, tmp_path, accurate_fraction=0.5, unlabelled_fraction=0.0)
    d0 = build_m0_data(cfg0)
    legacy = dict(cfg0.data)
    del legacy["unlabelled_fraction"]
    d1 = build_m0_data(dataclasses.replace(cfg0, data=legacy))
    assert d0.unlabelled.size == 0
    np.testing.assert_array_equal(d0.accurate, d1.accurate)
    np.testing.assert_array_equal(d0.inaccurate, d1.inaccurate)


def test_semi_batches_hide_labels_and_flag_unlabelled(data):
    batches = list(data.train_batches("semi")(0, torch.Generator().manual_seed(0)))
    assert all("noisy_labels" not in b for b in batches)
    flags = torch.cat([b["unlabelled"] for b in batches])
    labels = torch.cat([b["clean_labels"] for b in batches])
    assert flags.dtype == torch.bool and int(flags.sum()) == data.unlabelled.size
    assert (labels[flags] == -1).all()  # hidden
    assert (labels[~flags] >= 0).all()  # labelled faces keep their labels
    assert batches[0]["image"].shape[1:] == (2, 3, 32, 32)
    # the other label modes do not train on the unlabelled faces
    for mode in ("m0", "merged"):
        n = sum(b["clean_labels"].shape[0] for b in data.train_batches(mode)(0, torch.Generator()))
        assert n == data.accurate.size


def test_train_batches_refuse_leaked_labels():
    images = torch.zeros(3, 3, 36, 36, dtype=torch.uint8)
    labels = torch.tensor([[1.0, 0.0], [-1.0, -1.0], [0.0, -1.0]])
    kw = dict(input_size=32, batch_size=2, mean=(0.0,) * 3, std=(1.0,) * 3)
    with pytest.raises(ParameterError, match="row 2 is an unlabelled face"):
        TrainBatches(images, labels, None, unlabelled=torch.tensor([False, True, True]), **kw)
    with pytest.raises(ParameterError, match=r"unlabelled: expected shape \(3,\)"):
        TrainBatches(images, labels, None, unlabelled=torch.tensor([False, True]), **kw)


def _losses(data, method: M0Method, seed: int = 3) -> list[dict[str, float]]:
    out = []
    method.model.train()
    for batch in data.train_batches("semi")(0, torch.Generator().manual_seed(seed)):
        with torch.no_grad():
            total, parts = method.training_step(batch, None)
        out.append({"total": float(total), **{k: float(v) for k, v in parts.items()}})
    return out


def test_withheld_labels_do_not_change_the_loss(data):
    cfg = _cfg(Path("."), Path("."))
    run_cfg, model, mode, _ = build_variant(cfg)
    assert mode == "semi" and isinstance(model, M0Net) and not model.has_noisy_heads
    assert run_cfg.lambda_noisy == 0.0 and not run_cfg.noisy_heads
    torch.manual_seed(0)
    method = M0Method(run_cfg, model)
    clean, _ = data.train_label_matrices("semi")
    method.set_balance_weights(torch.from_numpy(clean))
    # balance weights come from the labelled faces only
    assert (clean[data.accurate.size :] == -1).all()
    ref = _losses(data, method)

    flipped = data.true_labels.copy()
    flipped[data.unlabelled] = 1 - flipped[data.unlabelled]
    other = dataclasses.replace(data, true_labels=flipped, given_labels=flipped.copy())
    assert _losses(other, method) == ref  # bit for bit

    # not vacuous: flipping a labelled face's labels does change it
    changed = data.true_labels.copy()
    changed[data.accurate] = 1 - changed[data.accurate]
    third = dataclasses.replace(data, true_labels=changed, given_labels=changed.copy())
    assert _losses(third, method) != ref


def test_pseudo_labels_follow_the_other_view(data):
    run_cfg, model, _, _ = build_variant(_cfg(Path("."), Path(".")))
    torch.manual_seed(1)
    method = M0Method(run_cfg, model)
    model.train()
    batch = next(iter(data.train_batches("semi")(0, torch.Generator().manual_seed(0))))
    # make every face of this batch unlabelled: only pseudo-labels and L_cons remain
    batch["clean_labels"] = torch.full_like(batch["clean_labels"], -1.0)
    batch["unlabelled"] = torch.ones_like(batch["unlabelled"])
    _, parts = method.training_step(batch, None)
    z = model(batch["image"]).clean.detach()  # train mode: the step's batch statistics
    expected = clean_loss(z[:, 0], (z[:, 1] >= 0).float()) + clean_loss(
        z[:, 1], (z[:, 0] >= 0).float()
    )
    torch.testing.assert_close(parts["clean"].detach(), expected)

    # view 2 certain that every AU is active -> view 1's targets are all 1, and vice versa
    with torch.no_grad():
        model.views[1].clean_head.bias.fill_(50.0)
        model.views[0].clean_head.bias.fill_(-50.0)
    _, parts = method.training_step(batch, None)
    with torch.no_grad():
        z = model(batch["image"]).clean
    expected = clean_loss(z[:, 0], torch.ones_like(z[:, 0])) + clean_loss(
        z[:, 1], torch.zeros_like(z[:, 1])
    )
    torch.testing.assert_close(parts["clean"].detach(), expected, rtol=1e-4, atol=1e-4)


def test_semi_config_errors(cache, tmp_path):
    with pytest.raises(ConfigError, match=r"data.accurate_fraction: .*semi_supervised.*got 0.5"):
        train_m0(_cfg(cache, tmp_path / "a", accurate_fraction=0.5), export=False)
    with pytest.raises(ConfigError, match=r"data.unlabelled_fraction: .*expected a value > 0"):
        train_m0(_cfg(cache, tmp_path / "b", unlabelled_fraction=0.0), export=False)
    with pytest.raises(ConfigError, match=r"unlabelled_fraction: expected a value in \[0, 1\)"):
        build_m0_data(_cfg(cache, tmp_path / "c", unlabelled_fraction=1.0))
    p = tmp_path / "bad.yaml"
    p.write_text("variant: semi\n")
    with pytest.raises(ConfigError, match="semi_supervised"):
        load_config(p, M0Config)


def test_train_command_semi_smoke(cache, tmp_path):
    """``python -m training.m0 train`` with the variant: trains, tunes, exports ONNX, weights
    and manifest; the export command rebuilds the same network from the checkpoint."""
    cfg = _cfg(cache, tmp_path / "run")
    path = tmp_path / "semi.yaml"
    save_config(cfg, path)
    r = subprocess.run(
        [sys.executable, "-m", "training.m0", "train", "--config", str(path), "--name", "semi"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "test mean F1" in r.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["variant"] == "semi_supervised" and "refinement" not in res
    assert res["data"]["unlabelled"] == 6 and res["data"]["inaccurate"] == 0
    pl = res["pseudo_labels"]
    assert pl["faces"] == 6 and 0.0 <= pl["agreement_view1_targets"] <= 1.0
    exp = tmp_path / "run" / "export"
    m = Manifest.load(exp / "semi.json")
    m.verify_model()
    assert "6 training faces with labels withheld (trained on with pseudo-labels)" in (
        m.training.data
    )
    assert (exp / "semi.safetensors").is_file()

    # export from the checkpoint: the variant's network (no noisy heads) loads strictly
    ckpt = sorted((tmp_path / "run" / "checkpoints").glob("epoch-*.safetensors"))[-1]
    r2 = CliRunner().invoke(
        cli,
        ["export", "--config", str(path), "--weights", str(ckpt), "--out", str(tmp_path / "x")],
    )
    assert r2.exit_code == 0, r2.output
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    a = ort.InferenceSession(str(exp / "semi.onnx"), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(tmp_path / "x" / "m0.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(
        a.run(None, {"image": x})[0], b.run(None, {"image": x})[0], atol=1e-5
    )

    # the torch backend's weights give the ONNX output
    from auperf.backends.torch import build_network, load_weights

    net = build_network(m)
    load_weights(net, exp / "semi.safetensors")
    with torch.no_grad():
        got = M0Inference(net.eval())(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, a.run(None, {"image": x})[0], atol=1e-4)


def test_semi_table_generated_and_readme_has_markers(tmp_path):
    run = {"test_mean_f1": 0.4, "test_mean_auc": 0.7, "val_mean_f1": 0.4, "train_time_s": 60.0}
    runs = {}
    for name, variant, withheld in RUNS:
        runs[name] = {
            **run,
            "labelled_faces": 10 if withheld else 20,
            "unlabelled_faces_used": 10 if variant == "semi_supervised" else 0,
        }
    runs["semi_supervised"]["test_mean_f1"] = 0.45
    runs["all_labels"]["test_mean_f1"] = 0.5  # the reference is never bold
    runs["semi_supervised"]["pseudo_labels"] = {
        "faces": 10,
        "threshold": 0.5,
        "agreement_view1_targets": 0.8,
        "agreement_view2_targets": 0.81,
        "views_agree": 0.9,
        "positive_rate_targets": 0.1,
        "positive_rate_true": 0.2,
    }
    results = {
        "runs": runs,
        "settings": {
            "au_ids": AUS,
            "unlabelled_faces": 10,
            "unlabelled_identities": 2,
            "train_identities": 4,
            "unlabelled_fraction": 0.5,
            "labelled_faces": 10,
            "epochs": 1,
            "batch_size": 4,
            "backbone": "smallnet",
            "input_size": 32,
            "seed": 0,
            "val_faces": 6,
            "test_faces": 6,
        },
        "machine": {"cpu": "x", "threads": 1, "train_time_min": 4.0},
    }
    table = render_table(results)
    assert "| **0.450 (0.700)** |" in table and "**0.500" not in table
    assert "0.800 (view 1's targets, from view 2)" in table
    assert "0.100 of the pseudo-labels say active, against 0.200" in table
    readme = (ROOT / "training" / "README.md").read_text()
    assert readme.index(BEGIN) < readme.index(END)
