"""Rendered, aligned training data for the M3 networks.

Faces are drawn by ``auperf.synth.FaceRenderer`` at ``render_scale * S`` pixels and aligned to
``auperf.align.template(S)`` exactly as :class:`auperf.Estimator` aligns its input: a similarity
from the renderer's 5 points (``estimate_similarity``) and ``auperf.ops.warp_faces``. Masks are
warped with the same matrices (nearest neighbour) and mapped to the M3 classes
(:func:`auperf.estimator.parse_labels_from_mask`).

The alignment removes in-plane rotation, so the roll dim cannot be seen in an aligned crop: the
targets store it as 0.5 (frontal), and the estimator reads roll from the alignment matrix.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from auperf.align import estimate_similarity, template
from auperf.estimator import ROLL_INDEX, parse_labels_from_mask
from auperf.ops import warp_faces
from auperf.synth import Augment, FaceRenderer, sample_params

from .config import DataConfig

__all__ = ["render_aligned", "make_params", "training_set", "parser_set", "heldout_set"]

log = logging.getLogger("auperf.training.m3")


def make_params(rng: np.random.Generator, n: int, uniform_fraction: float) -> np.ndarray:
    """``(n, 77)`` float64 parameters: a ``uniform_fraction`` share with uniform expression and
    pose, the rest natural (``sample_params`` defaults). Identities always from the sampler."""
    n_u = int(round(n * uniform_fraction))
    parts = []
    if n_u:
        parts.append(sample_params(rng, n_u, expression="uniform", pose="uniform"))
    if n - n_u:
        parts.append(sample_params(rng, n - n_u))
    x = np.concatenate(parts, 0)
    return x[rng.permutation(n)]


def render_aligned(
    params: np.ndarray,
    size: int,
    *,
    render_scale: int = 2,
    seed: int = 0,
    augment: Augment | None = None,
    masks: bool = False,
    chunk: int = 500,
):
    """Render faces and align them to ``template(size)``.

    Returns:
        ``images`` ``(N, S, S, 3)`` uint8 RGB, ``labels`` ``(N, S, S)`` uint8 M3 classes or
        ``None``, ``matrices`` ``(N, 2, 3)`` src_to_dst (render pixels -> crop pixels).
    """
    renderer = FaceRenderer(seed=seed, size=size * render_scale)
    tmpl = template(size)
    imgs, labs, mats = [], [], []
    for i in range(0, len(params), chunk):
        out = renderer.render(params[i : i + chunk], augment=augment)
        m = estimate_similarity(out.landmarks5, tmpl)
        imgs.append(warp_faces(out.images, m, size=size, dtype="uint8", layout="NHWC"))
        mats.append(m)
        if masks:
            for k in range(len(m)):
                warped = cv2.warpAffine(
                    out.mask[k], m[k], (size, size), flags=cv2.INTER_NEAREST, borderValue=0
                )
                labs.append(parse_labels_from_mask(warped, size))
    labels = np.stack(labs) if masks else None
    return np.concatenate(imgs), labels, np.concatenate(mats)


def _cached(cfg: DataConfig, name: str, build):
    path = (
        Path(cfg.cache_dir) / f"m3_{name}_s{cfg.size}_seed{cfg.seed}.npz" if cfg.cache_dir else None
    )
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    data = build()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **data)
    return data


def training_set(cfg: DataConfig) -> dict[str, np.ndarray]:
    """``images`` (N, S, S, 3) uint8 and ``params`` (N, 77) float32 (roll stored as 0.5)."""

    def build():
        rng = np.random.default_rng(cfg.seed)
        x = make_params(rng, cfg.faces, cfg.uniform_fraction)
        imgs, _, _ = render_aligned(x, cfg.size, render_scale=cfg.render_scale, seed=cfg.seed)
        x = x.astype(np.float32)
        x[:, ROLL_INDEX] = 0.5
        return {"images": imgs, "params": x}

    return _cached(cfg, f"train{cfg.faces}", build)


def parser_set(cfg: DataConfig) -> dict[str, np.ndarray]:
    """``images`` (N, S, S, 3) uint8 (realistic augmentation) and ``labels`` (N, S, S) uint8."""

    def build():
        rng = np.random.default_rng(cfg.seed + 500)
        x = make_params(rng, cfg.parser_faces, cfg.uniform_fraction)
        imgs, labels, _ = render_aligned(
            x,
            cfg.size,
            render_scale=cfg.render_scale,
            seed=cfg.seed + 500,
            augment=Augment.realistic(),
            masks=True,
        )
        return {"images": imgs, "labels": labels}

    return _cached(cfg, f"parser{cfg.parser_faces}", build)


def heldout_set(cfg: DataConfig, n: int, seed_offset: int = 1000) -> dict[str, np.ndarray]:
    """Held-out faces (new identities, natural expressions and pose, no augmentation):
    ``images`` (N, S, S, 3) uint8 aligned, ``frames`` (N, R, R, 3) uint8 unaligned renders with
    ``landmarks5`` (N, 5, 2), and the true ``params`` (N, 77) float64 (roll as drawn) and
    ``pose_deg`` (N, 3)."""
    rng = np.random.default_rng(cfg.seed + seed_offset)
    x = sample_params(rng, n)
    renderer = FaceRenderer(seed=cfg.seed + seed_offset, size=cfg.size * cfg.render_scale)
    out = renderer.render(x)
    m = estimate_similarity(out.landmarks5, template(cfg.size))
    imgs = warp_faces(out.images, m, size=cfg.size, dtype="uint8", layout="NHWC")
    return {
        "images": imgs,
        "frames": out.images,
        "landmarks5": out.landmarks5,
        "params": x,
        "pose_deg": out.pose_deg,
    }
