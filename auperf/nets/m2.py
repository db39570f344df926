"""M2: the Self-Cure Network expression classifier.

A backbone gives features ``x`` ``(B, D)``; a linear classifier gives logits ``z = W x + b``
``(B, C)`` and, when importance weighting is on, an importance head gives
``alpha = sigmoid(w_a . x + b_a)`` ``(B,)``. Training uses the weighted logits ``alpha * z``
(see ``training/common/importance.py``); :class:`M2Inference`, the exported graph, emits the
same weighted logits, so that ``softmax`` of the output is the distribution the classifier was
trained to produce (the weighting does not change the arg max).

Example::

    net = M2Net(num_classes=7, backbone="resnet18")
    out = net(images)                         # images (B, 3, S, S), normalised
    out.logits.shape, out.alpha.shape         # (B, 7), (B,)
    logits = M2Inference(net).eval()(images)  # (B, 7) = alpha[:, None] * out.logits
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..errors import ParameterError
from .backbones import build_backbone

__all__ = ["M2Inference", "M2Net", "M2Outputs"]


class M2Outputs(NamedTuple):
    """What :meth:`M2Net.forward` returns.

    Attributes:
        logits: ``(B, C)`` unweighted class logits ``W x + b``.
        alpha: ``(B,)`` importances in ``(0, 1)``, or ``None`` without an importance head.
        features: ``(B, D)`` backbone features.
    """

    logits: Tensor
    alpha: Tensor | None
    features: Tensor

    def weighted_logits(self) -> Tensor:
        """``alpha[:, None] * logits`` (the logits themselves without an importance head)."""
        return self.logits if self.alpha is None else self.alpha[:, None] * self.logits


class M2Net(nn.Module):
    """Backbone, classifier and (optionally) importance head.

    Args:
        num_classes: ``C`` (>= 2).
        backbone: a name of :func:`auperf.nets.backbones.available_backbones`
            (``resnet18`` is the article's).
        importance: build the importance head (``False``: a plain classifier).
        dropout: dropout probability before the classifier.
    """

    def __init__(
        self,
        num_classes: int = 7,
        backbone: str = "resnet18",
        importance: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ParameterError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
        if not 0 <= dropout < 1:
            raise ParameterError(f"dropout: expected a value in [0, 1), got {dropout!r}")
        self.num_classes = num_classes
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone)
        dim = int(self.backbone.feature_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(dim, num_classes)
        self.importance = nn.Linear(dim, 1) if importance else None

    @property
    def has_importance(self) -> bool:
        """Whether the network has an importance head."""
        return self.importance is not None

    def forward(self, x: Tensor) -> M2Outputs:
        """``(B, 3, H, W)`` normalised images -> :class:`M2Outputs`."""
        f = self.backbone(x)
        d = self.dropout(f)
        logits = self.classifier(d)
        alpha = None
        if self.importance is not None:
            alpha = torch.sigmoid(self.importance(d)).squeeze(1)
        return M2Outputs(logits, alpha, f)


class M2Inference(nn.Module):
    """The exported graph: ``(B, 3, H, W) -> (B, C)`` weighted logits (softmax gives the class
    probabilities)."""

    def __init__(self, net: M2Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).weighted_logits()
