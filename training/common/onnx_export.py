"""ONNX export with the checks every trainer's exporter runs.

:func:`export_checked` writes a network with the TorchScript exporter (``dynamo=False``, the
one auperf uses for inference graphs: opset 17, a dynamic batch axis), then runs
``onnx.checker`` (full check) and ONNX shape inference, and refuses a graph whose output
shape is not the expected one. Numerical parity with torch is each exporter's own check,
since what "the same" means (which outputs, which tolerance) differs per method.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import torch

from auperf.errors import AuperfError
from auperf.manifest import AlignmentSpec, InputSpec, ModelFileSpec, WeightsFileSpec

__all__ = [
    "ExportError",
    "crop_input_spec",
    "export_checked",
    "onnx_file_spec",
    "output_dims",
]


class ExportError(AuperfError, RuntimeError):
    """The exported graph failed a check (ONNX checker, shape inference, onnxruntime parity)."""


def output_dims(path: str | Path, name: str) -> list[str | int]:
    """The shape ONNX shape inference gives output ``name`` of the graph at ``path``: symbolic
    dimensions by name, fixed ones as ints; ``[]`` when there is no such output."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    outs = [o for o in inferred.graph.output if o.name == name]
    if not outs:
        return []
    return [d.dim_param or d.dim_value for d in outs[0].type.tensor_type.shape.dim]


def export_checked(
    module: torch.nn.Module,
    dummy: torch.Tensor,
    path: str | Path,
    *,
    input_name: str,
    output_name: str,
    expected_dims: Sequence[str | int],
    opset: int = 17,
) -> None:
    """Export ``module`` (called on one input) to ``path`` and check the result.

    Args:
        module: the inference graph, in eval mode, on the CPU.
        dummy: an example input ``(B, ...)``; axis 0 is exported as the symbolic ``batch``.
        path: the ``.onnx`` file to write.
        input_name, output_name: graph input and output names.
        expected_dims: the output's shape as shape inference must report it, e.g.
            ``["batch", 2, 15]``.
        opset: ONNX opset.

    Raises:
        ExportError: the checker failed or the output shape differs.
    """
    import onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        # The TorchScript exporter (dynamo=False) is the one auperf uses on purpose.
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            module,
            (dummy,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{path}: onnx.checker failed: {exc}") from None
    dims = output_dims(path, output_name)
    if dims != list(expected_dims):
        raise ExportError(
            f"{path}: output {output_name!r} has shape {dims}, expected {list(expected_dims)}"
        )


def crop_input_spec(
    name: str,
    size: int,
    alignment: AlignmentSpec,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    colour_order: str = "RGB",
) -> InputSpec:
    """The manifest input of a network fed square aligned crops by ``warp_faces``: ``(B, 3,
    size, size)`` float32 NCHW, ``(pixel - mean) / std`` per channel in 8-bit units."""
    return InputSpec(
        name=name,
        size=(size, size),
        channels=3,
        colour_order=colour_order,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
        layout="NCHW",
        dtype="float32",
        alignment=alignment,
    )


def onnx_file_spec(onnx_path: Path, opset: int, weights_path: Path | None = None) -> ModelFileSpec:
    """The manifest's ``model`` entry: the ONNX file and, when given, the safetensors weights
    beside it, each with its sha256."""
    from auperf.manifest import sha256_file

    weights = None
    if weights_path is not None:
        weights = WeightsFileSpec(
            file=weights_path.name, format="safetensors", sha256=sha256_file(weights_path)
        )
    return ModelFileSpec(
        file=onnx_path.name,
        format="onnx",
        opset=opset,
        sha256=sha256_file(onnx_path),
        weights=weights,
    )
