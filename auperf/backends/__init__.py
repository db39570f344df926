"""Inference backends behind one interface, chosen by a provider list, imported lazily.

A *provider* is a registered name for one backend on one kind of device:

==========================  =====================================================================
provider                    what it runs
==========================  =====================================================================
``tensorrt``                a TensorRT/TensorRT-RTX engine built by ``auperf build``
``onnxruntime-tensorrt``    onnxruntime's TensorRT execution provider (needs ``onnxruntime-gpu``)
``onnxruntime-cuda``        onnxruntime's CUDA execution provider (needs ``onnxruntime-gpu``)
``onnxruntime-cpu``         onnxruntime on the CPU
``torch-cuda``              the network from its safetensors weights, torch on a GPU
``torch-cpu``               the same on the CPU (the reference the others are compared against)
==========================  =====================================================================

Aliases: ``onnxruntime`` and ``CPUExecutionProvider`` mean ``onnxruntime-cpu``,
``CUDAExecutionProvider`` means ``onnxruntime-cuda``, ``TensorrtExecutionProvider`` means
``onnxruntime-tensorrt``, ``torch`` means ``torch-cpu``. A bare family name never means "a GPU
if there is one": name the device.

Selection (:func:`resolve`, :func:`open_session`):

- one name: that provider, or :class:`BackendUnavailableError` saying why it cannot load;
- a list: the first provider that loads; every one skipped is logged at WARNING with its reason,
  the choice at INFO; none loads -> :class:`BackendUnavailableError` with every reason;
- ``"auto"``: the list :data:`AUTO_ORDER` (GPU providers first), skips logged at INFO.

Nothing falls back silently and nothing returns ``None``. Importing this package imports no
inference library; a backend's module is imported when a provider of it is first resolved.

Example::

    from auperf import backends
    from auperf.manifest import Manifest

    m = Manifest.load("auperf/models/demo/m0-smallnet-synth-demo.json")
    with backends.open_session(m, ["onnxruntime-cuda", "onnxruntime-cpu"]) as sess:
        logits = sess.run({"image": crops})["logits"]      # (B, 2, L)
        sess.describe().provider                           # which one loaded
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import (
    BackendError,
    BackendUnavailableError,
    FeedError,
    ModelNotFoundError,
    OptionalDependencyError,
    ParameterError,
    SessionClosedError,
    UnknownProviderError,
    WeightsError,
)
from ..manifest import Manifest
from .base import Backend, Session, SessionInfo, TensorSpec

__all__ = [
    "AUTO_ORDER",
    "ProviderEntry",
    "Backend",
    "Session",
    "SessionInfo",
    "TensorSpec",
    "register",
    "providers",
    "available_backends",
    "unavailable_reasons",
    "get_backend",
    "resolve",
    "open_session",
    "BackendError",
    "BackendUnavailableError",
    "UnknownProviderError",
    "FeedError",
    "SessionClosedError",
    "ModelNotFoundError",
    "WeightsError",
    "OptionalDependencyError",
]

_log = logging.getLogger("auperf")

#: The order ``"auto"`` tries, first that loads wins. ``onnxruntime-tensorrt`` is left out on
#: purpose: it builds TensorRT engines while the session opens (minutes); ask for it by name.
AUTO_ORDER: tuple[str, ...] = (
    "tensorrt",
    "onnxruntime-cuda",
    "torch-cuda",
    "onnxruntime-cpu",
    "torch-cpu",
)


@dataclass(frozen=True)
class ProviderEntry:
    """A registered provider.

    Attributes:
        name: the provider name.
        target: ``"package.module:BackendClass"``, imported when first resolved.
        preset: fixed keyword arguments of the backend class (e.g. the execution provider).
        description: one line for listings.
    """

    name: str
    target: str
    preset: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


_REGISTRY: dict[str, ProviderEntry] = {}
_ALIASES: dict[str, str] = {}


def register(
    name: str,
    target: str,
    *,
    preset: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
    description: str = "",
    replace: bool = False,
) -> None:
    """Register a provider (its module is imported only when it is resolved).

    Args:
        name: provider name, e.g. ``"onnxruntime-cuda"``.
        target: ``"package.module:BackendClass"``; the class derives from :class:`Backend`.
        preset: keyword arguments the class is constructed with.
        aliases: other names that mean this provider.
        description: one line for listings.
        replace: allow replacing an existing registration.

    Raises:
        ParameterError: bad ``target``, or ``name``/an alias is taken and ``replace`` is False.
    """
    if not isinstance(name, str) or not name or name == "auto":
        raise ParameterError(
            f"name: expected a non-empty provider name other than 'auto', got {name!r}"
        )
    if not isinstance(target, str) or target.count(":") != 1:
        raise ParameterError(f"target: expected 'package.module:ClassName', got {target!r}")
    for n in (name, *aliases):
        if not replace and (n in _REGISTRY or n in _ALIASES):
            raise ParameterError(f"name: provider {n!r} is already registered")
    _REGISTRY[name] = ProviderEntry(name, target, dict(preset or {}), description)
    for a in aliases:
        _ALIASES[a] = name


def providers() -> list[str]:
    """Every registered provider name (aliases not included), in registration order."""
    return list(_REGISTRY)


def _canonical(name: Any) -> str:
    if not isinstance(name, str):
        raise ParameterError(f"providers: expected provider names (str), got {name!r}")
    key = _ALIASES.get(name, name)
    if key not in _REGISTRY:
        known = sorted(set(_REGISTRY) | set(_ALIASES))
        raise UnknownProviderError(f"providers: unknown provider {name!r}; known: {known}")
    return key


def get_backend(name: str) -> Backend:
    """The backend object of provider ``name`` (imports its module; loads no model).

    Raises:
        UnknownProviderError: ``name`` is not registered.
        BackendUnavailableError: the backend's module cannot be imported.
    """
    key = _canonical(name)
    entry = _REGISTRY[key]
    module_name, cls_name = entry.target.split(":")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        reason = f"its module {entry.target} cannot be imported ({exc})"
        raise BackendUnavailableError(f"{key}: cannot load: {reason}", {key: reason}) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"{key}: {entry.target} is not a Backend subclass")
    return cls(key, **entry.preset)


def _reason(name: str) -> tuple[Backend | None, str | None]:
    try:
        backend = get_backend(name)
    except BackendUnavailableError as exc:
        return None, exc.reasons.get(name, str(exc))
    return backend, backend.unavailable_reason()


def unavailable_reasons() -> dict[str, str | None]:
    """Provider name -> why it cannot load here, ``None`` for those that can. Imports the
    installed inference libraries (slow the first time)."""
    return {name: _reason(name)[1] for name in _REGISTRY}


def available_backends() -> list[str]:
    """Provider names that can load here: :data:`AUTO_ORDER` first, then the rest."""
    order = list(AUTO_ORDER) + [n for n in _REGISTRY if n not in AUTO_ORDER]
    return [n for n in order if n in _REGISTRY and _reason(n)[1] is None]


def _request(providers: str | Sequence[str]) -> tuple[list[str], bool]:
    """Canonical provider list and whether it came from ``"auto"``."""
    if isinstance(providers, str):
        if providers == "auto":
            return [n for n in AUTO_ORDER if n in _REGISTRY], True
        return [_canonical(providers)], False
    if not isinstance(providers, Sequence) or not providers:
        raise ParameterError(
            f"providers: expected 'auto', a provider name or a non-empty list of names, "
            f"got {providers!r}"
        )
    if "auto" in providers:
        raise ParameterError("providers: 'auto' stands alone, not inside a list")
    return [_canonical(p) for p in providers], False


def _no_provider(requested: Any, reasons: dict[str, str]) -> BackendUnavailableError:
    if len(reasons) == 1:
        ((name, why),) = reasons.items()
        return BackendUnavailableError(f"{name}: cannot load: {why}", reasons)
    listing = "; ".join(f"{n}: {r}" for n, r in reasons.items())
    return BackendUnavailableError(
        f"providers: none of {requested!r} can load here ({listing})", reasons
    )


def _skip(auto: bool, name: str, why: str, rest: list[str]) -> None:
    level = logging.INFO if auto else logging.WARNING
    nxt = f"; trying {rest[0]}" if rest else ""
    _log.log(level, "provider %s cannot load: %s%s", name, why, nxt)


def resolve(providers: str | Sequence[str] = "auto") -> Backend:
    """The backend of the first provider in ``providers`` that can load here.

    Args:
        providers: ``"auto"`` (:data:`AUTO_ORDER`), one provider name, or a list of names
            (aliases accepted; see the module docstring).

    Returns:
        A :class:`Backend` (never ``None``); its ``provider`` says which one was chosen.

    Raises:
        UnknownProviderError: a name is not registered.
        ParameterError: ``providers`` is empty or not names.
        BackendUnavailableError: none can load; ``reasons`` says why for each.
    """
    names, auto = _request(providers)
    reasons: dict[str, str] = {}
    for i, name in enumerate(names):
        backend, why = _reason(name)
        if why is None and backend is not None:
            _log.info("using provider %s (requested %r)", name, providers)
            return backend
        reasons[name] = str(why)
        _skip(auto, name, str(why), names[i + 1 :])
    raise _no_provider(providers, reasons)


def open_session(
    manifest: Manifest,
    providers: str | Sequence[str] = "auto",
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Session:
    """Open ``manifest``'s model with the first provider in ``providers`` that loads it.

    A provider that cannot load (library missing, execution provider or GPU absent, or the
    library refusing the device while opening) is skipped as in :func:`resolve`. Any other
    error (a corrupt model file, a bad option) is raised at once: it would fail everywhere.

    Args:
        manifest: the model's manifest.
        providers: as in :func:`resolve`.
        options: options per backend, keyed by provider name or backend family (a provider's
            own entry wins), e.g. ``{"onnxruntime": {"intra_op_num_threads": 2}}``. Entries
            of backends that are not chosen are not used (a list may end on either).

    Returns:
        An open :class:`Session`.

    Raises:
        BackendUnavailableError, UnknownProviderError, ParameterError: as in :func:`resolve`.
        ManifestError, WeightsError, BackendError: the model files are at fault.
    """
    names, auto = _request(providers)
    options = dict(options or {})
    for key, value in options.items():
        if not isinstance(value, Mapping):
            raise ParameterError(f"options[{key!r}]: expected a mapping of options, got {value!r}")
    reasons: dict[str, str] = {}
    for i, name in enumerate(names):
        backend, why = _reason(name)
        if why is None and backend is not None:
            opts = dict(options.get(backend.name, {}))
            opts.update(options.get(name, {}))
            try:
                session = backend.open(manifest, **opts)
            except BackendUnavailableError as exc:
                why = exc.reasons.get(name, str(exc))
            else:
                _log.info("using provider %s for %r (requested %r)", name, manifest.name, providers)
                return session
        reasons[name] = str(why)
        _skip(auto, name, str(why), names[i + 1 :])
    raise _no_provider(providers, reasons)


register(
    "tensorrt",
    "auperf.backends.tensorrt:TensorRTBackend",
    description="TensorRT/TensorRT-RTX engine built by `auperf build`",
)
register(
    "onnxruntime-tensorrt",
    "auperf.backends.onnxruntime:OnnxRuntimeBackend",
    preset={"execution_provider": "TensorrtExecutionProvider"},
    aliases=("TensorrtExecutionProvider",),
    description="onnxruntime, TensorRT execution provider (onnxruntime-gpu)",
)
register(
    "onnxruntime-cuda",
    "auperf.backends.onnxruntime:OnnxRuntimeBackend",
    preset={"execution_provider": "CUDAExecutionProvider"},
    aliases=("CUDAExecutionProvider",),
    description="onnxruntime, CUDA execution provider (onnxruntime-gpu)",
)
register(
    "onnxruntime-cpu",
    "auperf.backends.onnxruntime:OnnxRuntimeBackend",
    preset={"execution_provider": "CPUExecutionProvider"},
    aliases=("onnxruntime", "CPUExecutionProvider"),
    description="onnxruntime on the CPU",
)
register(
    "torch-cuda",
    "auperf.backends.torch:TorchBackend",
    preset={"device": "cuda"},
    description="torch on a CUDA GPU, from safetensors weights",
)
register(
    "torch-cpu",
    "auperf.backends.torch:TorchBackend",
    preset={"device": "cpu"},
    aliases=("torch",),
    description="torch on the CPU, from safetensors weights (the reference)",
)
