"""Settings of the M0 data pipeline: the ``data:`` section of an M0 run file.

Example section::

    data:
      source: synth                # or a dataset root (BP4D, DISFA, ... layouts)
      synth:
        train_identities: 300
        faces_per_identity: 10
      accurate_fraction: 0.25      # labelled train identities whose labels are accurate
      noise: weak_model            # none | flip | weak_model
      noise_rate: 0.2
      unlabelled_fraction: 0.0     # train identities whose labels are withheld

Unknown keys and wrong types raise :class:`training.common.config.ConfigError` naming the dotted
key (``data.synth.faces_per_idenity``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..common.config import ConfigError, config_from_dict

__all__ = ["SynthConfig", "DataConfig", "parse_data_config", "aligned_size"]

_AUGMENT_PRESETS = ("off", "light", "realistic")


def aligned_size(input_size: int) -> int:
    """Side of the aligned crop that the ``input_size`` crop is cut from: ``round(S * 256 / 224)``
    (M0's 224-of-256 ratio, the same rule as :func:`training.m0.export.default_alignment`)."""
    return int(round(input_size * 256 / 224))


@dataclass
class SynthConfig:
    """Synthetic faces from :mod:`auperf.synth`, split by identity.

    Attributes:
        seed: seed of identities, expressions, poses and the renderer.
        render_size: side of the rendered images (faces are then aligned from them).
        train_identities, val_identities, test_identities: identities per split (disjoint).
        faces_per_identity: faces rendered per identity (random expression and pose each).
        augment: renderer augmentation preset: ``off``, ``light`` (clutter, light, blur, noise,
            JPEG) or ``realistic`` (``auperf.synth.Augment.realistic``, with occluders).
        jitter_scale, jitter_shift, jitter_roll_deg: framing jitter, so that alignment has work
            to do (see ``auperf.synth.Framing``).
        batch: faces rendered per call.
    """

    seed: int = 0
    render_size: int = 128
    train_identities: int = 240
    val_identities: int = 40
    test_identities: int = 60
    faces_per_identity: int = 10
    augment: str = "light"
    jitter_scale: float = 0.08
    jitter_shift: float = 0.04
    jitter_roll_deg: float = 10.0
    batch: int = 256

    def __post_init__(self) -> None:
        checks = [
            ("render_size", self.render_size >= 32, ">= 32"),
            ("train_identities", self.train_identities >= 1, ">= 1"),
            ("val_identities", self.val_identities >= 1, ">= 1"),
            ("test_identities", self.test_identities >= 0, ">= 0"),
            ("faces_per_identity", self.faces_per_identity >= 1, ">= 1"),
            ("augment", self.augment in _AUGMENT_PRESETS, f"one of {_AUGMENT_PRESETS}"),
            ("batch", self.batch >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name}: expected {expected}, got {getattr(self, name)!r}")


@dataclass
class DataConfig:
    """The M0 data pipeline.

    Attributes:
        source: ``"synth"`` (rendered faces) or the root folder of a dataset in one of the
            layouts of :func:`auperf.datasets.open_dataset`.
        layout: the dataset layout (``None``: detected from the folder).
        synth: settings of the synthetic faces.
        val_fraction, test_fraction: for datasets, the fraction of subjects held out for
            validation and test (split by subject; synthetic data uses identity counts).
        split_seed: seed of the subject split.
        accurate_fraction: fraction of the labelled training identities (subjects) whose labels
            are kept accurate; the others form the inaccurately labelled set.
        unlabelled_fraction: fraction of the training identities (subjects) whose labels are
            withheld: they form the unlabelled set (``ceil(fraction * identities)`` identities,
            drawn before the accurate / inaccurate split; 0 leaves that split as it was). The
            ``semi_supervised`` variant trains on them with pseudo-labels; the other variants do
            not see them.
        noise: label noise of the inaccurate set: ``none`` (their labels are the true ones),
            ``flip`` (:func:`auperf.datasets.flip_labels`, random) or ``weak_model``
            (:func:`auperf.datasets.weak_model_labels`, systematic, from appearance features).
        noise_rate: the rate of inaccurate labels, in ``[0, 1]``.
        noise_seed: seed of the noise.
        weak_temperature: temperature of the weak model (0: deterministic in the appearance).
        aligned_size: side of the aligned crop (0: ``round(input_size * 256 / 224)``).
        flip_p: probability of a horizontal flip.
        grayscale_p: probability of converting a crop to grey.
        two_views: give each view its own augmentation (``(B, 2, 3, S, S)`` batches).
        cache_dir: where aligned crops are cached (keyed by these settings).
    """

    source: str = "synth"
    layout: str | None = None
    synth: SynthConfig = field(default_factory=SynthConfig)
    val_fraction: float = 0.15
    test_fraction: float = 0.0
    split_seed: int = 0
    accurate_fraction: float = 0.25
    unlabelled_fraction: float = 0.0
    noise: str = "none"
    noise_rate: float = 0.0
    noise_seed: int = 0
    weak_temperature: float = 0.25
    aligned_size: int = 0
    flip_p: float = 0.5
    grayscale_p: float = 0.2
    two_views: bool = True
    cache_dir: str = "runs/cache"

    def __post_init__(self) -> None:
        for name in (
            "val_fraction",
            "test_fraction",
            "accurate_fraction",
            "unlabelled_fraction",
            "noise_rate",
            "flip_p",
            "grayscale_p",
        ):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{name}: expected a value in [0, 1], got {v!r}")
        if self.unlabelled_fraction >= 1.0:
            raise ConfigError(
                "unlabelled_fraction: expected a value in [0, 1) (some training labels must be "
                f"given), got {self.unlabelled_fraction!r}"
            )
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ConfigError(
                "val_fraction + test_fraction: expected < 1, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        if self.noise not in ("none", "flip", "weak_model"):
            raise ConfigError(f"noise: expected 'none', 'flip' or 'weak_model', got {self.noise!r}")
        if self.weak_temperature < 0:
            raise ConfigError(f"weak_temperature: expected >= 0, got {self.weak_temperature!r}")
        if self.aligned_size < 0:
            raise ConfigError(f"aligned_size: expected >= 0, got {self.aligned_size!r}")
        if not self.source:
            raise ConfigError("source: expected 'synth' or a dataset folder, got ''")


def parse_data_config(data: dict[str, Any] | DataConfig) -> DataConfig:
    """The ``data:`` section of an M0 run file as a :class:`DataConfig`.

    Raises:
        ConfigError: unknown key or wrong type, named as ``data.<key>``.
    """
    if isinstance(data, DataConfig):
        return data
    try:
        return config_from_dict(DataConfig, dict(data or {}), _prefix="data.")
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith("data.") else f"data.{msg}") from None
