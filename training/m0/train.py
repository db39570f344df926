"""One M0 run from its configuration: data, training, threshold tuning, refinement, export.

:func:`train_m0` is what ``python -m training.m0 train --config FILE`` runs:

1. build the data (:func:`training.data.build_m0_data`): aligned faces split by identity,
   accurate / inaccurate training sets, noisy labels;
2. train the ``variant`` (M0; its semi-supervised variant, with pseudo-labels for the faces
   whose labels are withheld; or a baseline: two-view BCE without L_mv / L_cons, single-view
   BCE) with :class:`training.common.loop.Trainer` (progress bars, ``metrics.jsonl``,
   checkpoints, resume);
3. tune per-AU thresholds on the validation split, evaluate validation and test;
4. M0 only: label refinement of the inaccurate set (agreement with the true labels before and
   after, for ``refine_gamma`` and any extra gammas asked for) and, with ``refine_epochs > 0``,
   retraining on the refined labels (in ``<out_dir>/refine``, resumable too), then evaluate again;
5. export ONNX + manifest (``<out_dir>/export`` by default) and write ``<out_dir>/results.json``.

Example::

    cfg = load_config("training/configs/m0_synth_small.yaml", M0Config)
    results = train_m0(cfg)
    results["test"]["mean_f1"]
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from auperf.nets.m0 import M0Net, M0Outputs, M0View

from ..common.loop import Trainer, resolve_device
from ..common.metrics import evaluate_occurrence, tune_thresholds
from ..common.seed import seed_everything
from ..data import M0Data, build_m0_data, label_agreement
from .config import M0Config
from .losses import refine_noisy_labels
from .method import M0Method, predict_m0

__all__ = ["SingleViewNet", "as_two_view_net", "build_variant", "evaluate_model", "train_m0"]

_log = logging.getLogger("auperf.training")


class SingleViewNet(nn.Module):
    """The single-view BCE baseline: one backbone and one clean head.

    It answers like :class:`auperf.nets.m0.M0Net` (clean logits ``(B, 2, L)``, the one view
    repeated) so that :class:`training.m0.M0Method`, the evaluation and the export work
    unchanged; a ``(B, 2, 3, S, S)`` input uses its first image only.

    Args:
        num_aus: ``L``.
        backbone: backbone name.
    """

    def __init__(self, num_aus: int, backbone: str = "smallnet") -> None:
        super().__init__()
        self.num_aus = num_aus
        self.backbone_name = backbone
        self.has_noisy_heads = False
        self.views = nn.ModuleList([M0View(num_aus, backbone, noisy_head=False)])
        self.feature_dim = int(self.views[0].backbone.feature_dim)

    def forward(self, x: Tensor) -> M0Outputs:
        """``(B, 3, H, W)`` or ``(B, V, 3, H, W)`` -> :class:`M0Outputs` with both view slots
        holding the single view's logits."""
        if x.dim() == 5:
            x = x[:, 0]
        f = self.views[0].backbone(x)
        z = self.views[0].clean_head(f)
        return M0Outputs(torch.stack([z, z], 1), None, None, torch.stack([f, f], 1))

    def clean_head_matrices(self) -> tuple[Tensor, Tensor]:
        """The one clean head's ``[w; b]`` twice (L_mv is switched off for this baseline)."""
        w = self.views[0].clean_head_matrix()
        return w, w

    def noisy_head_parameters(self) -> list[nn.Parameter]:
        """None: the baseline has no noisy head."""
        return []


def as_two_view_net(net: nn.Module) -> M0Net:
    """An :class:`M0Net` to export: ``net`` itself, or for :class:`SingleViewNet` a two-view
    network whose views both hold its weights (same fused output)."""
    if isinstance(net, M0Net):
        return net
    out = M0Net(net.num_aus, net.backbone_name, noisy_heads=False)
    for view in out.views:
        view.load_state_dict(net.views[0].state_dict())
    return out.to(next(net.parameters()).device)


def build_variant(cfg: M0Config) -> tuple[M0Config, nn.Module, str, bool | None]:
    """The configuration the method sees, the network, the label mode and the ``two_views``
    override of the batches (``None``: as ``data.two_views`` says), for ``cfg.variant``.

    - ``m0``: ``cfg`` as given, :class:`M0Net`, labels split into clean / noisy.
    - ``semi_supervised``: :class:`M0Net` without noisy heads (``lambda_noisy = 0``); accurate
      faces carry their labels, unlabelled faces are flagged ``unlabelled`` and trained on
      pseudo-labels; L_mv and L_cons as configured.
    - ``bce_two_view``: no noisy heads, ``lambda_mv = lambda_cons = 0``, every given label
      treated as accurate.
    - ``bce_single_view``: :class:`SingleViewNet`, plain BCE on every given label.

    Unlabelled faces (``data.unlabelled_fraction``) are trained on only by
    ``semi_supervised``; the other variants see the labelled faces only.
    """
    if cfg.variant == "m0":
        return cfg, M0Net(cfg.num_aus, cfg.backbone, cfg.noisy_heads), "m0", None
    if cfg.variant == "semi_supervised":
        semi = dataclasses.replace(cfg, noisy_heads=False, lambda_noisy=0.0)
        return semi, M0Net(cfg.num_aus, cfg.backbone, noisy_heads=False), "semi", None
    base = dataclasses.replace(
        cfg, noisy_heads=False, lambda_mv=0.0, lambda_cons=0.0, lambda_noisy=0.0
    )
    if cfg.variant == "bce_two_view":
        return base, M0Net(cfg.num_aus, cfg.backbone, noisy_heads=False), "merged", None
    return base, SingleViewNet(cfg.num_aus, cfg.backbone), "merged", False


def evaluate_model(
    model: nn.Module, data: M0Data, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Per-AU thresholds tuned for F1 on the validation split, then validation and test metrics
    (with the tuned thresholds, and test also at 0.5).

    Returns:
        ``{"thresholds": [...], "val": {...}, "test": {...}, "test_at_0.5": {...}}`` (``test``
        entries absent without a test split); metric dicts as
        :func:`training.common.metrics.evaluate_occurrence` returns them.
    """
    names = [f"AU{a}" for a in data.au_ids]
    val = predict_m0(model, data.eval_batches("val"), device)
    y_val = data.true_labels[data.val]
    th = tune_thresholds(y_val, val["prob"])
    out: dict[str, Any] = {
        "thresholds": [float(t) for t in th],
        "val": evaluate_occurrence(y_val, val["prob"], th, names),
    }
    if data.test.size:
        test = predict_m0(model, data.eval_batches("test"), device)
        y_test = data.true_labels[data.test]
        out["test"] = evaluate_occurrence(y_test, test["prob"], th, names)
        out["test_at_0.5"] = evaluate_occurrence(y_test, test["prob"], 0.5, names)
    return out


def _refine(
    model: M0Net, data: M0Data, gammas: Sequence[float], device: torch.device
) -> tuple[dict[str, Any], dict[float, np.ndarray]]:
    pred = predict_m0(model, data.eval_batches("inaccurate"), device)
    p = torch.from_numpy(pred["noisy_prob"])
    given = data.given_labels[data.inaccurate]
    true = data.true_labels[data.inaccurate]
    report: dict[str, Any] = {
        "agreement_before": label_agreement(given, true),
        "noisy_head_agreement": label_agreement(pred["noisy_prob"].mean(axis=1), true),
        "clean_head_agreement": label_agreement(pred["prob"], true),
        "gammas": {},
    }
    refined: dict[float, np.ndarray] = {}
    for g in gammas:
        r = refine_noisy_labels(
            torch.from_numpy(given.astype(np.float32)), p[:, 0], p[:, 1], gamma=float(g)
        ).numpy()
        known = given >= 0
        refined[float(g)] = r
        report["gammas"][f"{g:g}"] = {
            "agreement_after": label_agreement(r, true),
            "changed": int(((r >= 0.5) != (given == 1))[known].sum()),
            "labels": int(known.sum()),
        }
    return report, refined


def _pseudo_label_report(
    model: nn.Module, data: M0Data, threshold: float, device: torch.device
) -> dict[str, Any]:
    """How well the pseudo-labels of the unlabelled faces match their withheld true labels at the
    end of training (centre crops): each view's target from the other view's clean prediction,
    and the fused prediction's labels."""
    pred = predict_m0(model, data.eval_batches("unlabelled"), device)
    p = 1.0 / (1.0 + np.exp(-pred["clean_logits"]))  # (N, 2, L) per-view clean probabilities
    true = data.true_labels[data.unlabelled]
    hard = (p >= threshold).astype(np.float32)
    return {
        "faces": int(data.unlabelled.size),
        "threshold": float(threshold),
        # view 1 learns from view 2's prediction and vice versa
        "agreement_view1_targets": label_agreement(hard[:, 1], true),
        "agreement_view2_targets": label_agreement(hard[:, 0], true),
        "agreement_fused": label_agreement((pred["prob"] >= threshold).astype(np.float32), true),
        "views_agree": float((hard[:, 0] == hard[:, 1]).mean()),
        # a pseudo-labelling that drifts to "inactive" shows as a positive rate far below the truth
        "positive_rate_targets": float(hard.mean()),
        "positive_rate_true": float((true == 1).sum() / max(int((true >= 0).sum()), 1)),
    }


def _training_data_text(cfg: M0Config, data: M0Data) -> str:
    d = data.cfg
    if d.source == "synth":
        s = d.synth
        src = (
            f"auperf.synth rendered faces (seed {s.seed}, {s.render_size} px, augment "
            f"'{s.augment}'), {s.train_identities} training identities x "
            f"{s.faces_per_identity} faces; validation on {s.val_identities} and test on "
            f"{s.test_identities} held-out identities"
        )
    else:
        src = f"dataset at {d.source} (layout {d.layout or 'detected'})"
    noise = (
        ""
        if d.noise == "none" or d.noise_rate == 0
        else (f"; {d.noise} label noise at {d.noise_rate:.0%} on the inaccurate set")
    )
    unlabelled = ""
    if data.unlabelled.size:
        used = "trained on with pseudo-labels" if cfg.variant == "semi_supervised" else "not used"
        unlabelled = f"; {data.unlabelled.size} training faces with labels withheld ({used})"
    return (
        f"{src}; {data.accurate.size} accurately and {data.inaccurate.size} inaccurately "
        f"labelled training faces{noise}{unlabelled}"
    )


def train_m0(
    cfg: M0Config,
    *,
    data: M0Data | None = None,
    resume: bool = True,
    export: bool = True,
    export_dir: str | Path | None = None,
    name: str | None = None,
    extra_gammas: Sequence[float] = (),
) -> dict[str, Any]:
    """Run the whole M0 recipe for ``cfg`` (see the module docstring).

    Args:
        cfg: the run configuration (``cfg.train.out_dir`` is the run directory).
        data: prebuilt data (default: :func:`training.data.build_m0_data` of ``cfg``).
        resume: continue after the newest checkpoints of each stage.
        export: export ONNX + manifest at the end.
        export_dir: where to export (default ``<out_dir>/export``).
        name: model name (default ``m0-<backbone>`` or ``<variant>-<backbone>``).
        extra_gammas: further refinement gammas whose label agreement is reported (the
            retraining uses ``cfg.refine_gamma``).

    Returns:
        The results written to ``<out_dir>/results.json``: ``evaluation`` (thresholds, val,
        test), ``refinement`` (M0), ``evaluation_after_refine`` (when retrained),
        ``pseudo_labels`` (semi-supervised: agreement of the final pseudo-labels with the
        withheld true labels), ``export``, ``train_time_s``, ``samples_per_s``.
    """
    out_dir = Path(cfg.train.out_dir)
    if resume:
        _check_same_run(cfg, out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if data is None:
        data = build_m0_data(cfg)
    _check_variant_data(cfg, data)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    run_cfg, model, label_mode, two_views = build_variant(cfg)
    if cfg.backbone_init:
        from .backbone_init import load_backbone_init

        load_backbone_init(model, cfg.backbone_init)
    method = M0Method(run_cfg, model)
    clean, noisy = data.train_label_matrices(label_mode)
    method.set_balance_weights(
        torch.from_numpy(clean), torch.from_numpy(noisy) if noisy is not None else None
    )
    device = resolve_device(cfg.train.device)
    trainer = Trainer(
        method,
        run_cfg.train,
        data.train_batches(label_mode, two_views=two_views),
        data.eval_batches("val"),
        run_config=cfg,
    )
    history = trainer.fit(resume=resume)
    results: dict[str, Any] = {
        "variant": cfg.variant,
        "backbone": cfg.backbone,
        "au_ids": list(data.au_ids),
        "data": {
            "accurate": int(data.accurate.size),
            "inaccurate": int(data.inaccurate.size),
            "unlabelled": int(data.unlabelled.size),
            "val": int(data.val.size),
            "test": int(data.test.size),
            "noise": data.cfg.noise,
            "noise_rate": data.cfg.noise_rate,
        },
        "evaluation": evaluate_model(model, data, device),
    }
    if cfg.variant == "semi_supervised":
        results["pseudo_labels"] = _pseudo_label_report(model, data, cfg.pseudo_threshold, device)
    final = results["evaluation"]
    can_refine = (
        cfg.variant == "m0" and getattr(model, "has_noisy_heads", False) and data.inaccurate.size
    )
    if can_refine:
        gammas = sorted({float(cfg.refine_gamma), *map(float, extra_gammas)}, reverse=True)
        report, refined = _refine(model, data, gammas, device)
        results["refinement"] = report
        if cfg.refine_epochs > 0:
            method.set_trainable(cfg.refine_scope)
            rcfg = dataclasses.replace(
                cfg.train, epochs=cfg.refine_epochs, out_dir=str(out_dir / "refine")
            )
            rtrainer = Trainer(
                method,
                rcfg,
                data.train_batches(label_mode, refined_noisy=refined[float(cfg.refine_gamma)]),
                data.eval_batches("val"),
            )
            history += rtrainer.fit(resume=resume)
            method.set_trainable("all")
            final = results["evaluation_after_refine"] = evaluate_model(model, data, device)
    speeds = [h["samples_per_s"] for h in history if h.get("samples_per_s")]
    results["samples_per_s"] = float(np.median(speeds)) if speeds else None
    if export:
        from .export import export_m0

        name = name or (
            f"m0-{cfg.backbone}" if cfg.variant == "m0" else f"{cfg.variant}-{cfg.backbone}"
        )
        metrics = {"val": _compact(final["val"])}
        if "test" in final:
            metrics["test"] = _compact(final["test"])
        res = export_m0(
            as_two_view_net(model).cpu(),
            Path(export_dir) if export_dir is not None else out_dir / "export",
            name=name,
            au_ids=cfg.au_ids,
            au_names=cfg.au_names,
            input_size=cfg.input_size,
            training_data=_training_data_text(cfg, data),
            metrics=metrics,
            thresholds=final["thresholds"],
            colour_order=cfg.colour_order,
            mean=cfg.mean,
            std=cfg.std,
            config=_jsonable_config(cfg),
        )
        model.to(device)
        results["export"] = {
            "onnx": str(res.onnx_path),
            "manifest": str(res.manifest_path),
            "max_abs_diff": res.max_abs_diff,
            "weights": str(res.weights_path) if res.weights_path else None,
            "weights_sha256": res.weights_sha256,
        }
    results["wall_time_s"] = round(time.perf_counter() - t0, 1)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def _check_variant_data(cfg: M0Config, data: M0Data) -> None:
    """Refuse data the variant cannot train on (named by its ``data.`` key)."""
    from ..common.config import ConfigError

    if cfg.variant != "semi_supervised":
        if data.unlabelled.size:
            _log.info(
                "variant %s: the %d faces with withheld labels are not used (only "
                "semi_supervised trains on them)",
                cfg.variant,
                data.unlabelled.size,
            )
        return
    if data.inaccurate.size:
        raise ConfigError(
            "data.accurate_fraction: variant 'semi_supervised' has no noisy heads for the "
            f"{data.inaccurate.size} inaccurately labelled faces; expected 1.0, got "
            f"{data.cfg.accurate_fraction}"
        )
    if not data.unlabelled.size:
        raise ConfigError(
            "data.unlabelled_fraction: variant 'semi_supervised' needs faces whose labels are "
            f"withheld; expected a value > 0, got {data.cfg.unlabelled_fraction}"
        )


# Settings that may change between a run and its resumption without changing its results.
_RESUMABLE_KEYS = {"progress", "num_workers", "keep_checkpoints", "device"}


def _check_same_run(cfg: M0Config, out_dir: Path) -> None:
    """Refuse to resume a run directory that was started with a different configuration (its
    checkpoints, optimizer and schedule would silently continue the old run)."""
    import yaml

    from ..common.checkpoint import latest_checkpoint
    from ..common.config import ConfigError, config_to_dict

    saved_path = out_dir / "config.yaml"
    if not saved_path.is_file() or latest_checkpoint(out_dir / "checkpoints") is None:
        return
    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    now = json.loads(json.dumps(config_to_dict(cfg)))
    for d in (saved, now):
        for k in _RESUMABLE_KEYS:
            d.get("train", {}).pop(k, None)
    if saved != now:
        diff = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
        raise ConfigError(
            f"{saved_path}: the run directory holds checkpoints of a run with a different "
            f"configuration (differs in {diff}); use another train.out_dir or start over "
            "(--restart)"
        )


def _compact(m: dict[str, Any]) -> dict[str, Any]:
    """Metrics rounded to 4 decimals (NaN AUCs become None) for the manifest."""

    def r(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: r(x) for k, x in v.items()}
        if isinstance(v, float):
            return None if not np.isfinite(v) else round(v, 4)
        return v

    return r(m)


def _jsonable_config(cfg: M0Config) -> dict[str, Any]:
    from ..common.config import config_to_dict

    return config_to_dict(cfg)
