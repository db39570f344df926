"""The ``auperf`` command line.

``auperf info`` reports what the compiled core was built with and what this machine offers.
``auperf build`` compiles a model's ONNX into TensorRT engines per deployment target.
``auperf demo`` runs the shipped demo detector on rendered faces whose AUs are known.
Detection on videos and estimation arrive with the front end.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

import auperf


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(auperf.__version__, prog_name="auperf")
def main() -> None:
    """auperf: facial action unit inference."""


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
def info(as_json: bool) -> None:
    """Build information: version, compiler, CUDA, devices, CPU threads."""
    data = auperf.build_info()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    width = max(len(k) for k in data)
    for key, value in data.items():
        if isinstance(value, list):
            value = ", ".join(value) or "-"
        click.echo(f"{key:<{width}}  {'-' if value is None else value}")


@main.command()
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
def build(
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
    from . import engine

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


@main.command()
@click.option("--faces", default=8, type=click.IntRange(1, 4096), help="Rendered faces to run.")
@click.option("--seed", default=0, type=int, help="Seed of the rendered faces.")
@click.option("--backend", default="auto", help="Provider name, or 'auto'.")
@click.option("--model", default=None, help="Model folder or manifest (default: the demo).")
def demo(faces: int, seed: int, backend: str, model: str | None) -> None:
    """Run the demo detector on rendered faces with known AUs and print both side by side."""
    import numpy as np

    from .synth import FaceRenderer, sample_params

    rng = np.random.default_rng(seed)
    res = FaceRenderer(seed=seed, size=256).render(sample_params(rng, faces))
    try:
        with auperf.Detector(model, backend=backend) as det:
            out = det.detect(res.images, res.landmarks5)
            session = det.describe()["session"]
    except auperf.errors.AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    from .synth import AU_IDS

    truth = {au: res.au_occurrence[:, j] for j, au in enumerate(AU_IDS)}
    click.echo(f"model {det.manifest.name!r} on {session['provider']}, {faces} rendered faces")
    click.echo("face  true AUs (renderer)            detected AUs (p >= threshold)")
    agree = total = 0
    for i in range(faces):
        true = [au for au in det.au_ids if au in truth and truth[au][i]]
        found = [au for j, au in enumerate(det.au_ids) if out.active[i, j]]
        click.echo(f"{i:4d}  {_au_list(true):32s}  {_au_list(found)}")
        for j, au in enumerate(det.au_ids):
            if au in truth:
                agree += int(bool(out.active[i, j]) == bool(truth[au][i]))
                total += 1
    click.echo(
        f"agreement with the renderer's labels: {agree}/{total} AU decisions "
        f"({100.0 * agree / max(total, 1):.1f}%)"
    )


def _au_list(aus: list[int]) -> str:
    return " ".join(f"AU{a}" for a in aus) or "-"


if __name__ == "__main__":
    sys.exit(main())
