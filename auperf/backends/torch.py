"""The torch backend: providers ``torch-cpu`` and ``torch-cuda``.

It builds the network the manifest describes from :mod:`auperf.nets` and loads its trained
weights from the safetensors file beside the ONNX file (``<model stem>.safetensors``, see
:func:`auperf.models.weights_path`). On the CPU in float32 it is the reference every other
backend is compared against. On a GPU it is the fast path where neither TensorRT nor
onnxruntime-gpu is installed.

What it needs from the manifest: ``method == "M0"``, ``task`` with ``postprocess.kind ==
"fuse_views"`` on an output of shape ``(batch, 2, L)``, an ``NCHW`` float32 input with 3
channels, ``L = len(aus)``, and the backbone name, read from ``training.config.backbone`` (the
manifest format has no network section yet; the ``backbone`` option overrides it).

Options (``Backend.open(manifest, **options)``):
    weights: the safetensors file (default :func:`auperf.models.weights_path`).
    backbone: the backbone name when the manifest does not record it.
    precision: ``"float32"`` (default; the only one on the CPU), ``"float16"`` or
        ``"bfloat16"`` (CUDA). Inputs stay float32 as the manifest says; they are cast on the
        device and the logits are returned as float32.
    channels_last: NHWC memory format for the convolutions (default: True on CUDA, False on CPU).
    cuda_graphs: capture one CUDA graph per batch size and replay it (default True on CUDA;
        not available on the CPU). Runs are then serialised by the session's lock.
    max_graphs: most batch sizes kept captured at once (default 8; the oldest is dropped).
    device_id: CUDA device index (default 0).

Sessions take NumPy arrays (returned outputs are NumPy) or torch tensors on the session's
device (returned outputs are torch tensors on that device, float32). ``run(feed, stream=h)``
runs on the caller's CUDA stream ``h`` (wrapped as ``torch.cuda.ExternalStream``).

The CUDA path (device placement, precisions, channels-last, graph capture and replay) has not
been run on a GPU yet; the CPU path is tested.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import DeviceError, ManifestError, ParameterError, WeightsError
from ..manifest import Manifest
from .base import Backend, Session, SessionInfo

__all__ = ["TorchBackend", "TorchSession", "build_network", "load_weights"]

_log = logging.getLogger("auperf")
_PRECISIONS = ("float32", "float16", "bfloat16")
_TRAINING_ONLY = re.compile(r"^views\.\d+\.noisy_head\.")


def _torch():
    import torch

    return torch


class TorchBackend(Backend):
    """torch on one kind of device.

    Args:
        provider: the registered provider name.
        device: ``"cpu"`` or ``"cuda"``.
    """

    name: ClassVar[str] = "torch"
    OPTIONS: ClassVar[frozenset[str]] = frozenset(
        {
            "weights",
            "backbone",
            "precision",
            "channels_last",
            "cuda_graphs",
            "max_graphs",
            "device_id",
        }
    )

    def __init__(self, provider: str = "", device: str = "cpu") -> None:
        if device not in ("cpu", "cuda"):
            raise ParameterError(f"device: expected 'cpu' or 'cuda', got {device!r}")
        super().__init__(provider, device=device)
        self.device_kind = device

    def unavailable_reason(self) -> str | None:
        try:
            torch = _torch()
        except ImportError:
            return "torch is not installed (pip install torch)"
        try:
            import safetensors  # noqa: F401
        except ImportError:
            return "safetensors is not installed (pip install safetensors)"
        if self.device_kind == "cuda" and not torch.cuda.is_available():
            if torch.version.cuda is None:
                return f"torch {torch.__version__} was built without CUDA"
            return f"torch {torch.__version__} (CUDA {torch.version.cuda}) sees no CUDA device"
        return None

    def version(self) -> str | None:
        try:
            return str(_torch().__version__)
        except ImportError:
            return None

    def open_impl(self, manifest: Manifest, **options: Any) -> TorchSession:
        torch = _torch()
        cuda = self.device_kind == "cuda"
        precision = options.get("precision", "float32")
        if precision not in _PRECISIONS:
            raise ParameterError(
                f"precision: expected one of {list(_PRECISIONS)}, got {precision!r}"
            )
        if not cuda and precision != "float32":
            raise ParameterError(f"precision: the CPU runs float32 only, got {precision!r}")
        channels_last = _flag(options.get("channels_last", cuda), "channels_last")
        graphs = _flag(options.get("cuda_graphs", cuda), "cuda_graphs")
        if graphs and not cuda:
            raise ParameterError("cuda_graphs: CUDA graphs need the torch-cuda provider")
        max_graphs = options.get("max_graphs", 8)
        if isinstance(max_graphs, bool) or not isinstance(max_graphs, int) or max_graphs < 1:
            raise ParameterError(f"max_graphs: expected an integer >= 1, got {max_graphs!r}")
        if cuda:
            device_id = options.get("device_id", 0)
            count = torch.cuda.device_count()
            if (
                isinstance(device_id, bool)
                or not isinstance(device_id, int)
                or not (0 <= device_id < count)
            ):
                raise ParameterError(f"device_id: expected 0 <= id < {count}, got {device_id!r}")
            device = torch.device("cuda", device_id)
        else:
            if "device_id" in options:
                raise ParameterError("device_id: torch-cpu takes no device_id")
            device = torch.device("cpu")

        from ..models import weights_path

        weights = Path(options["weights"]) if options.get("weights") else weights_path(manifest)
        spec = manifest.model.weights
        if spec is not None and not options.get("weights") and weights.is_file():
            from ..manifest import sha256_file

            digest = sha256_file(weights)
            if digest != spec.sha256:
                raise WeightsError(
                    f"weights: {weights} has sha256 {digest}, the manifest records {spec.sha256} "
                    "(a changed or corrupt file; re-export the model)"
                )
        net = build_network(manifest, backbone=options.get("backbone"))
        load_weights(net, weights)
        from ..nets.m0 import M0Inference

        module = M0Inference(net).eval().requires_grad_(False)
        module = module.to(device=device, dtype=getattr(torch, precision))
        if channels_last:
            module = module.to(memory_format=torch.channels_last)
        return TorchSession(
            manifest,
            module,
            self,
            device=device,
            precision=precision,
            channels_last=channels_last,
            cuda_graphs=graphs,
            max_graphs=max_graphs,
            weights=weights,
            backbone=net.backbone_name,
        )


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ParameterError(f"{name}: expected True or False, got {value!r}")
    return value


def build_network(manifest: Manifest, backbone: str | None = None) -> Any:
    """The untrained network of ``manifest`` (an :class:`auperf.nets.m0.M0Net` without noisy
    heads, on the CPU in float32).

    Args:
        manifest: an M0 manifest (see the module docstring for what it must hold).
        backbone: the backbone name; default ``manifest.training.config["backbone"]``.

    Raises:
        ManifestError: the manifest is not an M0 two-view model, or records no backbone and
            none is given.
        ParameterError: unknown backbone name.
    """
    from ..nets.m0 import NUM_VIEWS, M0Net

    if manifest.method != "M0":
        raise ManifestError(
            f"method: the torch backend builds M0 networks, got {manifest.method!r}"
        )
    post = manifest.postprocess
    if post.kind != "fuse_views":
        raise ManifestError(f"postprocess.kind: expected 'fuse_views' for M0, got {post.kind!r}")
    shape = manifest.output(post.input).shape
    if shape[1] != NUM_VIEWS:
        raise ManifestError(
            f"outputs: M0 emits {NUM_VIEWS} views, output {post.input!r} has shape {list(shape)}"
        )
    inp = manifest.input
    if inp.layout != "NCHW" or inp.dtype != "float32" or inp.channels != 3:
        raise ManifestError(
            f"input: M0 takes NCHW float32 with 3 channels, the manifest says {inp.layout} "
            f"{inp.dtype} with {inp.channels}"
        )
    if backbone is None:
        config = manifest.training.config or {}
        backbone = config.get("backbone")
        if not isinstance(backbone, str) or not backbone:
            raise ManifestError(
                "training.config.backbone: missing; the torch backend needs the backbone name "
                "(pass backbone=... in the torch options, or export with the run configuration)"
            )
    return M0Net(len(manifest.aus), backbone, noisy_heads=False)


def load_weights(net: Any, path: str | Path) -> None:
    """Load an M0 state dict from a safetensors file into ``net`` (strictly, except for the
    training-only noisy-head tensors, which are dropped). Training checkpoints
    (``model.``-prefixed keys, metadata ``format = auperf-checkpoint``) are accepted too.

    Raises:
        WeightsError: the file is missing, not safetensors, or does not fit ``net``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"weights: {path} does not exist (the torch backend reads the safetensors file named "
            "after the ONNX file; pass weights=... to use another)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path), device="cpu")
    except Exception as exc:  # noqa: BLE001 - safetensors raises several untyped errors
        raise WeightsError(f"weights: {path} is not a readable safetensors file: {exc}") from None
    if meta.get("format") == "auperf-checkpoint":
        tensors = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    dropped = [k for k in tensors if _TRAINING_ONLY.match(k)]
    for k in dropped:
        del tensors[k]
    if dropped:
        _log.debug("%s: ignoring %d training-only noisy-head tensors", path.name, len(dropped))
    what = (
        f"weights: {path} does not fit M0 with backbone {net.backbone_name!r} and {net.num_aus} AUs"
    )
    try:
        result = net.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:  # sizes differ
        detail = " ".join(str(exc).split("\n")[1:3]).strip()
        raise WeightsError(f"{what}: {detail}") from None
    if result.missing_keys or result.unexpected_keys:
        raise WeightsError(
            f"{what}: missing {result.missing_keys[:5]} ({len(result.missing_keys)}), "
            f"unexpected {result.unexpected_keys[:5]} ({len(result.unexpected_keys)})"
        )


class TorchSession(Session):
    """An M0 inference network in torch behind the :class:`Session` interface."""

    thread_safe: ClassVar[bool] = True
    accepts_device_arrays: ClassVar[bool] = True

    def __init__(
        self,
        manifest: Manifest,
        module: Any,
        backend: TorchBackend,
        *,
        device: Any,
        precision: str,
        channels_last: bool,
        cuda_graphs: bool,
        max_graphs: int,
        weights: Path,
        backbone: str,
    ) -> None:
        super().__init__(manifest)
        torch = _torch()
        self._torch = torch
        self._module = module
        self._backend = backend
        self._device = device
        self._dtype = getattr(torch, precision)
        self._channels_last = channels_last
        self._cuda_graphs = cuda_graphs
        self._max_graphs = max_graphs
        self._graphs: OrderedDict[int, tuple[Any, Any, Any]] = OrderedDict()
        # Captured graphs share static buffers: one run at a time.
        self.thread_safe = not cuda_graphs  # type: ignore[misc]
        self._input_name = self.inputs[0].name
        self._output_name = manifest.postprocess.input
        self._info = SessionInfo(
            backend="torch",
            provider=backend.provider,
            version=str(torch.__version__),
            device=str(device) if device.type == "cpu" else f"cuda:{device.index}",
            precision=precision,
            execution_providers=(),
            model=str(weights),
            manifest=manifest.name,
            options={
                "backbone": backbone,
                "weights": str(weights),
                "channels_last": channels_last,
                "cuda_graphs": cuda_graphs,
                "max_graphs": max_graphs,
            },
        )

    @property
    def module(self) -> Any:
        """The ``M0Inference`` module (eval mode, on the session's device and precision)."""
        return self._module

    def describe(self) -> SessionInfo:
        return self._info

    def close_impl(self) -> None:
        self._graphs.clear()
        self._module = None

    def run_impl(self, feed: dict[str, Any], stream: int | None = None) -> dict[str, Any]:
        torch = self._torch
        if stream is not None and self._device.type == "cpu":
            raise ParameterError("stream: torch-cpu sessions take no CUDA stream")
        if stream is None:
            return self._run(feed)
        with torch.cuda.stream(torch.cuda.ExternalStream(stream, device=self._device)):
            return self._run(feed)

    def _run(self, feed: dict[str, Any]) -> dict[str, Any]:
        torch = self._torch
        x = feed[self._input_name]
        host = isinstance(x, np.ndarray)
        if host:
            if not x.flags.writeable or not x.flags.c_contiguous:
                x = np.array(x, copy=True, order="C")
            t = torch.from_numpy(x)
            if self._device.type != "cpu":
                t = t.pin_memory().to(self._device, non_blocking=True)
        elif isinstance(x, torch.Tensor):
            if x.device != self._device:
                raise DeviceError(
                    f"feed[{self._input_name!r}]: expected a tensor on {self._device}, got one on "
                    f"{x.device}"
                )
            t = x
        else:
            raise DeviceError(
                f"feed[{self._input_name!r}]: torch sessions take NumPy arrays or torch tensors, "
                f"got {type(x).__name__}"
            )
        with torch.no_grad():
            if self._cuda_graphs:
                y = self._replay(t)
            else:
                t = t.to(self._dtype)
                if self._channels_last:
                    t = t.contiguous(memory_format=torch.channels_last)
                y = self._module(t).float()
        return {self._output_name: y.cpu().numpy() if host else y}

    # -- CUDA graphs -------------------------------------------------------------------------
    def _replay(self, x: Any) -> Any:
        batch = int(x.shape[0])
        entry = self._graphs.get(batch)
        if entry is None:
            if len(self._graphs) >= self._max_graphs:
                self._graphs.popitem(last=False)
            entry = self._capture(batch)
            self._graphs[batch] = entry
        else:
            self._graphs.move_to_end(batch)
        static_in, graph, static_out = entry
        static_in.copy_(x)  # casts to the session's dtype and memory format
        graph.replay()
        # static_out is overwritten by the next replay: hand out a copy.
        return static_out.float() if static_out.dtype != self._torch.float32 else static_out.clone()

    def _capture(self, batch: int) -> tuple[Any, Any, Any]:
        torch = self._torch
        shape = (batch, *(int(s) for s in self.inputs[0].shape[1:]))
        fmt = torch.channels_last if self._channels_last else torch.contiguous_format
        static_in = torch.zeros(shape, device=self._device, dtype=self._dtype).contiguous(
            memory_format=fmt
        )
        with torch.cuda.device(self._device):
            # Warm up on a side stream (lazy initialisation must not be captured).
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self._module(static_in)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self._module(static_in)
        _log.info("captured a CUDA graph for batch %d on %s", batch, self._device)
        return static_in, graph, static_out
