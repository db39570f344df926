"""M3 evidence: predictor-only vs predictor + fitting on rendered faces of held-out identities.

Faces are drawn with ``sample_params`` (natural AU co-occurrence and pose) from a seed no network
saw (``--seed``, default 1000; training used seeds 0 and 500), rendered at twice the crop size and
given to :class:`auperf.Estimator` with the renderer's 5-point landmarks, exactly like user
frames. Reported per dimension: expression MAE (23 dims, parameter units in [0, 1]), pose
absolute error in degrees (yaw, pitch from the fit; roll from the alignment matrix), identity
MAE (mean over 51 dims), the loss L_E and the iterations used; for ``predictor`` (iterations 0),
``predictor + fit``, a ``constant neutral`` baseline (every expression dim 0, pose frontal,
identity 0.5: no network at all) and, with ``--with-mid``, ``mid (x0 = 0.5) + fit``; with
``--with-pose-only``, a fit that moves only yaw and pitch (expression and identity stay at the
predictor's values).

Writes ``training/results/m3/fit_eval.json`` (every number, machine and settings),
``fit_eval.md`` (the tables) and ``fit_grid.png`` (rows: target | imitator at the start |
imitator after fitting).

Usage::

    python -m training.experiments.m3_fit                      # 32 faces, 400 iterations
    python -m training.experiments.m3_fit --faces 4 --iterations 5 --out /tmp/m3   # smoke
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

import auperf
from auperf.synth import (
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_SLICE,
    FaceRenderer,
    sample_params,
)

OUT = Path(__file__).resolve().parents[1] / "results" / "m3"


def _errors(fit, x_true: np.ndarray, pose_true: np.ndarray) -> dict:
    e = np.abs(fit.expression - x_true[:, EXPRESSION_SLICE])
    p = np.abs(fit.pose - pose_true)
    i = np.abs(fit.identity - x_true[:, IDENTITY_SLICE])
    return {
        "expression_mae": float(e.mean()),
        "expression_mae_per_dim": {
            n: float(v) for n, v in zip(EXPRESSION_NAMES, e.mean(0), strict=True)
        },
        "pose_abs_err_deg": {
            n: float(v) for n, v in zip(("yaw", "pitch", "roll"), p.mean(0), strict=True)
        },
        "pose_abs_err_deg_mean": float(p.mean()),
        "pose_abs_err_deg_median": {
            n: float(v) for n, v in zip(("yaw", "pitch", "roll"), np.median(p, 0), strict=True)
        },
        "identity_mae": float(i.mean()),
        "loss_mean": float(np.mean(fit.loss)),
        "iterations_mean": float(fit.iterations.mean()),
        "status_counts": {
            str(int(k)): int(v)
            for k, v in zip(*np.unique(fit.status, return_counts=True), strict=True)
        },
    }


def _figure(est, fit_start, fit_end, path: Path, n: int = 8) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = min(n, len(fit_end))
    start = est.render(fit_end.start_params[:n])
    end = est.render(fit_end.params[:n])
    fig, axes = plt.subplots(3, n, figsize=(1.3 * n, 4.2))
    axes = np.atleast_2d(axes).reshape(3, n)
    rows = [("target", fit_end.aligned[:n]), ("start", start), ("fitted", end)]
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[c])
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
            if r == 2:
                ax.set_xlabel(f"L {fit_start.loss[c]:.3f}\n-> {fit_end.loss[c]:.3f}", fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _md(res: dict) -> str:
    runs = res["runs"]
    names = list(runs)
    lines = [
        f"# M3 on {res['faces']} rendered faces of held-out identities (seed {res['seed']})",
        "",
        f"Models: `{res['models']}` ({res['size']} px), backend {res['backend']}, "
        f"{res['iterations']} iterations max, tolerance {res['tolerance']}, lr {res['lr']}. "
        f"CPU time {res['cpu_s']:.0f} s on {res['machine']}.",
        "",
        "| metric | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]

    def row(label, get):
        lines.append(f"| {label} | " + " | ".join(get(runs[n]) for n in names) + " |")

    row("expression MAE (23 dims)", lambda r: f"{r['expression_mae']:.4f}")
    for k in ("yaw", "pitch", "roll"):
        row(f"{k} abs. error (deg, mean)", lambda r, k=k: f"{r['pose_abs_err_deg'][k]:.2f}")
    row("identity MAE (51 dims)", lambda r: f"{r['identity_mae']:.4f}")
    row("loss L_E (mean)", lambda r: f"{r['loss_mean']:.4f}")
    row("iterations (mean)", lambda r: f"{r['iterations_mean']:.0f}")
    lines += [
        "",
        "Expression MAE per dim:",
        "",
        "| dim | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for d in EXPRESSION_NAMES:
        lines.append(
            f"| {d} | "
            + " | ".join(f"{runs[n]['expression_mae_per_dim'][d]:.4f}" for n in names)
            + " |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--tolerance", type=float, default=1e-5)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--backend", default="torch")
    ap.add_argument("--models", default=None)
    ap.add_argument("--with-mid", action="store_true")
    ap.add_argument("--with-pose-only", action="store_true")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    t0 = time.process_time()
    est = auperf.Estimator(args.models, backend=args.backend)
    lr = est.lr if args.lr is None else args.lr
    x = sample_params(np.random.default_rng(args.seed), args.faces)
    r = FaceRenderer(seed=args.seed, size=2 * est.size).render(x)
    kw = {"tolerance": args.tolerance, "lr": lr, "return_images": True}
    pred = est.fit(r.images, r.landmarks5, iterations=0, **kw)
    fitted = est.fit(r.images, r.landmarks5, iterations=args.iterations, **kw)
    n = args.faces
    neutral = SimpleNamespace(
        expression=np.zeros((n, 23)),
        pose=np.zeros((n, 3)),
        identity=np.full((n, 51), 0.5),
        loss=np.full(n, np.nan),
        iterations=np.zeros(n),
        status=np.zeros(n, np.int8),
    )
    runs = {
        "constant neutral": _errors(neutral, x, r.pose_deg),
        "predictor": _errors(pred, x, r.pose_deg),
        "predictor + fit": _errors(fitted, x, r.pose_deg),
    }
    if args.with_mid:
        mid = est.fit(r.images, r.landmarks5, iterations=args.iterations, init="mid", **kw)
        runs["mid + fit"] = _errors(mid, x, r.pose_deg)
    if args.with_pose_only:
        dims = np.zeros(77, bool)
        dims[:3] = True
        pose_fit = est.fit(r.images, r.landmarks5, iterations=args.iterations, dims=dims, **kw)
        runs["predictor + pose-only fit"] = _errors(pose_fit, x, r.pose_deg)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {
        "faces": args.faces,
        "seed": args.seed,
        "iterations": args.iterations,
        "tolerance": args.tolerance,
        "lr": lr,
        "backend": args.backend,
        "size": est.size,
        "models": str(args.models or "auperf/models/m3"),
        "runs": runs,
        "cpu_s": time.process_time() - t0,
        "machine": f"{platform.processor() or platform.machine()}, torch threads 1",
        "auperf_version": auperf.__version__,
    }
    (out / "fit_eval.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "fit_eval.md").write_text(_md(res))
    _figure(est, pred, fitted, out / "fit_grid.png")
    print(_md(res))
    return res


if __name__ == "__main__":
    main()
