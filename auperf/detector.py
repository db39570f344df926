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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _arrays, align
from .backends.base import array_shape_dtype
from .errors import (
    DTypeError,
    IndexRangeError,
    ManifestError,
    NonFiniteError,
    OptionalDependencyError,
    ParameterError,
    SessionClosedError,
    ShapeError,
    SingularMatrixError,
    ValueRangeError,
)
from .manifest import Manifest

__all__ = ["Detector", "DetectionResult", "to_five_points"]

_log = logging.getLogger("auperf")
_INVALID_MODES = ("raise", "mark")


def to_five_points(landmarks: Any) -> np.ndarray:
    """The 5 alignment points of every face (see the module's *Convention*).

    Args:
        landmarks: ``(N, 5, 2)`` (returned as float64) or ``(N, 68, 2)`` iBUG landmarks.

    Returns:
        ``(N, 5, 2)`` float64 in the :mod:`auperf.align` point order.

    Raises:
        ShapeError: another shape. DTypeError: not numbers.
    """
    lm = _arrays.to_host(landmarks) if _arrays.is_device_object(landmarks) else landmarks
    try:
        lm = np.asarray(lm)
    except Exception as exc:  # noqa: BLE001 - report what could not be converted
        raise DTypeError(f"landmarks: cannot be read as an array ({exc})") from None
    if lm.dtype.kind not in "fiu":
        raise DTypeError(f"landmarks: expected numbers, got dtype {lm.dtype}")
    lm = lm.astype(np.float64, copy=False)
    if lm.ndim != 3 or lm.shape[1:] not in ((5, 2), (68, 2)):
        raise ShapeError(f"landmarks: expected shape (N, 5, 2) or (N, 68, 2), got {lm.shape}")
    if lm.shape[1] == 5:
        return np.ascontiguousarray(lm)
    return align.five_points_from_68(lm)


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
        cols = ["face", "frame", "valid", "x0", "y0", "x1", "y1"]
        for i in self.au_ids:
            cols += [f"AU{i:02d}", f"AU{i:02d}_active"]
        return cols

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per face with the keys of :meth:`columns` (plain Python values)."""
        keys = [f"AU{i:02d}" for i in self.au_ids]
        rows = []
        for n in range(len(self)):
            row: dict[str, Any] = {
                "face": n,
                "frame": int(self.frame_index[n]),
                "valid": bool(self.valid[n]),
            }
            row.update(
                zip(("x0", "y0", "x1", "y1"), (float(v) for v in self.boxes[n]), strict=True)
            )
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
        try:
            import pandas as pd
        except ImportError:
            raise OptionalDependencyError(
                "to_pandas: pandas is not installed (pip install pandas); "
                "to_records() needs nothing extra"
            ) from None
        data: dict[str, Any] = {
            "face": np.arange(len(self), dtype=np.int64),
            "frame": self.frame_index,
            "valid": self.valid,
        }
        for k, name in enumerate(("x0", "y0", "x1", "y1")):
            data[name] = self.boxes[:, k]
        for j, i in enumerate(self.au_ids):
            data[f"AU{i:02d}"] = self.probabilities[:, j]
            data[f"AU{i:02d}_active"] = self.active[:, j]
        return pd.DataFrame(data, columns=self.columns())


class Detector:
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
        from . import backends, models

        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or (batch_size < 1)
        ):
            raise ParameterError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
        if providers is not None and backend != "auto":
            raise ParameterError(
                f"providers: give either backend ({backend!r}) or providers ({providers!r})"
            )
        if providers is not None and (isinstance(providers, str) or not providers):
            raise ParameterError(
                f"providers: expected a non-empty list of provider names, got {providers!r}"
            )
        self._closed = True
        self.manifest = models.load_manifest(model)
        _check_runnable(self.manifest)
        self.batch_size = int(batch_size)
        self._thresholds = _thresholds(thresholds, self.manifest)
        request = list(providers) if providers is not None else backend
        self.session = backends.open_session(self.manifest, request, backend_options)
        self._closed = False
        inp = self.manifest.input
        self._template = np.asarray(inp.alignment.points, dtype=np.float64)
        self._logits = self.manifest.postprocess.input
        if inp.dtype == "uint8":
            self._mean = self._std = None
        else:
            self._mean = [m / 255.0 for m in inp.mean]
            self._std = [s / 255.0 for s in inp.std]
        _log.info("Detector: model %r, %s", self.manifest.name, self.session.describe().to_dict())

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

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def describe(self) -> dict[str, Any]:
        """The model, batch size and the session's :class:`~auperf.backends.SessionInfo`."""
        return {
            "model": self.manifest.name,
            "manifest": str(self.manifest.source) if self.manifest.source else None,
            "batch_size": self.batch_size,
            "session": self.session.describe().to_dict(),
        }

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
        if self._closed:
            raise SessionClosedError("Detector: closed")
        if invalid not in _INVALID_MODES:
            raise ValueRangeError(
                f"invalid: expected one of {list(_INVALID_MODES)}, got {invalid!r}"
            )
        if frames_order not in ("RGB", "BGR"):
            raise ValueRangeError(f"frames_order: expected 'RGB' or 'BGR', got {frames_order!r}")
        frames = _check_frames(frames)
        num_frames = int(array_shape_dtype(frames, "frames")[0][0])
        points = to_five_points(landmarks)
        n = points.shape[0]
        fidx = _frame_index(frame_index, n, num_frames)

        num_aus = len(self.manifest.aus)
        probs = np.full((n, num_aus), np.nan, dtype=np.float32)
        active = np.zeros((n, num_aus), dtype=bool)
        boxes = np.full((n, 4), np.nan, dtype=np.float64)
        valid = np.isfinite(points).all(axis=(1, 2))
        if invalid == "raise" and not valid.all():
            bad = np.flatnonzero(~valid)
            raise NonFiniteError(
                f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) hold "
                "NaN or Inf coordinates"
            )
        from .align import estimate_similarity, invert_affine

        matrices = np.full((n, 2, 3), np.nan)
        if valid.any():
            m, ok = estimate_similarity(points[valid], self._template, return_status=True)
            matrices[valid] = m
            sub = np.flatnonzero(valid)
            if not ok.all():
                bad = sub[~ok]
                if invalid == "raise":
                    raise SingularMatrixError(
                        f"landmarks: faces {bad[:10].tolist()} (frames "
                        f"{fidx[bad][:10].tolist()}) have (nearly) coincident points"
                    )
                valid[bad] = False
        good = np.flatnonzero(valid)
        if good.size:
            boxes[good] = _boxes(invert_affine(matrices[good]), self.manifest.input.size)
        step = min(self.batch_size, self.session.max_batch_size or self.batch_size)
        for start in range(0, good.size, step):
            rows = good[start : start + step]
            p, a = self._run(frames, matrices[rows], fidx[rows], frames_order)
            probs[rows] = p
            active[rows] = a
        return DetectionResult(
            probabilities=probs,
            active=active,
            au_ids=tuple(self.manifest.au_ids),
            au_names=tuple(self.manifest.au_names),
            frame_index=fidx,
            boxes=boxes,
            valid=valid,
            thresholds=self._thresholds.copy(),
        )

    def _run(
        self, frames: Any, matrices: np.ndarray, fidx: np.ndarray, frames_order: str
    ) -> tuple[np.ndarray, np.ndarray]:
        from .ops import fuse_views, warp_faces

        inp = self.manifest.input
        dev = _arrays.device_array(frames, "frames")
        if dev is not None:
            m_arg = _arrays.to_device_like(matrices, dev)
            i_arg = _arrays.to_device_like(fidx, dev)
        else:
            m_arg, i_arg = matrices, fidx
        crops = warp_faces(
            frames,
            m_arg,
            i_arg,
            size=inp.size,
            mean=self._mean,
            std=self._std,
            input_order=frames_order,
            output_order=inp.colour_order,
            dtype=inp.dtype,
            layout=inp.layout,
        )
        if dev is not None and (
            not self.session.accepts_device_arrays or self.session.device == "cpu"
        ):
            crops = _arrays.to_host(crops)  # the session reads host memory
        logits = self.session.run({inp.name: crops})[self._logits]
        p, a = fuse_views(logits, self._thresholds)
        return _arrays.to_host(p), _arrays.to_host(a)

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the backend session (idempotent)."""
        if not self._closed:
            self._closed = True
            self.session.close()

    def __enter__(self) -> Detector:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.session.describe().provider
        return f"<Detector {self.manifest.name!r} {state} batch_size={self.batch_size}>"


def _check_runnable(manifest: Manifest) -> None:
    if manifest.task != "au_occurrence" or manifest.postprocess.kind != "fuse_views":
        raise ManifestError(
            f"task: the Detector runs au_occurrence models fused with fuse_views; "
            f"{manifest.name!r} is {manifest.task!r} with {manifest.postprocess.kind!r}"
        )
    inp = manifest.input
    if inp.channels != 3:
        raise ManifestError(f"input.channels: the Detector feeds 3 channels, got {inp.channels}")
    if inp.dtype == "uint8" and (any(m != 0 for m in inp.mean) or any(s != 1 for s in inp.std)):
        raise ManifestError(
            "input.mean/std: a uint8 input takes raw pixels; expected mean 0 and std 1"
        )


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


def _check_frames(frames: Any) -> Any:
    if not _arrays.is_device_object(frames) and not isinstance(frames, np.ndarray):
        raise DTypeError(
            f"frames: expected a uint8 NumPy array or CUDA array, got {type(frames).__name__}"
        )
    shape, dtype = array_shape_dtype(frames, "frames")
    if len(shape) == 3:
        frames = frames[None]
        shape = (1, *shape)
    if len(shape) != 4 or shape[3] != 3:
        raise ShapeError(f"frames: expected shape (B, H, W, 3) or (H, W, 3), got {shape}")
    if shape[1] < 1 or shape[2] < 1:
        raise ShapeError(f"frames: expected H, W >= 1, got {shape}")
    if dtype != "uint8":
        raise DTypeError(f"frames: expected uint8, got {dtype}")
    return frames


def _frame_index(frame_index: Any, n: int, num_frames: int) -> np.ndarray:
    if frame_index is None:
        if num_frames == 1:
            return np.zeros(n, dtype=np.int64)
        if n == num_frames:
            return np.arange(n, dtype=np.int64)
        raise ShapeError(
            f"frame_index: required when there are several frames (B={num_frames}) and "
            f"N={n} faces != B"
        )
    idx = _arrays.to_host(frame_index) if _arrays.is_device_object(frame_index) else frame_index
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"frame_index: expected integers, got dtype {idx.dtype}")
    if idx.shape != (n,):
        raise ShapeError(f"frame_index: expected shape ({n},) to match landmarks, got {idx.shape}")
    bad = np.flatnonzero((idx < 0) | (idx >= num_frames))
    if bad.size:
        raise IndexRangeError(
            f"frame_index: entry {int(bad[0])} is {int(idx[bad[0]])}, expected 0 <= index < "
            f"{num_frames}"
        )
    return idx.astype(np.int64)


def _boxes(dst_to_src: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Axis-aligned frame bounds of the crop outline ``[-0.5, w - 0.5] x [-0.5, h - 0.5]``."""
    h, w = size
    corners = np.array(
        [[-0.5, -0.5, 1.0], [w - 0.5, -0.5, 1.0], [-0.5, h - 0.5, 1.0], [w - 0.5, h - 0.5, 1.0]]
    )
    pts = np.einsum("nij,kj->nki", dst_to_src, corners)  # (N, 4, 2)
    return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
