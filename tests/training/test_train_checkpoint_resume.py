"""Checkpoints (safetensors + JSON sidecar) and resuming a run killed mid-training."""

from __future__ import annotations

import json

import pytest
import torch
from _training_helpers import L, RandomFaces
from safetensors.torch import load_file

from auperf.errors import NonFiniteError
from training.common.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from training.common.config import TrainConfig
from training.common.loop import Method, Trainer
from training.common.seed import seed_everything
from training.m0.config import M0Config
from training.m0.method import M0Method


def _cfg(out_dir, epochs=2) -> M0Config:
    train = TrainConfig(
        seed=11,
        epochs=epochs,
        batch_size=4,
        lr=1e-3,
        lr_schedule="cosine",
        out_dir=str(out_dir),
        progress=False,
        device="cpu",
    )
    return M0Config(
        au_ids=[1, 2, 4], au_names=["a", "b", "c"], backbone="smallnet", input_size=32, train=train
    )


def _method(cfg: M0Config, init_seed: int) -> M0Method:
    seed_everything(init_seed)
    m = M0Method(cfg)
    m.set_balance_weights(RandomFaces(8, 0).clean, RandomFaces(8, 0).noisy)
    return m


class Killed(RuntimeError):
    pass


def test_resume_after_kill_is_bit_identical(tmp_path):
    train, val = RandomFaces(8, 0), RandomFaces(4, 1)

    cfg_a = _cfg(tmp_path / "a")
    ref = _method(cfg_a, 5)
    hist_a = Trainer(ref, cfg_a.train, train, val).fit()
    assert [h["epoch"] for h in hist_a] == [1, 2]

    cfg_b = _cfg(tmp_path / "b")
    victim = _method(cfg_b, 5)
    step = victim.training_step

    def dying_step(batch, ctx):
        if ctx.epoch == 2 and ctx.step == 3:  # the middle of epoch 2 (2 steps per epoch)
            raise Killed("power cut")
        return step(batch, ctx)

    victim.training_step = dying_step
    with pytest.raises(Killed):
        Trainer(victim, cfg_b.train, train, val).fit()
    assert [e for e, _ in list_checkpoints(tmp_path / "b" / "checkpoints")] == [1]

    # A new process: different initial weights, then resume from the epoch-1 checkpoint.
    resumed = _method(cfg_b, 999)
    hist_b = Trainer(resumed, cfg_b.train, train, val).fit()
    assert [h["epoch"] for h in hist_b] == [2]

    sa, sb = ref.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert torch.equal(ref.alpha_clean, resumed.alpha_clean)

    lines = [json.loads(s) for s in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [1, 2]
    assert lines[1]["train_loss"] == hist_a[1]["train_loss"]
    for key in ("train_clean", "train_noisy", "train_mv", "train_cons", "val_mean_f1", "lr"):
        assert key in lines[1]


class TinyMethod(Method):
    def __init__(self):
        self.model = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 1)
        )

    def training_step(self, batch, ctx):
        return self.model(batch[0]).pow(2).mean()


def test_checkpoint_round_trip_without_pickle(tmp_path):
    torch.manual_seed(0)
    m = TinyMethod()
    opt = torch.optim.Adam(m.model.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        m.model(torch.randn(5, 4)).sum().backward()
        opt.step()
    path = save_checkpoint(
        tmp_path,
        4,
        m.model,
        opt,
        extra_tensors={"w": torch.arange(3.0)},
        extra_state={"stage": "refine"},
        metrics={"f1": 0.5},
    )
    assert path.name == "epoch-0004.safetensors"
    keys = set(load_file(str(path)))  # plain safetensors
    assert any(k.startswith("optimizer.state.0.exp_avg") for k in keys)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["optimizer"]["param_groups"][0]["lr"] == 1e-2

    torch.manual_seed(1)
    m2 = TinyMethod()
    opt2 = torch.optim.Adam(m2.model.parameters(), lr=0.5)
    info = load_checkpoint(path, m2.model, opt2)
    assert (
        info.epoch == 4 and info.extra_state == {"stage": "refine"} and info.metrics == {"f1": 0.5}
    )
    assert torch.equal(info.extra_tensors["w"], torch.arange(3.0))
    for a, b in zip(m.model.state_dict().values(), m2.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s2["param_groups"][0]["lr"] == 1e-2 and s2["param_groups"][0]["betas"] == (0.9, 0.999)
    for pid in s1["state"]:
        for name, v in s1["state"][pid].items():
            assert torch.equal(v, s2["state"][pid][name])

    save_weights(m.model, tmp_path / "w.safetensors")
    m3 = TinyMethod()
    load_weights(m3.model, tmp_path / "w.safetensors")
    load_weights(m3.model, path)  # a checkpoint works too
    assert torch.equal(m3.model[0].weight, m.model[0].weight)


def test_incomplete_and_corrupt_checkpoints(tmp_path):
    m = TinyMethod()
    save_checkpoint(tmp_path, 1, m.model)
    p2 = save_checkpoint(tmp_path, 2, m.model)
    p2.with_suffix(".json").unlink()  # killed between the two files
    assert latest_checkpoint(tmp_path).name == "epoch-0001.safetensors"
    p1 = latest_checkpoint(tmp_path)
    data = bytearray(p1.read_bytes())
    data[-1] ^= 0xFF
    p1.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256"):
        load_checkpoint(p1, m.model)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(p2, m.model)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_weights(torch.nn.Linear(2, 2), p1)


def test_keeps_last_checkpoints_and_rejects_nan(tmp_path):
    class NanMethod(TinyMethod):
        def training_step(self, batch, ctx):
            loss = super().training_step(batch, ctx)
            return loss * float("nan") if ctx.epoch == 3 else loss

    data = torch.utils.data.TensorDataset(torch.randn(6, 4))
    cfg = TrainConfig(
        epochs=3,
        batch_size=3,
        out_dir=str(tmp_path),
        progress=False,
        device="cpu",
        keep_checkpoints=1,
    )
    with pytest.raises(NonFiniteError, match="epoch 3, step 4"):
        Trainer(NanMethod(), cfg, data).fit()
    assert [e for e, _ in list_checkpoints(tmp_path / "checkpoints")] == [2]


def test_refinement_stage_trains_only_noisy_heads_and_resumes(tmp_path):
    from training.m0.losses import refine_noisy_labels
    from training.m0.method import predict_m0

    train = RandomFaces(8, 0)
    cfg = _cfg(tmp_path / "r", epochs=2)
    method = _method(cfg, 5)
    pred = predict_m0(
        method.model, [train[i] | {"image": train.x[i : i + 1]} for i in range(0, 8, 4)]
    )
    assert pred["prob"].shape == (2, L) and pred["noisy_prob"].shape == (2, 2, L)
    p = torch.from_numpy(pred["noisy_prob"])
    refined = refine_noisy_labels(train.noisy[:2], p[:, 0], p[:, 1], gamma=0.3)
    assert set(refined.unique().tolist()) <= {-1.0, 0.0, 1.0}

    method.set_trainable("noisy_heads")
    before = {k: v.clone() for k, v in method.model.state_dict().items()}
    cfg.train.epochs = 1
    Trainer(method, cfg.train, train).fit()
    after = method.model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".noisy_head." in k for k in changed)

    # Resume (epoch 2) with a fresh method: the stage comes back from the checkpoint.
    cfg.train.epochs = 2
    fresh = _method(cfg, 7)
    Trainer(fresh, cfg.train, train).fit()
    assert fresh.trainable == "noisy_heads"
    assert torch.equal(
        fresh.model.views[0].backbone.stem[0].weight, before["views.0.backbone.stem.0.weight"]
    )


def test_callable_data_and_metrics_log(tmp_path):
    seen = []

    def batches(epoch, gen):
        seen.append(epoch)
        x = torch.randn(10, 4, generator=gen)
        return [(x[:5],), (x[5:],)]

    cfg = TrainConfig(epochs=2, out_dir=str(tmp_path), progress=False, device="cpu")
    hist = Trainer(TinyMethod(), cfg, batches, run_config=cfg).fit()
    assert seen == [1, 2]
    assert [h["train_samples"] for h in hist] == [10, 10]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2]
    assert (tmp_path / "config.yaml").is_file()
    assert Trainer(TinyMethod(), cfg, batches).fit() == []  # already done: nothing to run
