"""Batched face warping: :func:`warp_faces`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import _arrays
from ..errors import DeviceError, DTypeError, ShapeError, ValueRangeError

__all__ = ["warp_faces"]

_DTYPES = {"float32": 0, "float16": 1, "uint8": 2}
_LAYOUTS = {"NCHW": 0, "NHWC": 1}
_ORDERS = ("RGB", "BGR")


def warp_faces(
    frames: Any,
    matrices: Any,
    frame_index: Any = None,
    *,
    size: int | Sequence[int],
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    input_order: str = "RGB",
    output_order: str = "RGB",
    dtype: str = "float32",
    layout: str = "NCHW",
    border_value: float | Sequence[float] = 0.0,
    out: Any = None,
    stream: int | None = None,
    validate: bool = True,
) -> Any:
    """Warp, crop, normalise and lay out N faces from a batch of frames in one pass.

    For each face ``n``, samples frame ``frame_index[n]`` through ``matrices[n]`` into a
    ``size`` crop and writes ``(x / 255 - mean[c]) / std[c]`` in the requested channel order,
    dtype and layout. Many faces may come from one frame.

    Convention:
        - ``frames``: ``(B, H, W, 3)`` uint8, channels interleaved in ``input_order``.
        - ``matrices[n]`` is ``src_to_dst``: it maps a frame point ``(x, y)`` to the crop point
          ``M @ (x, y, 1)``, the matrix ``cv2.warpAffine`` takes (no ``WARP_INVERSE_MAP``) and the
          one :func:`auperf.align.estimate_similarity` returns. Crop pixel ``(x, y)`` is sampled
          at frame point ``inv(M) @ (x, y, 1)``.
        - Pixel centres lie at integer coordinates; the origin is the centre of the top-left pixel.
        - Bilinear interpolation; taps outside the frame read ``border_value`` (constant border,
          like ``cv2.BORDER_CONSTANT``), so the crop blends into the border at the frame's edge.
        - ``mean``/``std`` are per output channel, in units of ``x / 255``; defaults 0 and 1.
          uint8 output writes the sampled pixel values rounded half up, without normalisation.

    Args:
        frames: ``(B, H, W, 3)`` uint8, NumPy or a CUDA array (torch/cupy). Non-contiguous host
            frames are copied; device frames may have strided rows (e.g. a cropped view) but
            pixels must be interleaved.
        matrices: ``(N, 2, 3)`` src_to_dst matrices (any float dtype; used as float64), on the
            same device as ``frames``.
        frame_index: ``(N,)`` integer frame of each face. Optional when ``B == 1`` (all faces
            from frame 0) or ``N == B`` (face ``i`` from frame ``i``).
        size: crop size, ``int`` or ``(height, width)``.
        mean, std: 3 floats each (output channel order), or None.
        input_order, output_order: ``"RGB"`` or ``"BGR"``.
        dtype: ``"float32"``, ``"float16"`` or ``"uint8"``.
        layout: ``"NCHW"`` or ``"NHWC"``.
        border_value: pixel value (0-255) outside the frame, a scalar or 3 values (input order).
        out: optional preallocated C-contiguous output of the exact shape and dtype.
        stream: CUDA stream handle for device input (default: the framework's current stream).
        validate: check ``frame_index`` ranges and matrices on the device path (a small
            device-to-host copy); the host path always checks. Unchecked device faces with a bad
            index or singular matrix come out filled with the border value.

    Returns:
        The crops, ``(N, 3, h, w)`` or ``(N, h, w, 3)``, NumPy for NumPy input, otherwise an
        array of the input's framework on its device (``out`` itself when given).

    Raises:
        ShapeError, DTypeError, DeviceError, ValueRangeError, IndexRangeError, NonFiniteError,
        SingularMatrixError: bad input, with the argument named in the message.
        CudaUnavailableError, CudaError: device input without a usable CUDA build or device.
    """
    out_h, out_w = _parse_size(size)
    dtype_code = _pick(dtype, _DTYPES, "dtype")
    plan = _Plan(
        out_h=out_h,
        out_w=out_w,
        dtype=np.dtype(dtype).name,
        dtype_code=dtype_code,
        layout_code=_pick(layout, _LAYOUTS, "layout"),
        channel_map=_channel_map(input_order, output_order),
        normalisation=_normalisation(mean, std, dtype_code),
        border=_border(border_value),
    )

    dframes = _arrays.device_array(frames, "frames")
    dmatrices = _arrays.device_array(matrices, "matrices")
    dindex = _arrays.device_array(frame_index, "frame_index") if frame_index is not None else None
    named = {"frames": dframes, "matrices": dmatrices}
    if frame_index is not None:
        named["frame_index"] = dindex
    _arrays.same_device(named)
    if dframes is not None:
        return _warp_cuda(
            dframes, dmatrices, dindex, frame_index is None, out, plan, stream, validate
        )

    f = np.asarray(frames)
    _check_frames(f.shape, f.dtype)
    if not (f.strides[3] == 1 and f.strides[2] == 3 and f.strides[1] > 0 and f.strides[0] >= 0):
        f = np.ascontiguousarray(f)
    m = _arrays.host_float64(matrices, "matrices")
    _check_matrices(m.shape)
    idx = _frame_index_host(frame_index, m.shape[0], f.shape[0])
    result = _host_out(out, plan.out_shape(m.shape[0]), plan.dtype)
    from .. import _core

    _core.warp_cpu(f, m, idx, result, *plan.kernel_options())
    return result


@dataclass(frozen=True)
class _Plan:
    """The checked output options of one warp_faces call, as the core takes them."""

    out_h: int
    out_w: int
    dtype: str
    dtype_code: int
    layout_code: int
    channel_map: tuple[int, int, int]
    normalisation: tuple[tuple, tuple]  # (scale, bias) per output channel
    border: tuple[float, float, float]

    def out_shape(self, n: int) -> tuple[int, int, int, int]:
        if self.layout_code == _LAYOUTS["NCHW"]:
            return (n, 3, self.out_h, self.out_w)
        return (n, self.out_h, self.out_w, 3)

    def kernel_options(self) -> tuple:
        """channel_map, scale, bias, border, dtype and layout codes, in the core's order."""
        scale, bias = self.normalisation
        return (self.channel_map, scale, bias, self.border, self.dtype_code, self.layout_code)


def _parse_size(size: Any) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        h = w = int(size)
    elif (
        isinstance(size, Sequence)
        and len(size) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in size)
    ):
        h, w = int(size[0]), int(size[1])
    else:
        raise ShapeError(f"size: expected an int or (height, width), got {size!r}")
    if h < 1 or w < 1:
        raise ShapeError(f"size: expected positive sizes, got {size!r}")
    return h, w


def _pick(value: Any, table: dict[str, int], name: str) -> int:
    key = np.dtype(value).name if name == "dtype" and not isinstance(value, str) else value
    if key not in table:
        err = DTypeError if name == "dtype" else ValueRangeError
        raise err(f"{name}: expected one of {sorted(table)}, got {value!r}")
    return table[key]


def _channel_map(input_order: str, output_order: str) -> tuple[int, int, int]:
    for name, value in (("input_order", input_order), ("output_order", output_order)):
        if value not in _ORDERS:
            raise ValueRangeError(f"{name}: expected 'RGB' or 'BGR', got {value!r}")
    return (0, 1, 2) if input_order == output_order else (2, 1, 0)


def _triple(value: Any, name: str) -> np.ndarray:
    a = np.asarray(value, dtype=np.float64)
    if a.ndim == 0:
        a = np.repeat(a, 3)
    if a.shape != (3,):
        raise ShapeError(f"{name}: expected a scalar or 3 values, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueRangeError(f"{name}: expected finite values, got {a.tolist()}")
    return a


def _normalisation(mean: Any, std: Any, dtype_code: int) -> tuple[tuple, tuple]:
    if dtype_code == _DTYPES["uint8"]:
        if mean is not None or std is not None:
            raise ValueRangeError(
                "mean/std: uint8 output holds raw pixel values; normalisation needs a float dtype"
            )
        return (1.0, 1.0, 1.0), (0.0, 0.0, 0.0)
    m = np.zeros(3) if mean is None else _triple(mean, "mean")
    s = np.ones(3) if std is None else _triple(std, "std")
    if (s <= 0).any():
        raise ValueRangeError(f"std: expected values > 0, got {s.tolist()}")
    scale = 1.0 / (255.0 * s)
    bias = -m / s
    return tuple(float(v) for v in scale), tuple(float(v) for v in bias)


def _border(value: Any) -> tuple[float, float, float]:
    b = _triple(value, "border_value")
    if ((b < 0) | (b > 255)).any():
        raise ValueRangeError(f"border_value: expected pixel values in [0, 255], got {b.tolist()}")
    return tuple(float(v) for v in b)


def _check_frames(shape: tuple, dtype: Any) -> None:
    if len(shape) != 4:
        raise ShapeError(f"frames: expected shape (B, H, W, 3), got {tuple(shape)}")
    if shape[3] != 3:
        raise ShapeError(f"frames: expected 3 channels in (B, H, W, 3), got {tuple(shape)}")
    if shape[1] < 1 or shape[2] < 1:
        raise ShapeError(f"frames: expected H, W >= 1, got {tuple(shape)}")
    if np.dtype(dtype) != np.uint8:
        raise DTypeError(f"frames: expected uint8, got {np.dtype(dtype)}")


def _check_matrices(shape: tuple) -> None:
    if len(shape) != 3 or tuple(shape[1:]) != (2, 3):
        raise ShapeError(f"matrices: expected shape (N, 2, 3), got {tuple(shape)}")


def _frame_index_host(frame_index: Any, n: int, b: int) -> np.ndarray:
    if frame_index is None:
        if b == 1:
            return np.zeros(n, dtype=np.int64)
        if n == b:
            return np.arange(n, dtype=np.int64)
        raise ShapeError(
            f"frame_index: required when there are several frames (B={b}) and N={n} != B"
        )
    idx = np.asarray(frame_index)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"frame_index: expected integers, got dtype {idx.dtype}")
    if idx.shape != (n,):
        raise ShapeError(f"frame_index: expected shape ({n},) to match matrices, got {idx.shape}")
    return np.ascontiguousarray(idx, dtype=np.int64)


def _host_out(out: Any, shape: tuple, dtype: str) -> np.ndarray:
    np_dtype = np.dtype(dtype)
    if out is None:
        return np.empty(shape, dtype=np_dtype)
    if not isinstance(out, np.ndarray):
        raise DeviceError(f"out: expected a NumPy array for host frames, got {type(out).__name__}")
    if out.shape != shape or out.dtype != np_dtype:
        raise ShapeError(f"out: expected {shape} {np_dtype}, got {out.shape} {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ShapeError("out: expected a writable C-contiguous array")
    return out


def _warp_cuda(dframes, dmatrices, dindex, index_missing, out, plan, stream, validate):
    from .. import _core
    from ..align import invert_affine

    _check_frames(dframes.shape, dframes.dtype)
    if not (dframes.strides[3] == 1 and dframes.strides[2] == 3 and dframes.strides[1] > 0):
        dframes = dframes.contiguous_as("uint8")
    _check_matrices(dmatrices.shape)
    m = dmatrices.contiguous_as("float64")
    n, b = m.shape[0], dframes.shape[0]
    if index_missing:
        idx_host = _frame_index_host(None, n, b)
        idx = _arrays.device_array(_arrays.to_device_like(idx_host, dframes), "frame_index")
    else:
        if dindex.dtype.kind not in "iu":
            raise DTypeError(f"frame_index: expected integers, got dtype {dindex.dtype}")
        if dindex.shape != (n,):
            raise ShapeError(f"frame_index: expected shape ({n},), got {dindex.shape}")
        idx = dindex.contiguous_as("int64")
    if validate and n:
        idx_host = _arrays.to_host(idx.obj)
        bad = np.flatnonzero((idx_host < 0) | (idx_host >= b))
        if bad.size:
            from ..errors import IndexRangeError

            raise IndexRangeError(
                f"frame_index: entry {int(bad[0])} is {int(idx_host[bad[0]])}, "
                f"expected 0 <= index < {b}"
            )
        invert_affine(_arrays.to_host(m.obj))  # raises NonFinite/SingularMatrixError by face
    shape = plan.out_shape(n)
    dtype = plan.dtype
    if out is None:
        result = dframes.empty(shape, dtype)
    else:
        result = out
    dout = _arrays.device_array(result, "out")
    if dout is None or dout.device_id != dframes.device_id:
        raise DeviceError("out: expected a CUDA array on the device of frames")
    if dout.shape != shape or dout.dtype != np.dtype(dtype) or not dout.is_contiguous:
        raise ShapeError(
            f"out: expected C-contiguous {shape} {dtype}, got {dout.shape} {dout.dtype}"
        )
    frame_stride = dframes.strides[0] if b > 1 else dframes.strides[1] * dframes.shape[1]
    handle = dframes.stream(stream)
    with _arrays.launch_guard(dframes, handle, (dframes.obj, m.obj, idx.obj)):
        _core.warp_cuda(
            dframes.ptr,
            b,
            dframes.shape[1],
            dframes.shape[2],
            frame_stride,
            dframes.strides[1],
            m.ptr,
            idx.ptr,
            n,
            dout.ptr,
            plan.out_h,
            plan.out_w,
            *plan.kernel_options(),
            handle,
            dframes.device_id,
        )
    return result
