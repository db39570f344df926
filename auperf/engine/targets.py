"""Build targets as data: what engine to build for which deployment.

A :class:`Target` names the backend, the precision, the batch range of the one optimisation
profile, the GPU architecture and the workspace limit. Targets have systematic names in the
form ``<model>_<backend>-<precision>_<static|dynamic>-<shape>_<arch>``, e.g.
``m0_tensorrt-fp16_dynamic-1x8x64_sm86``: ``dynamic-1x8x64`` is the batch range min x opt x max,
``static-8`` a fixed batch of 8, and ``native`` the GPU the build runs on.

Targets come from the built-in registry (:func:`list_targets`, :func:`get_target`) or from a
JSON or YAML file (:func:`load_targets`) holding a list of objects with the fields of
:class:`Target` (or ``{"targets": [...]}``).

Example::

    from auperf.engine import Target, get_target

    t = get_target("m0_tensorrt-fp16_dynamic-1x8x64_sm86")
    t2 = Target(precision="fp32", min_batch=1, opt_batch=4, max_batch=8, gpu_arch="sm80")
    t2.name            # 'm0_tensorrt-fp32_dynamic-1x4x8_sm80'
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import TargetError

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Target",
    "list_targets",
    "get_target",
    "register_target",
    "load_targets",
]

BACKENDS = ("tensorrt",)
PRECISIONS = ("fp32", "fp16", "int8")
_ARCH = re.compile(r"^sm(\d)(\d{1,2})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
_SYSTEMATIC = re.compile(
    r"^(?P<model>[A-Za-z0-9.+-]+)_(?P<backend>[a-z]+)-(?P<precision>[a-z0-9]+)_"
    r"(?:static-(?P<static>\d+)|dynamic-(?P<min>\d+)x(?P<opt>\d+)x(?P<max>\d+))"
    r"_(?P<arch>native|sm\d+)$"
)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TargetError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


@dataclass(frozen=True)
class Target:
    """One deployment target of the build step.

    Args:
        backend: the engine backend; ``"tensorrt"`` (built by TensorRT or TensorRT-RTX).
        precision: ``"fp32"``, ``"fp16"`` or ``"int8"``.
        min_batch, opt_batch, max_batch: the batch range of the optimisation profile
            (``min_batch <= opt_batch <= max_batch``); the per-sample shape comes from the
            model's manifest.
        gpu_arch: ``"sm75"``, ``"sm80"``, ``"sm86"``, ``"sm89"``, ``"sm90"``, ``"sm120"``, ...
            (compute capability major and minor digits), or ``"native"``: the GPU the build
            runs on. Which ones a library can build for is checked at build time.
        workspace_mb: the builder's workspace memory limit in MiB.
        model: the model family the name starts with (``"m0"``); informational.
        name: the target's name; derived from the fields when empty (see the module).

    Raises:
        TargetError: a field is out of range (the message names it).
    """

    backend: str = "tensorrt"
    precision: str = "fp32"
    min_batch: int = 1
    opt_batch: int = 8
    max_batch: int = 64
    gpu_arch: str = "native"
    workspace_mb: int = 1024
    model: str = "m0"
    name: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise TargetError(f"backend: expected one of {list(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise TargetError(
                f"precision: expected one of {list(PRECISIONS)}, got {self.precision!r}"
            )
        for key in ("min_batch", "opt_batch", "max_batch", "workspace_mb"):
            _count(getattr(self, key), key)
        if not self.min_batch <= self.opt_batch <= self.max_batch:
            raise TargetError(
                "min_batch <= opt_batch <= max_batch: got "
                f"{self.min_batch}, {self.opt_batch}, {self.max_batch}"
            )
        if not isinstance(self.gpu_arch, str) or (
            self.gpu_arch != "native" and not _ARCH.match(self.gpu_arch)
        ):
            raise TargetError(
                f"gpu_arch: expected 'native' or 'sm<major><minor>' such as 'sm86', "
                f"got {self.gpu_arch!r}"
            )
        if not isinstance(self.model, str) or not _NAME.match(self.model) or "_" in self.model:
            raise TargetError(f"model: expected a short name without '_', got {self.model!r}")
        if not isinstance(self.name, str):
            raise TargetError(f"name: expected a string, got {self.name!r}")
        if not self.name:
            object.__setattr__(self, "name", self.systematic_name())
        elif not _NAME.match(self.name):
            raise TargetError(
                f"name: expected letters, digits and . _ + - (no spaces or slashes), "
                f"got {self.name!r}"
            )

    @property
    def static(self) -> bool:
        """Whether the batch size is fixed (``min_batch == max_batch``)."""
        return self.min_batch == self.max_batch

    @property
    def compute_capability(self) -> tuple[int, int] | None:
        """``(major, minor)`` of :attr:`gpu_arch`, ``None`` for ``"native"``."""
        m = _ARCH.match(self.gpu_arch)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def systematic_name(self) -> str:
        """``<model>_<backend>-<precision>_<static|dynamic>-<shape>_<arch>`` from the fields."""
        if self.static:
            shape = f"static-{self.max_batch}"
        else:
            shape = f"dynamic-{self.min_batch}x{self.opt_batch}x{self.max_batch}"
        return f"{self.model}_{self.backend}-{self.precision}_{shape}_{self.gpu_arch}"

    def profile_shapes(self, sample_shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The optimisation profile for one input of per-sample shape ``sample_shape``.

        Returns:
            ``{"min": (min_batch, *sample_shape), "opt": ..., "max": ...}``.
        """
        s = tuple(int(v) for v in sample_shape)
        return {
            "min": (self.min_batch, *s),
            "opt": (self.opt_batch, *s),
            "max": (self.max_batch, *s),
        }

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_name(cls, name: str) -> Target:
        """The target a systematic name describes (workspace 1024 MiB), e.g.
        ``"m0_tensorrt-fp16_dynamic-1x8x64_sm86"`` or ``"m0_tensorrt-int8_static-8_sm89"``.

        Raises:
            TargetError: ``name`` is not a systematic name, or its fields are invalid.
        """
        m = _SYSTEMATIC.match(name) if isinstance(name, str) else None
        if m is None:
            raise TargetError(
                f"target: {name!r} is not a systematic target name "
                "(<model>_<backend>-<precision>_<static-N|dynamic-AxBxC>_<arch>)"
            )
        if m.group("static"):
            lo = opt = hi = int(m.group("static"))
        else:
            lo, opt, hi = (int(m.group(k)) for k in ("min", "opt", "max"))
        return cls(
            backend=m.group("backend"),
            precision=m.group("precision"),
            min_batch=lo,
            opt_batch=opt,
            max_batch=hi,
            gpu_arch=m.group("arch"),
            model=m.group("model"),
        )

    @classmethod
    def from_dict(cls, d: Any, where: str = "target") -> Target:
        """A target from a dict of its fields (unknown fields are refused).

        Raises:
            TargetError: not a mapping, an unknown field, or an invalid value.
        """
        if not isinstance(d, dict):
            raise TargetError(f"{where}: expected an object of target fields, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise TargetError(f"{where}: unknown fields {unknown}; allowed: {sorted(known)}")
        try:
            return cls(**d)
        except TargetError as exc:
            raise TargetError(f"{where}: {exc}") from None


def _builtin() -> dict[str, Target]:
    out: dict[str, Target] = {}
    for arch in ("sm80", "sm86", "sm89", "sm120", "native"):
        for precision in PRECISIONS:
            t = Target(precision=precision, min_batch=1, opt_batch=8, max_batch=64, gpu_arch=arch)
            out[t.name] = t
        big = Target(precision="fp16", min_batch=1, opt_batch=64, max_batch=256, gpu_arch=arch)
        out[big.name] = big
    return out


_REGISTRY: dict[str, Target] = _builtin()


def list_targets() -> list[Target]:
    """The known targets (built in plus registered), sorted by name."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_target(name: str | Target) -> Target:
    """The known target called ``name``, or the one a systematic name describes
    (:meth:`Target.from_name`); a :class:`Target` is returned as is.

    Raises:
        TargetError: no known target has that name (the message lists a few near ones).
    """
    if isinstance(name, Target):
        return name
    if not isinstance(name, str):
        raise TargetError(f"target: expected a Target or a target name, got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name]
    if _SYSTEMATIC.match(name):
        return Target.from_name(name)
    near = [k for k in sorted(_REGISTRY) if k.split("_")[:2] == name.split("_")[:2]][:6]
    raise TargetError(
        f"target: unknown target {name!r} (neither registered nor a systematic name such as "
        f"m0_tensorrt-fp16_dynamic-1x8x64_sm86); e.g. {near or sorted(_REGISTRY)[:6]} "
        "(auperf build --list-targets lists them all)"
    )


def register_target(target: Target, *, replace: bool = False) -> None:
    """Add ``target`` to the known targets under its name.

    Raises:
        TargetError: the name is taken by a different target and ``replace`` is False.
    """
    if not isinstance(target, Target):
        raise TargetError(f"target: expected a Target, got {type(target).__name__}")
    old = _REGISTRY.get(target.name)
    if old is not None and old != target and not replace:
        raise TargetError(f"name: target {target.name!r} is already registered as {old}")
    _REGISTRY[target.name] = target


def load_targets(path: str | Path, *, register: bool = False) -> list[Target]:
    """Targets from a JSON or YAML file.

    The file holds a list of objects with the fields of :class:`Target`, or an object with a
    ``targets`` list. YAML (``.yaml``/``.yml``) needs PyYAML.

    Args:
        path: the file.
        register: also add them to the known targets (:func:`register_target`).

    Raises:
        TargetError: the file is missing, does not parse, or holds an invalid target (the
            message names the file and the entry).
    """
    path = Path(path)
    if not path.is_file():
        raise TargetError(f"{path}: no such targets file")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except ImportError:
        raise TargetError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    except Exception as exc:  # noqa: BLE001 - json and yaml raise their own error classes
        raise TargetError(f"{path}: cannot parse: {exc}") from None
    if isinstance(data, dict) and set(data) == {"targets"}:
        data = data["targets"]
    if not isinstance(data, list) or not data:
        raise TargetError(f"{path}: expected a non-empty list of targets (or {{'targets': [...]}})")
    out = [Target.from_dict(d, f"{path}: targets[{i}]") for i, d in enumerate(data)]
    names = [t.name for t in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise TargetError(f"{path}: target names appear twice: {dup}")
    if register:
        for t in out:
            register_target(t)
    return out
