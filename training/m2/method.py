"""M2 as a :class:`training.common.loop.Method`, and prediction helpers.

Training batches come from :class:`training.m2.data.ExpressionBatches` (keys ``image``,
``label``, ``index``, ``true``). The loss reads the label of each sample from a
:class:`~training.common.importance.LabelStore` indexed by ``index`` (so relabelling persists
across epochs and resumes); ``true`` is used only to count, in the logs, how many relabellings
repaired a flipped label and how many broke a correct one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from auperf.nets.m2 import M2Net

from ..common.importance import ImportanceConfig, LabelStore, relabel, scn_loss
from ..common.loop import Method, StepContext, move_to_device
from .config import M2Config

__all__ = ["M2Method", "predict_m2"]

_PLAIN = ImportanceConfig(enabled=False)


class M2Method(Method):
    """Trains an :class:`~auperf.nets.m2.M2Net` with the Self-Cure Network objective (or plain
    cross-entropy when ``cfg.importance.enabled`` is false).

    Args:
        cfg: the run configuration.
        train_labels: ``(N_train,)`` the given training labels (indexed by the batches'
            ``index``).
        model: an existing network (default: built from ``cfg``).

    Attributes:
        store: the training labels, changed by relabelling; saved in checkpoints.
        repaired, broken: relabellings that set a flipped label back to the true class, and
            that changed a correct label to a wrong one (cumulative; from the batches' ``true``).
    """

    def __init__(self, cfg: M2Config, train_labels: Any, model: M2Net | None = None) -> None:
        self.cfg = cfg
        imp = cfg.importance
        self.model = (
            model
            if model is not None
            else M2Net(cfg.num_classes, cfg.backbone, importance=imp.enabled, dropout=cfg.dropout)
        )
        self.store = LabelStore(train_labels)
        self.repaired = 0
        self.broken = 0
        self._epoch = 0

    def on_epoch_start(self, epoch: int) -> None:
        self._epoch = epoch

    def _relabelling(self) -> bool:
        imp = self.cfg.importance
        return imp.enabled and imp.relabel and self._epoch > imp.relabel_after

    def training_step(self, batch: dict[str, Tensor], ctx: StepContext):
        out = self.model(batch["image"])
        labels = self.store.lookup(batch["index"])
        logits = out.logits.float()
        alpha = None if out.alpha is None else out.alpha.float()
        imp = self.cfg.importance
        if imp.enabled and self._epoch <= imp.warmup_epochs:
            terms = scn_loss(logits, None, labels, _PLAIN)
        else:
            terms = scn_loss(logits, alpha, labels, imp)
        logs: dict[str, Any] = {"wce": terms.wce, "rr": terms.rr}
        if alpha is not None:
            logs["alpha_mean"] = alpha.detach().mean()
        if self._relabelling():
            probs = torch.softmax(out.weighted_logits().detach().float(), dim=1)
            new, changed = relabel(
                probs, labels, alpha.detach(), self.cfg.importance.beta, self.cfg.importance.delta2
            )
            if bool(changed.any()):
                true = batch["true"]
                self.repaired += int((changed & (labels != true) & (new == true)).sum())
                self.broken += int((changed & (labels == true) & (new != true)).sum())
                self.store.update(batch["index"][changed], new[changed])
            logs["relabelled"] = float(changed.sum())
        return terms.total, logs

    def validation_step(self, batch: dict[str, Tensor]) -> tuple[np.ndarray, np.ndarray]:
        out = self.model(batch["image"])
        return out.weighted_logits().float().argmax(1).cpu().numpy(), batch["label"].cpu().numpy()

    def validation_epoch_end(self, outputs: list[Any]) -> dict[str, float]:
        if not outputs:
            return {}
        pred = np.concatenate([o[0] for o in outputs])
        y = np.concatenate([o[1] for o in outputs])
        return {
            "accuracy": float((pred == y).mean()),
            "relabel_repaired": float(self.repaired),
            "relabel_broken": float(self.broken),
        }

    def state_tensors(self) -> dict[str, Tensor]:
        return self.store.state_tensors()

    def state_json(self) -> dict[str, Any]:
        return {**self.store.state_json(), "repaired": self.repaired, "broken": self.broken}

    def load_state(self, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
        self.store.load_state(tensors, state)
        self.repaired = int(state.get("repaired", 0))
        self.broken = int(state.get("broken", 0))


@torch.no_grad()
def predict_m2(
    model: M2Net, batches: Iterable[dict[str, Tensor]], device: str | torch.device = "cpu"
) -> dict[str, np.ndarray]:
    """Run a network over batches (``"image"`` key) in eval mode.

    Returns:
        ``"prob"`` ``(N, C)`` softmax of the weighted logits, ``"pred"`` ``(N,)`` arg max,
        ``"alpha"`` ``(N,)`` importances (ones without an importance head).
    """
    model.eval()
    device = torch.device(device)
    probs, alphas = [], []
    for batch in batches:
        out = model(move_to_device(batch["image"], device))
        probs.append(torch.softmax(out.weighted_logits().float(), 1).cpu())
        a = out.alpha if out.alpha is not None else torch.ones(out.logits.shape[0])
        alphas.append(a.float().cpu())
    p = torch.cat(probs).numpy()
    return {"prob": p, "pred": p.argmax(1), "alpha": torch.cat(alphas).numpy()}
