"""AU pseudo-labels from MediaPipe's blendshapes: the teacher of M0's inaccurate set.

MediaPipe's Face Landmarker scores 52 ARKit-style blendshapes per face, each in [0, 1]. Many
of them are the visible effect of one FACS action unit, so a per-AU score can be read off
them (:data:`BLENDSHAPE_TO_AU`), and a per-AU threshold turns the score into a label. AUs with
no matching blendshape are *unknown*, never negative: their label is ``-1``, which every M0
loss ignores (:func:`training.m0.losses.masked_bce_with_logits`).

The mapping (bilateral blendshapes are averaged over the left and right side)::

    AU1  inner brow raiser     browInnerUp
    AU2  outer brow raiser     browOuterUpLeft, browOuterUpRight
    AU4  brow lowerer          browDownLeft, browDownRight
    AU6  cheek raiser          cheekSquintLeft, cheekSquintRight
    AU7  lid tightener         eyeSquintLeft, eyeSquintRight
    AU9  nose wrinkler         noseSneerLeft, noseSneerRight
    AU10 upper lip raiser      mouthUpperUpLeft, mouthUpperUpRight
    AU12 lip corner puller     mouthSmileLeft, mouthSmileRight
    AU14 dimpler               mouthDimpleLeft, mouthDimpleRight
    AU15 lip corner depressor  mouthFrownLeft, mouthFrownRight
    AU17 chin raiser           mouthShrugLower
    AU20 lip stretcher         mouthStretchLeft, mouthStretchRight
    AU24 lip pressor           mouthPressLeft, mouthPressRight
    AU25 lips part             jawOpen (lips part whenever the jaw opens visibly)
    AU26 jaw drop              jawOpen
    AU43 eyes closed           eyeBlinkLeft, eyeBlinkRight

AU23 (lip tightener) has no blendshape of its own (mouthPress and mouthPucker describe other
movements), so it stays unknown.

Thresholds: :data:`DEFAULT_THRESHOLDS` are placeholders at 0.5 until calibrated;
:func:`calibrate_thresholds` picks, per AU, the threshold that maximises F1 against faces whose
AUs are known (rendered faces), and :class:`Teacher` takes the result.

Calibration shipped with auperf: ``auperf/models/teacher_thresholds.json``, written by
``python -m training.experiments.teacher_calibration`` (rendered faces, thresholds fitted on
half the identities and scored on the other half). It lists the *reliable* AUs (held-out ROC
AUC at least 0.6 on rendered faces); :meth:`Teacher.calibrated` uses its thresholds and labels
every other AU unknown. See ``docs/teacher.md`` and ``training/results/teacher/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DTypeError, ModelNotFoundError, ParameterError, ShapeError, ValueRangeError

__all__ = [
    "BLENDSHAPE_NAMES",
    "BLENDSHAPE_TO_AU",
    "CALIBRATION_FILE",
    "DEFAULT_THRESHOLDS",
    "UNKNOWN",
    "Teacher",
    "TeacherLabels",
    "au_scores",
    "calibrate_thresholds",
    "load_calibration",
]

#: Label value of an AU the teacher cannot see.
UNKNOWN = -1

#: MediaPipe Face Landmarker's blendshape categories, in its output order.
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "eyeBlinkLeft",
    "eyeBlinkRight",
    "eyeLookDownLeft",
    "eyeLookDownRight",
    "eyeLookInLeft",
    "eyeLookInRight",
    "eyeLookOutLeft",
    "eyeLookOutRight",
    "eyeLookUpLeft",
    "eyeLookUpRight",
    "eyeSquintLeft",
    "eyeSquintRight",
    "eyeWideLeft",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawOpen",
    "jawRight",
    "mouthClose",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthFunnel",
    "mouthLeft",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthPucker",
    "mouthRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "noseSneerLeft",
    "noseSneerRight",
)

#: FACS AU number -> the blendshapes whose mean is that AU's score.
BLENDSHAPE_TO_AU: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp",),
    2: ("browOuterUpLeft", "browOuterUpRight"),
    4: ("browDownLeft", "browDownRight"),
    6: ("cheekSquintLeft", "cheekSquintRight"),
    7: ("eyeSquintLeft", "eyeSquintRight"),
    9: ("noseSneerLeft", "noseSneerRight"),
    10: ("mouthUpperUpLeft", "mouthUpperUpRight"),
    12: ("mouthSmileLeft", "mouthSmileRight"),
    14: ("mouthDimpleLeft", "mouthDimpleRight"),
    15: ("mouthFrownLeft", "mouthFrownRight"),
    17: ("mouthShrugLower",),
    20: ("mouthStretchLeft", "mouthStretchRight"),
    24: ("mouthPressLeft", "mouthPressRight"),
    25: ("jawOpen",),
    26: ("jawOpen",),
    43: ("eyeBlinkLeft", "eyeBlinkRight"),
}

#: Uncalibrated thresholds (0.5 for every mapped AU).
DEFAULT_THRESHOLDS: dict[int, float] = dict.fromkeys(BLENDSHAPE_TO_AU, 0.5)

_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}

#: The calibration shipped with auperf (see the module docstring).
CALIBRATION_FILE = Path(__file__).resolve().parent / "models" / "teacher_thresholds.json"


def load_calibration(path: str | Path | None = None) -> dict[str, Any]:
    """Read a teacher calibration file.

    Args:
        path: the JSON file (default: :data:`CALIBRATION_FILE`).

    Returns:
        ``{"thresholds": {au: float}, "reliable_aus": (au, ...), "unreliable_aus": (au, ...),
        "provenance": str}`` with integer AU keys.

    Raises:
        ModelNotFoundError: no such file. ParameterError: the file is not a calibration (the
            offending key is named).
    """
    p = Path(path) if path is not None else CALIBRATION_FILE
    if not p.is_file():
        raise ModelNotFoundError(f"teacher calibration file not found: {p}")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"{p}: not a readable JSON file ({exc})") from None
    for key in ("thresholds", "reliable_aus"):
        if key not in data:
            raise ParameterError(f"{p}: missing key {key!r}")
    try:
        th = {int(k): float(v) for k, v in data["thresholds"].items()}
        reliable = tuple(int(a) for a in data["reliable_aus"])
        unreliable = tuple(int(a) for a in data.get("unreliable_aus", ()))
    except (TypeError, ValueError, AttributeError) as exc:
        raise ParameterError(f"{p}: malformed thresholds or AU lists ({exc})") from None
    missing = [a for a in reliable if a not in th]
    if missing:
        raise ParameterError(f"{p}: reliable AUs {missing} have no threshold")
    return {
        "thresholds": th,
        "reliable_aus": reliable,
        "unreliable_aus": unreliable,
        "provenance": str(data.get("provenance", "")),
    }


def _as_scores(blendshapes: Any, names: Sequence[str] | None) -> tuple[np.ndarray, dict[str, int]]:
    try:
        bs = np.asarray(blendshapes)
    except Exception as exc:  # noqa: BLE001 - report what could not be converted
        raise DTypeError(f"blendshapes: cannot be read as an array ({exc})") from None
    if bs.dtype.kind not in "fiu":
        raise DTypeError(f"blendshapes: expected numbers, got dtype {bs.dtype}")
    if bs.ndim != 2:
        raise ShapeError(f"blendshapes: expected shape (N, S), got {bs.shape}")
    if names is None:
        if bs.shape[1] != len(BLENDSHAPE_NAMES):
            raise ShapeError(
                f"blendshapes: without names expected {len(BLENDSHAPE_NAMES)} columns in "
                f"MediaPipe's order, got {bs.shape[1]}"
            )
        index = _INDEX
    else:
        names = tuple(names)
        if len(names) != bs.shape[1]:
            raise ShapeError(
                f"blendshape_names: {len(names)} names for {bs.shape[1]} blendshape columns"
            )
        index = {n: i for i, n in enumerate(names)}
    return bs.astype(np.float32, copy=False), index


def au_scores(
    blendshapes: Any, au_ids: Sequence[int], names: Sequence[str] | None = None
) -> np.ndarray:
    """Per-AU teacher scores from blendshape scores.

    Args:
        blendshapes: ``(N, S)`` scores in [0, 1].
        au_ids: the AUs wanted, in column order.
        names: the ``S`` blendshape names (default: :data:`BLENDSHAPE_NAMES`, MediaPipe's
            order).

    Returns:
        ``(N, len(au_ids))`` float32: the mean of each AU's blendshapes; NaN for AUs without
        a mapping (or whose blendshapes are absent from ``names``), and for faces whose
        blendshapes are not finite.

    Raises:
        ShapeError, DTypeError: malformed ``blendshapes`` or ``names``.
    """
    bs, index = _as_scores(blendshapes, names)
    out = np.full((bs.shape[0], len(au_ids)), np.nan, np.float32)
    for j, au in enumerate(au_ids):
        sources = BLENDSHAPE_TO_AU.get(int(au))
        if not sources or any(s not in index for s in sources):
            continue
        cols = [index[s] for s in sources]
        out[:, j] = bs[:, cols].mean(axis=1)
    return out


def calibrate_thresholds(
    scores: Any, truth: Any, au_ids: Sequence[int], *, min_positives: int = 5
) -> dict[int, float]:
    """Per-AU thresholds that maximise F1 of ``score >= threshold`` against known labels.

    Args:
        scores: ``(N, L)`` teacher scores (:func:`au_scores`); NaN columns are skipped.
        truth: ``(N, L)`` known labels in {0, 1}.
        au_ids: the ``L`` AU numbers.
        min_positives: AUs with fewer positives (or negatives) in ``truth`` keep no
            calibrated threshold, since F1 on a handful of faces says little.

    Returns:
        ``{au: threshold}`` for every AU that could be calibrated. The threshold is the
        midpoint between the best cut's score and the next lower score, so that it does not
        sit exactly on a sample.

    Raises:
        ShapeError: shapes disagree. ValueRangeError: labels outside {0, 1}.
    """
    s = np.asarray(scores, np.float64)
    y = np.asarray(truth)
    if s.ndim != 2 or s.shape != y.shape or s.shape[1] != len(au_ids):
        raise ShapeError(f"scores {s.shape} and truth {y.shape} must both be (N, {len(au_ids)})")
    if not np.isin(y, (0, 1)).all():
        raise ValueRangeError("truth: expected labels in {0, 1}")
    out: dict[int, float] = {}
    for j, au in enumerate(au_ids):
        col, lab = s[:, j], y[:, j].astype(bool)
        ok = np.isfinite(col)
        col, lab = col[ok], lab[ok]
        pos = int(lab.sum())
        if pos < min_positives or col.size - pos < min_positives:
            continue
        order = np.argsort(-col, kind="stable")
        sc, lb = col[order], lab[order]
        tp = np.cumsum(lb)
        k = np.arange(1, sc.size + 1)
        # Only cut between distinct scores: the last index of each run of equal scores.
        last = np.r_[sc[1:] != sc[:-1], True]
        f1 = np.where(last, 2.0 * tp / (k + pos), -1.0)
        best = int(np.argmax(f1))
        nxt = sc[best + 1] if best + 1 < sc.size else sc[best] - 1e-3
        out[int(au)] = float(0.5 * (sc[best] + nxt))
    return out


@dataclass(frozen=True)
class TeacherLabels:
    """Teacher output for ``N`` faces.

    Attributes:
        scores: ``(N, L)`` float32 per-AU scores (NaN where unknown).
        labels: ``(N, L)`` int8: 1 active, 0 inactive, :data:`UNKNOWN` (-1) where the teacher
            cannot see the AU or the face's blendshapes are not finite.
        au_ids: the ``L`` AU numbers.
    """

    scores: np.ndarray
    labels: np.ndarray
    au_ids: tuple[int, ...]

    @property
    def known(self) -> np.ndarray:
        """``(L,)`` bool: the AUs this teacher has a blendshape mapping for."""
        return np.array([a in BLENDSHAPE_TO_AU for a in self.au_ids], bool)


class Teacher:
    """Turns blendshape scores into per-AU pseudo-labels for a fixed AU list.

    Args:
        au_ids: the AUs of the model being trained, in its column order.
        thresholds: ``{au: threshold}`` (e.g. from :func:`calibrate_thresholds`); mapped AUs
            missing here use :data:`DEFAULT_THRESHOLDS`.
        unknown: AUs to label unknown (-1) even though they have a mapping (e.g. AUs the
            teacher is near chance on); they must be among ``au_ids``.

    Example::

        teacher = Teacher(manifest.au_ids, thresholds=calibrated)
        out = teacher(faces.blendshapes, faces.blendshape_names)
        out.labels        # (N, L) int8 in {1, 0, -1}
    """

    def __init__(
        self,
        au_ids: Sequence[int],
        thresholds: Mapping[int, float] | None = None,
        unknown: Sequence[int] = (),
    ):
        ids = tuple(int(a) for a in au_ids)
        if not ids or len(set(ids)) != len(ids):
            raise ParameterError(f"au_ids: expected distinct AU numbers, got {list(au_ids)}")
        off = tuple(int(a) for a in unknown)
        bad = [a for a in off if a not in ids]
        if bad:
            raise ParameterError(f"unknown: AUs {bad} are not among au_ids {list(ids)}")
        th = dict(DEFAULT_THRESHOLDS)
        for au, t in (thresholds or {}).items():
            if int(au) not in BLENDSHAPE_TO_AU:
                raise ParameterError(f"thresholds: AU{au} has no blendshape mapping")
            if not (0.0 <= float(t) <= 1.0):
                raise ValueRangeError(f"thresholds[{au}]: expected a value in [0, 1], got {t}")
            th[int(au)] = float(t)
        self.au_ids = ids
        self.thresholds = np.array(
            [np.nan if a in off else th.get(a, np.nan) for a in ids], np.float32
        )

    @classmethod
    def calibrated(cls, au_ids: Sequence[int], path: str | Path | None = None) -> Teacher:
        """The teacher with a calibration file's thresholds (default: the shipped one);
        AUs the file does not list as reliable are labelled unknown."""
        cal = load_calibration(path)
        ids = tuple(int(a) for a in au_ids)
        th = {a: t for a, t in cal["thresholds"].items() if a in cal["reliable_aus"]}
        off = [a for a in ids if a in BLENDSHAPE_TO_AU and a not in cal["reliable_aus"]]
        return cls(ids, thresholds=th, unknown=off)

    @property
    def unknown_aus(self) -> tuple[int, ...]:
        """AUs of :attr:`au_ids` that this teacher never labels (no mapping, or switched off)."""
        return tuple(
            a for a, t in zip(self.au_ids, self.thresholds, strict=True) if not np.isfinite(t)
        )

    def describe(self) -> dict[str, Any]:
        """AU list, thresholds and unknown AUs, for logs and provenance files."""
        return {
            "au_ids": list(self.au_ids),
            "thresholds": {
                str(a): float(t)
                for a, t in zip(self.au_ids, self.thresholds, strict=True)
                if np.isfinite(t)
            },
            "unknown_aus": list(self.unknown_aus),
        }

    def __call__(self, blendshapes: Any, names: Sequence[str] | None = None) -> TeacherLabels:
        scores = au_scores(blendshapes, self.au_ids, names)
        labels = np.full(scores.shape, UNKNOWN, np.int8)
        ok = np.isfinite(scores) & np.isfinite(self.thresholds)[None, :]
        labels[ok] = (scores >= self.thresholds[None, :])[ok]
        return TeacherLabels(scores=scores, labels=labels, au_ids=self.au_ids)
