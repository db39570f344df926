"""Face alignment: 5-point templates and batched least-squares similarity estimation.

Convention:
    Points are ``(x, y)`` in pixel coordinates of the image they were measured in, with the
    origin at the centre of the top-left pixel (pixel ``(i, j)`` covers ``[i - 0.5, i + 0.5)``),
    x to the right and y down. This is the convention of OpenCV's ``warpAffine`` and of
    :func:`auperf.ops.warp_faces`.

    The 5 points, in this order: the eye on the image's left (the subject's right eye), the eye
    on the image's right, the nose tip, the mouth corner on the image's left, the mouth corner on
    the image's right. Eye points are eye centres.

    Matrices are named by direction: ``src_to_dst`` maps a source-image point ``p`` (the frame)
    to the crop as ``M @ [x, y, 1]``. :func:`estimate_similarity` returns exactly the matrix that
    ``cv2.warpAffine(frame, M, (size, size))`` and :func:`auperf.ops.warp_faces` expect.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _arrays
from .errors import NonFiniteError, ShapeError, SingularMatrixError

__all__ = [
    "TEMPLATE_112",
    "TEMPLATE_224",
    "TEMPLATE_256",
    "template",
    "estimate_similarity",
    "invert_affine",
    "five_points_from_68",
]

# The widely used 5-point template of 112x112 face crops (ArcFace / insightface), in the point
# order documented above. The larger templates are the same face scaled to the crop size.
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
TEMPLATE_112.setflags(write=False)


def template(size: int) -> np.ndarray:
    """The 5-point template for a square crop of ``size`` pixels, shape ``(5, 2)``, float64.

    The points are :data:`TEMPLATE_112` scaled by ``size / 112`` about the crop's corner, so
    the face covers the same fraction of every crop size.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ShapeError(f"size: expected a positive integer, got {size!r}")
    out = TEMPLATE_112 * (float(size) / 112.0)
    out.setflags(write=False)
    return out


TEMPLATE_224 = template(224)
TEMPLATE_256 = template(256)


def estimate_similarity(
    points: Any,
    template: Any = TEMPLATE_224,
    *,
    return_status: bool = False,
    stream: int | None = None,
):
    """Least-squares similarity transforms (Umeyama, no reflection) from points to a template.

    For every face ``n`` finds the scale ``s``, rotation ``R`` and translation ``t`` that minimise
    ``sum_k || s R points[n, k] + t - template[k] ||^2`` and returns ``M[n] = [s R | t]``.

    Convention:
        ``M`` maps source (frame) pixels to destination (crop) pixels: ``src_to_dst``. It is the
        matrix ``cv2.warpAffine`` takes without ``WARP_INVERSE_MAP``. Pixel centres at integers.

    Args:
        points: ``(N, K, 2)`` landmarks in frame pixels, K >= 2. NumPy (float32/float64) or a CUDA
            array (torch or cupy) on one device.
        template: ``(K, 2)`` destination points (default :data:`TEMPLATE_224`).
        return_status: when True, return ``(matrices, ok)`` with ``ok`` a boolean ``(N,)`` array and
            the matrices of faces that could not be estimated set to NaN, instead of raising.
        stream: CUDA stream handle for device input (default: the framework's current stream).

    Returns:
        ``(N, 2, 3)`` float64 matrices, in the framework and on the device of ``points``.

    Raises:
        ShapeError: ranks or sizes are wrong (K differs between points and template, K < 2).
        NonFiniteError: a face's points hold NaN or Inf (unless ``return_status``).
        SingularMatrixError: a face's points all coincide (unless ``return_status``).
    """
    dev = _arrays.device_array(points, "points")
    if dev is not None:
        return _estimate_similarity_cuda(dev, template, return_status, stream)
    pts = _arrays.host_float64(points, "points")
    tmpl = _arrays.host_float64(template, "template")
    _check_similarity_shapes(pts.shape, tmpl.shape)
    from . import _core

    matrices, status = _core.similarity_cpu(pts, tmpl)
    return _finish_similarity(matrices, status, return_status)


def _check_similarity_shapes(pshape: tuple, tshape: tuple) -> None:
    if len(pshape) != 3 or pshape[2] != 2:
        raise ShapeError(f"points: expected shape (N, K, 2), got {tuple(pshape)}")
    if len(tshape) != 2 or tshape[1] != 2:
        raise ShapeError(f"template: expected shape (K, 2), got {tuple(tshape)}")
    if tshape[0] != pshape[1]:
        raise ShapeError(
            f"template: expected {pshape[1]} points to match points (N, K={pshape[1]}, 2), "
            f"got {tshape[0]}"
        )
    if pshape[1] < 2:
        raise ShapeError(f"points: expected at least 2 points per face, got K={pshape[1]}")


def _finish_similarity(matrices, status_host: np.ndarray, return_status: bool):
    ok = status_host == 0
    if return_status:
        return matrices, ok
    bad = np.flatnonzero(~ok)
    if bad.size:
        nonfinite = np.flatnonzero(status_host == 1)
        if nonfinite.size:
            raise NonFiniteError(
                f"points: faces {nonfinite[:10].tolist()} hold NaN or Inf coordinates"
            )
        raise SingularMatrixError(
            f"points: faces {bad[:10].tolist()} have (nearly) coincident points; "
            "no similarity transform can be estimated"
        )
    return matrices


def _estimate_similarity_cuda(dev, template, return_status, stream):
    from . import _core

    _check_similarity_shapes(dev.shape, np.shape(template))
    pts = dev.contiguous_as("float64")
    tmpl = _arrays.to_device_like(_arrays.host_float64(template, "template"), pts)
    n, k = pts.shape[0], pts.shape[1]
    matrices = pts.empty((n, 2, 3), "float64")
    status = pts.empty((n,), "int8")
    handle = pts.stream(stream)
    if n:
        with _arrays.launch_guard(pts, handle, (pts.obj, tmpl), sync=True):
            _core.similarity_cuda(
                pts.ptr,
                _arrays.device_array(tmpl, "template").ptr,
                n,
                k,
                _arrays.device_array(matrices, "out").ptr,
                _arrays.device_array(status, "status").ptr,
                handle,
                pts.device_id,
            )
    status_host = _arrays.to_host(status).astype(np.int8)
    return _finish_similarity(matrices, status_host, return_status)


def invert_affine(matrices: Any) -> np.ndarray:
    """Invert ``(N, 2, 3)`` affine matrices (``src_to_dst`` -> ``dst_to_src``), NumPy, float64.

    Raises:
        NonFiniteError, SingularMatrixError: a matrix holds NaN/Inf or has a zero determinant.
    """
    m = _arrays.host_float64(matrices, "matrices")
    if m.ndim != 3 or m.shape[1:] != (2, 3):
        raise ShapeError(f"matrices: expected shape (N, 2, 3), got {m.shape}")
    if not np.isfinite(m).all():
        raise NonFiniteError("matrices: hold NaN or Inf")
    a, b, c = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    d, e, f = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    det = a * e - b * d
    scale = np.maximum(np.abs(m[:, :, :2]).max(axis=(1, 2)), 1e-300)
    bad = np.flatnonzero(np.abs(det) <= 1e-12 * scale * scale)
    if bad.size:
        raise SingularMatrixError(f"matrices: faces {bad[:10].tolist()} are singular")
    inv = np.empty_like(m)
    inv[:, 0, 0] = e / det
    inv[:, 0, 1] = -b / det
    inv[:, 1, 0] = -d / det
    inv[:, 1, 1] = a / det
    inv[:, 0, 2] = -(inv[:, 0, 0] * c + inv[:, 0, 1] * f)
    inv[:, 1, 2] = -(inv[:, 1, 0] * c + inv[:, 1, 1] * f)
    return inv


def five_points_from_68(landmarks68: Any) -> np.ndarray:
    """The 5 alignment points from iBUG 68-point landmarks, ``(N, 68, 2)`` -> ``(N, 5, 2)``.

    Eye centres are the midpoints of each eye's corners (points 36/39 and 42/45): unlike the mean
    of the 6 eye points they do not move when the lids close, so alignment stays put through
    blinks and AU7/AU43. Then the nose tip (30) and the mouth corners (48, 54). This is the rule
    the renderer's 5-point ground truth follows, and so the alignment the shipped models saw.

    Convention:
        Same coordinates as the input; output point order as the templates of this module.

    Raises:
        ShapeError: the input is not ``(N, 68, 2)``.
    """
    lm = np.asarray(landmarks68, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ShapeError(f"landmarks68: expected shape (N, 68, 2), got {lm.shape}")
    out = np.empty((lm.shape[0], 5, 2))
    out[:, 0] = 0.5 * (lm[:, 36] + lm[:, 39])
    out[:, 1] = 0.5 * (lm[:, 42] + lm[:, 45])
    out[:, 2] = lm[:, 30]
    out[:, 3] = lm[:, 48]
    out[:, 4] = lm[:, 54]
    return out
