"""``auperf serve``: a Ray Serve HTTP deployment of a Detector."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

import auperf


@click.command()
@click.argument("model", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--ray", "address", default=None, help="Ray address [default: start a local one].")
@click.option("--host", default="127.0.0.1", help="HTTP host.")
@click.option("--port", default=8000, type=int, help="HTTP port.")
@click.option("--route", default="/", help="Route prefix of the deployment.")
@click.option("--backend", default="auto", help="Backend provider of each replica's Detector.")
@click.option("--replicas", default=1, type=int, help="Replicas (one per GPU with --gpus 1).")
@click.option("--gpus", "num_gpus", default=0.0, type=float, help="GPUs per replica.")
@click.option("--cpus", "num_cpus", default=1.0, type=float, help="CPUs per replica.")
@click.option("--batch-size", default=64, type=int, help="Faces per backend run.")
@click.option("--max-batch-requests", default=16, type=int, help="Requests batched together.")
@click.option("--batch-wait-s", default=0.005, type=float, help="Longest wait to fill a batch.")
@click.option("--max-request-mb", default=32.0, type=float, help="Largest request body (MiB).")
@click.option("--max-faces", default=1024, type=int, help="Most faces in one request.")
@click.option("--threads", default=None, type=int, help="CPU threads per replica.")
@click.option(
    "--engine-target",
    default=None,
    help="Run this TensorRT target's engine (built in each node's cache when absent).",
)
@click.option(
    "--cache-dir", default=None, type=click.Path(file_okay=False), help="Engine cache folder."
)
def command(
    model: Path | None,
    address: str | None,
    host: str,
    port: int,
    route: str,
    backend: str,
    replicas: int,
    num_gpus: float,
    num_cpus: float,
    batch_size: int,
    max_batch_requests: int,
    batch_wait_s: float,
    max_request_mb: float,
    max_faces: int,
    threads: int | None,
    engine_target: str | None,
    cache_dir: str | None,
) -> None:
    """Serve MODEL (a model folder or manifest; default: the demo model) over HTTP with Ray
    Serve until interrupted.

    Routes: POST /detect, GET /healthz, GET /readyz, GET /info (docs/scale_out.md).
    """
    from ..integrations import ray as auray

    try:
        handle = auray.serve(
            model,
            address=address,
            host=host,
            port=port,
            route_prefix=route,
            backend=backend,
            num_replicas=replicas,
            num_gpus=num_gpus,
            num_cpus=num_cpus,
            batch_size=batch_size,
            max_batch_requests=max_batch_requests,
            batch_wait_timeout_s=batch_wait_s,
            max_request_bytes=int(max_request_mb * (1 << 20)),
            max_faces=max_faces,
            threads=threads,
            engine_target=engine_target,
            cache_dir=cache_dir,
        )
    except (auperf.errors.AuperfError, ImportError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    click.echo(json.dumps({"url": handle.url, "routes": handle.routes}))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        handle.shutdown()
