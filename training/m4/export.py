"""Export the TCAE encoder for feature extraction: ONNX + manifest (task ``features``) +
safetensors.

The exported graph is :class:`auperf.nets.m4.M4Features`: input ``"image"`` ``(batch, 3, S, S)``
float32, RGB, NCHW, ``(pixel - 127.5) / 127.5``, aligned to ``auperf.align.template(S)``;
outputs ``"au_embedding"`` ``(batch, D)`` (``phi``) and ``"pose_embedding"`` ``(batch, D')``
(``psi``), float32. The batch dimension is dynamic. The file is checked with
``onnx.checker`` and ONNX shape inference, and onnxruntime (CPU) must reproduce torch within
``atol`` on a batch of another size than the traced one.

``<name>.safetensors`` beside it holds the encoder's state dict (keys ``backbone.*``,
``au_proj.*``, ``pose_proj.*``; metadata ``format = auperf-weights``, ``method = M4``,
``backbone``); its ``backbone.*`` tensors are what M0's ``backbone_init`` loads.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from auperf import __version__ as auperf_version
from auperf.errors import AuperfError
from auperf.manifest import (
    AlignmentSpec,
    Manifest,
    OutputSpec,
    PostprocessSpec,
    TrainingInfo,
)
from auperf.nets.m4 import M4Features, TCAEEncoder

from ..common.onnx_export import crop_input_spec, onnx_file_spec

__all__ = ["M4ExportError", "M4ExportResult", "export_m4", "encoder_alignment", "MEAN", "STD"]

_log = logging.getLogger("auperf.training")
INPUT_NAME = "image"
AU_OUTPUT = "au_embedding"
POSE_OUTPUT = "pose_embedding"
#: Input normalisation in 8-bit units: value = (pixel - 127.5) / 127.5 = 2 * pixel / 255 - 1.
MEAN = (127.5, 127.5, 127.5)
STD = (127.5, 127.5, 127.5)


class M4ExportError(AuperfError, RuntimeError):
    """The exported encoder failed a check (ONNX checker, shape inference, onnxruntime parity)."""


@dataclass
class M4ExportResult:
    """What :func:`export_m4` wrote: the ONNX file, the manifest (path and object), the weights
    file, and the largest |onnxruntime - torch| of the parity check."""

    onnx_path: Path
    manifest_path: Path
    manifest: Manifest
    weights_path: Path
    max_abs_diff: float


def encoder_alignment(image_size: int) -> AlignmentSpec:
    """The crop the encoder sees: the 5 points on ``auperf.align.template(S)`` (whole crop)."""
    from auperf import align

    pts = np.asarray(align.template(image_size), dtype=np.float64)
    return AlignmentSpec(
        template=f"arcface5_{image_size}",
        points=tuple((float(x), float(y)) for x, y in pts),
    )


def _export_onnx(encoder: TCAEEncoder, path: Path, size: int, atol: float, opset: int) -> float:
    import onnx
    import onnxruntime as ort

    wrapper = M4Features(encoder).cpu().eval()
    gen = torch.Generator().manual_seed(0)
    dummy = torch.randn(2, 3, size, size, generator=gen)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[AU_OUTPUT, POSE_OUTPUT],
            dynamic_axes={
                INPUT_NAME: {0: "batch"},
                AU_OUTPUT: {0: "batch"},
                POSE_OUTPUT: {0: "batch"},
            },
            opset_version=opset,
            dynamo=False,
        )
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise M4ExportError(f"{path}: onnx.checker failed: {exc}") from None
    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    want = {AU_OUTPUT: ["batch", encoder.au_dim], POSE_OUTPUT: ["batch", encoder.pose_dim]}
    for o in inferred.graph.output:
        dims = [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim]
        if o.name in want and dims != want[o.name]:
            raise M4ExportError(
                f"{path}: output {o.name!r} has shape {dims}, expected {want[o.name]}"
            )
    x = torch.randn(3, 3, size, size, generator=gen).clamp(-1, 1)
    with torch.no_grad():
        ref = [t.numpy() for t in wrapper(x)]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run([AU_OUTPUT, POSE_OUTPUT], {INPUT_NAME: x.numpy()})
    diff = max(float(np.max(np.abs(g - r))) for g, r in zip(got, ref, strict=True))
    if not diff <= atol:
        raise M4ExportError(f"{path}: onnxruntime differs from torch by {diff:.3g} > {atol:g}")
    return diff


def export_m4(
    encoder: TCAEEncoder,
    out_dir: str | Path,
    *,
    name: str,
    image_size: int,
    training_data: str,
    metrics: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    description: str = "",
    atol: float = 1e-4,
    opset: int = 17,
) -> M4ExportResult:
    """Write ``<name>.onnx``, ``<name>.safetensors`` and the manifest ``<name>.json``.

    Args:
        encoder: the trained encoder (exported on CPU in eval mode; its mode and device are
            restored).
        out_dir: the folder (created).
        name: model name and file stem.
        image_size: side ``S`` of the input crops.
        training_data: what it was trained on (manifest ``training.data``).
        metrics: numbers for the manifest (``training.metrics``).
        config: the run configuration (``training.config``; should hold ``backbone``).
        description: free text.

    Raises:
        M4ExportError: a check failed.
    """
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    onnx_path, weights_path = out / f"{name}.onnx", out / f"{name}.safetensors"
    was_training = encoder.training
    device = next(encoder.parameters()).device
    try:
        encoder.cpu().eval()
        diff = _export_onnx(encoder, onnx_path, image_size, atol, opset)
        state = encoder.state_dict()
        tensors = {k: state[k].detach().cpu().contiguous().clone() for k in sorted(state)}
        save_file(
            tensors,
            str(weights_path),
            metadata={
                "format": "auperf-weights",
                "method": "M4",
                "backbone": encoder.backbone_name,
            },
        )
    finally:
        encoder.to(device)
        encoder.train(was_training)
    manifest = Manifest(
        name=name,
        method="M4",
        task="features",
        created=Manifest.now(),
        description=description
        or "TCAE encoder: aligned face -> AU embedding (phi) and pose embedding (psi)",
        aus=(),
        thresholds=(),
        input=crop_input_spec(
            INPUT_NAME, image_size, encoder_alignment(image_size), mean=MEAN, std=STD
        ),
        outputs=(
            OutputSpec(
                AU_OUTPUT,
                ("batch", encoder.au_dim),
                "float32",
                "AU embedding phi of the TCAE encoder",
            ),
            OutputSpec(
                POSE_OUTPUT,
                ("batch", encoder.pose_dim),
                "float32",
                "pose embedding psi of the TCAE encoder",
            ),
        ),
        postprocess=PostprocessSpec("none", AU_OUTPUT),
        model=onnx_file_spec(onnx_path, opset, weights_path),
        training=TrainingInfo(
            data=training_data,
            metrics=dict(metrics or {}),
            config=config,
            auperf_version=auperf_version,
        ),
    )
    manifest_path = out / f"{name}.json"
    manifest.save(manifest_path)
    _log.info("exported %s (max |ort - torch| = %.3g)", onnx_path, diff)
    return M4ExportResult(
        onnx_path, manifest_path, Manifest.load(manifest_path), weights_path, diff
    )
