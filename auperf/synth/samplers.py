"""Samplers of identities, poses and realistic AU combinations.

Expressions are drawn the way spontaneous data looks: a quarter of faces are neutral, most of the
rest show one basic-expression prototype (:data:`CATEGORY_PROTOTYPES`) at a random intensity,
some show "talking" or other non-emotional actions, and pairwise couplings known from BP4D/DISFA
statistics add the usual companions (AU6 with AU12, AU2 with AU1, AU25 with AU26, AU7 with AU4,
AU17 with AU24 and AU23, AU10 with AU12). Every sampler takes a ``numpy.random.Generator`` and is
deterministic for a given generator state.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, ValueRangeError
from .params import (
    CATEGORY_NAMES,
    CATEGORY_PROTOTYPES,
    EXPRESSION_AU,
    EXPRESSION_DIMS,
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_DIMS,
    IDENTITY_NAMES,
    IDENTITY_SLICE,
    PARAM_DIM,
    POSE_RANGE_DEG,
    POSE_SLICE,
    au_from_expression,
)

__all__ = [
    "sample_identities",
    "sample_pose",
    "sample_expressions",
    "sample_aus",
    "sample_category",
    "sample_params",
    "COUPLINGS",
]

_E = {n: i for i, n in enumerate(EXPRESSION_NAMES)}
_I = {n: i for i, n in enumerate(IDENTITY_NAMES)}
_AU = {a: i for i, a in enumerate(EXPRESSION_AU) if a is not None}

#: (driver AU, companion AU, probability, relative intensity): when the driver is active the
#: companion joins with this probability at about this fraction of the driver's intensity.
COUPLINGS: tuple[tuple[int, int, float, float], ...] = (
    (12, 6, 0.70, 0.8),
    (6, 12, 0.60, 1.0),
    (1, 2, 0.75, 0.9),
    (2, 1, 0.80, 0.9),
    (26, 25, 0.95, 1.0),
    (4, 7, 0.50, 0.8),
    (17, 24, 0.60, 0.9),
    (17, 23, 0.25, 0.7),
    (12, 10, 0.25, 0.6),
    (12, 25, 0.40, 0.8),
    (9, 10, 0.40, 0.8),
    (15, 17, 0.45, 0.8),
)

# categories drawn for non-neutral faces, and how often
_CATEGORY_P = {
    "happiness": 0.30,
    "sadness": 0.10,
    "surprise": 0.10,
    "fear": 0.06,
    "disgust": 0.08,
    "anger": 0.08,
    "contempt": 0.03,
    "talk": 0.15,
    "single": 0.10,
}
_TALK_AUS = (25, 26, 10, 17, 24, 14, 23, 12)
_SINGLE_AUS = tuple(a for a in EXPRESSION_AU if a is not None and a not in (34,))

# identity dims drawn uniformly (colours and styles); the others are shape dims around 0.5
_UNIFORM_ID = (
    "skin_tone",
    "skin_warmth",
    "iris_color",
    "lip_color",
    "hair_style",
    "hair_color",
    "hair_part",
    "age",
    "hair_volume",
    "skin_blush",
    "brow_darkness",
)


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueRangeError(f"n: expected an integer >= 0, got {n!r}")
    return int(n)


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def sample_identities(rng: np.random.Generator, n: int, *, spread: float = 1.0) -> np.ndarray:
    """Identity dims of ``n`` random people, ``(n, IDENTITY_DIMS)`` in ``[0, 1]``.

    Shape dims follow a symmetric Beta(2.2, 2.2) around the average (scaled by ``spread``); skin,
    hair, eye colour, hair style and age are uniform; hair colour is darker on darker skin; line
    depths (forehead, glabella, nasolabial) grow with age.
    """
    rng = _check_rng(rng)
    n = _check_n(n)
    if not 0.0 <= spread <= 1.0:
        raise ValueRangeError(f"spread: expected in [0, 1], got {spread!r}")
    out = 0.5 + spread * (rng.beta(2.2, 2.2, (n, IDENTITY_DIMS)) - 0.5)
    u = rng.random((n, IDENTITY_DIMS))
    for name in _UNIFORM_ID:
        out[:, _I[name]] = u[:, _I[name]]
    tone = out[:, _I["skin_tone"]]
    hc = out[:, _I["hair_color"]]
    out[:, _I["hair_color"]] = hc * (0.35 + 0.65 * tone)
    # facial hair above 0.6 (about a fifth of faces), freckles above 0.7 (a quarter)
    r = u[:, _I["beard"]]
    out[:, _I["beard"]] = np.where(r < 0.8, 0.75 * r, 0.6 + 2.0 * (r - 0.8))
    r = np.where(out[:, _I["beard"]] > 0.6, u[:, _I["mustache"]], 0.5 * u[:, _I["mustache"]])
    out[:, _I["mustache"]] = np.where(r < 0.8, 0.75 * r, 0.6 + 2.0 * (r - 0.8))
    out[:, _I["freckles"]] = 0.93 * u[:, _I["freckles"]]
    age = out[:, _I["age"]]
    for name in ("forehead_lines", "glabella_lines", "nasolabial_depth"):
        out[:, _I[name]] = np.clip(0.6 * age + 0.4 * u[:, _I[name]], 0.0, 1.0)
    return np.clip(out, 0.0, 1.0)


def sample_pose(rng: np.random.Generator, n: int, *, spread: float = 1.0) -> np.ndarray:
    """Pose dims ``(n, 3)``: yaw, pitch, roll near frontal (std 12, 8, 6 degrees x ``spread``)."""
    rng = _check_rng(rng)
    n = _check_n(n)
    std = np.array([12.0, 8.0, 6.0]) * float(spread)
    deg = rng.standard_normal((n, 3)) * std
    return np.clip(0.5 + 0.5 * deg / np.asarray(POSE_RANGE_DEG), 0.0, 1.0)


def _set_au(e: np.ndarray, rows: np.ndarray, au: int, val: np.ndarray) -> None:
    j = _AU[au]
    e[rows, j] = np.maximum(e[rows, j], val)


def sample_expressions(
    rng: np.random.Generator, n: int, *, neutral_rate: float = 0.25
) -> tuple[np.ndarray, np.ndarray]:
    """Expression dims with realistic AU co-occurrence.

    Args:
        rng: random generator.
        n: number of faces.
        neutral_rate: fraction of faces with no expression (apart from blinks).

    Returns:
        ``(expression, source)``: ``(n, 23)`` dims in ``[0, 1]`` and ``(n,)`` int64 indices into
        :data:`CATEGORY_NAMES` of the prototype each face was drawn from (0 for neutral, -1 for
        talking or single actions). The category a face *shows* is
        ``expression_category(expression)``; it matches ``source`` unless companions changed it.
    """
    rng = _check_rng(rng)
    n = _check_n(n)
    e = np.zeros((n, EXPRESSION_DIMS))
    source = np.zeros(n, dtype=np.int64)
    kinds = list(_CATEGORY_P)
    p = np.array([_CATEGORY_P[k] for k in kinds])
    neutral = rng.random(n) < neutral_rate
    pick = rng.choice(len(kinds), size=n, p=p / p.sum())
    apex = rng.uniform(0.3, 1.0, n)
    jitter = rng.uniform(0.7, 1.0, (n, EXPRESSION_DIMS))
    for ki, kind in enumerate(kinds):
        rows = np.flatnonzero((pick == ki) & ~neutral)
        if rows.size == 0:
            continue
        if kind in CATEGORY_PROTOTYPES:
            source[rows] = CATEGORY_NAMES.index(kind)
            for au in CATEGORY_PROTOTYPES[kind]:
                _set_au(e, rows, au, apex[rows] * jitter[rows, _AU[au]])
        elif kind == "talk":
            source[rows] = -1
            for au in _TALK_AUS:
                on = rng.random(rows.size) < (0.7 if au in (25, 26) else 0.25)
                _set_au(e, rows[on], au, rng.uniform(0.15, 0.6, on.sum()))
        else:
            source[rows] = -1
            au = np.asarray(_SINGLE_AUS)[rng.integers(len(_SINGLE_AUS), size=rows.size)]
            for a in np.unique(au):
                rr = rows[au == a]
                _set_au(e, rr, int(a), apex[rr])
    # spontaneous low-level activity (before the companions, which follow it as in real data)
    low = rng.random((n, EXPRESSION_DIMS)) < 0.04
    e = np.where(low & (e == 0), rng.uniform(0.0, 0.25, (n, EXPRESSION_DIMS)), e)
    # companions
    # two passes, so chains (AU15 -> AU17 -> AU24) form; a companion joins at most once
    joined = np.zeros((n, len(COUPLINGS)), bool)
    for _ in range(2):
        for ci, (drv, comp, prob, rel) in enumerate(COUPLINGS):
            active = (e[:, _AU[drv]] >= 0.2) & ~joined[:, ci]
            tried = active & (rng.random(n) < prob)
            joined[:, ci] |= active
            rows = np.flatnonzero(tried)
            val = np.clip(e[rows, _AU[drv]] * rel * rng.uniform(0.8, 1.2, rows.size), 0, 1)
            _set_au(e, rows, comp, val)
    blinks = rng.random(n)
    blink = blinks < 0.06
    e[blink, _E["eye_close"]] = rng.uniform(0.6, 1.0, blink.sum())
    # mouth_left and mouth_right never act together
    lr = e[:, [_E["mouth_left"], _E["mouth_right"]]]
    e[:, _E["mouth_left"]] = np.where(lr[:, 0] >= lr[:, 1], lr[:, 0], 0.0)
    e[:, _E["mouth_right"]] = np.where(lr[:, 1] > lr[:, 0], lr[:, 1], 0.0)
    return np.clip(e, 0.0, 1.0), source


def sample_aus(rng: np.random.Generator, n: int, **kwargs: Any) -> np.ndarray:
    """AU intensities ``(n, 15)`` in ``[0, 5]`` (for :data:`AU_IDS`) with realistic co-occurrence.

    Same draws as :func:`sample_expressions`, mapped with :func:`au_from_expression`.
    """
    e, _ = sample_expressions(rng, n, **kwargs)
    return au_from_expression(e)


def sample_category(
    rng: np.random.Generator,
    n: int,
    categories: Any = None,
    *,
    intensity: tuple[float, float] = (0.4, 1.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Expression dims of basic-expression prototypes (no companions, no noise).

    Args:
        rng: random generator.
        n: number of faces.
        categories: names or indices into :data:`CATEGORY_NAMES` to draw from (default all 8).
        intensity: range of the prototype dims.

    Returns:
        ``(expression (n, 23), category (n,) int64)``; ``expression_category(expression)``
        returns ``category`` for every face.
    """
    rng = _check_rng(rng)
    n = _check_n(n)
    if categories is None:
        cats = list(range(len(CATEGORY_NAMES)))
    else:
        cats = []
        for c in categories:
            if isinstance(c, str):
                if c not in CATEGORY_NAMES:
                    raise ParameterError(
                        f"categories: expected names in {CATEGORY_NAMES}, got {c!r}"
                    )
                cats.append(CATEGORY_NAMES.index(c))
            else:
                if not 0 <= int(c) < len(CATEGORY_NAMES):
                    raise ParameterError(
                        f"categories: index {c!r} outside [0, {len(CATEGORY_NAMES)})"
                    )
                cats.append(int(c))
    lo, hi = intensity
    if not 0.2 <= lo <= hi <= 1.0:
        raise ValueRangeError(f"intensity: expected 0.2 <= low <= high <= 1, got {intensity!r}")
    label = np.asarray(cats, dtype=np.int64)[rng.integers(len(cats), size=n)]
    e = np.zeros((n, EXPRESSION_DIMS))
    val = rng.uniform(lo, hi, (n, EXPRESSION_DIMS))
    for ci, name in enumerate(CATEGORY_NAMES):
        if ci == 0:
            continue
        rows = np.flatnonzero(label == ci)
        for au in CATEGORY_PROTOTYPES[name]:
            e[rows, _AU[au]] = val[rows, _AU[au]]
    return e, label


def sample_params(
    rng: np.random.Generator,
    n: int,
    *,
    identities: Any = None,
    expression: str = "au",
    pose: str = "natural",
) -> np.ndarray:
    """Full parameter vectors ``(n, PARAM_DIM)``.

    Args:
        rng: random generator.
        n: number of faces.
        identities: optional ``(n, IDENTITY_DIMS)`` identity dims (else :func:`sample_identities`).
        expression: ``"au"`` (realistic co-occurrence, :func:`sample_expressions`), ``"category"``
            (:func:`sample_category`), ``"uniform"`` (every dim uniform in [0, 1], the M3 training
            distribution) or ``"neutral"``.
        pose: ``"natural"`` (:func:`sample_pose`), ``"uniform"`` or ``"frontal"``.
    """
    rng = _check_rng(rng)
    n = _check_n(n)
    x = np.empty((n, PARAM_DIM))
    if identities is None:
        x[:, IDENTITY_SLICE] = sample_identities(rng, n)
    else:
        ids = np.asarray(identities, dtype=np.float64)
        if ids.shape != (n, IDENTITY_DIMS):
            raise ParameterError(
                f"identities: expected shape ({n}, {IDENTITY_DIMS}), got {ids.shape}"
            )
        x[:, IDENTITY_SLICE] = ids
    if expression == "au":
        x[:, EXPRESSION_SLICE] = sample_expressions(rng, n)[0]
    elif expression == "category":
        x[:, EXPRESSION_SLICE] = sample_category(rng, n)[0]
    elif expression == "uniform":
        x[:, EXPRESSION_SLICE] = rng.random((n, EXPRESSION_DIMS))
    elif expression == "neutral":
        x[:, EXPRESSION_SLICE] = 0.0
    else:
        raise ParameterError(
            f"expression: expected 'au', 'category', 'uniform' or 'neutral', got {expression!r}"
        )
    if pose == "natural":
        x[:, POSE_SLICE] = sample_pose(rng, n)
    elif pose == "uniform":
        x[:, POSE_SLICE] = rng.random((n, 3))
    elif pose == "frontal":
        x[:, POSE_SLICE] = 0.5
    else:
        raise ParameterError(f"pose: expected 'natural', 'uniform' or 'frontal', got {pose!r}")
    return x
