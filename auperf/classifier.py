"""Expression classification from frames and landmarks: :class:`ExpressionClassifier`.

The pipeline, per batch of faces (the same front half as :class:`auperf.Detector`)::

    landmarks (5 or 68 points) -> estimate_similarity (to the manifest's template)
      -> warp_faces (size, colour order, mean/std, layout, dtype of manifest.input)
      -> backend session (class logits, (B, C))
      -> softmax over the classes (probabilities), arg max (labels)

Example::

    import auperf

    with auperf.ExpressionClassifier() as clf:      # shipped M2 demo model, backend "auto"
        res = clf.classify(frames, landmarks=lm5, frame_index=fi)
        res.probabilities, res.labels, res.names, res.frame_index
        rows = res.to_records()

Convention:
    As in :mod:`auperf.detector`: frames ``(B, H, W, 3)`` uint8 (or one ``(H, W, 3)`` frame)
    in ``frames_order``; landmarks ``(x, y)`` in frame pixels, origin at the centre of the
    top-left pixel, x right, y down; 5 points in the :mod:`auperf.align` order or 68 iBUG
    points (reduced by :func:`auperf.align.five_points_from_68`). Boxes are
    ``(x0, y0, x1, y1)`` in frame pixels, the bounds of the region the model saw. Class
    indices follow the manifest's ``classes`` (for the shipped models, the order of
    :data:`auperf.labels.EXPRESSIONS`).

Backends: ``backend="auto"`` tries :data:`auperf.backends.AUTO_ORDER` without the torch
providers, whose network builder knows M0 graphs only; an explicit ``"torch-cpu"`` or
``"torch-cuda"`` request is passed on (and refused by that backend for a non-M0 model).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._aligned import FACE_COLUMNS, AlignedFaceModel, face_record, import_pandas
from .errors import ManifestError
from .manifest import Manifest

__all__ = ["DEFAULT_EXPRESSION_MODEL", "ExpressionClassifier", "ExpressionResult"]

#: The shipped demo expression model's folder (``auperf/models/m2-demo/``), the default model.
DEFAULT_EXPRESSION_MODEL = Path(__file__).resolve().parent / "models" / "m2-demo"


@dataclass(frozen=True)
class ExpressionResult:
    """Expression classes of ``N`` faces (NumPy arrays).

    Attributes:
        probabilities: ``(N, C)`` float32 class probabilities (rows sum to 1); NaN for invalid
            faces.
        labels: ``(N,)`` int64 arg max class; -1 for invalid faces.
        names: ``(C,)`` class names, in column order.
        frame_index: ``(N,)`` int64, the frame each face came from.
        boxes: ``(N, 4)`` float64 ``(x0, y0, x1, y1)`` in frame pixels; NaN for invalid faces.
        valid: ``(N,)`` bool, False for faces whose landmarks were not finite or degenerate
            (only with ``invalid="mark"``).
    """

    probabilities: np.ndarray
    labels: np.ndarray
    names: tuple[str, ...]
    frame_index: np.ndarray
    boxes: np.ndarray
    valid: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def label_names(self) -> list[str | None]:
        """The class name of every face (``None`` for invalid faces)."""
        return [self.names[i] if i >= 0 else None for i in self.labels.tolist()]

    def columns(self) -> list[str]:
        """Column names of :meth:`to_records`: ``face, frame, valid, x0, y0, x1, y1,
        expression``, then one probability column ``p_<class>`` per class."""
        return [*FACE_COLUMNS, "expression"] + [f"p_{n}" for n in self.names]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per face with the keys of :meth:`columns` (plain Python values;
        ``expression`` is the class name, ``None`` for invalid faces)."""
        names = self.label_names
        rows = []
        for n in range(len(self)):
            row = face_record(n, self.frame_index, self.valid, self.boxes)
            row["expression"] = names[n]
            for j, c in enumerate(self.names):
                row[f"p_{c}"] = float(self.probabilities[n, j])
            rows.append(row)
        return rows

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with the columns of :meth:`columns`.

        Raises:
            OptionalDependencyError: pandas is not installed.
        """
        return import_pandas().DataFrame(self.to_records(), columns=self.columns())


class ExpressionClassifier(AlignedFaceModel):
    """Classify the facial expression of faces given by their landmarks.

    Args:
        model: a folder holding one manifest, a manifest ``.json``, a loaded
            :class:`~auperf.manifest.Manifest`, or ``None`` for the shipped demo model
            (:data:`DEFAULT_EXPRESSION_MODEL`).
        backend: ``"auto"`` or one provider name (see :mod:`auperf.backends` and the module
            docstring).
        providers: an ordered list of provider names (instead of ``backend``).
        batch_size: faces per backend run (>= 1).
        backend_options: options per backend family or provider name.

    Attributes:
        manifest: the model's manifest. session: the backend session. batch_size: as given.

    Raises:
        ModelNotFoundError: no model at ``model``.
        ManifestError: the manifest is not an ``expression`` model with ``softmax``
            postprocessing, ``classes`` and a ``(batch, C)`` output.
        BackendUnavailableError, UnknownProviderError: no requested provider loads here.
        ParameterError: bad arguments.
    """

    default_model = DEFAULT_EXPRESSION_MODEL

    def check_manifest(self, manifest: Manifest) -> None:
        _check_runnable(manifest)

    def auto_providers(self, backend: str) -> str | list[str]:
        from . import backends

        if backend == "auto" and self.manifest.method != "M0":
            return [p for p in backends.AUTO_ORDER if not p.startswith("torch")]
        return backend

    @property
    def names(self) -> tuple[str, ...]:
        """Class names, in column order."""
        return tuple(self.manifest.classes)

    def describe(self) -> dict[str, Any]:
        """The model, classes, batch size and the session's description."""
        return {**super().describe(), "classes": list(self.names)}

    def classify(
        self,
        frames: Any,
        landmarks: Any,
        frame_index: Any = None,
        *,
        frames_order: str = "RGB",
        invalid: str = "raise",
    ) -> ExpressionResult:
        """Classify ``N`` faces of ``B`` frames.

        Args:
            frames: ``(B, H, W, 3)`` uint8, or one ``(H, W, 3)`` frame; NumPy or a CUDA array.
            landmarks: ``(N, 5, 2)`` or ``(N, 68, 2)`` in frame pixels (see *Convention*).
            frame_index: ``(N,)`` integers, the frame of each face; optional when ``B == 1``
                or ``N == B``.
            frames_order: ``"RGB"`` or ``"BGR"``.
            invalid: ``"raise"`` (default) or ``"mark"`` for faces with non-finite or
                degenerate landmarks (as :meth:`auperf.Detector.detect`).

        Returns:
            An :class:`ExpressionResult` (with ``(0, C)`` arrays for ``N == 0``).

        Raises:
            SessionClosedError: after :meth:`close`.
            ShapeError, DTypeError: frames, landmarks or frame_index of the wrong shape/dtype.
            IndexRangeError: a frame_index entry outside ``[0, B)``.
            NonFiniteError, SingularMatrixError: bad landmarks with ``invalid="raise"``.
            ValueRangeError: an unknown ``invalid`` or ``frames_order``.
            BackendError: the backend failed.
        """
        from ._arrays import to_host

        batch = self.align(
            frames, landmarks, frame_index, frames_order=frames_order, invalid=invalid
        )
        n = len(batch)
        probs = np.full((n, len(self.names)), np.nan, dtype=np.float32)
        labels = np.full(n, -1, dtype=np.int64)
        for rows in self.batches(batch):
            logits = to_host(self.run_batch(batch, rows, frames_order)[self._logits])
            p = softmax(np.asarray(logits, dtype=np.float32))
            probs[rows] = p
            labels[rows] = p.argmax(axis=1)
        return ExpressionResult(
            probabilities=probs,
            labels=labels,
            names=self.names,
            frame_index=batch.frame_index,
            boxes=batch.boxes,
            valid=batch.valid,
        )

    @property
    def _logits(self) -> str:
        return self.manifest.postprocess.input


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits, float32, computed in float64 after subtracting
    each row's maximum."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _check_runnable(manifest: Manifest) -> None:
    if manifest.task != "expression" or manifest.postprocess.kind != "softmax":
        raise ManifestError(
            "task: the ExpressionClassifier runs expression models with softmax postprocessing; "
            f"{manifest.name!r} is {manifest.task!r} with {manifest.postprocess.kind!r}"
        )
    if not manifest.classes or len(manifest.classes) < 2:
        raise ManifestError(
            f"classes: expected at least 2 class names, got {list(manifest.classes)}"
        )
    shape = manifest.output(manifest.postprocess.input).shape
    if len(shape) != 2 or shape[1] != len(manifest.classes):
        raise ManifestError(
            f"outputs: {manifest.postprocess.input!r} must have shape (batch, "
            f"{len(manifest.classes)}) for {len(manifest.classes)} classes, it has {list(shape)}"
        )
