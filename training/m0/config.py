"""The M0 run configuration (one YAML file per run).

Example file::

    backbone: resnet34
    input_size: 224
    lambda_mv: 1.0
    train:
      epochs: 20
      batch_size: 64
      lr: 1.0e-4
      out_dir: runs/m0_bp4d
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auperf.nets.backbones import available_backbones

from ..common.config import ConfigError, TrainConfig

__all__ = ["BP4D_AUS", "IMAGENET_MEAN", "IMAGENET_STD", "M0Config", "VARIANTS"]

#: Training variants: M0 itself, its semi-supervised variant and the two baselines of the
#: experiments.
VARIANTS: tuple[str, ...] = ("m0", "semi_supervised", "bce_two_view", "bce_single_view")

# The 12 AUs of BP4D, FACS number and name.
BP4D_AUS: tuple[tuple[int, str], ...] = (
    (1, "inner brow raiser"),
    (2, "outer brow raiser"),
    (4, "brow lowerer"),
    (6, "cheek raiser"),
    (7, "lid tightener"),
    (10, "upper lip raiser"),
    (12, "lip corner puller"),
    (14, "dimpler"),
    (15, "lip corner depressor"),
    (17, "chin raiser"),
    (23, "lip tightener"),
    (24, "lip pressor"),
)
# ImageNet statistics in 8-bit pixel units (RGB).
IMAGENET_MEAN: tuple[float, float, float] = (123.675, 116.28, 103.53)
IMAGENET_STD: tuple[float, float, float] = (58.395, 57.12, 57.375)


@dataclass
class M0Config:
    """Everything an M0 run needs.

    Attributes:
        au_ids: FACS numbers of the AUs, in output order.
        au_names: their names (same length).
        backbone: ``resnet18``, ``resnet34`` (the source's), ``resnet50`` or ``smallnet``.
        input_size: side of the square network input (the source: 224, cropped from 256).
        noisy_heads: build and train noisy heads (``variant: semi_supervised`` and the
            baselines never have them).
        lambda_noisy, lambda_mv, lambda_cons: loss weights.
        pseudo_threshold: probability threshold of the pseudo-labels (semi-supervised variant).
        refine_gamma: weight of the given label in label refinement (source: 0.5).
        refine_epochs: epochs of retraining on the refined labels after the main training
            (0: no refinement stage; only for ``variant: m0``).
        refine_scope: what the retraining updates: ``noisy_heads`` or ``all``.
        variant: ``m0`` (clean and noisy heads, L_mv, L_cons), ``semi_supervised`` (no noisy
            heads; the faces of ``data.unlabelled_fraction`` of the training identities are
            trained on pseudo-labels from the other view's clean prediction, L_mv, L_cons; needs
            ``data.accurate_fraction: 1``), ``bce_two_view`` (two views, plain BCE on all
            given labels, no L_mv / L_cons) or ``bce_single_view`` (one backbone, plain BCE):
            the baselines of the experiments.
        balance_weights: weight the BCE terms per AU by inverse positive rate.
        colour_order, mean, std: input normalisation (8-bit pixel units), written to the
            manifest.
        backbone_init: a safetensors file whose backbone weights start every view's backbone
            (e.g. the M4 TCAE encoder's export; see ``training.m0.backbone_init``); empty: a
            fresh initialisation.
        data: settings of the data pipeline (readers, noise, augmentation), passed through to it.
        train: shared training settings.
    """

    au_ids: list[int] = field(default_factory=lambda: [a for a, _ in BP4D_AUS])
    au_names: list[str] = field(default_factory=lambda: [n for _, n in BP4D_AUS])
    backbone: str = "resnet34"
    input_size: int = 224
    noisy_heads: bool = True
    lambda_noisy: float = 1.0
    lambda_mv: float = 1.0
    lambda_cons: float = 1.0
    pseudo_threshold: float = 0.5
    refine_gamma: float = 0.5
    refine_epochs: int = 0
    refine_scope: str = "noisy_heads"
    variant: str = "m0"
    balance_weights: bool = True
    colour_order: str = "RGB"
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    backbone_init: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def num_aus(self) -> int:
        """``L``."""
        return len(self.au_ids)

    def __post_init__(self) -> None:
        if not self.au_ids:
            raise ConfigError("au_ids: expected at least one AU")
        if len(self.au_names) != len(self.au_ids):
            raise ConfigError(
                f"au_names: expected {len(self.au_ids)} names (one per au_ids entry), "
                f"got {len(self.au_names)}"
            )
        if len(set(self.au_ids)) != len(self.au_ids):
            raise ConfigError(f"au_ids: expected unique ids, got {self.au_ids}")
        if self.backbone not in available_backbones():
            raise ConfigError(
                f"backbone: expected one of {available_backbones()}, got {self.backbone!r}"
            )
        if self.input_size < 32:
            raise ConfigError(f"input_size: expected >= 32, got {self.input_size}")
        for name in ("lambda_noisy", "lambda_mv", "lambda_cons"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if not 0 < self.pseudo_threshold < 1:
            raise ConfigError(
                f"pseudo_threshold: expected a value in (0, 1), got {self.pseudo_threshold}"
            )
        if not 0 <= self.refine_gamma <= 1:
            raise ConfigError(f"refine_gamma: expected a value in [0, 1], got {self.refine_gamma}")
        if self.refine_epochs < 0:
            raise ConfigError(f"refine_epochs: expected >= 0, got {self.refine_epochs}")
        if self.refine_scope not in ("noisy_heads", "all"):
            raise ConfigError(
                f"refine_scope: expected 'noisy_heads' or 'all', got {self.refine_scope!r}"
            )
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant: expected one of {list(VARIANTS)}, got {self.variant!r}")
        if self.colour_order not in ("RGB", "BGR"):
            raise ConfigError(f"colour_order: expected 'RGB' or 'BGR', got {self.colour_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(
                f"mean, std: expected 3 values each, std > 0; got {self.mean}, {self.std}"
            )
