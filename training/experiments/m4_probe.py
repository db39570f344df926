"""M4 (TCAE) evaluated as the method does it, against a random and a supervised encoder.

1. Train the TCAE on the rendered clips of ``training/configs/m4_synth.yaml`` (no labels;
   resumed, a finished run is read back) and export its encoder.
2. Freeze three encoders of the same architecture: the TCAE encoder; the same network before
   training (its random initialisation, seed of the run); a supervised encoder trained with BCE
   on the AU labels of the probe's training frames (a linear head on ``phi``).
3. Linear probes (``training.m4.evaluate``): per-AU logistic regression on ``phi`` fitted on the
   training clips' frames, F1 on the held-out clips (other identities); ridge regression of
   yaw, pitch and roll from ``phi`` and from ``psi`` (R^2 on the held-out clips).
4. A figure of source, target, AU field, pose field, mask and reconstructions for a few
   held-out pairs.

Writes ``training/results/m4/m4_probe.json`` (every number, machine, versions, times),
``training/results/m4/m4_probe.md`` (tables), ``training/results/m4/fields.png``, a copy of the
TCAE run's ``metrics.jsonl``; with ``--ship`` also the shipped encoder in
``auperf/models/m4-demo`` (ONNX + safetensors + manifest + ``MODEL_CARD.md``).

Usage::

    python -m training.experiments.m4_probe --threads 1 --ship
    python -m training.experiments.m4_probe --config training/configs/m4_smoke.yaml \
        --out /tmp/m4 --supervised-epochs 1            # smoke
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from ..common.checkpoint import latest_checkpoint, load_checkpoint
from ..common.config import config_to_dict, load_config
from ..common.seed import seed_everything
from ..m4.config import M4Config
from ..m4.evaluate import au_probe, embed, pose_probe, train_supervised_encoder
from ..m4.method import build_tcae
from ..m4.train import load_clips, train_m4

__all__ = ["run_probe", "render_tables", "save_figure"]

ROOT = Path(__file__).resolve().parents[2]
SHIP_DIR = ROOT / "auperf" / "models" / "m4-demo"
SHIP_NAME = "m4-tcae-smallnet-synth-demo"


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else f"{v:.3f}"


def render_tables(res: dict[str, Any]) -> str:
    """Markdown tables of a results dict (as written to ``m4_probe.json``)."""
    from auperf.synth import AU_IDS

    enc = res["encoders"]
    names = list(enc)
    lines = [
        "Linear probes on frozen encoders of the same architecture (`smallnet` trunk + two "
        f"{res['au_dim']}-d projections, {res['params']:,} parameters), on "
        f"{res['probe']['train_frames']} frames of {res['probe']['train_clips']} training "
        "clips; scored on "
        f"{res['probe']['test_frames']} frames of {res['probe']['test_clips']} held-out clips "
        "(other identities). AU: per-AU logistic regression on phi, F1 at p = 0.5 (balanced "
        "class weights). Pose: ridge regression of the angles, R^2, mean of yaw and pitch (the "
        "alignment removes roll from the crops).",
        "",
        "| encoder | AU F1 from phi (mean) | AU F1 from psi (mean) | pose R^2 from phi | "
        "pose R^2 from psi | training |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for n in names:
        e = enc[n]
        lines.append(
            f"| {e['label']} | {_fmt(e['au_phi']['mean_f1'])} | {_fmt(e['au_psi']['mean_f1'])} | "
            f"{_fmt(e['pose_phi']['mean'])} | {_fmt(e['pose_psi']['mean'])} | {e['training']} |"
        )
    lines += ["", "Per-AU F1 from phi (AUs with positives in both splits):", ""]
    evaluated = enc[names[0]]["au_phi"]["evaluated"]
    lines.append("| AU | test positive rate | " + " | ".join(enc[n]["label"] for n in names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for k in evaluated:
        row = [f"AU{AU_IDS[k]}", _fmt(res["probe"]["test_positive_rate"][k])]
        row += [_fmt(enc[n]["au_phi"]["f1"][k]) for n in names]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Pose R^2 per angle (yaw / pitch / roll):", ""]
    lines.append("| encoder | from phi | from psi |")
    lines.append("|---|---|---|")
    for n in names:
        e = enc[n]
        f = " / ".join(_fmt(e["pose_phi"][a]) for a in ("yaw", "pitch", "roll"))
        g = " / ".join(_fmt(e["pose_psi"][a]) for a in ("yaw", "pitch", "roll"))
        lines.append(f"| {e['label']} | {f} | {g} |")
    r = res.get("reconstruction")
    if r:
        lines += [
            "",
            f"Reconstruction of {r['pairs']} held-out pairs (gaps 1-{r['max_gap']} frames), "
            "L_rec / (W H 3) with images in [0, 1]: TCAE warp tau(I_s) "
            f"{r['tcae']:.4f}, no warp (I_s itself) {r['no_warp']:.4f}; mean |tau^A| "
            f"{r['au_field_px']:.3f} px, mean |tau^P| {r['pose_field_px']:.3f} px.",
        ]
    t = res["tcae"]
    if t.get("configured_epochs", t["epochs"]) != t["epochs"]:
        lines += [
            "",
            f"The TCAE run was stopped after {t['epochs']} of the {t['configured_epochs']} "
            "epochs of its run file (time limit of the shared machine); its cosine learning-rate "
            f"schedule was set for {t['configured_epochs']} epochs.",
        ]
    lines += [
        "",
        f"Budget: TCAE {t['epochs']} epochs x {t['pairs_per_epoch']} pairs (batch "
        f"{t['batch_size']}, {res['image_size']} px, frame gap widened from "
        f"{t['gap_start']} to {t['gap_end']} over {t['curriculum_epochs']} epochs), "
        f"{t['train_time_s'] / 60:.1f} min of epochs on {res['threads']} CPU thread(s)"
        + (
            f" (first {t['warmup_epochs']} epochs L_rec alone, then "
            f"lambda_1..3 = {' / '.join(f'{v:g}' for v in t['lambdas'])}, "
            f"{'antisymmetric' if t['antisymmetric_decoders'] else 'plain'} field decoders, "
            f"embedding targets {'detached' if t['detach_targets'] else 'with gradient'})"
            if "lambdas" in t
            else ""
        )
        + "; "
        f"supervised encoder {res['supervised']['epochs']} epochs over the probe's training "
        f"frames, {res['supervised']['train_time_s'] / 60:.1f} min. Machine: "
        f"{res['machine']} (shared with other jobs, so times are upper bounds).",
    ]
    return "\n".join(lines) + "\n"


def _flow_rgb(field: np.ndarray, scale: float) -> np.ndarray:
    """``(2, H, W)`` field -> ``(H, W, 3)`` colours: hue = direction, brightness = length."""
    from matplotlib.colors import hsv_to_rgb

    dx, dy = field
    mag = np.sqrt(dx**2 + dy**2)
    hue = (np.arctan2(dy, dx) / (2 * np.pi)) % 1.0
    hsv = np.stack([hue, np.ones_like(hue), np.clip(mag / max(scale, 1e-6), 0, 1)], -1)
    return hsv_to_rgb(hsv)


def save_figure(net: Any, clips: Any, path: Path, pairs: int = 4, gap: int = 10) -> None:
    """Source, target, reconstruction, AU field, pose field, alpha^A, I_A, I_P of ``pairs``
    held-out pairs ``gap`` frames apart (one per clip, from the middle of the clip)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src, dst = [], []
    for k in range(min(pairs, clips.num_clips)):
        a = int(clips.offsets[k])
        n = int(clips.lengths[k])
        g = min(gap, n - 1)
        s = a + (n - g) // 2
        src.append(s)
        dst.append(s + g)
    x = torch.from_numpy(clips.frames[src]).float() / 255.0
    y = torch.from_numpy(clips.frames[dst]).float() / 255.0
    net.eval()
    with torch.no_grad():
        out = net(x, y)
    fa, fp = out.field_au.numpy(), out.field_pose.numpy()
    scale = float(max(np.abs(fa).max(), np.abs(fp).max(), 1e-3))
    cols = [
        ("source I_s", lambda i: x[i]),
        ("target I_t", lambda i: y[i]),
        ("tau(I_s)", lambda i: out.reconstruction[i]),
        ("AU field tau^A", None),
        ("pose field tau^P", None),
        ("alpha^A", None),
        ("I_A = tau^A(I_s)", lambda i: out.au_changed[i]),
        ("I_P = tau^P(I_s)", lambda i: out.pose_changed[i]),
    ]
    n = len(src)
    fig, axes = plt.subplots(n, len(cols), figsize=(1.6 * len(cols), 1.7 * n), squeeze=False)
    for i in range(n):
        for j, (title, get) in enumerate(cols):
            ax = axes[i, j]
            if get is not None:
                ax.imshow(get(i).permute(1, 2, 0).clamp(0, 1).numpy())
            elif title.startswith("AU"):
                ax.imshow(_flow_rgb(fa[i], scale))
            elif title.startswith("pose"):
                ax.imshow(_flow_rgb(fp[i], scale))
            else:
                ax.imshow(out.alpha_au[i, 0].numpy(), vmin=0, vmax=1, cmap="gray")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(title, fontsize=7)
    fig.suptitle(
        f"TCAE on held-out clips, pairs {gap} frames apart; fields: hue = direction, "
        f"brightness = length (full at {scale:.1f} px)",
        fontsize=7,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _probe_rows(train: Any, stride: int) -> np.ndarray:
    """Every ``stride``-th frame of every training clip."""
    pairs = zip(train.offsets[:-1], train.offsets[1:], strict=True)
    return np.concatenate([np.arange(a, b, stride) for a, b in pairs])


def supervised_encoder(
    cfg: M4Config, train: Any, probe_stride: int, epochs: int
) -> tuple[Any, dict[str, Any]]:
    """The supervised baseline, trained once and kept in ``<out_dir>_supervised/`` (safetensors
    + JSON of its training time), read back on later calls with the same settings."""
    from safetensors.torch import load_file, save_file

    from auperf.nets.m4 import TCAEEncoder

    folder = Path(cfg.train.out_dir + "_supervised")
    stem = folder / f"encoder-stride{probe_stride}-e{epochs}-seed{cfg.train.seed}"
    weights, info_path = stem.with_suffix(".safetensors"), stem.with_suffix(".json")
    if weights.is_file() and info_path.is_file():
        enc = TCAEEncoder(cfg.backbone, cfg.au_dim, cfg.pose_dim)
        enc.load_state_dict(load_file(str(weights)), strict=True)
        return enc.eval(), json.loads(info_path.read_text(encoding="utf-8"))
    rows = _probe_rows(train, probe_stride)
    enc, info = train_supervised_encoder(
        train.frames[rows],
        train.au_occurrence[rows],
        backbone=cfg.backbone,
        au_dim=cfg.au_dim,
        pose_dim=cfg.pose_dim,
        epochs=epochs,
        seed=cfg.train.seed,
    )
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in enc.state_dict().items()}, str(weights))
    info_path.write_text(json.dumps(info) + "\n", encoding="utf-8")
    return enc, info


@torch.no_grad()
def reconstruction_check(net: Any, clips: Any, gap: int, pairs: int = 512) -> dict[str, float]:
    """Mean ``L_rec / (W H 3)`` of held-out pairs (gaps ``1 .. gap``) for the TCAE's warp
    ``tau(I_s)`` and for no warp at all (``I_s`` itself), and the mean |field| in pixels."""
    from ..m4.config import CurriculumConfig
    from ..m4.data import PairSampler
    from ..m4.losses import field_l1, image_l1

    sampler = PairSampler(clips, CurriculumConfig(gap, gap, 1), pairs, 64)
    net.eval()
    sums = {"tcae": 0.0, "no_warp": 0.0, "au_field_px": 0.0, "pose_field_px": 0.0}
    n = 0
    for batch in sampler(1, torch.Generator().manual_seed(123)):
        out = net(batch["source"], batch["target"])
        b = batch["source"].shape[0]
        sums["tcae"] += float(image_l1(out.reconstruction, batch["target"])) * b
        sums["no_warp"] += float(image_l1(batch["source"], batch["target"])) * b
        sums["au_field_px"] += float(field_l1(out.field_au)) * b
        sums["pose_field_px"] += float(field_l1(out.field_pose)) * b
        n += b
    return {k: v / n for k, v in sums.items()} | {"pairs": n, "max_gap": gap}


def _evaluate_encoder(encoder, train_frames, train_y, train_pose, test_frames, test_y, test_pose):
    phi_tr, psi_tr = embed(encoder, train_frames)
    phi_te, psi_te = embed(encoder, test_frames)
    return {
        "au_phi": au_probe(phi_tr, train_y, phi_te, test_y),
        "au_psi": au_probe(psi_tr, train_y, psi_te, test_y),
        "pose_phi": pose_probe(phi_tr, train_pose, phi_te, test_pose),
        "pose_psi": pose_probe(psi_tr, train_pose, psi_te, test_pose),
    }


def run_probe(
    config: Path,
    out: Path,
    supervised_epochs: int,
    probe_stride: int,
    ship: bool,
    train_tcae: bool = True,
    epoch: int = 0,
) -> dict[str, Any]:
    """Steps 1-4 of the module docstring; returns the results dict.

    ``epoch`` > 0 (with ``train_tcae=False``) probes the checkpoint of that epoch instead of the
    newest one; the training history is then cut after that epoch.
    """
    from auperf.nets.backbones import count_parameters

    cfg = load_config(config, M4Config)
    out.mkdir(parents=True, exist_ok=True)
    if train_tcae:
        tcae_res = train_m4(cfg, resume=True, export=True)
    else:  # use the run's checkpoints as they are (e.g. a run stopped early)
        lines = (Path(cfg.train.out_dir) / "metrics.jsonl").read_text().splitlines()
        history = [json.loads(x) for x in lines if x.strip()]
        if epoch > 0:
            history = [h for h in history if h["epoch"] <= epoch]
        tcae_res = {
            "history": history,
            "train_time_s": round(sum(h.get("train_time_s", 0.0) for h in history), 1),
        }
    train, test = load_clips(cfg)
    if test is None:
        raise click.UsageError("the probe needs rendered clips with held-out sequences")
    net = build_tcae(cfg)
    ckpt_dir = Path(cfg.train.out_dir) / "checkpoints"
    if epoch > 0:
        last = ckpt_dir / f"epoch-{epoch:04d}.safetensors"
        if not last.is_file():
            raise click.UsageError(f"--epoch: no checkpoint {last}")
    else:
        last = latest_checkpoint(ckpt_dir)
    load_checkpoint(last, net)
    seed_everything(cfg.train.seed, deterministic=cfg.train.deterministic)
    random_net = build_tcae(cfg)  # the same initialisation the TCAE run started from

    rows = _probe_rows(train, probe_stride)
    tr_frames, tr_y, tr_pose = train.frames[rows], train.au_occurrence[rows], train.pose_deg[rows]
    te_frames, te_y, te_pose = test.frames, test.au_occurrence, test.pose_deg
    sup, sup_info = supervised_encoder(cfg, train, probe_stride, supervised_epochs)
    encoders = {
        "tcae": (
            net.encoder,
            "TCAE (self-supervised, no labels)",
            f"{len(tcae_res['history'])} epochs on unlabelled pairs",
        ),
        "random": (random_net.encoder, "random initialisation", "none"),
        "supervised": (
            sup,
            "supervised (BCE on the probe's AU labels)",
            f"{supervised_epochs} epochs on labelled frames",
        ),
    }
    res: dict[str, Any] = {
        "config": str(config),
        "image_size": cfg.image_size,
        "au_dim": cfg.au_dim,
        "params": int(count_parameters(net.encoder)),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.machine()}, {platform.system()}",
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "probe": {
            "train_clips": int(train.num_clips),
            "train_frames": int(len(rows)),
            "stride": probe_stride,
            "test_clips": int(test.num_clips),
            "test_frames": int(len(te_frames)),
            "train_positive_rate": tr_y.mean(axis=0).tolist(),
            "test_positive_rate": te_y.mean(axis=0).tolist(),
        },
        "tcae": {
            "epochs": len(tcae_res["history"]),
            "configured_epochs": cfg.train.epochs,
            "pairs_per_epoch": cfg.data.pairs_per_epoch,
            "batch_size": cfg.train.batch_size,
            "gap_start": cfg.curriculum.gap_start,
            "gap_end": cfg.curriculum.gap_end,
            "curriculum_epochs": cfg.curriculum.epochs,
            "warmup_epochs": cfg.warmup_epochs,
            "lambdas": [cfg.lambda_sparsity, cfg.lambda_cycle, cfg.lambda_embedding],
            "antisymmetric_decoders": cfg.antisymmetric_decoders,
            "detach_targets": cfg.detach_targets,
            "train_time_s": tcae_res["train_time_s"],
            "final": {
                k: v for k, v in tcae_res["history"][-1].items() if k.startswith(("train_", "val_"))
            }
            if tcae_res["history"]
            else {},
        },
        "supervised": {"epochs": supervised_epochs, **sup_info},
        "encoders": {},
    }
    t0 = time.perf_counter()
    for key, (enc, label, training) in encoders.items():
        r = _evaluate_encoder(enc, tr_frames, tr_y, tr_pose, te_frames, te_y, te_pose)
        res["encoders"][key] = {"label": label, "training": training, **r}
    res["probe_time_s"] = round(time.perf_counter() - t0, 1)

    res["reconstruction"] = reconstruction_check(net, test, cfg.curriculum.gap_end)
    save_figure(net, test, out / "fields.png", gap=cfg.curriculum.gap_end)
    metrics = Path(cfg.train.out_dir) / "metrics.jsonl"
    if metrics.is_file():
        shutil.copyfile(metrics, out / "tcae_metrics.jsonl")
    (out / "m4_probe.json").write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
    (out / "m4_probe.md").write_text(
        "# M4 (TCAE): linear probes\n\nWritten by `python -m training.experiments.m4_probe`; "
        "do not edit by hand.\n\n" + render_tables(res),
        encoding="utf-8",
    )
    if ship:
        _ship(cfg, net, res, tcae_res)
    return res


def _ship(cfg: M4Config, net: Any, res: dict[str, Any], tcae_res: dict[str, Any]) -> None:
    from ..m4.export import export_m4

    e = res["encoders"]["tcae"]
    metrics = {
        "probe_mean_f1_phi": e["au_phi"]["mean_f1"],
        "probe_mean_f1_phi_random_encoder": res["encoders"]["random"]["au_phi"]["mean_f1"],
        "probe_mean_f1_phi_supervised_encoder": res["encoders"]["supervised"]["au_phi"]["mean_f1"],
        "pose_r2_from_phi": e["pose_phi"]["mean"],
        "pose_r2_from_psi": e["pose_psi"]["mean"],
    }
    SHIP_DIR.mkdir(parents=True, exist_ok=True)
    for old in SHIP_DIR.glob(f"{SHIP_NAME}.*"):
        old.unlink()
    result = export_m4(
        net.encoder,
        SHIP_DIR,
        name=SHIP_NAME,
        image_size=cfg.image_size,
        training_data=(
            f"{res['probe']['train_clips']} rendered auperf.synth video clips of "
            f"{cfg.data.frames_per_sequence} frames ({cfg.data.fps:g} fps), no labels"
        ),
        metrics=metrics,
        config=config_to_dict(cfg),
    )
    from auperf.manifest import sha256_file

    size = sum(p.stat().st_size for p in SHIP_DIR.glob(f"{SHIP_NAME}.*"))
    card = [
        f"# {SHIP_NAME}",
        "",
        "Written by `python -m training.experiments.m4_probe --ship`; do not edit by hand.",
        "",
        "A Twin-Cycle Autoencoder (M4) encoder trained without labels on rendered video clips "
        "(`training/configs/m4_synth.yaml`). It maps an aligned face to an AU embedding "
        f"`au_embedding` ({cfg.au_dim}-d, phi) and a pose embedding `pose_embedding` "
        f"({cfg.pose_dim}-d, psi). Run it with `auperf.Features()`; its `backbone.*` weights "
        "can start M0 (`backbone_init` in an M0 run file, backbone `smallnet`).",
        "",
        "## Input",
        "",
        f"- {cfg.image_size}x{cfg.image_size} RGB, NCHW float32, `(pixel - 127.5) / 127.5`.",
        f"- Aligned by a 5-point similarity to `auperf.align.template({cfg.image_size})` "
        "(the manifest's `input.alignment`); `auperf.Features` does this from landmarks.",
        "",
        "## Files",
        "",
        f"- `{result.onnx_path.name}` (sha256 `{sha256_file(result.onnx_path)}`)",
        f"- `{result.weights_path.name}` (sha256 `{sha256_file(result.weights_path)}`): the "
        "encoder's state dict (`backbone.*`, `au_proj.*`, `pose_proj.*`)",
        f"- `{result.manifest_path.name}`: the manifest (task `features`)",
        f"- {size / 1e6:.2f} MB in all; largest |onnxruntime - torch| at export "
        f"{result.max_abs_diff:.2g}",
        "",
        "## How good the features are (held-out rendered identities)",
        "",
        render_tables(res),
        "## Limits",
        "",
        "- Trained on rendered faces only, at 64 px, for about ten minutes on one CPU thread; "
        "not validated on real video.",
        "- The AU embedding is a feature for a linear classifier trained by the user; the model "
        "holds no AU head.",
        "- The torch backend builds M0 networks only; use onnxruntime (the default of "
        "`auperf.Features`).",
        "",
    ]
    (SHIP_DIR / "MODEL_CARD.md").write_text("\n".join(card), encoding="utf-8")


@click.command()
@click.option(
    "--config",
    default=str(ROOT / "training" / "configs" / "m4_synth.yaml"),
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The TCAE run file.",
)
@click.option(
    "--out",
    default=str(ROOT / "training" / "results" / "m4"),
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the tables, figure and logs go.",
)
@click.option("--supervised-epochs", default=4, type=int, help="Epochs of the supervised baseline.")
@click.option("--probe-stride", default=2, type=int, help="Every n-th training frame is probed.")
@click.option("--threads", default=1, type=int, help="torch CPU threads.")
@click.option("--ship", is_flag=True, help="Also export the encoder to auperf/models/m4-demo.")
@click.option(
    "--supervised-only",
    is_flag=True,
    help="Only train (and keep) the supervised baseline; can run beside the TCAE run.",
)
@click.option(
    "--no-train",
    is_flag=True,
    help="Probe the TCAE run's newest checkpoint as it is, without training further.",
)
@click.option(
    "--epoch",
    default=0,
    type=int,
    help="With --no-train: probe this epoch's checkpoint (0: the newest).",
)
def main(
    config: Path,
    out: Path,
    supervised_epochs: int,
    probe_stride: int,
    threads: int,
    ship: bool,
    supervised_only: bool,
    no_train: bool,
    epoch: int,
) -> None:
    """Train (or read back) the TCAE, probe it against a random and a supervised encoder."""
    torch.set_num_threads(threads)
    if supervised_only:
        cfg = load_config(config, M4Config)
        train, _ = load_clips(cfg)
        _, info = supervised_encoder(cfg, train, probe_stride, supervised_epochs)
        click.echo(f"supervised encoder: {info}")
        return
    res = run_probe(
        config, out, supervised_epochs, probe_stride, ship, train_tcae=not no_train, epoch=epoch
    )
    click.echo(render_tables(res))


if __name__ == "__main__":
    main()
