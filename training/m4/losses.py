"""M4 (TCAE) losses with the weights and normalisations of the method (METHODS.md, M4).

For ``B`` pairs of ``S x S`` (``W = H = S``) crops, every term is computed per pair and averaged
over the batch:

- ``L_rec = ||tau(I_s) - I_t||_1``, divided by ``W H 3`` (images in ``[0, 1]``);
- ``L1^A = sum_xy ||tau^A_xy||_1``, divided by ``W H 2`` (field in pixels);
- ``L_cyc^A = ||tau^{-A}(tau^A(I_s)) - I_s||_1`` and ``L_cyc^P`` likewise, divided by ``W H 3``;
- ``L_emb^A = ||psi_s^A - psi_s||^2 + ||phi_s^A - phi_t||^2``,
  ``L_emb^P = ||phi_s^P - phi_s||^2 + ||psi_s^P - psi_t||^2``, divided by ``norm`` (the
  article's 256, its embedding size; auperf uses the embedding size ``D`` of the run, 256 by
  default);
- ``L = L_rec/(WH3) + lambda_1 L1^A/(WH2) + lambda_2 (L_cyc^A + L_cyc^P)/(WH3)
  + lambda_3 (L_emb^A + L_emb^P)/norm``.

The source gives no values for ``lambda_1..3``; auperf's defaults are ``lambda_1 = 0.001``,
``lambda_2 = 1``, ``lambda_3 = 0.01`` (run-file keys ``lambda_sparsity``, ``lambda_cycle``,
``lambda_embedding``), chosen after the first real run collapsed with ``0.01 / 1 / 1`` (see
docs/m4.md, "Training notes").

Embedding targets: the source names no stop-gradient. With gradients through both sides, the
cheapest way to lower ``||phi_s^A - phi_t||^2`` is an encoder whose output does not depend on
the image (all embeddings equal), which also makes every field zero. By default
(``M4LossWeights.detach_targets``) the targets ``psi_s, phi_t`` (AU cycle) and ``phi_s, psi_t``
(pose cycle) are therefore treated as constants: the embedding terms move only the embeddings
of the warped images ``I_A`` and ``I_P`` (and, through them, the fields). The values of the
terms are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from auperf.errors import ShapeError, ValueRangeError
from auperf.nets.m4 import TCAEOutputs

__all__ = [
    "M4LossWeights",
    "M4LossTerms",
    "image_l1",
    "field_l1",
    "embedding_sq",
    "m4_loss",
]


@dataclass(frozen=True)
class M4LossWeights:
    """``lambda_1`` (AU-field sparsity), ``lambda_2`` (cycles), ``lambda_3`` (embeddings) and
    the embedding normaliser ``norm`` (the article's 256); ``detach_targets``: stop the
    gradient at the embedding terms' targets (module docstring)."""

    sparsity: float = 0.001
    cycle: float = 1.0
    embedding: float = 0.01
    norm: float = 256.0
    detach_targets: bool = True

    def __post_init__(self) -> None:
        for name in ("sparsity", "cycle", "embedding"):
            if not getattr(self, name) >= 0:
                raise ValueRangeError(f"{name}: expected a weight >= 0, got {getattr(self, name)}")
        if not self.norm > 0:
            raise ValueRangeError(f"norm: expected > 0, got {self.norm}")


@dataclass(frozen=True)
class M4LossTerms:
    """The total and each normalised, batch-averaged term (0-d tensors)."""

    total: Tensor
    rec: Tensor
    sparsity: Tensor
    cycle_au: Tensor
    cycle_pose: Tensor
    emb_au: Tensor
    emb_pose: Tensor

    def scalars(self) -> dict[str, float]:
        """The terms as floats (for logging)."""
        return {
            "loss": float(self.total.detach()),
            "rec": float(self.rec.detach()),
            "sparsity": float(self.sparsity.detach()),
            "cyc_au": float(self.cycle_au.detach()),
            "cyc_pose": float(self.cycle_pose.detach()),
            "emb_au": float(self.emb_au.detach()),
            "emb_pose": float(self.emb_pose.detach()),
        }


def image_l1(a: Tensor, b: Tensor) -> Tensor:
    """``||a - b||_1 / (W H C)`` per image, averaged over the batch.

    Args:
        a, b: ``(B, C, H, W)``.

    Raises:
        ShapeError: shapes differ or are not 4-D.
    """
    if a.dim() != 4 or a.shape != b.shape:
        raise ShapeError(
            f"a, b: expected equal (B, C, H, W) shapes, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    _, c, h, w = a.shape
    return ((a - b).abs().sum(dim=(1, 2, 3)) / (w * h * c)).mean()


def field_l1(field: Tensor) -> Tensor:
    """``sum_xy ||tau_xy||_1 / (W H 2)`` per field, averaged over the batch.

    Args:
        field: ``(B, 2, H, W)`` in pixels.

    Raises:
        ShapeError: not ``(B, 2, H, W)``.
    """
    if field.dim() != 4 or field.shape[1] != 2:
        raise ShapeError(f"field: expected shape (B, 2, H, W), got {tuple(field.shape)}")
    _, c, h, w = field.shape
    return (field.abs().sum(dim=(1, 2, 3)) / (w * h * c)).mean()


def embedding_sq(a: Tensor, b: Tensor) -> Tensor:
    """``||a - b||^2`` per row (sum of squares over the embedding), shape ``(B,)``.

    Raises:
        ShapeError: shapes differ or are not 2-D.
    """
    if a.dim() != 2 or a.shape != b.shape:
        raise ShapeError(
            f"a, b: expected equal (B, D) shapes, got {tuple(a.shape)}, {tuple(b.shape)}"
        )
    return ((a - b) ** 2).sum(dim=1)


def m4_loss(
    out: TCAEOutputs, source: Tensor, target: Tensor, weights: M4LossWeights | None = None
) -> M4LossTerms:
    """The TCAE objective of one batch (module docstring).

    Args:
        out: :meth:`auperf.nets.m4.TCAENet.forward` of ``(source, target)``.
        source, target: ``(B, 3, S, S)`` in ``[0, 1]``.
        weights: loss weights (default :class:`M4LossWeights`).
    """
    w = weights if weights is not None else M4LossWeights()
    rec = image_l1(out.reconstruction, target)
    sparsity = field_l1(out.field_au)
    cyc_a = image_l1(out.cycle_au, source)
    cyc_p = image_l1(out.cycle_pose, source)
    phi_s, psi_s, phi_t, psi_t = out.phi_s, out.psi_s, out.phi_t, out.psi_t
    if w.detach_targets:
        phi_s, psi_s, phi_t, psi_t = (x.detach() for x in (phi_s, psi_s, phi_t, psi_t))
    emb_a = (embedding_sq(out.psi_a, psi_s) + embedding_sq(out.phi_a, phi_t)).mean() / w.norm
    emb_p = (embedding_sq(out.phi_p, phi_s) + embedding_sq(out.psi_p, psi_t)).mean() / w.norm
    total = rec + w.sparsity * sparsity + w.cycle * (cyc_a + cyc_p) + w.embedding * (emb_a + emb_p)
    return M4LossTerms(total, rec, sparsity, cyc_a, cyc_p, emb_a, emb_p)
