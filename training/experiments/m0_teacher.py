"""Teacher-labelled real faces as M0's inaccurate set: (a) / (b) / (c) on the same data.

Data:

* *clean*: rendered faces with exact labels (:func:`training.data.synth_faces`, the
  ``data.synth`` section of the config), split by identity into train / validation / test;
* *noisy*: real faces labelled by the blendshape teacher, a folder written by
  ``auperf label`` (:mod:`auperf.labeling`; ``--labels``). Its sources (videos, photos) are
  split: the sources named by ``--held-out`` (substrings of the source path) are never trained
  on and serve as the real-face evaluation; the others form the inaccurate set. Unknown AUs
  (-1) are masked by every loss.

Runs (same network, epochs, seed, synthetic faces):

* ``a_synth_only``: M0 on the rendered training faces only;
* ``b_m0_teacher``: M0 with the rendered faces as the clean set and the teacher-labelled real
  faces as the noisy set, then label refinement and retraining (``refine_epochs``);
* ``c_bce_union``: plain BCE (one backbone) on the union, teacher labels taken as true.

Reported: mean F1 / AUC over the AUs on the rendered *test* identities (thresholds tuned on the
validation identities), and on the held-out real faces the agreement with the teacher (per AU
where the teacher gives a label: accuracy, F1 against the teacher's label, ROC AUC of the
model's probability against it) and the rank correlation of the AU12 probability with the
teacher's AU12 score (the smile blendshapes). Writes ``training/results/teacher/m0_teacher.json``
and ``m0_teacher.md``; every number comes from the runs.

Usage::

    auperf label <videos/photos> -o runs/teacher_labels          # the noisy set
    python -m training.experiments.m0_teacher --config training/configs/m0_teacher.yaml \\
        --labels runs/teacher_labels --held-out WolfgangLanger
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import platform
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch
from sklearn.metrics import f1_score, roc_auc_score

from auperf.labeling import read_label_dir

from ..common.checkpoint import latest_checkpoint, load_checkpoint
from ..common.config import load_config
from ..data import parse_data_config
from ..data.faces import TRAIN, AlignedFaces, align_images, synth_faces
from ..data.pipeline import M0Data
from ..m0.config import M0Config
from ..m0.method import predict_m0
from ..m0.train import build_variant, train_m0
from .m0_noise import _train_time

_log = logging.getLogger("auperf.training")
ROOT = Path(__file__).resolve().parents[2]

#: run name -> (variant, uses the real faces, label)
RUNS: dict[str, tuple[str, bool, str]] = {
    "demo": ("", False, "shipped demo detector (reference, not retrained)"),
    "a_synth_only": ("m0", False, "(a) M0, rendered faces only"),
    "b_m0_teacher": ("m0", True, "(b) M0, rendered clean + teacher-labelled real noisy"),
    "c_bce_union": ("bce_single_view", True, "(c) plain BCE on the union"),
}


def real_faces(
    labels_dir: Path, au_ids, aligned: int, held_out: tuple[str, ...], thresholds: str = "table"
):
    """The label folder's faces re-aligned to ``aligned`` px.

    ``thresholds``: ``"table"`` keeps the labels the label job wrote (the shipped calibration,
    fitted on rendered faces); ``"half"`` relabels from the stored teacher scores at 0.5
    (MediaPipe's own scale) for the same reliable AUs, the others staying unknown.

    Returns:
        ``(images (N, 3, A, A) uint8, teacher labels (N, L) int8, teacher scores (N, L),
        held-out mask (N,), source (N,))``.
    """
    from auperf.align import template

    t = read_label_dir(labels_dir)
    missing = [a for a in au_ids if a not in t.au_ids]
    if missing:
        raise click.ClickException(f"{labels_dir}: AUs {missing} are not in the label table")
    cols = [t.au_ids.index(int(a)) for a in au_ids]
    crops = t.load_crops()
    size = crops.shape[1]
    pts = np.repeat(template(size)[None], len(t), axis=0)
    images = align_images(crops, pts, aligned)
    held = np.array([any(h in s for h in held_out) for s in t.source], bool)
    labels = t.labels[:, cols].copy()
    if thresholds == "half":
        known = (t.labels[:, cols] >= 0).any(axis=0)
        sc = t.scores[:, cols]
        labels[:, known] = (sc[:, known] >= 0.5).astype(np.int8)
    elif thresholds != "table":
        raise click.BadParameter(f"expected 'table' or 'half', got {thresholds!r}")
    return images, labels, t.scores[:, cols], held, t.source


def build_data(cfg: M0Config, real, use_real: bool) -> M0Data:
    """Rendered faces (clean; val / test) plus, when ``use_real``, the real training faces as
    the inaccurate set (their true labels are unknown, -1)."""
    d = parse_data_config(cfg.data)
    aligned = d.aligned_size or int(round(cfg.input_size * 256 / 224))
    syn = synth_faces(d.synth, aligned, d.cache_dir, progress=False)
    true_syn = syn.labels_for(cfg.au_ids)
    images, teacher, _, held, _ = real
    train_real = np.flatnonzero(~held) if use_real else np.zeros(0, np.int64)
    n_s, n_r, n_l = len(syn), train_real.size, len(cfg.au_ids)
    faces = AlignedFaces(
        images=np.concatenate([syn.images, images[train_real]]),
        au_ids=tuple(int(a) for a in cfg.au_ids),
        occurrence=np.concatenate([true_syn, np.full((n_r, n_l), -1, np.int8)]),
        subject=np.concatenate([syn.subject, syn.subject.max() + 1 + np.arange(n_r)]),
        split=np.concatenate([syn.split, np.full(n_r, TRAIN, np.int8)]),
        features=np.zeros((n_s + n_r, 1), np.float32),
        keys=np.concatenate([syn.keys, np.array([f"real{i}" for i in train_real])]),
    )
    given = faces.occurrence.copy()
    given[n_s:] = teacher[train_real]
    return M0Data(
        faces=faces,
        au_ids=faces.au_ids,
        accurate=syn.indices(TRAIN),
        inaccurate=n_s + np.arange(n_r),
        val=syn.indices(1),
        test=syn.indices(2),
        true_labels=faces.occurrence,
        given_labels=given,
        cfg=d,
        input_size=cfg.input_size,
        batch_size=cfg.train.batch_size,
        mean=tuple(cfg.mean),
        std=tuple(cfg.std),
        colour_order=cfg.colour_order,
    )


def _final_model(cfg: M0Config):
    _, model, _, _ = build_variant(cfg)
    out = Path(cfg.train.out_dir)
    ckpt = latest_checkpoint(out / "refine" / "checkpoints") or latest_checkpoint(
        out / "checkpoints"
    )
    load_checkpoint(ckpt, model)
    return model


def real_agreement(model, data: M0Data, real, thresholds, au_ids) -> dict[str, Any]:
    """Agreement of the model with the teacher on the held-out real faces."""
    from ..data.pipeline import EvalBatches

    images, teacher, scores, held, _ = real
    idx = np.flatnonzero(held)
    batches = EvalBatches(
        torch.from_numpy(images[idx]),
        torch.from_numpy(teacher[idx].astype(np.float32)),
        input_size=data.input_size,
        batch_size=128,
        mean=data.mean,
        std=data.std,
        colour_order=data.colour_order,
    )
    prob = predict_m0(model, batches)["prob"]
    return _agreement(prob, thresholds, teacher[idx], scores[idx], au_ids)


def _agreement(prob, thresholds, y, scores, au_ids) -> dict[str, Any]:
    """Per-AU agreement of probabilities (thresholded) with teacher labels ``y`` (-1 skipped)."""
    pred = prob >= np.asarray(thresholds)[None]
    per: dict[str, Any] = {}
    for j, au in enumerate(au_ids):
        k = y[:, j] >= 0
        if not k.any():
            continue
        yt, pp, pr = y[k, j], pred[k, j], prob[k, j]
        row = {
            "n": int(k.sum()),
            "teacher_positives": int(yt.sum()),
            "accuracy": float((pp == yt).mean()),
            "f1": float(f1_score(yt, pp, zero_division=0)),
            "auc": float(roc_auc_score(yt, pr)) if 0 < yt.sum() < yt.size else None,
        }
        per[f"AU{au}"] = row
    j12 = list(au_ids).index(12) if 12 in au_ids else None
    rho = None
    if j12 is not None and np.isfinite(scores[:, j12]).all():
        from scipy.stats import spearmanr

        rho = float(spearmanr(prob[:, j12], scores[:, j12]).statistic)
    known = y >= 0
    aucs = [r["auc"] for r in per.values() if r["auc"] is not None]
    return {
        "faces": int(y.shape[0]),
        "accuracy": float((pred == (y == 1))[known].mean()) if known.any() else None,
        "mean_auc": float(np.mean(aucs)) if aucs else None,
        "au12_spearman_vs_smile": rho,
        "per_au": per,
    }


def demo_row(data: M0Data, real, au_ids) -> dict[str, Any]:
    """The shipped demo detector (``auperf.Detector()``, its own thresholds) on the same
    rendered test faces and held-out real faces, through the runtime's own alignment: the
    aligned crops are passed as frames with the crop template as their landmarks."""
    import auperf
    from auperf.align import template

    from ..common.metrics import evaluate_occurrence

    def run(images_nchw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = np.ascontiguousarray(images_nchw.transpose(0, 2, 3, 1))
        pts = np.repeat(template(frames.shape[1])[None], len(frames), axis=0)
        with auperf.Detector() as det:
            if tuple(det.au_ids) != tuple(au_ids):
                raise click.ClickException(f"demo AUs {det.au_ids} differ from {au_ids}")
            res = det.detect(frames, pts)
        return res.probabilities, res.thresholds

    names = [f"AU{a}" for a in au_ids]
    prob, th = run(data.faces.images[data.test])
    test = evaluate_occurrence(data.true_labels[data.test], prob, th, names)
    images, teacher, scores, held, _ = real
    prob_r, _ = run(images[held])
    return {
        "test_mean_f1": test["mean_f1"],
        "test_mean_auc": test["mean_auc"],
        "test_f1": test["f1"],
        "thresholds": [float(t) for t in th],
        "real": _agreement(prob_r, th, teacher[held], scores[held], au_ids),
        "train_time_s": float("nan"),
    }


def _rel(path: str | Path) -> str:
    """``path`` relative to the repository root where it lies inside it."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(path)


def _f(x: Any, d: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{d}f}"


def render_tables(res: dict[str, Any]) -> str:
    s = res["settings"]
    lines = [
        "# Teacher-labelled real faces as M0's noisy set",
        "",
        f"Generated by `python -m training.experiments.m0_teacher`. Rendered faces: "
        f"{s['synth_train']} training, {s['synth_val']} validation, {s['synth_test']} test "
        f"(disjoint identities). Real faces labelled by the teacher (`auperf label`): "
        f"{s['real_train']} training faces from {s['real_train_sources']} sources, "
        f"{s['real_held_out']} held-out faces from the sources matching {s['held_out']} "
        f"(never trained on). Teacher labels: {s['teacher_thresholds']} thresholds. "
        f"Network `{s['backbone']}` at {s['input_size']} px, "
        f"{s['epochs']} epochs (+{s['refine_epochs']} refinement epochs for M0 with real "
        f"faces), seed {s['seed']}, 1 CPU thread.",
        "",
        "| run | rendered test mean F1 | rendered test mean AUC | real held-out: agreement "
        "with teacher | real held-out: mean AUC vs teacher | AU12 vs smile (Spearman) | "
        "train time (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in res["runs"].items():
        lines.append(
            f"| {RUNS[name][2]} | {_f(r['test_mean_f1'])} | {_f(r['test_mean_auc'])} | "
            f"{_f(r['real']['accuracy'])} | {_f(r['real']['mean_auc'])} | "
            f"{_f(r['real']['au12_spearman_vs_smile'])} | {_f(r['train_time_s'] / 60, 1)} |"
        )
    lines += ["", "Per-AU F1 on the rendered test identities:", ""]
    names = list(next(iter(res["runs"].values()))["test_f1"])
    lines.append("| run | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for name, r in res["runs"].items():
        lines.append(f"| {name} | " + " | ".join(_f(r["test_f1"][k], 2) for k in names) + " |")
    lines += [
        "",
        "Held-out real faces, per AU (where the teacher gives labels): F1 against the "
        "teacher's label / ROC AUC:",
        "",
    ]
    aus = sorted(
        {k for r in res["runs"].values() for k in r["real"]["per_au"]}, key=lambda k: int(k[2:])
    )
    lines.append("| run | " + " | ".join(aus) + " |")
    lines.append("|---|" + "---|" * len(aus))
    for name, r in res["runs"].items():
        cells = []
        for k in aus:
            p = r["real"]["per_au"].get(k)
            cells.append("n/a" if p is None else f"{_f(p['f1'], 2)} / {_f(p['auc'], 2)}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    pos = res["settings"]["teacher_positives_held_out"]
    lines += [
        "",
        "Teacher positives among the held-out real faces: "
        + ", ".join(f"{k} {v}" for k, v in pos.items())
        + ". AUs the teacher labels unknown are not scored on real faces.",
        "",
        f"Machine: {res['machine']['cpu']}, torch {res['machine']['torch']}, 1 thread; "
        f"training time (from the run logs) {res['machine']['train_time_min']} min in total "
        "(the runs of the other teacher-threshold table share run (a)); this report "
        f"{res['machine']['wall_time_min']} min (finished runs are read back, not retrained).",
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--config", default=str(ROOT / "training/configs/m0_teacher.yaml"))
@click.option("--labels", default=str(ROOT / "runs/teacher_labels"), help="auperf label folder.")
@click.option(
    "--held-out",
    "held_out",
    multiple=True,
    default=("WolfgangLanger",),
    help="Substring of the sources held out for the real-face evaluation.",
)
@click.option(
    "--teacher-thresholds",
    type=click.Choice(["table", "half"]),
    default="table",
    help="table: the labels as written (rendered-face calibration); half: 0.5 on the scores.",
)
@click.option("--epochs", type=int, default=None, help="Override train.epochs (smoke runs).")
@click.option("--out", default=str(ROOT / "training/results/teacher"))
@click.option("--runs", "run_root", default=str(ROOT / "runs/m0_teacher"))
@click.option("--only", multiple=True, help="Run only these runs (names of RUNS).")
def main(config, labels, held_out, teacher_thresholds, epochs, out, run_root, only) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    base = load_config(config, M0Config)
    if epochs is not None:
        base = dataclasses.replace(base, train=dataclasses.replace(base.train, epochs=epochs))
    d = parse_data_config(base.data)
    aligned = d.aligned_size or int(round(base.input_size * 256 / 224))
    real = real_faces(Path(labels), base.au_ids, aligned, tuple(held_out), teacher_thresholds)
    if not real[3].any() or real[3].all():
        raise click.ClickException(
            f"--held-out {held_out}: must match some but not all of the label folder's sources"
        )
    res: dict[str, Any] = {"runs": {}}
    for name, (variant, use_real, _) in RUNS.items():
        if not variant or (only and name not in only):
            continue
        data = build_data(base, real, use_real)
        sub = name if not use_real else f"{name}_{teacher_thresholds}"
        train = dataclasses.replace(base.train, out_dir=str(Path(run_root) / sub))
        cfg = dataclasses.replace(base, variant=variant, train=train)
        if variant != "m0" or not use_real:
            cfg = dataclasses.replace(cfg, refine_epochs=0)
        r = train_m0(cfg, data=data, export=False)
        ev = r.get("evaluation_after_refine", r["evaluation"])
        model = _final_model(cfg)
        res["runs"][name] = {
            "test_mean_f1": ev["test"]["mean_f1"],
            "test_mean_auc": ev["test"]["mean_auc"],
            "test_f1": ev["test"]["f1"],
            "thresholds": ev["thresholds"],
            "real": real_agreement(model, data, real, ev["thresholds"], base.au_ids),
            # from the run's logs, so that a resumed (already trained) run reports its training
            "train_time_s": _train_time(Path(cfg.train.out_dir)),
            "refinement": r.get("refinement"),
        }
        data_last = data
    res["runs"]["demo"] = demo_row(data_last, real, base.au_ids)
    images, teacher, _, held, source = real
    y_held = teacher[held]
    res["settings"] = {
        "config": _rel(config),
        "labels": _rel(labels),
        "held_out": list(held_out),
        "teacher_thresholds": teacher_thresholds,
        "au_ids": list(base.au_ids),
        "backbone": base.backbone,
        "input_size": base.input_size,
        "epochs": base.train.epochs,
        "refine_epochs": base.refine_epochs,
        "seed": base.train.seed,
        "synth_train": int(data_last.accurate.size),
        "synth_val": int(data_last.val.size),
        "synth_test": int(data_last.test.size),
        "real_train": int((~held).sum()),
        "real_train_sources": int(len(set(source[~held]))),
        "real_held_out": int(held.sum()),
        "teacher_positives_held_out": {
            f"AU{a}": int((y_held[:, j] == 1).sum())
            for j, a in enumerate(base.au_ids)
            if (y_held[:, j] >= 0).any()
        },
    }
    res["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "wall_time_min": round((time.perf_counter() - t0) / 60, 1),
        "train_time_min": round(
            sum(r["train_time_s"] for r in res["runs"].values() if math.isfinite(r["train_time_s"]))
            / 60,
            1,
        ),
    }
    o = Path(out)
    o.mkdir(parents=True, exist_ok=True)
    stem = f"m0_teacher_{teacher_thresholds}"
    (o / f"{stem}.json").write_text(json.dumps(res, indent=2, default=float) + "\n")
    (o / f"{stem}.md").write_text(render_tables(res))
    click.echo(render_tables(res))


if __name__ == "__main__":
    main()
