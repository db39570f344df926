"""Contact sheet: a labelled grid of rendered faces across identities, AUs, expressions, poses."""

from __future__ import annotations

import cv2
import numpy as np

from .params import (
    AU_IDS,
    AU_TO_EXPRESSION,
    CATEGORY_NAMES,
    EXPRESSION_SLICE,
    degrees_to_pose,
    neutral_params,
)
from .render import Augment, FaceRenderer
from .samplers import sample_category, sample_identities, sample_params

__all__ = ["contact_sheet"]

_LABEL_H = 16


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    h, w = tile.shape[:2]
    strip = np.full((_LABEL_H, w, 3), 255, np.uint8)
    scale = 0.38 if w >= 100 else 0.3
    cv2.putText(
        strip, text, (3, _LABEL_H - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA
    )
    return np.vstack([tile, strip])


def contact_sheet(seed: int = 0, tile: int = 128, columns: int = 8) -> np.ndarray:
    """A labelled ``(H, W, 3)`` RGB uint8 grid of faces.

    Rows: random identities (neutral, frontal); every AU of :data:`AU_IDS` at intensity 5 on one
    identity next to its neutral face; the basic expressions; poses; augmented faces.
    """
    rng = np.random.default_rng(seed)
    r = FaceRenderer(seed=seed, size=tile)
    tiles: list[tuple[np.ndarray, str]] = []

    def add(params, labels, augment=None):
        out = r.render(params, augment=augment)
        tiles.extend(zip(out.images, labels, strict=False))

    ids = sample_identities(rng, columns)
    x = neutral_params(columns)
    x[:, -ids.shape[1] :] = ids
    add(x, [f"identity {i}" for i in range(columns)])

    base = neutral_params(1)
    base[0, -ids.shape[1] :] = ids[0] * 0.5 + 0.25
    aus = np.repeat(base, len(AU_IDS) + 1, axis=0)
    for k, j in enumerate(AU_TO_EXPRESSION):
        aus[k + 1, EXPRESSION_SLICE.start + j] = 1.0
    add(aus, ["neutral"] + [f"AU{a} = 5" for a in AU_IDS])

    cats = np.repeat(base, len(CATEGORY_NAMES), axis=0)
    for ci in range(len(CATEGORY_NAMES)):
        pe, _ = sample_category(rng, 1, categories=[ci], intensity=(0.9, 1.0))
        cats[ci, EXPRESSION_SLICE] = pe[0]
    add(cats, list(CATEGORY_NAMES))

    poses = [
        (-35, 0, 0),
        (-18, 0, 0),
        (18, 0, 0),
        (35, 0, 0),
        (0, -25, 0),
        (0, 25, 0),
        (0, 0, -30),
        (25, 15, 15),
    ]
    px = np.repeat(base, len(poses), axis=0)
    px[:, :3] = degrees_to_pose(np.array(poses, dtype=np.float64))
    add(px, [f"y{p[0]} p{p[1]} r{p[2]}" for p in poses])

    ax = sample_params(rng, columns)
    aug = Augment(clutter=1.0, light=1.0, blur=0.3, noise=0.25, jpeg=0.5, occlusion=0.4)
    add(ax, ["augmented"] * columns, augment=aug)

    rows = []
    for i in range(0, len(tiles), columns):
        row = [_label(t, s) for t, s in tiles[i : i + columns]]
        while len(row) < columns:
            row.append(np.full_like(row[0], 255))
        rows.append(np.hstack(row))
    return np.vstack(rows)
