"""Face tracking across frames and temporal smoothing of per-track values.

:class:`Tracker` gives every face a track id that stays with the person from frame to frame.
Association, per frame, is an optimal assignment (``scipy.optimize.linear_sum_assignment``)
on the cost::

    cost(track, face) = (1 - IoU(predicted box, box)) + w * d / s

where ``d`` is the mean distance between the track's predicted 5 landmarks and the face's,
``s`` the square root of the track's box area and ``w`` ``landmark_weight``. A pair is
allowed only when ``IoU >= min_iou`` or ``d / s <= max_landmark_distance``; unmatched faces
start new tracks. A track's box and landmarks are predicted at constant velocity (the velocity
is an exponential average of its per-frame motion), so faces whose paths cross keep their
ids. A track that is not seen is kept for ``max_age`` frames and can take a face back
(re-identification after a short occlusion); after that it ends and its id is never reused.

Convention:
    Boxes ``(x0, y0, x1, y1)`` and landmarks ``(x, y)`` in frame pixels (as in
    :mod:`auperf.frontend`). Track ids are integers from ``first_id`` upwards, in order of
    appearance. Frame numbers passed to :meth:`Tracker.update` must increase.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import OptionalDependencyError, ShapeError, ValueRangeError

__all__ = ["Tracker", "TrackSmoother", "box_iou", "count_id_switches"]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` ``(N, 4)`` with every box of ``b``
    ``(M, 4)`` (``(x0, y0, x1, y1)``, continuous coordinates): ``(N, M)`` in [0, 1]."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(iou, nan=0.0)


@dataclass
class _Track:
    id: int
    box: np.ndarray
    points: np.ndarray
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    scale_velocity: float = 0.0
    hits: int = 1

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        dt = frame - self.last_frame
        shift = self.velocity * dt
        c = 0.5 * (self.box[:2] + self.box[2:])
        k = max(0.2, 1.0 + self.scale_velocity * dt)
        box = np.concatenate([c + (self.box[:2] - c) * k, c + (self.box[2:] - c) * k]) + np.tile(
            shift, 2
        )
        pts = c + (self.points - c) * k + shift
        return box, pts


class Tracker:
    """Assign stable track ids to faces frame by frame (see the module docstring).

    Args:
        min_iou: smallest IoU with the predicted box that allows a match by overlap.
        max_landmark_distance: largest mean landmark distance (in units of the track's box
            size) that allows a match without overlap.
        landmark_weight: weight ``w`` of the landmark term in the cost.
        max_age: frames a lost track is kept for re-identification (>= 0).
        velocity_smoothing: weight of the newest motion in the velocity average, in (0, 1].
        first_id: id of the first track (e.g. one past the largest id of a resumed file).

    Raises:
        OptionalDependencyError: SciPy is not installed.
        ValueRangeError: an option outside its range.
    """

    def __init__(
        self,
        min_iou: float = 0.1,
        max_landmark_distance: float = 0.6,
        landmark_weight: float = 1.0,
        max_age: int = 30,
        velocity_smoothing: float = 0.5,
        first_id: int = 1,
    ) -> None:
        try:
            from scipy.optimize import linear_sum_assignment
        except ImportError:
            raise OptionalDependencyError(
                "Tracker: SciPy is not installed (pip install scipy, or auperf[video])"
            ) from None
        self._assign = linear_sum_assignment
        if not 0.0 <= min_iou <= 1.0:
            raise ValueRangeError(f"min_iou: expected a value in [0, 1], got {min_iou!r}")
        if not max_landmark_distance >= 0:
            raise ValueRangeError(
                f"max_landmark_distance: expected a value >= 0, got {max_landmark_distance!r}"
            )
        if not landmark_weight >= 0:
            raise ValueRangeError(f"landmark_weight: expected >= 0, got {landmark_weight!r}")
        if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
            raise ValueRangeError(f"max_age: expected an integer >= 0, got {max_age!r}")
        if not 0.0 < velocity_smoothing <= 1.0:
            raise ValueRangeError(
                f"velocity_smoothing: expected a value in (0, 1], got {velocity_smoothing!r}"
            )
        if isinstance(first_id, bool) or not isinstance(first_id, int) or first_id < 0:
            raise ValueRangeError(f"first_id: expected an integer >= 0, got {first_id!r}")
        self.min_iou = float(min_iou)
        self.max_landmark_distance = float(max_landmark_distance)
        self.landmark_weight = float(landmark_weight)
        self.max_age = int(max_age)
        self.velocity_smoothing = float(velocity_smoothing)
        self._next_id = int(first_id)
        self._tracks: list[_Track] = []
        self._last_frame: int | None = None

    @property
    def active_tracks(self) -> list[int]:
        """Ids of the tracks still kept (seen within the last ``max_age`` frames)."""
        return [t.id for t in self._tracks]

    def update(self, frame: int, boxes: Any, landmarks5: Any) -> np.ndarray:
        """Associate the faces of one frame with the tracks.

        Args:
            frame: the frame number (larger than at the previous call).
            boxes: ``(N, 4)`` face boxes ``(x0, y0, x1, y1)``.
            landmarks5: ``(N, 5, 2)`` alignment points.

        Returns:
            ``(N,)`` int64 track ids, distinct within the frame.

        Raises:
            ShapeError: boxes or landmarks of the wrong shape.
            ValueRangeError: ``frame`` not larger than at the previous call.
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4) if np.size(boxes) else np.zeros((0, 4))
        pts = np.asarray(landmarks5, np.float64)
        if pts.size == 0:
            pts = np.zeros((0, 5, 2))
        if pts.ndim != 3 or pts.shape[1:] != (5, 2) or pts.shape[0] != boxes.shape[0]:
            raise ShapeError(
                f"landmarks5: expected shape ({boxes.shape[0]}, 5, 2), got {pts.shape}"
            )
        if self._last_frame is not None and frame <= self._last_frame:
            raise ValueRangeError(
                f"frame: expected a frame after {self._last_frame}, got {frame!r}"
            )
        self._last_frame = int(frame)
        self._tracks = [t for t in self._tracks if frame - t.last_frame <= self.max_age + 1]
        n = boxes.shape[0]
        ids = np.full(n, -1, np.int64)
        if self._tracks and n:
            cost = self._cost(frame, boxes, pts)
            rows, cols = self._assign(np.where(np.isfinite(cost), cost, 1e6))
            for r, c in zip(rows, cols, strict=True):
                if np.isfinite(cost[r, c]):
                    self._refresh(self._tracks[r], frame, boxes[c], pts[c])
                    ids[c] = self._tracks[r].id
        for c in np.flatnonzero(ids < 0):
            t = _Track(self._next_id, boxes[c].copy(), pts[c].copy(), int(frame))
            self._next_id += 1
            self._tracks.append(t)
            ids[c] = t.id
        return ids

    def _cost(self, frame: int, boxes: np.ndarray, pts: np.ndarray) -> np.ndarray:
        pred = [t.predict(frame) for t in self._tracks]
        pboxes = np.stack([p[0] for p in pred])
        ppts = np.stack([p[1] for p in pred])
        iou = box_iou(pboxes, boxes)
        size = np.sqrt(
            np.clip((pboxes[:, 2] - pboxes[:, 0]) * (pboxes[:, 3] - pboxes[:, 1]), 1.0, None)
        )
        d = np.linalg.norm(ppts[:, None] - pts[None], axis=-1).mean(-1) / size[:, None]
        cost = (1.0 - iou) + self.landmark_weight * d
        allowed = (iou >= self.min_iou) | (d <= self.max_landmark_distance)
        return np.where(allowed & np.isfinite(d), cost, np.inf)

    def _refresh(self, t: _Track, frame: int, box: np.ndarray, pts: np.ndarray) -> None:
        dt = max(frame - t.last_frame, 1)
        c_old = 0.5 * (t.box[:2] + t.box[2:])
        c_new = 0.5 * (box[:2] + box[2:])
        a = self.velocity_smoothing
        v = (c_new - c_old) / dt
        w_old = max(t.box[2] - t.box[0], 1e-6)
        sv = ((box[2] - box[0]) / w_old - 1.0) / dt
        if t.hits == 1:
            t.velocity, t.scale_velocity = v, sv
        else:
            t.velocity = (1 - a) * t.velocity + a * v
            t.scale_velocity = (1 - a) * t.scale_velocity + a * sv
        t.box, t.points, t.last_frame = box.copy(), pts.copy(), int(frame)
        t.hits += 1


class TrackSmoother:
    """Exponential smoothing of per-track values over time (e.g. AU probabilities).

    ``s_t = alpha * x_t + (1 - alpha) * s_prev`` per track, where ``s_prev`` is the track's
    last smoothed value; a track's first value, and a value after a gap of more than
    ``max_gap`` frames, is taken as is. NaN inputs (failed faces) pass through and leave the
    state unchanged. ``alpha = 1`` disables smoothing.

    Args:
        alpha: weight of the newest value, in (0, 1].
        max_gap: frames after which a track's state is forgotten.
    """

    def __init__(self, alpha: float = 0.5, max_gap: int = 5) -> None:
        if not 0.0 < alpha <= 1.0:
            raise ValueRangeError(f"alpha: expected a value in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)
        self.max_gap = int(max_gap)
        self._state: dict[int, tuple[int, np.ndarray]] = {}

    def update(self, frame: int, track_ids: Any, values: Any) -> np.ndarray:
        """Smooth ``values`` ``(N, L)`` of the faces of one frame with track ids ``(N,)``."""
        values = np.asarray(values, np.float32)
        out = values.copy()
        for n, tid in enumerate(np.asarray(track_ids).tolist()):
            x = values[n]
            if not np.isfinite(x).all():
                continue
            prev = self._state.get(tid)
            if prev is not None and frame - prev[0] <= self.max_gap:
                out[n] = self.alpha * x + (1.0 - self.alpha) * prev[1]
            self._state[tid] = (int(frame), out[n].copy())
        return out


def count_id_switches(
    true_ids: np.ndarray, predicted_ids: np.ndarray, frames: np.ndarray
) -> dict[str, int]:
    """Identity switches of a tracker against the ground truth (CLEAR-MOT style counting).

    For each true identity, in frame order, a switch is counted every time the predicted id
    matched to it differs from the one it had at its previous appearance. Also counted:
    ``fragments`` (distinct predicted ids per true identity, minus one, summed) and
    ``merges`` (frames where two true identities share one predicted id).

    Args:
        true_ids: ``(N,)`` true identity of each detection.
        predicted_ids: ``(N,)`` track id given to each detection.
        frames: ``(N,)`` frame of each detection.
    """
    true_ids = np.asarray(true_ids)
    predicted_ids = np.asarray(predicted_ids)
    frames = np.asarray(frames)
    if not (true_ids.shape == predicted_ids.shape == frames.shape):
        raise ShapeError(
            f"true_ids, predicted_ids, frames: expected equal shapes, got {true_ids.shape}, "
            f"{predicted_ids.shape}, {frames.shape}"
        )
    order = np.lexsort((true_ids, frames))
    last: dict[Any, Any] = {}
    seen: dict[Any, set] = {}
    switches = 0
    for k in order:
        g, p = true_ids[k].item(), predicted_ids[k].item()
        if g in last and last[g] != p:
            switches += 1
        last[g] = p
        seen.setdefault(g, set()).add(p)
    merges = 0
    for f in np.unique(frames):
        sel = predicted_ids[frames == f]
        merges += int(sel.size - np.unique(sel).size)
    fragments = sum(len(s) - 1 for s in seen.values())
    return {"switches": switches, "fragments": fragments, "merges": merges}
