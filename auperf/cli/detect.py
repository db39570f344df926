"""``auperf detect``: videos, image folders, images, cameras or streams -> AU tables.

Exit codes: 0 every input processed completely; 1 an input could not be opened or stopped
early (truncated), a folder held non-image or unreadable files, a frame was too small, or a
typed auperf error; 2 bad usage; 130 interrupted (Ctrl-C; the rows of every finished chunk are
on disk and the same command resumes).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import click

_FORMATS = {"csv": ".csv", "parquet": ".parquet"}


def _parse_options(pairs: tuple[str, ...], hint: str = "--frontend-option") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise click.BadParameter(f"expected KEY=VALUE, got {p!r}", param_hint=hint)
        k, v = p.split("=", 1)
        for conv in (int, float):
            try:
                out[k] = conv(v)
                break
            except ValueError:
                continue
        else:
            out[k] = {"true": True, "false": False}.get(v.lower(), v)
    return out


def make_frontend(name: str, options: dict[str, Any]) -> Any:
    """The front end ``name``: a name for :func:`auperf.frontend.create` (``auto``,
    ``mediapipe``, ``dlib``, ...) or ``module:callable`` returning a FrontEnd."""
    if ":" in name:
        mod, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as exc:
            raise click.ClickException(f"--frontend {name!r}: cannot load it ({exc})") from None
        return factory(**options)
    from .. import frontend

    create = getattr(frontend, "create", None)
    if create is None:
        raise click.ClickException(
            f"--frontend {name!r}: this installation has no front-end factory "
            "(auperf.frontend.create); give --frontend MODULE:CALLABLE"
        )
    return create(name, **options)


def _outputs(inputs: tuple[str, ...], output: str | None, fmt: str) -> list[Path]:
    ext = _FORMATS[fmt]
    if len(inputs) == 1 and output is not None:
        out = Path(output)
        is_dir_target = out.is_dir() and out.suffix.lower() not in (".parquet", ".pq")
        if not is_dir_target and not output.endswith(("/", "\\")):
            return [out]
    folder = Path(output) if output is not None else Path(".")
    names: list[Path] = []
    for spec in inputs:
        stem = Path(spec.rstrip("/\\")).stem if not spec.isdigit() else f"camera{spec}"
        if "://" in spec:
            stem = "stream"
        cand = folder / f"{stem}{ext}"
        k = 1
        while cand in names:
            cand = folder / f"{stem}_{k}{ext}"
            k += 1
        names.append(cand)
    return names


@click.command()
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file for one input (.csv, or .parquet for a folder of Parquet parts); a "
    "folder for several inputs. Default: <input name>.<format> here.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(_FORMATS)),
    default="csv",
    help="Output format when -o is a folder or not given.",
)
@click.option("--frontend", default="auto", help="auto|mediapipe|dlib, or MODULE:CALLABLE.")
@click.option(
    "--frontend-option",
    "frontend_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for the front end (repeatable).",
)
@click.option(
    "--max-faces",
    default=4,
    type=click.IntRange(1, 256),
    help="Faces per frame at most (num_faces of the mediapipe and dlib front ends).",
)
@click.option("--backend", default="auto", help="Detector provider name, or 'auto'.")
@click.option("--model", default=None, help="Detector model folder or manifest (default: demo).")
@click.option(
    "--decoder",
    type=click.Choice(["auto", "av", "opencv"]),
    default="auto",
    help="Video decoder: PyAV, or OpenCV VideoCapture.",
)
@click.option("--chunk-size", default=16, type=click.IntRange(1, 4096), help="Frames per batch.")
@click.option(
    "--queue-size", default=4, type=click.IntRange(1, 256), help="Chunks decoded ahead at most."
)
@click.option(
    "--smooth",
    default=None,
    type=click.FloatRange(0.0, 1.0, min_open=True),
    help="Exponential smoothing of AU probabilities per track: weight of the newest frame.",
)
@click.option("--intensities", is_flag=True, help="Add AU intensities (auperf.Estimator, M3).")
@click.option(
    "--estimator-option",
    "estimator_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="Option for Estimator.fit with --intensities, e.g. iterations=100 (repeatable).",
)
@click.option(
    "--expressions", is_flag=True, help="Add expressions (auperf.ExpressionClassifier, M2)."
)
@click.option("--max-frames", default=None, type=click.IntRange(1), help="Stop after N frames.")
@click.option(
    "--resume/--overwrite",
    default=True,
    help="Continue an existing output after its last complete frame, or start it afresh.",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="ADDRESS",
    help="Run on a Ray cluster ('auto', 'local' for a new local instance, or host:port): one "
    "Parquet partition per input under -o FOLDER (auperf.integrations.ray.process).",
)
@click.option(
    "--ray-workers", default=1, type=click.IntRange(1), help="With --ray: detection actors."
)
@click.option(
    "--ray-gpus", default=0.0, type=click.FloatRange(0.0), help="With --ray: GPUs per actor."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no per-input summary.")
def command(
    inputs: tuple[str, ...],
    output: str | None,
    fmt: str,
    frontend: str,
    frontend_options: tuple[str, ...],
    max_faces: int,
    backend: str,
    model: str | None,
    decoder: str,
    chunk_size: int,
    queue_size: int,
    smooth: float | None,
    intensities: bool,
    estimator_options: tuple[str, ...],
    expressions: bool,
    max_frames: int | None,
    resume: bool,
    ray_address: str | None,
    ray_workers: int,
    ray_gpus: float,
    quiet: bool,
) -> None:
    """Detect AUs in every frame and face of INPUTS (videos, image folders, images, camera
    indices, stream URLs) and write one table per input (columns: docs/video.md)."""
    import auperf
    from auperf.errors import AuperfError
    from auperf.video.pipeline import VideoPipeline
    from auperf.video.sources import open_source
    from auperf.video.writers import open_writer

    opts = _parse_options(frontend_options)
    if frontend in ("auto", "mediapipe", "dlib"):
        opts.setdefault("num_faces", max_faces)
    if ray_address is not None:
        _run_on_ray(
            inputs,
            output,
            ray_address,
            model=model,
            backend=backend,
            frontend=frontend,
            frontend_options=opts,
            num_workers=ray_workers,
            num_gpus_per_worker=ray_gpus,
            chunk_size=chunk_size,
            queue_size=queue_size,
            smoothing=smooth,
            decoder=decoder,
            max_frames=max_frames,
            unsupported={
                "--intensities": intensities,
                "--expressions": expressions,
                "--overwrite": not resume,
            },
            quiet=quiet,
        )
        return
    outputs = _outputs(inputs, output, fmt)
    estimator = classifier = None
    try:
        if intensities:
            cls = _optional_class(auperf, "Estimator", "--intensities", "M3 intensity estimator")
            estimator = cls()
        if expressions:
            cls = _optional_class(
                auperf, "ExpressionClassifier", "--expressions", "M2 expression classifier"
            )
            classifier = cls()
        det = auperf.Detector(model, backend=backend)
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    try:
        fe = make_frontend(frontend, opts)
    except AuperfError as exc:
        det.close()
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    except click.ClickException:
        det.close()
        raise
    failed = 0
    writer = None
    current = ""
    try:
        pipe = VideoPipeline(
            fe,
            det,
            estimator=estimator,
            classifier=classifier,
            chunk_size=chunk_size,
            queue_size=queue_size,
            smoothing=smooth,
            estimator_options=_parse_options(estimator_options, "--estimator-option"),
        )
        for spec, out in zip(inputs, outputs, strict=True):
            current = str(out)
            try:
                src = open_source(spec, decoder=decoder)
                writer = open_writer(out, pipe.columns, resume=resume)
                summary = pipe.run(src, writer, progress=not quiet, max_frames=max_frames)
            except AuperfError as exc:
                failed += 1
                click.echo(f"error: {spec}: {type(exc).__name__}: {exc}", err=True)
                continue
            finally:
                if writer is not None:
                    writer.close()
                    writer = None
            failed += int(not summary.ok)
            _report(spec, out, summary, quiet)
    except KeyboardInterrupt:
        if writer is not None:
            writer.close()
        click.echo(
            f"interrupted: every finished frame is in {current}; run the same command again "
            "to resume",
            err=True,
        )
        sys.exit(130)
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    finally:
        det.close()
        fe.close()
    if failed:
        click.echo(f"{failed} of {len(inputs)} input(s) had errors (see above)", err=True)
        sys.exit(1)


def _run_on_ray(
    inputs: tuple[str, ...],
    output: str | None,
    address: str,
    *,
    unsupported: dict[str, bool],
    quiet: bool,
    **options: Any,
) -> None:
    """``auperf detect --ray``: hand the inputs to :func:`auperf.integrations.ray.process`."""
    bad = [flag for flag, given in unsupported.items() if given]
    if bad:
        raise click.UsageError(f"--ray does not support {', '.join(bad)}")
    if output is None:
        raise click.UsageError("--ray needs -o FOLDER (one Parquet partition per input)")
    from auperf.errors import AuperfError
    from auperf.integrations import ray as auperf_ray

    try:
        statuses = auperf_ray.process(
            list(inputs), output, address=None if address == "local" else address, **options
        )
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    failed = [s for s in statuses if s.status == "failed"]
    for s in statuses:
        if s.status == "failed":
            click.echo(f"error: {s.path}: {s.error}", err=True)
        elif not quiet:
            click.echo(
                f"{s.path}: {s.status}, {s.frames} frames, {s.faces} faces in "
                f"{s.seconds:.1f} s -> {s.output}",
                err=True,
            )
    if failed:
        click.echo(f"{len(failed)} of {len(statuses)} input(s) failed (see above)", err=True)
        sys.exit(1)


def _optional_class(module: Any, name: str, flag: str, what: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError:
        raise click.ClickException(
            f"{flag} needs auperf.{name} (the {what}), which this installation of auperf "
            "does not have"
        ) from None


def _report(spec: str, out: Path, s: Any, quiet: bool) -> None:
    for frame, name, reason in s.bad_frames[:20]:
        click.echo(f"error: {spec}: frame {frame} ({name}): {reason}", err=True)
    if len(s.bad_frames) > 20:
        click.echo(f"error: {spec}: ... {len(s.bad_frames) - 20} more bad frames", err=True)
    if s.skipped_files:
        shown = ", ".join(s.skipped_files[:10]) + (" ..." if len(s.skipped_files) > 10 else "")
        click.echo(
            f"error: {spec}: {len(s.skipped_files)} file(s) are not images and were skipped: "
            f"{shown}",
            err=True,
        )
    if s.error:
        click.echo(f"error: {s.error} (the frames before it are written)", err=True)
    if s.frames and s.faces == 0:
        click.echo(f"note: {spec}: no face found in {s.frames} frame(s)", err=True)
    if not quiet:
        resumed = f", resumed at frame {s.start_frame}" if s.start_frame else ""
        click.echo(
            f"{spec}: {s.frames} frames, {s.faces} faces, {s.tracks} tracks in {s.seconds:.1f} s "
            f"({s.frames_per_second:.1f} frames/s, {s.faces_per_second:.1f} faces/s{resumed}) "
            f"-> {out}",
            err=True,
        )
