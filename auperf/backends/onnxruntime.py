"""The onnxruntime backend: providers ``onnxruntime-cpu``, ``onnxruntime-cuda`` and
``onnxruntime-tensorrt``.

``onnxruntime-cpu`` needs the ``onnxruntime`` package. The CUDA and TensorRT execution providers
come with ``onnxruntime-gpu`` instead (the ``auperf[onnxruntime-gpu]`` extra); the two packages
install the same module and conflict, so install exactly one of them.

Before a model is loaded its ONNX file's sha256 is checked against the manifest (option
``verify``), and the model's input and output names, ranks, fixed sizes and dtypes are checked
against the manifest. onnxruntime on its own falls back to the CPU when a GPU execution
provider fails to start; this backend refuses instead: the session must run on the provider
that was asked for, or :class:`BackendUnavailableError` says which providers onnxruntime
actually started.

Options (``Backend.open(manifest, **options)``):
    intra_op_num_threads: threads inside one operator (0: onnxruntime's default).
    inter_op_num_threads: threads across operators (0: onnxruntime's default).
    graph_optimization_level: ``"disable"``, ``"basic"``, ``"extended"``, ``"layout"`` (where
        the installed onnxruntime has it) or ``"all"`` (default).
    optimized_model_path: write the graph onnxruntime optimised to this file (for inspection,
        or to load later with ``graph_optimization_level="disable"``).
    device_id: CUDA device index for the GPU providers (default 0).
    provider_options: extra options of the execution provider, passed through, e.g.
        ``{"trt_fp16_enable": True, "trt_engine_cache_enable": True,
        "trt_engine_cache_path": "cache/"}`` for TensorRT or
        ``{"cudnn_conv_algo_search": "HEURISTIC"}`` for CUDA.
    verify: check the ONNX file's sha256 against the manifest (default True).

Sessions take and return NumPy arrays (device arrays raise :class:`DeviceError`; I/O binding of
device memory is not in this version; a CUDA stream is set when the session opens, through
``provider_options={"user_compute_stream": ...}``, not per run). ``InferenceSession.run`` is
re-entrant, so one session may serve several threads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .. import _arrays
from ..errors import (
    BackendError,
    BackendUnavailableError,
    DeviceError,
    ManifestError,
    ModelNotFoundError,
    ParameterError,
)
from ..manifest import Manifest
from .base import Backend, Session, SessionInfo, TensorSpec

__all__ = ["OnnxRuntimeBackend", "OnnxRuntimeSession", "GPU_PACKAGE_NOTE"]

_log = logging.getLogger("auperf")

CPU_EP = "CPUExecutionProvider"
CUDA_EP = "CUDAExecutionProvider"
TRT_EP = "TensorrtExecutionProvider"
_EXECUTION_PROVIDERS = (CPU_EP, CUDA_EP, TRT_EP)
GPU_PACKAGE_NOTE = (
    "the CUDA and TensorRT execution providers come with the onnxruntime-gpu package, "
    "which replaces onnxruntime (uninstall onnxruntime first; never install both)"
)
_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
}


def _ort():
    import onnxruntime

    return onnxruntime


class OnnxRuntimeBackend(Backend):
    """onnxruntime with one execution provider.

    Args:
        provider: the registered provider name.
        execution_provider: ``"CPUExecutionProvider"``, ``"CUDAExecutionProvider"`` or
            ``"TensorrtExecutionProvider"``.
    """

    name: ClassVar[str] = "onnxruntime"
    OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "intra_op_num_threads",
            "inter_op_num_threads",
            "graph_optimization_level",
            "optimized_model_path",
            "device_id",
            "provider_options",
            "verify",
        }
    )

    def __init__(self, provider: str = "", execution_provider: str = CPU_EP) -> None:
        if execution_provider not in _EXECUTION_PROVIDERS:
            raise ParameterError(
                f"execution_provider: expected one of {list(_EXECUTION_PROVIDERS)}, "
                f"got {execution_provider!r}"
            )
        super().__init__(provider, execution_provider=execution_provider)
        self.execution_provider = execution_provider

    def unavailable_reason(self) -> str | None:
        try:
            ort = _ort()
        except ImportError:
            if self.execution_provider == CPU_EP:
                return "onnxruntime is not installed (pip install onnxruntime)"
            return f"onnxruntime is not installed; {GPU_PACKAGE_NOTE}"
        available = list(ort.get_available_providers())
        if self.execution_provider not in available:
            note = f"; {GPU_PACKAGE_NOTE}" if self.execution_provider != CPU_EP else ""
            return (
                f"onnxruntime {ort.__version__} has no {self.execution_provider} "
                f"(it has {available}){note}"
            )
        return None

    def version(self) -> str | None:
        try:
            return str(_ort().__version__)
        except ImportError:
            return None

    def open_impl(self, manifest: Manifest, **options: Any) -> OnnxRuntimeSession:
        ort = _ort()
        path = manifest.model_path()
        if not path.is_file():
            raise ModelNotFoundError(
                f"model.file: {path} does not exist (manifest {manifest.source or manifest.name})"
            )
        if options.get("verify", True):
            manifest.verify_model(path)
        so = ort.SessionOptions()
        for key in ("intra_op_num_threads", "inter_op_num_threads"):
            if key in options:
                setattr(so, key, _count(options[key], key))
        level = options.get("graph_optimization_level", "all")
        so.graph_optimization_level = _level(ort, level)
        saved = options.get("optimized_model_path")
        if saved is not None:
            saved = Path(saved)
            saved.parent.mkdir(parents=True, exist_ok=True)
            so.optimized_model_filepath = str(saved)
        providers = self._provider_list(options)
        try:
            sess = ort.InferenceSession(str(path), sess_options=so, providers=providers)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            msg = f"{path}: onnxruntime {ort.__version__} cannot open it: {exc}"
            if self.execution_provider != CPU_EP and options.get("verify", True):
                # The file is the one the manifest describes; the device is at fault.
                raise BackendUnavailableError(msg, {self.provider: msg}) from None
            raise BackendError(msg) from None
        active = list(sess.get_providers())
        if not active or active[0] != self.execution_provider:
            why = (
                f"onnxruntime started {active} instead of {self.execution_provider} "
                "(missing CUDA/cuDNN/TensorRT libraries or no GPU); auperf does not fall back"
            )
            raise BackendUnavailableError(
                f"{self.provider}: cannot load: {why}", {self.provider: why}
            )
        _check_model_io(sess, manifest, path)
        return OnnxRuntimeSession(manifest, sess, self, path, active, options)

    def _provider_list(self, options: dict[str, Any]) -> list:
        ep = self.execution_provider
        extra = options.get("provider_options") or {}
        if not isinstance(extra, dict):
            raise ParameterError(f"provider_options: expected a dict, got {extra!r}")
        if ep == CPU_EP:
            if "device_id" in options:
                raise ParameterError("device_id: the CPU execution provider takes no device_id")
            return [(CPU_EP, dict(extra))] if extra else [CPU_EP]
        device_id = _count(options.get("device_id", 0), "device_id")
        ep_opts = {"device_id": device_id, **extra}
        if ep == TRT_EP:
            # Nodes TensorRT does not take run on CUDA, then the CPU, as onnxruntime documents.
            return [(TRT_EP, ep_opts), (CUDA_EP, {"device_id": device_id}), CPU_EP]
        return [(CUDA_EP, ep_opts), CPU_EP]


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ParameterError(f"{name}: expected an integer >= 0, got {value!r}")
    return int(value)


def _level(ort: Any, level: Any) -> Any:
    attr = _LEVELS.get(level) if isinstance(level, str) else None
    value = getattr(ort.GraphOptimizationLevel, attr, None) if attr else None
    if value is None:
        have = [k for k, v in _LEVELS.items() if hasattr(ort.GraphOptimizationLevel, v)]
        raise ParameterError(f"graph_optimization_level: expected one of {have}, got {level!r}")
    return value


def _check_model_io(sess: Any, manifest: Manifest, path: Path) -> None:
    """The ONNX graph's inputs and outputs against the manifest (names, rank, fixed sizes)."""
    from .base import input_specs, output_specs

    for kind, specs, nodes in (
        ("input", input_specs(manifest), sess.get_inputs()),
        ("outputs", output_specs(manifest), sess.get_outputs()),
    ):
        have = {n.name: n for n in nodes}
        for spec in specs:
            node = have.get(spec.name)
            if node is None:
                raise ManifestError(
                    f"{kind}: {path.name} has no tensor {spec.name!r}; it has {sorted(have)}"
                )
            _check_node(node, spec, kind, path)
        if kind == "input" and len(have) != len(specs):
            extra = sorted(set(have) - {s.name for s in specs})
            raise ManifestError(f"input: {path.name} takes inputs {extra} the manifest lacks")


def _check_node(node: Any, spec: TensorSpec, kind: str, path: Path) -> None:
    shape = list(node.shape)
    bad = len(shape) != len(spec.shape) or any(
        isinstance(exp, int) and isinstance(got, int) and got != exp
        for got, exp in zip(shape, spec.shape, strict=False)
    )
    dtype = _ORT_TYPES.get(node.type, node.type)
    if bad or dtype != spec.dtype:
        raise ManifestError(
            f"{kind}: {path.name} has {spec.name!r} {shape} {dtype}, "
            f"the manifest says {list(spec.shape)} {spec.dtype}"
        )


class OnnxRuntimeSession(Session):
    """An onnxruntime ``InferenceSession`` behind the :class:`Session` interface (NumPy in and
    out; re-entrant)."""

    thread_safe: ClassVar[bool] = True

    def __init__(
        self,
        manifest: Manifest,
        sess: Any,
        backend: OnnxRuntimeBackend,
        path: Path,
        active: list[str],
        options: dict[str, Any],
    ) -> None:
        super().__init__(manifest)
        self._sess = sess
        self._backend = backend
        self._path = path
        self._active = tuple(active)
        self._options = {k: (str(v) if isinstance(v, Path) else v) for k, v in options.items()}
        self._output_names = [s.name for s in self.outputs]
        self._info = self._make_info()

    @property
    def inference_session(self) -> Any:
        """The underlying ``onnxruntime.InferenceSession`` (for profiling and I/O binding)."""
        return self._sess

    def run_impl(self, feed: dict[str, Any], stream: int | None = None) -> dict[str, Any]:
        if stream is not None:
            raise ParameterError(
                "stream: onnxruntime sessions take their CUDA stream when opened "
                "(provider_options user_compute_stream), not per run"
            )
        host = {}
        for name, x in feed.items():
            if _arrays.is_device_object(x):
                raise DeviceError(
                    f"feed[{name!r}]: onnxruntime sessions take NumPy arrays; got a CUDA array"
                )
            host[name] = np.ascontiguousarray(x)
        try:
            values = self._sess.run(self._output_names, host)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors
            raise BackendError(f"{self._path.name}: onnxruntime run failed: {exc}") from None
        return dict(zip(self._output_names, values, strict=True))

    def _make_info(self) -> SessionInfo:
        ep = self._backend.execution_provider
        device = "cpu" if ep == CPU_EP else f"cuda:{int(self._options.get('device_id', 0))}"
        precision = "float32"
        extra = self._options.get("provider_options") or {}
        if ep == TRT_EP and _truthy(extra.get("trt_int8_enable")):
            precision = "int8"
        elif ep == TRT_EP and _truthy(extra.get("trt_fp16_enable")):
            precision = "float16"
        return SessionInfo(
            backend="onnxruntime",
            provider=self._backend.provider,
            version=str(self._backend.version()),
            device=device,
            precision=precision,
            execution_providers=self._active,
            model=str(self._path),
            manifest=self.manifest.name,
            options=self._options,
        )

    def describe(self) -> SessionInfo:
        return self._info

    def close_impl(self) -> None:
        self._sess = None


def _truthy(v: Any) -> bool:
    return v is True or (isinstance(v, (int, str)) and str(v).lower() in ("1", "true"))
