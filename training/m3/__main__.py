"""The M3 trainer's command line.

    python -m training.m3 train --config training/configs/m3_demo.yaml [--nets parser,imitator]
    python -m training.m3 train --config training/configs/m3_demo.yaml --nets predictor
    python -m training.m3 export --config training/configs/m3_demo.yaml --export-dir DIR

``train`` renders (or loads the cached) data and trains the chosen networks, single-threaded by
default (``threads`` in the config); the predictor does not depend on the others and can run in
a second process. ``export`` writes the four model folders (:func:`training.m3.export.export_all`).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import click
import torch

from auperf.nets.m3 import Imitator, Parser, Predictor

from ..common.checkpoint import load_weights, save_weights
from ..common.config import config_to_dict, load_config
from .config import M3Config
from .data import parser_set, training_set
from .export import export_all
from .train import train_imitator, train_parser, train_predictor


@click.group()
def main() -> None:
    """M3 trainer."""


_NETS = ("parser", "imitator", "predictor")


def _net_paths(out: Path) -> dict[str, Path]:
    return {k: out / f"{k}.safetensors" for k in _NETS}


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True))
@click.option(
    "--nets",
    default="parser,imitator,predictor",
    show_default=True,
    help="Comma-separated networks to train (the imitator needs a trained parser).",
)
def train(config_path: str, nets: str) -> None:
    """Render (or load cached) data and train the chosen networks; weights and logs go to
    ``out_dir`` (``<net>.safetensors``, ``<net>.log.jsonl``)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(config_path, M3Config)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chosen = [n.strip() for n in nets.split(",") if n.strip()]
    for n in chosen:
        if n not in _NETS:
            raise click.BadParameter(f"unknown network {n!r}; choose from {_NETS}")
    t0 = time.process_time()
    train_data = training_set(cfg.data)
    pdata = parser_set(cfg.data)
    logging.info(
        "data ready: %d train faces, %d parser faces, %.0f s CPU",
        len(train_data["images"]),
        len(pdata["images"]),
        time.process_time() - t0,
    )
    s = cfg.data.size
    paths = _net_paths(out)
    for n in chosen:
        if n == "parser":
            net, h = train_parser(pdata, s, cfg.parser, seed=cfg.data.seed)
        elif n == "imitator":
            parser = Parser(s, width=cfg.parser.width)
            load_weights(parser, paths["parser"])
            net, h = train_imitator(train_data, s, cfg.imitator, parser, seed=cfg.data.seed)
        else:
            net, h = train_predictor(train_data, s, cfg.predictor, seed=cfg.data.seed)
        save_weights(net, paths[n], {"format": "auperf-weights", "net": n})
        with open(out / f"{n}.log.jsonl", "w") as f:
            for rec in h:
                f.write(json.dumps(rec) + "\n")


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(exists=True))
@click.option("--export-dir", required=True, type=click.Path())
def export(config_path: str, export_dir: str) -> None:
    """Export the trained networks of ``out_dir`` to four model folders under EXPORT_DIR."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(config_path, M3Config)
    torch.set_num_threads(cfg.threads)
    out = Path(cfg.out_dir)
    s = cfg.data.size
    paths = _net_paths(out)
    parser = Parser(s, width=cfg.parser.width)
    imitator = Imitator(
        s, width=cfg.imitator.width, min_width=cfg.imitator.min_width, arch=cfg.imitator.arch
    )
    predictor = Predictor(s, width=cfg.predictor.width)
    metrics = {}
    for n, net in (("parser", parser), ("imitator", imitator), ("predictor", predictor)):
        load_weights(net, paths[n])
        with open(out / f"{n}.log.jsonl") as f:
            last = [json.loads(line) for line in f][-1]
        metrics[n] = {k: v for k, v in last.items() if k not in ("net", "lr", "step")}
        metrics[n]["steps"] = last["step"] + 1
    data_desc = (
        f"auperf.synth faces aligned to {s} px: {cfg.data.faces} faces "
        f"({cfg.data.uniform_fraction:.0%} uniform expression/pose, rest natural), parser "
        f"{cfg.data.parser_faces} faces with Augment.realistic(); seed {cfg.data.seed}"
    )
    result = export_all(
        imitator,
        parser,
        predictor,
        export_dir,
        data=data_desc,
        metrics=metrics,
        config=config_to_dict(cfg),
    )
    logging.info("exported %s", result)


if __name__ == "__main__":
    main()
