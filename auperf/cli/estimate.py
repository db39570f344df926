"""``auperf estimate``: M3 parameter fitting on image files or on rendered faces.

Writes one CSV row per face: ``face, source, ok, status, iterations, loss, start_loss, yaw,
pitch, roll`` (degrees) and the AU intensities ``AU01 ..`` (0-5). With ``--rendered N`` the
faces are drawn by ``auperf.synth`` (held-out identities, natural expressions) and the true
values are added as ``true_*`` columns.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import click
import numpy as np


def _load_images(paths: tuple[str, ...]) -> np.ndarray:
    import cv2

    from auperf.errors import ShapeError

    imgs = []
    for p in paths:
        im = cv2.imread(p, cv2.IMREAD_COLOR)
        if im is None:
            raise click.ClickException(f"IMAGES: cannot read {p}")
        imgs.append(cv2.cvtColor(im, cv2.COLOR_BGR2RGB))
    if len({im.shape for im in imgs}) > 1:
        raise ShapeError(
            f"IMAGES: all images must have one size, got {sorted({im.shape for im in imgs})}"
        )
    return np.stack(imgs)


@click.command()
@click.argument("images", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--landmarks",
    type=click.Path(exists=True, dir_okay=False),
    help=".npy of (N, 5, 2) or (N, 68, 2) frame-pixel landmarks, one face per image; "
    "without it the images must be aligned crops.",
)
@click.option("--rendered", type=int, default=0, help="Fit N rendered faces instead of images.")
@click.option("--seed", type=int, default=1000, help="Seed of the rendered faces.")
@click.option("--iterations", type=int, default=400)
@click.option("--tolerance", type=float, default=1e-5)
@click.option("--init", type=click.Choice(["predictor", "mid"]), default="predictor")
@click.option("--backend", type=click.Choice(["torch", "onnxruntime"]), default="torch")
@click.option(
    "--models",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Folder of M3 model folders (default: the shipped demo models).",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="CSV file (default stdout)."
)
def command(images, landmarks, rendered, seed, iterations, tolerance, init, backend, models, out):
    """Estimate pose, expression and AU intensities by fitting the M3 imitator."""
    import auperf
    from auperf.errors import AuperfError
    from auperf.synth import AU_IDS

    try:
        truth = None
        if rendered:
            from auperf.synth import FaceRenderer, au_from_expression, sample_params

            est = auperf.Estimator(models, backend=backend)
            x = sample_params(np.random.default_rng(seed), rendered)
            r = FaceRenderer(seed=seed, size=2 * est.size).render(x)
            frames, lm = r.images, r.landmarks5
            truth = {"pose": r.pose_deg, "au": au_from_expression(x[:, 3:26])}
            sources = [f"rendered:{seed}:{i}" for i in range(rendered)]
        else:
            if not images:
                raise click.UsageError("give IMAGES or --rendered N")
            frames = _load_images(images)
            lm = np.load(landmarks, allow_pickle=False) if landmarks else None
            est = auperf.Estimator(models, backend=backend)
            sources = list(images)
        fit = est.fit(frames, lm, iterations=iterations, tolerance=tolerance, init=init)
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc

    au_cols = [f"AU{a:02d}" for a in AU_IDS]
    header = [
        "face",
        "source",
        "ok",
        "status",
        "iterations",
        "loss",
        "start_loss",
        "yaw",
        "pitch",
        "roll",
        *au_cols,
    ]
    if truth is not None:
        header += ["true_yaw", "true_pitch", "true_roll", *[f"true_{c}" for c in au_cols]]
    fh = open(out, "w", newline="") if out else sys.stdout
    try:
        w = csv.writer(fh)
        w.writerow(header)
        for i in range(len(fit)):
            row = [
                i,
                sources[i],
                int(fit.ok[i]),
                int(fit.status[i]),
                int(fit.iterations[i]),
                f"{fit.loss[i]:.6g}",
                f"{fit.start_loss[i]:.6g}",
                *[f"{v:.3f}" for v in fit.pose[i]],
                *[f"{v:.3f}" for v in fit.au_intensity[i]],
            ]
            if truth is not None:
                row += [f"{v:.3f}" for v in truth["pose"][i]]
                row += [f"{v:.3f}" for v in truth["au"][i]]
            w.writerow(row)
    finally:
        if out:
            fh.close()
    if out:
        click.echo(f"wrote {len(fit)} rows to {Path(out)}", err=True)
