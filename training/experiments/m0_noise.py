"""M0 against its baselines under inaccurate labels, on rendered faces of held-out identities.

Runs, with the same data, network size, epochs and seed each:

- ``m0``: M0 (clean and noisy heads, L_mv, L_cons), then label refinement and retraining;
- ``bce_two_view``: two views, plain BCE on every given label, no L_mv / L_cons;
- ``bce_single_view``: one backbone, plain BCE on every given label;

at 0 % inaccurate labels and at 20 % and 40 % with each noise generator (``flip``: random,
``weak_model``: systematic, driven by the renderer's identity and pose parameters). Every run
tunes per-AU thresholds on the validation identities and is scored on the test identities.

Writes ``training/results/m0_noise.json`` (every number, with the machine and versions),
``training/results/m0_noise.md`` (the tables) and inserts the tables into
``training/README.md`` between the ``<!-- m0_noise:begin -->`` and ``<!-- m0_noise:end -->``
markers. Runs live in ``runs/m0_noise/<condition>/<variant>`` and are resumed (a finished run is
read back, not retrained).

Usage::

    python -m training.experiments.m0_noise                 # the full grid (~40 CPU-min)
    python -m training.experiments.m0_noise --epochs 1 --faces-per-identity 2 --out /tmp/x  # smoke
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

from ..common.config import load_config
from ..data import build_m0_data, parse_data_config
from ..m0.config import M0Config
from ..m0.train import train_m0

__all__ = ["CONDITIONS", "VARIANT_LABELS", "render_tables", "insert_into_readme", "run_grid"]

_log = logging.getLogger("auperf.training")
ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- m0_noise:begin -->", "<!-- m0_noise:end -->"

#: (name, noise generator, rate)
CONDITIONS: tuple[tuple[str, str, float], ...] = (
    ("clean", "none", 0.0),
    ("flip20", "flip", 0.2),
    ("flip40", "flip", 0.4),
    ("weak20", "weak_model", 0.2),
    ("weak40", "weak_model", 0.4),
)
VARIANT_LABELS = {
    "m0": "M0",
    "m0_refined": "M0 + refine",
    "bce_two_view": "two-view BCE",
    "bce_single_view": "single-view BCE",
}


def _fmt(x: Any, digits: int = 3) -> str:
    return (
        "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"
    )


def render_tables(results: dict[str, Any]) -> str:
    """The Markdown tables of a results dict (as written to ``m0_noise.json``)."""
    gamma = results["settings"]["refine_gamma"]
    lines = [
        "Test mean F1 over the "
        f"{len(results['settings']['au_ids'])} AUs (per-AU thresholds tuned on the validation "
        "identities; mean ROC AUC in brackets). Inaccurate labels replace the true labels of the "
        f"{results['settings']['inaccurate_faces']} faces of the inaccurately labelled identities; "
        f"the {results['settings']['accurate_faces']} faces of the accurately labelled identities "
        "keep theirs. Best of each row in bold.",
        "",
        "| inaccurate labels | noise | M0 | M0 + refine (gamma "
        f"{gamma:g}) | two-view BCE | single-view BCE |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for cond in results["conditions"]:
        cells = {}
        for key in ("m0", "m0_refined", "bce_two_view", "bce_single_view"):
            r = cond["runs"].get(key)
            cells[key] = (r["test_mean_f1"], r["test_mean_auc"]) if r else (None, None)
        best = max((v[0] for v in cells.values() if v[0] is not None), default=None)
        row = []
        for key in ("m0", "m0_refined", "bce_two_view", "bce_single_view"):
            f1, auc = cells[key]
            text = f"{_fmt(f1)} ({_fmt(auc)})"
            row.append(f"**{text}**" if f1 is not None and f1 == best else text)
        lines.append(f"| {cond['rate']:.0%} | {cond['noise']} | " + " | ".join(row) + " |")
    lines += [
        "",
        "Label refinement of the inaccurate set (M0, after the main training): agreement of the "
        "labels with the true labels before and after `refine_noisy_labels`, and how many of the "
        "labels changed. With gamma = 0.5 and hardening at 0.5 a hard label cannot change "
        "(`y = 1` gives at least 0.5, `y = 0` at most 0.5), so its row equals the given labels; "
        f"the retraining above uses gamma {gamma:g}.",
        "",
        "| inaccurate labels | noise | given labels | noisy-head prediction | after, gamma 0.5 "
        "| after, gamma 0.3 | changed (gamma 0.3) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for cond in results["conditions"]:
        ref = cond.get("refinement")
        if not ref or cond["rate"] == 0:
            continue
        g = ref["gammas"]
        g5, g3 = g.get("0.5", {}), g.get("0.3", {})
        lines.append(
            f"| {cond['rate']:.0%} | {cond['noise']} | {_fmt(ref['agreement_before'])} | "
            f"{_fmt(ref['noisy_head_agreement'])} | {_fmt(g5.get('agreement_after'))} | "
            f"{_fmt(g3.get('agreement_after'))} | {g3.get('changed', 'n/a')} of "
            f"{g3.get('labels', 'n/a')} |"
        )
    s = results["settings"]
    lines += [
        "",
        f"Budget per run: {s['epochs']} epochs of {s['accurate_faces'] + s['inaccurate_faces']} "
        f"faces ({s['train_identities']} identities), batch {s['batch_size']}, `{s['backbone']}` "
        f"at {s['input_size']} px, plus {s['refine_epochs']} retraining epochs for "
        f"M0 + refine; {s['val_faces']} validation and {s['test_faces']} test faces of held-out "
        f"identities. Training time of the whole grid: {results['machine']['train_time_min']:.0f} "
        f"min of epochs on {results['machine']['threads']} CPU thread(s) per run "
        f"({results['machine']['cpu']}, two runs at a time on a shared 2-core machine).",
    ]
    return "\n".join(lines) + "\n"


def insert_into_readme(readme: Path, table: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the text between the markers in ``readme`` with ``table``.

    Args:
        readme: the Markdown file.
        table: the new text.
        begin, end: the markers (default: this experiment's).

    Raises:
        ValueError: the markers are missing or out of order (the file is named).
    """
    text = readme.read_text(encoding="utf-8")
    i, j = text.find(begin), text.find(end)
    if i < 0 or j < i:
        raise ValueError(f"{readme}: expected the markers {begin!r} ... {end!r} in this order")
    new = text[: i + len(begin)] + "\n" + table + text[j:]
    readme.write_text(new, encoding="utf-8")


def _summary(res: dict[str, Any], key: str = "evaluation") -> dict[str, Any]:
    ev = res[key]
    test = ev.get("test", ev["val"])
    return {
        "test_mean_f1": test["mean_f1"],
        "test_mean_auc": test["mean_auc"],
        "val_mean_f1": ev["val"]["mean_f1"],
        "test_f1": test["f1"],
        "thresholds": ev["thresholds"],
    }


def run_grid(
    base: M0Config,
    out_root: Path,
    *,
    conditions: tuple[tuple[str, str, float], ...] = CONDITIONS,
    variants: tuple[str, ...] = ("m0", "bce_two_view", "bce_single_view"),
) -> dict[str, Any]:
    """Train every variant under every condition; returns the results dict."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {"conditions": []}
    data_cfg = parse_data_config(base.data)
    for name, noise, rate in conditions:
        d = dataclasses.replace(data_cfg, noise=noise, noise_rate=rate)
        cfg0 = dataclasses.replace(base, data=dataclasses.asdict(d))
        data = build_m0_data(cfg0)
        cond: dict[str, Any] = {
            "name": name,
            "noise": noise,
            "rate": rate,
            "runs": {},
            "given_label_agreement": data.noise_agreement(),
        }
        for variant in variants:
            train = dataclasses.replace(base.train, out_dir=str(out_root / name / variant))
            cfg = dataclasses.replace(cfg0, variant=variant, train=train)
            if variant != "m0":
                cfg = dataclasses.replace(cfg, refine_epochs=0)
            _log.info("m0_noise: %s / %s", name, variant)
            res = train_m0(cfg, data=data, export=False, extra_gammas=(0.5, 0.3))
            cond["runs"][variant] = {
                **_summary(res),
                "train_time_s": _train_time(Path(cfg.train.out_dir)),
            }
            if "evaluation_after_refine" in res:
                cond["runs"]["m0_refined"] = _summary(res, "evaluation_after_refine")
            if "refinement" in res:
                cond["refinement"] = res["refinement"]
        out["conditions"].append(cond)
    settings = {
        "au_ids": list(base.au_ids),
        "backbone": base.backbone,
        "input_size": base.input_size,
        "epochs": base.train.epochs,
        "batch_size": base.train.batch_size,
        "lr": base.train.lr,
        "refine_epochs": base.refine_epochs,
        "refine_gamma": base.refine_gamma,
        "refine_scope": base.refine_scope,
        "accurate_fraction": data_cfg.accurate_fraction,
        "train_identities": data_cfg.synth.train_identities,
        "faces_per_identity": data_cfg.synth.faces_per_identity,
        "accurate_faces": int(data.accurate.size),
        "inaccurate_faces": int(data.inaccurate.size),
        "val_faces": int(data.val.size),
        "test_faces": int(data.test.size),
        "seed": base.train.seed,
    }
    out["settings"] = settings
    out["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "wall_time_min": round((time.perf_counter() - t0) / 60.0, 1),
        "train_time_min": round(
            sum(r.get("train_time_s", 0.0) for c in out["conditions"] for r in c["runs"].values())
            / 60.0,
            1,
        ),
    }
    return out


def _train_time(run_dir: Path) -> float:
    """Seconds spent in training epochs of a run (main and refinement stages), from its logs."""
    total = 0.0
    for log in (run_dir / "metrics.jsonl", run_dir / "refine" / "metrics.jsonl"):
        if log.is_file():
            for line in log.read_text().splitlines():
                total += float(json.loads(line).get("train_time_s") or 0.0)
    return round(total, 1)


def _clean_json(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _clean_json(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_clean_json(x) for x in v]
    if isinstance(v, float | np.floating):
        return None if not math.isfinite(float(v)) else round(float(v), 5)
    return v


def experiment_options(default_config: Path, default_out: Path, what: str):
    """The command-line options every experiment script shares (a click decorator)."""

    def decorate(fn):
        options = [
            click.option(
                "--config",
                "config_path",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                default=default_config,
                show_default=True,
                help=f"Base run file (every run uses it, changing {what} only).",
            ),
            click.option(
                "--out",
                "out_root",
                type=click.Path(file_okay=False, path_type=Path),
                default=default_out,
                show_default=True,
                help="Run directories.",
            ),
            click.option(
                "--results",
                "results_dir",
                type=click.Path(file_okay=False, path_type=Path),
                default=ROOT / "training/results",
                show_default=True,
            ),
            click.option(
                "--readme",
                type=click.Path(dir_okay=False, path_type=Path),
                default=ROOT / "training/README.md",
                show_default=True,
                help="README to insert the tables into ('' to skip).",
            ),
            click.option(
                "--epochs", type=int, default=0, help="Override train.epochs (0: the config's)."
            ),
            click.option(
                "--faces-per-identity", type=int, default=0, help="Override (0: the config's)."
            ),
            click.option(
                "--only",
                default="",
                help="Comma-separated run names to train (default: all); run subsets in "
                "parallel, then once more without --only to collect (finished runs are read "
                "back from their checkpoints).",
            ),
            click.option(
                "--threads", type=int, default=2, show_default=True, help="torch CPU threads."
            ),
            click.option("-v", "--verbose", is_flag=True, help="Log at INFO level."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return click.command()(fn)

    return decorate


def prepare_base(
    config_path: Path, epochs: int, faces_per_identity: int, threads: int, verbose: bool
) -> M0Config:
    """Logging, torch threads and the base run file with the command-line overrides applied."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    torch.set_num_threads(threads)
    base = load_config(config_path, M0Config)
    data = dict(base.data)
    if faces_per_identity:
        data["synth"] = {**dict(data.get("synth", {})), "faces_per_identity": faces_per_identity}
    train = dataclasses.replace(base.train, epochs=epochs or base.train.epochs, progress=False)
    return dataclasses.replace(base, data=data, train=train)


@experiment_options(
    ROOT / "training/configs/m0_synth_small.yaml", Path("runs/m0_noise"), "variant and noise"
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
    """Run the noise grid and write the results and tables."""
    base = prepare_base(config_path, epochs, faces_per_identity, threads, verbose)
    conditions = CONDITIONS
    if only:
        names = {c.strip() for c in only.split(",")}
        conditions = tuple(c for c in CONDITIONS if c[0] in names)
        run_grid(base, out_root, conditions=conditions)
        return
    results = _clean_json(run_grid(base, out_root))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "m0_noise.json").write_text(json.dumps(results, indent=2) + "\n")
    table = render_tables(results)
    (results_dir / "m0_noise.md").write_text(table)
    if str(readme) not in ("", "."):
        insert_into_readme(readme, table)
    click.echo(table)


if __name__ == "__main__":
    main()
