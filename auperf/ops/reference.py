"""Plain NumPy versions of the compiled operations, written for clarity, not speed.

They are the test oracles of the C++ (CPU) and CUDA paths and follow the same conventions
(see :func:`auperf.ops.warp_faces`): src_to_dst matrices, pixel centres at integer coordinates,
bilinear interpolation with a constant border. Everything is computed in float64.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "warp_reference",
    "normalise_reference",
    "similarity_reference",
    "fuse_reference",
    "adam_step_reference",
]


def warp_reference(
    frames: np.ndarray,
    matrices: np.ndarray,
    frame_index: np.ndarray,
    size: tuple[int, int],
    border_value: float | tuple[float, float, float] = 0.0,
) -> np.ndarray:
    """Bilinear warp of each face, ``(N, h, w, 3)`` float64 in pixel units, input channel order."""
    h, w = size
    n = len(matrices)
    border = np.broadcast_to(np.asarray(border_value, dtype=np.float64), (3,))
    out = np.empty((n, h, w, 3), dtype=np.float64)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    for i in range(n):
        frame = frames[frame_index[i]].astype(np.float64)
        m = np.vstack([np.asarray(matrices[i], dtype=np.float64), [0.0, 0.0, 1.0]])
        inv = np.linalg.inv(m)
        sx = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
        sy = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
        x0 = np.floor(sx)
        y0 = np.floor(sy)
        ax = (sx - x0)[..., None]
        ay = (sy - y0)[..., None]

        v00, v01 = _tap(frame, y0, x0, border), _tap(frame, y0, x0 + 1, border)
        v10, v11 = _tap(frame, y0 + 1, x0, border), _tap(frame, y0 + 1, x0 + 1, border)
        out[i] = (
            v00 * (1 - ax) * (1 - ay) + v01 * ax * (1 - ay) + v10 * (1 - ax) * ay + v11 * ax * ay
        )
    return out


def _tap(frame: np.ndarray, yy: np.ndarray, xx: np.ndarray, border: np.ndarray) -> np.ndarray:
    """Frame pixels at integer (yy, xx); the border value where they fall outside."""
    fh, fw = frame.shape[:2]
    inside = (xx >= 0) & (xx < fw) & (yy >= 0) & (yy < fh)
    yc = np.clip(yy, 0, fh - 1).astype(np.int64)
    xc = np.clip(xx, 0, fw - 1).astype(np.int64)
    return np.where(inside[..., None], frame[yc, xc], border)


def normalise_reference(
    crops: np.ndarray,
    mean=(0.0, 0.0, 0.0),
    std=(1.0, 1.0, 1.0),
    swap_rb: bool = False,
    layout: str = "NCHW",
) -> np.ndarray:
    """``(x / 255 - mean) / std`` on ``(N, h, w, 3)`` crops, optional R/B swap, then layout."""
    x = crops[..., ::-1] if swap_rb else crops
    x = (x / 255.0 - np.asarray(mean, dtype=np.float64)) / np.asarray(std, dtype=np.float64)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if layout == "NCHW" else x)


def similarity_reference(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Umeyama's least-squares similarity by SVD, with the reflection correction, per face."""
    out = np.empty((len(points), 2, 3), dtype=np.float64)
    dst = np.asarray(template, dtype=np.float64)
    for i, src in enumerate(np.asarray(points, dtype=np.float64)):
        mu_s, mu_d = src.mean(0), dst.mean(0)
        s_c, d_c = src - mu_s, dst - mu_d
        cov = d_c.T @ s_c / len(src)
        u, sig, vt = np.linalg.svd(cov)
        d = np.ones(2)
        if np.linalg.det(u) * np.linalg.det(vt) < 0:
            d[-1] = -1.0
        r = u @ np.diag(d) @ vt
        var_s = (s_c**2).sum() / len(src)
        scale = (sig * d).sum() / var_s
        out[i, :, :2] = scale * r
        out[i, :, 2] = mu_d - scale * r @ mu_s
    return out


def fuse_reference(logits: np.ndarray, thresholds=0.5) -> tuple[np.ndarray, np.ndarray]:
    """``sigmoid(mean over views)`` in float64 (overflow-free) and ``p >= threshold``."""
    s = np.asarray(logits, dtype=np.float64).mean(axis=1)
    p = np.empty_like(s)
    pos = s >= 0
    p[pos] = 1.0 / (1.0 + np.exp(-s[pos]))
    e = np.exp(s[~pos])
    p[~pos] = e / (1.0 + e)
    p32 = p.astype(np.float32)
    return p32, p32 >= np.asarray(thresholds, dtype=np.float32)


def adam_step_reference(
    params: np.ndarray,
    grads: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    step: np.ndarray,
    active: np.ndarray,
    *,
    lr,
    loss: np.ndarray | None = None,
    prev_loss: np.ndarray | None = None,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    lower: float = 0.0,
    upper: float = 1.0,
    tol_param: float = 0.0,
    tol_loss: float = 0.0,
    max_iterations: int | None = None,
) -> dict[str, np.ndarray]:
    """The rule of :func:`auperf.ops.adam_step`, face by face in float64 (with the settings
    rounded to float32, as the kernel holds them), without touching its inputs.

    Returns a dict of new arrays: ``params``, ``m``, ``v`` (float64, ``(N, D)``), ``max_dx``
    (float64, ``(N,)``: largest change of each stepped face, 0 for the others), ``step``
    (int32), ``active`` (bool), ``prev_loss`` (float64 or None) and ``status`` (int8: the
    :class:`auperf.ops.FitStatus` code of stepped faces, -1 for faces that were inactive).
    """
    # The kernel holds its settings in float32: the reference uses the same values.
    beta1, beta2, eps, lower, upper, tol_param, tol_loss = (
        float(np.float32(s)) for s in (beta1, beta2, eps, lower, upper, tol_param, tol_loss)
    )
    x = np.array(params, dtype=np.float64)
    g_all = np.asarray(grads, dtype=np.float64)
    m_out = np.array(m, dtype=np.float64)
    v_out = np.array(v, dtype=np.float64)
    step_out = np.array(step, dtype=np.int32)
    active_out = np.array(active, dtype=bool)
    n = x.shape[0]
    lrs = np.broadcast_to(np.asarray(lr, dtype=np.float32).astype(np.float64), (n,))
    prev_out = None if prev_loss is None else np.array(prev_loss, dtype=np.float64)
    status = np.full(n, -1, dtype=np.int8)
    max_dx = np.zeros(n)
    for i in range(n):
        if not active_out[i]:
            continue
        g = g_all[i]
        if not (np.isfinite(g).all() and np.isfinite(x[i]).all()):
            active_out[i] = False
            status[i] = 4
            continue
        t = max(int(step_out[i]), 0) + 1
        step_out[i] = t
        m_out[i] = beta1 * m_out[i] + (1 - beta1) * g
        v_out[i] = beta2 * v_out[i] + (1 - beta2) * g * g
        mhat = m_out[i] / (1 - beta1**t)
        vhat = v_out[i] / (1 - beta2**t)
        new = np.clip(x[i] - lrs[i] * mhat / (np.sqrt(vhat) + eps), lower, upper)
        max_dx[i] = np.abs(new - x[i]).max()
        x[i] = new
        code = 0
        if tol_param > 0 and max_dx[i] <= tol_param:
            code = 1
        elif tol_loss > 0 and loss is not None and t > 1:
            prev, cur = float(prev_out[i]), float(loss[i])
            if abs(prev - cur) <= tol_loss * max(abs(prev), 1e-12):
                code = 2
        if code == 0 and max_iterations is not None and t >= max_iterations:
            code = 3
        status[i] = code
        active_out[i] = code == 0
        if loss is not None:
            prev_out[i] = float(loss[i])
    return {
        "params": x,
        "m": m_out,
        "v": v_out,
        "max_dx": max_dx,
        "step": step_out,
        "active": active_out,
        "prev_loss": prev_out,
        "status": status,
    }
