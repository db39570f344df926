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

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._aligned import AlignedFaceModel
from .errors import ManifestError
from .manifest import Manifest

__all__ = ["Features", "FeatureResult", "AUTO_ORDER", "DEFAULT_MODEL_DIR"]

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
    return dims[0], dims[1]


class Features(AlignedFaceModel):
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

    default_model = DEFAULT_MODEL_DIR

    def check_manifest(self, manifest: Manifest) -> None:
        self.au_dim, self.pose_dim = _check_feature_model(manifest)

    def auto_providers(self, backend: str) -> str | list[str]:
        return list(AUTO_ORDER) if backend == "auto" else backend

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
        from ._arrays import to_host

        batch = self.align(frames, landmarks, frame_index, frames_order=frames_order)
        n = len(batch)
        phi = np.zeros((n, self.au_dim), dtype=np.float32)
        psi = np.zeros((n, self.pose_dim), dtype=np.float32)
        for rows in self.batches(batch):
            out = self.run_batch(batch, rows, frames_order)
            phi[rows] = to_host(out[AU_OUTPUT])
            psi[rows] = to_host(out[POSE_OUTPUT])
        return FeatureResult(phi, psi, batch.frame_index)
