"""M1 run configuration (the sections of a ``training/configs/m1_*.yaml`` file).

Every loss weight, temperature and sampler constant of the M1 recipe is a field here; a key a
section does not define raises :class:`training.common.ConfigError` naming the dotted key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from training.common.config import ConfigError

__all__ = [
    "M1DataConfig",
    "SamplerConfig",
    "M1LossWeights",
    "M1TrainConfig",
    "M1Config",
    "VARIANTS",
]

#: What a run trains: the full method, the ablation without the contrastive and adversarial
#: terms, and the plain weighted-BCE detector (same network, BCE only).
VARIANTS = ("m1", "no_contrast_adv", "bce")


@dataclass
class M1DataConfig:
    """Identity-labelled synthetic videos (``data:``).

    Each identity is one video of ``frames_per_identity`` frames at ``fps`` rendered by
    :func:`auperf.synth.render_sequence` (expression events at ``event_rate`` per second);
    identities ``[0, train)`` train, the next ``val`` validate, the last ``test`` test.

    Attributes:
        seed: seed of identities, trajectories and renderer.
        render_size: side of the rendered frames (pixels).
        train_identities, val_identities, test_identities: identities per split.
        frames_per_identity: frames per video.
        fps: frame rate of the videos (frames per second).
        event_rate: expression events per second.
        augment: renderer augmentation preset (``off`` or ``light``).
        cache_dir: folder of the ``.npz`` cache (empty: no cache).
    """

    seed: int = 0
    render_size: int = 128
    train_identities: int = 60
    val_identities: int = 10
    test_identities: int = 20
    frames_per_identity: int = 48
    fps: float = 4.0
    event_rate: float = 1.0
    augment: str = "off"
    cache_dir: str = "runs/cache"


@dataclass
class SamplerConfig:
    """Pair sampling (``sampler:``); times in seconds.

    Attributes:
        far_s: a same-identity frame more than ``far_s`` away from the anchor is a hard negative
            (``T`` of the method) even when it shares AUs, provided its labels differ.
        near_s: a same-identity frame within ``near_s`` of the anchor (not the anchor itself) is
            a hard positive.
        min_shared_ratio: a different identity is a hard positive when it shares at least this
            fraction of the anchor's active AUs, and at least 2 of them when the anchor has
            several (the one AU when it has one; no active AU when the anchor has none).
        temporal_positive_p: probability of drawing the positive from the near frames rather
            than from other identities (the other kind is used when one kind has no candidate).
    """

    far_s: float = 4.0
    near_s: float = 0.5
    min_shared_ratio: float = 0.5
    temporal_positive_p: float = 0.25


@dataclass
class M1LossWeights:
    """Loss weights and temperatures (``loss:``).

    ``total = bce*L_bce + gan*L_gan + emb*L_emb + cycle*L_cycle + rec*L_rec + id*L_id
    + au*L_au + orth*L_orth + landmark*L_lmk + adv_id*L_adv_id + adv_geo*L_adv_geo``.
    Discriminators use their own losses (LSGAN, BCE, cross-entropy) with weight 1.

    Attributes:
        au_weights: per-AU weights ``w_c`` of the per-AU contrastive loss (empty: all 1).
    """

    bce: float = 1.0
    gan: float = 0.05
    emb: float = 0.5
    cycle: float = 0.5
    rec: float = 1.0
    id: float = 0.2
    au: float = 0.2
    orth: float = 0.1
    landmark: float = 0.1
    adv_id: float = 0.1
    adv_geo: float = 0.1
    tau_id: float = 0.1
    tau_au: float = 0.1
    au_weights: list[float] = field(default_factory=list)


@dataclass
class M1TrainConfig:
    """Optimisation (``train:``).

    Attributes:
        variant: one of :data:`VARIANTS`.
        seed: seed of initialisation and sampling.
        iterations: optimiser steps.
        pairs_per_batch: ``K`` quadruples ``(a, a-, p, p-)`` per step (``4K`` images).
        lr, lr_disc: Adam learning rates of the main networks and of the discriminators.
        chunk: steps between checkpoints (resume granularity).
        out_dir: run directory.
        threads: torch intra-op threads.
        progress: tqdm progress bar.
    """

    variant: str = "m1"
    seed: int = 0
    iterations: int = 1500
    pairs_per_batch: int = 8
    lr: float = 1e-3
    lr_disc: float = 5e-4
    chunk: int = 250
    out_dir: str = "runs/m1"
    threads: int = 1
    progress: bool = True


@dataclass
class M1Config:
    """A whole M1 run file.

    Attributes:
        au_ids, au_names: the AUs (renderer AUs), in output order.
        input_size: side ``S`` of the aligned crop fed to the network (pixels).
        embed_dim, node_dim, width: :class:`auperf.nets.m1.M1Net` sizes.
        adjacency_threshold: see :func:`auperf.nets.m1.cooccurrence_adjacency`.
        gen_width: first-stage channels of the generator and image discriminator.
        gen_size: side of the generated images (a power of two <= ``input_size``); the
            generator and image discriminator work at this size against the frames
            average-pooled to it, and generated images are upsampled (bilinear) to
            ``input_size`` before re-encoding. Below ``input_size`` it saves CPU time.
        landmark_grid: ``d``: landmarks are classified over a ``d x d`` grid.
    """

    au_ids: list[int] = field(default_factory=lambda: [1, 2, 4, 6, 7, 10, 12, 15, 17, 23, 24, 25])
    au_names: list[str] = field(
        default_factory=lambda: [
            "inner brow raiser",
            "outer brow raiser",
            "brow lowerer",
            "cheek raiser",
            "lid tightener",
            "upper lip raiser",
            "lip corner puller",
            "lip corner depressor",
            "chin raiser",
            "lip tightener",
            "lip pressor",
            "lips part",
        ]
    )
    input_size: int = 64
    embed_dim: int = 32
    node_dim: int = 16
    width: int = 16
    adjacency_threshold: float = 0.3
    gen_width: int = 16
    gen_size: int = 32
    landmark_grid: int = 16
    data: M1DataConfig = field(default_factory=M1DataConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    loss: M1LossWeights = field(default_factory=M1LossWeights)
    train: M1TrainConfig = field(default_factory=M1TrainConfig)

    def __post_init__(self) -> None:
        checks = [
            ("au_names", len(self.au_names) == len(self.au_ids), "one name per AU in au_ids"),
            ("input_size", self.input_size in (32, 64, 128), "32, 64 or 128"),
            ("landmark_grid", self.landmark_grid >= 2, ">= 2"),
            (
                "gen_size",
                self.gen_size in (32, 64, 128) and self.gen_size <= self.input_size,
                "32, 64 or 128 and <= input_size",
            ),
            ("train.variant", self.train.variant in VARIANTS, f"one of {VARIANTS}"),
            ("train.iterations", self.train.iterations >= 1, ">= 1"),
            ("train.pairs_per_batch", self.train.pairs_per_batch >= 2, ">= 2"),
            ("train.chunk", self.train.chunk >= 1, ">= 1"),
            ("loss.tau_id", self.loss.tau_id > 0, "> 0"),
            ("loss.tau_au", self.loss.tau_au > 0, "> 0"),
            (
                "loss.au_weights",
                len(self.loss.au_weights) in (0, len(self.au_ids)),
                "empty or one weight per AU",
            ),
            ("sampler.min_shared_ratio", 0 <= self.sampler.min_shared_ratio <= 1, "in [0, 1]"),
            (
                "sampler.temporal_positive_p",
                0 <= self.sampler.temporal_positive_p <= 1,
                "in [0, 1]",
            ),
            ("data.train_identities", self.data.train_identities >= 2, ">= 2"),
            ("data.test_identities", self.data.test_identities >= 2, ">= 2"),
            ("data.frames_per_identity", self.data.frames_per_identity >= 4, ">= 4"),
            ("data.augment", self.data.augment in ("off", "light"), "'off' or 'light'"),
        ]
        for key, ok, want in checks:
            if not ok:
                value = self
                for part in key.split("."):
                    value = getattr(value, part)
                raise ConfigError(f"{key}: expected {want}, got {value!r}")
