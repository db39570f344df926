"""M0: the two-view co-training AU detector with clean and noisy heads.

Two views ``t = 1, 2``, each with its own backbone, give features ``f^t`` ``(B, D)``. Each view
has a clean head ``g_clean^t`` and (unless disabled) a noisy head ``g_noisy^t``, both linear
``D -> L``:

- clean logits ``z_clean^t = g_clean^t(f^t)``, clean probability ``sigmoid(z_clean^t)``;
- noisy logits ``z_noisy^t = z_clean^t + g_noisy^t(f^t)``, noisy probability
  ``sigmoid(z_noisy^t)``: the noisy head models the label noise on top of the clean prediction.

At inference only the clean heads are used: ``p = sigmoid((z_clean^1 + z_clean^2) / 2)``, an AU
is active when ``p >= threshold``. :class:`M0Inference` emits both views' clean logits stacked as
``(B, 2, L)``, which is what :func:`auperf.ops.fuse_views` consumes.

Example::

    net = M0Net(num_aus=12, backbone="resnet34")
    out = net(images)                          # images (B, 3, 224, 224)
    out.clean.shape, out.noisy.shape           # (B, 2, 12), (B, 2, 12)
    logits = M0Inference(net).eval()(images)   # (B, 2, 12)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..errors import ParameterError, ShapeError
from .backbones import build_backbone

__all__ = ["M0Outputs", "M0View", "M0Net", "M0Inference", "NUM_VIEWS"]

NUM_VIEWS = 2


class M0Outputs(NamedTuple):
    """What :meth:`M0Net.forward` returns (all float tensors).

    Attributes:
        clean: clean logits ``z_clean``, shape ``(B, V, L)``.
        noisy_residual: the noisy heads' own outputs ``g_noisy(f)``, shape ``(B, V, L)``; ``None``
            when the network has no noisy heads.
        noisy: noisy logits ``z_clean + g_noisy(f)`` (the noisy probability is their sigmoid),
            shape ``(B, V, L)``; ``None`` when the network has no noisy heads.
        features: backbone features of each view, shape ``(B, V, D)``.
    """

    clean: Tensor
    noisy_residual: Tensor | None
    noisy: Tensor | None
    features: Tensor


class M0View(nn.Module):
    """One view: a backbone, a clean head and optionally a noisy head.

    Args:
        num_aus: ``L``.
        backbone: backbone name for :func:`auperf.nets.backbones.build_backbone`.
        noisy_head: whether to add the noisy head.
    """

    def __init__(self, num_aus: int, backbone: str, noisy_head: bool = True) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone)
        dim = int(self.backbone.feature_dim)
        self.clean_head = nn.Linear(dim, num_aus)
        self.noisy_head: nn.Linear | None = nn.Linear(dim, num_aus) if noisy_head else None

    def clean_head_matrix(self) -> Tensor:
        """``W = [w; b]`` of the clean head for every AU, shape ``(L, D + 1)`` (differentiable)."""
        return torch.cat([self.clean_head.weight, self.clean_head.bias[:, None]], dim=1)


class M0Net(nn.Module):
    """The M0 training network: two views, clean and noisy heads.

    Args:
        num_aus: number of AUs ``L`` (>= 1).
        backbone: backbone name (``"resnet34"`` in the source; ``"smallnet"`` for CPU demos).
        noisy_heads: add the noisy heads (``False`` for the semi-supervised variant).

    Attributes:
        views: the two :class:`M0View` modules.
        num_aus, backbone_name, has_noisy_heads, feature_dim.
    """

    def __init__(self, num_aus: int, backbone: str = "resnet34", noisy_heads: bool = True) -> None:
        super().__init__()
        if isinstance(num_aus, bool) or not isinstance(num_aus, int) or num_aus < 1:
            raise ParameterError(f"num_aus: expected a positive integer, got {num_aus!r}")
        self.num_aus = num_aus
        self.backbone_name = backbone
        self.has_noisy_heads = bool(noisy_heads)
        self.views = nn.ModuleList(
            [M0View(num_aus, backbone, noisy_heads) for _ in range(NUM_VIEWS)]
        )
        self.feature_dim = int(self.views[0].backbone.feature_dim)

    def _view_inputs(self, x: Tensor) -> list[Tensor]:
        if x.dim() == 4 and x.shape[1] == 3:
            return [x] * NUM_VIEWS
        if x.dim() == 5 and x.shape[1] == NUM_VIEWS and x.shape[2] == 3:
            return [x[:, t] for t in range(NUM_VIEWS)]
        raise ShapeError(
            f"x: expected shape (B, 3, H, W) or (B, {NUM_VIEWS}, 3, H, W), got {tuple(x.shape)}"
        )

    def forward(self, x: Tensor) -> M0Outputs:
        """Run both views.

        Args:
            x: normalised images, either ``(B, 3, H, W)`` (both views see the same image, as at
                inference) or ``(B, 2, 3, H, W)`` (one image per view, e.g. two augmentations).

        Returns:
            :class:`M0Outputs` with ``(B, 2, L)`` logits and ``(B, 2, D)`` features.
        """
        feats, clean, resid = [], [], []
        for view, xv in zip(self.views, self._view_inputs(x), strict=True):
            f = view.backbone(xv)
            feats.append(f)
            clean.append(view.clean_head(f))
            if view.noisy_head is not None:
                resid.append(view.noisy_head(f))
        clean_t = torch.stack(clean, dim=1)
        if resid:
            resid_t = torch.stack(resid, dim=1)
            return M0Outputs(clean_t, resid_t, clean_t + resid_t, torch.stack(feats, dim=1))
        return M0Outputs(clean_t, None, None, torch.stack(feats, dim=1))

    def clean_head_matrices(self) -> tuple[Tensor, Tensor]:
        """Both views' clean-head matrices ``[w; b]``, each ``(L, D + 1)``, for the L_mv loss."""
        return self.views[0].clean_head_matrix(), self.views[1].clean_head_matrix()

    def noisy_head_parameters(self) -> list[nn.Parameter]:
        """Parameters of the noisy heads (empty without noisy heads)."""
        return [
            p for v in self.views if v.noisy_head is not None for p in v.noisy_head.parameters()
        ]


class M0Inference(nn.Module):
    """Inference wrapper: images ``(B, 3, H, W)`` -> both views' clean logits ``(B, 2, L)``.

    This is the graph exported to ONNX (input ``"image"``, output ``"logits"``). The fused
    probability is ``sigmoid(logits.mean(dim=1))``; the noisy heads are not evaluated.

    Args:
        net: a trained :class:`M0Net` (shared, not copied).
    """

    def __init__(self, net: M0Net) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor) -> Tensor:
        """``(B, 3, H, W)`` float -> ``(B, 2, L)`` clean logits (view axis 1)."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ShapeError(f"image: expected shape (B, 3, H, W), got {tuple(image.shape)}")
        logits = [v.clean_head(v.backbone(image)) for v in self.net.views]
        return torch.stack(logits, dim=1)
