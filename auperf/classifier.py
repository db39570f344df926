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

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _arrays
from .backends.base import array_shape_dtype
from .detector import _boxes, _check_frames, _frame_index, to_five_points
from .errors import (
    ManifestError,
    NonFiniteError,
    OptionalDependencyError,
    ParameterError,
    SessionClosedError,
    SingularMatrixError,
    ValueRangeError,
)
from .manifest import Manifest

__all__ = ["DEFAULT_EXPRESSION_MODEL", "ExpressionClassifier", "ExpressionResult"]

_log = logging.getLogger("auperf")
_INVALID_MODES = ("raise", "mark")

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
        return ["face", "frame", "valid", "x0", "y0", "x1", "y1", "expression"] + [
            f"p_{n}" for n in self.names
        ]

    def to_records(self) -> list[dict[str, Any]]:
        """One dict per face with the keys of :meth:`columns` (plain Python values;
        ``expression`` is the class name, ``None`` for invalid faces)."""
        names = self.label_names
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
        try:
            import pandas as pd
        except ImportError:
            raise OptionalDependencyError(
                "to_pandas: pandas is not installed (pip install pandas); "
                "to_records() needs nothing extra"
            ) from None
        return pd.DataFrame(self.to_records(), columns=self.columns())


class ExpressionClassifier:
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
        self.manifest = models.load_manifest(DEFAULT_EXPRESSION_MODEL if model is None else model)
        _check_runnable(self.manifest)
        self.batch_size = int(batch_size)
        if providers is not None:
            request: str | list[str] = list(providers)
        elif backend == "auto" and self.manifest.method != "M0":
            request = [p for p in backends.AUTO_ORDER if not p.startswith("torch")]
        else:
            request = backend
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
        _log.info(
            "ExpressionClassifier: model %r, %s",
            self.manifest.name,
            self.session.describe().to_dict(),
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Class names, in column order."""
        return tuple(self.manifest.classes)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def describe(self) -> dict[str, Any]:
        """The model, batch size and the session's description."""
        return {
            "model": self.manifest.name,
            "manifest": str(self.manifest.source) if self.manifest.source else None,
            "classes": list(self.names),
            "batch_size": self.batch_size,
            "session": self.session.describe().to_dict(),
        }

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
        if self._closed:
            raise SessionClosedError("ExpressionClassifier: closed")
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
        c = len(self.names)
        probs = np.full((n, c), np.nan, dtype=np.float32)
        labels = np.full(n, -1, dtype=np.int64)
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
            p = self._run(frames, matrices[rows], fidx[rows], frames_order)
            probs[rows] = p
            labels[rows] = p.argmax(axis=1)
        return ExpressionResult(
            probabilities=probs,
            labels=labels,
            names=self.names,
            frame_index=fidx,
            boxes=boxes,
            valid=valid,
        )

    def _run(
        self, frames: Any, matrices: np.ndarray, fidx: np.ndarray, frames_order: str
    ) -> np.ndarray:
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
        logits = _arrays.to_host(self.session.run({inp.name: crops})[self._logits])
        return softmax(np.asarray(logits, dtype=np.float32))

    def close(self) -> None:
        """Close the backend session (idempotent)."""
        if not self._closed:
            self._closed = True
            self.session.close()

    def __enter__(self) -> ExpressionClassifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else self.session.describe().provider
        return f"<ExpressionClassifier {self.manifest.name!r} {state} batch_size={self.batch_size}>"


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
    inp = manifest.input
    if inp.channels != 3:
        raise ManifestError(f"input.channels: expected 3, got {inp.channels}")
    if inp.dtype == "uint8" and (any(m != 0 for m in inp.mean) or any(s != 1 for s in inp.std)):
        raise ManifestError(
            "input.mean/std: a uint8 input takes raw pixels; expected mean 0 and std 1"
        )
