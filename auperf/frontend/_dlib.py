"""dlib front end: HOG face detector + the 5-point shape predictor of ``face-recognition-models``.

dlib's 5 points are the two corners of each eye and the base of the nose (subnasale); they hold
no mouth. The 5 alignment points are made from them: eye centres are the corner midpoints (the
:func:`auperf.align.five_points_from_68` rule); the nose tip and the mouth corners are placed
from a mean face (the template below) by the least-squares similarity that maps its eye
centres and subnasale onto the measured ones. The 68-point model of ``face-recognition-models``
is never used (its training data excludes commercial use).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionalDependencyError, ParameterError
from ._frames import as_frame_list, check_positive_int, check_unit_interval, roll_from_eyes
from .base import Faces, FrontEnd

__all__ = ["DlibFrontEnd", "five_points_from_dlib5", "mean_face_with_subnasale"]

_INSTALL = 'python -m pip install "auperf[dlib]" (that is: dlib-bin face-recognition-models)'

_MEAN_FACE: np.ndarray | None = None


def mean_face_with_subnasale() -> np.ndarray:
    """``(6, 2)`` mean face in :data:`auperf.align.TEMPLATE_112` coordinates (112 x 112 crop
    pixels): eye image-left, eye image-right, nose tip, mouth image-left, mouth image-right (the
    template itself), then the subnasale, placed from the renderer's mean 3D shape (iBUG point
    33) by the similarity that maps that shape's 5 points onto the template. Read-only."""
    global _MEAN_FACE
    if _MEAN_FACE is None:
        from .. import align
        from ..synth import model as synth_model

        shape = synth_model.MEAN_SHAPE[None, :68, :2]
        m = align.estimate_similarity(align.five_points_from_68(shape), align.TEMPLATE_112)[0]
        sub = m[:, :2] @ shape[0, 33] + m[:, 2]
        face = np.vstack([align.TEMPLATE_112, sub[None]]).astype(np.float64)
        face.setflags(write=False)
        _MEAN_FACE = face
    return _MEAN_FACE


def five_points_from_dlib5(points: np.ndarray) -> np.ndarray:
    """``(N, 5, 2)`` dlib 5-point landmarks -> ``(N, 5, 2)`` alignment points (module docstring).

    dlib's order: image-right eye outer and inner corner, image-left eye outer and inner
    corner, subnasale.
    """
    from .. import align

    p = np.asarray(points, np.float64)
    if p.shape[0] == 0:
        return np.zeros((0, 5, 2))
    eyes_sub = np.stack([p[:, 2:4].mean(1), p[:, 0:2].mean(1), p[:, 4]], axis=1)
    face = mean_face_with_subnasale()
    m = align.estimate_similarity(eyes_sub, face[[0, 1, 5]])  # image -> template
    inv = align.invert_affine(m)  # template -> image
    placed = np.einsum("nij,kj->nki", inv[:, :, :2], face[2:5]) + inv[:, None, :, 2]
    return np.concatenate([eyes_sub[:, :2], placed], axis=1)


def _locate_model(model_path: str | os.PathLike | None) -> Path:
    if model_path is not None:
        p = Path(model_path).expanduser()
        if not p.is_file():
            raise ParameterError(f"model_path: expected a dlib shape predictor file, got {p}")
        return p.resolve()
    # Located without importing face_recognition_models (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("face_recognition_models")
    for root in (spec.submodule_search_locations or []) if spec else []:
        p = Path(root) / "models" / "shape_predictor_5_face_landmarks.dat"
        if p.is_file():
            return p.resolve()
    raise OptionalDependencyError(
        "the 'dlib' front end needs shape_predictor_5_face_landmarks.dat from the "
        f"face-recognition-models package; install it: {_INSTALL}"
    )


class DlibFrontEnd(FrontEnd):
    """dlib's HOG frontal face detector and 5-point shape predictor.

    Convention:
        Boxes are dlib's detection rectangles ``(left, top, right, bottom)`` in pixels.
        ``landmarks`` are dlib's own 5 points (see :func:`five_points_from_dlib5`);
        ``landmarks5`` the alignment points (nose tip and mouth corners placed from a mean
        face, see the module docstring). ``scores`` are ``1 / (1 + exp(-margin))`` of the HOG
        detector's SVM margin (0.5 at margin 0). Pose: yaw and pitch NaN (5 points cannot tell
        them), roll from the eye line (> 0 clockwise in the image). No blendshapes.

    Args:
        num_faces: most faces per frame, highest scores first (>= 1).
        min_detection_confidence: threshold on ``scores`` in [0, 1] (0.5 = margin 0).
        upsample: times the image is doubled before detection (finds faces down to ~40 px
            at 1, ~80 px at 0; each step costs ~4x time).
        model_path: another dlib 5-point shape predictor file.
    """

    name = "dlib"

    def __init__(
        self,
        num_faces: int = 1,
        min_detection_confidence: float = 0.5,
        upsample: int = 1,
        model_path: str | os.PathLike | None = None,
    ) -> None:
        self.num_faces = check_positive_int(num_faces, "num_faces")
        self.min_detection_confidence = check_unit_interval(
            min_detection_confidence, "min_detection_confidence"
        )
        if (
            isinstance(upsample, bool)
            or not isinstance(upsample, (int, np.integer))
            or not (0 <= upsample <= 3)
        ):
            raise ParameterError(f"upsample: expected an integer in [0, 3], got {upsample!r}")
        self.upsample = int(upsample)
        try:
            import dlib
        except ImportError as exc:
            raise OptionalDependencyError(
                f"the 'dlib' front end needs the dlib package ({exc}); install it: {_INSTALL}"
            ) from exc
        self._dlib = dlib
        self.model_path = _locate_model(model_path)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.model_path))
        c = min(max(self.min_detection_confidence, 1e-12), 1 - 1e-12)
        self._min_margin = float(np.log(c / (1.0 - c)))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": str(self.model_path),
            "dlib": getattr(self._dlib, "__version__", "unknown"),
            "num_faces": self.num_faces,
            "min_detection_confidence": self.min_detection_confidence,
            "upsample": self.upsample,
        }

    def detect(self, frames: Any) -> Faces:
        """Faces in ``frames`` (``(B, H, W, 3)`` uint8 RGB or a list of ``(H, W, 3)``)."""
        if self._detector is None:
            raise ParameterError("DlibFrontEnd: detect() called after close()")
        items = as_frame_list(frames)
        fi, boxes, margins, pts = [], [], [], []
        for b, frame in enumerate(items):
            rects, margin, _ = self._detector.run(frame, self.upsample, self._min_margin)
            order = np.argsort(-np.asarray(margin, np.float64), kind="stable")[: self.num_faces]
            for k in order:
                r = rects[int(k)]
                shape = self._predictor(frame, r)
                pts.append([(p.x, p.y) for p in shape.parts()])
                boxes.append((r.left(), r.top(), r.right(), r.bottom()))
                margins.append(margin[int(k)])
                fi.append(b)
        if not fi:
            return Faces.empty(len(items))
        own = np.asarray(pts, np.float64)
        five = five_points_from_dlib5(own)
        pose = np.full((len(fi), 3), np.nan)
        pose[:, 2] = roll_from_eyes(five)
        return Faces(
            frame_index=np.asarray(fi, np.int64),
            boxes=np.asarray(boxes, np.float64),
            scores=(1.0 / (1.0 + np.exp(-np.asarray(margins)))).astype(np.float32),
            landmarks5=five,
            landmarks=own,
            pose=pose,
            num_frames=len(items),
        )

    def close(self) -> None:
        self._detector = None
        self._predictor = None
