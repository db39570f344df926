"""M0 losses: clean, noisy, multi-view orthogonality, view consistency; pseudo-labels; refinement.

Notation: ``B`` faces, ``L`` AUs, ``V = 2`` views. Labels are float or integer tensors with
values 1 (active), 0 (inactive) or -1 (unknown: contributes nothing to any loss). Soft labels in
``[0, 1]`` are accepted where documented.

Reduction of the label losses: every known entry ``(b, k)`` contributes ``alpha_k * BCE``, and the
sum is divided by the number of known entries. With every label known this is exactly
``mean_b mean_k alpha_k BCE(y_bk, p_bk)`` (METHODS.md, M0); with no known entry it is 0.

The entropy terms are computed from logits in log space, so saturated probabilities (logits of
+-100) give finite values and gradients.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from auperf.errors import ShapeError, ValueRangeError

__all__ = [
    "M0LossWeights",
    "M0LossTerms",
    "masked_bce_with_logits",
    "clean_loss",
    "noisy_loss",
    "multiview_orthogonality_loss",
    "binary_entropy_from_logits",
    "view_consistency_loss",
    "pseudo_labels",
    "refine_noisy_labels",
    "au_balance_weights",
    "m0_loss",
]

_log = logging.getLogger("auperf.training")
_LOG2 = math.log(2.0)


@dataclass(frozen=True)
class M0LossWeights:
    """Weights of the M0 loss terms (all 1 by default, as in METHODS.md).

    Attributes:
        lambda_noisy: weight of L_noisy (per view).
        lambda_mv: weight of the orthogonality loss L_mv.
        lambda_cons: weight of the view-consistency loss L_cons.
    """

    lambda_noisy: float = 1.0
    lambda_mv: float = 1.0
    lambda_cons: float = 1.0


@dataclass
class M0LossTerms:
    """The total loss and its parts (each a scalar tensor; ``clean``/``noisy`` summed over views).

    Attributes:
        total: ``sum_t (L_clean^t + lambda_n L_noisy^t) + lambda_mv L_mv + lambda_cons L_cons``.
        clean, noisy, mv, cons: the unweighted terms.
    """

    total: Tensor
    clean: Tensor
    noisy: Tensor
    mv: Tensor
    cons: Tensor

    def as_floats(self) -> dict[str, float]:
        """The terms as Python floats (for logging)."""
        return {
            k: float(getattr(self, k).detach()) for k in ("total", "clean", "noisy", "mv", "cons")
        }


def _check_pair(logits: Tensor, labels: Tensor, name: str) -> None:
    if logits.dim() != 2:
        raise ShapeError(f"{name}: expected logits of shape (B, L), got {tuple(logits.shape)}")
    if labels.shape != logits.shape:
        raise ShapeError(
            f"{name}: labels shape {tuple(labels.shape)} differs from logits shape "
            f"{tuple(logits.shape)}"
        )


def _check_alpha(alpha: Tensor | None, num_aus: int, ref: Tensor) -> Tensor:
    if alpha is None:
        return torch.ones(num_aus, dtype=ref.dtype, device=ref.device)
    if alpha.shape != (num_aus,):
        raise ShapeError(f"alpha: expected shape ({num_aus},), got {tuple(alpha.shape)}")
    return alpha.to(dtype=ref.dtype, device=ref.device)


def masked_bce_with_logits(logits: Tensor, labels: Tensor, alpha: Tensor | None = None) -> Tensor:
    """Per-AU weighted binary cross-entropy, ignoring unknown labels.

    Args:
        logits: ``(B, L)``.
        labels: ``(B, L)``; 1, 0, soft values in ``[0, 1]``, or negative for unknown.
        alpha: per-AU weights ``(L,)`` (default: all 1).

    Returns:
        Scalar: ``sum_known alpha_k BCE / (number of known entries)``, 0 when none is known.
    """
    _check_pair(logits, labels, "logits")
    alpha = _check_alpha(alpha, logits.shape[1], logits)
    known = labels >= 0
    targets = torch.where(known, labels.to(logits.dtype), torch.zeros_like(logits))
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weighted = bce * alpha[None, :] * known.to(logits.dtype)
    n_known = known.sum().clamp(min=1).to(logits.dtype)
    return weighted.sum() / n_known


def clean_loss(clean_logits: Tensor, labels: Tensor, alpha: Tensor | None = None) -> Tensor:
    """L_clean of one view: weighted BCE of the clean head against accurate labels.

    Args:
        clean_logits: ``(B, L)`` clean logits of one view.
        labels: ``(B, L)`` accurate labels, -1 where unknown (e.g. faces of the noisy set).
        alpha: ``(L,)`` balance weights alpha_clean.
    """
    return masked_bce_with_logits(clean_logits, labels, alpha)


def noisy_loss(noisy_logits: Tensor, labels: Tensor, alpha: Tensor | None = None) -> Tensor:
    """L_noisy of one view: weighted BCE of ``sigmoid(z_clean + g_noisy)`` against noisy labels.

    Args:
        noisy_logits: ``(B, L)`` noisy logits ``z_clean + g_noisy(f)`` of one view.
        labels: ``(B, L)`` inaccurate labels, -1 where unknown (e.g. faces of the accurate set).
        alpha: ``(L,)`` balance weights alpha_noisy.
    """
    return masked_bce_with_logits(noisy_logits, labels, alpha)


def multiview_orthogonality_loss(w1: Tensor, w2: Tensor, eps: float = 1e-8) -> Tensor:
    """L_mv = mean_k |cos(W^{1,k}, W^{2,k})|, with ``W = [w; b]`` the clean-head rows.

    The source writes the signed cosine, which is unbounded below as a loss; its absolute value
    is minimised at orthogonal heads (METHODS.md).

    Args:
        w1, w2: ``(L, D + 1)`` clean-head matrices of views 1 and 2.
        eps: guards the norms.

    Returns:
        Scalar in ``[0, 1]``.
    """
    if w1.dim() != 2 or w1.shape != w2.shape:
        raise ShapeError(
            f"w1, w2: expected two (L, D + 1) matrices, got {tuple(w1.shape)} and {tuple(w2.shape)}"
        )
    cos = F.cosine_similarity(w1, w2, dim=1, eps=eps)
    return cos.abs().mean()


def binary_entropy_from_logits(logits: Tensor) -> Tensor:
    """``H(sigmoid(z)) = -(p log p + (1 - p) log(1 - p))`` in nats, element-wise, stable."""
    log_p = F.logsigmoid(logits)
    log_q = F.logsigmoid(-logits)
    return -(log_p.exp() * log_p + log_q.exp() * log_q)


def view_consistency_loss(logits1: Tensor, logits2: Tensor) -> Tensor:
    """L_cons = mean_{b,k} [H((p1 + p2) / 2) - (H(p1) + H(p2)) / 2] on clean predictions.

    This is the Jensen-Shannon divergence between the two views' Bernoulli predictions: 0 when
    they agree, at most ``log 2``; minimising it pulls each view toward the other.

    Args:
        logits1, logits2: ``(B, L)`` clean logits of views 1 and 2 (any faces, labelled or not).

    Returns:
        Scalar (nats); 0 for an empty batch.
    """
    if logits1.dim() != 2 or logits1.shape != logits2.shape:
        raise ShapeError(
            f"logits1, logits2: expected two (B, L) tensors, got {tuple(logits1.shape)} and "
            f"{tuple(logits2.shape)}"
        )
    if logits1.numel() == 0:
        return logits1.sum() * 0.0
    # log of the mean probability and of its complement, in log space.
    log_m = torch.logaddexp(F.logsigmoid(logits1), F.logsigmoid(logits2)) - _LOG2
    log_n = torch.logaddexp(F.logsigmoid(-logits1), F.logsigmoid(-logits2)) - _LOG2
    h_mean = -(log_m.exp() * log_m + log_n.exp() * log_n)
    h_each = 0.5 * (binary_entropy_from_logits(logits1) + binary_entropy_from_logits(logits2))
    return (h_mean - h_each).mean()


def pseudo_labels(other_view_logits: Tensor, threshold: float = 0.5) -> Tensor:
    """Hard pseudo-labels from the other view's clean prediction (semi-supervised variant).

    Args:
        other_view_logits: ``(B, L)`` clean logits of the other view.
        threshold: probability at or above which a pseudo-label is 1.

    Returns:
        ``(B, L)`` float tensor of 0/1, detached (no gradient flows into the teacher view).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueRangeError(f"threshold: expected a value in (0, 1), got {threshold!r}")
    logit_t = math.log(threshold / (1.0 - threshold))
    return (other_view_logits.detach() >= logit_t).to(other_view_logits.dtype)


def refine_noisy_labels(
    noisy_labels: Tensor,
    p_noisy1: Tensor,
    p_noisy2: Tensor,
    gamma: float = 0.5,
    threshold: float = 0.5,
    harden: bool = True,
) -> Tensor:
    """Label refinement after convergence: ``y~ = gamma y + (1 - gamma) (p1 + p2) / 2``.

    Note:
        With the source's ``gamma = 0.5`` and hardening at 0.5 the hard label never changes
        (``y = 1`` gives ``y~ >= 0.5``; ``y = 0`` gives ``y~ <= 0.5``, equal only when both views
        predict exactly 1). The refinement then acts through soft labels (``harden=False``) or a
        smaller ``gamma`` (e.g. 0.3 flips a label when the mean noisy probability disagrees by
        more than 0.714).

    Args:
        noisy_labels: ``(N, L)`` inaccurate labels in {0, 1}, -1 unknown.
        p_noisy1, p_noisy2: ``(N, L)`` noisy probabilities ``sigmoid(z_clean + g_noisy)`` of the
            two views.
        gamma: weight of the given label, in ``[0, 1]``.
        threshold: hardening threshold (``y~ >= threshold`` gives 1).
        harden: return hard 0/1 labels (default) or the soft ``y~``.

    Returns:
        ``(N, L)`` refined labels, same dtype as ``p_noisy1``; unknown entries stay -1.
    """
    if noisy_labels.shape != p_noisy1.shape or p_noisy1.shape != p_noisy2.shape:
        raise ShapeError(
            "noisy_labels, p_noisy1, p_noisy2: expected equal shapes, got "
            f"{tuple(noisy_labels.shape)}, {tuple(p_noisy1.shape)}, {tuple(p_noisy2.shape)}"
        )
    if not 0.0 <= gamma <= 1.0:
        raise ValueRangeError(f"gamma: expected a value in [0, 1], got {gamma!r}")
    if not 0.0 < threshold < 1.0:
        raise ValueRangeError(f"threshold: expected a value in (0, 1), got {threshold!r}")
    y = noisy_labels.to(p_noisy1.dtype)
    known = noisy_labels >= 0
    mean_p = 0.5 * (p_noisy1.detach() + p_noisy2.detach())
    soft = gamma * y + (1.0 - gamma) * mean_p
    out = (soft >= threshold).to(soft.dtype) if harden else soft
    return torch.where(known, out, torch.full_like(out, -1.0))


def au_balance_weights(
    labels: Tensor, min_rate: float = 1e-3, *, allow_unknown_columns: bool = False
) -> Tensor:
    """Per-AU balance weights: inverse positive rate, normalised to mean 1, unknowns ignored.

    ``r_k = (#labels == 1) / (#labels >= 0)`` over known entries of AU ``k``, clamped below at
    ``min_rate`` (an AU with no positive gets ``1 / min_rate`` before normalisation, and a
    warning); ``alpha_k = (1 / r_k) / mean_j (1 / r_j)``.

    Args:
        labels: ``(N, L)`` labels in {0, 1}, -1 unknown.
        min_rate: lower bound of the positive rate, in ``(0, 1]``.
        allow_unknown_columns: AU columns unknown in every row (AUs a teacher never labels)
            get weight 1 (their loss terms are masked anyway) and the mean-1 normalisation
            runs over the other columns; without it such a column raises.

    Returns:
        ``(L,)`` float32 weights with mean 1 (over the known columns).

    Raises:
        ValueRangeError: an AU has no known label (its index is named) and
            ``allow_unknown_columns`` is false, or ``min_rate`` is out of range.
    """
    if labels.dim() != 2:
        raise ShapeError(f"labels: expected shape (N, L), got {tuple(labels.shape)}")
    if not 0.0 < min_rate <= 1.0:
        raise ValueRangeError(f"min_rate: expected a value in (0, 1], got {min_rate!r}")
    known = (labels >= 0).sum(dim=0).to(torch.float64)
    pos = (labels == 1).sum(dim=0).to(torch.float64)
    missing = torch.nonzero(known == 0).flatten().tolist()
    if missing and not allow_unknown_columns:
        raise ValueRangeError(f"labels: AU columns {missing} have no known label")
    if missing:
        cols = known > 0
        out = torch.ones(labels.shape[1], dtype=torch.float32)
        if cols.any():
            out[cols] = au_balance_weights(labels[:, cols], min_rate)
        return out
    no_pos = torch.nonzero(pos == 0).flatten().tolist()
    if no_pos:
        _log.warning("au_balance_weights: AU columns %s have no positive label", no_pos)
    rate = torch.clamp(pos / known, min=min_rate)
    inv = 1.0 / rate
    return (inv / inv.mean()).to(torch.float32)


def m0_loss(
    clean_logits: Tensor,
    clean_w: tuple[Tensor, Tensor],
    clean_labels: Tensor,
    *,
    noisy_logits: Tensor | None = None,
    noisy_labels: Tensor | None = None,
    unlabelled: Tensor | None = None,
    alpha_clean: Tensor | None = None,
    alpha_noisy: Tensor | None = None,
    weights: M0LossWeights = M0LossWeights(),
    pseudo_threshold: float = 0.5,
) -> M0LossTerms:
    """The full M0 objective on one batch that may mix accurate, inaccurate and unlabelled faces.

    ``total = sum_t [L_clean^t + lambda_n L_noisy^t] + lambda_mv L_mv + lambda_cons L_cons``.

    Semi-supervised variant: faces flagged in ``unlabelled`` get, for view ``t``, hard
    pseudo-labels from the other view's clean prediction (threshold ``pseudo_threshold``) in
    place of their accurate labels, and join L_clean^t.

    Args:
        clean_logits: ``(B, 2, L)`` clean logits of both views.
        clean_w: the two clean-head matrices ``(L, D + 1)`` (:meth:`M0Net.clean_head_matrices`).
        clean_labels: ``(B, L)`` accurate labels, -1 where unknown.
        noisy_logits: ``(B, 2, L)`` noisy logits ``z_clean + g_noisy``, or ``None`` (no L_noisy).
        noisy_labels: ``(B, L)`` inaccurate labels, -1 where unknown; needed with
            ``noisy_logits``.
        unlabelled: ``(B,)`` bool, faces that get pseudo-labels; ``None`` for none.
        alpha_clean, alpha_noisy: ``(L,)`` balance weights (default 1).
        weights: the lambdas.
        pseudo_threshold: probability threshold of the pseudo-labels.

    Returns:
        :class:`M0LossTerms`.
    """
    if clean_logits.dim() != 3 or clean_logits.shape[1] != 2:
        raise ShapeError(f"clean_logits: expected shape (B, 2, L), got {tuple(clean_logits.shape)}")
    b, _, n_aus = clean_logits.shape
    if clean_labels.shape != (b, n_aus):
        raise ShapeError(
            f"clean_labels: expected shape ({b}, {n_aus}), got {tuple(clean_labels.shape)}"
        )
    if unlabelled is not None and unlabelled.shape != (b,):
        raise ShapeError(f"unlabelled: expected shape ({b},), got {tuple(unlabelled.shape)}")
    if (noisy_logits is None) != (noisy_labels is None):
        raise ShapeError("noisy_logits, noisy_labels: give both or neither")
    if noisy_logits is not None and noisy_logits.shape != clean_logits.shape:
        raise ShapeError(
            f"noisy_logits: expected shape {tuple(clean_logits.shape)}, "
            f"got {tuple(noisy_logits.shape)}"
        )
    z1, z2 = clean_logits[:, 0], clean_logits[:, 1]
    labels = clean_labels.to(clean_logits.dtype)
    zero = clean_logits.sum() * 0.0
    l_clean = zero
    for z, other in ((z1, z2), (z2, z1)):
        y = labels
        if unlabelled is not None:
            y = torch.where(unlabelled[:, None], pseudo_labels(other, pseudo_threshold), labels)
        l_clean = l_clean + clean_loss(z, y, alpha_clean)
    l_noisy = zero
    if noisy_logits is not None:
        for t in range(2):
            l_noisy = l_noisy + noisy_loss(noisy_logits[:, t], noisy_labels, alpha_noisy)
    l_mv = multiview_orthogonality_loss(*clean_w)
    l_cons = view_consistency_loss(z1, z2)
    total = (
        l_clean
        + weights.lambda_noisy * l_noisy
        + weights.lambda_mv * l_mv
        + weights.lambda_cons * l_cons
    )
    return M0LossTerms(total=total, clean=l_clean, noisy=l_noisy, mv=l_mv, cons=l_cons)
