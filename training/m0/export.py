"""Export a trained M0 network to ONNX with its manifest.

The exported graph is :class:`auperf.nets.m0.M0Inference`: input ``"image"`` ``(batch, 3, S, S)``
float32 (normalised as the manifest says), output ``"logits"`` ``(batch, 2, L)``: both views'
clean logits. The batch dimension is dynamic. After export the file is checked with
``onnx.checker``, its output shape is confirmed by ONNX shape inference, and onnxruntime (CPU)
must reproduce torch's output within ``atol`` on a batch of a different size than the one
traced; then the manifest is written with the file's sha256.

Beside the ONNX file :func:`export_m0` writes ``<name>.safetensors``, the weights the torch
backend (``auperf.backends.torch``) loads: the state dict of :class:`auperf.nets.m0.M0Net`
without the training-only noisy heads (keys ``views.<v>.backbone.*``, ``views.<v>.clean_head.*``,
batch-norm buffers included), float32, metadata ``format = auperf-weights``. It is read back
with the backend's own loader into a fresh network, which must reproduce the exported graph's
output within ``atol``. The manifest format (version 1) has no field for this file; the torch
backend finds it by name (:func:`auperf.models.weights_path`), and its sha256 is in
:attr:`ExportResult.weights_sha256`.

Example::

    result = export_m0(net, "out/", name="m0-r34-bp4d", au_ids=cfg.au_ids,
                       au_names=cfg.au_names, input_size=224, training_data="BP4D folds 1-2")
    result.manifest_path   # out/m0-r34-bp4d.json
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
    AlignmentSpec,
    AUSpec,
    Manifest,
    OutputSpec,
    PostprocessSpec,
    TrainingInfo,
    sha256_file,
)
from auperf.nets.m0 import NUM_VIEWS, M0Inference, M0Net

from ..common.onnx_export import ExportError, crop_input_spec, export_checked, onnx_file_spec
from .config import IMAGENET_MEAN, IMAGENET_STD

__all__ = [
    "ExportError",
    "ExportResult",
    "WEIGHTS_FORMAT",
    "default_alignment",
    "export_m0",
    "export_onnx",
    "export_weights",
]

_log = logging.getLogger("auperf.training")
INPUT_NAME = "image"
OUTPUT_NAME = "logits"
#: ``format`` metadata of the weights file beside the ONNX file.
WEIGHTS_FORMAT = "auperf-weights"
# State-dict keys the runtime does not use (the torch backend builds M0Net without noisy heads).
_TRAINING_ONLY_PREFIX = "noisy_head."


@dataclass
class ExportResult:
    """What :func:`export_m0` wrote.

    Attributes:
        onnx_path: the ONNX file.
        manifest_path: the manifest JSON.
        manifest: the manifest.
        max_abs_diff: largest |onnxruntime - torch| on the parity batch.
        weights_path: the torch backend's weights file (``<name>.safetensors``), or ``None``
            when not written.
        weights_sha256: its sha256 (hex), or ``None``.
        weights_max_abs_diff: largest |weights reloaded by the torch backend - exported
            network| on the parity batch, or ``None``.
    """

    onnx_path: Path
    manifest_path: Path
    manifest: Manifest
    max_abs_diff: float
    weights_path: Path | None = None
    weights_sha256: str | None = None
    weights_max_abs_diff: float | None = None


def default_alignment(input_size: int) -> AlignmentSpec:
    """The M0 crop: the 5-point template warped to ``round(S * 256 / 224)`` pixels, centre
    ``S`` crop (at S = 224: the 256 template shifted by 16 pixels), from :mod:`auperf.align`."""
    from auperf import align

    full = int(round(input_size * 256 / 224))
    offset = (full - input_size) / 2.0
    pts = np.asarray(align.template(full), dtype=np.float64) - offset
    return AlignmentSpec(
        template=f"arcface5_{full}_centre{input_size}",
        points=tuple((float(x), float(y)) for x, y in pts),
    )


def export_onnx(
    net: M0Net,
    path: str | Path,
    input_size: int | tuple[int, int],
    *,
    opset: int = 17,
    atol: float = 1e-4,
    check_batch: int = 3,
    seed: int = 0,
) -> float:
    """Export the inference graph of ``net`` and check it.

    Args:
        net: the trained network (exported in eval mode on CPU; its mode is restored).
        path: the ``.onnx`` file to write.
        input_size: ``S`` or ``(H, W)``.
        opset: ONNX opset (>= 17).
        atol: largest allowed |onnxruntime - torch|.
        check_batch: batch size of the parity check (differs from the traced batch of 2, so the
            dynamic batch is exercised).
        seed: seed of the random parity input.

    Returns:
        The largest absolute difference found.

    Raises:
        ExportError: a check failed.
        ParameterError: ``opset < 17``.
    """
    import onnxruntime as ort

    if opset < 17:
        raise ParameterError(f"opset: expected >= 17, got {opset}")
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    device = next(net.parameters()).device
    wrapper = M0Inference(net).cpu().eval()
    try:
        gen = torch.Generator().manual_seed(seed)
        dummy = torch.randn(2, 3, h, w, generator=gen)
        export_checked(
            wrapper,
            dummy,
            path,
            input_name=INPUT_NAME,
            output_name=OUTPUT_NAME,
            expected_dims=["batch", NUM_VIEWS, net.num_aus],
            opset=opset,
        )

        # Smooth random images with a per-face offset, so faces give different outputs.
        low = torch.randn(check_batch, 3, max(h // 8, 1), max(w // 8, 1), generator=gen)
        x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
        x = x + torch.randn(check_batch, 1, 1, 1, generator=gen)
        with torch.no_grad():
            ref = wrapper(x).numpy()
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = sess.run([OUTPUT_NAME], {INPUT_NAME: x.numpy()})[0]
        if got.shape != ref.shape:
            raise ExportError(f"{path}: onnxruntime output shape {got.shape}, torch {ref.shape}")
        diff = float(np.max(np.abs(got - ref)))
        if not diff <= atol:
            raise ExportError(
                f"{path}: onnxruntime differs from torch by {diff:.3g} > atol {atol:g}"
            )
    finally:
        net.to(device)
        net.train(was_training)
    _log.info("exported %s (max |ort - torch| = %.3g)", path, diff)
    return diff


_SAFETENSORS_DTYPES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def _write_safetensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]
) -> None:
    """Write a safetensors file whose bytes depend on its contents only (tensors sorted by name,
    metadata keys sorted), so that exporting the same network twice gives the same sha256.
    (``safetensors.torch.save_file`` orders the metadata of a run at random.)"""
    import json
    import sys

    if sys.byteorder != "little":
        raise ExportError(f"{path}: safetensors is little-endian; this machine is {sys.byteorder}")
    header: dict[str, Any] = {"__metadata__": dict(sorted(metadata.items()))}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to("cpu").contiguous()
        if t.dtype not in _SAFETENSORS_DTYPES:
            raise ExportError(f"{path}: tensor {name!r} has unsupported dtype {t.dtype}")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for data in blobs:
            f.write(data)


def _parity_input(batch: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Smooth random images with a per-face offset, so faces give different outputs."""
    gen = torch.Generator().manual_seed(seed)
    low = torch.randn(batch, 3, max(h // 8, 1), max(w // 8, 1), generator=gen)
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return x + torch.randn(batch, 1, 1, 1, generator=gen)


def export_weights(
    net: M0Net,
    path: str | Path,
    input_size: int | tuple[int, int],
    *,
    metadata: dict[str, str] | None = None,
    atol: float = 1e-4,
    check_batch: int = 3,
    seed: int = 1,
) -> float:
    """Write the weights the torch backend loads and check that they reproduce ``net``.

    The file holds ``net.state_dict()`` without the training-only noisy-head tensors, on the CPU
    in float32, with metadata ``format = auperf-weights`` plus ``metadata``; its bytes depend
    on these only (the same network gives the same sha256). It is then loaded
    with :func:`auperf.backends.torch.load_weights` into a fresh ``M0Net`` without noisy heads
    (what the backend builds), whose inference output must equal ``net``'s within ``atol``.

    Args:
        net: the trained network (its mode and device are restored).
        path: the ``.safetensors`` file to write.
        input_size: ``S`` or ``(H, W)`` of the parity input.
        metadata: extra string metadata (e.g. the model name and the ONNX sha256).
        atol: largest allowed difference of the reloaded network's logits.
        check_batch: faces in the parity batch.
        seed: seed of the parity input.

    Returns:
        The largest absolute difference found.

    Raises:
        ExportError: the reloaded weights do not reproduce ``net``.
        ParameterError: a non-string metadata entry.
    """
    from auperf.backends.torch import load_weights as backend_load_weights

    meta = {"format": WEIGHTS_FORMAT}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ParameterError(f"metadata[{k!r}]: expected a string value, got {v!r}")
        meta[k] = v
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {
        k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
        for k, v in net.state_dict().items()
        if _TRAINING_ONLY_PREFIX not in k
    }
    tmp = path.with_name(path.name + ".tmp")
    _write_safetensors(tensors, tmp, meta)
    tmp.chmod(0o644)  # a file to ship, readable like the ONNX beside it
    tmp.replace(path)

    was_training = net.training
    device = next(net.parameters()).device
    try:
        fresh = M0Net(net.num_aus, net.backbone_name, noisy_heads=False)
        backend_load_weights(fresh, path)
        x = _parity_input(check_batch, h, w, seed)
        with torch.no_grad():
            ref = M0Inference(net).cpu().eval()(x).numpy()
            got = M0Inference(fresh).eval()(x).numpy()
    finally:
        net.to(device)
        net.train(was_training)
    diff = float(np.max(np.abs(got - ref)))
    if not diff <= atol:
        raise ExportError(
            f"{path}: the weights reloaded by the torch backend differ from the exported "
            f"network by {diff:.3g} > atol {atol:g}"
        )
    _log.info("wrote %s (max |reloaded - net| = %.3g)", path, diff)
    return diff


def export_m0(
    net: M0Net,
    out_dir: str | Path,
    *,
    name: str,
    au_ids: Sequence[int],
    au_names: Sequence[str],
    input_size: int,
    training_data: str,
    metrics: dict[str, Any] | None = None,
    thresholds: Sequence[float] | None = None,
    alignment: AlignmentSpec | None = None,
    colour_order: str = "RGB",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    config: dict[str, Any] | None = None,
    description: str = "",
    opset: int = 17,
    atol: float = 1e-4,
    weights: bool = True,
) -> ExportResult:
    """Export ``net`` to ``<out_dir>/<name>.onnx``, write the torch backend's weights
    ``<out_dir>/<name>.safetensors`` (:func:`export_weights`) and the manifest
    ``<out_dir>/<name>.json``.

    Args:
        net: the trained network.
        out_dir: output folder (created).
        name: model name (file stem).
        au_ids, au_names: the AUs in output order (``L`` each).
        input_size: side ``S`` of the square input.
        training_data: what the model was trained on (free text for the manifest).
        metrics: evaluation results to record (name -> number or nested mapping).
        thresholds: per-AU thresholds (default 0.5 each), e.g. from
            :func:`training.common.metrics.tune_thresholds`.
        alignment: the crop template (default :func:`default_alignment`).
        colour_order, mean, std: input normalisation in 8-bit pixel units.
        config: the run configuration to record.
        description: free text.
        opset, atol: see :func:`export_onnx` (``atol`` also bounds the weights check).
        weights: write ``<name>.safetensors`` (default True).

    Returns:
        :class:`ExportResult`.
    """
    if len(au_ids) != net.num_aus or len(au_names) != net.num_aus:
        raise ParameterError(
            f"au_ids, au_names: expected {net.num_aus} each, got {len(au_ids)} and {len(au_names)}"
        )
    out_dir = Path(out_dir)
    onnx_path = out_dir / f"{name}.onnx"
    diff = export_onnx(net, onnx_path, input_size, opset=opset, atol=atol)
    onnx_sha = sha256_file(onnx_path)
    weights_path, weights_sha, weights_diff = None, None, None
    if weights:
        weights_path = onnx_path.with_suffix(".safetensors")
        weights_diff = export_weights(
            net,
            weights_path,
            input_size,
            metadata={"name": name, "onnx_file": onnx_path.name, "onnx_sha256": onnx_sha},
            atol=atol,
        )
        weights_sha = sha256_file(weights_path)
    if alignment is None:
        alignment = default_alignment(input_size)
    th = [0.5] * net.num_aus if thresholds is None else [float(t) for t in thresholds]
    manifest = Manifest(
        name=name,
        method="M0",
        task="au_occurrence",
        description=description,
        created=Manifest.now(),
        aus=tuple(AUSpec(int(i), str(n)) for i, n in zip(au_ids, au_names, strict=True)),
        thresholds=tuple(th),
        input=crop_input_spec(
            INPUT_NAME, input_size, alignment, mean=mean, std=std, colour_order=colour_order
        ),
        outputs=(
            OutputSpec(
                name=OUTPUT_NAME,
                shape=("batch", NUM_VIEWS, net.num_aus),
                dtype="float32",
                meaning=(
                    "clean-head logits of the two views (axis 1); AU probability = "
                    "sigmoid(mean over axis 1), active iff probability >= threshold"
                ),
            ),
        ),
        postprocess=PostprocessSpec(kind="fuse_views", input=OUTPUT_NAME),
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
    return ExportResult(
        onnx_path,
        manifest_path,
        Manifest.load(manifest_path),
        diff,
        weights_path,
        weights_sha,
        weights_diff,
    )
