"""The shared body of the models that run on aligned face crops.

:class:`auperf.Detector`, :class:`auperf.ExpressionClassifier` and :class:`auperf.Features`
all do the same front half, per batch of faces::

    landmarks (5 or 68 points) -> estimate_similarity (to the manifest's template)
      -> warp_faces (size, colour order, mean/std, layout, dtype of manifest.input)
      -> backend session

and differ only in which manifests they accept and what they make of the session's outputs.
:class:`AlignedFaceModel` holds that front half once: argument checks, the manifest and the
session, alignment with per-face validity, batching, warping (on the frames' device) and the
session's lifetime. Subclasses set :attr:`AlignedFaceModel.default_model`, implement
:meth:`AlignedFaceModel.check_manifest`, and post-process :meth:`AlignedFaceModel.run_batch`'s
outputs. Conventions (frames, landmarks, boxes) are those of :mod:`auperf.detector`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
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

__all__ = [
    "AlignedBatch",
    "align_batch",
    "AlignedFaceModel",
    "check_frames",
    "check_image_input",
    "FACE_COLUMNS",
    "crop_boxes",
    "face_record",
    "frame_index_of",
    "import_pandas",
    "to_five_points",
]

_log = logging.getLogger("auperf")
INVALID_MODES = ("raise", "mark")


def to_five_points(landmarks: Any) -> np.ndarray:
    """The 5 alignment points of every face.

    Args:
        landmarks: ``(N, 5, 2)`` (returned as float64) or ``(N, 68, 2)`` iBUG landmarks,
            reduced by :func:`auperf.align.five_points_from_68`.

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


@dataclass
class AlignedBatch:
    """Faces of one call, aligned.

    Attributes:
        frames: the frames as ``(B, H, W, 3)`` (a single frame gains the batch axis).
        frame_index: ``(N,)`` int64.
        matrices: ``(N, 2, 3)`` float64 frame-to-crop similarity transforms (NaN rows for
            invalid faces).
        valid: ``(N,)`` bool: finite landmarks whose points do not coincide.
        boxes: ``(N, 4)`` float64 ``(x0, y0, x1, y1)`` of each crop in frame pixels (NaN for
            invalid faces).
    """

    frames: Any
    frame_index: np.ndarray
    matrices: np.ndarray
    valid: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return int(self.frame_index.shape[0])


class AlignedFaceModel:
    """A model that runs on aligned crops of faces given by their landmarks (see the module).

    Args:
        model: a folder holding one manifest, a manifest ``.json``, a loaded
            :class:`~auperf.manifest.Manifest`, or ``None`` for :attr:`default_model`.
        backend: ``"auto"`` or one provider name (see :mod:`auperf.backends`).
        providers: an ordered list of provider names, the first that loads is used (instead
            of ``backend``; give one or the other).
        batch_size: faces per backend run (>= 1).
        backend_options: options per backend family or provider name.
    """

    #: The model loaded for ``model=None`` (``None``: :func:`auperf.models.default_model_dir`).
    default_model: Path | None = None

    def __init__(
        self,
        model: str | Path | Manifest | None = None,
        backend: str = "auto",
        providers: Sequence[str] | None = None,
        batch_size: int = 64,
        backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        from . import backends, models

        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
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
        if model is None and self.default_model is not None:
            model = self.default_model
        self.manifest = models.load_manifest(model)
        self.check_manifest(self.manifest)
        check_image_input(self.manifest, type(self).__name__)
        inp = self.manifest.input
        self.batch_size = int(batch_size)
        request: str | list[str] = (
            list(providers) if providers is not None else self.auto_providers(backend)
        )
        self.session = backends.open_session(self.manifest, request, backend_options)
        self._closed = False
        self._template = np.asarray(inp.alignment.points, dtype=np.float64)
        if inp.dtype == "uint8":
            self._mean = self._std = None
        else:
            self._mean = [m / 255.0 for m in inp.mean]
            self._std = [s / 255.0 for s in inp.std]
        _log.info(
            "%s: model %r, %s",
            type(self).__name__,
            self.manifest.name,
            self.session.describe().to_dict(),
        )

    # -- what subclasses decide ----------------------------------------------------------------
    def check_manifest(self, manifest: Manifest) -> None:
        """Raise :class:`~auperf.errors.ManifestError` unless this class can run ``manifest``
        (task, postprocessing, outputs). Channels and uint8 normalisation are checked here."""
        raise NotImplementedError

    def auto_providers(self, backend: str) -> str | list[str]:
        """The provider request for ``backend`` (a name, or ``"auto"``)."""
        return backend

    # -- shared --------------------------------------------------------------------------------
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

    def align(
        self,
        frames: Any,
        landmarks: Any,
        frame_index: Any,
        *,
        frames_order: str = "RGB",
        invalid: str = "raise",
    ) -> AlignedBatch:
        """Check the inputs and align every face (see :class:`AlignedBatch`).

        Raises:
            SessionClosedError: after :meth:`close`.
            ValueRangeError: an unknown ``invalid`` or ``frames_order``.
            ShapeError, DTypeError, IndexRangeError: bad frames, landmarks or frame_index.
            NonFiniteError, SingularMatrixError: bad landmarks with ``invalid="raise"``.
        """
        if self._closed:
            raise SessionClosedError(f"{type(self).__name__}: closed")
        return align_batch(
            frames,
            landmarks,
            frame_index,
            self._template,
            self.manifest.input.size,
            frames_order=frames_order,
            invalid=invalid,
        )

    def batches(self, batch: AlignedBatch) -> Iterator[np.ndarray]:
        """Row indices of the valid faces, in runs of at most the batch size the session takes."""
        good = np.flatnonzero(batch.valid)
        step = min(self.batch_size, self.session.max_batch_size or self.batch_size)
        for start in range(0, good.size, step):
            yield good[start : start + step]

    def run_batch(
        self, batch: AlignedBatch, rows: np.ndarray, frames_order: str = "RGB"
    ) -> dict[str, Any]:
        """Warp faces ``rows`` of ``batch`` and run the session on them.

        Returns:
            The session's outputs by name, on the session's device (host NumPy on the CPU).
        """
        from .ops import warp_faces

        inp = self.manifest.input
        frames = batch.frames
        matrices, fidx = batch.matrices[rows], batch.frame_index[rows]
        dev = _arrays.device_array(frames, "frames")
        if dev is not None:
            matrices = _arrays.to_device_like(matrices, dev)
            fidx = _arrays.to_device_like(fidx, dev)
        crops = warp_faces(
            frames,
            matrices,
            fidx,
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
        return self.session.run({inp.name: crops})

    # -- lifetime ------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the backend session (idempotent)."""
        if not self._closed:
            self._closed = True
            self.session.close()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.session.describe().provider
        return (
            f"<{type(self).__name__} {self.manifest.name!r} {state} batch_size={self.batch_size}>"
        )


def align_batch(
    frames: Any,
    landmarks: Any,
    frame_index: Any,
    template: np.ndarray,
    size: tuple[int, int],
    *,
    frames_order: str = "RGB",
    invalid: str = "raise",
) -> AlignedBatch:
    """Check frames, landmarks and frame_index and align every face to ``template``.

    Args:
        frames: ``(B, H, W, 3)`` or ``(H, W, 3)`` uint8 (NumPy or a CUDA array).
        landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels.
        frame_index: ``(N,)`` integers, or ``None`` (see :func:`frame_index_of`).
        template: ``(5, 2)`` crop-pixel points of the model's alignment.
        size: crop ``(height, width)``, for the boxes.
        frames_order: ``"RGB"`` or ``"BGR"`` (only checked here).
        invalid: ``"raise"`` or ``"mark"`` for faces with non-finite or coincident points.

    Raises:
        ValueRangeError: an unknown ``invalid`` or ``frames_order``.
        ShapeError, DTypeError, IndexRangeError: bad frames, landmarks or frame_index.
        NonFiniteError, SingularMatrixError: bad landmarks with ``invalid="raise"``.
    """
    if invalid not in INVALID_MODES:
        raise ValueRangeError(f"invalid: expected one of {list(INVALID_MODES)}, got {invalid!r}")
    if frames_order not in ("RGB", "BGR"):
        raise ValueRangeError(f"frames_order: expected 'RGB' or 'BGR', got {frames_order!r}")
    frames = check_frames(frames)
    num_frames = int(array_shape_dtype(frames, "frames")[0][0])
    points = to_five_points(landmarks)
    n = points.shape[0]
    fidx = frame_index_of(frame_index, n, num_frames)
    valid = np.isfinite(points).all(axis=(1, 2))
    if invalid == "raise" and not valid.all():
        bad = np.flatnonzero(~valid)
        raise NonFiniteError(
            f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) hold "
            "NaN or Inf coordinates"
        )
    matrices = np.full((n, 2, 3), np.nan)
    if valid.any():
        m, ok = align.estimate_similarity(points[valid], template, return_status=True)
        matrices[valid] = m
        if not ok.all():
            bad = np.flatnonzero(valid)[~ok]
            if invalid == "raise":
                raise SingularMatrixError(
                    f"landmarks: faces {bad[:10].tolist()} (frames "
                    f"{fidx[bad][:10].tolist()}) have (nearly) coincident points"
                )
            valid[bad] = False
    boxes = np.full((n, 4), np.nan, dtype=np.float64)
    good = np.flatnonzero(valid)
    if good.size:
        boxes[good] = crop_boxes(align.invert_affine(matrices[good]), size)
    return AlignedBatch(frames, fidx, matrices, valid, boxes)


#: The per-face columns every result table starts with.
FACE_COLUMNS: tuple[str, ...] = ("face", "frame", "valid", "x0", "y0", "x1", "y1")


def face_record(n: int, frame_index: np.ndarray, valid: np.ndarray, boxes: np.ndarray) -> dict:
    """The :data:`FACE_COLUMNS` of face ``n`` as plain Python values."""
    row: dict[str, Any] = {"face": n, "frame": int(frame_index[n]), "valid": bool(valid[n])}
    row.update(zip(FACE_COLUMNS[3:], (float(v) for v in boxes[n]), strict=True))
    return row


def import_pandas() -> Any:
    """``pandas``, or :class:`~auperf.errors.OptionalDependencyError` saying how to get it."""
    try:
        import pandas
    except ImportError:
        raise OptionalDependencyError(
            "to_pandas: pandas is not installed (pip install pandas); "
            "to_records() needs nothing extra"
        ) from None
    return pandas


def check_image_input(manifest: Manifest, who: str) -> None:
    """Raise :class:`~auperf.errors.ManifestError` unless the manifest's input is a 3-channel
    image that :func:`auperf.ops.warp_faces` can produce (uint8 inputs take raw pixels)."""
    inp = manifest.input
    if inp.channels != 3:
        raise ManifestError(f"input.channels: {who} feeds 3 channels, got {inp.channels}")
    if inp.dtype == "uint8" and (any(m != 0 for m in inp.mean) or any(s != 1 for s in inp.std)):
        raise ManifestError(
            "input.mean/std: a uint8 input takes raw pixels; expected mean 0 and std 1"
        )


def check_frames(frames: Any) -> Any:
    """``frames`` as ``(B, H, W, 3)`` uint8 (NumPy or a CUDA array), or a typed error."""
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


def frame_index_of(frame_index: Any, n: int, num_frames: int) -> np.ndarray:
    """``(N,)`` int64 frame of each face; ``None`` means all from the one frame (``B == 1``)
    or face ``i`` from frame ``i`` (``N == B``)."""
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


def crop_boxes(dst_to_src: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Axis-aligned frame bounds of the crop outline ``[-0.5, w - 0.5] x [-0.5, h - 0.5]``."""
    h, w = size
    corners = np.array(
        [[-0.5, -0.5, 1.0], [w - 0.5, -0.5, 1.0], [-0.5, h - 0.5, 1.0], [w - 0.5, h - 0.5, 1.0]]
    )
    pts = np.einsum("nij,kj->nki", dst_to_src, corners)  # (N, 4, 2)
    return np.concatenate([pts.min(axis=1), pts.max(axis=1)], axis=1)
