"""Procedural face renderer: parameters in, images with full ground truth out.

The face is the 2.5D model of :mod:`auperf.synth.model` (a 3D point set rotated by the pose and
projected orthographically), painted with OpenCV polygons, ellipses and anti-aliased lines in a
fixed painter's order, then shaded by a light direction with a smooth ellipsoid normal field.
The face-parsing mask is drawn with the same polygons.

Determinism: pixels depend only on ``(seed, params, options)``, never on the batch a face is
rendered in, the thread count or the CPU. Geometry uses element-wise float64 arithmetic and the
scalar ``math`` module only; drawing uses OpenCV's integer rasterisers (fixed-point coordinates
with 4 fractional bits), 8-bit Gaussian blur and resize (bit-exact in OpenCV) and integer
shading; random numbers come from ``numpy.random.Generator`` (PCG64) seeded per face.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..errors import ParameterError, ShapeError, ValueRangeError
from . import model as M
from .params import (
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_NAMES,
    IDENTITY_SLICE,
    POSE_RANGE_DEG,
    au_from_expression,
    expression_category,
    validate_params,
)

__all__ = [
    "FaceRenderer",
    "RenderResult",
    "Augment",
    "Framing",
    "MASK_CLASSES",
    "BACKGROUND",
    "SKIN",
    "BROWS",
    "EYES",
    "NOSE",
    "UPPER_LIP",
    "MOUTH",
    "LOWER_LIP",
    "HAIR",
    "NECK",
    "CLOTHES",
    "OCCLUDER",
    "landmarks5_from_68",
]

log = logging.getLogger("auperf")

# --- face-parsing classes -------------------------------------------------------------------------
BACKGROUND, SKIN, BROWS, EYES, NOSE, UPPER_LIP, MOUTH, LOWER_LIP, HAIR, NECK, CLOTHES, OCCLUDER = (
    range(12)
)
#: Class id -> name of the face-parsing mask. ``mouth`` is the inside of the mouth and the teeth;
#: ``skin`` is face skin and ears; ``neck`` is the neck; ``clothes`` the shirt; ``occluder`` marks
#: pixels covered by an occluding object (augmentation), whatever face part lies under it.
MASK_CLASSES: tuple[str, ...] = (
    "background",
    "skin",
    "brows",
    "eyes",
    "nose",
    "upper_lip",
    "mouth",
    "lower_lip",
    "hair",
    "neck",
    "clothes",
    "occluder",
)

_E = {n: i for i, n in enumerate(EXPRESSION_NAMES)}
_I = {n: i for i, n in enumerate(IDENTITY_NAMES)}
_SHIFT = 4
_ONE = 1 << _SHIFT
_AA = cv2.LINE_AA
_DEFAULT_LIGHT = (-0.35, -0.45, 0.82)
#: Faces with at least this many pixels between the eyes get a softening blur.
_SOFTEN_MIN_IOD_PX = 40.0


def _soften_ksize(iod_px: float) -> int:
    """Kernel of the softening blur: none below 40 px between the eyes, 3, 5, then 7."""
    if iod_px < _SOFTEN_MIN_IOD_PX:
        return 0
    return 3 if iod_px < 110 else 5 if iod_px < 170 else 7


@dataclass(frozen=True)
class Augment:
    """Image augmentations; each one is applied to a face with its probability.

    All probabilities default to 0 (clean renders, the ground-truth setting used by tests). The
    random draws come from the face's own generator (seeded by the renderer seed and the face's
    parameters), so they are reproducible.

    Attributes:
        clutter: probability of a cluttered background (shapes and gradients), else a plain one.
        light: probability of a random light direction instead of the default upper-left light.
        blur: probability of a Gaussian blur with sigma drawn from ``blur_sigma`` (pixels at 256 px,
            scaled with the image size).
        noise: probability of additive Gaussian sensor noise, sigma from ``noise_sigma`` (grey
            levels).
        jpeg: probability of a JPEG round trip with quality from ``jpeg_quality``.
        occlusion: probability of one occluder (sunglasses, hand, face mask or bar). Covered pixels
            get the ``occluder`` mask class and ``RenderResult.visible68`` marks covered landmarks.
    """

    clutter: float = 0.0
    light: float = 0.0
    blur: float = 0.0
    blur_sigma: tuple[float, float] = (0.6, 2.0)
    noise: float = 0.0
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    jpeg: float = 0.0
    jpeg_quality: tuple[int, int] = (35, 90)
    occlusion: float = 0.0

    def __post_init__(self) -> None:
        for f in ("clutter", "light", "blur", "noise", "jpeg", "occlusion"):
            v = getattr(self, f)
            if not (isinstance(v, (int, float)) and 0.0 <= float(v) <= 1.0):
                raise ValueRangeError(f"Augment.{f}: expected a probability in [0, 1], got {v!r}")
        for f, lo in (("blur_sigma", 0.0), ("noise_sigma", 0.0), ("jpeg_quality", 1)):
            a, b = getattr(self, f)
            if not (lo <= a <= b):
                raise ValueRangeError(f"Augment.{f}: expected {lo} <= low <= high, got {(a, b)}")
        if self.jpeg_quality[1] > 100:
            raise ValueRangeError(f"Augment.jpeg_quality: expected <= 100, got {self.jpeg_quality}")

    @classmethod
    def off(cls) -> Augment:
        """No augmentation at all."""
        return cls()

    @classmethod
    def realistic(cls) -> Augment:
        """A training mix: most faces get clutter and varied light, some blur, noise, JPEG and
        occluders."""
        return cls(clutter=0.8, light=0.8, blur=0.3, noise=0.5, jpeg=0.5, occlusion=0.2)

    @classmethod
    def all(cls) -> Augment:
        """Every augmentation on every face."""
        return cls(clutter=1.0, light=1.0, blur=1.0, noise=1.0, jpeg=1.0, occlusion=1.0)


@dataclass(frozen=True)
class Framing:
    """Where the face lands in the image.

    With the defaults a frontal neutral average face puts its 5 points on
    ``auperf.align.template(size)``. Jitter values are half ranges of uniform draws per face.

    Convention:
        Scaling and in-plane rotation act about the image centre ``((size - 1) / 2, (size - 1)
        / 2)`` (pixel centres at integers, x right, y down); positive roll is clockwise on screen.

    Attributes:
        scale: face size relative to the template framing.
        shift: ``(dx, dy)`` offset as a fraction of the image size.
        jitter_scale: relative scale jitter (0.1 = +-10 %).
        jitter_shift: translation jitter as a fraction of the image size.
        jitter_roll_deg: in-plane rotation jitter in degrees (added to the reported roll).
    """

    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    jitter_scale: float = 0.0
    jitter_shift: float = 0.0
    jitter_roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if not (0.05 <= self.scale <= 10.0):
            raise ValueRangeError(f"Framing.scale: expected in [0.05, 10], got {self.scale!r}")
        if not (0.0 <= self.jitter_scale < 1.0):
            raise ValueRangeError(
                f"Framing.jitter_scale: expected in [0, 1), got {self.jitter_scale!r}"
            )
        if not (0.0 <= self.jitter_shift <= 1.0):
            raise ValueRangeError(
                f"Framing.jitter_shift: expected in [0, 1], got {self.jitter_shift!r}"
            )
        if not (0.0 <= self.jitter_roll_deg <= 90.0):
            raise ValueRangeError(
                f"Framing.jitter_roll_deg: expected in [0, 90], got {self.jitter_roll_deg!r}"
            )


@dataclass
class RenderResult:
    """A rendered batch with its ground truth. ``N`` faces of ``H x W`` pixels.

    Convention:
        Image coordinates: origin at the centre of the top-left pixel, x right, y down, in pixels.
        Images are RGB uint8. Landmark point orders as in :mod:`auperf.align` (5 points) and
        iBUG-68 (68 points).

    Attributes:
        images: ``(N, H, W, 3)`` uint8 RGB.
        landmarks68: ``(N, 68, 2)`` float64, iBUG order (jaw 0-16, brows 17-26, nose 27-35,
            eyes 36-47, mouth 48-67).
        landmarks5: ``(N, 5, 2)`` float64: eye centres (midpoint of the two eye corners; image-left
            eye first), nose tip (30), mouth corners (48, 54).
        mask: ``(N, H, W)`` uint8 face-parsing classes, see :data:`MASK_CLASSES`.
        au_intensity: ``(N, 15)`` float64 in ``[0, 5]`` for :data:`AU_IDS`.
        au_occurrence: ``(N, 15)`` bool, intensity >= 1 (FACS level A and above).
        pose_deg: ``(N, 3)`` yaw, pitch, roll in degrees (roll includes framing jitter).
        identity: ``(N,)`` int64 identity ids as given to ``render`` (-1 where unknown).
        expression: ``(N,)`` int64 basic-expression category (:data:`CATEGORY_NAMES`), -1 where
            the AU mix matches no prototype.
        params: ``(N, PARAM_DIM)`` float64, the parameters rendered.
        visible68: ``(N, 68)`` bool, False where an occluder covers the landmark.
        occluded: ``(N,)`` bool, an occluder was drawn on the face.
        light: ``(N, 3)`` unit light directions used for shading (x right, y down, z to camera).
    """

    images: np.ndarray
    landmarks68: np.ndarray
    landmarks5: np.ndarray
    mask: np.ndarray
    au_intensity: np.ndarray
    au_occurrence: np.ndarray
    pose_deg: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    params: np.ndarray
    visible68: np.ndarray
    occluded: np.ndarray
    light: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def __len__(self) -> int:
        return int(self.images.shape[0])


def landmarks5_from_68(landmarks68: np.ndarray) -> np.ndarray:
    """The 5 alignment points from 68: eye centres as corner midpoints, nose tip, mouth corners.

    Convention:
        Same coordinates as the input; output point order as ``auperf.align`` templates: eye on
        the image's left, eye on the image's right, nose tip, mouth corner image-left, mouth
        corner image-right.

    Args:
        landmarks68: ``(N, 68, 2)``.

    Returns:
        ``(N, 5, 2)`` float64 in the :mod:`auperf.align` point order.
    """
    from ..align import five_points_from_68

    return five_points_from_68(landmarks68)


# --- splines --------------------------------------------------------------------------------------
_SPLINE_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _spline_table(k: int, m: int, closed: bool) -> tuple[np.ndarray, np.ndarray]:
    key = (k, m, closed)
    if key not in _SPLINE_CACHE:
        segs = k if closed else k - 1
        t = np.arange(m, dtype=np.float64) / m
        rows_i, rows_w = [], []
        for s in range(segs):
            for tt in t:
                idx = [s - 1, s, s + 1, s + 2]
                if closed:
                    idx = [i % k for i in idx]
                else:
                    idx = [min(max(i, 0), k - 1) for i in idx]
                t2, t3 = tt * tt, tt * tt * tt
                w = [
                    (-t3 + 2 * t2 - tt) / 2,
                    (3 * t3 - 5 * t2 + 2) / 2,
                    (-3 * t3 + 4 * t2 + tt) / 2,
                    (t3 - t2) / 2,
                ]
                rows_i.append(idx)
                rows_w.append(w)
        if not closed:
            rows_i.append([k - 2, k - 1, k - 1, k - 1])
            rows_w.append([0.0, 1.0, 0.0, 0.0])
        _SPLINE_CACHE[key] = (np.array(rows_i), np.array(rows_w))
    return _SPLINE_CACHE[key]


def _spline(pts: np.ndarray, m: int = 4, closed: bool = False) -> np.ndarray:
    """Catmull-Rom curve through ``(N, K, 2)`` control points -> ``(N, M, 2)``."""
    idx, w = _spline_table(pts.shape[1], m, closed)
    out = w[None, :, 0, None] * pts[:, idx[:, 0]]
    for j in range(1, 4):
        out = out + w[None, :, j, None] * pts[:, idx[:, j]]
    return out


def _stack(parts) -> np.ndarray:
    """Stack points and point arrays into one ``(K, 2)`` array."""
    return np.concatenate([p.reshape(-1, 2) for p in parts])


def _q(a: np.ndarray) -> np.ndarray:
    """Float pixel coordinates -> OpenCV fixed-point int32 (4 fractional bits)."""
    return np.floor(a * _ONE + 0.5).astype(np.int32)


# --- colours --------------------------------------------------------------------------------------
def _mix(a, b, t: float):
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def _scale(c, f: float):
    return (c[0] * f, c[1] * f, c[2] * f)


def _c(c) -> tuple[int, int, int]:
    r, g, b = float(c[0]), float(c[1]), float(c[2])
    return (
        int((255.0 if r > 255.0 else r if r > 0.0 else 0.0) + 0.5),
        int((255.0 if g > 255.0 else g if g > 0.0 else 0.0) + 0.5),
        int((255.0 if b > 255.0 else b if b > 0.0 else 0.0) + 0.5),
    )


def _ramp(stops, t: float):
    t = min(max(t, 0.0), 1.0) * (len(stops) - 1)
    i = min(int(t), len(stops) - 2)
    return _mix(stops[i], stops[i + 1], t - i)


_SKIN = [(92, 58, 42), (141, 94, 66), (198, 142, 108), (228, 184, 154), (246, 214, 192)]
_HAIR = [(22, 18, 16), (58, 38, 26), (106, 70, 42), (150, 78, 40), (200, 160, 100), (228, 204, 150)]
_SHIRTS = [
    (40, 52, 80),
    (150, 30, 40),
    (220, 220, 215),
    (60, 90, 60),
    (30, 30, 32),
    (120, 140, 170),
    (200, 150, 60),
    (90, 60, 110),
]
_IRIS = [(52, 32, 20), (96, 62, 30), (92, 104, 58), (70, 110, 140), (110, 130, 150)]


@dataclass
class _Look:
    skin: tuple
    lip: tuple
    hair: tuple
    brow: tuple
    iris: tuple
    sclera: tuple
    style: int
    volume: float
    brow_thick: float
    iris_r: float
    age: float
    forehead_lines: float
    glabella: float
    nasolabial: float
    blush: float
    chin_boss: float
    lid_droop: float
    nose_bridge: float
    nose_tip: float
    ear: float
    hair_seed: int
    shirt: tuple
    beard: float
    mustache: float
    freckles: float


def _look(ident: np.ndarray) -> _Look:
    g = lambda n: float(ident[_I[n]])  # noqa: E731
    tone = g("skin_tone")
    warm = g("skin_warmth") - 0.5
    skin = _ramp(_SKIN, tone)
    skin = (skin[0] * (1 + 0.06 * warm), skin[1], skin[2] * (1 - 0.12 * warm))
    lipc = _ramp([(150, 60, 66), (188, 88, 92), (206, 110, 112)], g("lip_color"))
    lip = _mix(skin, lipc, 0.55)
    age = g("age")
    hair = _ramp(_HAIR, g("hair_color"))
    grey = max(0.0, age - 0.72) / 0.28
    hair = _mix(hair, (170, 168, 165), 0.8 * grey)
    brow = _mix(_scale(hair, 0.75), (30, 24, 20), 0.6 * g("brow_darkness"))
    brow = _mix(skin, brow, 0.55 + 0.35 * g("brow_darkness"))
    style_v = g("hair_style")
    style = (
        0
        if style_v < 0.18
        else 1
        if style_v < 0.45
        else 2
        if style_v < 0.65
        else 3
        if style_v < 0.86
        else 4
    )
    return _Look(
        skin=skin,
        lip=lip,
        hair=hair,
        brow=brow,
        iris=_ramp(_IRIS, g("iris_color")),
        sclera=_mix((236, 232, 226), skin, 0.12),
        style=style,
        volume=g("hair_volume"),
        brow_thick=0.07 + 0.06 * g("brow_thickness"),
        iris_r=0.088 + 0.03 * g("iris_size"),
        age=age,
        forehead_lines=g("forehead_lines"),
        glabella=g("glabella_lines"),
        nasolabial=g("nasolabial_depth"),
        blush=g("skin_blush"),
        chin_boss=g("chin_boss"),
        lid_droop=g("lid_droop"),
        nose_bridge=g("nose_bridge"),
        nose_tip=g("nose_tip"),
        ear=g("ear_size"),
        hair_seed=zlib.crc32(np.ascontiguousarray(ident).tobytes()),
        shirt=_SHIRTS[zlib.crc32(np.ascontiguousarray(ident).tobytes()) % len(_SHIRTS)],
        beard=max(0.0, g("beard") - 0.6) / 0.4,
        mustache=max(0.0, g("mustache") - 0.6) / 0.4,
        freckles=max(0.0, g("freckles") - 0.7) / 0.3,
    )


# --- geometry of a batch --------------------------------------------------------------------------
@dataclass
class _Geom:
    pts: np.ndarray  # (N, P, 2) image pixels
    z: np.ndarray  # (N, P) depth (canonical units, towards the camera)
    neutral: np.ndarray  # (N, P, 2) identity-only geometry in image pixels
    ex: np.ndarray  # (N, 2) image vector of one canonical unit along x
    ey: np.ndarray  # (N, 2) ... along y
    ez: np.ndarray  # (N, 2) ... along z
    s: np.ndarray  # (N,) pixels per canonical unit
    rot: np.ndarray  # (N, 3, 3)
    roll_deg: np.ndarray  # (N,) total roll
    cache: dict = field(default_factory=dict)  # batch curves, filled on first use


def _template_fit(size: int) -> tuple[float, np.ndarray]:
    """Scale and translation that put the average frontal face's 5 points on the template."""
    from_5 = landmarks5_from_68(M.MEAN_SHAPE[None, :68, :2])[0]
    tmpl = _template(size)
    pm, tm = from_5.mean(0), tmpl.mean(0)
    a, b = from_5 - pm, tmpl - tm
    s = float((a * b).sum() / (a * a).sum())
    return s, tm - s * pm


def _template(size: int) -> np.ndarray:
    # The 112 px 5-point template of auperf.align (kept here so the renderer has no dependency on
    # the compiled core); scaled to the image size about the corner.
    t112 = np.array(
        [
            [38.2946, 51.6963],
            [73.5318, 51.5014],
            [56.0252, 71.7366],
            [41.5493, 92.3655],
            [70.7299, 92.2041],
        ]
    )
    return t112 * (size / 112.0)


def _project(params, s_px, t_px, roll_extra) -> _Geom:
    shapes, neutral = M.build_shapes(params)
    rot = M.pose_matrices(params, roll_extra)
    r = M.rotate(shapes, rot)
    rn = M.rotate(neutral, rot)
    s = s_px[:, None, None]
    pts = s * r[..., :2] + t_px[:, None, :]
    npts = s * rn[..., :2] + t_px[:, None, :]
    roll = (2.0 * params[:, 2] - 1.0) * POSE_RANGE_DEG[2] + roll_extra
    return _Geom(
        pts=pts,
        z=r[..., 2],
        neutral=npts,
        ex=s_px[:, None] * rot[:, :2, 0],
        ey=s_px[:, None] * rot[:, :2, 1],
        ez=s_px[:, None] * rot[:, :2, 2],
        s=s_px,
        rot=rot,
        roll_deg=roll,
    )


# --- drawing helpers ------------------------------------------------------------------------------
def _fill(img, mask, poly_q, colour, cls=None, aa=True):
    cv2.fillPoly(img, [poly_q], _c(colour), _AA if aa else cv2.LINE_8, _SHIFT)
    if cls is not None and mask is not None:
        cv2.fillPoly(mask, [poly_q], int(cls), cv2.LINE_8, _SHIFT)


def _lines(img, curves_q, colour, thick: int):
    if curves_q:
        cv2.polylines(img, curves_q, False, _c(colour), max(1, int(thick)), _AA, _SHIFT)


def _ellipse(img, centre, axes, angle, colour, mask=None, cls=None, thickness=-1):
    c = (int(math.floor(centre[0] * _ONE + 0.5)), int(math.floor(centre[1] * _ONE + 0.5)))
    ax = (max(1, int(axes[0] * _ONE + 0.5)), max(1, int(axes[1] * _ONE + 0.5)))
    col = int(colour) if isinstance(colour, (int, np.integer)) else _c(colour)
    cv2.ellipse(img, c, ax, float(angle), 0.0, 360.0, col, thickness, _AA, _SHIFT)
    if mask is not None:
        cv2.ellipse(mask, c, ax, float(angle), 0.0, 360.0, int(cls), thickness, cv2.LINE_8, _SHIFT)


def _on_skin(img, mask, centre, radius, draw) -> None:
    """Run ``draw(roi_img, roi_mask, origin)`` on copies of the square around ``centre`` and keep
    the result only on pixels already labelled skin (features must not spill out of the face)."""
    h, w = mask.shape
    x0, y0 = max(0, int(centre[0] - radius) - 1), max(0, int(centre[1] - radius) - 1)
    x1, y1 = min(w, int(centre[0] + radius) + 2), min(h, int(centre[1] + radius) + 2)
    if x1 <= x0 or y1 <= y0:
        return
    view, mview = img[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    roi, rmask = view.copy(), mview.copy()
    draw(roi, rmask, np.array([x0, y0], dtype=np.float64))
    skin = (mview == SKIN).view(np.uint8)
    cv2.copyTo(roi, skin, view)  # writes into the views in place
    cv2.copyTo(rmask, skin, mview)


def _unit(v):
    n = math.hypot(float(v[0]), float(v[1]))
    return (float(v[0]) / n, float(v[1]) / n) if n > 0 else (1.0, 0.0)


class _Face:
    """Everything needed to paint one face (views into the batch geometry)."""

    def __init__(self, g: _Geom, k: int, params_row: np.ndarray, origin=(0.0, 0.0)):
        o = np.asarray(origin, dtype=np.float64)
        self.k = k
        self.origin = o
        self.batch_pts = g.pts
        self.cache = g.cache
        self.p = g.pts[k] - o
        self.pn = g.neutral[k] - o
        self.z = g.z[k]
        self.ex = g.ex[k]
        self.ey = g.ey[k]
        self.ez = g.ez[k]
        self.s = float(g.s[k])
        self.roll = float(g.roll_deg[k])
        self.rot = g.rot[k]
        self.e = params_row[EXPRESSION_SLICE]
        self.id = params_row[IDENTITY_SLICE]
        self.look = _look(self.id)

    def at(self, i, dx=0.0, dy=0.0):
        """Point ``i`` moved by ``(dx, dy)`` canonical units along the face axes."""
        return self.p[i] + dx * self.ex + dy * self.ey

    def ev(self, name):
        return float(self.e[_E[name]])


def _curve(face: _Face, idx, m=4, closed=False):
    """Catmull-Rom curve through points ``idx`` of this face (computed once for the batch)."""
    key = (tuple(idx), m, closed)
    cache = face.cache
    if key not in cache:
        cache[key] = _spline(face.batch_pts[:, list(idx)], m, closed)
    return cache[key][face.k] - face.origin


def _offset_curve(curve: np.ndarray, vec: np.ndarray, amount: np.ndarray | float) -> np.ndarray:
    return curve + np.asarray(amount, dtype=np.float64).reshape(-1, 1) * vec[None, :]


_LIN: dict[int, np.ndarray] = {}


def _lin01(m: int) -> np.ndarray:
    if m not in _LIN:
        _LIN[m] = np.linspace(0.0, 1.0, m)
    return _LIN[m]


def _hump(m: int) -> np.ndarray:
    t = _lin01(m)
    return 4.0 * t * (1.0 - t)


_ARC_N = 1440
_ARC_COS = np.array([math.cos(2.0 * math.pi * i / _ARC_N) for i in range(_ARC_N + 1)])
_ARC_SIN = np.array([math.sin(2.0 * math.pi * i / _ARC_N) for i in range(_ARC_N + 1)])


def _arc(c, r, a0, a1, n, ex_u, ey_u):
    """``n`` points of a circle arc from angle ``a0`` to ``a1`` (radians, face axes)."""
    i0 = int(round(a0 / (2.0 * math.pi) * _ARC_N))
    i1 = int(round(a1 / (2.0 * math.pi) * _ARC_N))
    idx = (i0 + ((i1 - i0) * np.arange(n)) // max(n - 1, 1)) % _ARC_N
    ct, st = _ARC_COS[idx], _ARC_SIN[idx]
    return c[None] + r * (ct[:, None] * ex_u[None] + st[:, None] * ey_u[None])


# --- painting -------------------------------------------------------------------------------------
def _paint_face(img: np.ndarray, mask: np.ndarray, f: _Face, light) -> None:
    """Paint one face onto ``img``/``mask`` (whose pixels outside the face are left alone)."""
    L = f.look
    s = f.s
    skin = L.skin
    ex_u, ey_u = _unit(f.ex), _unit(f.ey)
    P = f.p
    X = M.EXTRA
    lw = max(1.0, s * 0.022)  # wrinkle line width in px

    # head centre and cranium radius (identity only)
    head_c = f.pn[X["head"][0]]
    R = s * 1.04 * (1.0 + 0.05 * (2 * float(f.id[_I["face_width"]]) - 1))

    exa, eya = np.asarray(ex_u), np.asarray(ey_u)

    def circle_pts(c, r, a0, a1, n=24):
        return _arc(c, r, a0, a1, n, exa, eya)

    hair_dark = _scale(L.hair, 0.7)
    rv = R * (1.03 + 0.10 * L.volume)
    # back hair
    if L.style in (2, 3):
        drop = 1.55 if L.style == 2 else 2.9
        arc = circle_pts(head_c, rv, math.pi * 0.95, math.pi * 2.05)
        side_r = head_c + (rv * 1.02) * np.asarray(ex_u) + (drop * s) * np.asarray(ey_u)
        side_l = head_c - (rv * 1.02) * np.asarray(ex_u) + (drop * s) * np.asarray(ey_u)
        inner_r = head_c + (rv * 0.75) * np.asarray(ex_u) + (drop * s * 1.02) * np.asarray(ey_u)
        inner_l = head_c - (rv * 0.75) * np.asarray(ex_u) + (drop * s * 1.02) * np.asarray(ey_u)
        poly = _stack([side_l[None], arc, side_r[None], inner_r[None], inner_l[None]])
        _fill(img, mask, _q(poly), hair_dark, HAIR)
    # shirt and neck
    _fill(img, mask, _q(P[X["torso"]]), L.shirt, CLOTHES)
    neck = P[X["neck"]]
    _fill(img, mask, _q(neck), _scale(skin, 0.86), NECK)
    jaw_sh = _stack(
        [
            P[3:14],
            P[X["neck"][1]] + 0.25 * s * np.asarray(ey_u),
            P[X["neck"][0]] + 0.25 * s * np.asarray(ey_u),
        ]
    )
    _fill(img, None, _q(jaw_sh), _scale(skin, 0.72))
    # ears
    for j, sign in ((0, -1), (1, 1)):
        c = f.pn[X["ear"][j]]
        zrel = float(f.z[X["ear"][j]]) - M.ROTATION_CENTRE[2]
        if zrel < -0.12:
            continue  # turned away behind the head
        wf = min(1.2, max(0.25, 0.5 + 2.0 * zrel))
        ax = (s * 0.15 * (0.9 + 0.3 * L.ear) * wf, s * 0.29 * (0.9 + 0.3 * L.ear))
        _ellipse(img, c, ax, f.roll, _scale(skin, 0.93), mask, SKIN)
        _ellipse(
            img,
            c + sign * 0.02 * s * np.asarray(ex_u),
            (ax[0] * 0.55, ax[1] * 0.65),
            f.roll,
            _scale(skin, 0.78),
        )
    # cranium and face
    cran = circle_pts(head_c, R, math.pi * 0.9, math.pi * 2.1, 28)
    _fill(img, mask, _q(cran), skin, SKIN)
    outline_idx = M.JAW + X["forehead"] + X["cheekbone"] + X["temple"]
    hull = cv2.convexHull(_q(P[outline_idx]).reshape(-1, 1, 2))
    _fill(img, mask, hull, skin, SKIN)

    # cheeks: blush and puff highlight (concentric ellipses = soft gradient)
    turned = abs(float(f.rot[0, 2])) > 0.25  # beyond ~15 degrees of yaw
    blush_col = _mix(skin, (220, 90, 90), 0.10 + 0.12 * L.blush + 0.10 * f.ev("cheek_raise"))
    puff = f.ev("cheek_puff")
    for j in range(2):
        c = P[X["cheek"][j]]
        levels = []
        for k_ax, t in ((1.0, 0.35), (0.72, 0.7), (0.45, 1.0)):
            ax = (s * 0.30 * k_ax * (1 + 0.35 * puff), s * 0.22 * k_ax * (1 + 0.25 * puff))
            col = _mix(skin, blush_col, t)
            if puff > 0.0:
                col = _mix(col, _scale(skin, 1.12), puff * 0.5 * t)
            levels.append((ax, col))
        draw_cheek = lambda roi, _m, o, lv=levels, c=c: [  # noqa: E731
            _ellipse(roi, c - o, ax, f.roll, col) for ax, col in lv
        ]
        if turned:  # soft features must not spill over the outline of a turned face
            _on_skin(img, mask, c, s * 0.42, draw_cheek)
        else:
            draw_cheek(img, None, np.zeros(2))
    # eye sockets (slightly darker skin); the lid skin below uses the inner colour
    socket = _scale(skin, 0.93)
    for a, b in ((36, 39), (42, 45)):
        c = 0.5 * (f.pn[a] + f.pn[b]) - 0.03 * s * np.asarray(ey_u)
        draw_socket = lambda roi, _m, o, c=c: (  # noqa: E731
            _ellipse(roi, c - o, (s * 0.46, s * 0.34), f.roll, _mix(skin, socket, 0.5)),
            _ellipse(roi, c - o, (s * 0.40, s * 0.29), f.roll, socket),
        )
        if turned:
            _on_skin(img, mask, c, s * 0.48, draw_socket)
        else:
            draw_socket(img, None, np.zeros(2))

    # nasolabial folds
    nl_depth = (
        0.25 * L.nasolabial
        + 0.35 * L.age * L.age
        + 0.75 * f.ev("smile")
        + 0.5 * f.ev("upper_lip_raise")
        + 0.35 * f.ev("nose_wrinkle")
    )
    if nl_depth > 0.02:
        curves = [_q(_curve(f, X["nasolabial_l"], 5)), _q(_curve(f, X["nasolabial_r"], 5))]
        _lines(img, curves, _scale(skin, 1 - 0.10 * min(nl_depth, 1.2)), lw * 3)
        _lines(img, curves, _scale(skin, 1 - 0.22 * min(nl_depth, 1.2)), lw)

    _paint_eyes(img, mask, f, socket, light)
    _paint_forehead(img, f, lw)
    _paint_brows(img, mask, f)
    _paint_nose(img, mask, f, light, lw)
    _paint_mouth(img, mask, f, lw)
    _paint_lower_wrinkles(img, f, lw)
    _paint_facial_hair(img, mask, f)
    _paint_front_hair(img, mask, f, head_c, R, rv, circle_pts)


def _paint_eyes(img, mask, f: _Face, socket, light):
    L, s = f.look, f.s
    ey_u = np.asarray(_unit(f.ey))
    r = L.iris_r * s
    turned = (
        abs(float(f.rot[0, 2])) > 0.25
    )  # beyond ~15 degrees of yaw the far eye can leave the face
    for up, lo, iris_i in (
        ([36, 37, 38, 39], [39, 40, 41, 36], 0),
        ([42, 43, 44, 45], [45, 46, 47, 42], 1),
    ):
        upper = _curve(f, up, 5)
        lower = _curve(f, lo, 5)
        lash = max(1, int(round(s * 0.028)))
        opening = max(
            float(np.hypot(*(f.p[a] - f.p[b]))) for a, b in M.LID_PAIRS[iris_i * 2 : iris_i * 2 + 2]
        )
        if opening < 0.6:  # closed: no eye pixels, only the lash line
            _lines(img, [_q(upper)], (35, 25, 22), lash)
            continue
        c = f.p[M.EXTRA["iris"][iris_i]]

        def draw(im, mk, o, upper=upper, lower=lower, c=c, lash=lash):
            up_o, lo_o, c_o = upper - o, lower - o, c - o
            _fill(im, mk, _q(_stack([up_o, lo_o[1:-1]])), L.sclera, EYES)
            # iris and pupil (an ellipse foreshortened by yaw), then lids cover what sticks out
            sq = max(0.55, abs(float(f.rot[0, 0])) ** 0.5)
            _ellipse(im, c_o, (r * sq, r), f.roll, _scale(L.iris, 0.6))
            _ellipse(im, c_o, (r * sq * 0.82, r * 0.82), f.roll, L.iris)
            _ellipse(im, c_o, (r * sq * 0.42, r * 0.42), f.roll, (14, 12, 12))
            hl = c_o + np.asarray(light[:2]) * r * 0.45
            _ellipse(im, hl, (max(0.8, r * 0.16), max(0.8, r * 0.16)), 0, (250, 250, 250))
            hump = _hump(up_o.shape[0])
            cover = r * 1.25 + 0.02 * f.s
            top = _offset_curve(up_o, -ey_u, hump * cover)
            bot = _offset_curve(lo_o, ey_u, _hump(lo_o.shape[0]) * cover)
            _fill(im, None, _q(_stack([up_o, top[::-1]])), socket)
            _fill(im, None, _q(_stack([lo_o, bot[::-1]])), socket)
            # lash line, lower lid line, crease
            _lines(im, [_q(up_o)], (35, 25, 22), lash)
            _lines(im, [_q(lo_o[1:-1])], _scale(socket, 0.75), max(1, lash // 2))
            crease_h = (0.07 - 0.045 * L.lid_droop) * s
            crease = _offset_curve(up_o, -ey_u, hump * crease_h + 0.01 * s)
            _lines(im, [_q(crease[1:-1])], _scale(socket, 0.82), max(1, int(s * 0.014)))

        if turned:
            _on_skin(img, mask, 0.5 * (f.p[up[0]] + f.p[up[-1]]), 0.5 * s, draw)
        else:
            draw(img, mask, np.zeros(2))


def _paint_forehead(img, f: _Face, lw):
    """Forehead lines (AU1 centre, AU2 sides, identity/age everywhere) and glabella (AU4)."""
    L, skin, s = f.look, f.look.skin, f.s
    ey_u = np.asarray(_unit(f.ey))
    base = 0.45 * L.forehead_lines * (0.4 + 0.6 * L.age)
    centre = base + 0.95 * f.ev("inner_brow_raise")
    side = base + 0.95 * f.ev("outer_brow_raise")
    brow_line = f.p[[17, 18, 19, 20, 21]], f.p[[22, 23, 24, 25, 26]]
    mid = 0.5 * (f.p[21] + f.p[22])
    ctrl = _stack([brow_line[0], mid[None], brow_line[1]])  # 11 points left -> right
    for k, off in enumerate((0.20, 0.31, 0.42)):
        line = ctrl - (off * s) * ey_u[None]
        sm = _spline(line[None], 4)[0]
        n = sm.shape[0]
        a, b = int(n * 0.30), int(n * 0.70)
        fade = 1.0 - 0.2 * k
        for seg, amt in ((sm[a : b + 1], centre), (sm[2 : a + 1], side), (sm[b : n - 2], side)):
            amt = amt * fade
            if amt > 0.02 and seg.shape[0] > 1:
                _lines(img, [_q(seg)], _scale(skin, 1 - 0.16 * min(amt, 1.3)), lw)
    gl = 0.85 * f.ev("brow_lower") + 0.45 * L.glabella * (0.5 + 0.5 * L.age)
    if gl > 0.02:
        ex_u = np.asarray(_unit(f.ex))
        lines = []
        for sx in (-1, 1):
            top = mid + (sx * 0.045 * s) * ex_u - 0.06 * s * ey_u
            bot = mid + (sx * 0.06 * s) * ex_u + 0.12 * s * ey_u
            lines.append(_q(_stack([top, 0.5 * (top + bot) + sx * 0.01 * s * ex_u, bot])))
        _lines(img, lines, _scale(skin, 1 - 0.22 * min(gl, 1.3)), lw * 1.3)


def _paint_brows(img, mask, f: _Face):
    L, s = f.look, f.s
    ey_u = np.asarray(_unit(f.ey))
    turned = abs(float(f.rot[0, 2])) > 0.25
    for idx in ([17, 18, 19, 20, 21], [26, 25, 24, 23, 22]):
        c = _curve(f, idx, 4)
        m = c.shape[0]
        t = _lin01(m)  # outer -> inner
        half = s * L.brow_thick * (0.5 + 0.5 * np.sqrt(t)) * 0.5
        half = half * (1.0 + 0.25 * f.ev("brow_lower") * t)
        up = c - half[:, None] * ey_u[None]
        dn = c + half[:, None] * ey_u[None]
        poly = _stack([up, dn[::-1]])

        def draw(im, mk, o, poly=poly, c=c):
            _fill(im, mk, _q(poly - o), L.brow, BROWS)
            # hair texture: a darker centre stroke
            _lines(im, [_q(c[1:] - o)], _scale(L.brow, 0.8), max(1, int(s * L.brow_thick * 0.3)))

        if turned:  # the far brow can pass the face outline
            _on_skin(img, mask, c.mean(axis=0), 0.55 * s, draw)
        else:
            draw(img, mask, np.zeros(2))


def _paint_nose(img, mask, f: _Face, light, lw):
    L, s, skin = f.look, f.s, f.look.skin
    X = M.EXTRA
    ex_u = np.asarray(_unit(f.ex))
    ey_u = np.asarray(_unit(f.ey))
    w_top = s * (0.085 + 0.05 * L.nose_bridge)
    al, ar = f.p[X["alar"][0]], f.p[X["alar"][1]]
    left_side = [f.p[27] - w_top * ex_u, f.p[29] - w_top * 1.2 * ex_u, al, f.p[31]]
    right_side = [f.p[35], ar, f.p[29] + w_top * 1.2 * ex_u, f.p[27] + w_top * ex_u]
    outline = _stack(left_side + [f.p[32], f.p[33], f.p[34]] + right_side)
    if mask is not None:
        cv2.fillPoly(mask, [_q(outline)], NOSE, cv2.LINE_8, _SHIFT)
    # side shadow away from the light
    lx = float(light[0] * ex_u[0] + light[1] * ex_u[1])
    dark_side = 1 if lx < 0 else -1
    side_pts = _stack([f.p[27], f.p[28], f.p[29], f.p[30], f.p[33 + dark_side]])
    edge = _stack(
        [
            f.p[33 + 2 * dark_side],
            f.p[X["alar"][0 if dark_side < 0 else 1]],
            f.p[29] + dark_side * w_top * 1.2 * ex_u,
            f.p[27] + dark_side * w_top * ex_u,
        ]
    )
    shade = _scale(skin, 0.86 - 0.06 * abs(lx))
    _fill(img, None, _q(_stack([side_pts, edge])), _mix(skin, shade, 0.6))
    # base shadow under the nose
    base = _spline(_stack([f.p[31], f.p[32], f.p[33], f.p[34], f.p[35]])[None], 4)[0]
    under = _offset_curve(base, ey_u, 0.035 * s)
    _fill(img, None, _q(_stack([base, under[::-1]])), _scale(skin, 0.82))
    # alar creases, nostrils, tip highlight
    for a, b, c2 in ((X["alar"][0], 31, 32), (X["alar"][1], 35, 34)):
        crease = _stack([f.p[a] - 0.03 * s * ey_u, f.p[a], f.p[b]])
        _lines(img, [_q(_spline(crease[None], 3)[0])], _scale(skin, 0.72), lw)
        nc = 0.5 * (f.p[b] + f.p[c2]) - 0.015 * s * ey_u
        pitch_open = 0.6 + 0.8 * max(0.0, -float(f.rot[1, 2]))
        _ellipse(img, nc, (s * 0.05, s * 0.022 * pitch_open), f.roll, (70, 38, 34))
    tip = f.p[30] + (0.03 * s) * np.asarray(light[:2])
    r_tip = s * (0.07 + 0.04 * L.nose_tip)
    _ellipse(img, tip, (r_tip, r_tip * 0.8), f.roll, _mix(skin, (255, 245, 235), 0.12))
    # nose wrinkling (AU9): bunny lines across the bridge and sides
    nw = f.ev("nose_wrinkle")
    if nw > 0.02:
        col = _scale(skin, 1 - 0.25 * nw)
        lines = []
        for t in (0.25, 0.5, 0.75):
            c = f.p[27] + t * (f.p[28] - f.p[27]) + 0.02 * s * ey_u
            lines.append(
                _q(
                    _stack(
                        [
                            c - 0.11 * s * ex_u + 0.02 * s * ey_u,
                            c - 0.01 * s * ey_u,
                            c + 0.11 * s * ex_u + 0.02 * s * ey_u,
                        ]
                    )
                )
            )
        for sx in (-1, 1):
            c = f.p[28] + sx * 0.13 * s * ex_u
            lines.append(
                _q(_stack([c - 0.04 * s * ey_u, c + sx * 0.05 * s * ex_u + 0.04 * s * ey_u]))
            )
        _lines(img, lines, col, lw)


def _paint_mouth(img, mask, f: _Face, lw):
    L, s, skin = f.look, f.s, f.look.skin
    ey_u = np.asarray(_unit(f.ey))
    up_out = _curve(f, [48, 49, 50, 51, 52, 53, 54], 4)
    lo_out = _curve(f, [54, 55, 56, 57, 58, 59, 48], 4)
    up_in = _curve(f, [60, 61, 62, 63, 64], 4)
    lo_in = _curve(f, [64, 65, 66, 67, 60], 4)
    # inside of the mouth and teeth
    gap = np.array(
        [
            (f.p[lo] - f.p[u])[0] * ey_u[0] + (f.p[lo] - f.p[u])[1] * ey_u[1]
            for u, lo in ((61, 67), (62, 66), (63, 65))
        ]
    )
    if gap.max() > 0.6:
        inner = _stack([up_in, lo_in[1:-1]])
        _fill(img, mask, _q(inner), (70, 22, 28), MOUTH)
        th = s * 0.075
        ut_bot = _stack(
            [f.p[60]]
            + [f.p[u] + min(th, 0.6 * g) * ey_u for u, g in zip((61, 62, 63), gap, strict=True)]
            + [f.p[64]]
        )
        teeth_col = (228, 222, 206)
        _fill(img, None, _q(_stack([up_in, _spline(ut_bot[None], 4)[0][::-1]])), teeth_col)
        lt_top = _stack(
            [f.p[64]]
            + [
                f.p[lo] - min(th * 0.8, 0.3 * g) * ey_u
                for lo, g in zip((65, 66, 67), gap[::-1], strict=True)
            ]
            + [f.p[60]]
        )
        if gap.max() > 0.12 * s:
            _fill(
                img,
                None,
                _q(_stack([lo_in, _spline(lt_top[None], 4)[0][::-1]])),
                _scale(teeth_col, 0.9),
            )
    # lips
    upper_poly = _stack([up_out, up_in[::-1][1:-1]])
    lower_poly = _stack([lo_out, lo_in[::-1][1:-1]])
    tight = f.ev("lip_tighten")
    lip = _mix(L.lip, _scale(L.lip, 0.85), 0.5 * tight)
    _fill(img, mask, _q(upper_poly), _scale(lip, 0.9), UPPER_LIP)
    _fill(img, mask, _q(lower_poly), lip, LOWER_LIP)
    # lower lip highlight
    hl = _offset_curve(_curve(f, [59, 58, 57, 56, 55], 3), -ey_u, 0.03 * s)
    _lines(img, [_q(hl[1:-1])], _mix(lip, (255, 235, 230), 0.18), max(1, int(s * 0.025)))
    # lip line (where the lips meet) and lip margin darkening with AU23
    _lines(img, [_q(up_in)], _scale(lip, 0.55), max(1, int(s * 0.016)))
    if tight > 0.02:
        _lines(img, [_q(up_out), _q(lo_out)], _scale(lip, 1 - 0.25 * tight), max(1, int(s * 0.012)))
    # philtrum
    ex_u = np.asarray(_unit(f.ex))
    ph = [
        _q(_stack([f.p[top], f.p[33] + sx * 0.04 * s * ex_u + 0.04 * s * ey_u]))
        for top, sx in ((50, -1), (52, 1))
    ]
    _lines(img, ph, _scale(skin, 0.93), max(1, int(s * 0.015)))


def _paint_lower_wrinkles(img, f: _Face, lw):
    L, s, skin = f.look, f.s, f.look.skin
    X = M.EXTRA
    ex_u = np.asarray(_unit(f.ex))
    ey_u = np.asarray(_unit(f.ey))
    # eye-region wrinkles: crow's feet (AU6, age), infraorbital furrow (AU6), lower-lid bulge (AU7)
    cr = f.ev("cheek_raise")
    cf = 0.9 * cr + 0.35 * L.age * L.age
    if cf > 0.02:
        lines = []
        for corner, sx in ((36, -1), (45, 1)):
            c = f.p[corner] + sx * 0.07 * s * ex_u
            for ang in (-0.35, 0.0, 0.35):
                d = sx * ex_u + ang * ey_u
                lines.append(_q(_stack([c, c + 0.14 * s * d])))
        _lines(img, lines, _scale(skin, 1 - 0.22 * min(cf, 1.2)), lw)
    furrow = 0.8 * cr + 0.3 * L.age
    tighten = f.ev("lid_tighten")
    lines_f, lines_b = [], []
    for lo in ([39, 40, 41, 36], [45, 46, 47, 42]):
        c = _curve(f, lo, 4)
        if furrow > 0.02:
            lines_f.append(_q(_offset_curve(c, ey_u, 0.11 * s)[2:-2]))
        if tighten > 0.02:
            lines_b.append(_q(_offset_curve(c, ey_u, 0.05 * s)[2:-2]))
    _lines(img, lines_f, _scale(skin, 1 - 0.18 * min(furrow, 1.2)), lw)
    _lines(img, lines_b, _scale(skin, 1 - 0.22 * tighten), lw)
    # mouth-region wrinkles
    cd = f.ev("lip_corner_depress")
    mar = 0.9 * cd + 0.25 * L.age * L.age
    if mar > 0.02:
        lines = []
        for corner, sx in ((48, -1), (54, 1)):
            c = f.p[corner] + sx * 0.04 * s * ex_u + 0.03 * s * ey_u
            lines.append(_q(_stack([c, c + 0.03 * s * sx * ex_u + 0.22 * s * ey_u])))
        _lines(img, lines, _scale(skin, 1 - 0.2 * min(mar, 1.2)), lw)
    dp = f.ev("dimple")
    if dp > 0.02:
        for j in range(2):
            c = f.p[X["dimple"][j]]
            _ellipse(img, c, (s * 0.025, s * 0.07), f.roll, _scale(skin, 1 - 0.22 * dp))
    ch = f.ev("chin_raise")
    ment = 0.8 * ch + 0.35 * L.chin_boss
    lo_c = _curve(f, [59, 58, 57, 56, 55], 3)
    if ment > 0.02:
        crease = _offset_curve(lo_c, ey_u, 0.10 * s)
        _lines(img, [_q(crease[1:-1])], _scale(skin, 1 - 0.18 * min(ment, 1.2)), lw * 1.5)
    if ch > 0.02:
        c0 = f.p[X["chin"][0]]
        for dx, dy in ((-0.08, -0.03), (0.07, -0.02), (-0.02, 0.05), (0.09, 0.07), (-0.10, 0.08)):
            c = c0 + dx * s * ex_u + dy * s * ey_u
            _ellipse(img, c, (s * 0.022, s * 0.016), f.roll, _scale(skin, 1 - 0.15 * ch))
    pk = f.ev("pucker")
    if pk > 0.02:
        lines = []
        for t in (0.2, 0.4, 0.6, 0.8):
            a = f.p[49] + t * (f.p[53] - f.p[49])
            lines.append(_q(_stack([a - 0.01 * s * ey_u, a - 0.08 * s * ey_u])))
        _lines(img, lines, _scale(skin, 1 - 0.18 * pk), lw)
    pr = f.ev("lip_press")
    if pr > 0.02:
        up_c = _curve(f, [49, 50, 51, 52, 53], 3)
        _lines(
            img,
            [_q(_offset_curve(up_c, -ey_u, 0.05 * s)), _q(_offset_curve(lo_c, ey_u, 0.05 * s))],
            _scale(skin, 1 - 0.15 * pr),
            lw,
        )


def _paint_facial_hair(img, mask, f: _Face) -> None:
    """Freckles, beard and mustache (identity dims above their threshold only)."""
    L, s, P = f.look, f.s, f.p
    ex_u, ey_u = np.asarray(_unit(f.ex)), np.asarray(_unit(f.ey))
    if L.freckles > 0.0 and s >= 20.0:
        n = int(4 + 30 * L.freckles)
        u = _hash_uniform(L.hair_seed + 1, 3 * n)
        anchors = (P[M.EXTRA["cheek"][0]], P[M.EXTRA["cheek"][1]], P[29])
        col = _scale(L.skin, 0.8)
        for i in range(n):
            c = anchors[i % 3] + (2 * u[3 * i] - 1) * 0.26 * s * ex_u
            c = c + (2 * u[3 * i + 1] - 1) * 0.16 * s * ey_u
            r = max(0.6, s * (0.008 + 0.008 * u[3 * i + 2]))
            _ellipse(img, c, (r, r), 0.0, col)
    hair = _scale(L.hair, 0.8)
    if L.beard > 0.0:
        b = L.beard
        j0 = 2 + int(round(3 * (1.0 - b)))
        jaw = P[j0 : 17 - j0]
        out_r, out_l = ex_u, -ex_u
        cheek_r = P[16 - j0] + 0.3 * (P[54] - P[16 - j0])
        cheek_l = P[j0] + 0.3 * (P[48] - P[j0])
        corner_r = P[54] + 0.10 * s * out_r + 0.05 * s * ey_u
        corner_l = P[48] + 0.10 * s * out_l + 0.05 * s * ey_u
        under = P[[55, 56, 57, 58, 59]] + 0.07 * s * ey_u
        poly = _stack([jaw, cheek_r, corner_r, under, corner_l, cheek_l])
        _fill(img, mask, _q(poly), _mix(L.skin, hair, 0.35 + 0.6 * b), HAIR)
    if L.mustache > 0.0:
        m = L.mustache
        lip = P[[48, 49, 50, 51, 52, 53, 54]] - 0.012 * s * ey_u
        lip[0] = lip[0] - 0.03 * s * ex_u
        lip[-1] = lip[-1] + 0.03 * s * ex_u
        top = lip - (0.05 + 0.05 * m) * s * ey_u
        poly = _stack([lip, top[::-1]])
        _fill(img, mask, _q(poly), _mix(L.skin, hair, 0.4 + 0.55 * m), HAIR)


def _paint_front_hair(img, mask, f: _Face, head_c, R, rv, circle_pts):
    L, s = f.look, f.s
    X = M.EXTRA
    hl = f.pn[X["hairline"]].copy()
    part = 2.0 * float(f.id[_I["hair_part"]]) - 1.0
    ey_u = np.asarray(_unit(f.ey))
    # side fringe: lower the hairline on one side
    w = (
        np.array([0.0, 0.35, 0.7, 0.55, 0.3, 0.1, 0.0])
        if part > 0
        else np.array([0.0, 0.1, 0.3, 0.55, 0.7, 0.35, 0.0])
    )
    hl = hl + (abs(part) * 0.28 * s) * w[:, None] * ey_u[None]
    hl_s = _spline(hl[None], 4)[0]
    col = L.hair
    if L.style == 0:
        col = _mix(L.skin, L.hair, 0.55)
        rv = R * 1.01
    arc = circle_pts(head_c, rv, math.pi * 0.93, math.pi * 2.07, 30)
    poly = _stack([arc, hl_s[::-1]])
    _fill(img, mask, _q(poly), col, HAIR)
    if L.style == 4:  # bun on top
        top = head_c - rv * ey_u * 0.95
        _ellipse(img, top, (rv * 0.45, rv * 0.33), f.roll, _scale(col, 0.9), mask, HAIR)
    if L.style != 0:
        # strands: arcs about the cranium centre, drawn by OpenCV (angles in the face frame)
        u = _hash_uniform(L.hair_seed, 27)
        ang = math.degrees(math.atan2(float(f.ex[1]), float(f.ex[0])))
        c = (int(math.floor(head_c[0] * _ONE + 0.5)), int(math.floor(head_c[1] * _ONE + 0.5)))
        dark, light_c = _c(_scale(col, 0.78)), _c(_mix(col, (255, 240, 220), 0.15))
        th_d, th_l = max(1, int(s * 0.02)), max(1, int(s * 0.015))
        for i in range(9):
            r = int(rv * (0.80 + 0.17 * u[i]) * _ONE + 0.5)
            a0 = 180.0 * (1.15 + 0.3 * u[9 + i])
            a1 = min(a0 + 180.0 * (0.2 + 0.3 * u[18 + i]), 180.0 * 1.85)
            cv2.ellipse(
                img,
                c,
                (r, r),
                ang,
                a0,
                a1,
                dark if i < 4 else light_c,
                th_d if i < 4 else th_l,
                _AA,
                _SHIFT,
            )


def _hash_uniform(seed: int, n: int) -> list[float]:
    """``n`` reproducible numbers in [0, 1) from an integer seed (a 32-bit LCG)."""
    out, v = [], (int(seed) ^ 0x9E3779B9) & 0xFFFFFFFF
    for _ in range(n):
        v = (1664525 * v + 1013904223) & 0xFFFFFFFF
        out.append(v / 4294967296.0)
    return out


# --- shading and augmentations --------------------------------------------------------------------
def _shade(img: np.ndarray, mask: np.ndarray, f: _Face, light, amb: float, dif: float) -> None:
    h, w = mask.shape
    gw, gh = 32, 32
    xs = (np.arange(gw) + 0.5) * (w / gw) - 0.5
    ys = (np.arange(gh) + 0.5) * (h / gh) - 0.5
    c = f.pn[M.EXTRA["shade_centre"][0]]
    ex_u, ey_u = np.asarray(_unit(f.ex)), np.asarray(_unit(f.ey))
    dx = xs[None, :] - c[0]
    dy = ys[:, None] - c[1]
    u = (dx * ex_u[0] + dy * ex_u[1]) / (1.2 * f.s)
    v = (dx * ey_u[0] + dy * ey_u[1]) / (1.75 * f.s)
    r2 = u * u + v * v
    inside = r2 < 1.0
    nz = np.sqrt(np.where(inside, 1.0 - r2, 0.0))
    norm = np.where(inside, 1.0, 1.0 / np.sqrt(np.maximum(r2, 1e-12)))
    u, v = u * norm, v * norm
    nx = u * ex_u[0] + v * ey_u[0]
    ny = u * ex_u[1] + v * ey_u[1]
    lam = np.maximum(0.0, nx * light[0] + ny * light[1] + nz * light[2])
    sh = amb + dif * lam
    small = np.clip(np.floor(sh * 128.0 + 0.5), 0, 255).astype(np.uint8)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    big[mask == BACKGROUND] = 128
    # 8-bit products scaled by 2**-7 are exact in float32, so this is bit-exact on every CPU
    cv2.multiply(img, cv2.cvtColor(big, cv2.COLOR_GRAY2RGB), dst=img, scale=1.0 / 128.0)


# --- random streams, background, occluders, image degradations ------------------------------------
def _rng(seed: int, key: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, int(key) & 0xFFFFFFFF, stream])


def face_key(params_row: np.ndarray) -> int:
    """The default per-face random key: CRC-32 of the parameter vector's float64 bytes."""
    return zlib.crc32(np.ascontiguousarray(params_row, dtype=np.float64).tobytes())


_PLAIN_BG = (196, 200, 206)


_PLAIN_CACHE: dict[tuple[int, int], np.ndarray] = {}


def _background(h: int, w: int, rng: np.random.Generator | None) -> np.ndarray:
    """A background image; the plain one is a shared read-only array (copy before drawing)."""
    if rng is None:
        if (h, w) not in _PLAIN_CACHE:
            plain = np.empty((h, w, 3), np.uint8)
            plain[...] = _PLAIN_BG
            plain.setflags(write=False)
            _PLAIN_CACHE[(h, w)] = plain
        return _PLAIN_CACHE[(h, w)]
    c0 = rng.integers(20, 236, 3).astype(np.float32)
    c1 = rng.integers(20, 236, 3).astype(np.float32)
    ang = float(rng.uniform(0.0, 2.0 * math.pi))
    ca, sa = np.float32(math.cos(ang)), np.float32(math.sin(ang))
    # the gradient on an 8x8 grid, enlarged by OpenCV's bit-exact 8-bit bilinear resize
    g = np.arange(8, dtype=np.float32) / np.float32(7.0)
    t = (g[None, :] * ca + g[:, None] * sa) * np.float32(0.5) + np.float32(0.5)
    small = (c0[None, None] + (c1 - c0)[None, None] * t[..., None]).astype(np.uint8)
    img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    # 8-19 shapes; every number comes from one draw to keep the per-shape overhead small
    n = 8 + int(rng.integers(12))
    u = rng.random((n, 16)).tolist()
    lo, hi = max(2, min(h, w) // 16), max(3, min(h, w) // 3)
    for r in u:
        kind = int(r[0] * 4)
        col = (int(r[1] * 256), int(r[2] * 256), int(r[3] * 256))
        x0, y0 = int(r[4] * w), int(r[5] * h)
        sz = lo + int(r[6] * (hi - lo))
        if kind == 0:
            cv2.rectangle(img, (x0, y0), (x0 + sz, y0 + 2 + int(r[7] * sz)), col, -1)
        elif kind == 1:
            cv2.circle(img, (x0, y0), sz // 2, col, -1, _AA)
        elif kind == 2:
            x1, y1 = int(r[7] * w), int(r[8] * h)
            cv2.line(img, (x0, y0), (x1, y1), col, 1 + int(r[9] * 5), _AA)
        else:
            pts = np.array(
                [
                    [x0 + int((2 * r[8 + k] - 1) * sz), y0 + int((2 * r[12 + k] - 1) * sz)]
                    for k in range(4)
                ],
                dtype=np.int32,
            )
            cv2.fillPoly(img, [pts], col, _AA)
    return cv2.GaussianBlur(img, (5, 5), 1.2)


def _random_light(rng: np.random.Generator) -> tuple[float, float, float]:
    az = float(rng.uniform(0.0, 2.0 * math.pi))
    el = math.radians(float(rng.uniform(5.0, 65.0)))
    return (math.sin(el) * math.cos(az), math.sin(el) * math.sin(az), math.cos(el))


def _occlude(img: np.ndarray, occ: np.ndarray, f: _Face, rng: np.random.Generator) -> None:
    s = f.s
    ex_u, ey_u = np.asarray(_unit(f.ex)), np.asarray(_unit(f.ey))
    kind = int(rng.integers(4))
    P = f.p

    if kind == 0:  # sunglasses
        col = tuple(int(v) for v in rng.integers(10, 60, 3))
        for a, b in ((36, 39), (42, 45)):
            c = 0.5 * (P[a] + P[b])
            _ellipse(img, c, (s * 0.31, s * 0.22), f.roll, col)
            _ellipse(occ, c, (s * 0.31, s * 0.22), f.roll, 255)
        bridge = _q(_stack([0.5 * (P[38] + P[39]), P[27], 0.5 * (P[42] + P[43])]))
        cv2.polylines(img, [bridge], False, _c(col), max(1, int(s * 0.04)), _AA, _SHIFT)
        cv2.polylines(occ, [bridge], False, 255, max(1, int(s * 0.04)), cv2.LINE_8, _SHIFT)
    elif kind == 1:  # hand
        tone = _ramp(_SKIN, float(rng.random()))
        anchor = [P[M.EXTRA["cheek"][0]], P[M.EXTRA["cheek"][1]], P[57], P[30]][
            int(rng.integers(4))
        ]
        c = (
            anchor
            + float(rng.uniform(-0.15, 0.15)) * s * ex_u
            + float(rng.uniform(0.0, 0.2)) * s * ey_u
        )
        h, w = img.shape[:2]
        c = np.array([min(max(c[0], 0.1 * w), 0.9 * w), min(max(c[1], 0.1 * h), 0.9 * h)])
        ang = float(rng.uniform(0, 360))
        _ellipse(img, c, (s * 0.42, s * 0.34), ang, tone)
        _ellipse(occ, c, (s * 0.42, s * 0.34), ang, 255)
        a = math.radians(ang)
        d = np.array([math.cos(a), math.sin(a)])
        nrm = np.array([-d[1], d[0]])
        for k in range(4):
            base = c + d * s * 0.3 + nrm * s * (k - 1.5) * 0.13
            tip = base + d * s * (0.35 + 0.06 * (1.5 - abs(k - 1.5)))
            seg = _q(_stack([base, tip]))
            cv2.polylines(
                img, [seg], False, _c(_scale(tone, 0.97)), max(1, int(s * 0.11)), _AA, _SHIFT
            )
            cv2.polylines(occ, [seg], False, 255, max(1, int(s * 0.11)), cv2.LINE_8, _SHIFT)
    elif kind == 2:  # face mask over nose tip, mouth and chin
        col = tuple(int(v) for v in rng.integers(150, 250, 3))
        X = M.EXTRA
        poly = _stack(
            [P[2:15], P[X["cheekbone"][1]], P[29] - 0.02 * s * ey_u, P[X["cheekbone"][0]]]
        )
        hull = cv2.convexHull(_q(poly).reshape(-1, 1, 2))
        cv2.fillPoly(img, [hull], _c(col), _AA, _SHIFT)
        cv2.fillPoly(occ, [hull], 255, cv2.LINE_8, _SHIFT)
        for k in (0.35, 0.65):
            y = P[29] + k * (P[8] - P[29])
            seg = _q(_stack([y - 0.1 * s * ex_u, y + 0.3 * s * ex_u]))
            cv2.polylines(img, [seg], False, _c(_scale(col, 0.85)), 1, _AA, _SHIFT)
    else:  # a bar (microphone, pen, strap) across the face
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        c = (
            P[30]
            + float(rng.uniform(-0.6, 0.6)) * s * ex_u
            + float(rng.uniform(-0.8, 0.9)) * s * ey_u
        )
        a = float(rng.uniform(0.0, math.pi))
        d = np.array([math.cos(a), math.sin(a)]) * s * 1.6
        seg = _q(_stack([c - d, c + d]))
        th = max(2, int(s * float(rng.uniform(0.12, 0.3))))
        cv2.polylines(img, [seg], False, _c(col), th, _AA, _SHIFT)
        cv2.polylines(occ, [seg], False, 255, th, cv2.LINE_8, _SHIFT)


_NOISE_TEX: dict[int, np.ndarray] = {}


def _noise_texture(n: int) -> np.ndarray:
    """A fixed ``(n, n, 3)`` int8 texture of Gaussian noise (std 24), built once per size."""
    if n not in _NOISE_TEX:
        g = np.random.default_rng(0x5EED).standard_normal((n, n, 3), dtype=np.float32)
        _NOISE_TEX[n] = np.clip(np.floor(g * 24.0 + 0.5), -127, 127).astype(np.int8)
    return _NOISE_TEX[n]


def _degrade(img: np.ndarray, aug: Augment, rng: np.random.Generator, size_ref: int) -> np.ndarray:
    u = rng.random(3)
    blur_s = float(rng.uniform(*aug.blur_sigma)) * size_ref / 256.0
    noise_s = float(rng.uniform(*aug.noise_sigma))
    q = int(rng.integers(aug.jpeg_quality[0], aug.jpeg_quality[1] + 1))
    oy, ox = (int(v) for v in rng.integers(0, 1 << 30, 2))
    if u[0] < aug.blur and blur_s > 0.05:
        img = cv2.GaussianBlur(img, (0, 0), blur_s)
    if u[1] < aug.noise and noise_s > 0:
        h, w = img.shape[:2]
        n = 256
        while n < max(h, w) * 2:
            n *= 2
        tex = _noise_texture(n)
        oy, ox = oy % (n - h), ox % (n - w)
        k = int(noise_s * 256.0 / 24.0 + 0.5)
        wide = np.int16 if k <= 255 else np.int32  # int16 holds 127 * 255 + 128
        noise = (tex[oy : oy + h, ox : ox + w].astype(wide) * wide(k) + wide(128)) >> 8
        img = np.clip(img.astype(wide) + noise, 0, 255).astype(np.uint8)
    if u[2] < aug.jpeg:
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, q])
        img = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return img


# --- the renderer ---------------------------------------------------------------------------------
class FaceRenderer:
    """Render batches of faces from parameter vectors, with full ground truth.

    Example::

        r = FaceRenderer(seed=0, size=256)
        x = sample_params(np.random.default_rng(0), 8)
        out = r.render(x)              # out.images (8, 256, 256, 3), out.landmarks68, out.mask, ...

    Args:
        seed: seeds every random choice (augmentations, jitter). Same seed + same parameters ->
            byte-identical output.
        size: image side in pixels (>= 32).
        framing: where faces land (:class:`Framing`); the default puts the 5 points of a frontal
            neutral average face on ``auperf.align.template(size)``.
        augment: default augmentations (:class:`Augment`), off unless given.
        ambient, diffuse: shading weights (shade = ambient + diffuse * max(0, n . l)).
    """

    def __init__(
        self,
        seed: int = 0,
        size: int = 256,
        *,
        framing: Framing | None = None,
        augment: Augment | None = None,
        ambient: float = 0.55,
        diffuse: float = 0.55,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ParameterError(f"seed: expected an integer, got {seed!r}")
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 32:
            raise ValueRangeError(f"size: expected an integer >= 32, got {size!r}")
        self.seed = int(seed)
        self.size = int(size)
        self.framing = framing if framing is not None else Framing()
        self.augment = augment if augment is not None else Augment()
        if not isinstance(self.framing, Framing):
            raise ParameterError(f"framing: expected a Framing, got {type(framing).__name__}")
        if not isinstance(self.augment, Augment):
            raise ParameterError(f"augment: expected an Augment, got {type(augment).__name__}")
        self.ambient = float(ambient)
        self.diffuse = float(diffuse)
        self._s0, self._t0 = _template_fit(self.size)

    def framing_transform(self, params: np.ndarray, keys: np.ndarray):
        """Per-face pixel scale, translation and extra roll (with jitter from each face's key)."""
        fr = self.framing
        n = params.shape[0]
        s = np.empty(n)
        t = np.empty((n, 2))
        roll = np.zeros(n)
        centre = np.array([(self.size - 1) / 2.0, (self.size - 1) / 2.0])
        jitter = fr.jitter_scale > 0 or fr.jitter_shift > 0 or fr.jitter_roll_deg > 0
        for k in range(n):
            u = _rng(self.seed, int(keys[k]), 0).uniform(-1.0, 1.0, 4) if jitter else np.zeros(4)
            sc = fr.scale * (1.0 + fr.jitter_scale * float(u[0]))
            sh = (np.asarray(fr.shift) + fr.jitter_shift * u[1:3]) * self.size
            s[k] = self._s0 * sc
            t[k] = centre + (self._t0 - centre) * sc + sh
            roll[k] = fr.jitter_roll_deg * float(u[3])
        return s, t, roll

    def landmarks(self, params: Any, *, keys: Any = None) -> np.ndarray:
        """The ``(N, 68, 2)`` landmarks :meth:`render` would return, without drawing anything.

        Convention:
            Pixel coordinates, origin at the centre of the top-left pixel, x right, y down.
        """
        x = validate_params(params)
        s, t, roll = self.framing_transform(x, _keys(keys, x))
        return np.ascontiguousarray(_project(x, s, t, roll).pts[:, :68])

    def render(
        self,
        params: Any,
        *,
        augment: Augment | bool | None = None,
        identity: Any = None,
        keys: Any = None,
        degrade_keys: Any = None,
    ) -> RenderResult:
        """Render a batch.

        Convention:
            Output images are RGB uint8 ``(N, size, size, 3)``; landmarks are pixel coordinates
            with the origin at the centre of the top-left pixel, x right, y down.

        Args:
            params: ``(N, PARAM_DIM)`` (or ``(PARAM_DIM,)``) values in ``[0, 1]``.
            augment: an :class:`Augment`, ``False`` for none, ``True`` for
                :meth:`Augment.realistic`, ``None`` for the renderer's default.
            identity: optional ``(N,)`` integer identity ids to carry into the result.
            keys: optional ``(N,)`` integer random keys per face (default: CRC-32 of each
                parameter row). Faces with equal seed, key, parameters and options are identical.
            degrade_keys: optional ``(N,)`` integer keys for the per-image degradations only
                (blur, noise, JPEG; default ``keys``). Video uses one ``keys`` value per track
                (fixed background, light, occluder) and one ``degrade_keys`` value per frame
                (fresh sensor noise).

        Returns:
            A :class:`RenderResult`.

        Raises:
            ParameterError, NonFiniteError, ShapeError: bad ``params``, ``identity`` or ``keys``.
        """
        x = validate_params(params)
        n = x.shape[0]
        aug = self._resolve_augment(augment)
        ids = _ids(identity, n)
        keys_a = _keys(keys, x)
        deg_keys = keys_a if degrade_keys is None else _keys(degrade_keys, x, "degrade_keys")
        s, t, roll = self.framing_transform(x, keys_a)
        g = _project(x, s, t, roll)
        h = w = self.size
        images = np.empty((n, h, w, 3), np.uint8)
        masks = np.empty((n, h, w), np.uint8)
        visible = np.ones((n, 68), bool)
        occluded = np.zeros(n, bool)
        lights = np.empty((n, 3))
        for k in range(n):
            vis, occ, light = self._render_face(
                x[k], g, k, int(keys_a[k]), aug, images[k], masks[k], int(deg_keys[k])
            )
            visible[k], occluded[k], lights[k] = vis, occ, light
        return _result(x, g, images, masks, visible, occluded, lights, ids)

    def _resolve_augment(self, augment) -> Augment:
        if augment is None:
            return self.augment
        if augment is True:
            return Augment.realistic()
        if augment is False:
            return Augment.off()
        if not isinstance(augment, Augment):
            raise ParameterError(
                f"augment: expected an Augment, bool or None, got {type(augment).__name__}"
            )
        return augment

    def _render_face(
        self, row, g, k, key, aug: Augment, img: np.ndarray, mask: np.ndarray, deg_key: int
    ):
        """Paint face ``k`` into the output views ``img`` and ``mask``."""
        h = w = self.size
        u = _rng(self.seed, key, 5).random(3) if _any_random(aug) else (1.0, 1.0, 1.0)
        bg_rng = _rng(self.seed, key, 1) if u[0] < aug.clutter else None
        img[...] = _background(h, w, bg_rng)
        mask[...] = 0
        light = _random_light(_rng(self.seed, key, 3)) if u[1] < aug.light else _DEFAULT_LIGHT
        light = _normalise(light)
        f = _Face(g, k, row)
        _paint_face(img, mask, f, light)
        _shade(img, mask, f, light, self.ambient, self.diffuse)
        ksize = _soften_ksize(f.s)
        if ksize:  # soften drawn edges on large faces only
            cv2.GaussianBlur(img, (ksize, ksize), 0, dst=img)
        vis = np.ones(68, bool)
        occluded = False
        if u[2] < aug.occlusion:
            occ = np.zeros((h, w), np.uint8)
            _occlude(img, occ, f, _rng(self.seed, key, 2))
            mask[occ > 0] = OCCLUDER
            vis = _visible(occ, g.pts[k, :68])
            occluded = True
        if aug.blur > 0 or aug.noise > 0 or aug.jpeg > 0:
            img[...] = _degrade(img, aug, _rng(self.seed, deg_key, 4), self.size)
        return vis, occluded, light


def _any_random(aug: Augment) -> bool:
    return aug.clutter > 0 or aug.light > 0 or aug.occlusion > 0


def _normalise(v) -> tuple[float, float, float]:
    n = math.sqrt(sum(float(a) * float(a) for a in v))
    return tuple(float(a) / n for a in v)


def _visible(occ: np.ndarray, lm: np.ndarray) -> np.ndarray:
    h, w = occ.shape
    xi = np.clip(np.floor(lm[:, 0] + 0.5).astype(int), 0, w - 1)
    yi = np.clip(np.floor(lm[:, 1] + 0.5).astype(int), 0, h - 1)
    return occ[yi, xi] == 0


def _ids(identity, n: int) -> np.ndarray:
    if identity is None:
        return np.full(n, -1, np.int64)
    a = np.asarray(identity)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise ShapeError(f"identity: expected ({n},) integers, got shape {a.shape} dtype {a.dtype}")
    return a.astype(np.int64)


def _keys(keys, x: np.ndarray, name: str = "keys") -> np.ndarray:
    n = x.shape[0]
    if keys is None:
        return np.array([face_key(r) for r in x], dtype=np.int64)
    a = np.asarray(keys)
    if a.shape != (n,) or not np.issubdtype(a.dtype, np.integer):
        raise ShapeError(f"{name}: expected ({n},) integers, got shape {a.shape} dtype {a.dtype}")
    return a.astype(np.int64)


def _result(x, g, images, masks, visible, occluded, lights, ids) -> RenderResult:
    lm68 = np.ascontiguousarray(g.pts[:, :68])
    au = au_from_expression(x[:, EXPRESSION_SLICE])
    pose = np.empty((x.shape[0], 3))
    pose[:, 0] = (2.0 * x[:, 0] - 1.0) * POSE_RANGE_DEG[0]
    pose[:, 1] = (2.0 * x[:, 1] - 1.0) * POSE_RANGE_DEG[1]
    pose[:, 2] = g.roll_deg
    return RenderResult(
        images=images,
        landmarks68=lm68,
        landmarks5=landmarks5_from_68(lm68),
        mask=masks,
        au_intensity=au,
        au_occurrence=au >= 1.0 - 1e-9,
        pose_deg=pose,
        identity=ids,
        expression=expression_category(x[:, EXPRESSION_SLICE]),
        params=x.copy(),
        visible68=visible,
        occluded=occluded,
        light=lights,
    )
