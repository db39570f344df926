"""Quick validation of an M3 imitator: can L_E point to the true parameters?

On validation faces (seed 77 by default; the test seed of ``m3_fit`` is 1000 and training used
seeds 0 and 500) rendered at twice the crop size and aligned by :class:`auperf.Estimator`, for
each model folder given:

- ``pixel L1 at truth``: mean ``|G(x_true) - y|`` over pixels and channels, images in ``[0, 1]``
  (how sharp and faithful the imitator is on faces it never saw);
- ``L_E`` at the predictor's and at the true parameters, and for how many faces the true ones
  score lower (if they rarely do, fitting cannot move towards them);
- ``fit from truth``: the expression MAE after ``--iterations`` Adam steps started *at* the
  true parameters (0 for an imitator whose L_E minimum sits at the truth; the drift measures
  the bias of the minimum);
- ``fit from predictor``: expression MAE before and after ``--iterations`` steps.

Roll is not fitted (the alignment removes it, see docs/m3.md): the true ``x`` is evaluated
with roll 0.5, as in training. Expression MAE is in parameter units (dims in ``[0, 1]``).

Usage::

    python -m training.experiments.m3_imitator_check DIR [DIR ...] [--faces 32] [--iterations 150]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

import auperf
from auperf.estimator import ROLL_INDEX
from auperf.synth import EXPRESSION_SLICE, FaceRenderer, sample_params


def check(models: str, faces: int = 32, seed: int = 77, iterations: int = 150) -> dict:
    """The numbers listed in the module docstring for one model folder."""
    t0 = time.process_time()
    est = auperf.Estimator(models)
    x = sample_params(np.random.default_rng(seed), faces)
    r = FaceRenderer(seed=seed, size=2 * est.size).render(x)
    truth = x.copy()
    truth[:, ROLL_INDEX] = 0.5
    crops, ok, _ = est.align(r.images, r.landmarks5)
    if not ok.all():
        raise RuntimeError(f"alignment failed for {int((~ok).sum())} validation faces")
    g = est.render(truth).astype(np.float64) / 255.0
    l1 = float(np.abs(g - crops.astype(np.float64) / 255.0).mean())
    pred = est.fit(r.images, r.landmarks5, iterations=0)
    at_truth = est.fit(r.images, r.landmarks5, iterations=0, init=truth)
    kw = {"iterations": iterations, "tolerance": 0.0}
    from_truth = est.fit(r.images, r.landmarks5, init=truth, **kw)
    from_pred = est.fit(r.images, r.landmarks5, **kw)

    def mae(f) -> float:
        return float(np.abs(f.expression - x[:, EXPRESSION_SLICE]).mean())

    return {
        "models": str(models),
        "faces": faces,
        "seed": seed,
        "iterations": iterations,
        "pixel_l1_at_truth": l1,
        "loss_at_predictor": float(pred.loss.mean()),
        "loss_at_truth": float(at_truth.loss.mean()),
        "truth_lower": int((at_truth.loss < pred.loss).sum()),
        "expr_mae_predictor": mae(pred),
        "expr_mae_fit_from_predictor": mae(from_pred),
        "loss_fit_from_predictor": float(from_pred.loss.mean()),
        "expr_mae_fit_from_truth": mae(from_truth),
        "loss_fit_from_truth": float(from_truth.loss.mean()),
        "cpu_s": time.process_time() - t0,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+")
    ap.add_argument("--faces", type=int, default=32)
    ap.add_argument("--seed", type=int, default=77)
    ap.add_argument("--iterations", type=int, default=150)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = []
    for m in args.models:
        res = check(m, args.faces, args.seed, args.iterations)
        print(json.dumps(res), flush=True)
        out.append(res)
    return out


if __name__ == "__main__":
    main()
