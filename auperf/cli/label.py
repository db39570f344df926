"""``auperf label``: teacher pseudo-labels for unlabelled videos and photos of real faces.

Runs the face front end and the blendshape teacher over videos, images and image folders and
writes aligned crops with a label table (EmotioNet-style layout, unknown AUs as 999) that the
M0 trainer reads as its inaccurately labelled set. See ``auperf.labeling`` and
``docs/teacher.md``.
"""

from __future__ import annotations

import json

import click


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Label folder (created).",
)
@click.option("--aus", default=None, help="Comma-separated AU numbers (default: the demo's 15).")
@click.option("--crop-size", type=int, default=128, help="Side of the aligned crops (px).")
@click.option("--frame-step", type=int, default=5, help="Label every N-th video frame.")
@click.option("--max-per-track", type=int, default=40, help="Faces kept per track at most.")
@click.option(
    "--dedup",
    type=float,
    default=2.0,
    help="Near-duplicate threshold (grey levels, mean abs. difference); 0 keeps all.",
)
@click.option("--num-faces", type=int, default=4, help="Faces per frame the front end finds.")
@click.option(
    "--calibration",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Teacher calibration JSON (default: the one shipped with auperf).",
)
@click.option("--resume/--no-resume", default=True, help="Continue a folder written before.")
@click.option("--report", "report_json", is_flag=True, help="Print the report as JSON.")
def command(
    inputs,
    out_dir,
    aus,
    crop_size,
    frame_step,
    max_per_track,
    dedup,
    num_faces,
    calibration,
    resume,
    report_json,
):
    """Label the faces in INPUTS (videos, images, folders) and write crops + a label table."""
    from auperf.errors import AuperfError
    from auperf.labeling import DEFAULT_AUS, label_media
    from auperf.teacher import Teacher

    try:
        if aus:
            try:
                au_ids = tuple(int(a) for a in aus.split(","))
            except ValueError:
                raise click.BadParameter(
                    f"expected comma-separated integers, got {aus!r}", param_hint="--aus"
                ) from None
        else:
            au_ids = DEFAULT_AUS
        teacher = Teacher.calibrated(au_ids, calibration)
        report = label_media(
            list(inputs),
            out_dir,
            au_ids=au_ids,
            teacher=teacher,
            crop_size=crop_size,
            frame_step=frame_step,
            max_per_track=max_per_track,
            dedup=dedup,
            num_faces=num_faces,
            resume=resume,
            progress=lambda line: click.echo(line, err=True),
        )
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    if report_json:
        from dataclasses import asdict

        click.echo(json.dumps(asdict(report), indent=2))
    else:
        click.echo(report.summary())
