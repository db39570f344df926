"""Command line of the M2 trainer: ``python -m training.m2 --help``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..common.checkpoint import load_weights
from ..common.config import config_to_dict, load_config, save_config
from .config import M2Config


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """M2: the Self-Cure Network expression classifier."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )


@main.command("default-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def default_config(path: Path) -> None:
    """Write the default run file to PATH (to edit)."""
    save_config(M2Config(), path)
    click.echo(f"wrote {path}")


@main.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The run's YAML file.",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming.")
@click.option("--name", default=None, help="Model name (default: m2-<backbone>).")
@click.option("--no-export", is_flag=True, help="Skip the ONNX export.")
@click.option("--threads", type=int, default=None, help="torch CPU threads.")
def train(
    config_path: Path, restart: bool, name: str | None, no_export: bool, threads: int | None
) -> None:
    """Train (resuming), evaluate on held-out identities and export."""
    import torch

    from .train import train_m2

    if threads:
        torch.set_num_threads(threads)
    cfg = load_config(config_path, M2Config)
    res = train_m2(cfg, restart=restart, export=not no_export, name=name, progress=True)
    test = res["test"]["accuracy"] if res["test"] else float("nan")
    click.echo(
        f"val accuracy {res['val']['accuracy']:.3f}, test accuracy {test:.3f}, "
        f"relabelled: {res['relabel_repaired']} repaired, {res['relabel_broken']} broken"
    )
    if "export" in res:
        click.echo(f"wrote {res['export']['onnx']} and {res['export']['manifest']}")
    click.echo(f"results: {Path(cfg.train.out_dir) / 'results.json'}")


@main.command("export")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The run's YAML file.",
)
@click.option(
    "--weights",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A checkpoint (epoch-NNNN.safetensors) or a weights file.",
)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", default="m2", show_default=True, help="Model name (file stem).")
@click.option("--training-data", default="unspecified", show_default=True)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file of evaluation metrics to record.",
)
@click.option("--description", default="", help="Manifest description.")
def export(
    config_path: Path,
    weights: Path,
    out_dir: Path,
    name: str,
    training_data: str,
    metrics_path: Path | None,
    description: str,
) -> None:
    """Export a trained M2 network: ONNX, safetensors weights and an expression manifest."""
    from auperf.nets.m2 import M2Net

    from .export import export_m2

    cfg = load_config(config_path, M2Config)
    net = M2Net(cfg.num_classes, cfg.backbone, cfg.importance.enabled, cfg.dropout)
    load_weights(net, weights)
    metrics = json.loads(metrics_path.read_text()) if metrics_path else None
    res = export_m2(
        net,
        out_dir,
        name=name,
        classes=cfg.data.classes,
        input_size=cfg.input_size,
        training_data=training_data,
        metrics=metrics,
        colour_order=cfg.colour_order,
        mean=cfg.mean,
        std=cfg.std,
        config=config_to_dict(cfg),
        description=description,
    )
    click.echo(
        f"wrote {res.onnx_path}, {res.weights_path} and {res.manifest_path} "
        f"(max |ort - torch| = {res.onnx_max_abs_diff:.2e})"
    )


if __name__ == "__main__":
    main()
