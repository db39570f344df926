"""Re-export of the engine build step's error classes, which live in :mod:`auperf.errors`."""

from __future__ import annotations

from ..errors import (
    CalibrationError,
    EngineBuildError,
    EngineError,
    EngineMismatchError,
    EngineNotFoundError,
    EngineRuntimeUnavailableError,
    Int8CalibrationUnsupportedError,
    PrecisionUnsupportedError,
    TargetError,
)

__all__ = [
    "TargetError",
    "EngineError",
    "EngineBuildError",
    "EngineMismatchError",
    "EngineNotFoundError",
    "EngineRuntimeUnavailableError",
    "PrecisionUnsupportedError",
    "Int8CalibrationUnsupportedError",
    "CalibrationError",
]
