"""The builder/runtime library and the GPUs, found lazily.

TensorRT (module ``tensorrt``) and TensorRT-RTX (module ``tensorrt_rtx``) share the builder and
runtime API auperf uses: ``Logger``, ``Builder``, ``OnnxParser``, ``IBuilderConfig``,
optimisation profiles, ``build_serialized_network``, ``Runtime.deserialize_cuda_engine`` and
the ``ICudaEngine`` / ``IExecutionContext`` tensor API. Where they differ, the code asks the
module for the feature (``hasattr``) rather than for its name:

- TensorRT-RTX builds for a chosen compute capability (``IBuilderConfig.set_compute_capability``
  with ``ComputeCapability.SM80``...) without a GPU; TensorRT builds for the GPU it runs on.
- TensorRT 10 has ``BuilderFlag.FP16``/``INT8`` and ``IInt8Calibrator``; TensorRT-RTX (and
  TensorRT 11) build strongly typed networks only: fp16 comes from an fp16 graph, int8 from
  QuantizeLinear/DequantizeLinear nodes.
- TensorRT-RTX ignores timing caches (its calls are deprecated no-ops).

Nothing here imports either library at import time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import OptionalDependencyError

__all__ = [
    "LIBRARIES",
    "Library",
    "GpuInfo",
    "find_library",
    "installed_libraries",
    "visible_gpus",
]

_log = logging.getLogger("auperf")

#: Module names in the order they are preferred.
LIBRARIES: tuple[str, ...] = ("tensorrt", "tensorrt_rtx")
_DISTRIBUTIONS = {
    "tensorrt": ("tensorrt", "tensorrt-cu13", "tensorrt-cu12"),
    "tensorrt_rtx": ("tensorrt-rtx-cu13", "tensorrt-rtx-cu12", "tensorrt-rtx"),
}
INSTALL_HINT = (
    "install TensorRT (pip install tensorrt) or TensorRT-RTX (pip install tensorrt-rtx-cu13, "
    "the auperf[tensorrt-rtx] extra)"
)


@dataclass(frozen=True)
class Library:
    """An imported builder/runtime library.

    Attributes:
        name: the module name, ``"tensorrt"`` or ``"tensorrt_rtx"``.
        version: its ``__version__``.
        module: the module.
    """

    name: str
    version: str
    module: Any

    @property
    def strongly_typed_only(self) -> bool:
        """Whether the builder lacks precision flags (fp16/int8 must be in the graph)."""
        return not hasattr(self.module.BuilderFlag, "FP16")

    @property
    def has_int8_calibrator(self) -> bool:
        """Whether implicit INT8 calibration (``IInt8Calibrator``) exists."""
        return hasattr(self.module, "IInt8EntropyCalibrator2") and hasattr(
            self.module.BuilderFlag, "INT8"
        )

    @property
    def chooses_compute_capability(self) -> bool:
        """Whether the builder can target a compute capability other than the local GPU."""
        return hasattr(self.module, "ComputeCapability") and hasattr(
            self.module.IBuilderConfig, "set_compute_capability"
        )

    @property
    def uses_timing_cache(self) -> bool:
        """Whether timing caches do something (TensorRT-RTX ignores them)."""
        return self.name != "tensorrt_rtx"

    def compute_capabilities(self) -> list[str]:
        """The architectures it can build for without a GPU (``["sm75", "sm80", ...]``)."""
        if not self.chooses_compute_capability:
            return []
        return sorted(
            (k.lower() for k in self.module.ComputeCapability.__members__ if k.startswith("SM")),
            key=lambda s: int(s[2:]),
        )

    def logger(self, severity: str = "WARNING") -> Any:
        """A library logger at ``severity``."""
        trt = self.module
        return trt.Logger(getattr(trt.Logger, severity))


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
    except Exception as exc:  # noqa: BLE001 - a broken install (missing CUDA libraries)
        _log.warning("importing %s failed: %s", name, exc)
        return None


def installed_libraries() -> list[str]:
    """Module names of the libraries that are installed (by their distributions; imports
    nothing)."""
    out = []
    for name in LIBRARIES:
        for dist in _DISTRIBUTIONS[name]:
            try:
                importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
            out.append(name)
            break
        else:
            if importlib.util.find_spec(name) is not None:
                out.append(name)
    return out


def find_library(prefer: str | None = None) -> Library:
    """Import the builder/runtime library.

    Args:
        prefer: ``"tensorrt"`` or ``"tensorrt_rtx"`` to ask for one (an engine must be loaded
            by the library that built it); ``None`` takes ``tensorrt`` when present, else
            ``tensorrt_rtx``.

    Raises:
        OptionalDependencyError: the library (either, for ``None``) is not installed.
    """
    names = LIBRARIES if prefer is None else (prefer,)
    if prefer is not None and prefer not in LIBRARIES:
        raise OptionalDependencyError(f"library: expected one of {list(LIBRARIES)}, got {prefer!r}")
    for name in names:
        mod = _import(name)
        if mod is not None:
            return Library(name, str(getattr(mod, "__version__", "unknown")), mod)
    what = "neither tensorrt nor tensorrt_rtx is" if prefer is None else f"{prefer} is not"
    raise OptionalDependencyError(f"{what} installed; {INSTALL_HINT}")


@dataclass(frozen=True)
class GpuInfo:
    """A visible CUDA GPU.

    Attributes:
        index: CUDA device index.
        name: e.g. ``"NVIDIA H100 80GB HBM3"``.
        compute_capability: ``(major, minor)``.
    """

    index: int
    name: str
    compute_capability: tuple[int, int]

    @property
    def arch(self) -> str:
        """``"sm<major><minor>"``."""
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


def _device_count() -> int:
    try:
        from .. import _core

        return int(_core.cuda_device_count())
    except Exception:  # noqa: BLE001 - a CPU-only core or no driver: no visible GPU
        return 0


def visible_gpus() -> list[GpuInfo]:
    """The CUDA GPUs this process sees, with names and compute capabilities (read through
    torch or cupy, whichever is installed with CUDA); empty without a GPU."""
    if _device_count() == 0:
        return []
    try:
        import torch

        if torch.cuda.is_available():
            return [
                GpuInfo(
                    i,
                    torch.cuda.get_device_name(i),
                    tuple(torch.cuda.get_device_capability(i)),  # type: ignore[arg-type]
                )
                for i in range(torch.cuda.device_count())
            ]
    except ImportError:
        pass
    try:
        import cupy

        out = []
        for i in range(cupy.cuda.runtime.getDeviceCount()):
            p = cupy.cuda.runtime.getDeviceProperties(i)
            name = p["name"].decode() if isinstance(p["name"], bytes) else str(p["name"])
            out.append(GpuInfo(i, name, (int(p["major"]), int(p["minor"]))))
        return out
    except ImportError:
        pass
    n = _device_count()
    _log.info("%d CUDA device(s) visible, but neither torch nor cupy to name them", n)
    return [GpuInfo(i, "unknown", (0, 0)) for i in range(n)]
