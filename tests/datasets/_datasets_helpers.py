"""Helpers of the dataset tests: small drawn faces and image comparison."""

from __future__ import annotations

import cv2
import numpy as np


def draw_face(rng: np.random.Generator, h: int = 48, w: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A smooth drawn "face" (ellipse, eyes, mouth on a gradient) and its 5 points."""
    yy, xx = np.mgrid[0:h, 0:w]
    base = rng.integers(40, 120, size=3)
    img = np.empty((h, w, 3), dtype=np.uint8)
    for c in range(3):
        img[..., c] = np.clip(base[c] + 60 * xx / w + 40 * yy / h, 0, 255).astype(np.uint8)
    cx, cy = w / 2 + rng.uniform(-2, 2), h / 2 + rng.uniform(-2, 2)
    cv2.ellipse(
        img,
        (int(cx), int(cy)),
        (int(w * 0.35), int(h * 0.42)),
        0,
        0,
        360,
        tuple(int(v) for v in rng.integers(150, 230, size=3)),
        -1,
    )
    pts = np.array(
        [
            [cx - w * 0.15, cy - h * 0.1],
            [cx + w * 0.15, cy - h * 0.1],
            [cx, cy + h * 0.05],
            [cx - w * 0.12, cy + h * 0.2],
            [cx + w * 0.12, cy + h * 0.2],
        ]
    )
    for x, y in pts[[0, 1]]:
        cv2.circle(img, (int(round(x)), int(round(y))), 2, (30, 30, 30), -1)
    cv2.line(
        img,
        tuple(int(round(v)) for v in pts[3]),
        tuple(int(round(v)) for v in pts[4]),
        (120, 20, 20),
        1,
    )
    return img, pts + rng.uniform(-0.5, 0.5, size=pts.shape)


def close_images(a: np.ndarray, b: np.ndarray, tol: float = 6.0) -> bool:
    """Equal up to lossy compression: same shape, small mean absolute difference."""
    return a.shape == b.shape and float(np.abs(a.astype(float) - b.astype(float)).mean()) < tol
