"""Fused sigmoid-averaging thresholding of the views' AU logits: :func:`fuse_views`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _arrays
from ..errors import DTypeError, ShapeError, ValueRangeError

__all__ = ["fuse_views"]


def fuse_views(logits: Any, thresholds: Any = 0.5, *, stream: int | None = None) -> tuple[Any, Any]:
    """M0's inference rule: ``p = sigmoid(mean over views of logits)``, ``active = p >= threshold``.

    Both outputs come from one pass over the logits. The mean is accumulated in float64, and the
    sigmoid is evaluated so that it never overflows: logits of any magnitude (including +-inf)
    give probabilities in [0, 1]. NaN logits, or +inf and -inf in the same mean, give NaN
    probabilities that are not active.

    Args:
        logits: ``(N, V, L)`` float32 or float16 (V views, L AUs, V >= 1), NumPy or CUDA array.
        thresholds: a scalar or ``(L,)`` values in [0, 1]. On the device path host thresholds
            are copied to the device (they are parameters, not data).
        stream: CUDA stream handle for device input (default: the framework's current stream).

    Returns:
        ``(probabilities, active)``: ``(N, L)`` float32 and ``(N, L)`` bool, NumPy for NumPy
        input, else arrays of the input's framework on its device.

    Raises:
        ShapeError: logits not (N, V, L) with V, L >= 1, or thresholds not scalar/(L,).
        DTypeError: logits not float32/float16.
        ValueRangeError: a threshold outside [0, 1] or NaN.
    """
    dlogits = _arrays.device_array(logits, "logits")
    shape = dlogits.shape if dlogits is not None else np.shape(logits)
    ldtype = dlogits.dtype if dlogits is not None else np.asarray(logits).dtype
    if len(shape) != 3:
        raise ShapeError(f"logits: expected shape (N, V, L), got {tuple(shape)}")
    n, v, num_aus = (int(s) for s in shape)
    if v < 1 or num_aus < 1:
        raise ShapeError(f"logits: expected V >= 1 views and L >= 1 AUs, got {tuple(shape)}")
    if ldtype not in (np.float32, np.float16):
        raise DTypeError(f"logits: expected float32 or float16, got {ldtype}")
    dthr = _arrays.device_array(thresholds, "thresholds")
    thr_host = _arrays.to_host(thresholds) if dthr is not None else np.asarray(thresholds)
    thr = np.ascontiguousarray(np.atleast_1d(thr_host), dtype=np.float32)
    if thr.ndim != 1 or thr.shape[0] not in (1, num_aus):
        raise ShapeError(
            f"thresholds: expected a scalar or ({num_aus},) values, got shape {np.shape(thr_host)}"
        )
    bad = np.flatnonzero(~((thr >= 0) & (thr <= 1)))
    if bad.size:
        raise ValueRangeError(
            f"thresholds: entry {int(bad[0])} is {float(thr[bad[0]])}, expected a value in [0, 1]"
        )

    from .. import _core

    if dlogits is None:
        lg = np.ascontiguousarray(logits)
        probs = np.empty((n, num_aus), dtype=np.float32)
        active = np.empty((n, num_aus), dtype=np.bool_)
        _core.fuse_cpu(lg, thr, probs, active)
        return probs, active

    lg = dlogits if dlogits.is_contiguous else dlogits.contiguous_as(str(ldtype))
    thr_dev = _arrays.device_array(_arrays.to_device_like(thr, lg), "thresholds")
    probs = lg.empty((n, num_aus), "float32")
    active = lg.empty((n, num_aus), "bool")
    handle = lg.stream(stream)
    with _arrays.launch_guard(lg, handle, (lg.obj, thr_dev.obj)):
        _core.fuse_cuda(
            lg.ptr,
            0 if ldtype == np.float32 else 1,
            n,
            v,
            num_aus,
            thr_dev.ptr,
            thr.shape[0],
            _arrays.device_array(probs, "probabilities").ptr,
            _arrays.device_array(active, "active").ptr,
            handle,
            lg.device_id,
        )
    return probs, active
