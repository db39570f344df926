"""Importance weighting, rank regularisation and relabelling (the Self-Cure Network pieces).

Any trainer whose labels may be wrong can switch these on; M2 (expression classification) uses
all three, a multi-label trainer (M0's noisy heads, for instance) can use the logit weighting in
its binary form (:func:`weighted_bce_with_logits`) with the same rank regularisation.

Definitions, for a batch of ``N`` samples with features ``x_i`` ``(N, D)``:

- importance ``alpha_i = sigmoid(w_a . x_i + b_a)`` in ``(0, 1)`` (:class:`ImportanceHead`);
- logit-weighted cross-entropy (:func:`weighted_cross_entropy`)::

      L_WCE = -(1/N) sum_i log( exp(alpha_i z_{i, y_i}) / sum_j exp(alpha_i z_{i, j}) )

  with ``z_i = W x_i`` the class logits: a small ``alpha_i`` flattens the softmax, so a sample
  the network finds doubtful pulls less on the classifier;
- rank regularisation (:func:`rank_regularisation`): sort the ``alpha`` of the batch in
  descending order, the first ``M = round(beta * N)`` form the high group, the rest the low
  group::

      L_RR = max(0, delta1 - (mean alpha_high - mean alpha_low))

- total (:func:`scn_loss`): ``L = gamma * L_RR + (1 - gamma) * L_WCE``;
- relabelling (:func:`relabel`): after ``relabel_after`` warm-up epochs, a sample of the batch's
  low-importance group whose predicted probability ``P_max`` exceeds the probability of its
  current label ``P_label`` by more than ``delta2`` gets the label ``argmax P``.
  :class:`LabelStore` keeps the current labels of a whole training set (indexed by sample),
  counts the changes and is saved in checkpoints so that a resumed run continues with the
  labels it had.

Defaults are the values of the Self-Cure Network article: ``beta = 0.7``, ``delta1 = 0.15``,
``gamma = 0.5``, ``delta2 = 0.2``.

Example::

    head = ImportanceHead(backbone.feature_dim)
    alpha = head(features)                               # (N,)
    terms = scn_loss(logits, alpha, labels, cfg)         # terms.total, terms.wce, terms.rr
    if cfg.relabel and epoch > cfg.relabel_after:
        new, changed = relabel(logits.softmax(1), labels, alpha, cfg.beta, cfg.delta2)
        store.update(index, new)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from auperf.errors import ShapeError, ValueRangeError

from .config import ConfigError

__all__ = [
    "ImportanceConfig",
    "ImportanceHead",
    "LabelStore",
    "SCNLoss",
    "high_group_size",
    "rank_regularisation",
    "relabel",
    "scn_loss",
    "weighted_bce_with_logits",
    "weighted_cross_entropy",
]


@dataclass
class ImportanceConfig:
    """Switches and constants of the importance weighting (the ``importance:`` section).

    Attributes:
        enabled: learn ``alpha`` and weight the logits with it (``False``: plain
            cross-entropy, ``alpha = 1``; no rank regularisation, no relabelling).
        beta: fraction of each batch in the high-importance group (in ``(0, 1)``).
        delta1: margin between the high and low groups' mean importance (>= 0).
        gamma: weight of the rank regularisation in the total loss (in ``[0, 1]``).
        relabel: relabel doubtful low-importance samples after the warm-up.
        delta2: probability margin for relabelling (>= 0).
        relabel_after: warm-up epochs without relabelling (relabelling starts in epoch
            ``relabel_after + 1``).
        warmup_epochs: epochs trained with plain cross-entropy on the unweighted logits before
            the weighting and the rank regularisation start (0: from the first epoch, as in
            the article, whose backbone starts pretrained). A network trained from scratch
            is wrong on every sample at first, and the weighting then drives every ``alpha``
            down together, which slows learning; a short warm-up avoids that.
    """

    enabled: bool = True
    beta: float = 0.7
    delta1: float = 0.15
    gamma: float = 0.5
    relabel: bool = True
    delta2: float = 0.2
    relabel_after: int = 5
    warmup_epochs: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("beta", 0 < self.beta < 1, "a value in (0, 1)"),
            ("delta1", self.delta1 >= 0, ">= 0"),
            ("gamma", 0 <= self.gamma <= 1, "a value in [0, 1]"),
            ("delta2", self.delta2 >= 0, ">= 0"),
            ("relabel_after", self.relabel_after >= 0, ">= 0"),
            ("warmup_epochs", self.warmup_epochs >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name}: expected {expected}, got {getattr(self, name)!r}")


class ImportanceHead(nn.Module):
    """``alpha = sigmoid(fc(x))``: one importance in ``(0, 1)`` per sample.

    Args:
        feature_dim: ``D``.

    Shapes: ``(N, D) -> (N,)``.
    """

    def __init__(self, feature_dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(int(feature_dim), 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.fc.in_features:
            raise ShapeError(
                f"features: expected shape (N, {self.fc.in_features}), got {tuple(x.shape)}"
            )
        return torch.sigmoid(self.fc(x)).squeeze(1)


def _check_alpha(alpha: Tensor, n: int) -> None:
    if alpha.dim() != 1 or alpha.shape[0] != n:
        raise ShapeError(f"alpha: expected shape ({n},), got {tuple(alpha.shape)}")


def _check_labels(logits: Tensor, labels: Tensor) -> None:
    if logits.dim() != 2:
        raise ShapeError(f"logits: expected shape (N, C), got {tuple(logits.shape)}")
    if labels.shape != (logits.shape[0],):
        raise ShapeError(f"labels: expected shape ({logits.shape[0]},), got {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        bad = labels[(labels < 0) | (labels >= logits.shape[1])][0]
        raise ValueRangeError(f"labels: expected classes in [0, {logits.shape[1]}), got {int(bad)}")


def weighted_cross_entropy(logits: Tensor, alpha: Tensor, labels: Tensor) -> Tensor:
    """Logit-weighted cross-entropy ``L_WCE`` (mean over the batch).

    Args:
        logits: ``(N, C)`` class logits ``z = W x``.
        alpha: ``(N,)`` importance weights (a tensor of ones gives plain cross-entropy).
        labels: ``(N,)`` int64 classes in ``[0, C)``.

    Returns:
        A scalar tensor.

    Raises:
        ShapeError: mismatched shapes. ValueRangeError: a label outside ``[0, C)``.
    """
    _check_labels(logits, labels)
    _check_alpha(alpha, logits.shape[0])
    return nn.functional.cross_entropy(alpha[:, None] * logits, labels.long())


def weighted_bce_with_logits(
    logits: Tensor, alpha: Tensor, labels: Tensor, pos_weight: Tensor | None = None
) -> Tensor:
    """The binary form of the logit weighting for multi-label heads.

    ``mean over known entries of BCE(sigmoid(alpha_i z_ik), y_ik)``; labels ``-1`` are unknown
    and ignored. ``pos_weight`` ``(L,)`` optionally weights the positive terms per label.

    Args:
        logits: ``(N, L)``. alpha: ``(N,)``. labels: ``(N, L)`` in {-1, 0, 1}.

    Returns:
        A scalar tensor (0 when no label is known).
    """
    if logits.dim() != 2 or labels.shape != logits.shape:
        raise ShapeError(
            f"logits, labels: expected equal shapes (N, L), got {tuple(logits.shape)} and "
            f"{tuple(labels.shape)}"
        )
    _check_alpha(alpha, logits.shape[0])
    known = labels >= 0
    if not bool(known.any()):
        return logits.sum() * 0.0
    per = nn.functional.binary_cross_entropy_with_logits(
        alpha[:, None] * logits,
        labels.clamp(min=0).to(logits.dtype),
        reduction="none",
        pos_weight=pos_weight,
    )
    return per[known].mean()


def high_group_size(n: int, beta: float) -> int:
    """``M = round(beta * n)`` clamped to ``[1, n - 1]`` (both groups non-empty; ``n >= 2``)."""
    if n < 2:
        raise ShapeError(f"batch: rank regularisation needs at least 2 samples, got {n}")
    return min(max(int(round(beta * n)), 1), n - 1)


def rank_regularisation(alpha: Tensor, beta: float = 0.7, delta1: float = 0.15) -> Tensor:
    """``L_RR = max(0, delta1 - (mean alpha_high - mean alpha_low))``.

    Args:
        alpha: ``(N,)`` importance weights, ``N >= 2`` (a batch of one gives 0).
        beta: fraction of the batch in the high group (``M = round(beta N)``, see
            :func:`high_group_size`).
        delta1: the margin.

    Returns:
        A scalar tensor.
    """
    if alpha.dim() != 1:
        raise ShapeError(f"alpha: expected shape (N,), got {tuple(alpha.shape)}")
    n = alpha.shape[0]
    if n < 2:
        return alpha.sum() * 0.0
    m = high_group_size(n, beta)
    ordered, _ = torch.sort(alpha, descending=True)
    gap = ordered[:m].mean() - ordered[m:].mean()
    return torch.clamp(delta1 - gap, min=0.0)


class SCNLoss(NamedTuple):
    """The terms of :func:`scn_loss` (scalar tensors): ``total``, ``wce``, ``rr``."""

    total: Tensor
    wce: Tensor
    rr: Tensor


def scn_loss(
    logits: Tensor, alpha: Tensor | None, labels: Tensor, cfg: ImportanceConfig
) -> SCNLoss:
    """``L = gamma L_RR + (1 - gamma) L_WCE`` (``cfg.enabled``), else plain cross-entropy.

    Args:
        logits: ``(N, C)``. alpha: ``(N,)`` or ``None`` (only with ``cfg.enabled`` False).
        labels: ``(N,)`` int64. cfg: the constants.
    """
    if not cfg.enabled or alpha is None:
        if cfg.enabled:
            raise ShapeError("alpha: required when importance weighting is enabled, got None")
        ones = torch.ones(logits.shape[0], dtype=logits.dtype, device=logits.device)
        ce = weighted_cross_entropy(logits, ones, labels)
        return SCNLoss(ce, ce, ce.detach() * 0.0)
    wce = weighted_cross_entropy(logits, alpha, labels)
    rr = rank_regularisation(alpha, cfg.beta, cfg.delta1)
    return SCNLoss(cfg.gamma * rr + (1.0 - cfg.gamma) * wce, wce, rr)


@torch.no_grad()
def relabel(
    probs: Tensor, labels: Tensor, alpha: Tensor, beta: float = 0.7, delta2: float = 0.2
) -> tuple[Tensor, Tensor]:
    """Relabel doubtful samples of the low-importance group.

    The low group is the ``N - M`` samples with the smallest ``alpha`` (``M`` as in
    :func:`rank_regularisation`; ties broken by position, as ``torch.sort`` does). A sample of
    the low group whose ``max_j P_ij - P_{i, y_i} > delta2`` gets ``argmax_j P_ij``.

    Args:
        probs: ``(N, C)`` class probabilities. labels: ``(N,)`` current labels.
        alpha: ``(N,)`` importances. beta, delta2: the constants.

    Returns:
        ``(new_labels (N,) int64, changed (N,) bool)``; the inputs are not modified.
    """
    _check_labels(probs, labels)
    _check_alpha(alpha, probs.shape[0])
    labels = labels.long()
    n = probs.shape[0]
    changed = torch.zeros(n, dtype=torch.bool, device=probs.device)
    if n < 2:
        return labels.clone(), changed
    m = high_group_size(n, beta)
    order = torch.sort(alpha, descending=True, stable=True).indices
    low = torch.zeros(n, dtype=torch.bool, device=probs.device)
    low[order[m:]] = True
    p_max, arg = probs.max(dim=1)
    p_label = probs.gather(1, labels[:, None]).squeeze(1)
    changed = low & (p_max - p_label > delta2) & (arg != labels)
    return torch.where(changed, arg, labels), changed


class LabelStore:
    """The current labels of a training set, changed by relabelling.

    Args:
        labels: ``(N,)`` the given (possibly noisy) labels, indexed by sample.

    Attributes:
        given: ``(N,)`` int64, the labels as given (never changed).
        current: ``(N,)`` int64, the labels after relabelling so far.
        changes: number of label changes made (a sample changed twice counts twice).
    """

    def __init__(self, labels: Any) -> None:
        self.given = torch.as_tensor(labels).long().clone()
        if self.given.dim() != 1:
            raise ShapeError(f"labels: expected shape (N,), got {tuple(self.given.shape)}")
        self.current = self.given.clone()
        self.changes = 0

    def __len__(self) -> int:
        return int(self.given.shape[0])

    def lookup(self, index: Tensor) -> Tensor:
        """Current labels of samples ``index`` ``(B,)`` (on ``index``'s device)."""
        return self.current[index.cpu().long()].to(index.device)

    def update(self, index: Tensor, new: Tensor) -> int:
        """Set the labels of samples ``index`` to ``new``; returns how many changed."""
        idx = index.cpu().long()
        new = new.cpu().long()
        diff = self.current[idx] != new
        self.current[idx] = new
        k = int(diff.sum())
        self.changes += k
        return k

    def relabelled(self) -> Tensor:
        """``(N,)`` bool: samples whose current label differs from the given one."""
        return self.current != self.given

    def state_tensors(self, prefix: str = "labels") -> dict[str, Tensor]:
        """Tensors for a checkpoint."""
        return {f"{prefix}_current": self.current.clone()}

    def state_json(self) -> dict[str, Any]:
        return {"label_changes": self.changes}

    def load_state(
        self, tensors: dict[str, Tensor], state: dict[str, Any], prefix: str = "labels"
    ) -> None:
        """Restore what :meth:`state_tensors` and :meth:`state_json` saved."""
        key = f"{prefix}_current"
        if key in tensors:
            t = tensors[key].long()
            if t.shape != self.given.shape:
                raise ShapeError(
                    f"{key}: checkpoint holds {tuple(t.shape)} labels, the training set "
                    f"{tuple(self.given.shape)}"
                )
            self.current = t.clone()
        self.changes = int(state.get("label_changes", self.changes))
