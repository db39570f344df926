"""M0 as a :class:`training.common.loop.Method`: batches in, losses out; prediction helpers.

Batch format (a dict of tensors, as the data pipeline yields it):

- ``"image"``: ``(B, 3, H, W)`` float, normalised (both views see it), or ``(B, 2, 3, H, W)``
  (one augmentation per view);
- ``"clean_labels"``: ``(B, L)`` accurate labels, -1 where unknown (all -1 for faces of the
  inaccurately labelled and unlabelled sets);
- ``"noisy_labels"`` (optional): ``(B, L)`` inaccurate labels, -1 where unknown;
- ``"unlabelled"`` (optional): ``(B,)`` bool, faces that get pseudo-labels (semi-supervised
  variant).

Validation batches need ``"image"`` and ``"clean_labels"``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from auperf.errors import ParameterError, ShapeError
from auperf.nets.m0 import M0Net

from ..common.config import TrainConfig
from ..common.loop import Method, StepContext, build_optimizer, move_to_device
from ..common.metrics import evaluate_occurrence
from .config import M0Config
from .losses import M0LossWeights, au_balance_weights, m0_loss

__all__ = ["M0Method", "predict_m0"]


class M0Method(Method):
    """Trains an :class:`~auperf.nets.m0.M0Net` with the M0 objective.

    Args:
        cfg: the run configuration.
        model: an existing network (default: built from ``cfg``).

    Attributes:
        model: the network.
        alpha_clean, alpha_noisy: ``(L,)`` per-AU balance weights (all 1 until
            :meth:`set_balance_weights` is called); saved in checkpoints.
        trainable: ``"all"`` or ``"noisy_heads"`` (label-refinement retraining).
    """

    def __init__(self, cfg: M0Config, model: M0Net | None = None) -> None:
        self.cfg = cfg
        self.model = (
            model if model is not None else M0Net(cfg.num_aus, cfg.backbone, cfg.noisy_heads)
        )
        if self.model.num_aus != cfg.num_aus:
            raise ShapeError(f"model: has {self.model.num_aus} AUs, config has {cfg.num_aus}")
        self.weights = M0LossWeights(cfg.lambda_noisy, cfg.lambda_mv, cfg.lambda_cons)
        self.alpha_clean = torch.ones(cfg.num_aus)
        self.alpha_noisy = torch.ones(cfg.num_aus)
        self.trainable = "all"

    # -- set-up ----------------------------------------------------------------------------
    def set_balance_weights(
        self, clean_labels: Tensor | None = None, noisy_labels: Tensor | None = None
    ) -> None:
        """Per-AU balance weights from the training labels (``(N, L)``, -1 unknown), when
        ``cfg.balance_weights`` is on."""
        if not self.cfg.balance_weights:
            return
        if clean_labels is not None:
            self.alpha_clean = au_balance_weights(torch.as_tensor(clean_labels))
        if noisy_labels is not None:
            # A teacher's noisy labels may leave whole AUs unknown (masked in the loss).
            self.alpha_noisy = au_balance_weights(
                torch.as_tensor(noisy_labels), allow_unknown_columns=True
            )

    def set_trainable(self, scope: str) -> None:
        """``"all"``: train everything; ``"noisy_heads"``: only the noisy heads (refinement).

        Takes effect for the optimizer built next (:meth:`configure_optimizer`)."""
        if scope not in ("all", "noisy_heads"):
            raise ParameterError(f"scope: expected 'all' or 'noisy_heads', got {scope!r}")
        self.trainable = scope
        noisy = {id(p) for p in self.model.noisy_head_parameters()}
        for p in self.model.parameters():
            p.requires_grad_(scope == "all" or id(p) in noisy)

    def configure_optimizer(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        return build_optimizer(self.model.parameters(), cfg)

    def on_epoch_start(self, epoch: int) -> None:
        # Frozen backbones keep their batch-norm statistics while only the noisy heads train.
        if self.trainable == "noisy_heads":
            for view in self.model.views:
                view.backbone.eval()

    # -- steps -----------------------------------------------------------------------------
    def training_step(
        self, batch: dict[str, Tensor], ctx: StepContext
    ) -> tuple[Tensor, dict[str, Tensor]]:
        out = self.model(batch["image"])
        has_noisy = self.model.has_noisy_heads and "noisy_labels" in batch
        dev = out.clean.device
        terms = m0_loss(
            out.clean.float(),
            tuple(w.float() for w in self.model.clean_head_matrices()),
            batch["clean_labels"],
            noisy_logits=out.noisy.float() if has_noisy else None,
            noisy_labels=batch["noisy_labels"] if has_noisy else None,
            unlabelled=batch.get("unlabelled"),
            alpha_clean=self.alpha_clean.to(dev),
            alpha_noisy=self.alpha_noisy.to(dev),
            weights=self.weights,
            pseudo_threshold=self.cfg.pseudo_threshold,
        )
        return terms.total, {
            "clean": terms.clean,
            "noisy": terms.noisy,
            "mv": terms.mv,
            "cons": terms.cons,
        }

    def validation_step(self, batch: dict[str, Tensor]) -> tuple[np.ndarray, np.ndarray]:
        logits = self.model(batch["image"]).clean.float()
        probs = torch.sigmoid(logits.mean(dim=1))
        return probs.cpu().numpy(), batch["clean_labels"].cpu().numpy()

    def validation_epoch_end(self, outputs: list[Any]) -> dict[str, float]:
        if not outputs:
            return {}
        probs = np.concatenate([o[0] for o in outputs])
        labels = np.concatenate([o[1] for o in outputs])
        res = evaluate_occurrence(labels, probs, 0.5, [f"AU{i}" for i in self.cfg.au_ids])
        flat = {"mean_f1": res["mean_f1"], "mean_auc": res["mean_auc"]}
        flat.update({f"f1_{k}": v for k, v in res["f1"].items()})
        return flat

    # -- state -----------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, Tensor]:
        return {"alpha_clean": self.alpha_clean, "alpha_noisy": self.alpha_noisy}

    def state_json(self) -> dict[str, Any]:
        return {"trainable": self.trainable}

    def load_state(self, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
        if "alpha_clean" in tensors:
            self.alpha_clean = tensors["alpha_clean"].float()
        if "alpha_noisy" in tensors:
            self.alpha_noisy = tensors["alpha_noisy"].float()
        if state.get("trainable", "all") != self.trainable:
            self.set_trainable(state["trainable"])


@torch.no_grad()
def predict_m0(
    model: M0Net, batches: Iterable[dict[str, Tensor]], device: str | torch.device = "cpu"
) -> dict[str, np.ndarray]:
    """Run a trained network over batches (``"image"`` key) in eval mode.

    Returns:
        ``"prob"``: fused clean probabilities ``sigmoid(mean_t z_clean^t)`` ``(N, L)``;
        ``"clean_logits"``: ``(N, 2, L)``; ``"noisy_prob"``: per-view noisy probabilities
        ``(N, 2, L)`` (absent without noisy heads), the input of
        :func:`training.m0.losses.refine_noisy_labels`.
    """
    model.eval()
    device = torch.device(device)
    clean, noisy = [], []
    for batch in batches:
        out = model(move_to_device(batch["image"], device))
        clean.append(out.clean.float().cpu())
        if out.noisy is not None:
            noisy.append(torch.sigmoid(out.noisy.float()).cpu())
    if not clean:
        raise ShapeError("batches: expected at least one batch, got none")
    z = torch.cat(clean)
    res = {"clean_logits": z.numpy(), "prob": torch.sigmoid(z.mean(dim=1)).numpy()}
    if noisy:
        res["noisy_prob"] = torch.cat(noisy).numpy()
    return res
