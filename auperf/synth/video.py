"""Video: single-face sequences with smooth AU and pose trajectories, and multi-face frames.

A sequence keeps one identity. Its expression is a train of *events*, each an AU combination
(drawn by :func:`~auperf.synth.samplers.sample_expressions`) that rises during an onset, holds
at its apex and falls during an offset, with smoothstep ramps (3 t^2 - 2 t^3), so every
parameter is continuous with a continuous first derivative. Blinks are short eye-close events.
Head pose drifts as a sum of three slow sinusoids per angle.

Multi-face frames put several identities on a larger canvas; each face has a track id that
never changes, follows a path that crosses the others, and changes size slowly (its depth).
Nearer (larger) faces are painted over farther ones; per-face boxes, landmarks, visibility and
an instance map are returned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..errors import ParameterError, ValueRangeError
from . import render as R
from .params import (
    EXPRESSION_DIMS,
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_DIMS,
    IDENTITY_SLICE,
    PARAM_DIM,
    POSE_RANGE_DEG,
    au_from_expression,
    validate_params,
)
from .samplers import sample_expressions, sample_identities

__all__ = [
    "Sequence",
    "MultiFaceFrames",
    "sequence_params",
    "render_sequence",
    "render_multiface",
]

_EYE_CLOSE = EXPRESSION_NAMES.index("eye_close")


@dataclass
class Sequence:
    """One face track rendered frame by frame.

    Attributes:
        frames: a :class:`~auperf.synth.render.RenderResult` with ``T`` frames.
        times: ``(T,)`` seconds from the first frame.
        fps: frames per second.
        track_id: the track id (constant over the sequence; also in ``frames.identity``).
        events: one dict per expression event with ``onset``, ``apex``, ``offset``, ``end``
            (seconds) and ``expression`` (``(23,)`` dims at the apex).
    """

    frames: R.RenderResult
    times: np.ndarray
    fps: float
    track_id: int
    events: list[dict[str, Any]]


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _envelope(
    times: np.ndarray, onset: float, apex: float, offset: float, end: float
) -> np.ndarray:
    up = _smoothstep((times - onset) / max(apex - onset, 1e-6))
    down = 1.0 - _smoothstep((times - offset) / max(end - offset, 1e-6))
    return np.minimum(up, down)


def _drift(
    rng: np.random.Generator, times: np.ndarray, amp_deg: float, limit_deg: float
) -> np.ndarray:
    out = np.zeros_like(times)
    for _ in range(3):
        f = float(rng.uniform(0.05, 0.35))
        ph = float(rng.uniform(0.0, 2.0 * math.pi))
        a = amp_deg * float(rng.uniform(0.3, 1.0)) / 1.7
        out += a * np.array([math.sin(2.0 * math.pi * f * float(t) + ph) for t in times])
    return np.clip(out, -limit_deg, limit_deg)


def sequence_params(
    rng: np.random.Generator,
    n_frames: int,
    *,
    fps: float = 30.0,
    identity: Any = None,
    event_rate: float = 0.5,
    pose_amplitude_deg: tuple[float, float, float] = (15.0, 8.0, 5.0),
    blink_interval_s: tuple[float, float] = (2.0, 6.0),
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Parameter trajectories of one face: ``(T, PARAM_DIM)`` and the list of events.

    Args:
        rng: random generator.
        n_frames: number of frames ``T``.
        fps: frame rate.
        identity: ``(IDENTITY_DIMS,)`` identity dims (default: a random identity).
        event_rate: expression events per second (Poisson).
        pose_amplitude_deg: typical yaw, pitch, roll excursions.
        blink_interval_s: range of the time between blinks.
    """
    if not isinstance(rng, np.random.Generator):
        raise ParameterError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 1:
        raise ValueRangeError(f"n_frames: expected an integer >= 1, got {n_frames!r}")
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueRangeError(f"fps: expected a positive number, got {fps!r}")
    times = np.arange(int(n_frames)) / float(fps)
    x = np.zeros((int(n_frames), PARAM_DIM))
    if identity is None:
        ident = sample_identities(rng, 1)[0]
    else:
        ident = np.asarray(identity, dtype=np.float64)
        if ident.shape != (IDENTITY_DIMS,):
            raise ParameterError(f"identity: expected shape ({IDENTITY_DIMS},), got {ident.shape}")
    x[:, IDENTITY_SLICE] = ident
    for k in range(3):
        deg = _drift(rng, times, pose_amplitude_deg[k], POSE_RANGE_DEG[k])
        x[:, k] = 0.5 + 0.5 * deg / POSE_RANGE_DEG[k]
    duration = times[-1] + 1.0 / fps
    events: list[dict[str, Any]] = []
    t = float(rng.exponential(1.0 / event_rate)) * 0.5 if event_rate > 0 else duration
    expr = np.zeros((int(n_frames), EXPRESSION_DIMS))
    while t < duration:
        target, _ = sample_expressions(rng, 1, neutral_rate=0.0)
        target = target[0]
        target[_EYE_CLOSE] = 0.0
        onset = t
        apex = onset + float(rng.uniform(0.25, 0.8))
        offset = apex + float(rng.uniform(0.3, 1.5))
        end = offset + float(rng.uniform(0.3, 1.0))
        env = _envelope(times, onset, apex, offset, end)
        expr = np.maximum(expr, env[:, None] * target[None, :])
        events.append(
            {"onset": onset, "apex": apex, "offset": offset, "end": end, "expression": target}
        )
        t = end + float(rng.exponential(1.0 / event_rate))
    tb = float(rng.uniform(*blink_interval_s)) * 0.5
    while tb < duration:
        env = _envelope(times, tb, tb + 0.08, tb + 0.12, tb + 0.25)
        expr[:, _EYE_CLOSE] = np.maximum(expr[:, _EYE_CLOSE], env)
        tb += float(rng.uniform(*blink_interval_s))
    x[:, EXPRESSION_SLICE] = np.clip(expr, 0.0, 1.0)
    return np.clip(x, 0.0, 1.0), events


def render_sequence(
    renderer: R.FaceRenderer,
    n_frames: int,
    *,
    fps: float = 30.0,
    seed: int = 0,
    track_id: int = 0,
    identity: Any = None,
    augment: Any = None,
    **trajectory: Any,
) -> Sequence:
    """Render one face track.

    Every frame uses the same random key (derived from ``seed`` and ``track_id``), so the
    background, light and any occluder stay put from frame to frame, as with a fixed camera;
    blur, sensor noise and JPEG are drawn per frame.

    Args:
        renderer: the :class:`~auperf.synth.render.FaceRenderer` (its size and framing are used).
        n_frames: number of frames.
        fps: frame rate.
        seed: seeds the trajectory.
        track_id: the track id recorded in ``frames.identity``.
        identity: optional identity dims.
        augment: augmentations (see :meth:`FaceRenderer.render`).
        **trajectory: passed to :func:`sequence_params`.
    """
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(track_id) & 0xFFFFFFFF, 7])
    x, events = sequence_params(rng, n_frames, fps=fps, identity=identity, **trajectory)
    key = (int(seed) * 1000003 + int(track_id)) & 0xFFFFFFFF
    frames = renderer.render(
        x,
        augment=augment,
        identity=np.full(len(x), int(track_id), np.int64),
        keys=np.full(len(x), key, np.int64),
        degrade_keys=(key + 1 + np.arange(len(x), dtype=np.int64)) & 0xFFFFFFFF,
    )
    return Sequence(
        frames=frames,
        times=np.arange(len(x)) / float(fps),
        fps=float(fps),
        track_id=int(track_id),
        events=events,
    )


@dataclass
class MultiFaceFrames:
    """Frames with several moving faces. ``T`` frames, ``F`` faces, ``H x W`` canvas.

    Convention:
        Pixel coordinates with the origin at the centre of the top-left pixel, x right, y down.
        Boxes are ``(x0, y0, x1, y1)``: the extent of the 68 landmarks.

    Attributes:
        images: ``(T, H, W, 3)`` uint8 RGB.
        mask: ``(T, H, W)`` uint8 face-parsing classes (:data:`MASK_CLASSES`).
        instance: ``(T, H, W)`` int16: index ``f`` of the face owning the pixel, -1 for none.
        track_ids: ``(F,)`` int64 track ids (face ``f`` has ``track_ids[f]`` in every frame).
        boxes: ``(T, F, 4)`` float64.
        landmarks68: ``(T, F, 68, 2)`` float64.
        landmarks5: ``(T, F, 5, 2)`` float64.
        visible68: ``(T, F, 68)`` bool, the landmark's pixel belongs to this face.
        in_frame: ``(T, F)`` bool, the face's box overlaps the canvas.
        params: ``(T, F, PARAM_DIM)``.
        au_intensity: ``(T, F, 15)``; au_occurrence: ``(T, F, 15)`` bool.
        pose_deg: ``(T, F, 3)``.
        times: ``(T,)`` seconds.
    """

    images: np.ndarray
    mask: np.ndarray
    instance: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    landmarks68: np.ndarray
    landmarks5: np.ndarray
    visible68: np.ndarray
    in_frame: np.ndarray
    params: np.ndarray
    au_intensity: np.ndarray
    au_occurrence: np.ndarray
    pose_deg: np.ndarray
    times: np.ndarray


def render_multiface(
    n_frames: int,
    *,
    n_faces: int = 3,
    height: int = 360,
    width: int = 640,
    fps: float = 25.0,
    seed: int = 0,
    face_iod_px: tuple[float, float] = (28.0, 60.0),
    augment: R.Augment | None = None,
) -> MultiFaceFrames:
    """Render frames where ``n_faces`` people move across each other.

    Face ``f`` walks from one side to the other (alternate faces walk in opposite directions, so
    their paths cross), bobs vertically, and its size (inter-ocular distance in pixels) drifts
    inside ``face_iod_px``. Augmentations apply to whole frames (one random draw per sequence for
    the background and light; blur/noise/JPEG per frame).

    Returns:
        A :class:`MultiFaceFrames`.
    """
    for name, v, lo in (
        ("n_frames", n_frames, 1),
        ("n_faces", n_faces, 1),
        ("height", height, 32),
        ("width", width, 32),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueRangeError(f"{name}: expected an integer >= {lo}, got {v!r}")
    if not (0 < face_iod_px[0] <= face_iod_px[1]):
        raise ValueRangeError(f"face_iod_px: expected 0 < low <= high, got {face_iod_px!r}")
    aug = augment if augment is not None else R.Augment()
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 11])
    T, F, H, W = int(n_frames), int(n_faces), int(height), int(width)
    times = np.arange(T) / float(fps)
    params = np.zeros((T, F, PARAM_DIM))
    cx = np.zeros((T, F))
    cy = np.zeros((T, F))
    iod = np.zeros((T, F))
    span = max(times[-1], 1.0 / fps)
    for f in range(F):
        p, _ = sequence_params(rng, T, fps=fps)
        params[:, f] = p
        direction = 1.0 if f % 2 == 0 else -1.0
        x0 = W * float(rng.uniform(0.05, 0.3))
        x1 = W * float(rng.uniform(0.7, 0.95))
        u = times / span
        xs = x0 + (x1 - x0) * u
        cx[:, f] = xs if direction > 0 else (x0 + x1) - xs
        base_y = H * float(rng.uniform(0.3, 0.6))
        ph = float(rng.uniform(0, 2 * math.pi))
        cy[:, f] = base_y + 0.06 * H * np.array(
            [math.sin(2 * math.pi * 0.3 * float(t) + ph) for t in times]
        )
        lo, hi = face_iod_px
        ph2 = float(rng.uniform(0, 2 * math.pi))
        iod[:, f] = lo + (hi - lo) * (
            0.5 + 0.5 * np.array([math.sin(2 * math.pi * 0.15 * float(t) + ph2) for t in times])
        )
    track_ids = np.arange(F, dtype=np.int64) + 1
    seq_key = (int(seed) * 7919 + 13) & 0xFFFFFFFF
    u = R._rng(seed, seq_key, 5).random(2)
    bg = R._background(H, W, R._rng(seed, seq_key, 1) if u[0] < aug.clutter else None)
    light = R._normalise(
        R._random_light(R._rng(seed, seq_key, 3)) if u[1] < aug.light else R._DEFAULT_LIGHT
    )

    images = np.empty((T, H, W, 3), np.uint8)
    mask = np.zeros((T, H, W), np.uint8)
    inst = np.full((T, H, W), -1, np.int16)
    lm68 = np.zeros((T, F, 68, 2))
    vis = np.zeros((T, F, 68), bool)
    for t in range(T):
        x = validate_params(params[t])
        g = R._project(x, iod[t].copy(), np.stack([cx[t], cy[t]], 1), np.zeros(F))
        lm68[t] = g.pts[:, :68]
        frame = bg.copy()
        fmask = mask[t]
        finst = inst[t]
        for f in np.argsort(iod[t], kind="stable"):
            pts = g.pts[f]
            s = float(g.s[f])
            x0 = int(max(0, math.floor(float(pts[:, 0].min()) - 1.3 * s)))
            x1 = int(min(W, math.ceil(float(pts[:, 0].max()) + 1.3 * s)))
            y0 = int(max(0, math.floor(float(pts[:, 1].min()) - 1.3 * s)))
            y1 = int(min(H, math.ceil(float(pts[:, 1].max()) + 0.5 * s)))
            if x1 <= x0 or y1 <= y0:
                continue
            roi = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
            rmask = np.zeros((y1 - y0, x1 - x0), np.uint8)
            face = R._Face(g, int(f), x[f], origin=(x0, y0))
            R._paint_face(roi, rmask, face, light)
            R._shade(roi, rmask, face, light, 0.55, 0.55)
            sel = rmask > 0
            frame[y0:y1, x0:x1][sel] = roi[sel]
            fmask[y0:y1, x0:x1][sel] = rmask[sel]
            finst[y0:y1, x0:x1][sel] = f
        ksize = R._soften_ksize(float(np.median(iod[t])))
        if ksize:
            frame = cv2.GaussianBlur(frame, (ksize, ksize), 0)
        images[t] = R._degrade(
            frame, aug, R._rng(seed, seq_key + t + 1, 4), int(2 * np.median(iod[t]) * 256 / 80)
        )
        xi = np.floor(lm68[t, :, :, 0] + 0.5).astype(int)
        yi = np.floor(lm68[t, :, :, 1] + 0.5).astype(int)
        inside = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
        owner = finst[np.clip(yi, 0, H - 1), np.clip(xi, 0, W - 1)]
        vis[t] = inside & (owner == np.arange(F)[:, None])
    boxes = np.concatenate([lm68.min(axis=2), lm68.max(axis=2)], axis=-1)
    in_frame = (
        (boxes[..., 2] >= 0)
        & (boxes[..., 0] <= W - 1)
        & (boxes[..., 3] >= 0)
        & (boxes[..., 1] <= H - 1)
    )
    au = au_from_expression(params[..., EXPRESSION_SLICE].reshape(-1, EXPRESSION_DIMS)).reshape(
        T, F, -1
    )
    pose = (2.0 * params[..., :3] - 1.0) * np.asarray(POSE_RANGE_DEG)
    lm5 = R.landmarks5_from_68(lm68.reshape(-1, 68, 2)).reshape(T, F, 5, 2)
    return MultiFaceFrames(
        images=images,
        mask=mask,
        instance=inst,
        track_ids=track_ids,
        boxes=boxes,
        landmarks68=lm68,
        landmarks5=lm5,
        visible68=vis,
        in_frame=in_frame,
        params=params,
        au_intensity=au,
        au_occurrence=au >= 1.0 - 1e-9,
        pose_deg=pose,
        times=times,
    )
