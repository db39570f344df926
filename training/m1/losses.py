"""M1 losses (METHODS.md, M1). Every function works on small tensors and is tested against a
direct NumPy computation in ``tests/m1/test_losses.py``.

Shapes: ``B`` faces, ``C`` AUs, ``D`` embedding width, ``K`` landmarks, ``G = d * d`` grid cells.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from auperf.errors import ShapeError

__all__ = [
    "weighted_bce",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "embedding_consistency_loss",
    "l1_loss",
    "supcon_identity_loss",
    "supcon_au_loss",
    "orthogonality_loss",
    "landmark_loss",
    "uniform_landmark_loss",
    "pair_discriminator_loss",
    "pair_confusion_loss",
    "au_label_balance",
]


def weighted_bce(logits: Tensor, labels: Tensor, alpha: Tensor) -> Tensor:
    """``mean_{i,k} alpha_k BCE(y_ik, sigmoid(logits_ik))``; ``logits``, ``labels`` ``(B, C)``,
    ``alpha`` ``(C,)`` per-AU imbalance weights."""
    if logits.shape != labels.shape or logits.dim() != 2:
        raise ShapeError(
            f"logits, labels: expected equal (B, C) shapes, got {tuple(logits.shape)}, "
            f"{tuple(labels.shape)}"
        )
    if alpha.shape != (logits.shape[1],):
        raise ShapeError(f"alpha: expected shape ({logits.shape[1]},), got {tuple(alpha.shape)}")
    bce = F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype), reduction="none")
    return (bce * alpha).mean()


def lsgan_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """``0.5 * mean (D(x) - 1)^2 + 0.5 * mean D(G(.))^2`` (least-squares GAN)."""
    return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()


def lsgan_generator_loss(fake: Tensor) -> Tensor:
    """``0.5 * mean (D(G(.)) - 1)^2``."""
    return 0.5 * ((fake - 1.0) ** 2).mean()


def embedding_consistency_loss(reencoded: Tensor, source: Tensor) -> Tensor:
    """Least squares between re-encoded and source embeddings: ``mean ||r - s||^2`` over rows
    (sum over the feature axis, mean over the rest)."""
    if reencoded.shape != source.shape:
        raise ShapeError(
            f"reencoded, source: shapes differ, {tuple(reencoded.shape)} vs {tuple(source.shape)}"
        )
    return ((reencoded - source) ** 2).sum(dim=-1).mean()


def l1_loss(x: Tensor, target: Tensor) -> Tensor:
    """Mean absolute difference (cycle and self-reconstruction losses)."""
    if x.shape != target.shape:
        raise ShapeError(f"x, target: shapes differ, {tuple(x.shape)} vs {tuple(target.shape)}")
    return (x - target).abs().mean()


def _supcon_rows(sim: Tensor, positive: Tensor) -> tuple[Tensor, Tensor]:
    """Per-row ``-(1/|P(i)|) sum_{p in P(i)} log softmax_{a != i}(sim_i)_p`` and the rows that
    have a positive. ``sim`` ``(M, M)`` already divided by the temperature."""
    m = sim.shape[0]
    self_mask = torch.eye(m, dtype=torch.bool, device=sim.device)
    logits = sim.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = positive & ~self_mask
    n_pos = pos.sum(dim=1)
    s = torch.where(pos, log_prob, torch.zeros_like(log_prob)).sum(dim=1)
    return -s / n_pos.clamp(min=1), n_pos > 0


def supcon_identity_loss(
    z: Tensor, identity: Tensor, tau: float, class_weight: Tensor | None = None
) -> Tensor:
    """Supervised-contrastive identity loss.

    ``L_id = (1 / |I|) sum_{i in I} w_{y_i} (-1/|P(i)|) sum_{p in P(i)}
    log( exp(z_i.z_p / tau) / sum_{a != i} exp(z_i.z_a / tau) )`` with ``z`` L2-normalised,
    ``P(i)`` the other samples of ``i``'s identity and ``I`` the anchors that have one (the sum
    of the method is averaged over them so the scale does not grow with the batch).

    Args:
        z: ``(B, D)`` identity embeddings (normalised here).
        identity: ``(B,)`` integer identities.
        tau: temperature ``tau_I``.
        class_weight: ``(B,)`` per-sample weights ``w_{y_i}`` (default 1).
    """
    if z.dim() != 2 or identity.shape != (z.shape[0],):
        raise ShapeError(
            f"z, identity: expected (B, D) and (B,), got {tuple(z.shape)}, {tuple(identity.shape)}"
        )
    zn = F.normalize(z, dim=1)
    rows, has = _supcon_rows(zn @ zn.T / tau, identity[:, None] == identity[None, :])
    if not bool(has.any()):
        return z.sum() * 0.0
    w = torch.ones_like(rows) if class_weight is None else class_weight.to(rows.dtype)
    return (w * rows)[has].mean()


def supcon_au_loss(
    e: Tensor, labels: Tensor, tau: float, au_weight: Tensor, balance: Tensor
) -> Tensor:
    """Per-AU supervised-contrastive loss.

    For AU ``c`` and face ``i`` the anchor is ``e_{i,c}`` (L2-normalised); positives are
    ``e_{j,c}``, ``j != i``, with ``y_{j,c} == y_{i,c}``; the contrast set is every other AU
    embedding of the batch (all ``(j, c')`` but ``(i, c)``). With ``l_{i,c}`` the SupCon term,
    ``L_AU = (1 / C) sum_c w_c * mean_i beta_{c, y_ic} l_{i,c}`` over the anchors with a positive,
    ``beta_{c, 1}``, ``beta_{c, 0}`` the imbalance weights of :func:`au_label_balance`.

    Args:
        e: ``(B, C, D)`` per-AU embeddings.
        labels: ``(B, C)`` in {0, 1}.
        tau: temperature ``tau_A``.
        au_weight: ``(C,)`` ``w_c``.
        balance: ``(C, 2)`` ``beta_{c, y}``.
    """
    if e.dim() != 3 or labels.shape != e.shape[:2]:
        raise ShapeError(
            f"e, labels: expected (B, C, D) and (B, C), got {tuple(e.shape)}, {tuple(labels.shape)}"
        )
    b, c, _ = e.shape
    flat = F.normalize(e.reshape(b * c, -1), dim=1)
    au = torch.arange(c, device=e.device).repeat(b)  # row (i, c) -> c, face-major
    y = labels.reshape(-1).long()
    positive = (au[:, None] == au[None, :]) & (y[:, None] == y[None, :])
    rows, has = _supcon_rows(flat @ flat.T / tau, positive)
    w = au_weight.to(rows.dtype)[au] * balance.to(rows.dtype)[au, y]
    total = rows.sum() * 0.0
    for k in range(c):
        sel = has & (au == k)
        if bool(sel.any()):
            total = total + (w * rows)[sel].mean()
    return total / c


def au_label_balance(labels: Tensor, min_rate: float = 1e-3) -> Tensor:
    """``(C, 2)`` imbalance weights ``beta_{c, y}``: ``0.5 / P(y_c = y)`` over ``(N, C)`` labels
    (so both classes carry equal total weight), rates clamped to ``[min_rate, 1 - min_rate]``."""
    rate = labels.float().mean(dim=0).clamp(min_rate, 1.0 - min_rate)
    return torch.stack([0.5 / (1.0 - rate), 0.5 / rate], dim=1)


def orthogonality_loss(w_a: Tensor, w_i: Tensor, a: Tensor, z: Tensor, eps: float = 1e-8) -> Tensor:
    """``||W_A W_I^T||_F / (||W_A||_F ||W_I||_F) + mean_i |a_i . z_i| / (||a_i|| ||z_i||)``.

    ``w_a`` ``(P, F)`` and ``w_i`` ``(Q, F)`` are the encoders' last linear weights (rows are
    output units over the same ``F`` features; the method's ``W_A^T W_I`` with weights stored as
    columns); ``a``, ``z`` ``(B, D)``.
    """
    if w_a.shape[1] != w_i.shape[1]:
        raise ShapeError(
            f"w_a, w_i: expected equal input widths, got {tuple(w_a.shape)}, {tuple(w_i.shape)}"
        )
    if a.shape != z.shape:
        raise ShapeError(f"a, z: shapes differ, {tuple(a.shape)} vs {tuple(z.shape)}")
    cross = torch.linalg.matrix_norm(w_a @ w_i.T) / (
        torch.linalg.matrix_norm(w_a) * torch.linalg.matrix_norm(w_i) + eps
    )
    cos = (a * z).sum(dim=1).abs() / (a.norm(dim=1) * z.norm(dim=1) + eps)
    return cross + cos.mean()


def landmark_loss(logits: Tensor, cells: Tensor) -> Tensor:
    """Softmax cross-entropy over the ``d x d`` response map of each landmark: ``logits``
    ``(B, K, G)``, ``cells`` ``(B, K)`` int64 target cells
    (:func:`training.m1.data.landmark_cells`)."""
    if logits.dim() != 3 or cells.shape != logits.shape[:2]:
        raise ShapeError(
            f"logits, cells: expected (B, K, G) and (B, K), got {tuple(logits.shape)}, "
            f"{tuple(cells.shape)}"
        )
    return F.cross_entropy(logits.reshape(-1, logits.shape[2]), cells.reshape(-1))


def uniform_landmark_loss(logits: Tensor) -> Tensor:
    """Cross-entropy of the maps against the uniform ``1 / G``: ``-mean log_softmax``; minimal
    (``log G``) when every map is flat (the identity encoder's adversarial target)."""
    return -F.log_softmax(logits, dim=-1).mean(dim=-1).mean()


def pair_discriminator_loss(logit: Tensor, same: Tensor) -> Tensor:
    """BCE of the identity discriminator: ``logit`` ``(P,)`` for pairs, ``same`` ``(P,)`` 1 when
    the two AU embeddings come from the same person."""
    return F.binary_cross_entropy_with_logits(logit, same.to(logit.dtype))


def pair_confusion_loss(logit: Tensor) -> Tensor:
    """The AU encoder's adversarial loss: BCE to the target 0.5 (the discriminator cannot
    tell), minimal (``log 2``) at ``logit = 0``."""
    return F.binary_cross_entropy_with_logits(logit, torch.full_like(logit, 0.5))
