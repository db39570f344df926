"""Triton Inference Server: a model repository for an auperf model, and a client helper.

:func:`export_repository` (``auperf export-triton MODEL --repo DIR``) writes::

    DIR/
      <name>_onnx/config.pbtxt        platform onnxruntime_onnx, dynamic batching, instance groups
      <name>_onnx/1/model.onnx
      <name>_trt/config.pbtxt         platform tensorrt_plan (only with a TensorRT engine given)
      <name>_trt/1/model.plan
      <name>_align/config.pbtxt       Python backend: frames + 5 landmarks -> model input crops
      <name>_align/1/model.py             (auperf.align + auperf.ops.warp_faces), boxes
      <name>_align/manifest.json
      <name>_fuse/config.pbtxt        Python backend: logits -> probabilities, active
      <name>_fuse/1/model.py              (auperf.ops.fuse_views with the manifest's thresholds)
      <name>_fuse/manifest.json
      <name>/config.pbtxt             ensemble: <name>_align -> <name>_onnx|_trt -> <name>_fuse
      <name>/1/

Alignment and fusion are not networks, so the ensemble runs them as Python-backend models that
call the same auperf functions as :class:`auperf.Detector`; the Triton server's Python
environment needs auperf installed (``pip install auperf``). Without the ensemble, a client
aligns and fuses itself and sends crops to ``<name>_onnx`` (``TritonDetector(mode="model")``).

Tensors of the ensemble (the first axis is the number of frames ``B`` or faces ``N`` of one
request; the ensemble does not batch across requests, the network model behind it does):

=============== ======== ============== ====================================================
name            type     shape          meaning
=============== ======== ============== ====================================================
FRAMES          UINT8    (B, H, W, 3)   RGB frames
LANDMARKS       FP64     (N, 5, 2)      5 points per face in frame pixels (auperf.align order)
FRAME_INDEX     INT64    (N,)           frame of each face, in [0, B)
PROBABILITIES   FP32     (N, L)         fused AU probabilities
ACTIVE          BOOL     (N, L)         probabilities >= the manifest's thresholds
BOXES           FP64     (N, 4)         x0, y0, x1, y1 in frame pixels (as Detector.boxes)
=============== ======== ============== ====================================================

A request may hold at most ``max_batch_size`` faces (the network model's limit);
:class:`TritonDetector` splits larger calls.

The configs are checked against Triton's own ``ModelConfig`` protobuf schema in the tests
(``tritonclient.grpc.model_config_pb2``); no Triton server has served them on the machines
auperf is developed on (see docs/scale_out.md).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import (
    ManifestError,
    OptionalDependencyError,
    ParameterError,
    ValueRangeError,
)
from ..manifest import Manifest

__all__ = [
    "RepositoryInfo",
    "TritonDetector",
    "align_faces",
    "export_repository",
    "fuse_logits",
    "to_pbtxt",
]

_log = logging.getLogger("auperf")

#: NumPy dtype name -> Triton config data type.
CONFIG_DTYPES = {
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "float64": "TYPE_FP64",
    "uint8": "TYPE_UINT8",
    "int64": "TYPE_INT64",
    "bool": "TYPE_BOOL",
}
#: NumPy dtype name -> Triton wire data type (the ``datatype`` of a request tensor).
WIRE_DTYPES = {
    "float32": "FP32",
    "float16": "FP16",
    "float64": "FP64",
    "uint8": "UINT8",
    "int64": "INT64",
    "bool": "BOOL",
}
_KINDS = {"gpu": "KIND_GPU", "cpu": "KIND_CPU"}
_PLATFORMS = ("onnxruntime", "tensorrt")


class _Enum(str):
    """A protobuf enum value: written without quotes in text format."""


def to_pbtxt(message: Mapping[str, Any], indent: int = 0) -> str:
    """A Python mapping written in protobuf text format (the ``config.pbtxt`` syntax).

    Strings are quoted (enum values, made with the private ``_Enum`` class, are not); a list of
    mappings becomes repeated ``key { ... }`` blocks, a list of scalars ``key: [a, b]``;
    protobuf map fields are written as lists of ``{"key": ..., "value": ...}``.
    """
    pad = "  " * indent
    lines = []
    for key, value in message.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            lines.append(f"{pad}{key} {{")
            lines.append(to_pbtxt(value, indent + 1))
            lines.append(f"{pad}}}")
        elif isinstance(value, (list, tuple)):
            if value and all(isinstance(v, Mapping) for v in value):
                for v in value:
                    lines.append(f"{pad}{key} {{")
                    lines.append(to_pbtxt(v, indent + 1))
                    lines.append(f"{pad}}}")
            else:
                lines.append(f"{pad}{key}: [{', '.join(_scalar(v) for v in value)}]")
        else:
            lines.append(f"{pad}{key}: {_scalar(value)}")
    return "\n".join(line for line in lines if line)


def _scalar(v: Any) -> str:
    if isinstance(v, _Enum):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    return json.dumps(str(v))


# -- the maths the Python-backend models run (the same calls as auperf.Detector) ----------------
def align_faces(
    manifest: Manifest, frames: np.ndarray, landmarks5: np.ndarray, frame_index: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Model input crops and boxes of faces, as :class:`auperf.Detector` makes them.

    Args:
        manifest: the model's manifest (template, size, colour order, mean/std, layout, dtype).
        frames: ``(B, H, W, 3)`` uint8 RGB frames.
        landmarks5: ``(N, 5, 2)`` points in frame pixels, :mod:`auperf.align` order and
            convention (origin at the centre of the top-left pixel).
        frame_index: ``(N,)`` integers in ``[0, B)``.

    Returns:
        ``crops`` in the manifest's input layout and dtype, ``(N, ...)``, and ``boxes``
        ``(N, 4)`` float64 ``(x0, y0, x1, y1)`` in frame pixels.

    Raises:
        NonFiniteError, SingularMatrixError: a face's points are not finite or coincide.
        ShapeError, DTypeError, IndexRangeError: malformed inputs.
    """
    from ..align import estimate_similarity, invert_affine
    from ..detector import _boxes
    from ..ops import warp_faces

    inp = manifest.input
    points = np.ascontiguousarray(landmarks5, dtype=np.float64)
    fidx = np.ascontiguousarray(frame_index, dtype=np.int64)
    matrices = estimate_similarity(points, np.asarray(inp.alignment.points, dtype=np.float64))
    if inp.dtype == "uint8":
        mean = std = None
    else:
        mean = [m / 255.0 for m in inp.mean]
        std = [s / 255.0 for s in inp.std]
    crops = warp_faces(
        np.ascontiguousarray(frames),
        matrices,
        fidx,
        size=inp.size,
        mean=mean,
        std=std,
        input_order="RGB",
        output_order=inp.colour_order,
        dtype=inp.dtype,
        layout=inp.layout,
    )
    boxes = _boxes(invert_affine(matrices), inp.size) if len(points) else np.zeros((0, 4))
    return crops, boxes


def fuse_logits(logits: np.ndarray, thresholds: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(probabilities, active)`` of ``(N, V, L)`` logits: :func:`auperf.ops.fuse_views`."""
    from ..ops import fuse_views

    p, a = fuse_views(np.ascontiguousarray(logits, dtype=np.float32), thresholds)
    return np.asarray(p), np.asarray(a)


# -- the repository ------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepositoryInfo:
    """What :func:`export_repository` wrote.

    Attributes:
        repo: the repository folder.
        models: Triton model name -> its folder.
        ensemble: the ensemble's model name, or ``None``.
        network: the network model the ensemble calls (``<name>_onnx`` or ``<name>_trt``).
        max_batch_size: faces per request the network model accepts.
    """

    repo: Path
    models: dict[str, Path] = field(default_factory=dict)
    ensemble: str | None = None
    network: str = ""
    max_batch_size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": str(self.repo),
            "models": {k: str(v) for k, v in self.models.items()},
            "ensemble": self.ensemble,
            "network": self.network,
            "max_batch_size": self.max_batch_size,
        }


def _dims_of_input(manifest: Manifest) -> list[int]:
    inp = manifest.input
    h, w = inp.size
    return [inp.channels, h, w] if inp.layout == "NCHW" else [h, w, inp.channels]


def _dims_of_output(manifest: Manifest, name: str) -> list[int]:
    shape = manifest.output(name).shape
    if not shape or shape[0] != "batch":
        raise ManifestError(
            f"outputs.{name}.shape: Triton batching needs a leading 'batch' axis, got {shape}"
        )
    return [d if isinstance(d, int) else -1 for d in shape[1:]]


def _tensor(name: str, dtype: str, dims: Sequence[int]) -> dict[str, Any]:
    return {"name": name, "data_type": _Enum(CONFIG_DTYPES[dtype]), "dims": list(dims)}


def network_config(
    manifest: Manifest,
    name: str,
    platform: str,
    *,
    max_batch_size: int,
    preferred_batch_sizes: Sequence[int],
    max_queue_delay_us: int,
    instance_kind: str,
    instance_count: int,
    gpus: Sequence[int] | None,
    onnx_tensorrt: bool = False,
) -> dict[str, Any]:
    """The ``ModelConfig`` (as a mapping for :func:`to_pbtxt`) of the network model."""
    inp = manifest.input
    group: dict[str, Any] = {"count": instance_count, "kind": _Enum(_KINDS[instance_kind])}
    if gpus and instance_kind == "gpu":
        group["gpus"] = list(gpus)
    cfg: dict[str, Any] = {
        "name": name,
        "platform": "onnxruntime_onnx" if platform == "onnxruntime" else "tensorrt_plan",
        "max_batch_size": max_batch_size,
        "input": [_tensor(inp.name, inp.dtype, _dims_of_input(manifest))],
        "output": [
            _tensor(o.name, o.dtype, _dims_of_output(manifest, o.name)) for o in manifest.outputs
        ],
        "dynamic_batching": {
            "preferred_batch_size": [b for b in preferred_batch_sizes if b <= max_batch_size],
            "max_queue_delay_microseconds": max_queue_delay_us,
        },
        "instance_group": [group],
    }
    if platform == "onnxruntime" and onnx_tensorrt and instance_kind == "gpu":
        cfg["optimization"] = {
            "execution_accelerators": {
                "gpu_execution_accelerator": [
                    {
                        "name": "tensorrt",
                        "parameters": [{"key": "precision_mode", "value": "FP16"}],
                    }
                ]
            }
        }
    return cfg


def align_config(manifest: Manifest, name: str, instance_count: int) -> dict[str, Any]:
    """The ``ModelConfig`` of the Python-backend alignment model."""
    inp = manifest.input
    return {
        "name": name,
        "backend": "python",
        "max_batch_size": 0,
        "input": [
            _tensor("FRAMES", "uint8", [-1, -1, -1, 3]),
            _tensor("LANDMARKS", "float64", [-1, 5, 2]),
            _tensor("FRAME_INDEX", "int64", [-1]),
        ],
        "output": [
            _tensor(inp.name, inp.dtype, [-1, *_dims_of_input(manifest)]),
            _tensor("BOXES", "float64", [-1, 4]),
        ],
        "instance_group": [{"count": instance_count, "kind": _Enum("KIND_CPU")}],
    }


def fuse_config(manifest: Manifest, name: str, instance_count: int) -> dict[str, Any]:
    """The ``ModelConfig`` of the Python-backend fusion model."""
    logits = manifest.postprocess.input
    num_aus = len(manifest.aus)
    return {
        "name": name,
        "backend": "python",
        "max_batch_size": 0,
        "input": [
            _tensor(
                "LOGITS", manifest.output(logits).dtype, [-1, *_dims_of_output(manifest, logits)]
            )
        ],
        "output": [
            _tensor("PROBABILITIES", "float32", [-1, num_aus]),
            _tensor("ACTIVE", "bool", [-1, num_aus]),
        ],
        "instance_group": [{"count": instance_count, "kind": _Enum("KIND_CPU")}],
    }


def ensemble_config(manifest: Manifest, name: str, network: str) -> dict[str, Any]:
    """The ``ModelConfig`` of the ensemble ``<name>_align -> network -> <name>_fuse``."""
    inp = manifest.input
    logits = manifest.postprocess.input
    num_aus = len(manifest.aus)

    def io(k: str, v: str) -> dict[str, str]:
        return {"key": k, "value": v}

    return {
        "name": name,
        "platform": "ensemble",
        "max_batch_size": 0,
        "input": [
            _tensor("FRAMES", "uint8", [-1, -1, -1, 3]),
            _tensor("LANDMARKS", "float64", [-1, 5, 2]),
            _tensor("FRAME_INDEX", "int64", [-1]),
        ],
        "output": [
            _tensor("PROBABILITIES", "float32", [-1, num_aus]),
            _tensor("ACTIVE", "bool", [-1, num_aus]),
            _tensor("BOXES", "float64", [-1, 4]),
        ],
        "ensemble_scheduling": {
            "step": [
                {
                    "model_name": f"{name}_align",
                    "model_version": -1,
                    "input_map": [
                        io("FRAMES", "FRAMES"),
                        io("LANDMARKS", "LANDMARKS"),
                        io("FRAME_INDEX", "FRAME_INDEX"),
                    ],
                    "output_map": [io(inp.name, "crops"), io("BOXES", "BOXES")],
                },
                {
                    "model_name": network,
                    "model_version": -1,
                    "input_map": [io(inp.name, "crops")],
                    "output_map": [io(logits, "logits")],
                },
                {
                    "model_name": f"{name}_fuse",
                    "model_version": -1,
                    "input_map": [io("LOGITS", "logits")],
                    "output_map": [
                        io("PROBABILITIES", "PROBABILITIES"),
                        io("ACTIVE", "ACTIVE"),
                    ],
                },
            ]
        },
    }


_ALIGN_PY = '''"""Triton Python-backend model: frames + 5 landmarks -> model input crops and boxes.

Written by auperf export-triton. Needs auperf installed in the server's Python environment.
"""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from auperf.integrations.triton import align_faces
from auperf.manifest import Manifest


class TritonPythonModel:
    def initialize(self, args):
        folder = Path(args["model_repository"])
        self.manifest = Manifest.load(folder / "manifest.json")

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                frames = pb_utils.get_input_tensor_by_name(request, "FRAMES").as_numpy()
                lm = pb_utils.get_input_tensor_by_name(request, "LANDMARKS").as_numpy()
                fidx = pb_utils.get_input_tensor_by_name(request, "FRAME_INDEX").as_numpy()
                crops, boxes = align_faces(self.manifest, frames, lm, fidx)
                out = [
                    pb_utils.Tensor(self.manifest.input.name, np.ascontiguousarray(crops)),
                    pb_utils.Tensor("BOXES", boxes.astype(np.float64)),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=out))
            except Exception as exc:  # one bad request answers with its error, not the batch
                error = pb_utils.TritonError(str(exc))
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses
'''

_FUSE_PY = '''"""Triton Python-backend model: logits of the views -> fused AU probabilities.

Written by auperf export-triton. Needs auperf installed in the server's Python environment.
"""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from auperf.integrations.triton import fuse_logits
from auperf.manifest import Manifest


class TritonPythonModel:
    def initialize(self, args):
        folder = Path(args["model_repository"])
        manifest = Manifest.load(folder / "manifest.json")
        self.thresholds = np.asarray(manifest.thresholds, dtype=np.float32)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                logits = pb_utils.get_input_tensor_by_name(request, "LOGITS").as_numpy()
                p, a = fuse_logits(logits, self.thresholds)
                out = [
                    pb_utils.Tensor("PROBABILITIES", p.astype(np.float32)),
                    pb_utils.Tensor("ACTIVE", a.astype(np.bool_)),
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=out))
            except Exception as exc:
                error = pb_utils.TritonError(str(exc))
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=error))
        return responses
'''


def _positive(value: Any, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ParameterError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def export_repository(
    model: str | Path | Manifest | None,
    repo: str | Path,
    *,
    name: str | None = None,
    max_batch_size: int = 64,
    preferred_batch_sizes: Sequence[int] = (16, 32, 64),
    max_queue_delay_us: int = 500,
    instance_kind: str = "gpu",
    instance_count: int = 1,
    gpus: Sequence[int] | None = None,
    tensorrt_engine: str | Path | None = None,
    onnx_tensorrt: bool = False,
    ensemble: bool = True,
    python_instances: int = 2,
    overwrite: bool = False,
) -> RepositoryInfo:
    """Write a Triton model repository for ``model`` (layout in the module docstring).

    Args:
        model: a model folder, a manifest file, a loaded manifest, or ``None`` (the demo model).
        repo: the repository folder (created; existing model folders of the same names are
            refused unless ``overwrite``).
        name: the Triton model name prefix (default: the manifest's name, with characters other
            than letters, digits, ``-`` and ``_`` replaced by ``_``).
        max_batch_size: faces per batch of the network model (the dynamic batcher's limit).
        preferred_batch_sizes: batch sizes the dynamic batcher aims for (those above
            ``max_batch_size`` are dropped).
        max_queue_delay_us: how long (microseconds) a request may wait to be batched.
        instance_kind: ``"gpu"`` or ``"cpu"`` instances of the network model.
        instance_count: instances of the network model per GPU (or in all, on the CPU).
        gpus: GPU ids the instances run on (default: every GPU).
        tensorrt_engine: an engine file (``auperf build``) for the ``tensorrt_plan`` model;
            the ensemble then runs it instead of the ONNX model. Its optimisation profile
            must accept batches up to ``max_batch_size`` (Triton checks this at load).
        onnx_tensorrt: ask onnxruntime's TensorRT execution accelerator (FP16) for the ONNX
            model on GPU instances.
        ensemble: also write the alignment and fusion Python models and the ensemble.
        python_instances: CPU instances of each Python model.
        overwrite: replace existing model folders of the same names.

    Returns:
        A :class:`RepositoryInfo`.

    Raises:
        ModelNotFoundError, ManifestError: no usable model (the ONNX sha256 is checked).
        ParameterError, ValueRangeError: bad arguments. FileExistsError: a model folder exists.
    """
    from .. import models
    from ..detector import _check_runnable

    manifest = models.load_manifest(model)
    _check_runnable(manifest)
    onnx_path = manifest.model_path()
    manifest.verify_model(onnx_path)
    max_batch_size = _positive(max_batch_size, "max_batch_size")
    max_queue_delay_us = _positive(max_queue_delay_us, "max_queue_delay_us", 0)
    instance_count = _positive(instance_count, "instance_count")
    python_instances = _positive(python_instances, "python_instances")
    for b in preferred_batch_sizes:
        _positive(b, "preferred_batch_sizes")
    if instance_kind not in _KINDS:
        raise ValueRangeError(f"instance_kind: expected 'gpu' or 'cpu', got {instance_kind!r}")
    if gpus is not None:
        gpus = [_positive(g, "gpus", 0) for g in gpus]
    base = name if name is not None else manifest.name
    base = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
    if not base:
        raise ParameterError(f"name: expected a non-empty model name, got {name!r}")
    engine = None
    if tensorrt_engine is not None:
        engine = Path(tensorrt_engine)
        if not engine.is_file():
            raise ParameterError(f"tensorrt_engine: no engine file at {str(engine)!r}")

    repo = Path(repo)
    names = [f"{base}_onnx"]
    if engine is not None:
        names.append(f"{base}_trt")
    if ensemble:
        names += [f"{base}_align", f"{base}_fuse", base]
    for n in names:
        if (repo / n).exists() and not overwrite:
            raise FileExistsError(f"repo: {repo / n} exists (pass overwrite=True to replace it)")
    repo.mkdir(parents=True, exist_ok=True)
    common = dict(
        max_batch_size=max_batch_size,
        preferred_batch_sizes=preferred_batch_sizes,
        max_queue_delay_us=max_queue_delay_us,
        instance_kind=instance_kind,
        instance_count=instance_count,
        gpus=gpus,
    )
    written: dict[str, Path] = {}

    def write(model_name: str, config: dict[str, Any], files: Mapping[str, Any]) -> None:
        folder = repo / model_name
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "1").mkdir(parents=True)
        (folder / "config.pbtxt").write_text(to_pbtxt(config) + "\n")
        for rel, content in files.items():
            target = folder / rel
            if isinstance(content, Path):
                shutil.copyfile(content, target)
            else:
                target.write_text(content)
        written[model_name] = folder

    write(
        f"{base}_onnx",
        network_config(
            manifest, f"{base}_onnx", "onnxruntime", onnx_tensorrt=onnx_tensorrt, **common
        ),
        {"1/model.onnx": onnx_path},
    )
    network = f"{base}_onnx"
    if engine is not None:
        write(
            f"{base}_trt",
            network_config(manifest, f"{base}_trt", "tensorrt", **common),
            {"1/model.plan": engine},
        )
        network = f"{base}_trt"
    if ensemble:
        manifest_json = json.dumps(_manifest_dict(manifest), indent=2)
        write(
            f"{base}_align",
            align_config(manifest, f"{base}_align", python_instances),
            {"1/model.py": _ALIGN_PY, "manifest.json": manifest_json},
        )
        write(
            f"{base}_fuse",
            fuse_config(manifest, f"{base}_fuse", python_instances),
            {"1/model.py": _FUSE_PY, "manifest.json": manifest_json},
        )
        write(base, ensemble_config(manifest, base, network), {})
    _log.info("export-triton: wrote %s to %s", sorted(written), repo)
    return RepositoryInfo(
        repo=repo,
        models=written,
        ensemble=base if ensemble else None,
        network=network,
        max_batch_size=max_batch_size,
    )


def _manifest_dict(manifest: Manifest) -> dict[str, Any]:
    return manifest.to_dict()


# -- the client -----------------------------------------------------------------------------------
class TritonDetector:
    """AU detection on a Triton server; returns what :meth:`auperf.Detector.detect` returns.

    Args:
        model: the model served (a folder, a manifest, or ``None`` for the demo model): the
            client reads AU names, thresholds and the alignment template from its manifest.
        url: the server's HTTP address (``host:port``), used when ``client`` is not given.
        name: the Triton model name prefix used by :func:`export_repository` (default: the
            manifest's name, sanitised the same way).
        mode: ``"ensemble"`` (send frames and landmarks to the ensemble ``<name>``) or
            ``"model"`` (align and fuse here; send crops to ``<name>_onnx`` or ``network``).
        network: the network model name for ``mode="model"`` (default ``<name>_onnx``).
        max_batch_size: faces per request (at most the server's ``max_batch_size``).
        client: a ``tritonclient.http.InferenceServerClient`` or any object with the same
            ``infer(model_name, inputs, outputs=...)`` method.

    Raises:
        OptionalDependencyError: ``tritonclient`` is not installed (``pip install auperf[triton]``).
    """

    def __init__(
        self,
        model: str | Path | Manifest | None = None,
        *,
        url: str = "localhost:8000",
        name: str | None = None,
        mode: str = "ensemble",
        network: str | None = None,
        max_batch_size: int = 64,
        client: Any = None,
    ) -> None:
        from .. import models
        from ..detector import _check_runnable, _thresholds

        try:
            import tritonclient.http as httpclient
        except ImportError:
            raise OptionalDependencyError(
                "TritonDetector: tritonclient is not installed (pip install 'auperf[triton]')"
            ) from None
        if mode not in ("ensemble", "model"):
            raise ValueRangeError(f"mode: expected 'ensemble' or 'model', got {mode!r}")
        self._http = httpclient
        self.manifest = models.load_manifest(model)
        _check_runnable(self.manifest)
        base = name if name is not None else self.manifest.name
        self.name = "".join(c if c.isalnum() or c in "-_" else "_" for c in base)
        self.mode = mode
        self.network = network or f"{self.name}_onnx"
        self.max_batch_size = _positive(max_batch_size, "max_batch_size")
        self._thresholds = _thresholds(None, self.manifest)
        self.client = client if client is not None else httpclient.InferenceServerClient(url=url)

    def _input(self, name: str, array: np.ndarray) -> Any:
        array = np.ascontiguousarray(array)
        t = self._http.InferInput(name, list(array.shape), WIRE_DTYPES[array.dtype.name])
        t.set_data_from_numpy(array, binary_data=True)
        return t

    def _infer(self, model: str, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> Any:
        req_in = [self._input(k, v) for k, v in inputs.items()]
        req_out = [self._http.InferRequestedOutput(o, binary_data=True) for o in outputs]
        return self.client.infer(model, req_in, outputs=req_out)

    def detect(
        self,
        frames: Any,
        landmarks: Any,
        frame_index: Any = None,
        *,
        frames_order: str = "RGB",
        invalid: str = "raise",
    ) -> Any:
        """Detect AUs; arguments, conventions, errors and result as
        :meth:`auperf.Detector.detect` (frames are NumPy arrays here)."""
        from .._aligned import align_batch
        from ..detector import DetectionResult, to_five_points

        batch = align_batch(
            frames,
            landmarks,
            frame_index,
            np.asarray(self.manifest.input.alignment.points, dtype=np.float64),
            self.manifest.input.size,
            frames_order=frames_order,
            invalid=invalid,
        )
        frames, fidx, valid = batch.frames, batch.frame_index, batch.valid
        if frames_order == "BGR":
            frames = np.ascontiguousarray(frames[..., ::-1])
        points = to_five_points(landmarks)
        n = len(batch)
        num_aus = len(self.manifest.aus)
        probs = np.full((n, num_aus), np.nan, dtype=np.float32)
        active = np.zeros((n, num_aus), dtype=bool)
        boxes = np.full((n, 4), np.nan, dtype=np.float64)
        good = np.flatnonzero(valid)
        for start in range(0, good.size, self.max_batch_size):
            rows = good[start : start + self.max_batch_size]
            used, local = np.unique(fidx[rows], return_inverse=True)
            sub_frames = frames[used]
            if self.mode == "ensemble":
                res = self._infer(
                    self.name,
                    {
                        "FRAMES": sub_frames,
                        "LANDMARKS": points[rows],
                        "FRAME_INDEX": local.astype(np.int64),
                    },
                    ("PROBABILITIES", "ACTIVE", "BOXES"),
                )
                probs[rows] = res.as_numpy("PROBABILITIES")
                active[rows] = res.as_numpy("ACTIVE")
                boxes[rows] = res.as_numpy("BOXES")
            else:
                crops, b = align_faces(self.manifest, sub_frames, points[rows], local)
                logits_name = self.manifest.postprocess.input
                res = self._infer(self.network, {self.manifest.input.name: crops}, (logits_name,))
                p, a = fuse_logits(res.as_numpy(logits_name), self._thresholds)
                probs[rows], active[rows], boxes[rows] = p, a, b
        return DetectionResult(
            probabilities=probs,
            active=active,
            au_ids=tuple(self.manifest.au_ids),
            au_names=tuple(self.manifest.au_names),
            frame_index=fidx,
            boxes=boxes,
            valid=valid,
            thresholds=self._thresholds.copy(),
        )
