"""Why the Self-Cure Network does not beat plain cross-entropy on rendered expressions.

Trains, on the faces and flips of ``training/configs/m2_synth_small.yaml`` (symmetric flips at
``--rate``), SCN with relabelling off and plain cross-entropy, and after every epoch looks at the
whole training split (centre crops, eval mode) with the network as it stands:

- ``acc_true``: accuracy of the training faces against their true labels; ``acc_test``: the
  same on the test identities; ``fit_flipped``: fraction of flipped faces predicted as their
  (wrong) given label, i.e. how far the network memorises the flips;
- ``alpha_clean`` / ``alpha_flipped``: mean importance of clean and flipped faces;
  ``auc_alpha_flipped``: ROC AUC of ``1 - alpha`` for telling flipped from clean faces (0.5 =
  chance); ``auc_alpha_wrong``: ROC AUC of ``1 - alpha`` for telling the faces the classifier
  currently gets wrong (prediction != given label) from the rest, i.e. what alpha does track;
- ``auc_loss_flipped``: ROC AUC of the per-face cross-entropy against the given label (this
  score sees the label, alpha cannot) for telling flipped from clean faces;
- a dry run of the relabelling rule (:func:`relabel_dry_run`): over the whole split, the faces
  of the low-importance group (the ``1 - beta`` fraction with the smallest alpha; all faces for
  plain CE) whose ``P_max - P_given > delta2`` would get ``argmax P``; ``repair`` counts those
  that would set a flipped label back to the truth, ``break`` those that would change a correct
  label. The rule is also applied to all faces (``*_all``), to separate the classifier's part
  from alpha's.

Probabilities are the softmax of the weighted logits ``alpha z`` (the ones relabelling uses in
training). Training groups are per batch of 32; the dry run groups the whole split, which is the
same rule in expectation.

Writes ``m2_diagnose.json`` and ``m2_diagnose.md`` to ``--results``. Runs live in
``runs/m2_diagnose/<method>`` (each method writes ``diag.json`` there when finished, and a
finished method is read back, so the two methods can run in two processes)::

    python -m training.experiments.m2_diagnose --methods scn &
    python -m training.experiments.m2_diagnose --methods ce
    python -m training.experiments.m2_diagnose            # both done: writes the tables
"""

from __future__ import annotations

import copy
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from auperf.errors import ShapeError

from ..common.config import load_config
from ..common.loop import Trainer
from ..common.metrics import roc_auc_scores
from ..common.seed import seed_everything
from ..m2.config import M2Config
from ..m2.data import ExpressionBatches, M2Data, build_m2_data
from ..m2.method import M2Method

__all__ = ["DiagnosedM2", "diagnose", "relabel_dry_run", "render_diagnosis"]

_log = logging.getLogger("auperf.training")
ROOT = Path(__file__).resolve().parents[2]
METHODS = ("scn", "ce")


def relabel_dry_run(
    probs: np.ndarray,
    given: np.ndarray,
    true: np.ndarray,
    alpha: np.ndarray | None,
    beta: float = 0.7,
    delta2: float = 0.2,
) -> dict[str, int]:
    """What the relabelling rule would do to a whole split, without changing anything.

    The low group is the ``N - round(beta N)`` faces with the smallest ``alpha`` (ties by
    position; every face when ``alpha`` is None). A face of the low group whose
    ``max_j P_j - P_given > delta2`` and whose arg max differs from its given label is a
    candidate.

    Args:
        probs: ``(N, C)`` class probabilities. given: ``(N,)`` the labels the loss sees.
        true: ``(N,)`` the true labels. alpha: ``(N,)`` importances or None.
        beta, delta2: the constants of the rule.

    Returns:
        ``{"candidates", "repair", "break", "other"}``: candidates whose new label would be the
        true one while the given was wrong (repair), whose given label was right (break), and
        the rest (a wrong label replaced by another wrong one).
    """
    probs = np.asarray(probs, np.float64)
    given = np.asarray(given, np.int64)
    true = np.asarray(true, np.int64)
    n = probs.shape[0]
    if probs.ndim != 2 or given.shape != (n,) or true.shape != (n,):
        raise ShapeError(
            f"probs, given, true: expected (N, C), (N,), (N,), got {probs.shape}, "
            f"{given.shape}, {true.shape}"
        )
    low = np.ones(n, bool)
    if alpha is not None:
        alpha = np.asarray(alpha, np.float64)
        if alpha.shape != (n,):
            raise ShapeError(f"alpha: expected shape ({n},), got {alpha.shape}")
        m = min(max(int(round(beta * n)), 1), n - 1)
        order = np.argsort(-alpha, kind="stable")
        low[:] = False
        low[order[m:]] = True
    arg = probs.argmax(1)
    p_given = probs[np.arange(n), given]
    cand = low & (probs.max(1) - p_given > delta2) & (arg != given)
    repair = cand & (given != true) & (arg == true)
    brk = cand & (given == true)
    return {
        "candidates": int(cand.sum()),
        "repair": int(repair.sum()),
        "break": int(brk.sum()),
        "other": int((cand & ~repair & ~brk).sum()),
    }


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    v = roc_auc_scores(y.astype(int)[:, None], score[:, None])[0]
    return None if not np.isfinite(v) else float(v)


@torch.no_grad()
def _scores(net, batches: ExpressionBatches) -> dict[str, np.ndarray]:
    logits, alphas = [], []
    for b in batches(0, None):
        out = net(b["image"])
        logits.append(out.logits.float())
        a = out.alpha if out.alpha is not None else torch.ones(out.logits.shape[0])
        alphas.append(a.float())
    z, a = torch.cat(logits), torch.cat(alphas)
    return {
        "logits": z.numpy(),
        "alpha": a.numpy(),
        "wprob": torch.softmax(a[:, None] * z, 1).numpy(),
    }


def diagnose(net, data: M2Data, cfg: M2Config, epoch: int) -> dict[str, Any]:
    """The per-epoch numbers of the module docstring for ``net`` (switched to eval mode and
    back to the mode it was in)."""
    was_training = net.training
    net.eval()
    tr = ExpressionBatches(
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
    s = _scores(net, tr)
    test = _scores(net, data.test) if data.test is not None else None
    net.train(was_training)
    given, true, flipped = data.train_labels, data.faces.labels[data.train_idx], data.flipped
    pred = s["logits"].argmax(1)
    z = torch.from_numpy(s["logits"])
    loss = torch.nn.functional.cross_entropy(z, torch.from_numpy(given), reduction="none").numpy()
    alpha = s["alpha"] if cfg.importance.enabled else None
    imp = cfg.importance
    row: dict[str, Any] = {
        "epoch": epoch,
        "acc_true": float((pred == true).mean()),
        "acc_test": (
            float((test["logits"].argmax(1) == data.test.labels.numpy()).mean()) if test else None
        ),
        "fit_flipped": float((pred[flipped] == given[flipped]).mean()) if flipped.any() else None,
        "alpha_clean": float(s["alpha"][~flipped].mean()),
        "alpha_flipped": float(s["alpha"][flipped].mean()) if flipped.any() else None,
        "auc_alpha_flipped": _auc(flipped, 1 - s["alpha"]) if alpha is not None else None,
        "auc_alpha_wrong": _auc(pred != given, 1 - s["alpha"]) if alpha is not None else None,
        "auc_loss_flipped": _auc(flipped, loss),
    }
    dry = relabel_dry_run(s["wprob"], given, true, alpha, imp.beta, imp.delta2)
    row.update({f"relabel_{k}": v for k, v in dry.items()})
    dry_all = relabel_dry_run(s["wprob"], given, true, None, imp.beta, imp.delta2)
    row.update({f"relabel_{k}_all": v for k, v in dry_all.items()})
    return row


class DiagnosedM2(M2Method):
    """:class:`~training.m2.method.M2Method` that records :func:`diagnose` at the start of
    every epoch (the state after the previous one)."""

    def __init__(self, cfg: M2Config, data: M2Data) -> None:
        super().__init__(cfg, data.train_labels)
        self.data = data
        self.rows: list[dict[str, Any]] = []

    def on_epoch_start(self, epoch: int) -> None:
        super().on_epoch_start(epoch)
        if epoch > 1:
            self.rows.append(diagnose(self.model, self.data, self.cfg, epoch - 1))


def run_one(cfg: M2Config, data: M2Data) -> dict[str, Any]:
    """Train one run from scratch with per-epoch diagnostics."""
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    method = DiagnosedM2(cfg, data)
    trainer = Trainer(method, cfg.train, data.train, data.val, run_config=cfg)
    t0 = time.process_time()
    trainer.fit(resume=False)
    method.rows.append(diagnose(method.model, data, cfg, cfg.train.epochs))
    return {"rows": method.rows, "cpu_time_s": time.process_time() - t0}


def grid_end_state(grid: Path, base: M2Config) -> dict[str, Any]:
    """End-of-training numbers of the ``m2_noise`` grid's finished runs (``grid/<condition>/
    <method>/checkpoints/epoch-<E>.safetensors``): accuracy of the training faces against their
    true labels and of the test faces, and for SCN the class histogram of the training labels as
    relabelling left them (``extra.labels_current`` of the checkpoint) against the given ones."""
    from safetensors.torch import load_file

    from auperf.nets.m2 import M2Net

    from ..common.checkpoint import load_weights
    from .m2_noise import CONDITIONS

    out: dict[str, Any] = {}
    for name, mode, rate in CONDITIONS:
        cfg0 = copy.deepcopy(base)
        cfg0.data.noise, cfg0.data.noise_rate = mode, rate
        data = None
        for method in METHODS:
            ckpt = (
                grid / name / method / "checkpoints" / f"epoch-{base.train.epochs:04d}.safetensors"
            )
            if not ckpt.is_file():
                continue
            cfg = copy.deepcopy(cfg0)
            cfg.importance.enabled = method == "scn"
            data = data or build_m2_data(cfg)
            net = M2Net(cfg.num_classes, cfg.backbone, importance=method == "scn")
            load_weights(net, ckpt)
            row = diagnose(net, data, cfg, base.train.epochs)
            entry = {k: row[k] for k in ("acc_true", "acc_test", "fit_flipped")}
            cur = load_file(str(ckpt)).get("extra.labels_current")
            if method == "scn" and cur is not None:
                k = cfg.num_classes
                entry["labels_given_per_class"] = np.bincount(
                    data.train_labels, minlength=k
                ).tolist()
                entry["labels_end_per_class"] = np.bincount(cur.numpy(), minlength=k).tolist()
            out.setdefault(name, {})[method] = entry
    return out


def _f(x: Any, d: int = 3) -> str:
    return "n/a" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))


def render_diagnosis(results: dict[str, Any]) -> str:
    """Markdown tables of :func:`main`'s results."""
    meta = results["meta"]
    lines = [
        "# M2: why SCN does not help on rendered expressions (diagnostics)",
        "",
        f"Generated by `python -m training.experiments.m2_diagnose` on {meta['date']} "
        f"({meta['cpu']}, 1 torch thread per run, torch {meta['torch']}). Setting: "
        f"{meta['setting']}. CPU time: {meta['cpu_time']}.",
        "",
        "Every number is measured on the whole training split (centre crops, eval mode) after "
        "the epoch, except `test acc` (test identities, true labels). See the docstring of "
        "`training/experiments/m2_diagnose.py` for the definitions. Relabelling dry run: "
        "repair / break counts of what the rule would do now, in the low-alpha group "
        "(`low`) and over all faces (`all`).",
    ]
    for method, title in (("scn", "SCN, relabelling off"), ("ce", "plain cross-entropy")):
        rows = results["runs"].get(method, {}).get("rows")
        if not rows:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            "| epoch | train acc (true) | test acc | flips memorised | alpha clean | "
            "alpha flipped | AUC alpha->flipped | AUC alpha->misclassified | "
            "AUC loss->flipped | relabel low: repair/break | relabel all: repair/break |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            lines.append(
                f"| {r['epoch']} | {_f(r['acc_true'])} | {_f(r['acc_test'])} | "
                f"{_f(r['fit_flipped'])} | {_f(r['alpha_clean'])} | {_f(r['alpha_flipped'])} | "
                f"{_f(r['auc_alpha_flipped'])} | {_f(r['auc_alpha_wrong'])} | "
                f"{_f(r['auc_loss_flipped'])} | {r['relabel_repair']}/{r['relabel_break']} | "
                f"{r['relabel_repair_all']}/{r['relabel_break_all']} |"
            )
    grid = results.get("grid_end_state")
    if grid:
        lines += [
            "",
            "## End state of the m2_noise grid runs",
            "",
            "Final checkpoints of `python -m training.experiments.m2_noise` (SCN with relabelling "
            "after epoch 12, plain CE): accuracy of the training faces against their true labels "
            "(train acc), test accuracy, and for SCN the training labels per class as given and "
            "as relabelling left them (classes in the order of `auperf.labels.EXPRESSIONS`).",
            "",
            "| condition | method | train acc (true) | test acc | labels per class: given -> end |",
            "|---|---|---|---|---|",
        ]
        for cond, ms in grid.items():
            for m, e in ms.items():
                hist = (
                    f"{e['labels_given_per_class']} -> {e['labels_end_per_class']}"
                    if "labels_end_per_class" in e
                    else ""
                )
                lines.append(
                    f"| {cond} | {m} | {_f(e['acc_true'])} | {_f(e['acc_test'])} | {hist} |"
                )
    lines.append("")
    return "\n".join(lines)


@click.command()
@click.option(
    "--config",
    default=ROOT / "training/configs/m2_synth_small.yaml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    show_default=True,
    help="Base run file.",
)
@click.option("--rate", type=float, default=0.2, show_default=True, help="Symmetric flip rate.")
@click.option("--methods", default="scn,ce", show_default=True, help="Runs to train.")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--faces-per-identity", type=int, default=None, help="Override the data size.")
@click.option(
    "--out", default=Path("runs/m2_diagnose"), type=click.Path(path_type=Path), show_default=True
)
@click.option(
    "--results",
    default=ROOT / "training/results/m2",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where m2_diagnose.{json,md} go (once both methods are done).",
)
@click.option(
    "--grid",
    default=Path("runs/m2_noise"),
    type=click.Path(path_type=Path),
    show_default=True,
    help="Run folder of the m2_noise grid whose final checkpoints are also examined.",
)
@click.option("--stem", default="m2_diagnose", show_default=True, help="Name of the tables.")
@click.option("--no-grid", is_flag=True, help="Skip the m2_noise grid's end state.")
def main(
    config, rate, methods, epochs, faces_per_identity, out, results, grid, stem, no_grid
) -> None:
    """Train with per-epoch diagnostics and write m2_diagnose.{json,md}."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    base = load_config(config, M2Config)
    base.importance.relabel = False
    base.data.noise, base.data.noise_rate = "symmetric", rate
    base.train.progress = False
    if epochs is not None:
        base.train.epochs = epochs
    if faces_per_identity is not None:
        base.data.synth.faces_per_identity = faces_per_identity
    runs: dict[str, Any] = {}
    data = None
    for method in METHODS:
        path = out / method / "diag.json"
        if path.is_file():
            runs[method] = json.loads(path.read_text(encoding="utf-8"))
            continue
        if method not in methods.split(","):
            continue
        cfg = copy.deepcopy(base)
        cfg.importance.enabled = method == "scn"
        cfg.train.out_dir = str(out / method)
        data = data or build_m2_data(cfg)
        runs[method] = run_one(cfg, data)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(runs[method], indent=1), encoding="utf-8")
        _log.info("%s: %.0f s CPU", method, runs[method]["cpu_time_s"])
    if not all(m in runs for m in METHODS):
        _log.info("not every method is done; no tables written")
        return
    b = base
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "setting": (
            f"rendered faces as in m2_noise ({b.data.synth.train_identities} training "
            f"identities x {b.data.synth.faces_per_identity} faces), symmetric flips "
            f"{rate:.0%}, {b.backbone} at {b.input_size} px, {b.train.epochs} epochs, plain CE "
            f"warm-up {b.importance.warmup_epochs} epochs, beta {b.importance.beta}, delta2 "
            f"{b.importance.delta2}"
        ),
        "cpu_time": ", ".join(f"{m} {runs[m]['cpu_time_s']:.0f} s" for m in METHODS),
    }
    res = {"meta": meta, "runs": runs}
    if grid.is_dir() and not no_grid:
        g = load_config(config, M2Config)
        if epochs is not None:
            g.train.epochs = epochs
        if faces_per_identity is not None:
            g.data.synth.faces_per_identity = faces_per_identity
        res["grid_end_state"] = grid_end_state(grid, g)
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{stem}.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    (results / f"{stem}.md").write_text(render_diagnosis(res), encoding="utf-8")
    _log.info("wrote %s", results / f"{stem}.md")


if __name__ == "__main__":
    main()
