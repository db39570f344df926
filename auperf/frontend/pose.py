"""Head pose from a rotation, and the 5 alignment points from MediaPipe's 478-point mesh.

Convention (the one of :mod:`auperf.frontend.base`):
    Head pose is ``(yaw, pitch, roll)`` in degrees, camera looking at the face. yaw > 0 when the
    face turns towards the image's left (the subject's right), pitch > 0 when the face looks
    up, roll > 0 when the face turns clockwise in the image.

The rotation ``R`` (3x3, the upper-left block of MediaPipe's facial transformation matrix) maps
the canonical face model's axes to camera axes. MediaPipe's camera frame is x right, y up,
z towards the viewer (the camera looks along -z); the canonical face looks along +z with +y up
when ``R`` is the identity. ``R`` is decomposed as ``R = Ry(a) @ Rx(b) @ Rz(c)`` (intrinsic
y-x-z, each a right-handed rotation about that camera axis), which gives
``a = atan2(R[0, 2], R[2, 2])``, ``b = asin(-R[1, 2])``, ``c = atan2(R[1, 0], R[1, 1])``.
Turning towards the image's left, looking up and turning clockwise on screen are negative
rotations in that frame, so ``yaw = -a``, ``pitch = -b``, ``roll = -c``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError

__all__ = ["head_pose_from_rotation", "landmarks5_from_mediapipe", "MEDIAPIPE_FIVE_POINT_INDICES"]

#: Mesh indices used for the 5 points: (outer, inner) corner of the image-left eye (the
#: subject's right eye), (inner, outer) corner of the image-right eye, nose tip, mouth corner
#: image-left, mouth corner image-right.
MEDIAPIPE_FIVE_POINT_INDICES = {
    "eye_image_left": (33, 133),
    "eye_image_right": (362, 263),
    "nose_tip": 1,
    "mouth_image_left": 61,
    "mouth_image_right": 291,
}


def head_pose_from_rotation(rotation: Any) -> np.ndarray:
    """``(yaw, pitch, roll)`` in degrees from rotation matrices (see the module *Convention*).

    Args:
        rotation: ``(N, 3, 3)`` or ``(N, 4, 4)`` (only the upper-left 3x3 block is read; any
            scale in it is divided out per column), or one such matrix.

    Returns:
        ``(N, 3)`` float64 degrees (``(3,)`` for one matrix).
    """
    r = np.asarray(rotation, dtype=np.float64)
    single = r.ndim == 2
    if single:
        r = r[None]
    if r.ndim != 3 or r.shape[1:] not in ((3, 3), (4, 4)):
        raise ShapeError(f"rotation: expected shape (N, 3, 3) or (N, 4, 4), got {r.shape}")
    r = r[:, :3, :3]
    r = r / np.linalg.norm(r, axis=1, keepdims=True)
    a = np.arctan2(r[:, 0, 2], r[:, 2, 2])
    b = np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0))
    c = np.arctan2(r[:, 1, 0], r[:, 1, 1])
    out = np.degrees(np.stack([-a, -b, -c], axis=1))
    return out[0] if single else out


def landmarks5_from_mediapipe(mesh: Any) -> np.ndarray:
    """The 5 alignment points from MediaPipe's 468/478-point face mesh.

    Eye centres are eye-corner midpoints (the rule of :func:`auperf.align.five_points_from_68`),
    then the nose tip and the two mouth corners (:data:`MEDIAPIPE_FIVE_POINT_INDICES`).

    Args:
        mesh: ``(N, K, 2)`` with ``K >= 468`` (extra columns such as z are ignored when the last
            axis is 3).

    Returns:
        ``(N, 5, 2)`` float64 in the :mod:`auperf.align` point order, same coordinates as input.
    """
    m = np.asarray(mesh, dtype=np.float64)
    if m.ndim != 3 or m.shape[1] < 468 or m.shape[2] not in (2, 3):
        raise ShapeError(f"mesh: expected shape (N, 468|478, 2), got {m.shape}")
    m = m[..., :2]
    ix = MEDIAPIPE_FIVE_POINT_INDICES
    return np.stack(
        [
            m[:, list(ix["eye_image_left"])].mean(axis=1),
            m[:, list(ix["eye_image_right"])].mean(axis=1),
            m[:, ix["nose_tip"]],
            m[:, ix["mouth_image_left"]],
            m[:, ix["mouth_image_right"]],
        ],
        axis=1,
    )
