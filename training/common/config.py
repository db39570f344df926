"""Run configuration: dataclasses loaded from YAML (or dicts) with strict checking.

Every run is described by one file. Keys map to dataclass fields, nested sections to nested
dataclasses; a key the dataclass does not define raises :class:`ConfigError` naming the full
dotted key (``train.lr_schedul``) and the file, and so does a value of the wrong type.

Example::

    cfg = load_config("m0_bp4d.yaml", M0Config)
    save_config(cfg, run_dir / "config.yaml")
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from auperf.errors import AuperfError

__all__ = [
    "ConfigError",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "save_config",
]

T = TypeVar("T")


class ConfigError(AuperfError, ValueError):
    """A configuration file or dict has an unknown key or a value of the wrong type or range."""


@dataclass
class TrainConfig:
    """Settings every trainer shares (the ``train:`` section of a run file).

    Attributes:
        seed: seed of everything random (initialisation, data order, augmentation).
        epochs: number of epochs.
        batch_size: faces per step.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        lr: learning rate.
        weight_decay: L2 (Adam, SGD) or decoupled (AdamW) weight decay.
        momentum: SGD momentum (ignored by Adam/AdamW).
        lr_schedule: ``"constant"`` or ``"cosine"`` (per epoch, down to 0 at ``epochs``).
        grad_clip: clip the global gradient norm to this value; 0 disables.
        device: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        amp: mixed precision (autocast) when running on CUDA; ignored on CPU.
        amp_dtype: ``"bfloat16"`` (no loss scaling) or ``"float16"`` (with a gradient scaler).
        channels_last: channels-last memory format for the model and 4-D inputs on CUDA.
        deterministic: deterministic algorithms (``torch.use_deterministic_algorithms``).
        num_workers: data-loader worker processes.
        drop_last: drop the last incomplete training batch.
        out_dir: run directory (checkpoints, ``metrics.jsonl``, ``config.yaml``).
        keep_checkpoints: number of most recent epoch checkpoints kept (>= 1).
        progress: show tqdm progress bars.
    """

    seed: int = 0
    epochs: int = 20
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-4
    weight_decay: float = 0.0
    momentum: float = 0.9
    lr_schedule: str = "constant"
    grad_clip: float = 0.0
    device: str = "auto"
    amp: bool = True
    amp_dtype: str = "bfloat16"
    channels_last: bool = True
    deterministic: bool = True
    num_workers: int = 0
    drop_last: bool = False
    out_dir: str = "runs/default"
    keep_checkpoints: int = 2
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            ("epochs", self.epochs >= 1, ">= 1"),
            ("batch_size", self.batch_size >= 1, ">= 1"),
            ("optimizer", self.optimizer in ("adam", "adamw", "sgd"), "'adam', 'adamw' or 'sgd'"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("lr_schedule", self.lr_schedule in ("constant", "cosine"), "'constant' or 'cosine'"),
            ("grad_clip", self.grad_clip >= 0, ">= 0"),
            ("amp_dtype", self.amp_dtype in ("bfloat16", "float16"), "'bfloat16' or 'float16'"),
            ("num_workers", self.num_workers >= 0, ">= 0"),
            ("keep_checkpoints", self.keep_checkpoints >= 1, ">= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"train.{name}: expected {expected}, got {getattr(self, name)!r}")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against annotation ``tp`` and convert it (nested dataclasses, tuples)."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping (section {tp.__name__}), got {value!r}")
        return config_from_dict(tp, value, _prefix=key + ".")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            return tuple(
                _convert(v, a, f"{key}[{i}]")
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item = args[0] if args else Any
        out = [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")


def config_from_dict(cls: type[T], data: dict[str, Any], *, _prefix: str = "") -> T:
    """Build dataclass ``cls`` from a (nested) dict, checking every key and type.

    Args:
        cls: a dataclass type (fields may be nested dataclasses).
        data: the values; missing keys keep their defaults.

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: unknown key (named with its dotted path), wrong type, or a field's own
            validation failing.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{_prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in names:
            raise ConfigError(
                f"{_prefix}{key}: unknown key for {cls.__name__}; known keys: {sorted(names)}"
            )
    kwargs = {k: _convert(v, hints[k], _prefix + k) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if _prefix and not str(exc).startswith(_prefix):
            raise ConfigError(f"{_prefix}{exc}") from None
        raise


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass as plain nested dicts and lists (tuples become lists), ready for YAML/JSON."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        return v

    return plain(cfg)


def load_config(path: str | Path, cls: type[T]) -> T:
    """Load a YAML run file into dataclass ``cls``.

    Raises:
        ConfigError: missing file, invalid YAML, unknown key or wrong type; the message names
            the file and the dotted key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    try:
        return config_from_dict(cls, data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a dataclass config as YAML (keys in field order)."""
    Path(path).write_text(yaml.safe_dump(config_to_dict(cfg), sort_keys=False), encoding="utf-8")
