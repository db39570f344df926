"""Parameter layout of the face renderer and the mapping between AUs and expression dims.

A face is one vector ``x`` of :data:`PARAM_DIM` numbers, every one in ``[0, 1]``::

    x = [pose (3) | expression (23) | identity (51)]

* Pose: yaw, pitch, roll; ``0.5`` is frontal. ``0`` and ``1`` are the ends of
  :data:`POSE_RANGE_DEG` (yaw +-35 degrees, pitch +-25, roll +-30). Positive yaw turns the face
  towards the image's right, positive pitch tilts the chin down, positive roll turns the face
  clockwise in the image.
* Expression: 23 muscle-level dims (:data:`EXPRESSION_NAMES`) following the M3 list, ``0`` is
  neutral and ``1`` is the strongest movement.
* Identity: 51 dims (:data:`IDENTITY_NAMES`) for face outline, brow/eye/nose/mouth shape and
  placement, skin, hair and age; ``0.5`` is the average face.

AUs and expression dims. Each of the 15 AUs of BP4D and DISFA (:data:`AU_IDS`) is driven by
exactly one expression dim (:data:`AU_TO_EXPRESSION`), linearly: intensity = 5 * dim. So
:func:`au_from_expression` and :func:`expression_from_au` are exact inverses on those 15 dims.
The other 8 dims (eye close AU43, upper-lid raise AU5, lower-lip depress AU16, lip stretch AU20,
pucker AU18, cheek puff AD34, mouth left/right) have no column in the 15-AU table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import NonFiniteError, ParameterError, ShapeError
from ..labels import EXPRESSIONS

__all__ = [
    "POSE_NAMES",
    "POSE_DIMS",
    "POSE_RANGE_DEG",
    "EXPRESSION_NAMES",
    "EXPRESSION_DIMS",
    "IDENTITY_NAMES",
    "IDENTITY_DIMS",
    "PARAM_DIM",
    "POSE_SLICE",
    "EXPRESSION_SLICE",
    "IDENTITY_SLICE",
    "AU_IDS",
    "AU_NAMES",
    "AU_TO_EXPRESSION",
    "EXPRESSION_AU",
    "CATEGORY_NAMES",
    "CATEGORY_PROTOTYPES",
    "neutral_params",
    "validate_params",
    "au_from_expression",
    "expression_from_au",
    "expression_category",
    "pose_to_degrees",
    "degrees_to_pose",
    "expression_index",
    "identity_index",
]

POSE_NAMES: tuple[str, ...] = ("yaw", "pitch", "roll")
POSE_DIMS = len(POSE_NAMES)
#: Half ranges in degrees: a pose dim ``p`` means ``(2 p - 1) * POSE_RANGE_DEG``.
POSE_RANGE_DEG: tuple[float, float, float] = (35.0, 25.0, 30.0)

EXPRESSION_NAMES: tuple[str, ...] = (
    "eye_close",  # 0  AU43 (both eyes)
    "upper_lid_raise",  # 1  AU5
    "lid_tighten",  # 2  AU7
    "inner_brow_raise",  # 3  AU1
    "outer_brow_raise",  # 4  AU2
    "brow_lower",  # 5  AU4
    "cheek_raise",  # 6  AU6
    "nose_wrinkle",  # 7  AU9
    "upper_lip_raise",  # 8  AU10
    "lower_lip_depress",  # 9  AU16
    "smile",  # 10 AU12
    "dimple",  # 11 AU14
    "lip_corner_depress",  # 12 AU15
    "chin_raise",  # 13 AU17
    "lip_stretch",  # 14 AU20
    "pucker",  # 15 AU18
    "lip_tighten",  # 16 AU23
    "lip_press",  # 17 AU24
    "lips_part",  # 18 AU25 (its absence is "lip close")
    "mouth_open",  # 19 AU26 (jaw drop)
    "cheek_puff",  # 20 AD34
    "mouth_left",  # 21 AD (mouth moved to the image's left)
    "mouth_right",  # 22 AD (mouth moved to the image's right)
)
EXPRESSION_DIMS = len(EXPRESSION_NAMES)

#: FACS code of every expression dim (``None`` for action descriptors without a number here).
EXPRESSION_AU: tuple[int | None, ...] = (
    43,
    5,
    7,
    1,
    2,
    4,
    6,
    9,
    10,
    16,
    12,
    14,
    15,
    17,
    20,
    18,
    23,
    24,
    25,
    26,
    34,
    None,
    None,
)

IDENTITY_NAMES: tuple[str, ...] = (
    # face outline
    "face_width",
    "face_length",
    "jaw_width",
    "chin_width",
    "chin_length",
    "cheek_fullness",
    "forehead_height",
    "chin_boss",
    # brows
    "brow_height",
    "brow_thickness",
    "brow_length",
    "brow_arch",
    "brow_tilt",
    "brow_spacing",
    "brow_darkness",
    # eyes
    "eye_height",
    "eye_width",
    "eye_spacing",
    "eye_tilt",
    "eye_vertical",
    "lid_droop",
    "iris_size",
    "iris_color",
    # nose
    "nose_length",
    "nose_width",
    "nose_bridge",
    "nose_tip",
    "nose_projection",
    # mouth
    "mouth_width",
    "upper_lip_thickness",
    "lower_lip_thickness",
    "mouth_vertical",
    "mouth_corner_tilt",
    "lip_color",
    "cupid_bow",
    # skin and age
    "skin_tone",
    "skin_warmth",
    "skin_blush",
    "age",
    "forehead_lines",
    "glabella_lines",
    "nasolabial_depth",
    # hair and ears
    "hair_style",
    "hair_color",
    "hair_volume",
    "hairline",
    "hair_part",
    "ear_size",
    # facial hair and marks (above 0.6 only, so the average face has none)
    "beard",
    "mustache",
    "freckles",
)
IDENTITY_DIMS = len(IDENTITY_NAMES)

POSE_SLICE = slice(0, POSE_DIMS)
EXPRESSION_SLICE = slice(POSE_DIMS, POSE_DIMS + EXPRESSION_DIMS)
IDENTITY_SLICE = slice(POSE_DIMS + EXPRESSION_DIMS, POSE_DIMS + EXPRESSION_DIMS + IDENTITY_DIMS)
PARAM_DIM = POSE_DIMS + EXPRESSION_DIMS + IDENTITY_DIMS

AU_IDS: tuple[int, ...] = (1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26)
AU_NAMES: tuple[str, ...] = tuple(f"AU{a}" for a in AU_IDS)
#: For every AU of :data:`AU_IDS` (in that order), the index of its expression dim.
AU_TO_EXPRESSION: tuple[int, ...] = tuple(EXPRESSION_AU.index(a) for a in AU_IDS)

#: Expression categories: the shared vocabulary of :data:`auperf.labels.EXPRESSIONS`.
CATEGORY_NAMES: tuple[str, ...] = EXPRESSIONS
#: The usual AU prototypes of the basic expressions, as FACS codes (AU5/16/20 are expression dims
#: outside the 15-AU table). Contempt is unilateral AU14 in FACS; the renderer is symmetric, so
#: here it is AU14 without AU12.
CATEGORY_PROTOTYPES: dict[str, tuple[int, ...]] = {
    "happiness": (6, 12),
    "sadness": (1, 4, 15),
    "surprise": (1, 2, 5, 26),
    "fear": (1, 2, 4, 5, 20, 26),
    "disgust": (9, 15, 16),
    "anger": (4, 5, 7, 23),
    "contempt": (14,),
}
#: Dims that must stay low for a category (a smile with AU14 is happiness, not contempt).
_CATEGORY_EXCLUDE: dict[str, tuple[int, ...]] = {"contempt": (12,)}
#: A dim counts as active from this value (AU intensity 1 of 5, FACS "A" level).
ACTIVE_LEVEL = 0.2


def expression_index(name: str) -> int:
    """The column of expression dim ``name`` inside the full parameter vector."""
    if name not in EXPRESSION_NAMES:
        raise ParameterError(f"name: expected one of {EXPRESSION_NAMES}, got {name!r}")
    return POSE_DIMS + EXPRESSION_NAMES.index(name)


def identity_index(name: str) -> int:
    """The column of identity dim ``name`` inside the full parameter vector."""
    if name not in IDENTITY_NAMES:
        raise ParameterError(f"name: expected one of {IDENTITY_NAMES}, got {name!r}")
    return POSE_DIMS + EXPRESSION_DIMS + IDENTITY_NAMES.index(name)


def neutral_params(n: int = 1) -> np.ndarray:
    """``(n, PARAM_DIM)`` float64 parameters of the average frontal neutral face."""
    x = np.full((int(n), PARAM_DIM), 0.5, dtype=np.float64)
    x[:, EXPRESSION_SLICE] = 0.0
    return x


def validate_params(params: Any, name: str = "params") -> np.ndarray:
    """Check a parameter batch and return it as a C-contiguous float64 ``(N, PARAM_DIM)`` array.

    A single vector ``(PARAM_DIM,)`` is accepted and becomes a batch of one.

    Raises:
        ShapeError: not 1-D or 2-D.
        ParameterError: wrong length, values outside ``[0, 1]`` (the message names the first
            offending face, dim and value), non-numeric input.
        NonFiniteError: NaN or infinite values.
    """
    try:
        x = np.asarray(params, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(
            f"{name}: expected a numeric array, got {type(params).__name__}"
        ) from exc
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ShapeError(
            f"{name}: expected shape (N, {PARAM_DIM}) or ({PARAM_DIM},), got {x.shape}"
        )
    if x.shape[1] != PARAM_DIM:
        raise ParameterError(
            f"{name}: expected {PARAM_DIM} values per face "
            f"(3 pose + {EXPRESSION_DIMS} expression + {IDENTITY_DIMS} identity), got {x.shape[1]}"
        )
    finite = np.isfinite(x)
    if not finite.all():
        i, j = np.argwhere(~finite)[0]
        raise NonFiniteError(
            f"{name}: expected finite values, got {float(x[i, j])} at face {i}, dim {j} "
            f"({_dim_name(j)})"
        )
    bad = (x < 0.0) | (x > 1.0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ParameterError(
            f"{name}: expected values in [0, 1], got {float(x[i, j])!r} at face {i}, "
            f"dim {j} ({_dim_name(j)})"
        )
    return np.ascontiguousarray(x)


def _dim_name(j: int) -> str:
    names = POSE_NAMES + EXPRESSION_NAMES + IDENTITY_NAMES
    return names[int(j)]


def au_from_expression(expression: Any) -> np.ndarray:
    """AU intensities of expression dims: ``(N, 23)`` in ``[0, 1]`` -> ``(N, 15)`` in ``[0, 5]``.

    Intensity of ``AU_IDS[k]`` = 5 * ``expression[:, AU_TO_EXPRESSION[k]]``. The mapping:
    AU1 inner_brow_raise, AU2 outer_brow_raise, AU4 brow_lower, AU6 cheek_raise, AU7 lid_tighten,
    AU9 nose_wrinkle, AU10 upper_lip_raise, AU12 smile, AU14 dimple, AU15 lip_corner_depress,
    AU17 chin_raise, AU23 lip_tighten, AU24 lip_press, AU25 lips_part, AU26 mouth_open.

    Args:
        expression: ``(N, 23)`` or ``(23,)`` expression dims (the ``EXPRESSION_SLICE`` part of a
            parameter vector).

    Returns:
        ``(N, 15)`` float64 intensities (``(15,)`` for a single vector).
    """
    e = _as_expression(expression, "expression")
    out = 5.0 * e[..., list(AU_TO_EXPRESSION)]
    return out


def expression_from_au(au_intensity: Any) -> np.ndarray:
    """Expression dims that show the given AU intensities: ``(N, 15)`` -> ``(N, 23)``.

    The inverse of :func:`au_from_expression`: ``expression[:, AU_TO_EXPRESSION[k]] =
    clip(au[:, k] / 5, 0, 1)``; the 8 dims without an AU in the table are 0. Hence
    ``au_from_expression(expression_from_au(a)) == clip(a, 0, 5)``.

    Raises:
        ShapeError: the last axis is not 15 long.
        NonFiniteError: NaN or infinite intensities.
    """
    a = np.asarray(au_intensity, dtype=np.float64)
    if a.ndim not in (1, 2) or a.shape[-1] != len(AU_IDS):
        raise ShapeError(f"au_intensity: expected shape (N, {len(AU_IDS)}), got {a.shape}")
    if not np.isfinite(a).all():
        raise NonFiniteError("au_intensity: expected finite values, got NaN or Inf")
    out = np.zeros(a.shape[:-1] + (EXPRESSION_DIMS,), dtype=np.float64)
    out[..., list(AU_TO_EXPRESSION)] = np.clip(a / 5.0, 0.0, 1.0)
    return out


def expression_category(expression: Any) -> np.ndarray:
    """Basic-expression category of expression dims, from the AU prototypes.

    Rule: a category's score is the smallest of its prototype dims (:data:`CATEGORY_PROTOTYPES`);
    a category qualifies when its score is at least :data:`ACTIVE_LEVEL` (AU intensity 1) and no
    qualifying category's prototype strictly contains its own (fear beats surprise); the
    qualifying category with the highest score wins. Contempt does not qualify while AU12 is
    active. A face whose dims are all below ``ACTIVE_LEVEL`` is neutral (0). Anything else (an
    unprototypical mix) is -1, "not derivable".

    Args:
        expression: ``(N, 23)`` expression dims.

    Returns:
        ``(N,)`` int64 indices into :data:`CATEGORY_NAMES`, or -1.
    """
    e = _as_expression(expression, "expression")
    single = e.ndim == 1
    e = np.atleast_2d(e)
    cats = CATEGORY_NAMES[1:]
    score = np.empty((e.shape[0], len(cats)))
    for ci, cname in enumerate(cats):
        cols = [EXPRESSION_AU.index(a) for a in CATEGORY_PROTOTYPES[cname]]
        score[:, ci] = e[:, cols].min(axis=1)
        for a in _CATEGORY_EXCLUDE.get(cname, ()):
            score[:, ci] = np.where(
                e[:, EXPRESSION_AU.index(a)] >= ACTIVE_LEVEL, -1.0, score[:, ci]
            )
    ok = score >= ACTIVE_LEVEL
    qualified = ok.copy()
    for a, an in enumerate(cats):
        for b, bn in enumerate(cats):
            if set(CATEGORY_PROTOTYPES[an]) < set(CATEGORY_PROTOTYPES[bn]):
                qualified[:, a] &= ~ok[:, b]  # the more specific prototype wins
    masked = np.where(qualified, score, -1.0)
    best = np.where(qualified.any(axis=1), masked.argmax(axis=1) + 1, -1)
    neutral = (e < ACTIVE_LEVEL).all(axis=1)
    best = np.where(neutral, 0, best)
    return best[0] if single else best


def pose_to_degrees(pose: Any) -> np.ndarray:
    """Pose dims ``(..., 3)`` in ``[0, 1]`` -> yaw, pitch, roll in degrees."""
    p = np.asarray(pose, dtype=np.float64)
    return (2.0 * p - 1.0) * np.asarray(POSE_RANGE_DEG)


def degrees_to_pose(deg: Any) -> np.ndarray:
    """Yaw, pitch, roll in degrees ``(..., 3)`` -> pose dims, clipped to ``[0, 1]``."""
    d = np.asarray(deg, dtype=np.float64)
    return np.clip(0.5 + 0.5 * d / np.asarray(POSE_RANGE_DEG), 0.0, 1.0)


def _as_expression(expression: Any, name: str) -> np.ndarray:
    e = np.asarray(expression, dtype=np.float64)
    if e.ndim not in (1, 2) or e.shape[-1] != EXPRESSION_DIMS:
        raise ShapeError(f"{name}: expected shape (N, {EXPRESSION_DIMS}), got {e.shape}")
    if not np.isfinite(e).all():
        raise NonFiniteError(f"{name}: expected finite values, got NaN or Inf")
    return e
