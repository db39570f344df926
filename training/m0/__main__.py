"""Command line of M0: ``python -m training.m0 --help``."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..common.checkpoint import load_weights
from ..common.config import config_to_dict, load_config, save_config
from .config import M0Config


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """M0: two-view co-training AU detector (train, export)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@main.command("default-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def default_config(path: Path) -> None:
    """Write the default M0 run file to PATH (YAML), to edit."""
    save_config(M0Config(), path)
    click.echo(f"wrote {path}")


@main.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The run's YAML file (e.g. training/configs/m0_synth_small.yaml).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start over instead of resuming from the run directory's newest checkpoints.",
)
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to export ONNX + manifest (default: <out_dir>/export).",
)
@click.option("--name", default=None, help="Model name (default: m0-<backbone>).")
@click.option("--no-export", is_flag=True, help="Skip the ONNX export.")
@click.option(
    "--threads", default=0, show_default=True, type=int, help="torch CPU threads (0: torch's)."
)
def train(
    config_path: Path,
    restart: bool,
    export_dir: Path | None,
    name: str | None,
    no_export: bool,
    threads: int,
) -> None:
    """Train M0 (or a baseline, per the config's variant), tune thresholds on validation,
    refine labels and retrain as configured, export ONNX + manifest."""
    import torch

    from .train import train_m0

    if threads > 0:
        torch.set_num_threads(threads)
    cfg = load_config(config_path, M0Config)
    res = train_m0(cfg, resume=not restart, export=not no_export, export_dir=export_dir, name=name)
    final = res.get("evaluation_after_refine", res["evaluation"])
    line = f"validation mean F1 {final['val']['mean_f1']:.3f}"
    if "test" in final:
        line += f", test mean F1 {final['test']['mean_f1']:.3f} (thresholds tuned on validation)"
    click.echo(line)
    if "export" in res:
        click.echo(f"wrote {res['export']['onnx']} and {res['export']['manifest']}")
        if res["export"].get("weights"):
            click.echo(f"wrote {res['export']['weights']}")
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
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder.",
)
@click.option("--name", default="m0", show_default=True, help="Model name (file stem).")
@click.option(
    "--training-data",
    default="unspecified",
    show_default=True,
    help="What the model was trained on (manifest text).",
)
@click.option(
    "--metrics",
    "metrics_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON file of evaluation metrics to record.",
)
@click.option(
    "--thresholds",
    "thresholds_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON list of per-AU thresholds (default 0.5 each).",
)
@click.option("--opset", default=17, show_default=True, type=int)
@click.option(
    "--atol",
    default=1e-4,
    show_default=True,
    type=float,
    help="Largest allowed |onnxruntime - torch|.",
)
def export(
    config_path: Path,
    weights: Path,
    out_dir: Path,
    name: str,
    training_data: str,
    metrics_path: Path | None,
    thresholds_path: Path | None,
    opset: int,
    atol: float,
) -> None:
    """Export a trained M0 network to ONNX, write its torch weights and its manifest."""
    from .export import export_m0
    from .train import as_two_view_net, build_variant

    cfg = load_config(config_path, M0Config)
    net = build_variant(cfg)[1]  # the network the config's variant trains
    load_weights(net, weights)
    net = as_two_view_net(net)
    metrics = json.loads(metrics_path.read_text()) if metrics_path else None
    thresholds = json.loads(thresholds_path.read_text()) if thresholds_path else None
    res = export_m0(
        net,
        out_dir,
        name=name,
        au_ids=cfg.au_ids,
        au_names=cfg.au_names,
        input_size=cfg.input_size,
        training_data=training_data,
        metrics=metrics,
        thresholds=thresholds,
        colour_order=cfg.colour_order,
        mean=cfg.mean,
        std=cfg.std,
        config=config_to_dict(cfg),
        opset=opset,
        atol=atol,
    )
    click.echo(
        f"wrote {res.onnx_path} and {res.manifest_path} "
        f"(max |ort - torch| = {res.max_abs_diff:.2e})"
    )
    if res.weights_path is not None:
        click.echo(f"wrote {res.weights_path} (sha256 {res.weights_sha256})")


if __name__ == "__main__":
    main()
