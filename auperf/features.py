"""Self-supervised face features from frames and landmarks: :class:`Features`.

The pipeline, per batch of faces (the same front half as :class:`auperf.Detector`)::

    landmarks (5 or 68 points) -> estimate_similarity (to the manifest's template)
      -> warp_faces (size, colour order, mean/std, layout, dtype of manifest.input)
      -> backend session (outputs "au_embedding" (B, D) and "pose_embedding" (B, D'))

The default model is the shipped M4 encoder (``auperf/models/m4-demo``, a Twin-Cycle
Autoencoder trained on rendered video without labels; read its ``MODEL_CARD.md``). Any model
whose manifest has task ``features`` and the two outputs above runs.

Example::

    import auperf

    with auperf.Features() as fx:
        res = fx.extract(frames, landmarks, frame_index=fi)
        res.au_embedding.shape, res.pose_embedding.shape      # (N, 256), (N, 256)

Convention:
    As in :mod:`auperf.detector`: frames ``(B, H, W, 3)`` uint8 (or one ``(H, W, 3)`` frame)
    in ``frames_order`` (``"RGB"`` or ``"BGR"``); landmarks ``(x, y)`` in frame pixels, origin
    at the centre of the top-left pixel, x right, y down, 5 points in the :mod:`auperf.align`
    order or 68 iBUG points (reduced by :func:`auperf.align.five_points_from_68`).

Backends: ``backend="auto"`` tries :data:`AUTO_ORDER` (``onnxruntime-cuda``, then
``onnxruntime-cpu``). The torch backend builds M0 networks only and refuses feature models with
a :class:`~auperf.errors.ManifestError`; TensorRT engines are used when asked for by name.

Thread safety: :meth:`Features.extract` keeps no state between calls (as ``Detector.detect``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _arrays
from .backends.base import array_shape_dtype
from .detector import _check_frames, _frame_index, to_five_points
from .errors import (
    ManifestError,
    NonFiniteError,
    ParameterError,
    SessionClosedError,
    SingularMatrixError,
    ValueRangeError,
)
from .manifest import Manifest

__all__ = ["Features", "FeatureResult", "AUTO_ORDER", "DEFAULT_MODEL_DIR"]

_log = logging.getLogger("auperf")
#: Providers ``backend="auto"`` tries, in order.
AUTO_ORDER: tuple[str, ...] = ("onnxruntime-cuda", "onnxruntime-cpu")
#: The shipped M4 encoder.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "m4-demo"
AU_OUTPUT = "au_embedding"
POSE_OUTPUT = "pose_embedding"


@dataclass(frozen=True)
class FeatureResult:
    """Embeddings of ``N`` faces (NumPy arrays).

    Attributes:
        au_embedding: ``(N, D)`` float32, the AU embedding ``phi``.
        pose_embedding: ``(N, D')`` float32, the pose embedding ``psi``.
        frame_index: ``(N,)`` int64, the frame each face came from.
    """

    au_embedding: np.ndarray
    pose_embedding: np.ndarray
    frame_index: np.ndarray

    def __len__(self) -> int:
        return int(self.au_embedding.shape[0])


def _check_feature_model(m: Manifest) -> tuple[int, int]:
    if m.task != "features":
        raise ManifestError(
            f"task: Features runs models of task 'features'; {m.name!r} is {m.task!r}"
        )
    dims = []
    for name in (AU_OUTPUT, POSE_OUTPUT):
        shape = m.output(name).shape
        if len(shape) != 2 or not isinstance(shape[1], int):
            raise ManifestError(
                f"outputs: {name!r} must have shape (batch, D) with a fixed D, got {list(shape)}"
            )
        dims.append(int(shape[1]))
    inp = m.input
    if inp.channels != 3:
        raise ManifestError(f"input.channels: Features feeds 3 channels, got {inp.channels}")
    if inp.dtype == "uint8" and (any(v != 0 for v in inp.mean) or any(s != 1 for s in inp.std)):
        raise ManifestError(
            "input.mean/std: a uint8 input takes raw pixels; expected mean 0 and std 1"
        )
    return dims[0], dims[1]


class Features:
    """Extract AU and pose embeddings of faces given by their landmarks.

    Args:
        model: a folder holding one manifest, a manifest ``.json``, a loaded
            :class:`~auperf.manifest.Manifest`, or ``None`` for :data:`DEFAULT_MODEL_DIR`.
        backend: ``"auto"`` (:data:`AUTO_ORDER`) or one provider name.
        providers: an ordered provider list instead of ``backend``.
        batch_size: faces per backend run (>= 1).
        backend_options: options per backend family or provider name.

    Raises:
        ModelNotFoundError: no model at ``model``.
        ManifestError: not a ``features`` model with ``au_embedding`` and ``pose_embedding``.
        BackendUnavailableError, UnknownProviderError: no requested provider loads here.
        ParameterError: bad arguments.
    """

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
        self.manifest = models.load_manifest(DEFAULT_MODEL_DIR if model is None else model)
        self.au_dim, self.pose_dim = _check_feature_model(self.manifest)
        self.batch_size = int(batch_size)
        if providers is not None:
            request: Any = list(providers)
        elif backend == "auto":
            request = list(AUTO_ORDER)
        else:
            request = backend
        self.session = backends.open_session(self.manifest, request, backend_options)
        self._closed = False
        inp = self.manifest.input
        self._template = np.asarray(inp.alignment.points, dtype=np.float64)
        if inp.dtype == "uint8":
            self._mean = self._std = None
        else:
            self._mean = [v / 255.0 for v in inp.mean]
            self._std = [s / 255.0 for s in inp.std]
        _log.info("Features: model %r, %s", self.manifest.name, self.session.describe().to_dict())

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def extract(
        self,
        frames: Any,
        landmarks: Any,
        frame_index: Any = None,
        *,
        frames_order: str = "RGB",
    ) -> FeatureResult:
        """Embeddings of ``N`` faces of ``B`` frames.

        Args:
            frames: ``(B, H, W, 3)`` uint8 or one ``(H, W, 3)`` frame (NumPy or CUDA array).
            landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels (see *Convention*).
            frame_index: ``(N,)`` integers, the frame of each face; optional when ``B == 1``
                or ``N == B``.
            frames_order: ``"RGB"`` or ``"BGR"``.

        Returns:
            A :class:`FeatureResult` (``(0, D)`` arrays for ``N == 0``).

        Raises:
            SessionClosedError: after :meth:`close`.
            ShapeError, DTypeError: frames, landmarks or frame_index of the wrong shape/dtype.
            IndexRangeError: a frame_index entry outside ``[0, B)``.
            NonFiniteError: a face's landmarks hold NaN or Inf.
            SingularMatrixError: a face's points (nearly) coincide.
            ValueRangeError: ``frames_order`` is not ``"RGB"`` or ``"BGR"``.
        """
        if self._closed:
            raise SessionClosedError("Features: closed")
        if frames_order not in ("RGB", "BGR"):
            raise ValueRangeError(f"frames_order: expected 'RGB' or 'BGR', got {frames_order!r}")
        frames = _check_frames(frames)
        num_frames = int(array_shape_dtype(frames, "frames")[0][0])
        points = to_five_points(landmarks)
        n = points.shape[0]
        fidx = _frame_index(frame_index, n, num_frames)
        bad = np.flatnonzero(~np.isfinite(points).all(axis=(1, 2)))
        if bad.size:
            raise NonFiniteError(
                f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) hold "
                "NaN or Inf coordinates"
            )
        phi = np.zeros((n, self.au_dim), dtype=np.float32)
        psi = np.zeros((n, self.pose_dim), dtype=np.float32)
        if n == 0:
            return FeatureResult(phi, psi, fidx)
        from .align import estimate_similarity

        matrices, ok = estimate_similarity(points, self._template, return_status=True)
        if not np.all(ok):
            bad = np.flatnonzero(~np.asarray(ok))
            raise SingularMatrixError(
                f"landmarks: faces {bad[:10].tolist()} (frames {fidx[bad][:10].tolist()}) have "
                "(nearly) coincident points"
            )
        matrices = np.asarray(matrices)
        step = min(self.batch_size, self.session.max_batch_size or self.batch_size)
        for start in range(0, n, step):
            rows = slice(start, start + step)
            a, p = self._run(frames, matrices[rows], fidx[rows], frames_order)
            phi[rows] = a
            psi[rows] = p
        return FeatureResult(phi, psi, fidx)

    def _run(
        self, frames: Any, matrices: np.ndarray, fidx: np.ndarray, frames_order: str
    ) -> tuple[np.ndarray, np.ndarray]:
        from .ops import warp_faces

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
            crops = _arrays.to_host(crops)
        out = self.session.run({inp.name: crops})
        return _arrays.to_host(out[AU_OUTPUT]), _arrays.to_host(out[POSE_OUTPUT])

    def close(self) -> None:
        """Close the backend session (idempotent)."""
        if not self._closed:
            self._closed = True
            self.session.close()

    def __enter__(self) -> Features:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.session.describe().provider
        return f"<Features {self.manifest.name!r} {state} batch_size={self.batch_size}>"
