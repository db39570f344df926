"""Shared training foundation: configuration, seeding, checkpoints, the loop, metrics.

Submodules:
    config      dataclass run configuration loaded from YAML (unknown keys refused)
    seed        seeding for reproducible and resumable runs
    checkpoint  safetensors checkpoints with a JSON sidecar, resume
    loop        ``Method`` interface and ``Trainer`` (AMP, channels-last, JSONL metrics)
    metrics     per-AU F1, ROC AUC, ICC(3,1), MAE, threshold tuning
"""

from .checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from .config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config,
    save_config,
)
from .loop import Method, StepContext, Trainer
from .seed import epoch_seed, seed_everything

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Method",
    "StepContext",
    "TrainConfig",
    "Trainer",
    "config_from_dict",
    "config_to_dict",
    "epoch_seed",
    "latest_checkpoint",
    "load_checkpoint",
    "load_config",
    "load_weights",
    "save_checkpoint",
    "save_config",
    "save_weights",
    "seed_everything",
]
