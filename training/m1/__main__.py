"""Command line of the M1 trainer: ``python -m training.m1 --help``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..common.config import config_to_dict, load_config, save_config
from .config import VARIANTS, M1Config


@click.group()
def main() -> None:
    """M1: identity-disentangled AU detection (train, export)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")


@main.command()
@click.option(
    "--config", "config_path", required=True, type=click.Path(exists=True, dir_okay=False)
)
@click.option(
    "--variant", type=click.Choice(VARIANTS), default=None, help="Override train.variant."
)
@click.option("--out-dir", default=None, help="Override train.out_dir.")
@click.option("--iterations", type=int, default=None, help="Override train.iterations.")
@click.option(
    "--export/--no-export", default=True, show_default=True, help="Export ONNX + manifest."
)
def train(
    config_path: str, variant: str | None, out_dir: str | None, iterations: int | None, export: bool
) -> None:
    """Train (or resume) a run, evaluate it on the test identities and export it."""
    from .export import export_m1
    from .train import evaluate, predict, split_arrays, train_m1

    cfg = load_config(config_path, M1Config)
    if variant is not None:
        cfg.train.variant = variant
    if out_dir is not None:
        cfg.train.out_dir = out_dir
    if iterations is not None:
        cfg.train.iterations = iterations
    out = Path(cfg.train.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.yaml")
    res = train_m1(cfg)
    sp = split_arrays(res["faces"])
    net = res["model"].net
    pv, pt = predict(net, sp[1].images), predict(net, sp[2].images)
    metrics = evaluate(pv["prob"], sp[1].labels, pt["prob"], sp[2].labels, list(cfg.au_names))
    summary = {"step": res["step"], "test": metrics, "config": config_to_dict(cfg)}
    if export:
        ex = export_m1(
            net,
            out / "export",
            name=f"m1-{cfg.train.variant}",
            au_ids=cfg.au_ids,
            au_names=cfg.au_names,
            input_size=cfg.input_size,
            training_data="auperf.synth videos (training identities only)",
            thresholds=metrics["thresholds"],
            metrics={"test_mean_f1": metrics["mean_f1"], "test_mean_auc": metrics["mean_auc"]},
            config=config_to_dict(cfg),
        )
        summary["export"] = {"onnx": str(ex.onnx_path), "max_abs_diff": ex.max_abs_diff}
    (out / "results.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    click.echo(f"test mean F1 {metrics['mean_f1']:.3f}, mean AUC {metrics['mean_auc']:.3f}")


@main.command("default-config")
@click.argument("path", type=click.Path(dir_okay=False))
def default_config(path: str) -> None:
    """Write the default run file to PATH."""
    save_config(M1Config(), path)


if __name__ == "__main__":
    main()
