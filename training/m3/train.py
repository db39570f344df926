"""Training of the three M3 networks on rendered, aligned faces.

- :func:`train_parser`: cross-entropy on the M3 classes (renderer masks, ``Augment.realistic()``
  images plus a random brightness/contrast change).
- :func:`train_imitator`: ``L_G = L1(G(x), y) + w * sum_l mean (F_l(G(x)) - F_l(y))^2`` with the
  trained parser's first three feature maps as the perceptual features (frozen).
- :func:`train_predictor`: L1 between predicted and true parameters (roll excluded).

All use Adam with a cosine learning-rate decay, seeded by ``training.common.seed``. Each returns
the trained network (eval mode, on the CPU) and a log: one dict per ``log_every`` steps.
Images enter the networks as ``(N, 3, S, S)`` float32 ``pixel / 255``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from auperf.estimator import ROLL_INDEX
from auperf.nets.m3 import Imitator, Parser, Predictor

from ..common.seed import seed_everything
from .config import ImitatorConfig, NetConfig

__all__ = ["train_parser", "train_imitator", "train_predictor", "to_tensor"]

log = logging.getLogger("auperf.training.m3")


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """``(N, S, S, 3)`` uint8 -> ``(N, 3, S, S)`` float32 in ``[0, 1]``."""
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float() / 255.0


def _loop(
    net: torch.nn.Module,
    cfg: NetConfig,
    n: int,
    loss_fn: Callable[[np.ndarray], tuple[torch.Tensor, dict]],
    seed: int,
    log_every: int,
    name: str,
) -> list[dict]:
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr)
    history: list[dict] = []
    order = rng.permutation(n)
    pos = 0
    t0 = time.process_time()
    net.train()
    for it in range(cfg.steps):
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * it / cfg.steps))
        for g in opt.param_groups:
            g["lr"] = lr
        if pos + cfg.batch_size > n:
            order, pos = rng.permutation(n), 0
        idx = np.sort(order[pos : pos + cfg.batch_size])
        pos += cfg.batch_size
        loss, parts = loss_fn(idx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if it % log_every == 0 or it == cfg.steps - 1:
            rec = {"net": name, "step": it, "lr": lr, "loss": float(loss.detach()), **parts}
            rec["cpu_s"] = round(time.process_time() - t0, 2)
            history.append(rec)
            log.info("%s", rec)
    net.eval()
    return history


def train_parser(
    data: dict[str, np.ndarray], size: int, cfg: NetConfig, seed: int = 0, log_every: int = 50
) -> tuple[Parser, list[dict]]:
    """Train the face parser on ``data["images"]`` / ``data["labels"]``."""
    torch.manual_seed(seed)
    net = Parser(size, width=cfg.width)
    images, labels = data["images"], data["labels"]
    gen = torch.Generator().manual_seed(seed)

    def loss_fn(idx):
        y = to_tensor(images[idx])
        b = len(idx)
        gain = 1.0 + 0.3 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)
        bias = 0.1 * (torch.rand(b, 1, 1, 1, generator=gen) - 0.5)
        y = (y * gain + bias).clamp(0, 1)
        t = torch.from_numpy(labels[idx].astype(np.int64))
        logits = net(y)
        loss = F.cross_entropy(logits, t)
        acc = float((logits.argmax(1) == t).float().mean())
        return loss, {"pixel_acc": acc}

    return net, _loop(net, cfg, len(images), loss_fn, seed, log_every, "parser")


def train_imitator(
    data: dict[str, np.ndarray],
    size: int,
    cfg: ImitatorConfig,
    parser: Parser,
    seed: int = 0,
    log_every: int = 50,
) -> tuple[Imitator, list[dict]]:
    """Train G on ``(data["params"], data["images"])`` with L1 + parser-feature perceptual loss."""
    torch.manual_seed(seed)
    net = Imitator(size, width=cfg.width, min_width=cfg.min_width, arch=cfg.arch)
    for p in parser.parameters():
        p.requires_grad_(False)
    parser.eval()
    images, params = data["images"], data["params"]

    def loss_fn(idx):
        y = to_tensor(images[idx])
        x = torch.from_numpy(params[idx])
        g = net(x)
        l1 = (g - y).abs().mean()
        _, fg = parser.features(g)
        with torch.no_grad():
            _, fy = parser.features(y)
        perc = sum(((a - b) ** 2).mean() for a, b in zip(fg, fy, strict=True))
        return l1 + cfg.perceptual_weight * perc, {
            "l1": float(l1.detach()),
            "perceptual": float(perc.detach()),
        }

    return net, _loop(net, cfg, len(images), loss_fn, seed, log_every, "imitator")


def train_predictor(
    data: dict[str, np.ndarray], size: int, cfg: NetConfig, seed: int = 0, log_every: int = 50
) -> tuple[Predictor, list[dict]]:
    """Train the amortised predictor image -> parameters (L1, roll dim excluded)."""
    torch.manual_seed(seed)
    net = Predictor(size, width=cfg.width)
    images, params = data["images"], data["params"]
    keep = torch.ones(params.shape[1])
    keep[ROLL_INDEX] = 0.0

    def loss_fn(idx):
        y = to_tensor(images[idx])
        x = torch.from_numpy(params[idx])
        err = (net(y) - x).abs() * keep
        loss = err.sum(1).mean() / keep.sum()
        return loss, {"mae": float(loss.detach())}

    return net, _loop(net, cfg, len(images), loss_fn, seed, log_every, "predictor")
