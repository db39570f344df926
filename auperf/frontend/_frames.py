"""Validation of the frames every front end accepts, and small shared geometry helpers."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError, ParameterError, ShapeError, ValueRangeError

#: Frames smaller than this (either side, pixels) cannot hold a face and are rejected.
MIN_FRAME_SIDE = 16


def as_frame_list(frames: Any, name: str = "frames") -> list[np.ndarray]:
    """``frames`` as a list of C-contiguous ``(H, W, 3)`` uint8 RGB arrays.

    Accepts a ``(B, H, W, 3)`` array, one ``(H, W, 3)`` frame (a batch of one), or a list/tuple
    of ``(H, W, 3)`` frames of any sizes.

    Raises:
        ParameterError: ``frames`` is ``None``, a string, or an empty list.
        DTypeError: a frame is not uint8.
        ShapeError: a frame is not ``(H, W, 3)``, or smaller than ``MIN_FRAME_SIDE`` pixels.
    """
    if frames is None or isinstance(frames, (str, bytes)):
        raise ParameterError(f"{name}: expected uint8 RGB frames, got {type(frames).__name__}")
    if isinstance(frames, (list, tuple)):
        items = list(frames)
        if not items:
            raise ParameterError(f"{name}: expected at least one frame, got an empty list")
        labels = [f"{name}[{i}]" for i in range(len(items))]
    else:
        arr = _as_array(frames, name)
        if arr.ndim == 3:
            items, labels = [arr], [name]
        elif arr.ndim == 4:
            if arr.shape[0] == 0:
                raise ShapeError(f"{name}: expected at least one frame, got shape {arr.shape}")
            items, labels = list(arr), [f"{name}[{i}]" for i in range(arr.shape[0])]
        else:
            raise ShapeError(
                f"{name}: expected shape (B, H, W, 3) or (H, W, 3), got {tuple(arr.shape)}"
            )
    out = []
    for item, label in zip(items, labels, strict=True):
        a = _as_array(item, label)
        if a.dtype != np.uint8:
            raise DTypeError(f"{label}: expected dtype uint8 (RGB), got {a.dtype}")
        if a.ndim != 3 or a.shape[2] != 3:
            raise ShapeError(f"{label}: expected shape (H, W, 3), got {tuple(a.shape)}")
        if min(a.shape[0], a.shape[1]) < MIN_FRAME_SIDE:
            raise ShapeError(
                f"{label}: a frame of {a.shape[1]}x{a.shape[0]} pixels is too small to hold a "
                f"face (expected H and W >= {MIN_FRAME_SIDE}), got shape {tuple(a.shape)}"
            )
        out.append(np.ascontiguousarray(a))
    return out


def _as_array(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "__cuda_array_interface__"):
        raise ParameterError(f"{name}: expected a host (NumPy) array, got a CUDA array")
    try:
        return np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is bad input
        raise ParameterError(f"{name}: cannot be read as an array: {exc}") from exc


def check_unit_interval(value: Any, name: str) -> float:
    """``value`` as a float in ``[0, 1]``, else :class:`ValueRangeError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueRangeError(f"{name}: expected a number in [0, 1], got {value!r}")
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueRangeError(f"{name}: expected a number in [0, 1], got {value!r}")
    return v


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else :class:`ValueRangeError`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueRangeError(f"{name}: expected an integer >= 1, got {value!r}")
    return int(value)


def boxes_from_points(points: np.ndarray) -> np.ndarray:
    """``(N, K, 2)`` points -> ``(N, 4)`` ``(x0, y0, x1, y1)`` bounding boxes."""
    if points.shape[0] == 0:
        return np.zeros((0, 4))
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1).astype(np.float64)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of ``(x0, y0, x1, y1)`` boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def roll_from_eyes(landmarks5: np.ndarray) -> np.ndarray:
    """Roll in degrees from the eye line of ``(N, 5, 2)`` points: > 0 when the face turns
    clockwise in the image (image y points down, so the image-right eye is lower)."""
    d = landmarks5[:, 1] - landmarks5[:, 0]
    return np.degrees(np.arctan2(d[:, 1], d[:, 0]))
