"""Checkpoints as safetensors plus a JSON sidecar: no pickle anywhere.

A checkpoint of epoch ``e`` in directory ``d`` is two files:

- ``d/epoch-000e.safetensors``: every tensor. Keys ``model.<name>`` (the model's state dict),
  ``optimizer.state.<param index>.<name>`` (optimizer state tensors such as Adam's moments and
  step), ``extra.<name>`` (tensors a method wants kept, e.g. refined labels).
- ``d/epoch-000e.json``: the small state: format version, epoch, the optimizer's param groups
  and non-tensor state, scheduler and gradient-scaler state, the method's JSON state, the
  epoch's metrics, the safetensors file's size and sha256.

Both are written to a temporary name and renamed; the sidecar is written last, so a checkpoint
counts (for :func:`latest_checkpoint`) only once it is complete. A run killed at any moment
resumes from the last complete epoch.

Example::

    save_checkpoint(run / "checkpoints", 3, model, optimizer, metrics={"val_f1": 0.61})
    info = load_checkpoint(latest_checkpoint(run / "checkpoints"), model, optimizer)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from auperf.errors import AuperfError

__all__ = [
    "CHECKPOINT_FORMAT_VERSION",
    "CheckpointError",
    "CheckpointInfo",
    "save_checkpoint",
    "load_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "prune_checkpoints",
    "save_weights",
    "load_weights",
    "sha256_file",
]

CHECKPOINT_FORMAT_VERSION = 1
_log = logging.getLogger("auperf.training")
_NAME = re.compile(r"^epoch-(\d+)\.json$")


class CheckpointError(AuperfError, ValueError):
    """A checkpoint is missing, incomplete, corrupt, or does not fit the model or optimizer."""


@dataclass
class CheckpointInfo:
    """What :func:`load_checkpoint` restored besides the model and optimizer.

    Attributes:
        path: the safetensors file.
        epoch: the completed epoch the checkpoint was written after.
        extra_tensors: the ``extra.`` tensors (on CPU).
        extra_state: the method's JSON state.
        metrics: the epoch's metrics.
    """

    path: Path
    epoch: int
    extra_tensors: dict[str, Tensor] = field(default_factory=dict)
    extra_state: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _cpu(t: Tensor) -> Tensor:
    return t.detach().to("cpu").contiguous()


def _jsonable(v: Any, what: str) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x, what) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x, what) for k, x in v.items()}
    if isinstance(v, Tensor) and v.numel() == 1:
        return v.item()
    raise CheckpointError(f"{what}: value {v!r} of type {type(v).__name__} cannot go to JSON")


def _write_atomic_json(path: Path, obj: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


def save_checkpoint(
    directory: str | Path,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    extra_tensors: dict[str, Tensor] | None = None,
    extra_state: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of a completed epoch.

    Args:
        directory: checkpoint directory (created if needed).
        epoch: the epoch just completed (>= 0).
        model: its ``state_dict`` is saved.
        optimizer: its state tensors go to safetensors, the rest to the sidecar.
        scheduler: an LR scheduler with a JSON-able ``state_dict`` (e.g. ``CosineAnnealingLR``).
        scaler: a ``torch.amp.GradScaler``.
        extra_tensors: more tensors to keep (names without dots at the start).
        extra_state: JSON-able method state.
        metrics: the epoch's metrics (JSON-able).

    Returns:
        Path of the safetensors file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"epoch-{int(epoch):04d}"
    tensors: dict[str, Tensor] = {f"model.{k}": _cpu(v) for k, v in model.state_dict().items()}
    sidecar: dict[str, Any] = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "epoch": int(epoch),
        "extra_state": _jsonable(extra_state or {}, "extra_state"),
        "metrics": _jsonable(metrics or {}, "metrics"),
    }
    if optimizer is not None:
        osd = optimizer.state_dict()
        scalars: dict[str, dict[str, Any]] = {}
        for pid, st in osd["state"].items():
            for name, value in st.items():
                if isinstance(value, Tensor):
                    tensors[f"optimizer.state.{pid}.{name}"] = _cpu(value)
                else:
                    scalars.setdefault(str(pid), {})[name] = _jsonable(value, f"optimizer.{name}")
        sidecar["optimizer"] = {
            "class": type(optimizer).__name__,
            "param_groups": _jsonable(osd["param_groups"], "optimizer.param_groups"),
            "state_scalars": scalars,
        }
    if scheduler is not None:
        sidecar["scheduler"] = _jsonable(scheduler.state_dict(), "scheduler")
    if scaler is not None:
        sidecar["scaler"] = _jsonable(scaler.state_dict(), "scaler")
    for name, value in (extra_tensors or {}).items():
        tensors[f"extra.{name}"] = _cpu(value)

    st_path = directory / f"{stem}.safetensors"
    tmp = st_path.with_name(st_path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "auperf-checkpoint", "epoch": str(epoch)})
    os.replace(tmp, st_path)
    sidecar["tensors_file"] = st_path.name
    sidecar["tensors_sha256"] = sha256_file(st_path)
    sidecar["tensors_bytes"] = st_path.stat().st_size
    _write_atomic_json(directory / f"{stem}.json", sidecar)
    _log.info("checkpoint written: %s", st_path)
    return st_path


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``directory`` as ``(epoch, safetensors path)``, oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for p in directory.iterdir():
        m = _NAME.match(p.name)
        if m and p.with_suffix(".safetensors").is_file():
            found.append((int(m.group(1)), p.with_suffix(".safetensors")))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The safetensors path of the newest complete checkpoint, or ``None``."""
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(directory: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints (sidecar first, so none is left half)."""
    found = list_checkpoints(directory)
    for _, path in found[: max(0, len(found) - keep)]:
        path.with_suffix(".json").unlink(missing_ok=True)
        path.unlink(missing_ok=True)


def _restore_sequences(v: Any) -> Any:
    # JSON turns tuples (Adam's betas) into lists; optimizers accept tuples everywhere.
    if isinstance(v, list) and all(isinstance(x, (int, float)) for x in v):
        return tuple(v)
    return v


def load_checkpoint(
    path: str | Path,
    model: nn.Module | None,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    scheduler: Any | None = None,
    scaler: Any | None = None,
    verify: bool = True,
) -> CheckpointInfo:
    """Restore a checkpoint written by :func:`save_checkpoint` (model loaded strictly).

    Args:
        path: the safetensors file (its ``.json`` sidecar must sit beside it).
        model: receives the weights (on its own device); ``None`` skips them.
        optimizer, scheduler, scaler: restored when given.
        verify: check the safetensors file's sha256 against the sidecar.

    Returns:
        :class:`CheckpointInfo`.

    Raises:
        CheckpointError: missing file, hash mismatch, newer format, or state that does not fit.
    """
    path = Path(path)
    side_path = path.with_suffix(".json")
    if not path.is_file() or not side_path.is_file():
        raise CheckpointError(f"{path}: checkpoint or its sidecar {side_path.name} is missing")
    sidecar = json.loads(side_path.read_text(encoding="utf-8"))
    if int(sidecar.get("format_version", 0)) > CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"{side_path}: format_version {sidecar['format_version']} is newer than this "
            f"library's {CHECKPOINT_FORMAT_VERSION}"
        )
    if verify and sidecar.get("tensors_sha256") != sha256_file(path):
        raise CheckpointError(f"{path}: sha256 differs from the one recorded in {side_path.name}")
    tensors = load_file(str(path))
    if model is not None:
        model_sd = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        try:
            model.load_state_dict(model_sd, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from None
    if optimizer is not None:
        if "optimizer" not in sidecar:
            raise CheckpointError(f"{path}: holds no optimizer state")
        osec = sidecar["optimizer"]
        state: dict[int, dict[str, Any]] = {}
        for k, v in tensors.items():
            if k.startswith("optimizer.state."):
                pid, name = k[len("optimizer.state.") :].split(".", 1)
                state.setdefault(int(pid), {})[name] = v
        for pid, values in osec.get("state_scalars", {}).items():
            state.setdefault(int(pid), {}).update(values)
        groups = [
            {k: _restore_sequences(v) if k != "params" else v for k, v in g.items()}
            for g in osec["param_groups"]
        ]
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit: {exc}") from None
    if scheduler is not None and "scheduler" in sidecar:
        scheduler.load_state_dict(sidecar["scheduler"])
    if scaler is not None and "scaler" in sidecar:
        scaler.load_state_dict(sidecar["scaler"])
    extra = {k[6:]: v for k, v in tensors.items() if k.startswith("extra.")}
    return CheckpointInfo(
        path=path,
        epoch=int(sidecar["epoch"]),
        extra_tensors=extra,
        extra_state=sidecar.get("extra_state", {}),
        metrics=sidecar.get("metrics", {}),
    )


def save_weights(
    model: nn.Module, path: str | Path, metadata: dict[str, str] | None = None
) -> None:
    """Write only a model's ``state_dict`` to a safetensors file (for export and shipping)."""
    tensors = {k: _cpu(v) for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata=dict(metadata or {}))


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a model's weights from :func:`save_weights` output, or from a checkpoint file
    (``model.``-prefixed keys), strictly.

    Raises:
        CheckpointError: missing file or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such weights file")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    tensors = load_file(str(path))
    if meta.get("format") == "auperf-checkpoint":
        tensors = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model: {exc}") from None
