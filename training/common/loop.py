"""The generic training loop that every method (M0 ... M4) plugs into.

A method is a :class:`Method`: it owns the model, turns a batch into a loss
(:meth:`Method.training_step`) and, optionally, a validation batch into something to collect
(:meth:`Method.validation_step`) and the collected outputs into metrics
(:meth:`Method.validation_epoch_end`). :class:`Trainer` does the rest: device placement,
channels-last and mixed precision on CUDA, seeding per epoch, optimizer and LR schedule,
progress bars, one JSON line of metrics per epoch, a checkpoint per epoch and resuming.

Example::

    seed_everything(cfg.train.seed)
    method = M0Method(cfg)
    history = Trainer(method, cfg.train, train_set, val_set).fit()

Resuming: ``fit(resume=True)`` (the default) continues after the newest complete checkpoint in
``<out_dir>/checkpoints``. Each epoch reseeds from ``(seed, epoch)``, so a run killed at any point
and resumed ends with bit-identical weights to one never interrupted (on the same machine and
software; GPU kernels may still differ run to run where torch has no deterministic version).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from auperf.errors import NonFiniteError

from .checkpoint import latest_checkpoint, load_checkpoint, prune_checkpoints, save_checkpoint
from .config import ConfigError, TrainConfig, config_to_dict
from .seed import epoch_seed, seed_everything, seed_worker

__all__ = [
    "Method",
    "StepContext",
    "Trainer",
    "resolve_device",
    "move_to_device",
    "build_optimizer",
]

_log = logging.getLogger("auperf.training")


@dataclass
class StepContext:
    """Where the loop is, passed to :meth:`Method.training_step`.

    Attributes:
        epoch: current epoch (1-based).
        step: global optimizer step (0-based, counted from the start of the run).
        device: the device the batch is on.
    """

    epoch: int
    step: int
    device: torch.device


class Method:
    """What a training method supplies to :class:`Trainer` (subclass and override).

    Attributes:
        model: the module being trained (moved to the device by the trainer).
    """

    model: nn.Module

    def training_step(
        self, batch: Any, ctx: StepContext
    ) -> Tensor | tuple[Tensor, Mapping[str, float | Tensor]]:
        """Loss of one training batch, optionally with named scalars to log (averaged per epoch).

        Runs under autocast when mixed precision is on; the trainer does the backward pass.
        """
        raise NotImplementedError

    def validation_step(self, batch: Any) -> Any:
        """Outputs of one validation batch (run under ``torch.no_grad`` in eval mode)."""
        return None

    def validation_epoch_end(self, outputs: list[Any]) -> dict[str, float]:
        """Metrics from the collected validation outputs (keys are prefixed ``val_``)."""
        return {}

    def configure_optimizer(self, cfg: TrainConfig) -> torch.optim.Optimizer:
        """The optimizer (default: :func:`build_optimizer` over trainable parameters)."""
        return build_optimizer(self.model.parameters(), cfg)

    def on_epoch_start(self, epoch: int) -> None:
        """Called before the first training batch of each epoch (after reseeding)."""

    def state_tensors(self) -> dict[str, Tensor]:
        """Tensors the method needs after a resume (e.g. refined labels); saved per epoch."""
        return {}

    def state_json(self) -> dict[str, Any]:
        """JSON-able method state saved per epoch."""
        return {}

    def load_state(self, tensors: dict[str, Tensor], state: dict[str, Any]) -> None:
        """Restore :meth:`state_tensors` and :meth:`state_json` when resuming."""

    def batch_size(self, batch: Any) -> int:
        """Number of samples in a batch (for throughput); default: first dim of the first tensor."""
        t = _first_tensor(batch)
        return int(t.shape[0]) if t is not None and t.dim() > 0 else 1


def _first_tensor(obj: Any) -> Tensor | None:
    if isinstance(obj, Tensor):
        return obj
    if isinstance(obj, Mapping):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for x in obj:
            t = _first_tensor(x)
            if t is not None:
                return t
    return None


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; other names are passed to ``torch.device``.

    Raises:
        ConfigError: CUDA asked for but not available.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"train.device: {name!r} requested but CUDA is not available")
    return dev


def move_to_device(obj: Any, device: torch.device, channels_last: bool = False) -> Any:
    """Move tensors in nested dicts/lists/tuples to ``device`` (4-D float tensors optionally
    to channels-last)."""
    if isinstance(obj, Tensor):
        out = obj.to(device, non_blocking=True)
        if channels_last and out.dim() == 4 and out.is_floating_point():
            out = out.contiguous(memory_format=torch.channels_last)
        return out
    if isinstance(obj, Mapping):
        return {k: move_to_device(v, device, channels_last) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, channels_last) for v in obj)
    return obj


def build_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (Nesterov-free, with ``cfg.momentum``) over parameters that require
    gradients."""
    params = [p for p in params if p.requires_grad]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def _build_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig) -> Any | None:
    if cfg.lr_schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
    return None


TrainData = Dataset | Callable[[int, torch.Generator], Iterable[Any]]


class Trainer:
    """Runs a :class:`Method` for ``cfg.epochs`` epochs.

    Args:
        method: the method.
        cfg: shared training settings.
        train_data: a map-style ``Dataset`` (batched with ``cfg.batch_size``, shuffled with a
            generator seeded per epoch), or a callable ``(epoch, generator) -> iterable of
            batches`` for pipelines that build their own loaders (it must draw all randomness
            from the generator or the global RNGs, which are reseeded per epoch).
        val_data: like ``train_data`` (a dataset is not shuffled); ``None`` skips validation.
        collate_fn: passed to the ``DataLoader``.
        run_config: the full run configuration (a dataclass), written to
            ``<out_dir>/config.yaml``.

    Files under ``cfg.out_dir``: ``checkpoints/epoch-NNNN.{safetensors,json}``,
    ``metrics.jsonl`` (one object per epoch), ``config.yaml``.
    """

    def __init__(
        self,
        method: Method,
        cfg: TrainConfig,
        train_data: TrainData,
        val_data: TrainData | None = None,
        *,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        run_config: Any | None = None,
    ) -> None:
        self.method = method
        self.cfg = cfg
        self.train_data = train_data
        self.val_data = val_data
        self.collate_fn = collate_fn
        self.run_config = run_config
        self.out_dir = Path(cfg.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.metrics_path = self.out_dir / "metrics.jsonl"
        self.device = resolve_device(cfg.device)
        on_cuda = self.device.type == "cuda"
        self.channels_last = cfg.channels_last and on_cuda
        self.amp_dtype = torch.bfloat16 if cfg.amp_dtype == "bfloat16" else torch.float16
        self.use_amp = cfg.amp and on_cuda
        self.step = 0

    # -- helpers -----------------------------------------------------------------------------
    def _loader(self, data: TrainData, epoch: int, shuffle: bool) -> Iterable[Any]:
        gen = torch.Generator().manual_seed(epoch_seed(self.cfg.seed, epoch))
        if isinstance(data, Dataset):
            return DataLoader(
                data,
                batch_size=self.cfg.batch_size,
                shuffle=shuffle,
                generator=gen,
                num_workers=self.cfg.num_workers,
                collate_fn=self.collate_fn,
                drop_last=self.cfg.drop_last and shuffle,
                worker_init_fn=seed_worker,
                pin_memory=self.device.type == "cuda",
            )
        return data(epoch, gen)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.use_amp:
            return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)
        return contextlib.nullcontext()

    def _append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def _truncate_metrics(self, last_epoch: int) -> None:
        """Drop lines of epochs after ``last_epoch`` (written before a crash, not checkpointed)."""
        if not self.metrics_path.is_file():
            return
        keep = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                if int(json.loads(line)["epoch"]) <= last_epoch:
                    keep.append(line)
            except (ValueError, KeyError, TypeError):
                continue
        self.metrics_path.write_text("".join(s + "\n" for s in keep), encoding="utf-8")

    # -- main --------------------------------------------------------------------------------
    def fit(self, resume: bool = True) -> list[dict[str, Any]]:
        """Train, validating and checkpointing after every epoch.

        Args:
            resume: continue after the newest complete checkpoint in ``<out_dir>/checkpoints``
                (a fresh run when there is none). ``False`` starts over: the run directory's
                checkpoints and metrics log are removed first.

        Returns:
            The metrics records of the epochs run by this call (as written to ``metrics.jsonl``).

        Raises:
            NonFiniteError: a loss became NaN or infinite (the message names epoch and step).
        """
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.run_config is not None:
            import yaml

            (self.out_dir / "config.yaml").write_text(
                yaml.safe_dump(config_to_dict(self.run_config), sort_keys=False), encoding="utf-8"
            )
        model = self.method.model
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        start = 1
        last = latest_checkpoint(self.ckpt_dir) if resume else None
        if last is not None:
            # Weights and method state first: the method may choose its trainable parameters
            # (and so the optimizer's layout) from its state.
            info = load_checkpoint(last, model)
            self.method.load_state(info.extra_tensors, info.extra_state)
            self.step = int(info.extra_state.get("_trainer_step", 0))
            start = info.epoch + 1
        optimizer = self.method.configure_optimizer(cfg)
        scheduler = _build_scheduler(optimizer, cfg)
        scaler = torch.amp.GradScaler(
            "cuda", enabled=self.use_amp and self.amp_dtype == torch.float16
        )
        if last is not None:
            load_checkpoint(last, None, optimizer, scheduler=scheduler, scaler=scaler, verify=False)
            _log.info("resuming from %s (epoch %d done)", last, start - 1)
        if not resume and latest_checkpoint(self.ckpt_dir) is not None:
            _log.warning("starting over in %s: removing its checkpoints", self.out_dir)
            prune_checkpoints(self.ckpt_dir, 0)
        self._truncate_metrics(start - 1)

        history = []
        for epoch in range(start, cfg.epochs + 1):
            record = self._run_epoch(epoch, optimizer, scheduler, scaler)
            history.append(record)
            self._append_metrics(record)
            state = dict(self.method.state_json())
            state["_trainer_step"] = self.step
            save_checkpoint(
                self.ckpt_dir,
                epoch,
                model,
                optimizer,
                scheduler=scheduler,
                scaler=scaler if scaler.is_enabled() else None,
                extra_tensors=self.method.state_tensors(),
                extra_state=state,
                metrics=record,
            )
            prune_checkpoints(self.ckpt_dir, cfg.keep_checkpoints)
        return history

    def _run_epoch(self, epoch: int, optimizer, scheduler, scaler) -> dict[str, Any]:
        cfg = self.cfg
        seed_everything(epoch_seed(cfg.seed, epoch), deterministic=cfg.deterministic)
        model = self.method.model
        model.train()
        self.method.on_epoch_start(epoch)
        sums: dict[str, Tensor | float] = {}
        n_batches = 0
        n_samples = 0
        t0 = time.perf_counter()
        loader = self._loader(self.train_data, epoch, shuffle=True)
        total = len(loader) if hasattr(loader, "__len__") else None
        bar = tqdm(
            loader,
            total=total,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not cfg.progress,
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            batch = move_to_device(batch, self.device, self.channels_last)
            ctx = StepContext(epoch=epoch, step=self.step, device=self.device)
            with self._autocast():
                out = self.method.training_step(batch, ctx)
            loss, logs = (out, {}) if isinstance(out, Tensor) else (out[0], dict(out[1]))
            if not bool(torch.isfinite(loss.detach())):
                raise NonFiniteError(
                    f"loss: became {float(loss.detach())} at epoch {epoch}, step {self.step}"
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if cfg.grad_clip > 0:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            self.step += 1
            n_batches += 1
            n_samples += self.method.batch_size(batch)
            logs.setdefault("loss", loss)
            for k, v in logs.items():
                v = v.detach().float() if isinstance(v, Tensor) else float(v)
                sums[k] = sums.get(k, 0.0) + v
            if cfg.progress and n_batches % 10 == 1:
                bar.set_postfix(loss=f"{float(loss):.4f}")
        elapsed = time.perf_counter() - t0
        lr = optimizer.param_groups[0]["lr"]
        if scheduler is not None:
            scheduler.step()
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": self.step,
            "lr": float(lr),
            "train_time_s": round(elapsed, 3),
            "train_samples": n_samples,
            "samples_per_s": round(n_samples / elapsed, 2) if elapsed > 0 else None,
        }
        for k, v in sums.items():
            record[f"train_{k}"] = float(v) / max(n_batches, 1)
        if self.val_data is not None:
            record.update(self.validate(epoch))
        for k, v in list(record.items()):
            if isinstance(v, float) and not math.isfinite(v):
                record[k] = None
        _log.info(
            "epoch %d: %s",
            epoch,
            {k: record[k] for k in record if k.startswith(("train_loss", "val_"))},
        )
        return record

    def validate(self, epoch: int = 0) -> dict[str, float]:
        """Run the method's validation over ``val_data``; returns ``val_``-prefixed metrics."""
        if self.val_data is None:
            return {}
        model = self.method.model
        model.eval()
        outputs = []
        loader = self._loader(self.val_data, epoch, shuffle=False)
        with torch.no_grad():
            for batch in tqdm(loader, desc="validate", disable=not self.cfg.progress, leave=False):
                batch = move_to_device(batch, self.device, self.channels_last)
                with self._autocast():
                    outputs.append(self.method.validation_step(batch))
        metrics = self.method.validation_epoch_end(outputs)
        model.train()
        return {f"val_{k}": (float(v) if v is not None else None) for k, v in metrics.items()}
