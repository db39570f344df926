"""Integrations of auperf with the engines that scale inference out beyond one process.

Submodules (each imported only when used; their packages are optional extras):
    triton  a Triton Inference Server model repository for a model (``auperf export-triton``)
            and :class:`~auperf.integrations.triton.TritonDetector`, a ``tritonclient`` helper
            that returns the same :class:`~auperf.DetectionResult` as ``Detector.detect``
            (extra ``auperf[triton]`` for the client; the export needs nothing extra)
    ray     Ray Data batch processing of videos and images into partitioned Parquet
            (:func:`~auperf.integrations.ray.process`) and a Ray Serve HTTP deployment
            (:func:`~auperf.integrations.ray.serve`, ``auperf serve``) (extra ``auperf[ray]``)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["triton", "ray"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'auperf.integrations' has no attribute {name!r}")
