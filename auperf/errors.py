"""Typed exceptions raised by auperf.

Every error auperf raises on bad input derives from :class:`AuperfError`, and also from the
built-in class a caller would expect (``ValueError`` for bad values and shapes, ``TypeError``
for wrong types and dtypes, ``RuntimeError`` for failures of the machine or a backend), so that
``except ValueError`` keeps working in code that does not know auperf.

Messages name the argument, what was expected and what was received, for example::

    ShapeError: frames: expected shape (B, H, W, 3), got (4, 480, 640)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "AuperfError",
    "ShapeError",
    "DTypeError",
    "DeviceError",
    "ValueRangeError",
    "IndexRangeError",
    "NonFiniteError",
    "SingularMatrixError",
    "CudaError",
    "CudaUnavailableError",
    "ParameterError",
    "DatasetError",
    "ManifestError",
    "ManifestVersionError",
    "BackendError",
    "BackendUnavailableError",
    "UnknownProviderError",
    "FeedError",
    "SessionClosedError",
    "ModelNotFoundError",
    "WeightsError",
    "OptionalDependencyError",
    "TargetError",
    "EngineError",
    "EngineBuildError",
    "EngineMismatchError",
    "EngineNotFoundError",
    "EngineRuntimeUnavailableError",
    "PrecisionUnsupportedError",
    "Int8CalibrationUnsupportedError",
    "CalibrationError",
    "MediaError",
]


class AuperfError(Exception):
    """Base class of every exception auperf raises on purpose."""


class ShapeError(AuperfError, ValueError):
    """An array has the wrong rank or the wrong size along some axis."""


class DTypeError(AuperfError, TypeError):
    """An array has a dtype the operation does not accept."""


class DeviceError(AuperfError, ValueError):
    """Arrays live on different devices, or on a device the operation cannot use."""


class ValueRangeError(AuperfError, ValueError):
    """A value lies outside its documented range (thresholds outside [0, 1], std <= 0, ...)."""


class IndexRangeError(AuperfError, IndexError, ValueError):
    """An index (for example a ``frame_index`` entry) points outside the array it indexes."""


class NonFiniteError(AuperfError, ValueError):
    """An input holds NaN or infinite values where finite ones are required."""


class SingularMatrixError(AuperfError, ValueError):
    """A transform cannot be inverted or estimated (zero determinant, coincident points)."""


class ParameterError(AuperfError, ValueError):
    """A parameter vector has the wrong length or values outside its domain."""


class CudaError(AuperfError, RuntimeError):
    """A CUDA call or kernel failed; the message names the kernel and the CUDA error string."""


class CudaUnavailableError(AuperfError, RuntimeError):
    """A CUDA entry point was called but auperf was built without CUDA, or no device is visible."""


class DatasetError(AuperfError, ValueError):
    """A dataset on disk does not follow its layout: a missing file, a wrong header, a label
    outside its codes, a malformed row.

    Attributes:
        path: The file (or folder) at fault, or ``None`` when no single file is.
        row: The 1-based line number in ``path``, or ``None`` when the fault is the whole file.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, row: int | None = None):
        self.path = Path(path) if path is not None else None
        self.row = row
        if self.path is not None:
            where = f"{self.path}, row {row}" if row is not None else str(self.path)
            message = f"{where}: {message}"
        super().__init__(message)


class ManifestError(AuperfError, ValueError):
    """A model manifest is missing, not JSON, or has a field that is absent, unknown or invalid."""


class ManifestVersionError(ManifestError):
    """A manifest's ``format_version`` is newer than the one this library reads."""


class BackendError(AuperfError, RuntimeError):
    """A backend failed to load a model or to run it (the message names the model file)."""


class BackendUnavailableError(BackendError):
    """A requested backend cannot load on this machine: a package is not installed, an execution
    provider is missing, no GPU is visible.

    Attributes:
        reasons: provider name -> why it could not load, for every provider that was tried.
    """

    def __init__(self, message: str, reasons: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.reasons: dict[str, str] = dict(reasons or {})


class UnknownProviderError(AuperfError, ValueError):
    """A provider name that is not registered (the message lists the known names)."""


class FeedError(AuperfError, ValueError):
    """A session feed is not a mapping of the model's input names to arrays (a name is missing,
    unknown, or its value is not an array)."""


class SessionClosedError(AuperfError, RuntimeError):
    """A session or Detector was used after ``close()``."""


class ModelNotFoundError(AuperfError, FileNotFoundError):
    """A model folder or manifest does not exist (or a folder holds no single manifest)."""


class WeightsError(AuperfError, ValueError):
    """A weights file (safetensors) is missing, unreadable or does not fit the network."""


class OptionalDependencyError(AuperfError, ImportError):
    """An optional package a feature needs (e.g. pandas for ``to_pandas()``) is not installed."""


class TargetError(AuperfError, ValueError):
    """A build target is invalid (a field out of range, an unknown name, a malformed targets
    file) or cannot be built by the installed library (e.g. ``sm90`` with TensorRT-RTX)."""


class EngineError(AuperfError, RuntimeError):
    """Base class of the errors about building, caching and loading engines."""


class EngineBuildError(EngineError):
    """The builder failed: the ONNX did not parse, or ``build_serialized_network`` returned
    nothing (the message carries the builder's own errors)."""


class EngineMismatchError(EngineError):
    """An engine's sidecar does not match what runs here: the builder library or its version,
    the GPU's compute capability, the model's sha256, the manifest's inputs and outputs, or the
    engine file's own sha256. The message says how to rebuild."""


class EngineNotFoundError(EngineError, FileNotFoundError):
    """An engine file or its sidecar is missing."""


class EngineRuntimeUnavailableError(BackendUnavailableError):
    """The engine is valid but cannot run here: no NVIDIA GPU is visible, or the runtime
    library (or torch/cupy for device buffers) is missing."""


class PrecisionUnsupportedError(EngineError):
    """The installed builder cannot produce the target's precision (the message names what
    would: a package to install or a different library)."""


class Int8CalibrationUnsupportedError(PrecisionUnsupportedError):
    """The installed builder has no implicit INT8 calibration (``IInt8Calibrator``), which
    TensorRT-RTX and TensorRT 11 removed; the alternative is explicit quantisation (an ONNX
    with QuantizeLinear/DequantizeLinear nodes)."""


class CalibrationError(AuperfError, ValueError):
    """Calibration data is missing or unusable (an empty folder, images of the wrong size)."""


class MediaError(AuperfError, ValueError):
    """A video, image, camera or stream cannot be opened or decoded (a missing or unreadable
    file, a truncated video, a file that is not an image, a frame too small to hold a face).

    Attributes:
        source: The input at fault (path, URL or camera index as text), or ``None``.
    """

    def __init__(self, message: str, *, source: str | Path | None = None) -> None:
        self.source = str(source) if source is not None else None
        if self.source is not None:
            message = f"{self.source}: {message}"
        super().__init__(message)
