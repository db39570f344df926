"""Command line of M4: ``python -m training.m4 --help``."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..common.config import load_config, save_config
from .config import M4Config


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level.")
def main(verbose: bool) -> None:
    """M4: Twin-Cycle Autoencoder, self-supervised AU features from video (train, export)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


@main.command("default-config")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def default_config(path: Path) -> None:
    """Write the default M4 run file to PATH (YAML), to edit."""
    save_config(M4Config(), path)
    click.echo(f"wrote {path}")


@main.command("train")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The run's YAML file (e.g. training/configs/m4_synth.yaml).",
)
@click.option("--restart", is_flag=True, help="Start over instead of resuming.")
@click.option(
    "--export-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to export ONNX + manifest + weights (default: <out_dir>/export).",
)
@click.option("--name", default=None, help="Model name (default: m4-tcae-<backbone>).")
@click.option("--no-export", is_flag=True, help="Skip the export.")
@click.option("--threads", default=0, type=int, help="torch CPU threads (0: torch's).")
def train(
    config_path: Path,
    restart: bool,
    export_dir: Path | None,
    name: str | None,
    no_export: bool,
    threads: int,
) -> None:
    """Train the TCAE on unlabelled clips (resumable) and export its encoder."""
    import torch

    from .train import train_m4

    if threads > 0:
        torch.set_num_threads(threads)
    cfg = load_config(config_path, M4Config)
    res = train_m4(cfg, resume=not restart, export=not no_export, export_dir=export_dir, name=name)
    last = res["history"][-1] if res["history"] else {}
    click.echo(
        f"epochs {len(res['history'])}, train loss {last.get('train_loss', float('nan')):.4f}, "
        f"rec {last.get('train_rec', float('nan')):.4f}, training time {res['train_time_s']} s"
    )
    if "export" in res:
        click.echo(f"exported {res['export']['manifest']}")


if __name__ == "__main__":
    main()
