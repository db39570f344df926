"""``auperf export-triton``: a Triton Inference Server model repository for a model."""

from __future__ import annotations

import json
from pathlib import Path

import click

import auperf


@click.command()
@click.argument("model", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--repo",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The model repository folder (created).",
)
@click.option("--name", default=None, help="Triton model name prefix [default: the manifest's].")
@click.option("--max-batch-size", default=64, type=int, help="Faces per batch of the network.")
@click.option(
    "--preferred-batch-size",
    "preferred",
    multiple=True,
    type=int,
    default=(16, 32, 64),
    help="Batch sizes the dynamic batcher aims for (repeat).",
)
@click.option(
    "--max-queue-delay-us", default=500, type=int, help="Longest wait of a request to be batched."
)
@click.option(
    "--instance-kind", type=click.Choice(["gpu", "cpu"]), default="gpu", help="Network instances."
)
@click.option("--instances", default=1, type=int, help="Network instances per GPU (or in all).")
@click.option("--gpu", "gpus", multiple=True, type=int, help="GPU id for the instances (repeat).")
@click.option(
    "--tensorrt-engine",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="An engine from `auperf build`: adds a tensorrt_plan model, used by the ensemble.",
)
@click.option(
    "--onnx-tensorrt", is_flag=True, help="onnxruntime's TensorRT accelerator (FP16) on GPUs."
)
@click.option("--no-ensemble", is_flag=True, help="Only the network model(s), no alignment/fusion.")
@click.option("--overwrite", is_flag=True, help="Replace model folders that exist.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(
    model: Path | None,
    repo: Path,
    name: str | None,
    max_batch_size: int,
    preferred: tuple[int, ...],
    max_queue_delay_us: int,
    instance_kind: str,
    instances: int,
    gpus: tuple[int, ...],
    tensorrt_engine: Path | None,
    onnx_tensorrt: bool,
    no_ensemble: bool,
    overwrite: bool,
    as_json: bool,
) -> None:
    """Write a Triton model repository for MODEL (a model folder or manifest; default: the
    demo model): the ONNX model (and a TensorRT plan) with dynamic batching and instance
    groups, plus an ensemble that aligns the faces and fuses the views in Python-backend models.
    """
    from ..integrations import triton

    try:
        info = triton.export_repository(
            model,
            repo,
            name=name,
            max_batch_size=max_batch_size,
            preferred_batch_sizes=preferred,
            max_queue_delay_us=max_queue_delay_us,
            instance_kind=instance_kind,
            instance_count=instances,
            gpus=list(gpus) or None,
            tensorrt_engine=tensorrt_engine,
            onnx_tensorrt=onnx_tensorrt,
            ensemble=not no_ensemble,
            overwrite=overwrite,
        )
    except (auperf.errors.AuperfError, FileExistsError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    for model_name, folder in info.models.items():
        click.echo(f"{model_name:40s} {folder}")
    if info.ensemble:
        click.echo(f"ensemble {info.ensemble!r}: align -> {info.network} -> fuse")
