"""Label-noise generators for the noisy-label methods (M0's inaccurate labels, M2's flips).

Three models:

* :func:`flip_labels`: each known AU label flips independently with probability ``rate``
  (per AU if wanted). Noise unrelated to the face.
* :func:`weak_model_labels`: the labels a weak AU detector would give. Errors depend on the
  face's appearance, so faces that look alike receive the same wrong labels (a naturally low
  brow reads as AU4, a downturned mouth as AU15). The model is below.
* :func:`flip_expressions`: expression labels flipped to a uniformly chosen other class
  (``"symmetric"``) or to a fixed confusable class (``"asymmetric"``).

Every function leaves unknown labels (``-1``) unknown, never flips them and never counts them,
returns new arrays (the input is not modified) plus the boolean mask of flipped entries, and
is deterministic for a given generator state or integer seed.

Weak-model noise, per AU ``k``:
    The appearance covariates ``features`` (N, F) are standardised per column. An appearance
    score ``s_ik = z_i . w_k`` (plus ``sum_j C_jk (2 y_ij - 1)`` when a label coupling matrix ``C``
    is given, so the weak model is swayed by co-occurring AUs) is standardised over the samples.
    The weak model is a logistic unit on the true label and the score,

        logit_ik = b_{y_ik, k} + s_ik + T * eps_ik,    eps ~ Logistic(0, 1),
        weak label = 1 if logit_ik > 0 else 0,

    with one offset per AU and true class. The offsets are calibrated by bisection so that the
    expected error rate among positives and among negatives both equal ``error_rate[k]``;
    hence the overall disagreement rate equals ``error_rate[k]`` whatever the AU's base rate,
    the same calibration as :func:`flip_labels`. Errors on positives (misses) fall on the faces
    with the lowest scores, errors on negatives (false alarms) on those with the highest:
    appearance pushes the weak model one way. ``temperature`` ``T`` sets how systematic the
    errors are: ``T = 0`` is fully deterministic (exactly the lowest/highest-scored fraction is
    wrong), large ``T`` tends to :func:`flip_labels`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ..errors import DTypeError, NonFiniteError, ParameterError, ShapeError, ValueRangeError
from ._common import EXPRESSIONS

__all__ = [
    "NoisyLabels",
    "ASYMMETRIC_EXPRESSION_MAP",
    "flip_labels",
    "weak_model_labels",
    "flip_expressions",
]

logger = logging.getLogger("auperf")


class NoisyLabels(NamedTuple):
    """Noisy labels and where they differ from the input.

    Attributes:
        labels: The noisy labels, same shape and dtype as the input.
        flipped: Boolean mask, same shape, ``True`` where the label was changed.
    """

    labels: np.ndarray
    flipped: np.ndarray


_E = {n: i for i, n in enumerate(EXPRESSIONS)}

#: Default target of each class under asymmetric expression noise (indices of
#: :data:`~auperf.datasets.EXPRESSIONS`): fear <-> surprise, disgust -> sadness,
#: anger -> disgust, sadness -> neutral, neutral -> sadness, happiness -> neutral,
#: contempt -> disgust.
ASYMMETRIC_EXPRESSION_MAP: dict[int, int] = {
    _E["neutral"]: _E["sadness"],
    _E["happiness"]: _E["neutral"],
    _E["sadness"]: _E["neutral"],
    _E["surprise"]: _E["fear"],
    _E["fear"]: _E["surprise"],
    _E["disgust"]: _E["sadness"],
    _E["anger"]: _E["disgust"],
    _E["contempt"]: _E["disgust"],
}


def _rng(rng: Any) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise ParameterError(f"rng: expected a numpy Generator or an integer seed, got {rng!r}")
    return np.random.default_rng(int(rng))


def _rates(rate: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(rate, dtype=np.float64) if not isinstance(rate, str) else None
    if arr is None or arr.dtype.kind != "f":
        raise DTypeError(f"{name}: expected a number or an array of numbers, got {rate!r}")
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ShapeError(f"{name}: expected a scalar or shape ({n},), got {arr.shape}")
    if np.isnan(arr).any():
        raise NonFiniteError(f"{name}: expected rates in [0, 1], got NaN in {arr.tolist()}")
    if ((arr < 0) | (arr > 1)).any():
        raise ValueRangeError(f"{name}: expected rates in [0, 1], got {arr.tolist()}")
    return arr


def _au_labels(labels: Any, name: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.dtype.kind not in "iub":
        raise DTypeError(f"{name}: expected an integer array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ShapeError(f"{name}: expected shape (N, L), got {arr.shape}")
    bad = ~np.isin(arr, (-1, 0, 1))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueRangeError(
            f"{name}: expected 0, 1 or -1 (unknown), got {arr[i, j]} at [{i}, {j}]"
        )
    return arr


def flip_labels(
    labels: Any, rate: Any, rng: np.random.Generator | int, *, per_au: Any = None
) -> NoisyLabels:
    """Flip known AU labels independently at random (symmetric noise).

    Args:
        labels: ``(N, L)`` integer array in {-1, 0, 1}; ``-1`` (unknown) is never flipped.
        rate: Flip probability in [0, 1], the same for every AU.
        rng: A ``numpy.random.Generator`` or an integer seed.
        per_au: Optional ``(L,)`` per-AU flip probabilities; replaces ``rate`` when given.

    Returns:
        :class:`NoisyLabels` ``(labels, flipped)``; ``labels`` has the input's dtype.

    Raises:
        ValueRangeError: a rate outside [0, 1], or labels outside {-1, 0, 1}.
        NonFiniteError: a NaN rate.
    """
    arr = _au_labels(labels)
    r = _rates(rate, arr.shape[1], "rate")
    if per_au is not None:
        r = _rates(per_au, arr.shape[1], "per_au")
    gen = _rng(rng)
    draw = gen.random(arr.shape)
    flipped = (draw < r[None, :]) & (arr >= 0)
    out = arr.copy()
    out[flipped] = 1 - arr[flipped]
    return NoisyLabels(out, flipped)


def _standardise(x: np.ndarray) -> np.ndarray:
    mu = x.mean(axis=0)
    sd = x.std(axis=0)
    return np.where(sd > 0, (x - mu) / np.where(sd > 0, sd, 1.0), 0.0)


def _expected_error(offset: float, scores: np.ndarray, sign: float, temperature: float) -> float:
    """Mean probability that ``sign * (offset + s + T eps) < 0`` -- the error rate of one class
    (``sign=+1`` for positives, whose error is a weak label 0; ``-1`` for negatives)."""
    z = sign * (offset + scores) / temperature
    return float(np.mean(0.5 * (1.0 - np.tanh(0.5 * z))))  # sigmoid(-z), overflow-free


def _calibrate(scores: np.ndarray, sign: float, target: float, temperature: float) -> float:
    """Offset whose expected error rate over ``scores`` equals ``target`` (0 < target < 1)."""
    span = float(np.abs(scores).max()) + 50.0 * temperature + 1.0
    lo, hi = -span, span  # error(offset) is decreasing in sign * offset
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        err = _expected_error(mid, scores, sign, temperature)
        if (err > target) == (sign > 0):
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def weak_model_labels(
    labels: Any,
    features: Any,
    rng: np.random.Generator | int,
    *,
    error_rate: Any,
    temperature: float = 0.25,
    weights: Any = None,
    coupling: Any = None,
) -> NoisyLabels:
    """Labels from a simulated weak AU model whose errors follow appearance.

    See the module docstring for the model. Per AU, the rate of disagreement with the true
    labels is ``error_rate`` in expectation (exactly, up to rounding, when ``temperature`` is 0),
    both among positives and among negatives.

    Args:
        labels: ``(N, L)`` true labels in {-1, 0, 1}; unknown entries stay unknown and take no
            part in the calibration.
        features: ``(N, F)`` finite per-sample appearance covariates (identity-related brow
            height, mouth-corner baseline, skin tone, pose, ...).
        rng: A ``numpy.random.Generator`` or an integer seed. It draws the default weights and
            the logistic noise.
        error_rate: Disagreement rate in [0, 1], a scalar or ``(L,)`` per AU.
        temperature: Scale ``T >= 0`` of the logistic noise relative to the unit-variance
            appearance score; 0 makes the weak labels a deterministic function of the face and
            the true label.
        weights: ``(F, L)`` how each covariate pushes each AU towards "active"; default: drawn
            from a standard normal with ``rng``.
        coupling: Optional ``(L, L)`` matrix ``C``; ``C[j, k]`` is how much AU ``j`` being
            truly active pushes the weak model to report AU ``k`` (its diagonal is ignored).

    Returns:
        :class:`NoisyLabels` ``(labels, flipped)``.

    Raises:
        ShapeError, DTypeError, NonFiniteError, ValueRangeError: bad inputs; the message names
            the argument.
    """
    y = _au_labels(labels)
    n, n_aus = y.shape
    x = np.asarray(features)
    if x.dtype.kind not in "fiu":
        raise DTypeError(f"features: expected a numeric array, got dtype {x.dtype}")
    if x.ndim != 2 or x.shape[0] != n or x.shape[1] < 1:
        raise ShapeError(f"features: expected shape ({n}, F) with F >= 1, got {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise NonFiniteError("features: expected finite values, got NaN or inf")
    rates = _rates(error_rate, n_aus, "error_rate")
    if (
        not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or temperature < 0
    ):
        raise ValueRangeError(f"temperature: expected a finite number >= 0, got {temperature!r}")
    gen = _rng(rng)
    if weights is None:
        w = gen.standard_normal((x.shape[1], n_aus))
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (x.shape[1], n_aus):
            raise ShapeError(f"weights: expected shape ({x.shape[1]}, {n_aus}), got {w.shape}")
        if not np.isfinite(w).all():
            raise NonFiniteError("weights: expected finite values")
    raw = _standardise(x) @ w
    if coupling is not None:
        c = np.asarray(coupling, dtype=np.float64)
        if c.shape != (n_aus, n_aus):
            raise ShapeError(f"coupling: expected shape ({n_aus}, {n_aus}), got {c.shape}")
        if not np.isfinite(c).all():
            raise NonFiniteError("coupling: expected finite values")
        c = c.copy()
        np.fill_diagonal(c, 0.0)
        signed = np.where(y < 0, 0.0, 2.0 * y - 1.0)
        raw = raw + signed @ c
    scores = _standardise(raw)
    eps = gen.logistic(size=(n, n_aus)) if temperature > 0 else np.zeros((n, n_aus))
    out = y.copy()
    flipped = np.zeros(y.shape, dtype=bool)
    for k in range(n_aus):
        for cls, sign in ((1, 1.0), (0, -1.0)):
            idx = np.flatnonzero(y[:, k] == cls)
            if idx.size == 0 or rates[k] == 0:
                continue
            s = scores[idx, k]
            if temperature == 0:
                # The fraction with the lowest (positives) or highest (negatives) score is wrong.
                m = int(round(rates[k] * idx.size))
                order = np.argsort(sign * s, kind="stable")
                wrong = idx[order[:m]]
            elif rates[k] == 1:
                wrong = idx
            else:
                b = _calibrate(s, sign, float(rates[k]), float(temperature))
                logit = b + s + temperature * eps[idx, k]
                wrong = idx[(logit > 0) != (cls == 1)]
            flipped[wrong, k] = True
            out[wrong, k] = 1 - cls
    logger.debug(
        "weak_model_labels: realised error rates %s",
        flipped.sum(0) / np.maximum((y >= 0).sum(0), 1),
    )
    return NoisyLabels(out, flipped)


def flip_expressions(
    labels: Any,
    rate: float,
    rng: np.random.Generator | int,
    *,
    mode: str = "symmetric",
    num_classes: int = 7,
    mapping: Mapping[int, int] | None = None,
) -> NoisyLabels:
    """Flip expression labels at random.

    Args:
        labels: ``(N,)`` integer class indices in ``[0, num_classes)`` (the order of
            :data:`~auperf.datasets.EXPRESSIONS`), ``-1`` unknown (never flipped).
        rate: Probability in [0, 1] that a known label is flipped.
        rng: A ``numpy.random.Generator`` or an integer seed.
        mode: ``"symmetric"``: to one of the other ``num_classes - 1`` classes, uniformly.
            ``"asymmetric"``: to the class ``mapping[label]``.
        num_classes: 7 (basic expressions incl. neutral) or 8 (with contempt), or any >= 2.
        mapping: For ``"asymmetric"``: class -> confusable class, defined for every class in
            use; default :data:`ASYMMETRIC_EXPRESSION_MAP`.

    Returns:
        :class:`NoisyLabels` ``(labels, flipped)``. Every flipped label differs from the input.

    Raises:
        ValueRangeError: a rate outside [0, 1], labels outside ``[-1, num_classes)``, a mapping
            that sends a class to itself or outside the classes.
        NonFiniteError: a NaN rate.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ParameterError(f"num_classes: expected an integer >= 2, got {num_classes!r}")
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise DTypeError(f"labels: expected an integer array, got dtype {y.dtype}")
    if y.ndim != 1:
        raise ShapeError(f"labels: expected shape (N,), got {y.shape}")
    bad = (y < -1) | (y >= num_classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueRangeError(
            f"labels: expected -1 or a class in [0, {num_classes}), got {y[i]} at [{i}]"
        )
    r = float(_rates(rate, 1, "rate")[0])
    if mode not in ("symmetric", "asymmetric"):
        raise ParameterError(f"mode: expected 'symmetric' or 'asymmetric', got {mode!r}")
    gen = _rng(rng)
    flip = (gen.random(y.shape) < r) & (y >= 0)
    out = y.copy()
    if mode == "symmetric":
        # Uniform over the other classes: add 1..C-1 modulo C.
        shift = gen.integers(1, num_classes, size=y.shape)
        out[flip] = (y[flip] + shift[flip]) % num_classes
    else:
        table = dict(ASYMMETRIC_EXPRESSION_MAP if mapping is None else mapping)
        lut = np.empty(num_classes, dtype=np.int64)
        for c in range(num_classes):
            if c not in table:
                raise ValueRangeError(f"mapping: no target for class {c} ({_class_name(c)})")
            t = table[c]
            if (
                isinstance(t, bool)
                or not isinstance(t, int | np.integer)
                or not 0 <= t < num_classes
                or t == c
            ):
                raise ValueRangeError(
                    f"mapping: class {c} ({_class_name(c)}) must map to another class "
                    f"in [0, {num_classes}), got {t!r}"
                )
            lut[c] = t
        out[flip] = lut[y[flip]]
    return NoisyLabels(out, flip)


def _class_name(c: int) -> str:
    return EXPRESSIONS[c] if 0 <= c < len(EXPRESSIONS) else f"class {c}"
