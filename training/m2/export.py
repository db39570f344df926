"""Export a trained M2 network: ONNX graph, safetensors weights and an ``expression`` manifest.

The graph is :class:`auperf.nets.m2.M2Inference`: input ``"image"`` ``(batch, 3, S, S)`` float32
(normalised as the manifest says), output ``"logits"`` ``(batch, C)``, the importance-weighted
class logits; class probabilities are their softmax (manifest ``postprocess.kind =
"softmax"``), classes named in the manifest's ``classes``. The batch dimension is dynamic.
After export the file passes ``onnx.checker``, ONNX shape inference must give
``["batch", C]``, and onnxruntime (CPU) must reproduce torch within ``atol`` on a batch of
another size than the traced one. The weights file ``<name>.safetensors`` holds the
:class:`~auperf.nets.m2.M2Net` state dict (float32, tensors sorted, metadata
``format = auperf-weights``, ``method = M2``, ``backbone``, ``num_classes``); it is read back
into a fresh network that must reproduce the graph's output within ``atol``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auperf import __version__ as auperf_version
from auperf.errors import ParameterError
from auperf.manifest import (
    Manifest,
    OutputSpec,
    PostprocessSpec,
    TrainingInfo,
    sha256_file,
)
from auperf.nets.m2 import M2Inference, M2Net

from ..common.onnx_export import ExportError, crop_input_spec, export_checked, onnx_file_spec
from ..m0.config import IMAGENET_MEAN, IMAGENET_STD
from ..m0.export import (
    WEIGHTS_FORMAT,
    _parity_input,
    _write_safetensors,
    default_alignment,
)

__all__ = ["M2ExportResult", "export_m2", "load_m2_weights"]

_log = logging.getLogger("auperf.training")
INPUT_NAME = "image"
OUTPUT_NAME = "logits"


@dataclass
class M2ExportResult:
    """What :func:`export_m2` wrote: paths, manifest and the parity differences."""

    onnx_path: Path
    weights_path: Path
    manifest_path: Path
    manifest: Manifest
    onnx_max_abs_diff: float
    weights_max_abs_diff: float


def load_m2_weights(path: str | Path) -> M2Net:
    """A network rebuilt from a weights file written by :func:`export_m2` (safetensors, no
    pickle; architecture from its metadata).

    Raises:
        ExportError: the file is not an M2 weights file or does not fit the network.
    """
    from safetensors import safe_open

    path = Path(path)
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if meta.get("format") != WEIGHTS_FORMAT or meta.get("method") != "M2":
        raise ExportError(f"{path}: not an M2 weights file (metadata {meta})")
    net = M2Net(
        int(meta["num_classes"]), meta["backbone"], importance="importance.weight" in tensors
    )
    missing, unexpected = net.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise ExportError(f"{path}: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return net.eval()


def export_m2(
    net: M2Net,
    out_dir: str | Path,
    *,
    name: str,
    classes: Sequence[str],
    input_size: int,
    training_data: str,
    metrics: dict[str, Any] | None = None,
    colour_order: str = "RGB",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    config: dict[str, Any] | None = None,
    description: str = "",
    opset: int = 17,
    atol: float = 1e-4,
) -> M2ExportResult:
    """Write ``<out_dir>/<name>.{onnx,safetensors,json}`` and check them (see the module).

    Raises:
        ParameterError: ``len(classes) != net.num_classes`` or ``opset < 17``.
        ExportError: a check failed.
    """
    import onnxruntime as ort

    if len(classes) != net.num_classes:
        raise ParameterError(
            f"classes: expected {net.num_classes} names, got {len(classes)} ({list(classes)})"
        )
    if opset < 17:
        raise ParameterError(f"opset: expected >= 17, got {opset}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    weights_path = out_dir / f"{name}.safetensors"
    was_training = net.training
    device = next(net.parameters()).device
    net = net.cpu().eval()
    wrapper = M2Inference(net).eval()
    try:
        dummy = torch.randn(
            2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0)
        )
        export_checked(
            wrapper,
            dummy,
            onnx_path,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            expected_dims=["batch", net.num_classes],
            opset=opset,
        )
        x = _parity_input(3, input_size, input_size, 0)
        with torch.no_grad():
            ref = wrapper(x).numpy()
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        onnx_diff = float(np.max(np.abs(got - ref)))
        if not onnx_diff <= atol:
            raise ExportError(
                f"{onnx_path}: onnxruntime differs from torch by {onnx_diff:.3g} > atol {atol:g}"
            )
        onnx_sha = sha256_file(onnx_path)
        tensors = {
            k: v.detach().float() if v.is_floating_point() else v.detach()
            for k, v in net.state_dict().items()
        }
        meta = {
            "format": WEIGHTS_FORMAT,
            "method": "M2",
            "backbone": net.backbone_name,
            "num_classes": str(net.num_classes),
            "name": name,
            "onnx_file": onnx_path.name,
            "onnx_sha256": onnx_sha,
        }
        tmp = weights_path.with_name(weights_path.name + ".tmp")
        _write_safetensors(tensors, tmp, meta)
        tmp.chmod(0o644)
        tmp.replace(weights_path)
        with torch.no_grad():
            again = M2Inference(load_m2_weights(weights_path))(x).numpy()
        weights_diff = float(np.max(np.abs(again - ref)))
        if not weights_diff <= atol:
            raise ExportError(
                f"{weights_path}: reloaded weights differ from the network by {weights_diff:.3g}"
            )
    finally:
        net.to(device)
        net.train(was_training)
    manifest = Manifest(
        name=name,
        method="M2",
        task="expression",
        description=description,
        created=Manifest.now(),
        aus=(),
        thresholds=(),
        classes=tuple(str(c) for c in classes),
        input=crop_input_spec(
            INPUT_NAME,
            input_size,
            default_alignment(input_size),
            mean=mean,
            std=std,
            colour_order=colour_order,
        ),
        outputs=(
            OutputSpec(
                name=OUTPUT_NAME,
                shape=("batch", net.num_classes),
                dtype="float32",
                meaning=(
                    "importance-weighted class logits, classes in the order of 'classes'; "
                    "class probabilities = softmax over axis 1"
                ),
            ),
        ),
        postprocess=PostprocessSpec(kind="softmax", input=OUTPUT_NAME),
        model=onnx_file_spec(onnx_path, opset, weights_path),
        training=TrainingInfo(
            data=training_data,
            metrics=dict(metrics or {}),
            config=config,
            auperf_version=auperf_version,
        ),
    )
    manifest_path = out_dir / f"{name}.json"
    manifest.save(manifest_path)
    _log.info(
        "exported %s (|ort - torch| %.3g, |weights - net| %.3g)", onnx_path, onnx_diff, weights_diff
    )
    return M2ExportResult(
        onnx_path,
        weights_path,
        manifest_path,
        Manifest.load(manifest_path),
        onnx_diff,
        weights_diff,
    )
