"""Validation sweep that chose :class:`auperf.Estimator`'s default learning rate.

12 faces from seed 77 (not the test seed 1000 of ``m3_fit``), 150 iterations, no early stop.
Prints L_E at the predictor's and at the true parameters, then, for the predictor alone and
for fits with several ``lr`` / ``dims`` settings: expression MAE, mean pose errors (yaw, pitch,
roll in degrees), the loss before and after. Its output is kept in
``training/results/m3/lr_sweep.log``.

Usage: ``python -m training.experiments.m3_lr_sweep [MODELS_DIR]``
"""

from __future__ import annotations

import sys

import numpy as np
import torch

import auperf
from auperf.synth import EXPRESSION_SLICE, FaceRenderer, sample_params

SETTINGS = [(0.001, "all"), (0.003, "all"), (0.01, "all"), (0.003, "pose_expression")]


def main() -> None:
    torch.set_num_threads(1)
    est = auperf.Estimator(sys.argv[1] if len(sys.argv) > 1 else None)
    x = sample_params(np.random.default_rng(77), 12)
    r = FaceRenderer(seed=77, size=2 * est.size).render(x)

    def report(name, f):
        e = np.abs(f.expression - x[:, EXPRESSION_SLICE]).mean()
        po = np.abs(f.pose - r.pose_deg).mean(0)
        print(
            f"{name}: expr {e:.4f} pose {np.round(po, 2)} loss {f.start_loss.mean():.4f} -> "
            f"{f.loss.mean():.4f} it {f.iterations.mean():.0f}",
            flush=True,
        )

    pred = est.fit(r.images, r.landmarks5, iterations=0)
    report("predictor", pred)
    truth = x.copy()
    truth[:, 2] = 0.5  # roll is not fitted (see docs/m3.md)
    at_truth = est.fit(r.images, r.landmarks5, iterations=0, init=truth)
    print(
        f"L_E at the predictor {pred.loss.mean():.4f}, at the true x {at_truth.loss.mean():.4f}; "
        f"true x lower for {(at_truth.loss < pred.loss).sum()}/{len(x)} faces"
    )
    for lr, dims in SETTINGS:
        f = est.fit(r.images, r.landmarks5, iterations=150, lr=lr, tolerance=0, dims=dims)
        report(f"lr {lr} dims {dims}", f)


if __name__ == "__main__":
    main()
