"""Evaluation of M4 as the method does it: freeze the encoder, fit a linear classifier per AU
on ``phi``, report per-AU F1; and how much head pose each embedding carries.

- :func:`embed`: frozen encoder -> ``phi (N, D)``, ``psi (N, D')`` float32.
- :func:`au_probe`: per AU, standardised features -> scikit-learn ``LogisticRegression``
  (``class_weight="balanced"``, L2, ``C``) fitted on the training frames, F1 at probability 0.5
  on the test frames (``sklearn.metrics.f1_score``). AUs without both classes in the
  training frames, or without a positive test frame, get NaN and are left out of the mean.
- :func:`pose_probe`: standardised features -> ``Ridge`` per angle (yaw, pitch, roll),
  ``R^2`` on the test frames: the share of pose variance a linear map recovers (its ``mean``
  is over yaw and pitch; the alignment removes roll from the crops).
- :func:`train_supervised_encoder`: the "supervised encoder of the same size" baseline: the
  same :class:`~auperf.nets.m4.TCAEEncoder`, a linear head on ``phi``, BCE on the training
  frames' AU labels.

Labels are the renderer's ground truth (``Clips.au_occurrence``, ``Clips.pose_deg``); they are
used here and never by TCAE training.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from auperf.errors import ShapeError
from auperf.nets.m4 import TCAEEncoder

__all__ = ["embed", "au_probe", "pose_probe", "train_supervised_encoder"]


@torch.no_grad()
def embed(encoder: TCAEEncoder, frames: np.ndarray, batch: int = 256) -> tuple[np.ndarray, ...]:
    """``phi``, ``psi`` of ``(N, 3, S, S)`` uint8 RGB crops (encoder in eval mode, restored)."""
    if frames.ndim != 4 or frames.shape[1] != 3 or frames.dtype != np.uint8:
        raise ShapeError(f"frames: expected (N, 3, S, S) uint8, got {frames.shape} {frames.dtype}")
    was = encoder.training
    encoder.eval()
    phis, psis = [], []
    try:
        for i in range(0, len(frames), batch):
            x = torch.from_numpy(frames[i : i + batch]).float() * (2.0 / 255.0) - 1.0
            phi, psi = encoder(x)
            phis.append(phi.numpy())
            psis.append(psi.numpy())
    finally:
        encoder.train(was)
    return np.concatenate(phis).astype(np.float32), np.concatenate(psis).astype(np.float32)


def au_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    c: float = 1.0,
    max_iter: int = 2000,
) -> dict[str, Any]:
    """Per-AU linear probes (module docstring).

    Args:
        train_x, test_x: ``(N, D)`` features.
        train_y, test_y: ``(N, L)`` bool labels.
        c: inverse L2 strength of the logistic regression.

    Returns:
        ``{"f1": (L,) list with NaN where undefined, "mean_f1": float, "evaluated": [AU indices]}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    xtr, xte = scaler.transform(train_x), scaler.transform(test_x)
    f1 = np.full(train_y.shape[1], np.nan)
    for k in range(train_y.shape[1]):
        ytr, yte = train_y[:, k].astype(int), test_y[:, k].astype(int)
        if ytr.min() == ytr.max() or yte.sum() == 0:
            continue
        clf = LogisticRegression(C=c, class_weight="balanced", max_iter=max_iter)
        clf.fit(xtr, ytr)
        f1[k] = f1_score(yte, clf.predict(xte), zero_division=0)
    ok = np.flatnonzero(np.isfinite(f1))
    return {
        "f1": [None if not np.isfinite(v) else float(v) for v in f1],
        "mean_f1": float(np.mean(f1[ok])) if ok.size else float("nan"),
        "evaluated": ok.tolist(),
    }


def pose_probe(
    train_x: np.ndarray,
    train_pose: np.ndarray,
    test_x: np.ndarray,
    test_pose: np.ndarray,
    *,
    alpha: float = 10.0,
) -> dict[str, float]:
    """``R^2`` of a ridge regression from features to each angle (module docstring).

    Returns:
        ``{"yaw": R^2, "pitch": R^2, "roll": R^2, "mean": mean of yaw and pitch}``. Roll is
        left out of the mean: the 5-point alignment removes in-plane rotation, so the crops
        hold little of it.
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(train_x)
    reg = Ridge(alpha=alpha).fit(scaler.transform(train_x), train_pose)
    pred = reg.predict(scaler.transform(test_x))
    out = {
        name: float(r2_score(test_pose[:, k], pred[:, k]))
        for k, name in enumerate(("yaw", "pitch", "roll"))
    }
    out["mean"] = float(np.mean([out["yaw"], out["pitch"]]))
    return out


def train_supervised_encoder(
    frames: np.ndarray,
    labels: np.ndarray,
    *,
    backbone: str = "smallnet",
    au_dim: int = 256,
    pose_dim: int = 256,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> tuple[TCAEEncoder, dict[str, float]]:
    """A :class:`TCAEEncoder` trained with BCE on AU labels through a linear head on ``phi``.

    Args:
        frames: ``(N, 3, S, S)`` uint8 crops.
        labels: ``(N, L)`` bool AU labels.

    Returns:
        The encoder (eval mode) and ``{"train_time_s", "final_loss"}``.
    """
    torch.manual_seed(seed)
    enc = TCAEEncoder(backbone, au_dim, pose_dim)
    head = nn.Linear(au_dim, labels.shape[1])
    opt = torch.optim.Adam(list(enc.parameters()) + list(head.parameters()), lr=lr)
    pos = labels.mean(axis=0)
    pos_weight = torch.from_numpy(((1 - pos) / np.clip(pos, 1e-3, None)).clip(1, 20)).float()
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    x_all = torch.from_numpy(frames)
    y_all = torch.from_numpy(labels.astype(np.float32))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    loss = torch.zeros(())
    enc.train()
    for _ in range(epochs):
        order = torch.randperm(len(frames), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            x = x_all[idx].float() * (2.0 / 255.0) - 1.0
            phi, _ = enc(x)
            loss = loss_fn(head(phi), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    enc.eval()
    return enc, {
        "train_time_s": round(time.perf_counter() - t0, 1),
        "final_loss": float(loss.detach()),
    }
