"""Mixed precision and channels-last on a GPU (skipped with a reason where there is none)."""

from __future__ import annotations

import pytest
import torch
from _training_helpers import RandomFaces, cuda_device

from training.common.config import TrainConfig
from training.common.loop import Trainer
from training.common.seed import seed_everything
from training.m0.config import M0Config
from training.m0.method import M0Method


@pytest.mark.gpu
@pytest.mark.parametrize("amp_dtype", ["bfloat16", "float16"])
def test_trainer_amp_channels_last_on_cuda(tmp_path, amp_dtype):
    cuda_device()
    train = TrainConfig(
        epochs=2,
        batch_size=4,
        out_dir=str(tmp_path),
        progress=False,
        device="cuda",
        amp=True,
        amp_dtype=amp_dtype,
        channels_last=True,
    )
    cfg = M0Config(
        au_ids=[1, 2, 4], au_names=["a", "b", "c"], backbone="resnet18", input_size=32, train=train
    )
    seed_everything(0)
    method = M0Method(cfg)
    trainer = Trainer(method, train, RandomFaces(8, 0), RandomFaces(4, 1))
    assert trainer.use_amp and trainer.channels_last
    hist = trainer.fit()
    assert all(h["train_loss"] is not None for h in hist)
    w = method.model.views[0].backbone.conv1.weight
    assert w.is_cuda and w.is_contiguous(memory_format=torch.channels_last)
    assert w.dtype == torch.float32  # autocast keeps master weights in float32
