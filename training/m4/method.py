"""M4 as a :class:`training.common.loop.Method`: frame pairs in, the TCAE loss out.

Batch format (as :class:`training.m4.data.PairSampler` yields it): ``{"source", "target"}``,
``(B, 3, S, S)`` float in ``[0, 1]``. Validation batches are the same; their loss terms are
averaged and logged as ``val_<term>``. The logged ``loss`` of an epoch is the total with that
epoch's weights (:meth:`M4Method.weights_at`); every term is logged unweighted.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from torch import Tensor

from auperf.nets.m4 import TCAENet

from ..common.loop import Method, StepContext
from .config import M4Config
from .losses import M4LossWeights, m4_loss

__all__ = ["M4Method", "build_tcae"]


def build_tcae(cfg: M4Config) -> TCAENet:
    """The untrained :class:`~auperf.nets.m4.TCAENet` of a run configuration."""
    return TCAENet(
        image_size=cfg.image_size,
        backbone=cfg.backbone,
        au_dim=cfg.au_dim,
        pose_dim=cfg.pose_dim,
        decoder_channels=tuple(cfg.decoder_channels),
        max_displacement=cfg.max_displacement or None,
        antisymmetric=cfg.antisymmetric_decoders,
    )


class M4Method(Method):
    """Trains a :class:`~auperf.nets.m4.TCAENet` with the TCAE objective.

    Args:
        cfg: the run configuration.
        model: an existing network (default: :func:`build_tcae`).
    """

    def __init__(self, cfg: M4Config, model: TCAENet | None = None) -> None:
        self.cfg = cfg
        self.model = model if model is not None else build_tcae(cfg)
        self.weights = M4LossWeights(
            sparsity=cfg.lambda_sparsity,
            cycle=cfg.lambda_cycle,
            embedding=cfg.lambda_embedding,
            norm=cfg.embedding_norm,
            detach_targets=cfg.detach_targets,
        )
        self.warmup_weights = dataclasses.replace(
            self.weights, sparsity=0.0, cycle=0.0, embedding=0.0
        )

    def weights_at(self, epoch: int) -> M4LossWeights:
        """The loss weights of training epoch ``epoch`` (1-based): every weight but that of
        ``L_rec`` is 0 during the ``warmup_epochs`` first epochs (reconstruction warm-up)."""
        return self.warmup_weights if epoch <= self.cfg.warmup_epochs else self.weights

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext) -> tuple[Tensor, dict]:
        out = self.model(batch["source"], batch["target"])
        terms = m4_loss(out, batch["source"], batch["target"], self.weights_at(ctx.epoch))
        logs: dict[str, Any] = {k: v for k, v in terms.scalars().items() if k != "loss"}
        logs["max_gap"] = float(self.cfg.curriculum.max_gap(ctx.epoch))
        logs["alpha_au"] = float(out.alpha_au.detach().mean())
        logs["field_au_px"] = float(out.field_au.detach().abs().mean())
        logs["field_pose_px"] = float(out.field_pose.detach().abs().mean())
        return terms.total, logs

    def validation_step(self, batch: dict[str, Tensor]) -> dict[str, float]:
        out = self.model(batch["source"], batch["target"])
        return m4_loss(out, batch["source"], batch["target"], self.weights).scalars()

    def validation_epoch_end(self, outputs: list[dict[str, float]]) -> dict[str, float]:
        if not outputs:
            return {}
        return {k: float(np.mean([o[k] for o in outputs])) for k in outputs[0]}
