"""Export M1's inference path to ONNX with its manifest.

The exported graph is :class:`auperf.nets.m1.M1Inference` (``E_A -> a -> F_au -> GCN``):
input ``"image"`` ``(batch, 3, S, S)`` float32, ``(pixel - 127.5) / 127.5`` RGB, aligned to
``auperf.align.template(S)`` (the crop the trainer saw); output ``"logits"`` ``(batch, 1, C)``,
a view axis of length 1, so that the manifest's ``fuse_views`` post-processing (task
``au_occurrence``) gives ``sigmoid(logits[:, 0])`` and :class:`auperf.Detector` serves the model
as it serves M0. The GCN adjacency is a constant of the graph. The file is checked with
``onnx.checker``, its output shape by ONNX shape inference, and onnxruntime must reproduce torch
within ``atol`` on a batch of another size than the traced one.

Beside it, ``<name>.safetensors`` holds the :class:`~auperf.nets.m1.M1Net` state dict (adjacency
included) with the constructor arguments in its metadata (:func:`load_m1_weights` rebuilds the
network). The manifest does not reference it: the runtime's torch backend builds M0 networks only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from auperf import __version__ as auperf_version
from auperf.errors import ParameterError
from auperf.manifest import (
    AlignmentSpec,
    AUSpec,
    Manifest,
    OutputSpec,
    PostprocessSpec,
    TrainingInfo,
)
from auperf.nets.m1 import M1Inference, M1Net

from ..common.onnx_export import ExportError, crop_input_spec, export_checked, onnx_file_spec

__all__ = ["M1ExportResult", "export_m1", "load_m1_weights", "m1_alignment", "MEAN", "STD"]

INPUT_NAME, OUTPUT_NAME = "image", "logits"
MEAN = (127.5, 127.5, 127.5)
STD = (127.5, 127.5, 127.5)


@dataclass
class M1ExportResult:
    """What :func:`export_m1` wrote: ``onnx_path``, ``manifest_path``, ``weights_path``,
    ``manifest`` and ``max_abs_diff`` (largest |onnxruntime - torch| on the parity batch)."""

    onnx_path: Path
    manifest_path: Path
    weights_path: Path
    manifest: Manifest
    max_abs_diff: float


def m1_alignment(input_size: int) -> AlignmentSpec:
    """The 5-point template of the M1 crop: ``auperf.align.template(S)`` (no centre crop)."""
    from auperf import align

    pts = np.asarray(align.template(input_size), dtype=np.float64)
    return AlignmentSpec(
        template=f"arcface5_{input_size}", points=tuple((float(x), float(y)) for x, y in pts)
    )


def _parity_input(batch: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    low = torch.randn(batch, 3, max(size // 8, 1), max(size // 8, 1), generator=gen)
    x = torch.nn.functional.interpolate(
        low, size=(size, size), mode="bilinear", align_corners=False
    )
    return (x + torch.randn(batch, 1, 1, 1, generator=gen)).clamp(-1, 1)


def load_m1_weights(path: str | Path) -> M1Net:
    """Rebuild an :class:`M1Net` from a weights file written by :func:`export_m1`."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "auperf-m1-weights":
        raise ParameterError(
            f"path: {path} is not an M1 weights file (format {meta.get('format')!r})"
        )
    kw = json.loads(meta["config"])
    tensors = load_file(str(path))
    net = M1Net(adjacency=tensors["graph.adjacency"].numpy(), **kw)
    net.load_state_dict(tensors, strict=True)
    return net.eval()


def export_m1(
    net: M1Net,
    out_dir: str | Path,
    *,
    name: str,
    au_ids: Sequence[int],
    au_names: Sequence[str],
    input_size: int,
    training_data: str,
    thresholds: Sequence[float] | None = None,
    metrics: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
    description: str = "M1 identity-disentangled AU detector (inference path E_A -> F_au -> GCN)",
    opset: int = 17,
    atol: float = 1e-4,
) -> M1ExportResult:
    """Write ``<out_dir>/<name>.onnx``, ``<name>.safetensors`` and the manifest ``<name>.json``.

    Raises:
        ParameterError: AU lists that do not match the network, ``opset < 17``.
        ExportError: a check of the exported graph failed.
    """
    import onnxruntime as ort

    c = net.num_aus
    if len(au_ids) != c or len(au_names) != c:
        raise ParameterError(
            f"au_ids, au_names: expected {c} each, got {len(au_ids)} and {len(au_names)}"
        )
    if opset < 17:
        raise ParameterError(f"opset: expected >= 17, got {opset}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / f"{name}.onnx"
    was = net.training
    wrapper = M1Inference(net).cpu().eval()
    try:
        export_checked(
            wrapper,
            _parity_input(2, input_size, 0),
            onnx_path,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            expected_dims=["batch", 1, c],
            opset=opset,
        )
        x = _parity_input(3, input_size, 1)
        with torch.no_grad():
            ref = wrapper(x).numpy()
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        diff = float(np.max(np.abs(got - ref)))
        if not diff <= atol:
            raise ExportError(
                f"{onnx_path}: onnxruntime differs from torch by {diff:.3g} > {atol:g}"
            )
    finally:
        net.train(was)
    weights_path = out_dir / f"{name}.safetensors"
    save_file(
        {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()},
        str(weights_path),
        metadata={"format": "auperf-m1-weights", "config": json.dumps(net.config())},
    )
    th = [0.5] * c if thresholds is None else [float(t) for t in thresholds]
    manifest = Manifest(
        name=name,
        method="M1",
        task="au_occurrence",
        description=description,
        created=Manifest.now(),
        aus=tuple(AUSpec(int(i), str(n)) for i, n in zip(au_ids, au_names, strict=True)),
        thresholds=tuple(th),
        input=crop_input_spec(INPUT_NAME, input_size, m1_alignment(input_size), mean=MEAN, std=STD),
        outputs=(
            OutputSpec(
                name=OUTPUT_NAME,
                shape=("batch", 1, c),
                dtype="float32",
                meaning=(
                    "AU logits (one view on axis 1); probability = sigmoid, active iff >= threshold"
                ),
            ),
        ),
        postprocess=PostprocessSpec(kind="fuse_views", input=OUTPUT_NAME),
        model=onnx_file_spec(onnx_path, opset),
        training=TrainingInfo(
            data=training_data,
            metrics=dict(metrics or {}),
            config=config,
            auperf_version=auperf_version,
        ),
    )
    manifest_path = out_dir / f"{name}.json"
    manifest.save(manifest_path)
    return M1ExportResult(
        onnx_path, manifest_path, weights_path, Manifest.load(manifest_path), diff
    )
