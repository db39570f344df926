"""The M4 (TCAE) run configuration (one YAML file per run).

Example file::

    image_size: 64
    backbone: smallnet
    curriculum: {gap_start: 1, gap_end: 12, epochs: 6}
    data: {source: synth, train_sequences: 160, frames_per_sequence: 60}
    train: {epochs: 10, batch_size: 32, lr: 1.0e-3, out_dir: runs/m4}
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auperf.nets.backbones import available_backbones

from ..common.config import ConfigError, TrainConfig

__all__ = ["CurriculumConfig", "M4DataConfig", "M4Config", "AUGMENT_PRESETS"]

AUGMENT_PRESETS: tuple[str, ...] = ("off", "light")


@dataclass
class CurriculumConfig:
    """The frame gap of the training pairs, widened as training goes.

    Epoch ``e`` (1-based) draws each pair's gap uniformly from ``1 .. G(e)`` frames, with
    ``G(e) = round(gap_start + (gap_end - gap_start) * min(1, (e - 1) / max(1, epochs - 1)))``:
    ``gap_start`` in the first epoch, ``gap_end`` from epoch ``epochs`` on.
    """

    gap_start: int = 1
    gap_end: int = 12
    epochs: int = 6

    def __post_init__(self) -> None:
        if self.gap_start < 1:
            raise ConfigError(f"curriculum.gap_start: expected >= 1, got {self.gap_start}")
        if self.gap_end < self.gap_start:
            raise ConfigError(
                f"curriculum.gap_end: expected >= gap_start ({self.gap_start}), got {self.gap_end}"
            )
        if self.epochs < 1:
            raise ConfigError(f"curriculum.epochs: expected >= 1, got {self.epochs}")

    def max_gap(self, epoch: int) -> int:
        """``G(epoch)`` (see the class docstring)."""
        frac = min(1.0, max(0, epoch - 1) / max(1, self.epochs - 1))
        return int(round(self.gap_start + (self.gap_end - self.gap_start) * frac))


@dataclass
class M4DataConfig:
    """Where the video clips come from (no labels are used for training).

    Attributes:
        source: ``"synth"`` (sequences of :func:`auperf.synth.render_sequence`, moving heads
            and changing AUs) or a folder of videos (each with an optional
            ``<stem>.landmarks5.npy`` of ``(T, 5, 2)`` points; see ``training.m4.data``).
        seed: seed of the rendered sequences.
        render_size: side of the rendered frames (then aligned to ``image_size``).
        train_sequences, test_sequences: rendered clips per split, one identity each.
        frames_per_sequence: frames per rendered clip.
        fps: frame rate of the rendered clips.
        pose_amplitude_deg: typical yaw, pitch, roll excursions of the rendered heads.
        event_rate: AU events per second in the rendered clips.
        augment: renderer preset, ``off`` or ``light`` (clutter, light, blur, noise, JPEG).
        pairs_per_epoch: frame pairs drawn per epoch.
        max_frames: most frames read per video of a folder (0: all).
        cache_dir: where rendered/aligned clips are cached as ``.npz`` (empty: no cache).
    """

    source: str = "synth"
    seed: int = 0
    render_size: int = 96
    train_sequences: int = 160
    test_sequences: int = 40
    frames_per_sequence: int = 60
    fps: float = 10.0
    pose_amplitude_deg: list[float] = field(default_factory=lambda: [20.0, 10.0, 5.0])
    event_rate: float = 0.5
    augment: str = "light"
    pairs_per_epoch: int = 4096
    max_frames: int = 0
    cache_dir: str = "runs/cache"

    def __post_init__(self) -> None:
        checks = [
            ("render_size", self.render_size >= 32, ">= 32"),
            ("train_sequences", self.train_sequences >= 1, ">= 1"),
            ("test_sequences", self.test_sequences >= 0, ">= 0"),
            ("frames_per_sequence", self.frames_per_sequence >= 2, ">= 2"),
            ("fps", self.fps > 0, "> 0"),
            ("pose_amplitude_deg", len(self.pose_amplitude_deg) == 3, "3 values"),
            ("event_rate", self.event_rate >= 0, ">= 0"),
            ("augment", self.augment in AUGMENT_PRESETS, f"one of {list(AUGMENT_PRESETS)}"),
            ("pairs_per_epoch", self.pairs_per_epoch >= 1, ">= 1"),
            ("max_frames", self.max_frames >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"data.{name}: expected {expected}, got {getattr(self, name)!r}")


@dataclass
class M4Config:
    """Everything an M4 run needs.

    Attributes:
        image_size: side of the aligned square crops (a multiple of 16; 64 on CPU).
        backbone: encoder backbone (:func:`auperf.nets.backbones.available_backbones`).
        au_dim, pose_dim: sizes of ``phi`` and ``psi``.
        decoder_channels: channels of the decoders' four upsampling stages.
        max_displacement: largest field value in pixels (0: ``image_size / 4``).
        antisymmetric_decoders: field decoders with ``D(s, t) = -D(t, s)``
            (:class:`auperf.nets.m4.FieldDecoder`).
        lambda_sparsity, lambda_cycle, lambda_embedding: ``lambda_1..3`` of the loss.
        embedding_norm: divisor of the embedding terms (the article's 256).
        detach_targets: stop the gradient at the embedding terms' targets
            (:class:`training.m4.losses.M4LossWeights`).
        warmup_epochs: the first ``warmup_epochs`` epochs train ``L_rec`` alone (sparsity,
            cycle and embedding weights 0), so the fields can grow before the other terms
            pull on them; validation always uses the full weights.
        curriculum: the frame-gap schedule.
        data: the clips.
        train: shared training settings.
    """

    image_size: int = 64
    backbone: str = "smallnet"
    au_dim: int = 256
    pose_dim: int = 256
    decoder_channels: list[int] = field(default_factory=lambda: [64, 48, 32, 16])
    max_displacement: float = 0.0
    antisymmetric_decoders: bool = True
    lambda_sparsity: float = 0.001
    lambda_cycle: float = 1.0
    lambda_embedding: float = 0.01
    embedding_norm: float = 256.0
    detach_targets: bool = True
    warmup_epochs: int = 0
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    data: M4DataConfig = field(default_factory=M4DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.image_size < 16 or self.image_size % 16:
            raise ConfigError(f"image_size: expected a multiple of 16, got {self.image_size}")
        if self.backbone not in available_backbones():
            raise ConfigError(
                f"backbone: expected one of {available_backbones()}, got {self.backbone!r}"
            )
        if self.au_dim < 1 or self.pose_dim < 1:
            raise ConfigError(
                f"au_dim, pose_dim: expected >= 1, got {self.au_dim}, {self.pose_dim}"
            )
        if len(self.decoder_channels) != 4 or min(self.decoder_channels) < 1:
            raise ConfigError(
                f"decoder_channels: expected 4 positive values, got {self.decoder_channels}"
            )
        if self.max_displacement < 0:
            raise ConfigError(f"max_displacement: expected >= 0, got {self.max_displacement}")
        for name in ("lambda_sparsity", "lambda_cycle", "lambda_embedding"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if self.embedding_norm <= 0:
            raise ConfigError(f"embedding_norm: expected > 0, got {self.embedding_norm}")
        if self.warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs: expected >= 0, got {self.warmup_epochs}")
