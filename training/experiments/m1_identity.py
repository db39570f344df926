"""M1 against M0 and a plain BCE detector on identities never seen in training, the ablation
without the contrastive and adversarial terms, identity leakage probes and a swap grid.

Runs, on the same rendered videos (``training/configs/m1_synth_small.yaml``: 60 training, 10
validation, 20 test identities) and the same number of optimiser steps of 32 faces each:

- ``m1``: the full method (``training.m1``);
- ``no_contrast_adv``: M1 without ``L_id``, ``L_AU`` and the two adversarial terms;
- ``bce``: the M1 inference network (``E_A -> F_au -> GCN``) trained with weighted BCE only;
- ``m0``: M0 (two SmallNet views, clean heads, ``L_clean + L_mv + L_cons``, all labels
  accurate), on random batches of training frames.

Every run tunes per-AU thresholds on the validation identities and is scored on the test
identities. Also measured on the test identities (first half of each video to fit a linear
probe, second half to score it):

- identity from the AU embedding (M1 ``a``; the baselines' detection features): accuracy,
  chance = 1 / number of test identities;
- AUs from the identity embedding ``z`` (balanced accuracy averaged over the AUs; chance 0.5);
- false-positive rates of confounded AUs on the half of the test identities whose identity dims
  look most like the AU (low brows ~ AU4, downturned mouth corners ~ AU15, oblique brows ~ AU1,
  upturned corners ~ AU12) against the other half.

Writes ``training/results/m1/m1_identity.{json,md}``, ``training/results/m1/swap_grid.png``
and the runs' logs under ``training/results/m1/logs/``. Runs live in ``runs/m1/<variant>`` and
are resumed (a finished run is read back, not retrained).

Usage::

    python -m training.experiments.m1_identity                    # the full comparison
    python -m training.experiments.m1_identity --iterations 3 --out /tmp/m1x --runs /tmp/m1r \
        --train-identities 4 --test-identities 3 --frames 12      # smoke
"""

from __future__ import annotations

import json
import logging
import math
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import torch

from ..common.config import config_to_dict, load_config
from ..common.metrics import evaluate_occurrence, tune_thresholds
from ..common.seed import epoch_seed, seed_everything
from ..m0.losses import M0LossWeights, au_balance_weights, m0_loss
from ..m1.config import M1Config
from ..m1.data import TEST, TRAIN, VAL, VideoFaces
from ..m1.train import load_faces, normalise, predict, train_m1

__all__ = ["CONFOUNDS", "train_m0_baseline", "identity_probe", "au_probe", "run", "render_markdown"]

_log = logging.getLogger("auperf.training")
ROOT = Path(__file__).resolve().parents[2]
LABELS = {
    "m1": "M1",
    "no_contrast_adv": "M1 without contrastive + adversarial",
    "bce": "plain BCE (M1 network)",
    "m0": "M0 (two views, clean labels)",
}
#: (AU, identity dim, which end looks like the AU)
CONFOUNDS = (
    (4, "brow_height", "low"),
    (15, "mouth_corner_tilt", "high"),
    (1, "brow_tilt", "high"),
    (12, "mouth_corner_tilt", "low"),
)


def _split(faces: VideoFaces, s: int) -> VideoFaces:
    return faces.subset(np.flatnonzero(faces.split == s))


def train_m0_baseline(
    cfg: M1Config, faces: VideoFaces, run_dir: Path
) -> tuple[torch.nn.Module, float]:
    """Train M0 (``smallnet`` views, no noisy heads) on the training frames for
    ``cfg.train.iterations`` steps of ``4 * pairs_per_batch`` random frames; the weights are
    saved to ``run_dir/weights.safetensors`` and read back on a second call.

    Returns:
        The network and the CPU seconds of its training.
    """
    from safetensors.torch import load_file, save_file

    from auperf.nets.m0 import M0Net

    torch.set_num_threads(cfg.train.threads)
    seed_everything(cfg.train.seed)
    tr = _split(faces, TRAIN)
    net = M0Net(len(cfg.au_ids), "smallnet", noisy_heads=False)
    path = run_dir / "weights.safetensors"
    meta_path = run_dir / "run.json"
    if path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("iterations") == cfg.train.iterations:
            net.load_state_dict(load_file(str(path)))
            return net.eval(), float(meta["cpu_seconds"])
    y = torch.as_tensor(tr.labels.astype(np.float32))
    alpha = au_balance_weights(y)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.train.lr)
    rng = np.random.default_rng(epoch_seed(cfg.train.seed, 0))
    b = 4 * cfg.train.pairs_per_batch
    t0 = time.process_time()
    net.train()
    log = []
    for it in range(cfg.train.iterations):
        idx = rng.choice(len(tr), b, replace=False)
        out = net(normalise(tr.images[idx]))
        terms = m0_loss(
            out.clean, net.clean_head_matrices(), y[idx], alpha_clean=alpha, weights=M0LossWeights()
        )
        opt.zero_grad(set_to_none=True)
        terms.total.backward()
        opt.step()
        if (it + 1) % cfg.train.chunk == 0 or it + 1 == cfg.train.iterations:
            log.append({"step": it + 1, **terms.as_floats()})
    cpu = time.process_time() - t0
    run_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    with open(run_dir / "metrics.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in log)
    meta_path.write_text(json.dumps({"iterations": cfg.train.iterations, "cpu_seconds": cpu}))
    return net.eval(), cpu


@torch.no_grad()
def _predict_m0(
    net: torch.nn.Module, images: np.ndarray, batch: int = 256
) -> dict[str, np.ndarray]:
    net.eval()
    probs, feats = [], []
    for s in range(0, len(images), batch):
        out = net(normalise(images[s : s + batch]))
        probs.append(torch.sigmoid(out.clean.mean(dim=1)).numpy())
        feats.append(out.features.mean(dim=1).numpy())
    return {"prob": np.concatenate(probs), "a": np.concatenate(feats)}


def _halves(faces: VideoFaces) -> tuple[np.ndarray, np.ndarray]:
    """Frames of the first / second half of each video."""
    first = np.zeros(len(faces), bool)
    for i in np.unique(faces.identity):
        idx = np.flatnonzero(faces.identity == i)
        first[idx[: len(idx) // 2]] = True
    return np.flatnonzero(first), np.flatnonzero(~first)


def _probe(x_tr, y_tr, x_te, y_te) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
    clf.fit(x_tr, y_tr)
    return float(balanced_accuracy_score(y_te, clf.predict(x_te)))


def identity_probe(features: np.ndarray, faces: VideoFaces) -> float:
    """Linear-probe identity accuracy (balanced) from ``features`` of the test frames: fit on
    the first half of each video, score on the second half."""
    a, b = _halves(faces)
    return _probe(features[a], faces.identity[a], features[b], faces.identity[b])


def au_probe(features: np.ndarray, faces: VideoFaces) -> float:
    """Mean over AUs of the linear-probe balanced accuracy of each AU from ``features`` (AUs
    with both classes in both halves only), same halves as :func:`identity_probe`."""
    a, b = _halves(faces)
    accs = []
    for k in range(faces.labels.shape[1]):
        ya, yb = faces.labels[a, k], faces.labels[b, k]
        if len(np.unique(ya)) == 2 and len(np.unique(yb)) == 2:
            accs.append(_probe(features[a], ya, features[b], yb))
    return float(np.mean(accs)) if accs else float("nan")


def confound_fpr(
    probs: np.ndarray, thresholds: np.ndarray, faces: VideoFaces, au_ids: list[int]
) -> dict[str, dict[str, float]]:
    """False-positive rate of each confounded AU on the test identities whose identity dim lies
    on the AU-like side of the median (``confounded``) and on the other side (``other``)."""
    from auperf.synth import identity_index

    out = {}
    for au, dim, side in CONFOUNDS:
        if au not in au_ids:
            continue
        k = au_ids.index(au)
        v = faces.params[:, identity_index(dim)]
        ids = np.unique(faces.identity)
        per_id = np.array([v[faces.identity == i][0] for i in ids])
        med = np.median(per_id)
        like = ids[per_id < med] if side == "low" else ids[per_id > med]
        conf = np.isin(faces.identity, like)
        neg = faces.labels[:, k] == 0
        pred = probs[:, k] >= thresholds[k]
        f_c = float(pred[neg & conf].mean()) if (neg & conf).any() else float("nan")
        f_o = float(pred[neg & ~conf].mean()) if (neg & ~conf).any() else float("nan")
        out[f"AU{au}"] = {"dim": dim, "side": side, "confounded": f_c, "other": f_o}
    return out


def swap_grid(model: Any, faces: VideoFaces, path: Path, n: int = 6, seed: int = 0) -> None:
    """PNG grid: row 0 the source frames of the AU embeddings (columns), column 0 the source
    frames of the identity embeddings (rows), cell ``(i, j) = G(z_i, a_j)`` (upsampled to the
    frame size)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    n = min(n, len(np.unique(faces.identity)))
    ids = rng.choice(np.unique(faces.identity), n, replace=False)
    rows, cols = [], []
    for i in ids:
        idx = np.flatnonzero(faces.identity == i)
        rows.append(int(rng.choice(idx)))
        act = idx[faces.labels[idx].sum(axis=1) >= 2]
        cols.append(int(rng.choice(act if act.size else idx)))
    net, gen = model.net.eval(), model.aux.generator.eval()
    with torch.no_grad():
        z = net.encode_id(normalise(faces.images[rows]))
        _, a = net.encode_au(normalise(faces.images[cols]))
        size = faces.images.shape[-1]
        tiles = np.full((n + 1, n + 1, 3, size, size), 255, np.uint8)
        tiles[0, 1:] = faces.images[cols]
        tiles[1:, 0] = faces.images[rows]
        for r in range(n):
            g = gen(z[r : r + 1].expand(n, -1), a)
            g = torch.nn.functional.interpolate(
                g, size=(size, size), mode="bilinear", align_corners=False
            )
            tiles[r + 1, 1:] = np.clip(g.numpy() * 127.5 + 127.5, 0, 255).round().astype(np.uint8)
    grid = tiles.transpose(0, 3, 1, 4, 2).reshape((n + 1) * size, (n + 1) * size, 3)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)


def _detector_parity(model: Any, cfg: M1Config, out_dir: Path) -> dict[str, Any]:
    """Export the M1 model and run :class:`auperf.Detector` on rendered frames against torch."""
    from auperf import Detector, align, synth
    from auperf.ops import warp_faces

    from ..m1.export import MEAN, STD, export_m1

    ex = export_m1(
        model.net,
        out_dir,
        name="m1-synth-small",
        au_ids=cfg.au_ids,
        au_names=cfg.au_names,
        input_size=cfg.input_size,
        training_data="auperf.synth videos, training identities",
    )
    r = synth.FaceRenderer(seed=99, size=cfg.data.render_size)
    fr = r.render(synth.sample_params(np.random.default_rng(3), 8))
    with Detector(out_dir, backend="onnxruntime") as det:
        got = det.detect(fr.images, landmarks=fr.landmarks5).probabilities
    m = align.estimate_similarity(
        np.asarray(fr.landmarks5, np.float64), align.template(cfg.input_size)
    )
    crops = warp_faces(
        np.ascontiguousarray(fr.images),
        m,
        size=cfg.input_size,
        mean=[v / 255 for v in MEAN],
        std=[v / 255 for v in STD],
        dtype="float32",
        layout="NCHW",
    )
    with torch.no_grad():
        ref = torch.sigmoid(model.net.eval()(torch.as_tensor(np.asarray(crops))).logits).numpy()
    return {
        "onnx_max_abs_diff": ex.max_abs_diff,
        "detector_vs_torch_max_abs_diff": float(np.abs(got - ref).max()),
    }


def run(cfg: M1Config, runs_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Train (or read back) the four runs and measure everything; returns the results dict."""
    torch.set_num_threads(cfg.train.threads)
    faces = load_faces(cfg, progress=True)
    val, test = _split(faces, VAL), _split(faces, TEST)
    au_ids = list(cfg.au_ids)
    names = [f"AU{a}" for a in au_ids]
    results: dict[str, Any] = {"runs": {}}
    models: dict[str, Any] = {}
    for variant in ("m1", "no_contrast_adv", "bce", "m0"):
        run_dir = runs_dir / variant
        if variant == "m0":
            net, cpu = train_m0_baseline(cfg, faces, run_dir)
            steps = cfg.train.iterations
            pv, pt = _predict_m0(net, val.images), _predict_m0(net, test.images)
        else:
            c = load_config_copy(cfg)
            c.train.variant, c.train.out_dir = variant, str(run_dir)
            res = train_m1(c, faces)
            models[variant] = res["model"]
            cpu, steps = res["cpu_seconds"], res["step"]
            pv, pt = predict(res["model"].net, val.images), predict(res["model"].net, test.images)
        th = tune_thresholds(val.labels, pv["prob"])
        ev = evaluate_occurrence(test.labels, pt["prob"], th, names)
        entry = {
            "steps": steps,
            "cpu_seconds": cpu,
            "test": ev,
            "confound_fpr": confound_fpr(pt["prob"], th, test, au_ids),
            "identity_probe_from_au_features": identity_probe(pt["a"], test),
            "au_probe_from_au_features": au_probe(pt["a"], test),
        }
        if "z" in pt:
            entry["identity_probe_from_z"] = identity_probe(pt["z"], test)
            entry["au_probe_from_z"] = au_probe(pt["z"], test)
        results["runs"][variant] = entry
        log = run_dir / "metrics.jsonl"
        if log.is_file():
            (out_dir / "logs").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log, out_dir / "logs" / f"{variant}.metrics.jsonl")
        _log.info("%s: test mean F1 %.3f", variant, ev["mean_f1"])
    swap_grid(models["m1"], test, out_dir / "swap_grid.png")
    swap_grid(models["no_contrast_adv"], test, out_dir / "swap_grid_no_contrast_adv.png")
    results["export"] = _detector_parity(models["m1"], cfg, runs_dir / "m1" / "export")
    results["settings"] = {
        "config": config_to_dict(cfg),
        "test_identities": int(len(np.unique(test.identity))),
        "test_frames": len(test),
        "train_frames": int((faces.split == TRAIN).sum()),
        "identity_chance": 1.0 / len(np.unique(test.identity)),
    }
    results["machine"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    return results


def load_config_copy(cfg: M1Config) -> M1Config:
    """A deep copy of a run configuration."""
    from ..common.config import config_from_dict

    return config_from_dict(M1Config, config_to_dict(cfg))


def _f(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.3f}"


def render_markdown(res: dict[str, Any]) -> str:
    """The tables of a results dict."""
    s = res["settings"]
    runs = res["runs"]
    conf = [f"AU{a}" for a, _, _ in CONFOUNDS if f"AU{a}" in runs["m1"]["test"]["f1"]]
    lines = [
        "# M1 on identities never seen in training",
        "",
        f"Rendered videos, {s['train_frames']} training frames, {s['test_frames']} test frames of "
        f"{s['test_identities']} held-out identities; per-AU thresholds tuned on validation "
        "identities. Produced by `python -m training.experiments.m1_identity`; every number is "
        "in `m1_identity.json`.",
        "",
        "## AU detection (test identities)",
        "",
        "| run | steps | CPU s | mean F1 | mean AUC | "
        + " | ".join(f"F1 {c}" for c in conf)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(conf),
    ]
    for v, e in runs.items():
        lines.append(
            f"| {LABELS[v]} | {e['steps']} | {e['cpu_seconds']:.0f} | {_f(e['test']['mean_f1'])} | "
            f"{_f(e['test']['mean_auc'])} | "
            + " | ".join(_f(e["test"]["f1"][c]) for c in conf)
            + " |"
        )
    lines += [
        "",
        "## False positives of identity-confounded AUs",
        "",
        "False-positive rate on AU-negative test frames of the half of the test identities whose "
        "identity dim looks like the AU (`confounded`) and of the other half.",
        "",
        "| run | " + " | ".join(f"{c} confounded / other" for c in conf) + " |",
        "|---|" + "---|" * len(conf),
    ]
    for v, e in runs.items():
        cells = [
            f"{_f(e['confound_fpr'][c]['confounded'])} / {_f(e['confound_fpr'][c]['other'])}"
            for c in conf
        ]
        lines.append(f"| {LABELS[v]} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Leakage (linear probes on the test identities)",
        "",
        f"Identity: balanced accuracy of a logistic-regression probe fitted on the first half of "
        f"each test video and scored on the second half (chance {_f(s['identity_chance'])}). AUs: "
        "balanced accuracy averaged over AUs (chance 0.5). AU features: M1's AU embedding `a`; "
        "for M0 the backbone features (mean of the views).",
        "",
        "| run | identity from AU features | identity from z | AUs from AU features | AUs from z |",
        "|---|---|---|---|---|",
    ]
    for v, e in runs.items():
        lines.append(
            f"| {LABELS[v]} | {_f(e['identity_probe_from_au_features'])} | "
            f"{_f(e.get('identity_probe_from_z'))} | {_f(e['au_probe_from_au_features'])} | "
            f"{_f(e.get('au_probe_from_z'))} |"
        )
    ex = res.get("export", {})
    lines += [
        "",
        "Export: onnxruntime vs torch max |diff| "
        f"{ex.get('onnx_max_abs_diff', float('nan')):.2e} (logits); `auperf.Detector` vs torch "
        f"{ex.get('detector_vs_torch_max_abs_diff', float('nan')):.2e} "
        "(probabilities).",
        "",
        "`swap_grid.png`: row 0 gives the AU embeddings, column 0 the identity embeddings, cell "
        "(i, j) is G(z_i, a_j) (M1); `swap_grid_no_contrast_adv.png` the same for the ablation.",
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option(
    "--config",
    "config_path",
    default=str(ROOT / "training/configs/m1_synth_small.yaml"),
    show_default=True,
)
@click.option("--runs", "runs_dir", default="runs/m1", show_default=True, help="Run directories.")
@click.option("--out", "out_dir", default=str(ROOT / "training/results/m1"), show_default=True)
@click.option("--iterations", type=int, default=None, help="Override train.iterations.")
@click.option("--train-identities", type=int, default=None)
@click.option("--test-identities", type=int, default=None)
@click.option("--frames", type=int, default=None, help="Override data.frames_per_identity.")
def main(
    config_path, runs_dir, out_dir, iterations, train_identities, test_identities, frames
) -> None:
    """Train / read back the runs and write the tables, probes and swap grid."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = load_config(config_path, M1Config)
    if iterations is not None:
        cfg.train.iterations = iterations
    if train_identities is not None:
        cfg.data.train_identities = train_identities
    if test_identities is not None:
        cfg.data.test_identities = test_identities
        cfg.data.val_identities = test_identities
    if frames is not None:
        cfg.data.frames_per_identity = frames
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    res = run(cfg, Path(runs_dir), out)
    (out / "m1_identity.json").write_text(json.dumps(res, indent=2), encoding="utf-8")
    (out / "m1_identity.md").write_text(render_markdown(res), encoding="utf-8")
    click.echo(render_markdown(res))


if __name__ == "__main__":
    main()
