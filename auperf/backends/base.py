"""The backend interface: a :class:`Backend` opens a model from its manifest into a
:class:`Session`, and a session runs batches.

The base classes hold everything that does not depend on the inference library:

- :meth:`Session.run` checks the feed against the manifest's input spec (names, rank, fixed
  sizes, dtype, one value per symbolic dimension such as ``"batch"``) before the backend's
  :meth:`Session.run_impl` sees it, and checks that the outputs have the shapes and dtypes the
  manifest declares after it returns. A batch of zero faces returns empty outputs without
  calling the backend.
- :meth:`Session.describe` says what the session is (backend, version, execution providers,
  device, precision); :meth:`Session.close` frees it; sessions are context managers.

A backend only implements :meth:`Backend.unavailable_reason`, :meth:`Backend.version`,
:meth:`Backend.open_impl`, and a session class with :meth:`Session.run_impl` and
:meth:`Session.describe`. Nothing here imports an inference library.

Convention:
    The model input is ``(batch, C, H, W)`` for layout ``NCHW`` and ``(batch, H, W, C)`` for
    ``NHWC``, with ``C, H, W`` from ``manifest.input`` and its dtype ``manifest.input.dtype``.
    Output shapes are the manifest's ``outputs[i].shape``; a symbolic name (``"batch"``) takes
    the value it has in the feed.
"""

from __future__ import annotations

import abc
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from ..errors import (
    BackendError,
    BackendUnavailableError,
    DTypeError,
    FeedError,
    ParameterError,
    SessionClosedError,
    ShapeError,
)
from ..manifest import Manifest

__all__ = [
    "TensorSpec",
    "SessionInfo",
    "Session",
    "Backend",
    "input_specs",
    "output_specs",
    "array_shape_dtype",
    "check_options",
]

_log = logging.getLogger("auperf")


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one model input or output.

    Attributes:
        name: tensor name.
        shape: sizes; an ``int`` is fixed, a ``str`` (``"batch"``) is symbolic.
        dtype: NumPy dtype name (``"float32"``, ``"float16"``, ``"uint8"``).
    """

    name: str
    shape: tuple[int | str, ...]
    dtype: str


def input_specs(manifest: Manifest) -> tuple[TensorSpec, ...]:
    """The model's input, from ``manifest.input`` (see the module's *Convention*)."""
    inp = manifest.input
    h, w = inp.size
    if inp.layout == "NCHW":
        shape: tuple[int | str, ...] = ("batch", inp.channels, h, w)
    else:
        shape = ("batch", h, w, inp.channels)
    return (TensorSpec(inp.name, shape, inp.dtype),)


def output_specs(manifest: Manifest) -> tuple[TensorSpec, ...]:
    """The model's outputs, from ``manifest.outputs``."""
    return tuple(TensorSpec(o.name, tuple(o.shape), o.dtype) for o in manifest.outputs)


_TORCH_DTYPES = {
    "torch.float32": "float32",
    "torch.float16": "float16",
    "torch.bfloat16": "bfloat16",
    "torch.uint8": "uint8",
    "torch.float64": "float64",
    "torch.int64": "int64",
    "torch.int32": "int32",
    "torch.bool": "bool",
}


def array_shape_dtype(x: Any, name: str) -> tuple[tuple[int, ...], str]:
    """Shape and dtype name of a NumPy array, a torch tensor or a cupy array, without copying.

    Raises:
        FeedError: ``x`` has no ``shape`` and ``dtype`` (a list, a scalar, ``None``).
    """
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or dtype is None or isinstance(x, (np.generic,)):
        raise FeedError(f"{name}: expected an array (NumPy, torch or cupy), got {type(x).__name__}")
    text = str(dtype)
    return tuple(int(s) for s in shape), _TORCH_DTYPES.get(text, text)


def check_options(options: Mapping[str, Any], allowed: Iterable[str], backend: str) -> None:
    """Raise :class:`ParameterError` naming every option ``backend`` does not take."""
    allowed = set(allowed)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ParameterError(
            f"options: {backend} does not take {unknown}; it takes {sorted(allowed)}"
        )


@dataclass(frozen=True)
class SessionInfo:
    """What a session is.

    Attributes:
        backend: backend family (``"onnxruntime"``, ``"torch"``, ``"tensorrt"``).
        provider: the registered provider name it was opened as (``"onnxruntime-cpu"``).
        version: the inference library's version.
        device: ``"cpu"`` or ``"cuda:<index>"``: where inputs are read and outputs written.
        precision: compute precision (``"float32"``, ``"float16"``, ``"bfloat16"``, ``"int8"``).
        execution_providers: onnxruntime's active execution providers in priority order, or
            the backend's equivalent (empty where there is none).
        model: the file the session runs (ONNX, safetensors or engine).
        manifest: the manifest's ``name``.
        options: the options the session was opened with (JSON-ready values).
    """

    backend: str
    provider: str
    version: str
    device: str
    precision: str
    execution_providers: tuple[str, ...] = ()
    model: str = ""
    manifest: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        d = asdict(self)
        d["execution_providers"] = list(self.execution_providers)
        return d


class Session(abc.ABC):
    """A model opened by a backend. Subclasses implement :meth:`run_impl`, :meth:`describe` and,
    when they hold resources, :meth:`close_impl`.

    Thread safety: :meth:`run` may be called from several threads at once when the class sets
    ``thread_safe = True`` (the library's own run is re-entrant); otherwise calls are serialised
    by a lock inside the session. :meth:`close` must not race :meth:`run`.

    Args:
        manifest: the model's manifest.
        max_batch_size: the largest batch the session accepts (``None``: no limit), e.g. the
            maximum of an engine's optimisation profile.

    Attributes:
        manifest: the manifest.
        inputs, outputs: :class:`TensorSpec` of each input and output.
        max_batch_size: see above.
    """

    thread_safe: ClassVar[bool] = True
    #: Whether :meth:`run` takes CUDA arrays (torch tensors on the session's device) as well as
    #: NumPy; callers holding device data copy it to the host first where this is False.
    accepts_device_arrays: ClassVar[bool] = False

    def __init__(self, manifest: Manifest, *, max_batch_size: int | None = None) -> None:
        self.manifest = manifest
        self.inputs = input_specs(manifest)
        self.outputs = output_specs(manifest)
        self.max_batch_size = max_batch_size
        self._closed = False
        self._lock = threading.Lock()

    # -- what subclasses implement -----------------------------------------------------------
    @abc.abstractmethod
    def run_impl(self, feed: dict[str, Any], stream: int | None = None) -> dict[str, Any]:
        """Run a validated, non-empty batch.

        Args:
            feed: input name -> array, already checked against :attr:`inputs`.
            stream: CUDA stream handle to run on, or ``None`` for the backend's default.

        Returns:
            Output name -> array for every name in :attr:`outputs`.
        """

    @abc.abstractmethod
    def describe(self) -> SessionInfo:
        """What this session is (see :class:`SessionInfo`)."""

    def close_impl(self) -> None:  # noqa: B027 - optional hook, nothing to free by default
        """Free the backend's resources (called once by :meth:`close`)."""

    # -- the interface -----------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:<index>"``: where the session reads inputs."""
        return self.describe().device

    def run(self, feed: Mapping[str, Any], *, stream: int | None = None) -> dict[str, Any]:
        """Run one batch.

        Args:
            feed: input name -> array of the shape and dtype in :attr:`inputs` (for the M0
                models ``{"image": (B, 3, S, S) float32}``). NumPy arrays always; device arrays
                where :attr:`accepts_device_arrays` (the backend documents which).
            stream: a CUDA stream handle (``int``) for device sessions that run on the
                caller's stream; ``None`` runs on the backend's default. Sessions that cannot
                take a stream per run raise :class:`ParameterError`.

        Returns:
            Output name -> array, shapes as in :attr:`outputs` (``(B, 2, L)`` logits for M0);
            NumPy for NumPy input. ``B == 0`` gives empty outputs without running the model.

        Raises:
            SessionClosedError: the session is closed.
            FeedError: a name is missing or unknown, or a value is not an array.
            ShapeError: a rank or size differs from the spec, sizes of one symbolic dimension
                differ between inputs, or the batch exceeds :attr:`max_batch_size`.
            DTypeError: a dtype differs from the spec (no silent casts).
            BackendError: the backend failed, or returned outputs that break the manifest.
        """
        if self._closed:
            raise SessionClosedError(f"session of {self.manifest.name!r} is closed")
        arrays, dims = self._check_feed(feed)
        if any(d == 0 for d in dims.values()):
            return self._empty_outputs(dims)
        if stream is not None and (isinstance(stream, bool) or not isinstance(stream, int)):
            raise ParameterError(
                f"stream: expected a CUDA stream handle (int) or None, got {stream!r}"
            )
        if self.thread_safe:
            out = self.run_impl(arrays, stream)
        else:
            with self._lock:
                out = self.run_impl(arrays, stream)
        self._check_outputs(out, dims)
        return out

    def close(self) -> None:
        """Free the session (idempotent)."""
        if not self._closed:
            with self._lock:
                self._closed = True
                self.close_impl()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<{type(self).__name__} {self.manifest.name!r} (closed)>"
        info = self.describe()
        return (
            f"<{type(self).__name__} {self.manifest.name!r} {info.provider} "
            f"{info.device} {info.precision}>"
        )

    # -- checks ------------------------------------------------------------------------------
    def _check_feed(self, feed: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, int]]:
        if not isinstance(feed, Mapping):
            raise FeedError(
                f"feed: expected a mapping of input names to arrays, got {type(feed).__name__}"
            )
        names = [s.name for s in self.inputs]
        missing = [n for n in names if n not in feed]
        unknown = sorted(str(k) for k in feed if k not in names)
        if missing or unknown:
            raise FeedError(
                f"feed: the model takes inputs {names}; missing {missing}, unknown {unknown}"
            )
        dims: dict[str, int] = {}
        arrays: dict[str, Any] = {}
        for spec in self.inputs:
            x = feed[spec.name]
            shape, dtype = array_shape_dtype(x, f"feed[{spec.name!r}]")
            _match_shape(shape, spec, dims, f"feed[{spec.name!r}]")
            if dtype != spec.dtype:
                raise DTypeError(f"feed[{spec.name!r}]: expected {spec.dtype}, got {dtype}")
            arrays[spec.name] = x
        batch = dims.get("batch")
        if self.max_batch_size is not None and batch is not None and batch > self.max_batch_size:
            raise ShapeError(
                f"feed: batch {batch} exceeds this session's max_batch_size {self.max_batch_size}"
            )
        return arrays, dims

    def _check_outputs(self, out: Any, dims: dict[str, int]) -> None:
        if not isinstance(out, Mapping):
            raise BackendError(f"{type(self).__name__}.run_impl returned {type(out).__name__}")
        for spec in self.outputs:
            if spec.name not in out:
                raise BackendError(
                    f"output {spec.name!r}: the backend returned {sorted(out)}, "
                    "the manifest declares it"
                )
            shape, dtype = array_shape_dtype(out[spec.name], f"output {spec.name!r}")
            try:
                _match_shape(shape, spec, dict(dims), f"output {spec.name!r}")
            except ShapeError as exc:
                raise BackendError(f"{exc} (manifest outputs disagree with the model)") from None
            if dtype != spec.dtype:
                raise BackendError(
                    f"output {spec.name!r}: the manifest says {spec.dtype}, the model gave {dtype}"
                )

    def _empty_outputs(self, dims: dict[str, int]) -> dict[str, Any]:
        out = {}
        for spec in self.outputs:
            shape = []
            for s in spec.shape:
                if isinstance(s, str) and s not in dims:
                    raise ShapeError(
                        f"output {spec.name!r}: size {s!r} is unknown for an empty feed"
                    )
                shape.append(dims[s] if isinstance(s, str) else s)
            out[spec.name] = np.zeros(tuple(shape), dtype=spec.dtype)
        return out


def _match_shape(shape: tuple[int, ...], spec: TensorSpec, dims: dict[str, int], name: str) -> None:
    want = "(" + ", ".join(str(s) for s in spec.shape) + ")"
    if len(shape) != len(spec.shape):
        raise ShapeError(f"{name}: expected shape {want}, got {shape}")
    for axis, (got, exp) in enumerate(zip(shape, spec.shape, strict=True)):
        if isinstance(exp, str):
            if exp in dims and dims[exp] != got:
                raise ShapeError(
                    f"{name}: axis {axis} ({exp!r}) is {got}, another tensor has {dims[exp]}"
                )
            dims[exp] = got
        elif got != exp:
            raise ShapeError(f"{name}: expected shape {want}, got {shape} (axis {axis})")


class Backend(abc.ABC):
    """One inference library, configured for one registered provider.

    Instances come from :func:`auperf.backends.resolve`; ``preset`` holds the provider's fixed
    settings (for ``"onnxruntime-cuda"``: the CUDA execution provider).

    Subclasses implement :meth:`unavailable_reason`, :meth:`version`, :meth:`open_impl` and
    list the options :meth:`open` takes in ``OPTIONS``.

    Attributes:
        name: the backend family (class attribute): ``"onnxruntime"``, ``"torch"``, ...
        provider: the registered provider name this instance serves.
        preset: the provider's fixed settings.
    """

    name: ClassVar[str] = ""
    OPTIONS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, provider: str = "", **preset: Any) -> None:
        self.provider = provider or self.name
        self.preset = dict(preset)

    @abc.abstractmethod
    def unavailable_reason(self) -> str | None:
        """Why this provider cannot load here (a sentence naming what is missing), or ``None``
        when it can. Cheap: imports the library but loads no model."""

    @abc.abstractmethod
    def version(self) -> str | None:
        """The inference library's version, ``None`` when it is not installed."""

    @abc.abstractmethod
    def open_impl(self, manifest: Manifest, **options: Any) -> Session:
        """Open ``manifest``'s model with validated ``options``."""

    def is_available(self) -> bool:
        """Whether :meth:`unavailable_reason` finds nothing missing."""
        return self.unavailable_reason() is None

    def open(self, manifest: Manifest, **options: Any) -> Session:
        """Open a model.

        Args:
            manifest: the model's manifest (loaded from its file, so that relative model paths
                resolve).
            **options: backend options (see the backend's ``OPTIONS`` and its docs).

        Returns:
            A :class:`Session`.

        Raises:
            BackendUnavailableError: the provider cannot load here (names why).
            ParameterError: an option this backend does not take, or a bad option value.
            ManifestError, WeightsError, BackendError: the model files are missing, corrupt or
                do not match the manifest.
        """
        if not isinstance(manifest, Manifest):
            raise ParameterError(f"manifest: expected a Manifest, got {type(manifest).__name__}")
        check_options(options, self.OPTIONS, self.provider)
        reason = self.unavailable_reason()
        if reason is not None:
            raise BackendUnavailableError(
                f"{self.provider}: cannot load: {reason}", {self.provider: reason}
            )
        session = self.open_impl(manifest, **options)
        _log.info("opened %r with %s", manifest.name, session.describe().to_dict())
        return session

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider!r} preset={self.preset}>"
