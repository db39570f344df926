"""Measure M0 training throughput and count its FLOPs, for the per-epoch time estimates.

For each backbone / input size asked for, runs a few full training steps of :class:`M0Method`
(two views, both heads, all four loss terms, backward, Adam step) on random data after a
warm-up, reports the median samples per second, and counts the floating-point operations of
one step with ``torch.utils.flop_counter.FlopCounterMode`` (forward + backward, multiply-adds
counted as 2). Writes ``training/results/throughput.json``.

Usage::

    python -m training.experiments.throughput                     # resnet34 @ 224, smallnet @ 72
    python -m training.experiments.throughput --device cuda       # on a GPU machine
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

import click
import torch

from ..common.config import TrainConfig
from ..common.loop import StepContext
from ..m0.config import M0Config
from ..m0.method import M0Method

ROOT = Path(__file__).resolve().parents[2]


def measure(backbone: str, size: int, batch: int, steps: int, device: str) -> dict:
    """Samples per second and FLOPs per sample of M0 training steps."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    cfg = M0Config(backbone=backbone, input_size=size, train=TrainConfig(lr=1e-4))
    method = M0Method(cfg)
    dev = torch.device(device)
    method.model.to(dev).train()
    opt = method.configure_optimizer(cfg.train)
    n_aus = cfg.num_aus
    x = torch.randn(batch, 2, 3, size, size, device=dev)
    y = (torch.rand(batch, n_aus, device=dev) > 0.7).float()
    clean, noisy = y.clone(), y.clone()
    clean[batch // 2 :] = -1
    noisy[: batch // 2] = -1
    b = {"image": x, "clean_labels": clean, "noisy_labels": noisy}
    ctx = StepContext(1, 0, dev)

    def step() -> None:
        loss, _ = method.training_step(b, ctx)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    times = []
    for i in range(steps + 1):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first is a warm-up
            times.append(time.perf_counter() - t)
    med = statistics.median(times)
    return {
        "backbone": backbone,
        "input_size": size,
        "batch": batch,
        "steps": steps,
        "median_step_s": round(med, 4),
        "samples_per_s": round(batch / med, 2),
        "train_flops_per_sample": flops / batch,
        "achieved_tflops": round(flops / med / 1e12, 4),
    }


@click.command()
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", default=2, show_default=True, type=int)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=ROOT / "training/results/throughput.json",
    show_default=True,
)
def main(device: str, threads: int, out: Path) -> None:
    """Measure resnet34 @ 224 (batch 8, 3 steps) and smallnet @ 72 (batch 32, 5 steps)."""
    torch.set_num_threads(threads)
    runs = [measure("resnet34", 224, 8, 3, device), measure("smallnet", 72, 32, 5, device)]
    res = {
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "cpu": platform.processor() or platform.machine(),
        "threads": threads,
        "torch": torch.__version__,
        "runs": runs,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    click.echo(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
