"""Faces from the caller's own detector: boxes and/or landmarks in, :class:`Faces` out."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import IndexRangeError, NonFiniteError, ParameterError, ShapeError
from ._frames import as_frame_list, box_iou, boxes_from_points, roll_from_eyes
from .base import Faces, FrontEnd
from .pose import landmarks5_from_mediapipe

__all__ = ["GivenFrontEnd"]

_LANDMARKERS = ("mediapipe", "dlib")


def _five_points(landmarks: np.ndarray) -> np.ndarray:
    k = landmarks.shape[1]
    if k == 5:
        return landmarks.copy()
    if k == 68:
        from ..align import five_points_from_68

        return five_points_from_68(landmarks)
    return landmarks5_from_mediapipe(landmarks)


class GivenFrontEnd(FrontEnd):
    """Faces whose boxes and/or landmarks come from the caller's own detector.

    :meth:`detect` takes them beside the frames. With landmarks, nothing is run: ``landmarks5``
    are taken (5 points), made by the :func:`auperf.align.five_points_from_68` rule (68 iBUG
    points) or by :func:`auperf.frontend.landmarks5_from_mediapipe` (468/478 MediaPipe points);
    boxes default to the landmarks' bounding boxes. With boxes only, a landmarker finds the
    landmarks inside each box:

    * ``"mediapipe"`` (default): the box, grown by ``margin`` of its size on every side and
      clipped to the frame, is cropped and given to the MediaPipe front end; the face whose
      landmark box overlaps the given box most (IoU >= 0.1) is kept, with its pose and
      blendshapes.
    * ``"dlib"``: dlib's 5-point shape predictor runs inside the given box (what it is made
      for; no detector is run). Needs ``auperf[dlib]``.

    Every given box yields one face, in the given order; a face whose landmarks the landmarker
    cannot find keeps its box and gets NaN landmarks and pose (pass them to
    ``auperf.Detector.detect(..., invalid="mark")``).

    Convention:
        The :mod:`auperf.frontend.base` conventions: boxes ``(x0, y0, x1, y1)`` and landmarks
        in frame pixels with pixel centres at integers. Pose from given landmarks: yaw and
        pitch NaN, roll from the eye line (> 0 clockwise in the image).

    Args:
        landmarker: ``"mediapipe"`` or ``"dlib"``, for boxes given without landmarks.
        margin: crop growth for the MediaPipe landmarker, fraction of the box size, in [0, 2].
        **landmarker_options: passed to the landmarker's front end (e.g.
            ``min_presence_confidence``).
    """

    name = "given"

    def __init__(
        self, landmarker: str = "mediapipe", margin: float = 0.25, **landmarker_options: Any
    ) -> None:
        if landmarker not in _LANDMARKERS:
            raise ParameterError(f"landmarker: expected one of {_LANDMARKERS}, got {landmarker!r}")
        if (
            isinstance(margin, bool)
            or not isinstance(margin, (int, float))
            or not (0.0 <= margin <= 2.0)
        ):
            raise ParameterError(f"margin: expected a number in [0, 2], got {margin!r}")
        self.landmarker = landmarker
        self.margin = float(margin)
        self._options = dict(landmarker_options)
        self._inner: FrontEnd | None = None
        self._closed = False

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "landmarker": self.landmarker, "margin": self.margin}

    def detect(
        self,
        frames: Any,
        *,
        boxes: Any = None,
        landmarks: Any = None,
        frame_index: Any = None,
        scores: Any = None,
    ) -> Faces:
        """Faces from given ``boxes`` and/or ``landmarks``.

        Args:
            frames: ``(B, H, W, 3)`` uint8 RGB or a list of ``(H, W, 3)`` frames.
            boxes: ``(N, 4)`` ``(x0, y0, x1, y1)`` pixels, or ``None``.
            landmarks: ``(N, K, 2)`` pixels with ``K`` in 5, 68, 468, 478, or ``None``.
            frame_index: ``(N,)`` frame of each face; optional when ``B == 1`` or ``N == B``.
            scores: ``(N,)`` detection confidences in [0, 1] (default NaN).

        Raises:
            ParameterError: neither boxes nor landmarks given, or ``detect`` after ``close``.
            ShapeError: shapes that disagree; NonFiniteError: non-finite boxes or landmarks;
            IndexRangeError: a ``frame_index`` entry outside the batch.
        """
        if self._closed:
            raise ParameterError("GivenFrontEnd: detect() called after close()")
        items = as_frame_list(frames)
        if boxes is None and landmarks is None:
            raise ParameterError("boxes, landmarks: expected at least one of them, got neither")
        lm = None if landmarks is None else np.asarray(landmarks, np.float64)
        bx = None if boxes is None else np.asarray(boxes, np.float64)
        if lm is not None and (
            lm.ndim != 3 or lm.shape[1] not in (5, 68, 468, 478) or lm.shape[2] != 2
        ):
            raise ShapeError(f"landmarks: expected shape (N, 5|68|468|478, 2), got {lm.shape}")
        if bx is not None and (bx.ndim != 2 or bx.shape[1] != 4):
            raise ShapeError(f"boxes: expected shape (N, 4), got {bx.shape}")
        n = lm.shape[0] if lm is not None else bx.shape[0]
        if lm is not None and bx is not None and bx.shape[0] != n:
            raise ShapeError(f"boxes: expected {n} boxes (one per landmark set), got {bx.shape[0]}")
        for arr, what in ((lm, "landmarks"), (bx, "boxes")):
            if arr is not None and not np.isfinite(arr).all():
                raise NonFiniteError(f"{what}: expected finite values, got NaN or Inf")
        if bx is not None and n and ((bx[:, 2] <= bx[:, 0]) | (bx[:, 3] <= bx[:, 1])).any():
            bad = np.flatnonzero((bx[:, 2] <= bx[:, 0]) | (bx[:, 3] <= bx[:, 1]))
            raise ShapeError(
                f"boxes: expected x1 > x0 and y1 > y0, not so for faces {bad.tolist()}"
            )
        fi = self._frame_index(frame_index, n, len(items))
        sc = np.full(n, np.nan, np.float32) if scores is None else np.asarray(scores, np.float32)
        if sc.shape != (n,):
            raise ShapeError(f"scores: expected shape ({n},), got {sc.shape}")
        if n == 0:
            return Faces.empty(len(items))
        if lm is not None:
            five = _five_points(lm)
            pose = np.full((n, 3), np.nan)
            pose[:, 2] = roll_from_eyes(five)
            return Faces(
                frame_index=fi,
                boxes=bx if bx is not None else boxes_from_points(lm),
                scores=sc,
                landmarks5=five,
                landmarks=lm,
                pose=pose,
                num_frames=len(items),
            )
        if self.landmarker == "dlib":
            return self._with_dlib(items, bx, fi, sc)
        return self._with_mediapipe(items, bx, fi, sc)

    @staticmethod
    def _frame_index(frame_index: Any, n: int, b: int) -> np.ndarray:
        if frame_index is None:
            if b == 1:
                return np.zeros(n, np.int64)
            if n == b:
                return np.arange(n, dtype=np.int64)
            raise ParameterError(
                f"frame_index: needed for {n} faces in {b} frames (optional only when B == 1 "
                f"or N == B)"
            )
        fi = np.asarray(frame_index)
        if fi.shape != (n,) or (n and not np.issubdtype(fi.dtype, np.integer)):
            raise ShapeError(f"frame_index: expected ({n},) integers, got {fi.shape} {fi.dtype}")
        if n and (fi.min() < 0 or fi.max() >= b):
            raise IndexRangeError(f"frame_index: expected values in [0, {b}), got {fi.tolist()}")
        return fi.astype(np.int64)

    def _landmarker(self) -> FrontEnd:
        if self._inner is None:
            from . import create

            self._inner = create(self.landmarker, **self._options)
        return self._inner

    def _with_dlib(self, items, bx, fi, sc) -> Faces:
        from ._dlib import five_points_from_dlib5

        inner = self._landmarker()
        dlib = inner._dlib
        own = np.array(
            [
                [
                    (p.x, p.y)
                    for p in inner._predictor(
                        items[f], dlib.rectangle(*[int(round(v)) for v in box])
                    ).parts()
                ]
                for f, box in zip(fi, bx, strict=True)
            ],
            np.float64,
        )
        five = five_points_from_dlib5(own)
        pose = np.full((len(fi), 3), np.nan)
        pose[:, 2] = roll_from_eyes(five)
        return Faces(fi, bx, sc, five, own, pose, num_frames=len(items))

    def _with_mediapipe(self, items, bx, fi, sc) -> Faces:
        inner = self._landmarker()
        n = len(fi)
        crops, origins = [], []
        for f, (x0, y0, x1, y1) in zip(fi, bx, strict=True):
            h, w = items[f].shape[:2]
            gx, gy = (x1 - x0) * self.margin, (y1 - y0) * self.margin
            cx0, cy0 = int(max(0, np.floor(x0 - gx))), int(max(0, np.floor(y0 - gy)))
            cx1, cy1 = int(min(w, np.ceil(x1 + gx) + 1)), int(min(h, np.ceil(y1 + gy) + 1))
            crop = items[f][cy0:cy1, cx0:cx1]
            if min(crop.shape[:2]) < 16:  # box outside or at the border: no landmarks
                crop = np.zeros((16, 16, 3), np.uint8)
            crops.append(crop)
            origins.append((cx0, cy0))
        got = inner.detect(crops)
        k = got.landmarks.shape[1] if got.landmarks is not None else 478
        mesh = np.full((n, k, 2), np.nan)
        five = np.full((n, 5, 2), np.nan)
        pose = np.full((n, 3), np.nan)
        s = got.blendshapes.shape[1] if got.blendshapes is not None else 0
        blend = np.full((n, s), np.nan, np.float32) if got.blendshapes is not None else None
        for i in range(n):
            rows = np.flatnonzero(got.frame_index == i)
            if rows.size == 0:
                continue
            o = np.asarray(origins[i], np.float64)
            iou = box_iou(bx[i : i + 1] - np.r_[o, o], got.boxes[rows])[0]
            if iou.max() < 0.1:
                continue
            r = rows[int(iou.argmax())]
            five[i] = got.landmarks5[r] + o
            mesh[i] = got.landmarks[r] + o
            pose[i] = got.pose[r]
            if blend is not None:
                blend[i] = got.blendshapes[r]
        return Faces(
            frame_index=fi,
            boxes=bx,
            scores=sc,
            landmarks5=five,
            landmarks=mesh,
            pose=pose,
            blendshapes=blend,
            blendshape_names=got.blendshape_names,
            num_frames=len(items),
        )

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        self._closed = True
