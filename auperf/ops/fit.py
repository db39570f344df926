"""One projected Adam step for a batch of independent fits: :func:`adam_step`."""

from __future__ import annotations

import enum
import math
from typing import Any

import numpy as np

from .. import _arrays
from ..errors import DTypeError, ShapeError, ValueRangeError

__all__ = ["adam_step", "FitStatus"]

_INT32_MAX = 2**31 - 1


class FitStatus(enum.IntEnum):
    """Per-face outcome of :func:`adam_step`, written to its optional ``status`` array."""

    RUNNING = 0  #: stepped and still active
    CONVERGED_PARAM = 1  #: largest parameter change <= tol_param
    CONVERGED_LOSS = 2  #: relative loss change <= tol_loss
    MAX_ITERATIONS = 3  #: the step count reached max_iterations
    NON_FINITE = 4  #: a gradient or parameter was NaN or infinite: stopped, not updated


def adam_step(
    params: Any,
    grads: Any,
    m: Any,
    v: Any,
    step: Any,
    active: Any,
    *,
    lr: float | Any,
    loss: Any = None,
    prev_loss: Any = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    lower: float = 0.0,
    upper: float = 1.0,
    tol_param: float = 0.0,
    tol_loss: float = 0.0,
    max_iterations: int | None = None,
    status: Any = None,
    stream: int | None = None,
) -> int:
    """One step of Adam with bias correction and projection onto ``[lower, upper]``, for N
    independent fits (one D-vector of parameters per face), updating the state in place.

    Each face is stepped, tested for convergence and possibly stopped in the same pass over its
    row; faces already stopped (``active[i] == 0``) are not touched at all (their params, m, v,
    step, prev_loss and status keep their bits), so frozen faces cost nothing further.

    Rule, for each face i with ``active[i] != 0``:

    1. If any ``grads[i, :]`` or ``params[i, :]`` is NaN or infinite, the face is stopped
       (``active[i] = 0``, ``status[i] = FitStatus.NON_FINITE``) and nothing else is written:
       NaN never reaches params, m or v.
    2. Otherwise ``t = max(step[i], 0) + 1`` is stored in ``step[i]`` and for every d::

           m    = beta1 * m + (1 - beta1) * g
           v    = beta2 * v + (1 - beta2) * g**2
           mhat = m / (1 - beta1**t)
           vhat = v / (1 - beta2**t)
           x'   = clip(x - lr_i * mhat / (sqrt(vhat) + eps), lower, upper)

    3. The face then stops with the first of these that holds (its ``status``):
       ``CONVERGED_PARAM`` if ``tol_param > 0`` and ``max_d |x' - x| <= tol_param``;
       ``CONVERGED_LOSS`` if ``tol_loss > 0``, ``t > 1`` and
       ``|prev_loss[i] - loss[i]| <= tol_loss * max(|prev_loss[i]|, 1e-12)``;
       ``MAX_ITERATIONS`` if ``max_iterations`` is given and ``t >= max_iterations``;
       else it stays active (``RUNNING``). Finally ``prev_loss[i] = loss[i]``.

    ``loss[i]`` is the loss at the parameters the gradients were taken at (before this step),
    ``prev_loss[i]`` the one of the previous call; at ``t = 1`` prev_loss is not compared. A
    NaN loss never satisfies the loss rule (the face runs on to another rule).
    Arithmetic is float32, each operation rounded once (no fused multiply-add), with ``beta**t``
    from float64; the settings (lr, betas, eps, bounds, tolerances) are rounded to float32 first.
    The CPU path gives the same bits for any thread count, and the CUDA path is written to give
    the same bits as the CPU path.

    Args:
        params: ``(N, D)`` float32, C-contiguous, updated in place (D >= 1).
        grads: ``(N, D)`` float32 gradients of the loss at ``params`` (read only).
        m: ``(N, D)`` float32 first-moment estimates, in place (zeros before the first step).
        v: ``(N, D)`` float32 second-moment estimates, in place (zeros before the first step).
        step: ``(N,)`` int32 iterations taken per face, in place (zeros before the first step;
            negative values count as 0, and the count saturates at ``2**31 - 1``).
        active: ``(N,)`` bool or uint8, 1 = still fitting, in place.
        lr: learning rate, a float or ``(N,)`` per-face values, each finite and > 0.
        loss: optional ``(N,)`` float32, this iteration's loss (needed when ``tol_loss > 0``).
        prev_loss: ``(N,)`` float32, the previous iteration's loss, in place; given iff loss is.
        beta1: first-moment decay in [0, 1).
        beta2: second-moment decay in [0, 1).
        eps: added to ``sqrt(vhat)``, > 0.
        lower: lower bound of the projection box (may be ``-inf``), ``lower < upper``.
        upper: upper bound of the projection box (may be ``inf``).
        tol_param: stop when the largest parameter change is <= this (0 disables the rule).
        tol_loss: stop when the relative loss change is <= this (0 disables the rule).
        max_iterations: stop when a face's step count reaches this (None: no cap), >= 1.
        status: optional ``(N,)`` int8 output of :class:`FitStatus` codes, written for the faces
            that were active.
        stream: CUDA stream handle for device arrays (default: the framework's current stream).
            The call synchronises that stream to return the count.

    Device arrays (torch, cupy: CUDA array interface or DLPack) must all be on one device; a
    per-face ``lr`` may be a host array (it is copied), a device ``lr`` is copied to the host
    to be validated. ``grads``, ``loss`` and ``lr`` are converted to contiguous float32 if
    needed; the arrays updated in place must already have the documented dtype and layout.

    Returns:
        The number of faces still active after the step (over all N faces).

    Raises:
        ShapeError: an array of the wrong shape, not C-contiguous or read-only, or two of
            params, grads, m, v that overlap in memory.
        DTypeError: an array of the wrong dtype.
        DeviceError: arrays on different devices.
        ValueRangeError: lr, beta1, beta2, eps, lower/upper, tol_param, tol_loss or
            max_iterations outside its range, or loss given without prev_loss (or the reverse).
    """
    beta1, beta2, eps = _as_float(beta1, "beta1"), _as_float(beta2, "beta2"), _as_float(eps, "eps")
    lower, upper = _as_float(lower, "lower"), _as_float(upper, "upper")
    tol_param, tol_loss = _as_float(tol_param, "tol_param"), _as_float(tol_loss, "tol_loss")
    _check_settings(beta1, beta2, eps, lower, upper, tol_param, tol_loss, max_iterations)
    if (loss is None) != (prev_loss is None):
        raise ValueRangeError(
            "loss/prev_loss: give both or neither "
            f"(loss is {'None' if loss is None else 'given'}, "
            f"prev_loss is {'None' if prev_loss is None else 'given'})"
        )
    if tol_loss > 0 and loss is None:
        raise ValueRangeError(f"tol_loss: {tol_loss} > 0 needs loss and prev_loss")
    cap = 0 if max_iterations is None else int(max_iterations)

    arrays = {"params": params, "grads": grads, "m": m, "v": v, "step": step, "active": active}
    if loss is not None:
        arrays.update(loss=loss, prev_loss=prev_loss)
    if status is not None:
        arrays["status"] = status
    if all(type(a) is np.ndarray for a in arrays.values()):  # the common host call, kept short
        return _adam_step_cpu(arrays, lr, beta1, beta2, eps, lower, upper, tol_param, tol_loss, cap)
    dev = {k: _arrays.device_array(a, k) for k, a in arrays.items()}
    _arrays.same_device(dev)
    if dev["params"] is None:
        return _adam_step_cpu(arrays, lr, beta1, beta2, eps, lower, upper, tol_param, tol_loss, cap)
    return _adam_step_cuda(
        dev, lr, beta1, beta2, eps, lower, upper, tol_param, tol_loss, cap, stream
    )


def _as_float(value: Any, name: str) -> float:
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise DTypeError(f"{name}: expected a number, got {value!r}") from exc


def _check_settings(beta1, beta2, eps, lower, upper, tol_param, tol_loss, max_iterations) -> None:
    for name, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 <= value < 1.0:
            raise ValueRangeError(f"{name}: got {value}, expected a value in [0, 1)")
    if not (math.isfinite(eps) and eps > 0):
        raise ValueRangeError(f"eps: got {eps}, expected a finite value > 0")
    if not lower < upper:
        raise ValueRangeError(
            f"lower/upper: got lower={lower}, upper={upper}, expected lower < upper"
        )
    for name, value in (("tol_param", tol_param), ("tol_loss", tol_loss)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueRangeError(f"{name}: got {value}, expected a finite value >= 0")
    if max_iterations is not None:
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, (int, np.integer)):
            raise ValueRangeError(f"max_iterations: got {max_iterations!r}, expected an int >= 1")
        if not 1 <= int(max_iterations) <= _INT32_MAX:
            raise ValueRangeError(
                f"max_iterations: got {max_iterations}, expected an int in [1, {_INT32_MAX}]"
            )


def _check_lr_values(lr: np.ndarray) -> None:
    bad = np.flatnonzero(~(np.isfinite(lr) & (lr > 0)))
    if bad.size:
        i = int(bad[0])
        raise ValueRangeError(f"lr: entry {i} is {float(lr[i])}, expected a finite value > 0")


def _scalar_lr(lr: Any) -> float | None:
    """``lr`` as a Python float when it is a scalar, else None."""
    if type(lr) is float:
        value = lr
    elif _arrays.is_device_object(lr):
        return None
    else:
        a = np.asarray(lr)
        if a.ndim != 0:
            return None
        if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
            raise DTypeError(f"lr: expected a float or (N,) float32 values, got dtype {a.dtype}")
        value = float(a)
    if not (math.isfinite(value) and value > 0):
        raise ValueRangeError(f"lr: got {value}, expected a finite value > 0")
    return value


def _host_lr(lr: Any, n: int) -> np.ndarray:
    a = np.asarray(lr)
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise DTypeError(f"lr: expected float32 per-face values, got dtype {a.dtype}")
    if a.shape != (n,):
        raise ShapeError(f"lr: expected a float or shape ({n},), got {a.shape}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    _check_lr_values(a)
    return a


def _adam_step_cpu(arrays, lr, beta1, beta2, eps, lower, upper, tol_param, tol_loss, cap) -> int:
    from .. import _core

    arrays = {
        k: a if type(a) is np.ndarray or k in ("grads", "loss") else _host_inplace(a, k)
        for k, a in arrays.items()
    }
    params = arrays["params"]
    if params.ndim != 2:
        raise ShapeError(f"params: expected shape (N, D), got {params.shape}")
    n, d = params.shape
    if d < 1:
        raise ShapeError(f"params: expected D >= 1, got shape {params.shape}")
    grads = _host_float32(arrays["grads"], "grads", (n, d))
    loss = arrays.get("loss")
    if loss is not None:
        loss = _host_float32(loss, "loss", (n,))
    scalar = _scalar_lr(lr)
    per_face = None if scalar is not None else _host_lr(_arrays.to_host(lr), n)
    return int(
        _core.fit_cpu(
            params,
            grads,
            arrays["m"],
            arrays["v"],
            arrays["step"],
            arrays["active"],
            1.0 if scalar is None else scalar,
            per_face,
            loss,
            arrays.get("prev_loss"),
            arrays.get("status"),
            beta1,
            beta2,
            eps,
            lower,
            upper,
            tol_param,
            tol_loss,
            cap,
        )
    )


def _check_disjoint(arrays: dict[str, _arrays.DeviceArray]) -> None:
    """The device arrays written in place must not overlap each other or the gradients."""
    names = [k for k in ("params", "grads", "m", "v") if k in arrays]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            x, y = arrays[a], arrays[b]
            x_end = x.ptr + int(np.prod(x.shape)) * x.dtype.itemsize
            y_end = y.ptr + int(np.prod(y.shape)) * y.dtype.itemsize
            if x.ptr < y_end and y.ptr < x_end:
                raise ShapeError(f"{a}/{b}: the arrays overlap in memory; pass distinct arrays")


def _host_inplace(x: Any, name: str) -> np.ndarray:
    """A NumPy view of an array updated in place: NumPy arrays as they are, torch CPU tensors
    through ``.numpy()`` (same memory); anything else would be a copy and is refused."""
    if isinstance(x, np.ndarray):
        return x
    if type(x).__module__.split(".")[0] == "torch" and getattr(x, "device", None) is not None:
        if x.device.type == "cpu":
            return x.detach().numpy()
    raise DTypeError(
        f"{name}: expected a NumPy array or a torch CPU tensor (updated in place), got {type(x)}"
    )


def _host_float32(x: Any, name: str, shape: tuple[int, ...]) -> np.ndarray:
    if type(x) is np.ndarray and x.dtype == np.float32 and x.flags.c_contiguous:
        if x.shape != shape:
            raise ShapeError(f"{name}: expected shape {shape}, got {x.shape}")
        return x
    if type(x).__module__.split(".")[0] == "torch":
        x = x.detach()
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise DTypeError(f"{name}: expected float32, got dtype {a.dtype}")
    if a.shape != shape:
        raise ShapeError(f"{name}: expected shape {shape}, got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _adam_step_cuda(
    dev, lr, beta1, beta2, eps, lower, upper, tol_param, tol_loss, cap, stream
) -> int:
    from .. import _core

    p = dev["params"]
    if len(p.shape) != 2 or p.shape[1] < 1:
        raise ShapeError(f"params: expected shape (N, D) with D >= 1, got {p.shape}")
    n, d = p.shape
    expected = {"float32": ("params", "m", "v", "prev_loss"), "int32": ("step",)}
    expected["int8"] = ("status",)
    for dtype, names in expected.items():
        for name in names:
            a = dev.get(name)
            if a is not None and a.dtype != np.dtype(dtype):
                raise DTypeError(f"{name}: expected {dtype}, got {a.dtype}")
    if dev["active"].dtype not in (np.dtype(np.bool_), np.dtype(np.uint8)):
        raise DTypeError(f"active: expected bool or uint8, got {dev['active'].dtype}")
    shapes = {"params": (n, d), "m": (n, d), "v": (n, d), "step": (n,), "active": (n,)}
    shapes.update(prev_loss=(n,), status=(n,))
    for name, shape in shapes.items():
        a = dev.get(name)
        if a is None:
            continue
        if a.shape != shape:
            raise ShapeError(f"{name}: expected shape {shape}, got {a.shape}")
        if not a.is_contiguous:
            raise ShapeError(f"{name}: expected a C-contiguous array (it is updated in place)")
    temporaries = []
    g = dev["grads"]
    if g.shape != (n, d):
        raise ShapeError(f"grads: expected shape {(n, d)}, got {g.shape}")
    if g.dtype.kind != "f":
        raise DTypeError(f"grads: expected float32, got {g.dtype}")
    if g.dtype != np.float32 or not g.is_contiguous:
        g = g.contiguous_as("float32")
        temporaries.append(g.obj)
    _check_disjoint({"params": p, "grads": g, "m": dev["m"], "v": dev["v"]})
    loss_ptr = prev_ptr = 0
    if dev.get("loss") is not None:
        lo = dev["loss"]
        if lo.shape != (n,):
            raise ShapeError(f"loss: expected shape {(n,)}, got {lo.shape}")
        if lo.dtype.kind != "f":
            raise DTypeError(f"loss: expected float32, got {lo.dtype}")
        if lo.dtype != np.float32 or not lo.is_contiguous:
            lo = lo.contiguous_as("float32")
            temporaries.append(lo.obj)
        loss_ptr, prev_ptr = lo.ptr, dev["prev_loss"].ptr
    scalar = _scalar_lr(lr)
    lr_ptr = 0
    if scalar is None:
        checked = _host_lr(_arrays.to_host(lr), n)
        dlr = _arrays.device_array(lr, "lr")
        if dlr is not None:
            _arrays.same_device({"params": p, "lr": dlr})
            if dlr.dtype != np.float32 or not dlr.is_contiguous:
                dlr = dlr.contiguous_as("float32")
                temporaries.append(dlr.obj)
        else:
            dlr = _arrays.device_array(_arrays.to_device_like(checked, p), "lr")
            temporaries.append(dlr.obj)
        lr_ptr = dlr.ptr
    status = dev.get("status")
    handle = p.stream(stream)
    with _arrays.launch_guard(p, handle, tuple(temporaries)):
        return int(
            _core.fit_cuda(
                p.ptr,
                g.ptr,
                dev["m"].ptr,
                dev["v"].ptr,
                dev["step"].ptr,
                dev["active"].ptr,
                n,
                d,
                1.0 if scalar is None else scalar,
                lr_ptr,
                loss_ptr,
                prev_ptr,
                0 if status is None else status.ptr,
                beta1,
                beta2,
                eps,
                lower,
                upper,
                tol_param,
                tol_loss,
                cap,
                handle,
                p.device_id,
            )
        )
