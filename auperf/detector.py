"""AU detection from frames and landmarks: :class:`Detector`.

The pipeline, per batch of faces::

    landmarks (5 or 68 points) -> estimate_similarity (to the manifest's template)
      -> warp_faces (size, colour order, mean/std, layout, dtype of manifest.input)
      -> backend session (logits of both views, (B, 2, L))
      -> fuse_views (p = sigmoid(mean over views), active = p >= threshold)

Example::

    import auperf

    with auperf.Detector() as det:                  # shipped demo model, backend "auto"
        res = det.detect(frames, landmarks=lm5, frame_index=fi)
        res.probabilities, res.active, res.au_names, res.boxes, res.frame_index
        rows = res.to_records()

Convention:
    Frames are ``(B, H, W, 3)`` uint8 (or one ``(H, W, 3)`` frame), channels in
    ``frames_order`` (``"RGB"``; ``"BGR"`` for OpenCV frames). Landmarks are ``(x, y)`` in frame
    pixels, origin at the centre of the top-left pixel, x right, y down (as in
    :mod:`auperf.align`). Five points in the :mod:`auperf.align` order: eye on the image's
    left, eye on the image's right, nose tip, mouth corner image-left, mouth corner
    image-right. 68 points in the iBUG order are reduced to these five by
    :func:`auperf.align.five_points_from_68` (eye centres as eye-corner midpoints, then points
    30, 48 and 54), the rule the renderer's ground truth and so the shipped models follow.
    Boxes are ``(x0, y0, x1, y1)`` in frame pixels: the axis-aligned bounds of the
    region the model saw (the crop's outline mapped back through the alignment).

Thread safety:
    :meth:`Detector.detect` keeps no state between calls; one Detector may be shared by
    threads. Concurrent calls run in parallel where the backend's session is re-entrant
    (onnxruntime, torch without CUDA graphs) and are serialised by a lock inside the session
    otherwise (torch with CUDA graphs). :meth:`Detector.close` must not race ``detect``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._aligned import (
    FACE_COLUMNS,
    AlignedFaceModel,
    check_frames,
    check_image_input,
    crop_boxes,
    face_record,
    frame_index_of,
    import_pandas,
    to_five_points,
)
from .errors import ManifestError, ShapeError, ValueRangeError
from .manifest import Manifest

__all__ = ["Detector", "DetectionResult", "to_five_points"]

# Shared with the Triton and Ray integrations, which check and align the same way.
_check_frames = check_frames
_frame_index = frame_index_of
_boxes = crop_boxes


@dataclass(frozen=True)
class DetectionResult:
    """AU detections of ``N`` faces (NumPy arrays).

    Attributes:
        probabilities: ``(N, L)`` float32, fused AU probabilities; NaN for invalid faces.
        active: ``(N, L)`` bool, ``probabilities >= thresholds``; False for invalid faces.
        au_ids: ``(L,)`` FACS numbers, in column order.
        au_names: ``(L,)`` AU names, in column order.
        frame_index: ``(N,)`` int64, the frame each face came from.
        boxes: ``(N, 4)`` float64 ``(x0, y0, x1, y1)`` in frame pixels (see the module's
            *Convention*); NaN for invalid faces.
        valid: ``(N,)`` bool, False for faces whose landmarks were not finite or degenerate
            (only with ``invalid="mark"``; otherwise such faces raise).
        thresholds: ``(L,)`` float32, the thresholds that made ``active``.
    """

    probabilities: np.ndarray
    active: np.ndarray
    au_ids: tuple[int, ...]
    au_names: tuple[str, ...]
    frame_index: np.ndarray
    boxes: np.ndarray
    valid: np.ndarray
    thresholds: np.ndarray

    def __len__(self) -> int:
        return int(self.probabilities.shape[0])

    def columns(self) -> list[str]:
        """Column names of :meth:`to_records`: ``face, frame, valid, x0, y0, x1, y1``, then
        ``AU<id>`` (probability, ids zero-padded to two digits) and ``AU<id>_active`` per AU."""
        cols = list(FACE_COLUMNS)
        for i in self.au_ids:
            cols += [f"AU{i:02d}", f"AU{i:02d}_active"]
        return cols

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per face with the keys of :meth:`columns` (plain Python values)."""
        keys = [f"AU{i:02d}" for i in self.au_ids]
        rows = []
        for n in range(len(self)):
            row = face_record(n, self.frame_index, self.valid, self.boxes)
            for j, key in enumerate(keys):
                row[key] = float(self.probabilities[n, j])
                row[f"{key}_active"] = bool(self.active[n, j])
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the columns of :meth:`columns`, one row per face.

        Raises:
            OptionalDependencyError: pandas is not installed.
        """
        pd = import_pandas()
        data: dict[str, Any] = {
            "face": np.arange(len(self), dtype=np.int64),
            "frame": self.frame_index,
            "valid": self.valid,
        }
        for k, name in enumerate(FACE_COLUMNS[3:]):
            data[name] = self.boxes[:, k]
        for j, i in enumerate(self.au_ids):
            data[f"AU{i:02d}"] = self.probabilities[:, j]
            data[f"AU{i:02d}_active"] = self.active[:, j]
        return pd.DataFrame(data, columns=self.columns())


class Detector(AlignedFaceModel):
    """Detect AU occurrence in faces given by their landmarks.

    Args:
        model: the model: a folder holding one manifest, a manifest ``.json``, a loaded
            :class:`~auperf.manifest.Manifest`, or ``None`` for the shipped demo model
            (``auperf/models/demo/``).
        backend: ``"auto"`` or one provider name (see :mod:`auperf.backends`).
        providers: an ordered list of provider names, the first that loads is used (instead
            of ``backend``; give one or the other).
        batch_size: faces per backend run (>= 1).
        thresholds: a scalar or ``(L,)`` thresholds in [0, 1] replacing the manifest's.
        backend_options: options per backend family or provider name, e.g.
            ``{"onnxruntime": {"intra_op_num_threads": 2}, "torch": {"precision": "float16"}}``.

    Attributes:
        manifest: the model's manifest.
        session: the backend session.
        batch_size: faces per backend run.

    Raises:
        ModelNotFoundError: no model at ``model`` (for ``None``: the demo model is absent).
        ManifestError, ManifestVersionError: an invalid manifest, one from a newer auperf, or a
            model the Detector cannot run (it runs ``au_occurrence`` models fused with
            ``fuse_views``).
        BackendUnavailableError, UnknownProviderError: no requested provider loads here.
        ParameterError, ShapeError, ValueRangeError: bad arguments.
    """

    def __init__(
        self,
        model: str | Path | Manifest | None = None,
        backend: str = "auto",
        providers: Sequence[str] | None = None,
        batch_size: int = 64,
        thresholds: Any = None,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(model, backend, providers, batch_size, backend_options)
        try:
            self._thresholds = _thresholds(thresholds, self.manifest)
        except Exception:
            self.close()
            raise
        self._logits = self.manifest.postprocess.input

    def check_manifest(self, manifest: Manifest) -> None:
        _check_runnable(manifest)

    # -- properties ----------------------------------------------------------------------------
    @property
    def au_ids(self) -> list[int]:
        """FACS numbers of the AUs, in column order."""
        return self.manifest.au_ids

    @property
    def au_names(self) -> list[str]:
        """AU names, in column order."""
        return self.manifest.au_names

    @property
    def thresholds(self) -> np.ndarray:
        """``(L,)`` float32 thresholds in use (a copy)."""
        return self._thresholds.copy()

    # -- detection -----------------------------------------------------------------------------
    def detect(
        self,
        frames: Any,
        landmarks: Any,
        frame_index: Any = None,
        *,
        frames_order: str = "RGB",
        invalid: str = "raise",
    ) -> DetectionResult:
        """Detect AUs in ``N`` faces of ``B`` frames.

        Args:
            frames: ``(B, H, W, 3)`` uint8, or one ``(H, W, 3)`` frame; NumPy, or a torch/cupy
                CUDA array (warped on its device).
            landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels (see *Convention*).
            frame_index: ``(N,)`` integers, the frame of each face. Optional when ``B == 1``
                (every face from the one frame) or ``N == B`` (face ``i`` from frame ``i``).
            frames_order: channel order of ``frames``, ``"RGB"`` or ``"BGR"``.
            invalid: what faces with non-finite or degenerate landmarks do: ``"raise"``
                (default; a typed error naming the faces) or ``"mark"`` (``valid`` False, NaN
                probabilities and boxes, not active; the other faces are processed).

        Returns:
            A :class:`DetectionResult` (empty, with ``(0, L)`` arrays, for ``N == 0``).

        Raises:
            SessionClosedError: after :meth:`close`.
            ShapeError, DTypeError: frames or landmarks of the wrong shape or dtype,
                frame_index of the wrong shape.
            IndexRangeError: a frame_index entry outside ``[0, B)``.
            NonFiniteError: a face's landmarks hold NaN or Inf (with ``invalid="raise"``).
            SingularMatrixError: a face's points coincide (with ``invalid="raise"``).
            BackendError: the backend failed.
        """
        from ._arrays import to_host
        from .ops import fuse_views

        batch = self.align(
            frames, landmarks, frame_index, frames_order=frames_order, invalid=invalid
        )
        n, num_aus = len(batch), len(self.manifest.aus)
        probs = np.full((n, num_aus), np.nan, dtype=np.float32)
        active = np.zeros((n, num_aus), dtype=bool)
        for rows in self.batches(batch):
            logits = self.run_batch(batch, rows, frames_order)[self._logits]
            p, a = fuse_views(logits, self._thresholds)
            probs[rows] = to_host(p)
            active[rows] = to_host(a)
        return DetectionResult(
            probabilities=probs,
            active=active,
            au_ids=tuple(self.manifest.au_ids),
            au_names=tuple(self.manifest.au_names),
            frame_index=batch.frame_index,
            boxes=batch.boxes,
            valid=batch.valid,
            thresholds=self._thresholds.copy(),
        )


def _check_runnable(manifest: Manifest) -> None:
    if manifest.task != "au_occurrence" or manifest.postprocess.kind != "fuse_views":
        raise ManifestError(
            f"task: the Detector runs au_occurrence models fused with fuse_views; "
            f"{manifest.name!r} is {manifest.task!r} with {manifest.postprocess.kind!r}"
        )
    check_image_input(manifest, "the Detector")


def _thresholds(thresholds: Any, manifest: Manifest) -> np.ndarray:
    num_aus = len(manifest.aus)
    if thresholds is None:
        return np.asarray(manifest.thresholds, dtype=np.float32)
    try:
        t = np.asarray(thresholds, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueRangeError(f"thresholds: expected numbers, got {thresholds!r}") from None
    if t.ndim == 0:
        t = np.full(num_aus, float(t))
    if t.shape != (num_aus,):
        raise ShapeError(f"thresholds: expected a scalar or ({num_aus},) values, got {t.shape}")
    bad = np.flatnonzero(~((t >= 0) & (t <= 1)))
    if bad.size:
        raise ValueRangeError(
            f"thresholds: entry {int(bad[0])} is {float(t[bad[0]])}, expected a value in [0, 1]"
        )
    return t.astype(np.float32)
