"""The TensorRT engine backend (provider ``tensorrt``).

Engines are built ahead of time by the build step (``auperf build`` /
:func:`auperf.engine.build`) with TensorRT or TensorRT-RTX, whose runtime API is shared; an
engine is run by the library that built it (its sidecar says which). Opening a session checks
the sidecar against the running library version, the GPU and the manifest
(:func:`auperf.engine.load`); a mismatch raises :class:`~auperf.engine.EngineMismatchError`
with the command that rebuilds the engine. Running needs an NVIDIA GPU and torch with CUDA (or
cupy) for device buffers; without them the provider reports why it cannot load and ``"auto"``
moves on.

Options (``Backend.open(manifest, **options)``):
    engine: the engine to run: an :class:`~auperf.engine.EngineRecord` or its ``.engine`` /
        ``.json`` file. Default: the newest engine in ``cache_dir`` built from this model
        (same sha256) for this library and GPU, of ``target`` when given.
    cache_dir: the engine cache (default :func:`auperf.engine.default_cache_dir`).
    target: a target name to pick from the cache.
    device_id: CUDA device (default 0).

Sessions take NumPy arrays (outputs NumPy) or CUDA arrays, torch tensors or cupy arrays, on the
session's device (outputs torch tensors; cupy arrays for cupy input), and run on the caller's
CUDA stream with ``run(feed, stream=handle)`` (default: torch's current stream). I/O is bound
explicitly by tensor name: ``set_input_shape`` for the batch, ``set_tensor_address`` for each
tensor, then ``execute_async_v3``. One execution context per session; calls are serialised.
The batch is limited by the engine's profile (:attr:`Session.max_batch_size`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import BackendError, BackendUnavailableError, ParameterError
from ..manifest import Manifest
from .base import Backend, Session, SessionInfo

__all__ = ["TensorRTBackend", "TensorRTSession"]

_log = logging.getLogger("auperf")


def _engine_pkg():
    from .. import engine

    return engine


class TensorRTBackend(Backend):
    """TensorRT (or TensorRT-RTX) engines built by ``auperf build``."""

    name: ClassVar[str] = "tensorrt"
    OPTIONS: ClassVar[frozenset[str]] = frozenset({"engine", "cache_dir", "target", "device_id"})

    def unavailable_reason(self) -> str | None:
        eng = _engine_pkg()
        libs = eng.installed_libraries()
        if not libs:
            return (
                "the tensorrt package is not installed (TensorRT engines need it, or "
                "tensorrt_rtx, and an NVIDIA GPU); for TensorRT through onnxruntime use "
                "onnxruntime-tensorrt"
            )
        if not eng.visible_gpus():
            have = ", ".join(libs)
            missing = "" if "tensorrt" in libs else "the tensorrt package is not installed and "
            return (
                f"{missing}no NVIDIA GPU is visible: {have} can build engines here "
                "(auperf build) but running them needs a GPU"
            )
        try:
            import torch

            if torch.cuda.is_available():
                return None
        except ImportError:
            pass
        try:
            import cupy  # noqa: F401

            return None
        except ImportError:
            return "running engines needs torch with CUDA or cupy for device buffers"

    def version(self) -> str | None:
        eng = _engine_pkg()
        try:
            return eng.find_library().version
        except Exception:  # noqa: BLE001 - neither library installed
            return None

    def open_impl(self, manifest: Manifest, **options: Any) -> TensorRTSession:
        eng = _engine_pkg()
        device_id = options.get("device_id", 0)
        if isinstance(device_id, bool) or not isinstance(device_id, int) or device_id < 0:
            raise ParameterError(f"device_id: expected an integer >= 0, got {device_id!r}")
        record = options.get("engine")
        if record is None:
            record = self._find(manifest, options)
        elif not isinstance(record, (eng.EngineRecord, str, Path)):
            raise ParameterError(
                f"engine: expected an EngineRecord or an engine/sidecar path, got {record!r}"
            )
        loaded = eng.load(record, manifest, device_id=device_id)
        return TensorRTSession(manifest, loaded, self, device_id, options)

    def _find(self, manifest: Manifest, options: dict[str, Any]) -> Any:
        eng = _engine_pkg()
        cache = options.get("cache_dir")
        found = eng.find_engines(manifest, cache, target=options.get("target"))
        libs = eng.installed_libraries()
        found = [r for r in found if r.library in libs]
        gpus = eng.visible_gpus()
        arch = gpus[0].arch if gpus else None
        fitting = [r for r in found if r.arch == arch] or found
        if not fitting:
            where = cache or eng.default_cache_dir()
            why = (
                f"no engine for {manifest.name!r} in {where}; build one with `auperf build "
                f"{manifest.source or manifest.name} --target <target> --cache-dir {where}` "
                "or pass engine=..."
            )
            raise BackendUnavailableError(
                f"{self.provider}: cannot load: {why}", {self.provider: why}
            )
        return fitting[0]


class TensorRTSession(Session):
    """A deserialised engine with one execution context (calls serialised)."""

    thread_safe: ClassVar[bool] = False
    accepts_device_arrays: ClassVar[bool] = True

    def __init__(
        self,
        manifest: Manifest,
        loaded: Any,
        backend: TensorRTBackend,
        device_id: int,
        options: dict[str, Any],
    ) -> None:
        super().__init__(manifest, max_batch_size=loaded.record.max_batch_size)
        self._loaded = loaded
        self._engine = loaded.cuda_engine
        self._context = self._engine.create_execution_context()
        if self._context is None:
            raise BackendError(f"{loaded.record.engine_path.name}: no execution context")
        self._backend = backend
        self._device_id = device_id
        self._options = {
            k: (str(v) if isinstance(v, Path) else v if isinstance(v, (int, str)) else repr(v))
            for k, v in options.items()
        }
        self._io = {d["name"]: d for d in loaded.io}

    def run_impl(self, feed: dict[str, Any], stream: int | None = None) -> dict[str, Any]:
        import torch

        dev = torch.device(f"cuda:{self._device_id}")
        host_in = any(isinstance(x, np.ndarray) for x in feed.values())
        cupy_in = any(type(x).__module__.startswith("cupy") for x in feed.values())
        handle = int(stream) if stream is not None else torch.cuda.current_stream(dev).cuda_stream
        torch_stream = torch.cuda.ExternalStream(handle, device=dev)
        keep: list[Any] = []
        ctx = self._context
        with torch.cuda.stream(torch_stream):
            for name, x in feed.items():
                if isinstance(x, np.ndarray):
                    t = torch.from_numpy(np.ascontiguousarray(x)).pin_memory()
                    t = t.to(dev, non_blocking=True)
                else:
                    t = torch.as_tensor(x, device=dev).contiguous()
                keep.append(t)
                if not ctx.set_input_shape(name, tuple(t.shape)):
                    raise BackendError(
                        f"feed[{name!r}]: shape {tuple(t.shape)} is outside the engine's profile "
                        f"{self._io[name].get('profile')}"
                    )
                ctx.set_tensor_address(name, int(t.data_ptr()))
            outs: dict[str, Any] = {}
            for spec in self.outputs:
                shape = tuple(ctx.get_tensor_shape(spec.name))
                o = torch.empty(shape, dtype=getattr(torch, spec.dtype), device=dev)
                ctx.set_tensor_address(spec.name, int(o.data_ptr()))
                outs[spec.name] = o
            if not ctx.execute_async_v3(handle):
                raise BackendError(
                    f"{self._loaded.record.engine_path.name}: execute_async_v3 failed"
                )
            for t in keep:
                t.record_stream(torch_stream)
        if host_in:
            torch_stream.synchronize()
            return {k: v.cpu().numpy() for k, v in outs.items()}
        if cupy_in:
            import cupy

            return {k: cupy.asarray(v) for k, v in outs.items()}
        return outs

    def describe(self) -> SessionInfo:
        rec = self._loaded.record
        precision = {"fp32": "float32", "fp16": "float16", "int8": "int8"}[rec.precision]
        return SessionInfo(
            backend="tensorrt",
            provider=self._backend.provider,
            version=f"{rec.library} {rec.library_version}",
            device=f"cuda:{self._device_id}",
            precision=precision,
            execution_providers=(rec.library,),
            model=str(rec.engine_path),
            manifest=self.manifest.name,
            options=self._options,
        )

    def close_impl(self) -> None:
        self._context = None
        self._engine = None
        self._loaded = None
