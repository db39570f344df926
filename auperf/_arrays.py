"""Array plumbing between NumPy, CUDA frameworks and the compiled core.

Host arrays are NumPy (anything ``np.asarray`` accepts). Device arrays are objects that expose
``__cuda_array_interface__`` (torch CUDA tensors, cupy arrays, numba arrays) or DLPack with a CUDA
device (converted through torch or cupy, whichever is installed). The core receives raw device
pointers plus a stream; outputs are allocated here in the caller's framework, so a torch caller
gets torch tensors back and a cupy caller cupy arrays.

Nothing here imports torch or cupy unless the caller passed one of their arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import DeviceError, DTypeError, ShapeError

_KDL_CUDA = 2  # DLPack device type of CUDA memory


def host_float64(x: Any, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 NumPy array (a copy only where needed)."""
    if is_device_object(x):
        raise DeviceError(f"{name}: expected a host (NumPy) array, got a CUDA array")
    try:
        a = np.asarray(x)
    except Exception as exc:  # noqa: BLE001 - report what could not be converted
        raise DTypeError(f"{name}: cannot be read as an array ({exc})") from exc
    if a.dtype.kind not in "fiu" or a.dtype == np.bool_:
        raise DTypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float64)


def is_device_object(x: Any) -> bool:
    """True for objects that describe CUDA memory (CUDA array interface or a CUDA DLPack)."""
    if hasattr(x, "__cuda_array_interface__"):
        return True
    dev = getattr(x, "__dlpack_device__", None)
    if dev is not None and not isinstance(x, np.ndarray):
        try:
            return int(dev()[0]) == _KDL_CUDA
        except Exception:  # noqa: BLE001 - an object with a broken protocol is not a device array
            return False
    return False


@dataclass
class DeviceArray:
    """A CUDA array as the core sees it: pointer, shape, byte strides, dtype, device, framework."""

    obj: Any
    ptr: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: np.dtype
    device_id: int
    framework: str  # "torch", "cupy" or "other"

    @property
    def is_contiguous(self) -> bool:
        expected = self.dtype.itemsize
        for size, stride in zip(reversed(self.shape), reversed(self.strides), strict=True):
            if size > 1 and stride != expected:
                return False
            expected *= size
        return True

    def contiguous_as(self, dtype: str) -> DeviceArray:
        """This array converted to ``dtype`` and made C-contiguous, in its own framework."""
        if self.dtype == np.dtype(dtype) and self.is_contiguous:
            return self
        if self.framework == "torch":
            import torch

            out = self.obj.to(getattr(torch, dtype)).contiguous()
        elif self.framework == "cupy":
            import cupy

            out = cupy.ascontiguousarray(self.obj.astype(dtype))
        else:
            raise DeviceError(
                f"a {type(self.obj).__name__} array must already be C-contiguous {dtype}"
            )
        return device_array(out, "array")

    def empty(self, shape: tuple[int, ...], dtype: str) -> Any:
        """A new uninitialised array in the same framework and on the same device."""
        return empty_on_device(self, shape, dtype)

    def stream(self, stream: int | None) -> int:
        """The stream to launch on: ``stream`` if given, else the framework's current stream."""
        if stream is not None:
            return int(stream)
        if self.framework == "torch":
            import torch

            return int(torch.cuda.current_stream(self.device_id).cuda_stream)
        if self.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.device_id):
                return int(cupy.cuda.get_current_stream().ptr)
        return 0


def launch_guard(like: DeviceArray, handle: int, temporaries: tuple = (), sync: bool = False):
    """Context manager around a kernel launch on stream ``handle`` that reads ``temporaries``.

    Temporaries (converted copies, thresholds copied to the device) are made on the framework's
    current stream. When the launch stream is another one, the current stream is synchronised
    first so they are ready, and afterwards their memory is kept from reuse until the launch
    stream's work is done (torch: ``record_stream``; cupy: synchronise the launch stream).
    With ``sync`` the launch stream is synchronised on exit (for results read on the host).
    """
    return _LaunchGuard(like, handle, temporaries, sync)


class _LaunchGuard:
    def __init__(self, like: DeviceArray, handle: int, temporaries: tuple, sync: bool) -> None:
        self.like, self.handle, self.temporaries, self.sync = like, handle, temporaries, sync
        self.current = None

    def __enter__(self) -> None:
        if self.like.framework == "torch":
            import torch

            self.current = torch.cuda.current_stream(self.like.device_id)
            if self.handle != self.current.cuda_stream:
                self.current.synchronize()
        elif self.like.framework == "cupy":
            import cupy

            with cupy.cuda.Device(self.like.device_id):
                self.current = cupy.cuda.get_current_stream()
            if self.handle != self.current.ptr:
                self.current.synchronize()

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        if self.sync:
            self._synchronize_launch_stream()
            return
        if not self.temporaries:
            return
        if self.like.framework == "torch":
            import torch

            if self.handle != self.current.cuda_stream:
                launch = torch.cuda.ExternalStream(self.handle, device=self.like.obj.device)
                for t in self.temporaries:
                    t.record_stream(launch)
        elif self.like.framework == "cupy":
            import cupy

            if self.handle != self.current.ptr:
                cupy.cuda.ExternalStream(self.handle).synchronize()

    def _synchronize_launch_stream(self) -> None:
        if self.like.framework == "torch":
            import torch

            torch.cuda.ExternalStream(self.handle, device=self.like.obj.device).synchronize()
        elif self.like.framework == "cupy":
            import cupy

            cupy.cuda.ExternalStream(self.handle).synchronize()


def _framework_of(x: Any) -> str:
    mod = type(x).__module__.split(".")[0]
    return mod if mod in ("torch", "cupy") else "other"


def device_array(x: Any, name: str) -> DeviceArray | None:
    """Describe ``x`` if it is a CUDA array, else return None (it is a host array)."""
    if not is_device_object(x):
        return None
    if not hasattr(x, "__cuda_array_interface__"):
        x = _from_dlpack(x, name)
    cai = x.__cuda_array_interface__
    shape = tuple(int(s) for s in cai["shape"])
    dtype = np.dtype(cai["typestr"])
    ptr = int(cai["data"][0])
    strides = cai.get("strides")
    if strides is None:  # None means C-contiguous in the interface
        strides = tuple(s * dtype.itemsize for s in _c_strides(shape))
    else:
        strides = tuple(int(s) for s in strides)
    return DeviceArray(x, ptr, shape, strides, dtype, _device_id(x), _framework_of(x))


def _c_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    out, acc = [], 1
    for s in reversed(shape):
        out.append(acc)
        acc *= s
    return tuple(reversed(out))


def _device_id(x: Any) -> int:
    dev = getattr(x, "device", None)
    if dev is not None:
        index = getattr(dev, "index", None)  # torch.device
        if index is not None:
            return int(index)
        ident = getattr(dev, "id", None)  # cupy.cuda.Device
        if ident is not None:
            return int(ident)
    dl = getattr(x, "__dlpack_device__", None)
    if dl is not None:
        return int(dl()[1])
    return 0


def _from_dlpack(x: Any, name: str) -> Any:
    try:
        import torch

        return torch.from_dlpack(x)
    except ImportError:
        pass
    try:
        import cupy

        return cupy.from_dlpack(x)
    except ImportError as exc:
        raise DeviceError(
            f"{name}: a CUDA DLPack array needs torch or cupy installed to be read"
        ) from exc


def empty_on_device(like: DeviceArray, shape: tuple[int, ...], dtype: str) -> Any:
    if like.framework == "torch":
        import torch

        tdtype = torch.bool if dtype == "bool" else getattr(torch, dtype)
        return torch.empty(shape, dtype=tdtype, device=like.obj.device)
    if like.framework == "cupy":
        import cupy

        with cupy.cuda.Device(like.device_id):
            return cupy.empty(shape, dtype=dtype)
    raise DeviceError(
        f"cannot allocate outputs for a {type(like.obj).__name__} array: pass torch or cupy arrays"
    )


def to_device_like(host: np.ndarray, like: DeviceArray) -> Any:
    """Copy a host array to the device and framework of ``like``."""
    if like.framework == "torch":
        import torch

        return torch.from_numpy(np.ascontiguousarray(host)).to(like.obj.device)
    if like.framework == "cupy":
        import cupy

        with cupy.cuda.Device(like.device_id):
            return cupy.asarray(np.ascontiguousarray(host))
    raise DeviceError(f"cannot copy to a {type(like.obj).__name__} array's device")


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of a device array (synchronises with its stream)."""
    if not is_device_object(x):
        return np.asarray(x)
    fw = _framework_of(x)
    if fw == "torch":
        return x.detach().cpu().numpy()
    if fw == "cupy":
        return x.get()
    raise DeviceError(f"cannot copy a {type(x).__name__} array to the host")


def same_device(arrays: dict[str, DeviceArray | None]) -> None:
    """Raise DeviceError unless all named arrays are on the host, or all on one CUDA device."""
    kinds = {name: ("host" if a is None else f"cuda:{a.device_id}") for name, a in arrays.items()}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{n} on {k}" for n, k in kinds.items())
        raise DeviceError(f"arrays must be on one device: {listing}")


def require_shape(shape: tuple[int, ...], expected: str, name: str, ok: bool) -> None:
    if not ok:
        raise ShapeError(f"{name}: expected shape {expected}, got {tuple(shape)}")
