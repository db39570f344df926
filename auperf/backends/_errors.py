"""Re-export of the runtime's error classes, which live in :mod:`auperf.errors`."""

from __future__ import annotations

from ..errors import (
    BackendError,
    BackendUnavailableError,
    FeedError,
    ModelNotFoundError,
    OptionalDependencyError,
    SessionClosedError,
    UnknownProviderError,
    WeightsError,
)

__all__ = [
    "BackendError",
    "BackendUnavailableError",
    "UnknownProviderError",
    "FeedError",
    "SessionClosedError",
    "ModelNotFoundError",
    "WeightsError",
    "OptionalDependencyError",
]
