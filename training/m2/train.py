"""``train_m2``: data -> training (resumable) -> evaluation on held-out identities -> export.

Writes under ``cfg.train.out_dir``: ``config.yaml``, ``metrics.jsonl`` (one line per epoch),
``checkpoints/`` (safetensors + JSON sidecar, the relabelled training labels included),
``results.json`` and, unless ``export`` is False, ``export/<name>.{onnx,safetensors,json}``.
Killed at any point, the same call continues from the newest checkpoint.

``results.json`` holds the validation and test accuracy (true labels, identities never trained
on), the relabelling counts (``relabel_repaired``: flipped labels set back to the true class,
``relabel_broken``: correct labels changed to a wrong one, ``relabelled_now_wrong`` / ``..._right``
for the labels as they stand at the end) and, when labels were flipped, ``alpha_auc``: ROC AUC of
``1 - alpha`` on the training faces (centre crops, eval mode) for telling flipped from clean
labels (:func:`training.common.metrics.roc_auc_scores`, ties averaged; 0.5 is chance).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..common.config import config_to_dict
from ..common.loop import Trainer
from ..common.seed import seed_everything
from ..m0.train import _check_same_run
from .config import M2Config
from .data import ExpressionBatches, M2Data, build_m2_data
from .export import export_m2
from .method import M2Method, predict_m2

__all__ = ["evaluate_m2", "train_m2"]

_log = logging.getLogger("auperf.training")


def evaluate_m2(net, batches: ExpressionBatches, num_classes: int, device: str = "cpu") -> dict:
    """Accuracy, mean per-class recall and the confusion matrix on the batches' labels."""
    out = predict_m2(net, batches(0, None), device)
    y = batches.labels.numpy()
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y, out["pred"]), 1)
    support = cm.sum(1)
    recall = np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)
    return {
        "accuracy": float((out["pred"] == y).mean()),
        "mean_class_recall": float(np.nanmean(recall)),
        "confusion": cm.tolist(),
        "n": int(y.size),
    }


def _alpha_auc(net, data: M2Data, cfg: M2Config, device: str) -> float | None:
    if not data.flipped.any() or data.flipped.all() or not net.has_importance:
        return None
    from ..common.metrics import roc_auc_scores

    clean = ExpressionBatches(
        data.faces.images[data.train_idx],
        data.train_labels,
        data.faces.labels[data.train_idx],
        cfg.input_size,
        256,
        cfg.mean,
        cfg.std,
        cfg.colour_order,
        train=False,
    )
    alpha = predict_m2(net, clean(0, None), device)["alpha"]
    return float(roc_auc_scores(data.flipped[:, None].astype(int), (1.0 - alpha)[:, None])[0])


def train_m2(
    cfg: M2Config,
    *,
    restart: bool = False,
    export: bool = True,
    name: str | None = None,
    progress: bool = False,
    data: M2Data | None = None,
) -> dict[str, Any]:
    """Train, evaluate and export one M2 run (see the module docstring).

    Args:
        cfg: the run configuration.
        restart: start over instead of resuming.
        export: write the ONNX model, weights and manifest.
        name: model name (default ``m2-<backbone>`` or ``ce-<backbone>`` for the baseline).
        progress: progress bars.
        data: prebuilt data (for experiments that share faces across runs).

    Returns:
        The contents of ``results.json``.
    """
    out_dir = Path(cfg.train.out_dir)
    if not restart:
        _check_same_run(cfg, out_dir)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    if data is None:
        data = build_m2_data(cfg, progress=progress)
    method = M2Method(cfg, data.train_labels)
    trainer = Trainer(method, cfg.train, data.train, data.val, run_config=cfg)
    history = trainer.fit(resume=not restart)
    net = method.model
    device = str(trainer.device)
    true = data.faces.labels[data.train_idx]
    cur = method.store.current.numpy()
    changed = method.store.relabelled().numpy()
    res: dict[str, Any] = {
        "config": config_to_dict(cfg),
        "epochs_run_by_this_call": len(history),
        "train_faces": int(data.train_idx.size),
        "flipped": int(data.flipped.sum()),
        "flip_rate_actual": float(data.flipped.mean()),
        "relabel_changes": int(method.store.changes),
        "relabel_repaired": int(method.repaired),
        "relabel_broken": int(method.broken),
        "relabelled_now_right": int((changed & (cur == true)).sum()),
        "relabelled_now_wrong": int((changed & (cur != true)).sum()),
        "labels_wrong_before": int((data.train_labels != true).sum()),
        "labels_wrong_after": int((cur != true).sum()),
        "val": evaluate_m2(net, data.val, cfg.num_classes, device),
        "test": evaluate_m2(net, data.test, cfg.num_classes, device) if data.test else None,
        "alpha_auc": _alpha_auc(net, data, cfg, device),
        "train_time_s": _train_time(out_dir),
    }
    if export:
        name = name or f"{'m2' if cfg.importance.enabled else 'ce'}-{cfg.backbone}"
        src = "rendered faces (auperf.synth)" if cfg.data.source == "synth" else cfg.data.source
        metrics = {"val_accuracy": round(res["val"]["accuracy"], 4)}
        if res["test"]:
            metrics["test_accuracy"] = round(res["test"]["accuracy"], 4)
        ex = export_m2(
            net,
            out_dir / "export",
            name=name,
            classes=cfg.data.classes,
            input_size=cfg.input_size,
            training_data=f"{src}; noise {cfg.data.noise} {cfg.data.noise_rate:g}",
            metrics=metrics,
            colour_order=cfg.colour_order,
            mean=cfg.mean,
            std=cfg.std,
            config=config_to_dict(cfg),
        )
        res["export"] = {
            "onnx": str(ex.onnx_path),
            "weights": str(ex.weights_path),
            "manifest": str(ex.manifest_path),
            "onnx_max_abs_diff": ex.onnx_max_abs_diff,
        }
    (out_dir / "results.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    return res


def _train_time(out_dir: Path) -> float:
    path = out_dir / "metrics.jsonl"
    if not path.is_file():
        return 0.0
    lines = path.read_text(encoding="utf-8").splitlines()
    return round(sum(float(json.loads(x).get("train_time_s", 0)) for x in lines if x), 2)
