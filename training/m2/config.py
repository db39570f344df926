"""The M2 run configuration (one YAML file per run).

Example file::

    backbone: resnet18
    input_size: 224
    importance:
      enabled: true        # false: the plain cross-entropy baseline
      beta: 0.7
      delta1: 0.15
      gamma: 0.5
      relabel: true
      delta2: 0.2
      relabel_after: 5
      warmup_epochs: 0
    data:
      source: synth        # or the root of a RAF-DB, AffectNet or FERPlus layout
      num_classes: 7
      noise: symmetric     # none | symmetric | asymmetric
      noise_rate: 0.2
    train:
      epochs: 20
      out_dir: runs/m2
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auperf.labels import EXPRESSIONS
from auperf.nets.backbones import available_backbones

from ..common.config import ConfigError, TrainConfig
from ..common.importance import ImportanceConfig
from ..data.config import SynthConfig
from ..m0.config import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["M2Config", "M2DataConfig", "NOISE_MODES"]

#: Label-noise modes of the training split (:func:`auperf.datasets.flip_expressions`).
NOISE_MODES: tuple[str, ...] = ("none", "symmetric", "asymmetric")
_LAYOUTS = ("rafdb", "affectnet", "ferplus")


@dataclass
class M2DataConfig:
    """The ``data:`` section: where faces come from and how their labels are corrupted.

    Attributes:
        source: ``"synth"`` (faces rendered by :mod:`auperf.synth` from the AU prototypes of
            the expressions) or the root folder of a RAF-DB, AffectNet or FERPlus layout.
        layout: ``rafdb``, ``affectnet`` or ``ferplus`` (``None``: detected from the folder).
        num_classes: ``C``: 7 (the basic expressions with neutral, indices 0-6 of
            :data:`auperf.labels.EXPRESSIONS`) or 8 (with contempt).
        synth: rendering settings and the identity split (for ``source: synth``).
        intensity: range of the expression prototypes' dims of rendered faces (in
            ``[0.2, 1]``; :func:`auperf.synth.sample_category`).
        noise: label noise of the training split: ``none``, ``symmetric`` (to any other class)
            or ``asymmetric`` (to a fixed confusable class,
            :data:`auperf.datasets.ASYMMETRIC_EXPRESSION_MAP`).
        noise_rate: fraction of training labels flipped, in ``[0, 1]``.
        noise_seed: seed of the flips.
        val_fraction: for datasets, the fraction of subjects (samples, where the layout has no
            subjects) of the non-test part held out for validation.
        split_seed: seed of that split.
        flip_p, grayscale_p: training augmentation probabilities (plus a random crop).
        cache_dir: where rendered synthetic faces are cached (``.npz``).
    """

    source: str = "synth"
    layout: str | None = None
    num_classes: int = 7
    synth: SynthConfig = field(default_factory=SynthConfig)
    intensity: tuple[float, float] = (0.4, 1.0)
    noise: str = "none"
    noise_rate: float = 0.0
    noise_seed: int = 0
    val_fraction: float = 0.1
    split_seed: int = 0
    flip_p: float = 0.5
    grayscale_p: float = 0.1
    cache_dir: str = "runs/cache"

    def __post_init__(self) -> None:
        if self.num_classes not in (7, 8):
            raise ConfigError(f"num_classes: expected 7 or 8, got {self.num_classes!r}")
        if self.layout is not None and self.layout not in _LAYOUTS:
            raise ConfigError(f"layout: expected one of {list(_LAYOUTS)}, got {self.layout!r}")
        lo, hi = self.intensity
        if not 0.2 <= lo <= hi <= 1.0:
            raise ConfigError(f"intensity: expected 0.2 <= low <= high <= 1, got {self.intensity}")
        if self.noise not in NOISE_MODES:
            raise ConfigError(f"noise: expected one of {list(NOISE_MODES)}, got {self.noise!r}")
        if not 0 <= self.noise_rate <= 1:
            raise ConfigError(f"noise_rate: expected a value in [0, 1], got {self.noise_rate!r}")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction: expected a value in [0, 1), got {self.val_fraction}")
        for name in ("flip_p", "grayscale_p"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}: expected a value in [0, 1], got {getattr(self, name)}")

    @property
    def classes(self) -> tuple[str, ...]:
        """The class names, in output order."""
        return EXPRESSIONS[: self.num_classes]


@dataclass
class M2Config:
    """Everything an M2 run needs.

    Attributes:
        backbone: ``resnet18`` (the article's), ``resnet34``, ``resnet50`` or ``smallnet``.
        input_size: side ``S`` of the square network input; faces are aligned to
            ``round(S * 256 / 224)`` and cut to ``S`` (random crop in training, centre crop at
            inference), as for M0.
        dropout: dropout before the classifier and importance heads.
        importance: the Self-Cure Network switches (``importance.enabled: false`` trains the
            plain cross-entropy baseline with everything else equal).
        colour_order, mean, std: input normalisation in 8-bit pixel units (written to the
            manifest).
        data: the data section.
        train: shared training settings.
    """

    backbone: str = "resnet18"
    input_size: int = 224
    dropout: float = 0.0
    importance: ImportanceConfig = field(default_factory=ImportanceConfig)
    colour_order: str = "RGB"
    mean: list[float] = field(default_factory=lambda: list(IMAGENET_MEAN))
    std: list[float] = field(default_factory=lambda: list(IMAGENET_STD))
    data: M2DataConfig = field(default_factory=M2DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.backbone not in available_backbones():
            raise ConfigError(
                f"backbone: expected one of {available_backbones()}, got {self.backbone!r}"
            )
        if self.input_size < 32:
            raise ConfigError(f"input_size: expected >= 32, got {self.input_size}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout: expected a value in [0, 1), got {self.dropout}")
        if self.colour_order not in ("RGB", "BGR"):
            raise ConfigError(f"colour_order: expected 'RGB' or 'BGR', got {self.colour_order!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigError(
                f"mean, std: expected 3 values each, std > 0; got {self.mean}, {self.std}"
            )
        if self.train.batch_size < 2 and self.importance.enabled:
            raise ConfigError(
                "train.batch_size: rank regularisation needs batches of >= 2, got "
                f"{self.train.batch_size}"
            )

    @property
    def num_classes(self) -> int:
        """``C``."""
        return self.data.num_classes
