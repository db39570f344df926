"""The 2.5D face model: a mean face in 3D, identity and expression deformations, pose.

Units: the canonical face is measured in inter-ocular distances (IOD = distance between the eye
centres of the average face = 1). Axes: x to the image's right, y down, z towards the camera;
the origin is the midpoint between the eye centres of the average face.

Points 0-67 follow the iBUG 68 ordering (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth
48-67); the extra points after them (:data:`EXTRA`) support drawing (forehead outline, iris
centres, cheeks, folds, ears, neck, ...). Every deformation is vectorised over the batch and uses
only element-wise float64 arithmetic (no BLAS, no transcendental functions of arrays), so the
geometry is identical on every machine.
"""

from __future__ import annotations

import math

import numpy as np

from .params import (
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_NAMES,
    IDENTITY_SLICE,
    POSE_RANGE_DEG,
    POSE_SLICE,
)

__all__ = ["MEAN_SHAPE", "EXTRA", "N_POINTS", "build_shapes", "pose_matrices", "ROTATION_CENTRE"]

_E = {n: i for i, n in enumerate(EXPRESSION_NAMES)}
_I = {n: i for i, n in enumerate(IDENTITY_NAMES)}


# --- the average face (left half written out, the right half mirrored) --------------------------
_JAW = [
    (-1.02, 0.08, -0.82),
    (-1.00, 0.38, -0.76),
    (-0.97, 0.67, -0.68),
    (-0.92, 0.94, -0.56),
    (-0.83, 1.18, -0.42),
    (-0.70, 1.40, -0.27),
    (-0.53, 1.58, -0.11),
    (-0.29, 1.71, 0.03),
    (0.00, 1.76, 0.08),
]
_BROW = [
    (-0.86, -0.35, -0.24),
    (-0.72, -0.45, -0.09),
    (-0.55, -0.49, 0.01),
    (-0.38, -0.47, 0.07),
    (-0.21, -0.41, 0.10),
]
_NOSE_BRIDGE = [(0.0, -0.04, 0.17), (0.0, 0.15, 0.29), (0.0, 0.35, 0.41), (0.0, 0.57, 0.55)]
_NOSE_BASE_L = [(-0.21, 0.70, 0.24), (-0.11, 0.74, 0.34), (0.0, 0.765, 0.40)]
_EYE_L = [
    (-0.75, 0.00, -0.10),
    (-0.59, -0.085, -0.01),
    (-0.41, -0.09, -0.01),
    (-0.25, 0.02, -0.03),
    (-0.41, 0.07, -0.01),
    (-0.59, 0.065, -0.01),
]
_MOUTH_OUT_UP_L = [
    (-0.41, 1.155, 0.05),
    (-0.27, 1.07, 0.14),
    (-0.11, 1.01, 0.20),
    (0.0, 1.03, 0.21),
]
_MOUTH_OUT_LO_L = [(-0.27, 1.26, 0.13), (-0.12, 1.31, 0.17), (0.0, 1.32, 0.18)]
_MOUTH_IN_L = [(-0.36, 1.155, 0.08), (-0.12, 1.145, 0.17), (0.0, 1.15, 0.18)]


def _mirror(p):
    return (-p[0], p[1], p[2])


def _build_mean() -> tuple[np.ndarray, dict[str, object]]:
    pts: list[tuple[float, float, float]] = []
    pts += _JAW + [_mirror(p) for p in reversed(_JAW[:-1])]  # 0-16
    pts += _BROW + [_mirror(p) for p in reversed(_BROW)]  # 17-26
    pts += _NOSE_BRIDGE  # 27-30
    pts += _NOSE_BASE_L + [_mirror(p) for p in reversed(_NOSE_BASE_L[:-1])]  # 31-35
    eye_r = [_mirror(_EYE_L[i]) for i in (3, 2, 1, 0, 5, 4)]
    pts += _EYE_L + eye_r  # 36-47
    up = _MOUTH_OUT_UP_L + [_mirror(p) for p in reversed(_MOUTH_OUT_UP_L[:-1])]  # 48-54
    lo = [
        _mirror(_MOUTH_OUT_LO_L[0]),
        _mirror(_MOUTH_OUT_LO_L[1]),
        _MOUTH_OUT_LO_L[2],
        _MOUTH_OUT_LO_L[1],
        _MOUTH_OUT_LO_L[0],
    ]  # 55-59
    pts += up + lo
    inn = [
        _MOUTH_IN_L[0],
        _MOUTH_IN_L[1],
        _MOUTH_IN_L[2],
        _mirror(_MOUTH_IN_L[1]),
        _mirror(_MOUTH_IN_L[0]),
    ]  # 60-64
    inn += [_mirror(_MOUTH_IN_L[1]), _MOUTH_IN_L[2], _MOUTH_IN_L[1]]  # 65-67 (closed mouth)
    pts += inn
    assert len(pts) == 68
    extra: dict[str, object] = {}

    def add(name: str, items):
        extra[name] = list(range(len(pts), len(pts) + len(items)))
        pts.extend(items)

    # forehead outline from the image-left temple over the top to the image-right temple
    fh = [
        (-1.03, -0.25, -0.80),
        (-0.98, -0.62, -0.62),
        (-0.84, -0.95, -0.42),
        (-0.58, -1.20, -0.18),
        (-0.30, -1.33, -0.04),
        (0.0, -1.37, 0.0),
    ]
    add("forehead", fh + [_mirror(p) for p in reversed(fh[:-1])])
    add("cheekbone", [(-0.99, 0.25, -0.20), (0.99, 0.25, -0.20)])
    add("temple", [(-1.00, -0.35, -0.30), (1.00, -0.35, -0.30)])
    add("iris", [(-0.50, 0.005, 0.04), (0.50, 0.005, 0.04)])
    hl = [(-0.90, -0.55, -0.45), (-0.62, -0.88, -0.16), (-0.30, -1.00, -0.02), (0.0, -1.03, 0.03)]
    add("hairline", hl + [_mirror(p) for p in reversed(hl[:-1])])
    add("cheek", [(-0.60, 0.52, 0.06), (0.60, 0.52, 0.06)])
    nl = [(-0.23, 0.64, 0.20), (-0.40, 0.92, 0.10), (-0.50, 1.22, 0.00)]
    add("nasolabial_l", nl)
    add("nasolabial_r", [_mirror(p) for p in nl])
    add("dimple", [(-0.52, 1.15, -0.02), (0.52, 1.15, -0.02)])
    add("chin", [(0.0, 1.52, 0.13)])
    add("head", [(0.0, -0.40, -0.55)])
    add("ear", [(-1.06, 0.25, -0.88), (1.06, 0.25, -0.88)])
    add(
        "neck", [(-0.56, 1.35, -0.55), (0.56, 1.35, -0.55), (0.64, 3.4, -0.75), (-0.64, 3.4, -0.75)]
    )
    add("alar", [(-0.20, 0.60, 0.24), (0.20, 0.60, 0.24)])
    add("eye_centre", [(-0.50, 0.01, -0.04), (0.50, 0.01, -0.04)])
    add("shade_centre", [(0.0, 0.2, -0.5)])
    # shirt: neckline, shoulders, lower edge (left to right)
    add(
        "torso",
        [
            (-2.6, 9.0, -0.9),
            (-2.1, 3.05, -0.9),
            (-1.2, 2.62, -0.8),
            (-0.62, 2.55, -0.7),
            (0.0, 2.9, -0.6),
            (0.62, 2.55, -0.7),
            (1.2, 2.62, -0.8),
            (2.1, 3.05, -0.9),
            (2.6, 9.0, -0.9),
        ],
    )
    mean = np.array(pts, dtype=np.float64)
    return mean, extra


MEAN_SHAPE, EXTRA = _build_mean()
MEAN_SHAPE.setflags(write=False)
N_POINTS = MEAN_SHAPE.shape[0]
#: Head rotation centre (canonical units): between the ears, level with the nose.
ROTATION_CENTRE = (0.0, 0.45, -1.0)

_SIDE = np.sign(MEAN_SHAPE[:, 0])  # -1 on the image-left half, +1 on the right, 0 on the midline

# index groups
JAW = list(range(0, 17))
BROW_L, BROW_R = [17, 18, 19, 20, 21], [26, 25, 24, 23, 22]  # outer -> inner, both
BROWS = list(range(17, 27))
EYE_L, EYE_R = list(range(36, 42)), list(range(42, 48))
UPPER_LID = [37, 38, 43, 44]
LOWER_LID = [40, 41, 46, 47]
# pairs (upper, lower) of lid points directly above one another
LID_PAIRS = [(37, 41), (38, 40), (43, 47), (44, 46)]
MOUTH = list(range(48, 68))
CORNERS = [48, 54]
INNER_CORNERS = [60, 64]
OUT_UP = [49, 50, 51, 52, 53]
OUT_LO = [55, 56, 57, 58, 59]
IN_UP = [61, 62, 63]
IN_LO = [67, 66, 65]  # under 61, 62, 63
NOSTRILS = [31, 32, 33, 34, 35]
# inner lip point nearest (in x) to each outer lip point of OUT_UP + OUT_LO
_OUT_TO_IN = [61, 61, 62, 63, 63, 65, 65, 66, 67, 67]
X = EXTRA


def _add(p: np.ndarray, idx, amount: np.ndarray, dx=0.0, dy=0.0, dz=0.0, outward=False) -> None:
    """``p[:, idx] += amount * (dx, dy, dz)``; with ``outward`` dx points away from the midline."""
    idx = list(idx)
    a = amount[:, None]
    if dx:
        sx = _SIDE[idx][None, :] if outward else 1.0
        p[:, idx, 0] += a * (dx * sx)
    if dy:
        p[:, idx, 1] += a * dy
    if dz:
        p[:, idx, 2] += a * dz


def _scale_x(p: np.ndarray, idx, amount: np.ndarray, about: float = 0.0) -> None:
    idx = list(idx)
    p[:, idx, 0] = about + (p[:, idx, 0] - about) * (1.0 + amount[:, None])


def _apply_identity(p: np.ndarray, ident: np.ndarray) -> None:
    d = 2.0 * ident - 1.0  # [-1, 1], 0 = average
    g = lambda name: d[:, _I[name]]  # noqa: E731
    outline = JAW + X["forehead"] + X["cheekbone"] + X["temple"] + X["ear"] + X["neck"] + X["torso"]
    _scale_x(p, outline, 0.08 * g("face_width"))
    _add(p, [5, 6, 7, 8, 9, 10, 11], 0.10 * g("face_length"), dy=1.0)
    _add(p, [4, 12], 0.05 * g("face_length"), dy=1.0)
    _add(p, X["chin"], 0.08 * g("face_length"), dy=1.0)
    _scale_x(p, [3, 4, 5, 11, 12, 13], 0.12 * g("jaw_width"))
    _scale_x(p, [6, 7, 9, 10], 0.20 * g("chin_width"))
    for i, w in zip([6, 7, 8, 9, 10], [0.4, 0.8, 1.0, 0.8, 0.4], strict=True):
        _add(p, [i], 0.10 * w * g("chin_length"), dy=1.0)
    _add(p, X["chin"], 0.07 * g("chin_length"), dy=1.0)
    _scale_x(p, [2, 3, 4, 12, 13, 14] + X["cheekbone"], 0.05 * g("cheek_fullness"))
    _add(p, X["cheek"], 0.05 * g("cheek_fullness"), dz=1.0)
    top = X["forehead"][1:-1]
    _add(p, top, -0.14 * g("forehead_height"), dy=1.0)
    _add(p, X["head"], -0.10 * g("forehead_height"), dy=1.0)
    _add(p, X["hairline"], -0.12 * g("forehead_height"), dy=1.0)
    _add(p, X["chin"], 0.05 * g("chin_boss"), dz=1.0)
    # brows
    _add(p, BROWS, -0.09 * g("brow_height"), dy=1.0)
    _add(p, [17, 26], 0.07 * g("brow_length"), dx=1.0, outward=True)
    _add(p, [18, 25], 0.03 * g("brow_length"), dx=1.0, outward=True)
    _add(p, [19, 24], -0.05 * g("brow_arch"), dy=1.0)
    _add(p, [18, 25, 20, 23], -0.025 * g("brow_arch"), dy=1.0)
    _add(p, [21, 22], -0.07 * g("brow_tilt"), dy=1.0)
    _add(p, [20, 23], -0.035 * g("brow_tilt"), dy=1.0)
    _add(p, [17, 26], 0.03 * g("brow_tilt"), dy=1.0)
    _add(p, [21, 22], 0.05 * g("brow_spacing"), dx=1.0, outward=True)
    _add(p, [20, 23], 0.025 * g("brow_spacing"), dx=1.0, outward=True)
    # eyes
    _add(p, UPPER_LID, -0.025 * g("eye_height"), dy=1.0)
    _add(p, LOWER_LID, 0.012 * g("eye_height"), dy=1.0)
    for eye, c in ((EYE_L, -0.5), (EYE_R, 0.5)):
        _scale_x(p, eye, 0.10 * g("eye_width"), about=c)
    eyes = EYE_L + EYE_R + X["iris"] + X["eye_centre"]
    _add(p, eyes, 0.04 * g("eye_spacing"), dx=1.0, outward=True)
    _add(p, [36, 45], -0.035 * g("eye_tilt"), dy=1.0)
    _add(p, [39, 42], 0.015 * g("eye_tilt"), dy=1.0)
    _add(p, eyes, 0.035 * g("eye_vertical"), dy=1.0)
    _add(p, UPPER_LID, 0.022 * (ident[:, _I["lid_droop"]]), dy=1.0)
    # nose
    _add(p, [30] + NOSTRILS + X["alar"], 0.07 * g("nose_length"), dy=1.0)
    _add(p, [29], 0.045 * g("nose_length"), dy=1.0)
    _scale_x(p, NOSTRILS + X["alar"], 0.20 * g("nose_width"))
    for i in (28, 29, 30, 32, 33, 34):
        p[:, i, 2] *= 1.0 + 0.25 * g("nose_projection")
    _add(p, [30], 0.02 * g("nose_tip"), dy=1.0)
    # mouth
    _add(p, CORNERS + INNER_CORNERS, 0.05 * g("mouth_width"), dx=1.0, outward=True)
    _add(p, [49, 53, 55, 59, 61, 63, 65, 67], 0.03 * g("mouth_width"), dx=1.0, outward=True)
    _add(p, OUT_UP, -0.035 * g("upper_lip_thickness"), dy=1.0)
    _add(p, OUT_LO, 0.045 * g("lower_lip_thickness"), dy=1.0)
    _add(p, MOUTH + X["dimple"], 0.045 * g("mouth_vertical"), dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, 0.045 * g("mouth_corner_tilt"), dy=1.0)
    _add(p, [50, 52], -0.02 * g("cupid_bow"), dy=1.0)
    _add(p, [51], 0.012 * g("cupid_bow"), dy=1.0)
    # ears
    _add(p, X["ear"], -0.03 * g("ear_size"), dx=1.0, outward=True)
    _add(p, X["hairline"], -0.06 * g("hairline"), dy=1.0)


def _apply_expression(p: np.ndarray, e: np.ndarray) -> None:
    v = lambda name: e[:, _E[name]]  # noqa: E731
    # -- eyes --------------------------------------------------------------------------------------
    _add(p, UPPER_LID, -0.065 * v("upper_lid_raise"), dy=1.0)
    _add(p, LOWER_LID, 0.010 * v("upper_lid_raise"), dy=1.0)
    lt = v("lid_tighten")
    _add(p, LOWER_LID, -0.050 * lt, dy=1.0)
    _add(p, UPPER_LID, 0.018 * lt, dy=1.0)
    cr = v("cheek_raise")
    _add(p, LOWER_LID, -0.05 * cr, dy=1.0)
    _add(p, [36, 45], -0.012 * cr, dy=1.0)
    _add(p, X["cheek"], -0.12 * cr, dy=1.0)
    _add(p, X["cheek"], 0.04 * cr, dz=1.0)
    # -- brows -------------------------------------------------------------------------------------
    ib = v("inner_brow_raise")
    for pts, amt in (([21, 22], 0.15), ([20, 23], 0.11), ([19, 24], 0.05), ([18, 25], 0.015)):
        _add(p, pts, -amt * ib, dy=1.0)
    _add(p, [21, 22], 0.015 * ib, dx=1.0, outward=True)
    ob = v("outer_brow_raise")
    for pts, amt in (([17, 26], 0.15), ([18, 25], 0.13), ([19, 24], 0.08), ([20, 23], 0.03)):
        _add(p, pts, -amt * ob, dy=1.0)
    bl = v("brow_lower")
    _add(p, BROWS, 0.085 * bl, dy=1.0)
    _add(p, [21, 22], 0.055 * bl, dy=1.0)
    _add(p, [20, 23], 0.025 * bl, dy=1.0)
    _add(p, [21, 22], -0.08 * bl, dx=1.0, outward=True)
    _add(p, [20, 23], -0.035 * bl, dx=1.0, outward=True)
    _add(p, [19, 24], -0.015 * bl, dx=1.0, outward=True)
    _add(p, UPPER_LID, 0.015 * bl, dy=1.0)
    # -- nose --------------------------------------------------------------------------------------
    nw = v("nose_wrinkle")
    _add(p, [31, 35] + X["alar"], -0.06 * nw, dy=1.0)
    _add(p, [32, 33, 34], -0.045 * nw, dy=1.0)
    _add(p, [30], -0.015 * nw, dy=1.0)
    _add(p, [31, 35] + X["alar"], 0.025 * nw, dx=1.0, outward=True)
    _add(p, [20, 21, 22, 23], 0.04 * nw, dy=1.0)
    _add(p, OUT_UP + IN_UP, -0.03 * nw, dy=1.0)
    _add(p, LOWER_LID, -0.015 * nw, dy=1.0)
    _add(p, X["nasolabial_l"][:1] + X["nasolabial_r"][:1], -0.05 * nw, dy=1.0)
    # -- mouth -------------------------------------------------------------------------------------
    ul = v("upper_lip_raise")
    _add(p, [50, 52], -0.09 * ul, dy=1.0)
    _add(p, [49, 53, 51], -0.075 * ul, dy=1.0)
    _add(p, IN_UP, -0.07 * ul, dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, -0.02 * ul, dy=1.0)
    _add(p, NOSTRILS + X["alar"], -0.02 * ul, dy=1.0)
    _add(p, X["nasolabial_l"][:2] + X["nasolabial_r"][:2], -0.04 * ul, dy=1.0)
    ld = v("lower_lip_depress")
    _add(p, [56, 57, 58], 0.085 * ld, dy=1.0)
    _add(p, [55, 59], 0.04 * ld, dy=1.0)
    _add(p, IN_LO, 0.065 * ld, dy=1.0)
    _add(p, OUT_LO, 0.03 * ld, dz=1.0)
    sm = v("smile")
    _add(p, CORNERS + INNER_CORNERS, -0.17 * sm, dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, 0.11 * sm, dx=1.0, outward=True)
    _add(p, CORNERS + INNER_CORNERS, -0.05 * sm, dz=1.0)
    _add(p, [49, 53], -0.05 * sm, dy=1.0)
    _add(p, [49, 53, 61, 63, 65, 67], 0.04 * sm, dx=1.0, outward=True)
    _add(p, [55, 59], -0.065 * sm, dy=1.0)
    _add(p, [55, 59], 0.05 * sm, dx=1.0, outward=True)
    _add(p, [56, 58, 61, 63, 65, 67], -0.03 * sm, dy=1.0)
    _add(p, [50, 52], -0.015 * sm, dy=1.0)
    _add(p, [57, 62, 66], -0.01 * sm, dy=1.0)
    _add(p, X["nasolabial_l"][1:] + X["nasolabial_r"][1:], 0.05 * sm, dx=1.0, outward=True)
    _add(p, X["nasolabial_l"][2:] + X["nasolabial_r"][2:], -0.08 * sm, dy=1.0)
    _add(p, X["dimple"], -0.10 * sm, dy=1.0)
    _add(p, X["dimple"], 0.08 * sm, dx=1.0, outward=True)
    dp = v("dimple")
    _add(p, CORNERS + INNER_CORNERS, -0.045 * dp, dx=1.0, outward=True)
    _add(p, CORNERS + INNER_CORNERS, -0.015 * dp, dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, -0.05 * dp, dz=1.0)
    _add(p, X["dimple"], -0.05 * dp, dx=1.0, outward=True)
    cd = v("lip_corner_depress")
    _add(p, CORNERS + INNER_CORNERS, 0.13 * cd, dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, 0.01 * cd, dx=1.0, outward=True)
    _add(p, [49, 53, 55, 59], 0.03 * cd, dy=1.0)
    _add(p, X["dimple"], 0.08 * cd, dy=1.0)
    ch = v("chin_raise")
    _add(p, OUT_LO, -0.07 * ch, dy=1.0)
    _add(p, [56, 57, 58], -0.015 * ch, dy=1.0)
    _add(p, IN_LO + IN_UP, -0.03 * ch, dy=1.0)
    _add(p, [50, 51, 52], -0.02 * ch, dy=1.0)
    _add(p, OUT_LO, 0.05 * ch, dz=1.0)
    _add(p, [7, 8, 9] + X["chin"], -0.04 * ch, dy=1.0)
    _add(p, CORNERS, 0.02 * ch, dy=1.0)
    ls = v("lip_stretch")
    _add(p, CORNERS + INNER_CORNERS, 0.10 * ls, dx=1.0, outward=True)
    _add(p, CORNERS + INNER_CORNERS, 0.02 * ls, dy=1.0)
    _add(p, [49, 53, 55, 59, 61, 63, 65, 67], 0.06 * ls, dx=1.0, outward=True)
    _add(p, OUT_UP, 0.015 * ls, dy=1.0)
    _add(p, OUT_LO, -0.02 * ls, dy=1.0)
    _add(p, X["dimple"], 0.07 * ls, dx=1.0, outward=True)
    pk = v("pucker")
    _add(p, CORNERS + INNER_CORNERS, -0.13 * pk, dx=1.0, outward=True)
    _add(p, [49, 53, 55, 59, 61, 63, 65, 67], -0.08 * pk, dx=1.0, outward=True)
    _add(p, [50, 52, 56, 58], -0.03 * pk, dx=1.0, outward=True)
    _add(p, MOUTH, 0.10 * pk, dz=1.0)
    _add(p, [50, 51, 52], -0.02 * pk, dy=1.0)
    _add(p, [56, 57, 58], 0.02 * pk, dy=1.0)
    _add(p, X["dimple"], -0.08 * pk, dx=1.0, outward=True)
    # lip_tighten / lip_press thin the red of the lips towards the lip line (applied below)
    pf = v("cheek_puff")
    for i, w in zip([2, 3, 4, 5, 6], [0.35, 0.75, 1.0, 0.8, 0.4], strict=True):
        _add(p, [i, 16 - i], 0.10 * w * pf, dx=1.0, outward=True)
    _add(p, X["cheek"], 0.04 * pf, dx=1.0, outward=True)
    _add(p, CORNERS + INNER_CORNERS, -0.03 * pf, dx=1.0, outward=True)
    _add(p, MOUTH, 0.04 * pf, dz=1.0)
    _add(p, X["nasolabial_l"][1:] + X["nasolabial_r"][1:], 0.04 * pf, dx=1.0, outward=True)
    shift = 0.10 * (v("mouth_right") - v("mouth_left"))
    _add(p, MOUTH, shift, dx=1.0)
    _add(p, X["dimple"] + X["nasolabial_l"][2:] + X["nasolabial_r"][2:], 0.5 * shift, dx=1.0)
    _add(p, [7, 8, 9] + X["chin"], 0.2 * shift, dx=1.0)

    # -- lip thinning (AU23, AU24) -----------------------------------------------------------------
    thin = np.clip(0.55 * v("lip_tighten") + 0.5 * v("lip_press"), 0.0, 0.8)
    inward = np.clip(0.02 * v("lip_tighten") + 0.02 * v("lip_press"), 0.0, 0.05)
    _add(p, CORNERS + INNER_CORNERS, -inward, dx=1.0, outward=True)
    for o, i in zip(OUT_UP + OUT_LO, _OUT_TO_IN, strict=True):
        p[:, o, 1] += thin * (p[:, i, 1] - p[:, o, 1])

    # -- lips apart (AU25) and jaw drop (AU26) -----------------------------------------------------
    lp = v("lips_part")
    jd = v("mouth_open")
    press = np.clip(1.0 - v("lip_press"), 0.0, 1.0)
    gate = np.clip(lp * 4.0, 0.0, 1.0)
    for i, w in zip([3, 4, 5, 6, 7, 8], [0.10, 0.28, 0.52, 0.76, 0.93, 1.0], strict=True):
        _add(p, [i, 16 - i] if i != 8 else [8], 0.42 * w * jd, dy=1.0)
    _add(p, [6, 7, 9, 10], -0.03 * jd, dx=1.0, outward=True)
    _add(p, X["chin"], 0.40 * jd, dy=1.0)
    # lower lip rides on the jaw; closed lips (no AU25) only stretch
    lower_out = 0.10 + 0.24 * gate
    _add(p, [56, 57, 58], jd * lower_out, dy=1.0)
    _add(p, [55, 59], jd * (0.045 + 0.15 * gate), dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, 0.03 * jd, dy=1.0)
    _add(p, CORNERS + INNER_CORNERS, -0.03 * jd, dx=1.0, outward=True)
    gap_c = press * (0.11 * lp + 0.26 * jd * gate)
    _add(p, IN_UP, -0.25 * gap_c, dy=1.0)
    _add(p, [66], 0.75 * gap_c, dy=1.0)
    _add(p, [65, 67], 0.62 * gap_c, dy=1.0)
    _add(p, [61, 63], -0.05 * gap_c, dy=1.0)


def _enforce_order(p: np.ndarray) -> None:
    """Keep lids and lips from crossing: an upper lid/lip point never goes below its lower one."""
    for u, lo in LID_PAIRS + list(zip(IN_UP, IN_LO, strict=True)):
        mid = 0.5 * (p[:, u, 1] + p[:, lo, 1])
        cross = p[:, u, 1] > p[:, lo, 1]
        p[:, u, 1] = np.where(cross, mid, p[:, u, 1])
        p[:, lo, 1] = np.where(cross, mid, p[:, lo, 1])
    # the outer lip lines stay outside the inner ones (minimum red lip thickness)
    for o, i in zip(OUT_UP, _OUT_TO_IN[:5], strict=True):
        p[:, o, 1] = np.minimum(p[:, o, 1], p[:, i, 1] - 0.012)
    for o, i in zip(OUT_LO, _OUT_TO_IN[5:], strict=True):
        p[:, o, 1] = np.maximum(p[:, o, 1], p[:, i, 1] + 0.012)


def _eye_close(p: np.ndarray, close: np.ndarray) -> None:
    """Eye closure (AU43): upper lids come down to just above the lower lids."""
    for u, lo in LID_PAIRS:
        target = p[:, lo, 1] - 0.004
        p[:, u, 1] = p[:, u, 1] + close * (target - p[:, u, 1])


def build_shapes(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canonical 3D points of validated parameters.

    Convention:
        Units of the average face's inter-ocular distance; origin between the average eye
        centres; x right, y down, z towards the camera. Points 0-67 in iBUG order, then
        :data:`EXTRA`.

    Args:
        params: ``(N, PARAM_DIM)`` float64, already validated.

    Returns:
        ``(shapes, neutral)``: ``(N, P, 3)`` points with identity and expression applied, and the
        same with identity only (used for appearance that must not move with expressions).
    """
    n = params.shape[0]
    p = np.broadcast_to(MEAN_SHAPE, (n,) + MEAN_SHAPE.shape).copy()
    _apply_identity(p, params[:, IDENTITY_SLICE])
    neutral = p.copy()
    e = params[:, EXPRESSION_SLICE]
    _apply_expression(p, e)
    _enforce_order(p)
    _eye_close(p, e[:, _E["eye_close"]])
    return p, neutral


def pose_matrices(params: np.ndarray, roll_extra_deg: np.ndarray | None = None) -> np.ndarray:
    """Rotation matrices ``(N, 3, 3)`` of the pose dims (yaw, then pitch, then roll).

    Convention:
        Canonical axes x right, y down, z towards the camera. Positive yaw moves the nose to the
        image's right, positive pitch moves it down, positive roll turns the face clockwise on
        screen. Built with the scalar ``math`` functions so results are identical everywhere.
    """
    n = params.shape[0]
    out = np.empty((n, 3, 3), dtype=np.float64)
    pose = params[:, POSE_SLICE]
    for k in range(n):
        yaw = math.radians((2.0 * float(pose[k, 0]) - 1.0) * POSE_RANGE_DEG[0])
        pitch = math.radians((2.0 * float(pose[k, 1]) - 1.0) * POSE_RANGE_DEG[1])
        roll_deg = (2.0 * float(pose[k, 2]) - 1.0) * POSE_RANGE_DEG[2]
        if roll_extra_deg is not None:
            roll_deg += float(roll_extra_deg[k])
        roll = math.radians(roll_deg)
        cy, sy = math.cos(yaw), math.sin(yaw)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cr, sr = math.cos(roll), math.sin(roll)
        ry = ((cy, 0.0, sy), (0.0, 1.0, 0.0), (-sy, 0.0, cy))
        rp = ((1.0, 0.0, 0.0), (0.0, cp, sp), (0.0, -sp, cp))
        rr = ((cr, -sr, 0.0), (sr, cr, 0.0), (0.0, 0.0, 1.0))
        m = _mul3(rr, _mul3(rp, ry))
        out[k] = m
    return out


def _mul3(a, b):
    return tuple(
        tuple(a[i][0] * b[0][j] + a[i][1] * b[1][j] + a[i][2] * b[2][j] for j in range(3))
        for i in range(3)
    )


def rotate(points: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Rotate ``(N, P, 3)`` canonical points about :data:`ROTATION_CENTRE` (element-wise maths).

    Convention:
        Canonical units (inter-ocular distances), x right, y down, z towards the camera;
        ``rot`` is ``(N, 3, 3)`` from :func:`pose_matrices`, applied as ``R @ (p - c) + c``.
    """
    c = np.asarray(ROTATION_CENTRE)
    q = points - c
    out = np.empty_like(q)
    for i in range(3):
        out[..., i] = (
            rot[:, i, 0, None] * q[..., 0]
            + rot[:, i, 1, None] * q[..., 1]
            + rot[:, i, 2, None] * q[..., 2]
        )
    return out + c
