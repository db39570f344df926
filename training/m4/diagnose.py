"""Short TCAE runs that show whether the displacement fields grow or collapse.

``python -m training.m4.diagnose --name base --steps 150`` trains a fresh
:class:`~auperf.nets.m4.TCAENet` of a run file (default ``training/configs/m4_synth.yaml``,
its clips and cache) for a few hundred steps with the loss weights given on the command line,
and prints one JSON line every ``--every`` steps: the training terms of the last batch, and on
a fixed batch of 64 held-out pairs (gaps up to ``gap_end``) ``val_rec`` (``L_rec / (W H 3)``
of ``tau(I_s)``), ``nowarp`` (the same for ``I_s`` itself), the mean ``|tau^A|`` and
``|tau^P|`` in pixels (``fA``, ``fP``), the mean ``alpha^A`` and the mean over dimensions of
the batch standard deviation of ``phi`` and ``psi`` (``phistd``, ``psistd``; a value going to
0 means the encoder is collapsing to a constant). ``--oracle`` instead fits a free, smooth
field per pair (a ``k x k`` grid, bilinearly upsampled) to the same held-out pairs by Adam on
``L_rec``: how far warping alone can bring ``L_rec`` down. ``--gradients`` prints, for one
batch of 32 pairs (gaps 1 to ``--gap``) at initialisation, the gradient norm that ``L_rec``,
the embedding terms and the cycle terms (each unweighted) give the encoder and the two
decoders' last layers.

Training pairs have gaps of 1 to ``--gap`` frames, held-out pairs 1 to ``gap_end``; the
learning rate is constant (Adam). Single-threaded by default.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click
import torch
import torch.nn.functional as F

from auperf.nets.m4 import warp_by_field

from ..common.config import load_config
from .config import M4Config
from .data import PairSampler
from .losses import M4LossWeights, m4_loss
from .method import build_tcae
from .train import load_clips

ROOT = Path(__file__).resolve().parents[2]


def _held_out_batch(cfg: M4Config, test, n: int = 64) -> dict[str, torch.Tensor]:
    sampler = PairSampler(test, cfg.curriculum, n, n)
    return next(iter(sampler(cfg.curriculum.epochs + 1, torch.Generator().manual_seed(1))))


def oracle(cfg: M4Config, test, grids=(4, 8, 16), steps: int = 300) -> list[dict]:
    """Free per-pair fields fitted to held-out pairs (module docstring)."""
    rows = []
    for epoch, label in (
        (1, "gap 1"),
        (cfg.curriculum.epochs + 1, f"gap <= {cfg.curriculum.gap_end}"),
    ):
        sampler = PairSampler(test, cfg.curriculum, 64, 64)
        b = next(iter(sampler(epoch, torch.Generator().manual_seed(1))))
        s, t = b["source"], b["target"]
        size = s.shape[-1]
        for k in grids:
            p = torch.zeros(len(s), 2, k, k, requires_grad=True)
            opt = torch.optim.Adam([p], lr=0.1)
            for _ in range(steps):
                f = F.interpolate(p, size=size, mode="bilinear", align_corners=False)
                loss = (warp_by_field(s, f) - t).abs().mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
            rows.append(
                {
                    "pairs": label,
                    "grid": k,
                    "nowarp": round(float((s - t).abs().mean()), 4),
                    "oracle": round(float(loss), 4),
                    "mean_field_px": round(float(f.abs().mean()), 3),
                }
            )
    return rows


@click.command()
@click.option(
    "--config",
    default=str(ROOT / "training" / "configs" / "m4_synth.yaml"),
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
)
@click.option("--name", default="run", help="Label of the printed lines.")
@click.option("--steps", default=150, type=int)
@click.option("--batch", default=16, type=int)
@click.option("--gap", default=4, type=int, help="Largest frame gap of the training pairs.")
@click.option("--sparsity", default=None, type=float, help="lambda_1 (default: the run file's).")
@click.option("--cycle", default=None, type=float, help="lambda_2 (default: the run file's).")
@click.option("--embedding", default=None, type=float, help="lambda_3 (default: the run file's).")
@click.option("--warmup-steps", default=0, type=int, help="Steps of L_rec alone.")
@click.option("--detach/--no-detach", default=None, help="Stop-gradient at embedding targets.")
@click.option("--antisymmetric/--plain", default=None, help="Field decoder kind.")
@click.option("--lr", default=1e-3, type=float)
@click.option("--every", default=25, type=int)
@click.option("--threads", default=1, type=int)
@click.option("--oracle", "run_oracle", is_flag=True, help="Fit free fields instead (above).")
@click.option("--gradients", is_flag=True, help="Gradient norms per term at initialisation.")
def main(
    config, name, steps, batch, gap, sparsity, cycle, embedding, warmup_steps, detach,
    antisymmetric, lr, every, threads, run_oracle, gradients,
) -> None:  # fmt: skip
    """Print field and embedding statistics of a short TCAE run (module docstring)."""
    torch.set_num_threads(threads)
    cfg = load_config(config, M4Config)
    over = {}
    for key, value in (
        ("lambda_sparsity", sparsity),
        ("lambda_cycle", cycle),
        ("lambda_embedding", embedding),
        ("detach_targets", detach),
        ("antisymmetric_decoders", antisymmetric),
    ):
        if value is not None:
            over[key] = value
    cfg = dataclasses.replace(cfg, **over)
    train, test = load_clips(cfg)
    if test is None:
        raise click.UsageError("the diagnosis needs rendered clips with held-out sequences")
    if run_oracle:
        for row in oracle(cfg, test):
            click.echo(json.dumps(row))
        return
    torch.manual_seed(cfg.train.seed)
    net = build_tcae(cfg)
    if gradients:
        fixed = dataclasses.replace(cfg.curriculum, gap_start=gap, gap_end=gap)
        b = next(iter(PairSampler(train, fixed, 32, 32)(1, torch.Generator().manual_seed(0))))
        w = M4LossWeights(detach_targets=cfg.detach_targets)
        terms = m4_loss(net(b["source"], b["target"]), b["source"], b["target"], w)
        parts = {
            "rec": terms.rec,
            "emb": terms.emb_au + terms.emb_pose,
            "cyc": terms.cycle_au + terms.cycle_pose,
        }
        for key, term in parts.items():
            net.zero_grad()
            term.backward(retain_graph=True)
            enc = [p.grad for p in net.encoder.parameters() if p.grad is not None]
            row = {"term": key, "value": round(float(term.detach()), 5)}
            row["encoder"] = float(torch.stack([g.norm() for g in enc]).norm()) if enc else 0.0
            for name, dec in (
                ("decoder_au_out", net.decoder_au),
                ("decoder_pose_out", net.decoder_pose),
            ):
                g = dec.out.weight.grad
                row[name] = float(g.norm()) if g is not None else 0.0
            click.echo(json.dumps(row))
        return
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    full = M4LossWeights(
        sparsity=cfg.lambda_sparsity,
        cycle=cfg.lambda_cycle,
        embedding=cfg.lambda_embedding,
        norm=cfg.embedding_norm,
        detach_targets=cfg.detach_targets,
    )
    warm = dataclasses.replace(full, sparsity=0.0, cycle=0.0, embedding=0.0)
    val = _held_out_batch(cfg, test)
    fixed_gap = dataclasses.replace(cfg.curriculum, gap_start=gap, gap_end=gap)
    sampler = PairSampler(train, fixed_gap, batch * steps, batch)
    t0 = time.perf_counter()
    for i, b in enumerate(sampler(1, torch.Generator().manual_seed(0))):
        terms = m4_loss(net(b["source"], b["target"]), b["source"], b["target"],
                        warm if i < warmup_steps else full)  # fmt: skip
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        if i % every and i != steps - 1:
            continue
        with torch.no_grad():
            o = net(val["source"], val["target"])
            row = {
                "v": name,
                "step": i,
                "t": round(time.perf_counter() - t0),
                "tr": {k: round(v, 4) for k, v in terms.scalars().items()},
                "val_rec": round(float((o.reconstruction - val["target"]).abs().mean()), 4),
                "nowarp": round(float((val["source"] - val["target"]).abs().mean()), 4),
                "fA": round(float(o.field_au.abs().mean()), 3),
                "fP": round(float(o.field_pose.abs().mean()), 3),
                "alpha": round(float(o.alpha_au.mean()), 3),
                "phistd": round(float(o.phi_s.std(0).mean()), 3),
                "psistd": round(float(o.psi_s.std(0).mean()), 3),
            }
        click.echo(json.dumps(row), nl=True)


if __name__ == "__main__":
    main()
