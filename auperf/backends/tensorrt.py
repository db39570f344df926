"""The TensorRT engine backend (provider ``tensorrt``): not in this version.

Engines are built ahead of time by the build step (``auperf build`` / ``auperf.engine.build``)
and loaded here with their sidecar checked against the running library and GPU. Until that
lands, this module only answers why the provider cannot load, so that ``"auto"`` skips it and
an explicit request gets a typed error that says why. For TensorRT today, use the
``onnxruntime-tensorrt`` provider (onnxruntime-gpu).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from typing import Any, ClassVar

from ..manifest import Manifest
from ._errors import BackendUnavailableError
from .base import Backend, Session

__all__ = ["TensorRTBackend"]


class TensorRTBackend(Backend):
    """TensorRT engines (placeholder: reports why it cannot load)."""

    name: ClassVar[str] = "tensorrt"
    OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("tensorrt") is None:
            return (
                "the tensorrt package is not installed (TensorRT engines need it and an NVIDIA "
                "GPU); for TensorRT through onnxruntime use onnxruntime-tensorrt"
            )
        return (
            "TensorRT engines are not supported by this auperf version yet (the engine backend "
            "and `auperf build` come next); use onnxruntime-tensorrt"
        )

    def version(self) -> str | None:
        try:
            return importlib.metadata.version("tensorrt")
        except importlib.metadata.PackageNotFoundError:
            return None

    def open_impl(self, manifest: Manifest, **options: Any) -> Session:
        reason = str(self.unavailable_reason())
        raise BackendUnavailableError(
            f"{self.provider}: cannot load: {reason}", {self.provider: reason}
        )
