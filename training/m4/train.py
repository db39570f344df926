"""``train_m4``: clips -> TCAE training (resumable) -> encoder export.

Example::

    cfg = load_config("training/configs/m4_synth.yaml", M4Config)
    res = train_m4(cfg)
    res["export"]["manifest"], res["history"][-1]["train_rec"]
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..common.config import ConfigError, config_to_dict
from ..common.loop import Trainer
from ..common.seed import seed_everything
from .config import CurriculumConfig, M4Config
from .data import Clips, PairSampler, folder_clips, synth_clips
from .method import M4Method

__all__ = ["load_clips", "train_m4"]

_log = logging.getLogger("auperf.training")


def load_clips(cfg: M4Config, progress: bool = False) -> tuple[Clips, Clips | None]:
    """The training clips and the held-out clips (``None`` for a folder source).

    Rendered training clips use track ids ``0 .. train_sequences - 1`` and held-out clips the
    next ``test_sequences`` ids, so the two share no identity.
    """
    d = cfg.data
    if d.source == "synth":
        train = synth_clips(d, cfg.image_size, d.train_sequences, 0, progress)
        test = (
            synth_clips(d, cfg.image_size, d.test_sequences, d.train_sequences, progress)
            if d.test_sequences
            else None
        )
        return train, test
    return folder_clips(d.source, cfg.image_size, d.max_frames), None


def _check_resume(cfg: M4Config, out_dir: Path) -> None:
    import yaml

    saved = out_dir / "config.yaml"
    if not saved.is_file() or not (out_dir / "checkpoints").is_dir():
        return
    old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    new = config_to_dict(cfg)
    differ = sorted(k for k in set(old) | set(new) if k != "train" and old.get(k) != new.get(k))
    ot, nt = dict(old.get("train", {})), dict(new["train"])
    for k in ("progress", "epochs"):
        ot.pop(k, None), nt.pop(k, None)
    if ot != nt:
        differ.append("train")
    if differ:
        raise ConfigError(
            f"{saved}: the run directory was made with a different configuration (sections "
            f"{differ}); pass resume=False (--restart) or use another train.out_dir"
        )


def train_m4(
    cfg: M4Config,
    *,
    resume: bool = True,
    export: bool = True,
    export_dir: str | Path | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Train the TCAE on the configured clips and export its encoder.

    Resuming continues after the newest checkpoint in ``<train.out_dir>/checkpoints``; a run
    directory made with another configuration (apart from ``train.epochs`` and
    ``train.progress``) is refused with :class:`ConfigError`.

    Returns:
        ``{"history", "train_time_s", "clips", "export"?}``; also written to
        ``<out_dir>/results.json``.
    """
    out_dir = Path(cfg.train.out_dir)
    if resume:
        _check_resume(cfg, out_dir)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    train, test = load_clips(cfg, cfg.train.progress)
    method = M4Method(cfg)
    sampler = PairSampler(train, cfg.curriculum, cfg.data.pairs_per_epoch, cfg.train.batch_size)
    val = None
    if test is not None:
        fixed = CurriculumConfig(cfg.curriculum.gap_end, cfg.curriculum.gap_end, 1)
        val = PairSampler(test, fixed, min(512, cfg.data.pairs_per_epoch), cfg.train.batch_size)
    t0 = time.perf_counter()
    Trainer(method, cfg.train, sampler, val, run_config=cfg).fit(resume=resume)
    elapsed = time.perf_counter() - t0
    history = []
    metrics_path = out_dir / "metrics.jsonl"
    if metrics_path.is_file():
        history = [json.loads(s) for s in metrics_path.read_text().splitlines() if s.strip()]
    res: dict[str, Any] = {
        "history": history,
        "train_time_s": round(sum(h.get("train_time_s", 0.0) for h in history), 1),
        "call_time_s": round(elapsed, 1),
        "clips": {
            "train": int(train.num_clips),
            "train_frames": int(len(train.frames)),
            "test": int(test.num_clips) if test is not None else 0,
        },
        "threads": torch.get_num_threads(),
    }
    if export:
        from .export import export_m4

        last = history[-1] if history else {}
        metrics = {
            k: last[k]
            for k in last
            if k.startswith(("train_", "val_")) and isinstance(last[k], (int, float))
        }
        data = (
            f"{train.num_clips} rendered auperf.synth sequences of {cfg.data.frames_per_sequence} "
            f"frames at {cfg.data.fps:g} fps, no labels"
            if cfg.data.source == "synth"
            else f"{train.num_clips} videos of {cfg.data.source}, no labels"
        )
        result = export_m4(
            method.model.encoder,
            export_dir or out_dir / "export",
            name=name or f"m4-tcae-{cfg.backbone}",
            image_size=cfg.image_size,
            training_data=data,
            metrics=metrics,
            config=config_to_dict(cfg),
        )
        res["export"] = {
            "manifest": str(result.manifest_path),
            "onnx": str(result.onnx_path),
            "weights": str(result.weights_path),
            "max_abs_diff": result.max_abs_diff,
        }
    (out_dir / "results.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    return res
