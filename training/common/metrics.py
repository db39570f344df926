"""Evaluation of AU detectors and intensity estimators (NumPy; unknown labels ignored).

Occurrence labels are ``(N, L)`` arrays with 1 (active), 0 (inactive) and any negative value
(unknown); every metric of AU ``k`` uses only the rows where label ``k`` is known. Intensity
labels are ``(N, L)`` arrays with values >= 0 (e.g. DISFA's 0-5) and negative values or NaN for
unknown.

- :func:`f1_scores`: per-AU F1 = 2 TP / (2 TP + FP + FN) (0 when the AU has no positive label
  and no positive prediction, as scikit-learn's ``zero_division=0``).
- :func:`roc_auc_scores`: per-AU area under the ROC curve (the Mann-Whitney statistic, ties
  counted one half); NaN when an AU's known labels are all one class.
- :func:`icc3_1`: ICC(3,1) of Shrout and Fleiss (two-way mixed, consistency, single rater);
  :func:`intensity_icc` and :func:`intensity_mae` per AU.
- :func:`tune_thresholds`: per-AU threshold maximising F1 on a validation split.
- :func:`evaluate_occurrence`: all of the above in one dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auperf.errors import ShapeError, ValueRangeError

__all__ = [
    "f1_scores",
    "mean_f1",
    "roc_auc_scores",
    "icc3_1",
    "intensity_icc",
    "intensity_mae",
    "tune_thresholds",
    "evaluate_occurrence",
]


def _as_2d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ShapeError(f"{name}: expected shape (N, L) or (N,), got {arr.shape}")
    return arr


def _pair(labels: Any, other: Any, other_name: str) -> tuple[np.ndarray, np.ndarray]:
    y = _as_2d(labels, "labels").astype(np.float64)
    x = _as_2d(other, other_name)
    if x.shape != y.shape:
        raise ShapeError(f"{other_name}: shape {x.shape} differs from labels shape {y.shape}")
    bad = (y >= 0) & (y != 0) & (y != 1)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValueRangeError(
            f"labels: expected 0, 1 or negative (unknown); got {y[r, c]} at row {r}, AU {c}"
        )
    return y, x


def f1_scores(labels: Any, predictions: Any) -> np.ndarray:
    """Per-AU F1 of binary predictions.

    Args:
        labels: ``(N, L)`` in {0, 1}, negative for unknown.
        predictions: ``(N, L)`` bool or {0, 1}.

    Returns:
        ``(L,)`` float64 F1 per AU.
    """
    y, p = _pair(labels, predictions, "predictions")
    known = y >= 0
    pos = (y == 1) & known
    pred = (p.astype(np.float64) > 0.5) & known
    tp = (pos & pred).sum(axis=0)
    fp = (~pos & pred).sum(axis=0)
    fn = (pos & ~pred).sum(axis=0)
    denom = 2 * tp + fp + fn
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def mean_f1(labels: Any, predictions: Any) -> float:
    """Mean over AUs of :func:`f1_scores`."""
    return float(np.mean(f1_scores(labels, predictions)))


def _rankdata(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    i = 0
    n = len(x)
    while i < n:
        j = i
        while j + 1 < n and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = 0.5 * (i + j) + 1.0
        i = j + 1
    return ranks


def roc_auc_scores(labels: Any, scores: Any) -> np.ndarray:
    """Per-AU ROC AUC of continuous scores (probabilities or logits).

    Returns:
        ``(L,)`` float64; NaN for an AU whose known labels hold only one class.
    """
    y, s = _pair(labels, scores, "scores")
    s = s.astype(np.float64)
    out = np.full(y.shape[1], np.nan)
    for k in range(y.shape[1]):
        known = y[:, k] >= 0
        yk, sk = y[known, k], s[known, k]
        n_pos = int((yk == 1).sum())
        n_neg = len(yk) - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        ranks = _rankdata(sk)
        out[k] = (ranks[yk == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return out


def icc3_1(ratings: Any) -> float:
    """ICC(3,1): two-way mixed model, consistency, single rater (Shrout and Fleiss, 1979).

    ``ICC = (BMS - EMS) / (BMS + (k - 1) EMS)`` with BMS the between-targets mean square and EMS
    the residual mean square of the ``n x k`` table.

    Args:
        ratings: ``(n, k)`` table, one row per target, one column per rater (n >= 2, k >= 2).

    Returns:
        The ICC (NaN when both mean squares are 0).
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ShapeError(f"ratings: expected shape (n, k) with n, k >= 2, got {x.shape}")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    denom = bms + (k - 1) * ems
    return float((bms - ems) / denom) if denom > 0 else float("nan")


def _intensity_pair(labels: Any, predictions: Any) -> tuple[np.ndarray, np.ndarray]:
    y = _as_2d(labels, "labels").astype(np.float64)
    p = _as_2d(predictions, "predictions").astype(np.float64)
    if p.shape != y.shape:
        raise ShapeError(f"predictions: shape {p.shape} differs from labels shape {y.shape}")
    return y, p


def intensity_icc(labels: Any, predictions: Any) -> np.ndarray:
    """Per-AU ICC(3,1) between true and predicted intensities (rows with unknown labels dropped).

    Returns:
        ``(L,)``; NaN for an AU with fewer than 2 known rows or no variance.
    """
    y, p = _intensity_pair(labels, predictions)
    out = np.full(y.shape[1], np.nan)
    for k in range(y.shape[1]):
        known = np.isfinite(y[:, k]) & (y[:, k] >= 0)
        if known.sum() >= 2:
            out[k] = icc3_1(np.stack([y[known, k], p[known, k]], axis=1))
    return out


def intensity_mae(labels: Any, predictions: Any) -> np.ndarray:
    """Per-AU mean absolute error of intensities over known rows (NaN when none is known)."""
    y, p = _intensity_pair(labels, predictions)
    known = np.isfinite(y) & (y >= 0)
    err = np.where(known, np.abs(y - p), 0.0).sum(axis=0)
    cnt = known.sum(axis=0)
    return np.where(cnt > 0, err / np.maximum(cnt, 1), np.nan)


def tune_thresholds(labels: Any, probs: Any, default: float = 0.5) -> np.ndarray:
    """Per-AU threshold ``t`` (predict active iff ``prob >= t``) that maximises F1.

    Every distinct known score of the AU is tried; ties in F1 go to the threshold closest to
    ``default``. An AU with no known positive keeps ``default``.

    Args:
        labels: ``(N, L)`` validation labels, negative for unknown.
        probs: ``(N, L)`` validation probabilities.
        default: threshold for AUs that cannot be tuned.

    Returns:
        ``(L,)`` float64 thresholds.
    """
    y, s = _pair(labels, probs, "probs")
    s = s.astype(np.float64)
    out = np.full(y.shape[1], float(default))
    for k in range(y.shape[1]):
        known = y[:, k] >= 0
        yk, sk = y[known, k] == 1, s[known, k]
        n_pos = int(yk.sum())
        if n_pos == 0:
            continue
        order = np.argsort(-sk, kind="mergesort")
        ss, ys = sk[order], yk[order]
        tp = np.cumsum(ys)
        fp = np.cumsum(~ys)
        # Thresholds at distinct scores: the last index of each run of equal scores.
        last = np.r_[ss[1:] != ss[:-1], True]
        tp, fp, cand = tp[last], fp[last], ss[last]
        f1 = 2 * tp / (2 * tp + fp + (n_pos - tp))
        best = np.flatnonzero(f1 == f1.max())
        out[k] = cand[best[np.argmin(np.abs(cand[best] - default))]]
    return out


def evaluate_occurrence(
    labels: Any, probs: Any, thresholds: Any = 0.5, au_names: list[str] | None = None
) -> dict[str, Any]:
    """Occurrence metrics in one dict.

    Args:
        labels: ``(N, L)``, negative for unknown.
        probs: ``(N, L)`` probabilities.
        thresholds: a scalar or ``(L,)`` per-AU thresholds (active iff ``prob >= threshold``).
        au_names: names for the per-AU entries (default ``"0"``, ``"1"``, ...).

    Returns:
        ``{"mean_f1", "mean_auc", "f1": {name: value}, "auc": {name: value}}`` (NaN AUCs are
        left out of ``mean_auc``; it is NaN when none is defined).
    """
    y, s = _pair(labels, probs, "probs")
    th = np.broadcast_to(np.asarray(thresholds, dtype=np.float64), (y.shape[1],))
    f1 = f1_scores(y, s >= th[None, :])
    auc = roc_auc_scores(y, s)
    names = au_names or [str(k) for k in range(y.shape[1])]
    if len(names) != y.shape[1]:
        raise ShapeError(f"au_names: expected {y.shape[1]} names, got {len(names)}")
    finite = auc[np.isfinite(auc)]
    return {
        "mean_f1": float(f1.mean()),
        "mean_auc": float(finite.mean()) if finite.size else float("nan"),
        "f1": {n: float(v) for n, v in zip(names, f1, strict=True)},
        "auc": {n: float(v) for n, v in zip(names, auc, strict=True)},
    }
