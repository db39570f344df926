"""The face front end interface: frames in, faces (boxes, landmarks, pose) out.

Every front end (MediaPipe Face Landmarker, dlib, landmarks given by the caller) implements
:class:`FrontEnd` and returns one :class:`Faces` per call, covering all faces of all frames
of the batch, in frame order.

Conventions (shared with :mod:`auperf.align` and :class:`auperf.Detector`):
    Frames are ``(H, W, 3)`` uint8 RGB (a list of them, or a ``(B, H, W, 3)`` array).
    Pixel coordinates: ``(x, y)``, origin at the centre of the top-left pixel, x right, y down.
    Boxes are ``(x0, y0, x1, y1)`` in frame pixels. ``landmarks5`` are the five alignment
    points in the :mod:`auperf.align` order (eye image-left, eye image-right, nose tip, mouth
    corner image-left, mouth corner image-right). Head pose is ``(yaw, pitch, roll)`` in
    degrees, camera looking at the face: yaw > 0 when the face turns towards the image's left
    (the subject's right), pitch > 0 when the face looks up, roll > 0 when the face turns
    clockwise in the image; NaN where a front end cannot tell.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Faces", "FrontEnd"]


@dataclass(frozen=True)
class Faces:
    """``N`` faces found in a batch of frames.

    Attributes:
        frame_index: ``(N,)`` int64, index of each face's frame within the batch.
        boxes: ``(N, 4)`` float64 ``(x0, y0, x1, y1)``.
        scores: ``(N,)`` float32 detection confidence in [0, 1] (NaN where the front end has
            none, e.g. boxes given without scores).
        landmarks5: ``(N, 5, 2)`` float64 alignment points.
        landmarks: ``(N, K, 2)`` float64, the front end's own landmarks (478 for MediaPipe,
            5 or 68 for dlib), or ``None``.
        pose: ``(N, 3)`` float64 ``(yaw, pitch, roll)`` in degrees (NaN where unknown).
        blendshapes: ``(N, S)`` float32 scores in [0, 1] (MediaPipe's 52), or ``None``.
        blendshape_names: names of the ``S`` blendshape columns, or ``()``.
        num_frames: number of frames in the batch (frames with no face included).
    """

    frame_index: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    landmarks5: np.ndarray
    landmarks: np.ndarray | None = None
    pose: np.ndarray | None = None
    blendshapes: np.ndarray | None = None
    blendshape_names: tuple[str, ...] = field(default=())
    num_frames: int = 0

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])

    @staticmethod
    def empty(num_frames: int = 0) -> Faces:
        """No faces."""
        return Faces(
            frame_index=np.zeros(0, np.int64),
            boxes=np.zeros((0, 4)),
            scores=np.zeros(0, np.float32),
            landmarks5=np.zeros((0, 5, 2)),
            pose=np.zeros((0, 3)),
            num_frames=num_frames,
        )


class FrontEnd(abc.ABC):
    """Finds faces and their landmarks in frames.

    Subclasses set :attr:`name` and implement :meth:`detect`; :meth:`close` releases native
    resources. A front end is used from one thread at a time unless its docstring says more.
    """

    name: str = ""

    @abc.abstractmethod
    def detect(self, frames: Any) -> Faces:
        """Faces in ``frames`` (a ``(B, H, W, 3)`` uint8 RGB array or a list of ``(H, W, 3)``
        frames of any sizes)."""

    def describe(self) -> dict[str, Any]:
        """What this front end is (name, model file, options), for logs and result metadata."""
        return {"name": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release resources; :meth:`detect` must not be called afterwards."""

    def __enter__(self) -> FrontEnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
