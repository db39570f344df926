"""Loading engines: check the sidecar against what runs here, then deserialise.

:func:`check_engine` compares a built engine's sidecar with the running library (name and
exact version), the visible GPU (its compute capability against the engine's architecture,
where a GPU is visible), the model's manifest (sha256, input and output names, dtypes and
ranks) and the engine file (its sha256). :func:`load` does that and deserialises the engine
with ``Runtime.deserialize_cuda_engine`` (which needs a GPU), then inspects it
(:func:`inspect_engine`: I/O tensor names, modes, dtypes, shapes and each input's profile
min/opt/max) and checks the inspection against the sidecar. Every mismatch raises
:class:`EngineMismatchError` with the command that rebuilds the engine.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..backends.base import input_specs, output_specs
from ..errors import (
    EngineMismatchError,
    EngineNotFoundError,
    EngineRuntimeUnavailableError,
    OptionalDependencyError,
)
from ..manifest import Manifest
from ._library import Library, find_library, visible_gpus
from .build import SIDECAR_SUFFIX, EngineRecord, default_cache_dir, dtype_name, rebuild_hint

__all__ = ["LoadedEngine", "check_engine", "load", "inspect_engine", "find_engines"]

_log = logging.getLogger("auperf")


def _record(record_or_path: EngineRecord | str | Path) -> EngineRecord:
    if isinstance(record_or_path, EngineRecord):
        return EngineRecord.from_path(record_or_path.sidecar_path)
    return EngineRecord.from_path(record_or_path)


def check_io(record: EngineRecord, io: list[dict[str, Any]], what: str) -> None:
    """Check I/O tensors (``[{name, mode, dtype, shape}]``) and profiles against the sidecar.

    Raises:
        EngineMismatchError: a tensor, dtype, rank or profile shape differs.
    """
    want = {(d["name"], d["mode"]): d for d in record.sidecar.get("io", [])}
    have = {(d["name"], d["mode"]): d for d in io}
    if set(want) != set(have):
        raise EngineMismatchError(
            f"{record.engine_path.name}: {what} has I/O {sorted(have)}, the sidecar says "
            f"{sorted(want)}; " + rebuild_hint(record.sidecar)
        )
    for k, d in have.items():
        w = want[k]
        if d["dtype"] != w["dtype"] or len(d["shape"]) != len(w["shape"]):
            raise EngineMismatchError(
                f"{record.engine_path.name}: {what} has {k[0]!r} {d['shape']} {d['dtype']}, the "
                f"sidecar says {w['shape']} {w['dtype']}; " + rebuild_hint(record.sidecar)
            )
        if "profile" in d:
            exp = record.profiles[0].get(k[0])
            got = {s: tuple(v) for s, v in d["profile"].items()}
            if exp is not None and got != exp:
                raise EngineMismatchError(
                    f"{record.engine_path.name}: {what} profile of {k[0]!r} is {got}, the "
                    f"sidecar says {exp}; " + rebuild_hint(record.sidecar)
                )


def check_engine(
    record_or_path: EngineRecord | str | Path,
    manifest: Manifest | None = None,
    *,
    library: Library | None = None,
    check_gpu: bool = True,
    device_id: int = 0,
) -> EngineRecord:
    """Check an engine's sidecar against this machine and the model; load nothing.

    Args:
        record_or_path: an :class:`EngineRecord`, or the ``.engine``/``.json`` file.
        manifest: the model's manifest (its sha256 and I/O are compared); ``None`` skips that.
        library: the running library (default: the one that built the engine, imported).
        check_gpu: compare the visible GPU's compute capability with the engine's (skipped
            when no GPU is visible).
        device_id: the GPU to compare.

    Returns:
        The (re-read) record.

    Raises:
        EngineNotFoundError: a file is missing.
        EngineMismatchError: the engine file's sha256, the library or its version, the GPU
            architecture, or the manifest differ from the sidecar; the message says how to
            rebuild.
    """
    record = _record(record_or_path)
    sc = record.sidecar
    hint = rebuild_hint(sc, record.sidecar_path.parent)
    got = hashlib.sha256(record.read_engine()).hexdigest()
    if got != sc.get("engine_sha256"):
        raise EngineMismatchError(
            f"{record.engine_path}: the file hashes to {got[:16]}..., its sidecar says "
            f"{str(sc.get('engine_sha256'))[:16]}... (damaged or replaced); {hint}"
        )
    if library is None:
        try:
            library = find_library(record.library)
        except OptionalDependencyError as exc:
            raise EngineMismatchError(
                f"{record.engine_path.name}: built by {record.library} {record.library_version}, "
                f"which is not installed here ({exc}); install it, or {hint}"
            ) from None
    if library.name != record.library or library.version != record.library_version:
        raise EngineMismatchError(
            f"{record.engine_path.name}: built by {record.library} {record.library_version}, "
            f"running {library.name} {library.version}; engines only load in the version that "
            f"built them: {hint}"
        )
    if check_gpu:
        gpus = [g for g in visible_gpus() if g.index == device_id]
        if gpus and gpus[0].arch != record.arch and gpus[0].compute_capability != (0, 0):
            raise EngineMismatchError(
                f"{record.engine_path.name}: built for {record.arch}, GPU {device_id} is "
                f"{gpus[0].name} ({gpus[0].arch}); {hint}"
            )
    if manifest is not None:
        model = sc["model"]
        if model.get("sha256") != manifest.model.sha256:
            raise EngineMismatchError(
                f"{record.engine_path.name}: built from a model with sha256 "
                f"{str(model.get('sha256'))[:16]}..., the manifest {manifest.name!r} says "
                f"{manifest.model.sha256[:16]}...; {hint}"
            )
        io = {(d["name"], d["mode"]): d for d in sc.get("io", [])}
        for mode, specs in (("input", input_specs(manifest)), ("output", output_specs(manifest))):
            for spec in specs:
                d = io.get((spec.name, mode))
                if d is None or d["dtype"] != spec.dtype or len(d["shape"]) != len(spec.shape):
                    raise EngineMismatchError(
                        f"{record.engine_path.name}: {mode} {spec.name!r} is "
                        f"{d and (d['shape'], d['dtype'])} in the engine, the manifest says "
                        f"{list(spec.shape)} {spec.dtype}; {hint}"
                    )
    return record


def inspect_engine(cuda_engine: Any, profile: int = 0) -> list[dict[str, Any]]:
    """The I/O tensors of a deserialised engine (``ICudaEngine``).

    Returns:
        ``[{name, mode, dtype, shape}]`` with ``profile: {min, opt, max}`` on inputs (from
        ``get_tensor_profile_shape``); ``-1`` marks a dynamic size.
    """
    out = []
    for i in range(cuda_engine.num_io_tensors):
        name = cuda_engine.get_tensor_name(i)
        mode = "input" if "INPUT" in str(cuda_engine.get_tensor_mode(name)) else "output"
        d: dict[str, Any] = {
            "name": name,
            "mode": mode,
            "dtype": dtype_name(cuda_engine.get_tensor_dtype(name)),
            "shape": list(cuda_engine.get_tensor_shape(name)),
        }
        if mode == "input":
            lo, opt, hi = cuda_engine.get_tensor_profile_shape(name, profile)
            d["profile"] = {"min": list(lo), "opt": list(opt), "max": list(hi)}
        out.append(d)
    return out


@dataclass
class LoadedEngine:
    """A checked, deserialised engine.

    Attributes:
        record: its :class:`EngineRecord`.
        library: the runtime library.
        runtime: the library's ``Runtime`` (kept alive with the engine).
        cuda_engine: the ``ICudaEngine``.
        io: :func:`inspect_engine` of it.
    """

    record: EngineRecord
    library: Library
    runtime: Any = field(repr=False)
    cuda_engine: Any = field(repr=False)
    io: list[dict[str, Any]] = field(default_factory=list)


def load(
    record_or_path: EngineRecord | str | Path,
    manifest: Manifest | None = None,
    *,
    device_id: int = 0,
) -> LoadedEngine:
    """Check an engine (:func:`check_engine`) and deserialise it on GPU ``device_id``.

    Raises:
        EngineNotFoundError, EngineMismatchError: as :func:`check_engine`, or the
            deserialised engine's inspection differs from the sidecar.
        EngineRuntimeUnavailableError: no GPU is visible (a
            :class:`~auperf.errors.BackendUnavailableError`); the check still ran first.
    """
    record = check_engine(record_or_path, manifest, device_id=device_id)
    library = find_library(record.library)
    gpus = visible_gpus()
    if not any(g.index == device_id for g in gpus):
        why = (
            f"running a {record.library} engine needs an NVIDIA GPU and GPU {device_id} is not "
            f"visible ({len(gpus)} visible); the engine {record.engine_path.name} itself checks out"
        )
        raise EngineRuntimeUnavailableError(why, {"tensorrt": why})
    try:
        import torch

        torch.cuda.set_device(device_id)
    except ImportError:
        pass
    errors: list[str] = []
    from .build import _make_logger

    runtime = library.module.Runtime(_make_logger(library, errors))
    engine = runtime.deserialize_cuda_engine(record.read_engine())
    if engine is None:
        raise EngineMismatchError(
            f"{record.engine_path.name}: {library.name} could not deserialise it "
            f"({'; '.join(errors) or 'no message'}); {rebuild_hint(record.sidecar)}"
        )
    io = inspect_engine(engine)
    check_io(record, io, "the deserialised engine")
    return LoadedEngine(record, library, runtime, engine, io)


def find_engines(
    manifest: Manifest,
    cache_dir: str | Path | None = None,
    *,
    target: str | None = None,
) -> list[EngineRecord]:
    """Engines in ``cache_dir`` built from ``manifest``'s model (same sha256), newest first,
    optionally only those of ``target`` (a target name)."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not cache.is_dir():
        return []
    out = []
    for p in cache.glob(f"*{SIDECAR_SUFFIX}"):
        try:
            rec = EngineRecord.from_path(p)
        except (EngineMismatchError, EngineNotFoundError):
            continue
        if rec.sidecar["model"].get("sha256") != manifest.model.sha256:
            continue
        if target is not None and rec.sidecar["target"].get("name") != target:
            continue
        out.append(rec)
    return sorted(out, key=lambda r: str(r.sidecar.get("built_at", "")), reverse=True)
