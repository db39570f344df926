"""The build step: compile a model's ONNX into an engine for a :class:`Target`, cached.

``build(model, target, cache_dir)`` parses the ONNX with the library's ``OnnxParser``, makes
one optimisation profile from the target's batch range (the per-sample shape comes from the
manifest's input spec), applies the precision, chooses the compute capability where the library
can (TensorRT-RTX), builds a serialized engine with ``build_serialized_network`` and stores it
in the cache directory as ``<key>.engine`` beside a ``<key>.json`` sidecar. The key hashes
everything that changes the engine (model sha256, input spec, target fields, library and
version, the architecture, calibration data); a second call with the same key returns the
cached record without building.

Sidecar fields (``sidecar_version`` 1)::

    key, engine_file, engine_sha256, engine_bytes, built_at, build_seconds, auperf_version,
    model:     {name, method, manifest, manifest_format_version, file, sha256}
    builder:   {library, version, onnx_parser_version, flags, strongly_typed, graph}
    target:    the Target's fields
    gpu:       {arch, compute_capability, name, built_with_gpu}
    precision: "fp32" | "fp16" | "int8"
    profiles:  [{<input name>: {min, opt, max}}]
    io:        [{name, mode, dtype, shape}]      (the built network's inputs and outputs)
    timing_cache: file name or null (TensorRT-RTX ignores timing caches)
    calibration:  null, or {method, source, images, cache, sha256}
    accuracy:     null, or what was measured (see docs/engine.md)

Convention:
    Profile shapes are ``(batch, *sample)``, with ``sample`` = ``(C, H, W)`` for an ``NCHW``
    manifest and ``(H, W, C)`` for ``NHWC``. Architectures are ``"sm<major><minor>"``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__ as _AUPERF_VERSION
from ..backends.base import input_specs, output_specs
from ..errors import (
    EngineBuildError,
    EngineMismatchError,
    Int8CalibrationUnsupportedError,
    ManifestError,
    PrecisionUnsupportedError,
    TargetError,
)
from ..manifest import FORMAT_VERSION, Manifest, sha256_file
from ._library import Library, find_library, visible_gpus
from .targets import Target, get_target

__all__ = [
    "SIDECAR_VERSION",
    "EngineRecord",
    "build",
    "default_cache_dir",
    "resolve_manifest",
    "rebuild_hint",
    "engine_key",
    "dtype_name",
]

_log = logging.getLogger("auperf")

SIDECAR_VERSION = 1
ENGINE_SUFFIX = ".engine"
SIDECAR_SUFFIX = ".json"
_TRT_DTYPES = {
    "FLOAT": "float32",
    "HALF": "float16",
    "BF16": "bfloat16",
    "INT8": "int8",
    "UINT8": "uint8",
    "INT32": "int32",
    "INT64": "int64",
    "BOOL": "bool",
}


def default_cache_dir() -> Path:
    """``$AUPERF_ENGINE_CACHE``, else ``~/.cache/auperf/engines``."""
    env = os.environ.get("AUPERF_ENGINE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "auperf" / "engines"


def resolve_manifest(model: Manifest | str | Path) -> Manifest:
    """A :class:`Manifest` from itself, a manifest file, or a model folder.

    Raises:
        ManifestError, ModelNotFoundError: as :func:`auperf.models.load_manifest`.
    """
    if isinstance(model, Manifest):
        return model
    from ..models import load_manifest

    return load_manifest(model)


def dtype_name(trt_dtype: Any) -> str:
    """NumPy dtype name of a library ``DataType`` (``DataType.FLOAT`` -> ``"float32"``)."""
    key = str(trt_dtype).rsplit(".", 1)[-1]
    return _TRT_DTYPES.get(key, key.lower())


def rebuild_hint(sidecar: dict[str, Any], cache_dir: Path | None = None) -> str:
    """The command that rebuilds the engine a sidecar describes."""
    manifest = sidecar.get("model", {}).get("manifest") or "<model folder or manifest>"
    target = sidecar.get("target", {}).get("name") or "<target>"
    cache = f" --cache-dir {cache_dir}" if cache_dir is not None else ""
    return (
        f"rebuild it here with `auperf build {manifest} --target {target}{cache} --force` "
        f"(or auperf.engine.build(..., force=True))"
    )


@dataclass(frozen=True)
class EngineRecord:
    """A built engine in the cache: its files and its sidecar.

    Attributes:
        engine_path: the ``<key>.engine`` file (the serialized engine).
        sidecar_path: the ``<key>.json`` sidecar.
        sidecar: the sidecar's content (see the module docstring).
        cached: True when :func:`build` found it in the cache instead of building.
    """

    engine_path: Path
    sidecar_path: Path
    sidecar: dict[str, Any] = field(repr=False)
    cached: bool = False

    @property
    def key(self) -> str:
        """The cache key (the files' stem)."""
        return str(self.sidecar["key"])

    @property
    def target(self) -> Target:
        """The target it was built for."""
        return Target.from_dict(dict(self.sidecar["target"]), f"{self.sidecar_path}: target")

    @property
    def library(self) -> str:
        """The module that built it: ``"tensorrt"`` or ``"tensorrt_rtx"``."""
        return str(self.sidecar["builder"]["library"])

    @property
    def library_version(self) -> str:
        """The builder library's version."""
        return str(self.sidecar["builder"]["version"])

    @property
    def precision(self) -> str:
        """``"fp32"``, ``"fp16"`` or ``"int8"``."""
        return str(self.sidecar["precision"])

    @property
    def arch(self) -> str:
        """The GPU architecture it was built for (``"sm86"``)."""
        return str(self.sidecar["gpu"]["arch"])

    @property
    def profiles(self) -> list[dict[str, dict[str, tuple[int, ...]]]]:
        """Per profile: input name -> ``{"min", "opt", "max"}`` shapes."""
        return [
            {n: {k: tuple(v) for k, v in s.items()} for n, s in p.items()}
            for p in self.sidecar["profiles"]
        ]

    @property
    def max_batch_size(self) -> int:
        """The largest batch the engine's profile takes."""
        return min(s["max"][0] for p in self.profiles for s in p.values())

    def read_engine(self) -> bytes:
        """The serialized engine's bytes."""
        return self.engine_path.read_bytes()

    @classmethod
    def from_path(cls, path: str | Path) -> EngineRecord:
        """The record of ``<key>.engine`` or ``<key>.json`` (either file may be given).

        Raises:
            EngineNotFoundError: the sidecar or the engine file is missing.
            EngineMismatchError: the sidecar is not valid JSON or not a sidecar.
        """
        from ..errors import EngineNotFoundError

        path = Path(path)
        stem = path.with_suffix("") if path.suffix in (ENGINE_SUFFIX, SIDECAR_SUFFIX) else path
        sidecar_path = stem.with_suffix(SIDECAR_SUFFIX)
        engine_path = stem.with_suffix(ENGINE_SUFFIX)
        if not sidecar_path.is_file():
            raise EngineNotFoundError(
                f"{sidecar_path}: no engine sidecar; build the engine with `auperf build`"
            )
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EngineMismatchError(
                f"{sidecar_path}: not valid JSON ({exc}); rebuild the engine with "
                "`auperf build ... --force`"
            ) from None
        missing = [
            k
            for k in ("sidecar_version", "key", "model", "builder", "target", "gpu", "profiles")
            if not isinstance(sidecar, dict) or k not in sidecar
        ]
        if missing:
            raise EngineMismatchError(
                f"{sidecar_path}: not an engine sidecar (missing {missing}); rebuild the engine "
                "with `auperf build ... --force`"
            )
        if sidecar["sidecar_version"] > SIDECAR_VERSION:
            raise EngineMismatchError(
                f"{sidecar_path}: sidecar_version {sidecar['sidecar_version']} is newer than "
                f"this auperf reads ({SIDECAR_VERSION}); upgrade auperf or "
                + rebuild_hint(sidecar, sidecar_path.parent)
            )
        if not engine_path.is_file():
            raise EngineNotFoundError(
                f"{engine_path}: the engine file is missing; " + rebuild_hint(sidecar)
            )
        return cls(engine_path, sidecar_path, sidecar)


# -- the key ---------------------------------------------------------------------------------
def engine_key(
    manifest: Manifest,
    target: Target,
    library: Library,
    arch: str,
    calibration_sha256: str | None = None,
) -> str:
    """The cache key: ``<model name>_<target name>_<16 hex digits>``.

    The digits hash the model's sha256, its input spec, the target's fields, the library and
    its version, the architecture actually built for (``native`` resolved), the calibration
    data's hash and the sidecar version: any change gives a new key.
    """
    spec = input_specs(manifest)[0]
    fields_ = {k: v for k, v in target.to_dict().items() if k != "name"}
    payload = {
        "sidecar_version": SIDECAR_VERSION,
        "model_sha256": manifest.model.sha256,
        "input": [spec.name, list(spec.shape), spec.dtype],
        "target": fields_,
        "library": [library.name, library.version],
        "arch": arch,
        "calibration": calibration_sha256,
    }
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
    return f"{manifest.name}_{target.name}_{digest}"


# -- the builder -----------------------------------------------------------------------------
def _make_logger(lib: Library, sink: list[str]) -> Any:
    trt = lib.module

    class _Logger(trt.ILogger):
        """Forwards the library's messages to the ``auperf`` logger and keeps the errors."""

        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            sev = str(severity).rsplit(".", 1)[-1]
            if sev in ("INTERNAL_ERROR", "ERROR"):
                sink.append(msg)
                _log.error("%s: %s", lib.name, msg)
            elif sev == "WARNING":
                _log.warning("%s: %s", lib.name, msg)
            else:
                _log.debug("%s: %s", lib.name, msg)

    return _Logger()


def _resolve_arch(target: Target, lib: Library) -> tuple[str, Any]:
    """The architecture to build for and the ``ComputeCapability`` to set (or None)."""
    gpus = visible_gpus()
    if target.gpu_arch == "native":
        if not gpus:
            raise TargetError(
                f"gpu_arch: target {target.name!r} builds for the local GPU ('native') but no "
                f"NVIDIA GPU is visible; choose a target with an architecture "
                f"({', '.join(lib.compute_capabilities()) or 'e.g. sm86'})"
            )
        arch = gpus[0].arch
        if lib.chooses_compute_capability and arch not in lib.compute_capabilities():
            raise TargetError(
                f"gpu_arch: the local GPU ({gpus[0].name}) is {arch}, which {lib.name} "
                f"{lib.version} cannot build for (it builds for "
                f"{', '.join(lib.compute_capabilities())}); use TensorRT on this GPU"
            )
        cc = lib.module.ComputeCapability.CURRENT if lib.chooses_compute_capability else None
        return arch, cc
    if lib.chooses_compute_capability:
        member = getattr(lib.module.ComputeCapability, target.gpu_arch.upper(), None)
        if member is None:
            raise TargetError(
                f"gpu_arch: {lib.name} {lib.version} cannot build for {target.gpu_arch} "
                f"(it builds for {', '.join(lib.compute_capabilities())}); choose another "
                "target, or build with TensorRT on a GPU of that architecture"
            )
        return target.gpu_arch, member
    # TensorRT builds for the GPU it runs on.
    archs = [g.arch for g in gpus]
    if target.gpu_arch not in archs:
        raise TargetError(
            f"gpu_arch: {lib.name} {lib.version} builds for the GPU it runs on, and this machine "
            f"has {archs or 'no GPU'}, not {target.gpu_arch}; build on a {target.gpu_arch} GPU, "
            "or use a 'native' target"
        )
    return target.gpu_arch, None


def _onnx_bytes_for_precision(
    manifest: Manifest, path: Path, target: Target, lib: Library, calibration: Any, cache_dir: Path
) -> tuple[bytes, dict[str, Any] | None, str | None, list[str]]:
    """The ONNX to parse, the calibration record, a note on the graph, and builder flags."""
    data = path.read_bytes()
    flags: list[str] = []
    if target.precision == "fp32":
        return data, None, None, flags
    if target.precision == "fp16":
        if not lib.strongly_typed_only:
            flags.append("FP16")
            return data, None, None, flags
        try:
            import onnx
            from onnxconverter_common import float16
        except ImportError:
            raise PrecisionUnsupportedError(
                f"precision: {lib.name} {lib.version} builds strongly typed networks only, so "
                "fp16 needs an fp16 graph; install onnxconverter-common (auperf converts the "
                "graph, keeping float32 inputs and outputs) or convert it with ModelOpt AutoCast"
            ) from None
        import warnings

        with warnings.catch_warnings():  # it warns for every weight below fp16's range
            warnings.simplefilter("ignore", UserWarning)
            model16 = float16.convert_float_to_float16(
                onnx.load_from_string(data), keep_io_types=True
            )
        return model16.SerializeToString(), None, "float16 (onnxconverter-common, io kept)", flags
    # int8
    from . import calibration as _calib

    if _calib.has_qdq(data):
        return data, {"method": "explicit (Q/DQ in the model)"}, "int8 Q/DQ as given", flags
    if calibration is None:
        raise PrecisionUnsupportedError(
            "calibration: an int8 target needs calibration data (a folder of aligned face "
            "images, 'synth' for rendered faces, or an array of model inputs)"
        )
    if lib.has_int8_calibrator:
        flags.append("INT8")
        return data, {"method": "implicit", "calibrator": True}, None, flags
    if not _calib.explicit_quantization_available():
        raise Int8CalibrationUnsupportedError(
            f"precision: {lib.name} {lib.version} has no implicit INT8 calibration "
            "(IInt8Calibrator); quantise explicitly instead: auperf does it with onnxruntime's "
            "quantize_static (pip install onnxruntime), or give an ONNX with QuantizeLinear/"
            "DequantizeLinear nodes (e.g. from NVIDIA ModelOpt)"
        )
    qdq, record = _calib.quantize_explicit(manifest, path, calibration, cache_dir)
    return qdq, record, "int8 Q/DQ (onnxruntime quantize_static)", flags


def _check_network_io(network: Any, manifest: Manifest, onnx_name: str) -> list[dict[str, Any]]:
    io = []
    for kind, count, get in (
        ("input", network.num_inputs, network.get_input),
        ("output", network.num_outputs, network.get_output),
    ):
        for i in range(count):
            t = get(i)
            io.append(
                {"name": t.name, "mode": kind, "dtype": dtype_name(t.dtype), "shape": list(t.shape)}
            )
    for kind, specs in (("input", input_specs(manifest)), ("output", output_specs(manifest))):
        have = {d["name"]: d for d in io if d["mode"] == kind}
        if kind == "input" and set(have) != {s.name for s in specs}:
            raise ManifestError(
                f"input: {onnx_name} takes {sorted(have)}, the manifest says "
                f"{[s.name for s in specs]}"
            )
        for spec in specs:
            got = have.get(spec.name)
            if got is None:
                raise ManifestError(
                    f"{kind}: {onnx_name} has no {kind} {spec.name!r}; it has {sorted(have)}"
                )
            fixed_ok = len(got["shape"]) == len(spec.shape) and all(
                isinstance(e, str) or g in (e, -1)
                for g, e in zip(got["shape"], spec.shape, strict=True)
            )
            if not fixed_ok or got["dtype"] != spec.dtype:
                raise ManifestError(
                    f"{kind}: {onnx_name} has {spec.name!r} {got['shape']} {got['dtype']}, the "
                    f"manifest says {list(spec.shape)} {spec.dtype}"
                )
    return io


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build(
    model_or_manifest: Manifest | str | Path,
    target: Target | str,
    cache_dir: str | Path | None = None,
    *,
    calibration: Any = None,
    force: bool = False,
    library: str | None = None,
) -> EngineRecord:
    """Build (or find in the cache) the engine of a model for a target.

    Args:
        model_or_manifest: a :class:`Manifest`, a manifest file or a model folder.
        target: a :class:`Target` or the name of a known target.
        cache_dir: where engines, sidecars and the timing cache live (default
            :func:`default_cache_dir`).
        calibration: int8 only: a folder of aligned face images at the model's input size,
            ``"synth"`` (faces rendered by :mod:`auperf.synth`, aligned with
            :mod:`auperf.align` and warped with :func:`auperf.ops.warp_faces` as the manifest
            says), or an array of model inputs ``(N, *sample)``.
        force: rebuild even when the cache holds the key.
        library: ``"tensorrt"`` or ``"tensorrt_rtx"`` to choose the builder; default: tensorrt
            when installed, else tensorrt_rtx.

    Returns:
        The :class:`EngineRecord` (``cached`` says whether it came from the cache).

    Raises:
        OptionalDependencyError: neither library is installed.
        TargetError: an unknown target, or one the library cannot build (an architecture it
            lacks, ``native`` without a GPU).
        ManifestError: the ONNX file does not match the manifest (sha256, inputs, outputs).
        PrecisionUnsupportedError, Int8CalibrationUnsupportedError: the precision cannot be
            built with what is installed (the message names the alternative).
        CalibrationError: unusable calibration data.
        EngineBuildError: the parser or the builder failed (their errors are in the message).
    """
    manifest = resolve_manifest(model_or_manifest)
    target = get_target(target)
    lib = find_library(library)
    if target.precision != "int8" and calibration is not None:
        raise TargetError(f"calibration: only int8 targets take calibration data ({target.name})")
    if target.model != manifest.method.lower():
        _log.warning(
            "target %s is meant for %s models, %r is %s",
            target.name,
            target.model,
            manifest.name,
            manifest.method,
        )
    onnx_path = manifest.model_path()
    manifest.verify_model(onnx_path)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)

    arch, capability = _resolve_arch(target, lib)
    calib_sha = None
    if target.precision == "int8" and calibration is not None:
        from . import calibration as _calib

        calib_sha = _calib.fingerprint(calibration)
    key = engine_key(manifest, target, lib, arch, calib_sha)
    engine_path = cache / f"{key}{ENGINE_SUFFIX}"
    sidecar_path = cache / f"{key}{SIDECAR_SUFFIX}"
    if not force and engine_path.is_file() and sidecar_path.is_file():
        try:
            rec = EngineRecord.from_path(sidecar_path)
            if sha256_file(engine_path) == rec.sidecar.get("engine_sha256"):
                _log.info("engine %s found in %s (not rebuilt)", key, cache)
                return EngineRecord(rec.engine_path, rec.sidecar_path, rec.sidecar, cached=True)
            _log.warning("engine %s does not match its sidecar's sha256; rebuilding", key)
        except EngineMismatchError as exc:
            _log.warning("cached engine %s is unusable (%s); rebuilding", key, exc)

    t0 = time.perf_counter()
    errors: list[str] = []
    trt = lib.module
    logger = _make_logger(lib, errors)
    builder = trt.Builder(logger)
    data, calib_record, graph_note, flags = _onnx_bytes_for_precision(
        manifest, onnx_path, target, lib, calibration, cache
    )
    strongly_typed = lib.strongly_typed_only
    typed_flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    net_flags = (1 << int(typed_flag)) if strongly_typed and typed_flag is not None else 0
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data, str(onnx_path)):
        msgs = [str(parser.get_error(i)) for i in range(parser.num_errors)] or errors
        raise EngineBuildError(f"{onnx_path}: {lib.name} cannot parse it: {'; '.join(msgs)}")
    io = _check_network_io(network, manifest, onnx_path.name)

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, target.workspace_mb << 20)
    for flag in flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if capability is not None:
        config.num_compute_capabilities = 1
        if not config.set_compute_capability(capability, 0):
            raise EngineBuildError(f"{lib.name} refused compute capability {arch}")
    spec = input_specs(manifest)[0]
    shapes = target.profile_shapes(tuple(int(s) for s in spec.shape[1:]))
    profile = builder.create_optimization_profile()
    profile.set_shape(spec.name, shapes["min"], shapes["opt"], shapes["max"])
    got = [tuple(d) for d in profile.get_shape(spec.name)]
    if got != [shapes["min"], shapes["opt"], shapes["max"]]:
        raise EngineBuildError(f"{lib.name} did not take the profile {shapes} (it holds {got})")
    config.add_optimization_profile(profile)

    calibrator = None
    if "INT8" in flags:
        from . import calibration as _calib

        calibrator, calib_record = _calib.implicit_calibrator(
            lib, manifest, calibration, cache / f"{key}.calib", target
        )
        config.int8_calibrator = calibrator
        config.set_calibration_profile(profile)

    timing_name = None
    timing_cache = None
    if lib.uses_timing_cache:
        timing_name = f"timing_{lib.name}-{lib.version}_{arch}.cache"
        timing_path = cache / timing_name
        blob = timing_path.read_bytes() if timing_path.is_file() else b""
        timing_cache = config.create_timing_cache(blob)
        config.set_timing_cache(timing_cache, False)

    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(
            f"{onnx_path}: {lib.name} {lib.version} failed to build {target.name}: "
            + ("; ".join(errors) or "no message")
        )
    engine = bytes(serialized)
    if timing_cache is not None and timing_name is not None:
        _write_atomic(cache / timing_name, bytes(timing_cache.serialize()))
    seconds = time.perf_counter() - t0

    gpus = visible_gpus()
    gpu_name = next((g.name for g in gpus if g.arch == arch), None)
    parser_version = getattr(trt, "get_nv_onnx_parser_version", lambda: None)()
    sidecar: dict[str, Any] = {
        "sidecar_version": SIDECAR_VERSION,
        "key": key,
        "engine_file": engine_path.name,
        "engine_sha256": hashlib.sha256(engine).hexdigest(),
        "engine_bytes": len(engine),
        "built_at": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "build_seconds": round(seconds, 3),
        "auperf_version": _AUPERF_VERSION,
        "model": {
            "name": manifest.name,
            "method": manifest.method,
            "manifest": str(manifest.source.resolve()) if manifest.source else None,
            "manifest_format_version": manifest.format_version or FORMAT_VERSION,
            "file": manifest.model.file,
            "sha256": manifest.model.sha256,
        },
        "builder": {
            "library": lib.name,
            "version": lib.version,
            "onnx_parser_version": parser_version,
            "flags": flags,
            "strongly_typed": strongly_typed,
            "graph": graph_note,
            "workspace_mb": target.workspace_mb,
        },
        "target": target.to_dict(),
        "gpu": {
            "arch": arch,
            "compute_capability": [int(arch[2]), int(arch[3:])],
            "name": gpu_name,
            "built_with_gpu": bool(gpus),
        },
        "precision": target.precision,
        "profiles": [{spec.name: {k: list(v) for k, v in shapes.items()}}],
        "io": io,
        "timing_cache": timing_name,
        "calibration": calib_record,
        "accuracy": (calib_record or {}).get("accuracy"),
    }
    _write_atomic(engine_path, engine)
    _write_atomic(sidecar_path, (json.dumps(sidecar, indent=2) + "\n").encode())
    _log.info(
        "built %s with %s %s in %.1f s (%d bytes) -> %s",
        target.name,
        lib.name,
        lib.version,
        seconds,
        len(engine),
        engine_path,
    )
    del calibrator
    return EngineRecord(engine_path, sidecar_path, sidecar, cached=False)
