"""The probes of the M4 evaluation on data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import ShapeError
from auperf.nets.m4 import TCAEEncoder
from training.m4.evaluate import au_probe, embed, pose_probe, train_supervised_encoder


def test_au_probe_separable_and_undefined_aus():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 5))
    y = np.stack([x[:, 0] > 0.3, x[:, 1] + x[:, 2] > 0, np.zeros(400, bool)], 1)
    res = au_probe(x[:300], y[:300], x[300:], y[300:])
    assert res["f1"][0] > 0.9 and res["f1"][1] > 0.9
    assert res["f1"][2] is None and res["evaluated"] == [0, 1]
    assert res["mean_f1"] == pytest.approx(np.mean(res["f1"][:2]))
    noise = au_probe(rng.normal(size=(300, 5)), y[:300], rng.normal(size=(100, 5)), y[300:])
    assert noise["mean_f1"] < res["mean_f1"] - 0.2


def test_pose_probe_linear_and_unrelated_features():
    rng = np.random.default_rng(1)
    pose = rng.normal(size=(300, 3)) * [10, 5, 2]
    feats = np.concatenate([pose @ rng.normal(size=(3, 3)), rng.normal(size=(300, 4))], 1)
    good = pose_probe(feats[:200], pose[:200], feats[200:], pose[200:], alpha=1e-3)
    assert good["yaw"] > 0.99 and good["pitch"] > 0.99
    assert good["mean"] == pytest.approx((good["yaw"] + good["pitch"]) / 2)
    bad = pose_probe(rng.normal(size=(200, 6)), pose[:200], rng.normal(size=(100, 6)), pose[200:])
    assert bad["mean"] < 0.1


def test_embed_matches_encoder_and_restores_mode():
    torch.manual_seed(0)
    enc = TCAEEncoder("smallnet", 6, 4).train()
    frames = np.random.default_rng(2).integers(0, 256, (5, 3, 32, 32), dtype=np.uint8)
    phi, psi = embed(enc, frames, batch=2)
    assert enc.training
    with torch.no_grad():
        ref = enc.eval()(torch.from_numpy(frames).float() / 127.5 - 1.0)
    np.testing.assert_allclose(phi, ref[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(psi, ref[1].numpy(), atol=1e-5)
    with pytest.raises(ShapeError, match="frames"):
        embed(enc, frames.astype(np.float32))


def test_supervised_encoder_trains():
    frames = np.random.default_rng(3).integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    labels = np.zeros((8, 2), bool)
    labels[::2, 0] = True
    enc, info = train_supervised_encoder(frames, labels, au_dim=4, pose_dim=4, epochs=1)
    assert not enc.training and np.isfinite(info["final_loss"])
