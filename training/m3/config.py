"""The M3 run configuration (one YAML file per run, e.g. ``training/configs/m3_demo.yaml``).

Sections: ``data`` (how many faces the renderer draws and at which size), and one section per
network (``parser``, ``imitator``, ``predictor``) with its width, steps, batch size and learning
rate. Unknown keys are refused (:func:`training.common.config.config_from_dict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["M3Config", "DataConfig", "NetConfig", "ImitatorConfig"]


@dataclass
class DataConfig:
    """Rendered training data.

    Attributes:
        seed: seed of the parameter draws and the renderer (held-out faces use ``seed + 1000``).
        size: aligned crop side ``S`` in pixels (multiple of 16).
        render_scale: faces are rendered at ``render_scale * S`` and aligned down to ``S``.
        faces: number of training faces (the imitator and predictor share them).
        uniform_fraction: share of faces with every expression and pose dim uniform in [0, 1]
            (the source's imitator distribution); the rest follow ``sample_params``'s natural
            AU co-occurrence and pose.
        parser_faces: faces for the parser (rendered with ``Augment.realistic()``).
        cache_dir: where rendered arrays are cached (``.npz``), or empty for no cache.
    """

    seed: int = 0
    size: int = 64
    render_scale: int = 2
    faces: int = 12000
    uniform_fraction: float = 0.5
    parser_faces: int = 4000
    cache_dir: str = "runs/cache"


@dataclass
class NetConfig:
    """One network's training: ``steps`` Adam steps of ``batch_size`` at ``lr`` (cosine decay)."""

    width: int = 24
    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-3


@dataclass
class ImitatorConfig(NetConfig):
    """Imitator training; ``perceptual_weight`` weighs the parser-feature L2 term, ``arch`` is
    :class:`auperf.nets.m3.Imitator`'s stage design (``"deconv"`` or ``"upconv"``)."""

    width: int = 64
    min_width: int = 8
    perceptual_weight: float = 1.0
    arch: str = "deconv"


@dataclass
class M3Config:
    """A whole M3 run: data, then parser, imitator and predictor."""

    data: DataConfig = field(default_factory=DataConfig)
    parser: NetConfig = field(default_factory=lambda: NetConfig(width=12))
    imitator: ImitatorConfig = field(default_factory=ImitatorConfig)
    predictor: NetConfig = field(default_factory=NetConfig)
    threads: int = 1
    out_dir: str = "runs/m3"
