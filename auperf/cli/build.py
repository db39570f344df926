"""``auperf build``: TensorRT engines of a model per deployment target."""

from __future__ import annotations

import json
from pathlib import Path

import click

import auperf


@click.command()
@click.argument("model", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    help="Target name (repeat for several); see --list-targets.",
)
@click.option(
    "--targets-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSON or YAML file of targets; all of them are built unless --target picks some.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Engine cache [default: $AUPERF_ENGINE_CACHE or ~/.cache/auperf/engines].",
)
@click.option(
    "--calibration",
    default=None,
    help="int8 only: a folder of aligned face images, or 'synth' for rendered faces.",
)
@click.option("--force", is_flag=True, help="Rebuild even when the cache holds the engine.")
@click.option(
    "--library",
    type=click.Choice(["tensorrt", "tensorrt_rtx"]),
    default=None,
    help="Builder library [default: tensorrt when installed, else tensorrt_rtx].",
)
@click.option("--list-targets", is_flag=True, help="List the known targets and exit.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(
    model: Path | None,
    targets: tuple[str, ...],
    targets_file: Path | None,
    cache_dir: Path | None,
    calibration: str | None,
    force: bool,
    library: str | None,
    list_targets: bool,
    as_json: bool,
) -> None:
    """Build TensorRT engines of MODEL (a model folder or manifest) for deployment targets.

    Engines are cached as <key>.engine with a <key>.json sidecar; a target whose key is
    already in the cache is not rebuilt.
    """
    from .. import engine

    try:
        known = engine.load_targets(targets_file, register=True) if targets_file else []
        if list_targets:
            shown = known or engine.list_targets()
            if as_json:
                click.echo(json.dumps([t.to_dict() for t in shown], indent=2))
            else:
                for t in shown:
                    click.echo(
                        f"{t.name:44s} {t.precision:5s} batch {t.min_batch}/{t.opt_batch}/"
                        f"{t.max_batch:<4d} {t.gpu_arch:7s} workspace {t.workspace_mb} MiB"
                    )
            return
        if model is None:
            raise click.UsageError("give MODEL (a model folder or manifest), or --list-targets")
        chosen = [engine.get_target(t) for t in targets] if targets else known
        if not chosen:
            raise click.UsageError("give --target NAME (see --list-targets) or --targets-file")
        records = []
        for t in chosen:
            rec = engine.build(
                model,
                t,
                cache_dir,
                calibration=calibration if t.precision == "int8" else None,
                force=force,
                library=library,
            )
            records.append(rec)
            if not as_json:
                what = "cached" if rec.cached else f"built in {rec.sidecar['build_seconds']:.1f} s"
                click.echo(
                    f"{t.name}: {what} by {rec.library} {rec.library_version} -> {rec.engine_path}"
                )
                acc = rec.sidecar.get("accuracy")
                if acc:
                    click.echo(
                        f"  int8 vs fp32 ({acc['measured_on']}): mean |dp| "
                        f"{acc['mean_abs_dp']:.4f}, F1 vs fp32 decisions "
                        f"{acc['f1_vs_fp32_decisions']:.3f}"
                    )
        if as_json:
            click.echo(
                json.dumps(
                    [dict(r.sidecar, cached=r.cached, path=str(r.engine_path)) for r in records],
                    indent=2,
                )
            )
    except (auperf.errors.AuperfError, ImportError) as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
