"""The build step: TensorRT engines per deployment target, cached with sidecar metadata.

Targets are data (:class:`Target`, :func:`list_targets`, :func:`load_targets`);
:func:`build` compiles a model's ONNX into an engine for a target with TensorRT or TensorRT-RTX
(the builder API they share) and caches it as ``<key>.engine`` + ``<key>.json``;
:func:`load` checks a sidecar against the running library, GPU and manifest and deserialises
the engine (a GPU is needed for that). The ``tensorrt`` backend
(:mod:`auperf.backends.tensorrt`) runs loaded engines.

Importing this package imports neither TensorRT nor TensorRT-RTX.

Example::

    from auperf import engine

    rec = engine.build("auperf/models/demo", "m0_tensorrt-fp16_dynamic-1x8x64_sm86", "engines/")
    rec.engine_path, rec.sidecar["builder"]["library"], rec.profiles
    engine.check_engine(rec, manifest)      # library version, GPU, model sha256, I/O
"""

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
from ._library import GpuInfo, Library, find_library, installed_libraries, visible_gpus
from .build import SIDECAR_VERSION, EngineRecord, build, default_cache_dir, engine_key
from .load import LoadedEngine, check_engine, find_engines, inspect_engine, load
from .targets import Target, get_target, list_targets, load_targets, register_target

__all__ = [
    "Target",
    "list_targets",
    "get_target",
    "register_target",
    "load_targets",
    "build",
    "EngineRecord",
    "SIDECAR_VERSION",
    "default_cache_dir",
    "engine_key",
    "load",
    "LoadedEngine",
    "check_engine",
    "inspect_engine",
    "find_engines",
    "Library",
    "GpuInfo",
    "find_library",
    "installed_libraries",
    "visible_gpus",
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
