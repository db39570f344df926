"""M0's semi-supervised variant against supervised runs on the labelled faces only.

Every run uses ``training/configs/m0_semi.yaml`` (the faces, network, epochs, batch, optimiser
and seed of the noise experiments) and the same identity split: the labels of
``unlabelled_fraction`` of the training identities are withheld.

- ``semi_supervised``: two views without noisy heads; labelled faces with their labels, faces
  whose labels are withheld with pseudo-labels from the other view's clean prediction
  (threshold 0.5); L_clean, L_mv, L_cons (METHODS.md M0, semi-supervised variant);
- ``supervised_half``: the same network and losses (L_clean, L_mv, L_cons) on the labelled
  faces only: what the pseudo-labels add;
- ``bce_half``: two-view BCE (no L_mv / L_cons) on the labelled faces only;
- ``all_labels``: the same network and losses with every training label given (no withheld
  labels): the reference the semi-supervised run would reach if pseudo-labels were perfect.

Every run tunes per-AU thresholds on the validation identities and is scored on the test
identities. The labelled-only runs take fewer steps per epoch (same epochs).

Writes ``training/results/m0_semi.json`` (every number, with the machine and versions),
``training/results/m0_semi.md`` (the table) and inserts the table into ``training/README.md``
between the ``<!-- m0_semi:begin -->`` and ``<!-- m0_semi:end -->`` markers. Runs live in
``runs/m0_semi/<run>`` and are resumed (a finished run is read back, not retrained).

Usage::

    python -m training.experiments.m0_semi --threads 1 --only semi_supervised,supervised_half &
    python -m training.experiments.m0_semi --threads 1 --only all_labels,bce_half
    python -m training.experiments.m0_semi --threads 1     # collects the finished runs
    python -m training.experiments.m0_semi --epochs 1 --faces-per-identity 2 --out /tmp/x  # smoke
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import click
import torch

from ..data import build_m0_data, parse_data_config
from ..m0.config import M0Config
from ..m0.train import train_m0
from .m0_noise import (
    _clean_json,
    _fmt,
    _summary,
    _train_time,
    experiment_options,
    insert_into_readme,
    prepare_base,
)

__all__ = ["RUNS", "RUN_LABELS", "render_table", "run_semi"]

_log = logging.getLogger("auperf.training")
ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- m0_semi:begin -->", "<!-- m0_semi:end -->"

#: (name, variant, labels withheld): every run's network is two views without noisy heads.
RUNS: tuple[tuple[str, str, bool], ...] = (
    ("semi_supervised", "semi_supervised", True),
    ("supervised_half", "m0", True),
    ("bce_half", "bce_two_view", True),
    ("all_labels", "m0", False),
)
RUN_LABELS = {
    "semi_supervised": "semi-supervised (pseudo-labels for the withheld faces)",
    "supervised_half": "supervised, labelled faces only (L_clean + L_mv + L_cons)",
    "bce_half": "two-view BCE, labelled faces only",
    "all_labels": "reference: every label given (L_clean + L_mv + L_cons)",
}


def render_table(results: dict[str, Any]) -> str:
    """The Markdown table of a results dict (as written to ``m0_semi.json``)."""
    s = results["settings"]
    runs = results["runs"]
    lines = [
        f"Test mean F1 over the {len(s['au_ids'])} AUs (per-AU thresholds tuned on the validation "
        "identities; mean ROC AUC in brackets). The labels of "
        f"{s['unlabelled_faces']} training faces ({s['unlabelled_identities']} of the "
        f"{s['train_identities']} identities, {s['unlabelled_fraction']:.0%}) are withheld; the "
        f"other {s['labelled_faces']} keep their true labels. Best of the runs that do not see "
        "the withheld labels in bold.",
        "",
        "| run | labelled faces | faces without labels | test mean F1 (AUC) | val mean F1 "
        "| training time |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    fair = [r["test_mean_f1"] for k, r in runs.items() if k != "all_labels"]
    best = max(fair, default=None)
    for name, _, _ in RUNS:
        r = runs.get(name)
        if r is None:
            continue
        cell = f"{_fmt(r['test_mean_f1'])} ({_fmt(r['test_mean_auc'])})"
        if name != "all_labels" and r["test_mean_f1"] == best:
            cell = f"**{cell}**"
        lines.append(
            f"| {RUN_LABELS[name]} | {r['labelled_faces']} | {r['unlabelled_faces_used']} | "
            f"{cell} | {_fmt(r['val_mean_f1'])} | {r['train_time_s'] / 60:.1f} min |"
        )
    pl = runs.get("semi_supervised", {}).get("pseudo_labels")
    if pl:
        lines += [
            "",
            "Pseudo-labels of the semi-supervised run at the end of training (centre crops of the "
            f"{pl['faces']} faces whose labels are withheld, threshold {pl['threshold']:g}): "
            "agreement with the withheld true labels "
            f"{_fmt(pl['agreement_view1_targets'])} (view 1's targets, from view 2) and "
            f"{_fmt(pl['agreement_view2_targets'])} (view 2's targets, from view 1); the two "
            f"views' hard labels agree on {_fmt(pl['views_agree'])} of the entries; "
            f"{_fmt(pl.get('positive_rate_targets'))} of the pseudo-labels say active, against "
            f"{_fmt(pl.get('positive_rate_true'))} of the withheld true labels.",
        ]
    m = results["machine"]
    lines += [
        "",
        f"Budget per run: {s['epochs']} epochs over the faces it trains on, batch "
        f"{s['batch_size']}, `{s['backbone']}` at {s['input_size']} px, seed {s['seed']}; "
        f"{s['val_faces']} validation and {s['test_faces']} test faces of held-out identities. "
        f"Training time of all runs: {m['train_time_min']:.1f} min of epochs on {m['threads']} "
        f"CPU thread(s) per run ({m['cpu']}, two runs at a time on a shared 2-core machine).",
    ]
    return "\n".join(lines) + "\n"


def run_semi(
    base: M0Config, out_root: Path, *, runs: tuple[tuple[str, str, bool], ...] = RUNS
) -> dict[str, Any]:
    """Train the runs (the same withheld identities for each); returns the results dict.

    Args:
        base: the run file (``variant: semi_supervised``, ``data.unlabelled_fraction > 0``).
        out_root: parent of the run directories.
        runs: which runs (a subset of :data:`RUNS`).
    """
    t0 = time.perf_counter()
    data_cfg = parse_data_config(base.data)
    semi_cfg = dataclasses.replace(base, noisy_heads=False, refine_epochs=0)
    semi_data = build_m0_data(semi_cfg)
    full_cfg = dataclasses.replace(
        semi_cfg, data=dataclasses.asdict(dataclasses.replace(data_cfg, unlabelled_fraction=0.0))
    )
    full_data = None
    out: dict[str, Any] = {"runs": {}}
    for name, variant, withheld in runs:
        cfg0 = semi_cfg if withheld else full_cfg
        if withheld:
            data = semi_data
        else:
            full_data = full_data or build_m0_data(full_cfg)
            data = full_data
        train = dataclasses.replace(base.train, out_dir=str(out_root / name))
        cfg = dataclasses.replace(cfg0, variant=variant, train=train)
        _log.info("m0_semi: %s (%s)", name, variant)
        res = train_m0(cfg, data=data, export=False)
        used = int(data.unlabelled.size) if variant == "semi_supervised" else 0
        out["runs"][name] = {
            **_summary(res),
            "variant": variant,
            "labelled_faces": int(data.accurate.size + data.inaccurate.size),
            "unlabelled_faces_used": used,
            "train_time_s": _train_time(Path(cfg.train.out_dir)),
        }
        if "pseudo_labels" in res:
            out["runs"][name]["pseudo_labels"] = res["pseudo_labels"]
    out["settings"] = {
        "au_ids": list(base.au_ids),
        "backbone": base.backbone,
        "input_size": base.input_size,
        "epochs": base.train.epochs,
        "batch_size": base.train.batch_size,
        "lr": base.train.lr,
        "seed": base.train.seed,
        "pseudo_threshold": base.pseudo_threshold,
        "lambda_mv": base.lambda_mv,
        "lambda_cons": base.lambda_cons,
        "unlabelled_fraction": data_cfg.unlabelled_fraction,
        "train_identities": data_cfg.synth.train_identities,
        "unlabelled_identities": int(len(set(semi_data.faces.subject[semi_data.unlabelled]))),
        "faces_per_identity": data_cfg.synth.faces_per_identity,
        "labelled_faces": int(semi_data.accurate.size),
        "unlabelled_faces": int(semi_data.unlabelled.size),
        "val_faces": int(semi_data.val.size),
        "test_faces": int(semi_data.test.size),
    }
    out["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "wall_time_min": round((time.perf_counter() - t0) / 60.0, 1),
        "train_time_min": round(
            sum(r.get("train_time_s", 0.0) for r in out["runs"].values()) / 60.0, 1
        ),
    }
    return out


@experiment_options(
    ROOT / "training/configs/m0_semi.yaml",
    Path("runs/m0_semi"),
    "the variant and the withheld labels",
)
def main(
    config_path: Path,
    out_root: Path,
    results_dir: Path,
    readme: Path,
    epochs: int,
    faces_per_identity: int,
    only: str,
    threads: int,
    verbose: bool,
) -> None:
    """Run the semi-supervised comparison and write the results and the table."""
    base = prepare_base(config_path, epochs, faces_per_identity, threads, verbose)
    if only:
        names = {n.strip() for n in only.split(",")}
        unknown = names - {r[0] for r in RUNS}
        if unknown:
            raise click.BadParameter(
                f"unknown run names {sorted(unknown)}; expected some of {[r[0] for r in RUNS]}",
                param_hint="--only",
            )
        run_semi(base, out_root, runs=tuple(r for r in RUNS if r[0] in names))
        return
    results = _clean_json(run_semi(base, out_root))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "m0_semi.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render_table(results)
    (results_dir / "m0_semi.md").write_text(table)
    if str(readme) not in ("", "."):
        insert_into_readme(readme, table, BEGIN, END)
    click.echo(table)


if __name__ == "__main__":
    main()
