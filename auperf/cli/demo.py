"""``auperf demo``: the shipped detector on rendered faces and a rendered clip whose AUs are
known, and on a photo shipped with scikit-image through the default face front end."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

import auperf


@click.command()
@click.option("--faces", default=8, type=click.IntRange(1, 4096), help="Rendered still faces.")
@click.option("--frames", default=40, type=click.IntRange(0, 2000), help="Frames of the clip.")
@click.option("--seed", default=0, type=int, help="Seed of the rendered faces and clip.")
@click.option("--backend", default="auto", help="Provider name, or 'auto'.")
@click.option("--model", default=None, help="Model folder or manifest (default: the demo).")
@click.option(
    "--frontend", default="auto", help="Front end for the photo (auperf.frontend.create name)."
)
@click.option(
    "--out",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder to keep the clip's result table (clip.csv) and AU timeline (clip.png) in.",
)
def command(
    faces: int,
    frames: int,
    seed: int,
    backend: str,
    model: str | None,
    frontend: str,
    out: str | None,
) -> None:
    """Run the demo detector on rendered faces with known AUs (stills, then a two-face clip
    through the whole video pipeline), and on skimage's astronaut photo."""
    try:
        with auperf.Detector(model, backend=backend) as det:
            _stills(det, faces, seed)
            if frames:
                _clip(det, frames, seed, out)
            _photo(det, frontend)
    except auperf.errors.AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc


def _stills(det: auperf.Detector, faces: int, seed: int) -> None:
    import numpy as np

    from ..synth import AU_IDS, FaceRenderer, sample_params

    rng = np.random.default_rng(seed)
    res = FaceRenderer(seed=seed, size=256).render(sample_params(rng, faces))
    out = det.detect(res.images, res.landmarks5)
    session = det.describe()["session"]
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


def _clip(det: auperf.Detector, n_frames: int, seed: int, out: str | None) -> None:
    import numpy as np

    from ..synth import AU_IDS
    from ..video.pipeline import VideoPipeline
    from ..video.sources import ArraySource, VideoFileSource, _have_av
    from ..video.synthetic import RenderedFrontEnd, render_clip, write_video
    from ..video.tracking import count_id_switches

    mf = render_clip(n_frames=n_frames, n_faces=2, seed=seed, height=240, width=320)
    fe = RenderedFrontEnd.from_multiface(mf, seed=seed)
    pipe = VideoPipeline(fe, det, chunk_size=16)
    tables = []
    with tempfile.TemporaryDirectory() as tmp:
        if _have_av():
            path = write_video(Path(tmp) / "clip.mp4", mf.images, fps=25.0)
            source, how = VideoFileSource(path), "H.264, decoded with PyAV"
        else:
            source, how = ArraySource(mf.images, fps=25.0, name="clip"), "in memory"
        summary = pipe.run(source, progress=False, on_chunk=tables.append)
    t = {c: np.concatenate([tb[c] for tb in tables]) for c in pipe.columns}
    if out is not None:
        import cv2

        from ..video.writers import CsvWriter
        from .plot import render_timeline

        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        with CsvWriter(folder / "clip.csv", pipe.columns) as w:
            w.write(t)
        cv2.imwrite(str(folder / "clip.png"), render_timeline(t, width=900)[:, :, ::-1])
    click.echo(
        f"\nrendered clip: {summary.frames} frames ({how}), 2 faces crossing; "
        f"{summary.faces} face detections by the renderer's landmarks, {summary.tracks} tracks"
    )
    ok = t["success"] == 1
    # The true face of each row: the one whose landmarks the front end returned.
    fr = t["frame"][ok]
    lm = np.stack([t[f"x_{k}"][ok] for k in range(5)] + [t[f"y_{k}"][ok] for k in range(5)], 1)
    true_face = np.array(
        [
            int(np.argmin(np.abs(mf.landmarks5[f].transpose(0, 2, 1).reshape(-1, 10) - row).sum(1)))
            for f, row in zip(fr, lm, strict=True)
        ],
        np.int64,
    )
    sw = count_id_switches(mf.track_ids[true_face], t["face_id"][ok], fr)
    click.echo("track  frames  renderer face  AU decisions agreeing with the renderer")
    au_cols = [au for au in det.au_ids if au in AU_IDS]
    for tid in np.unique(t["face_id"][ok]):
        sel = t["face_id"][ok] == tid
        faces = np.unique(true_face[sel])
        agree = total = 0
        for au in au_cols:
            pred = t[f"AU{au:02d}_c"][ok][sel].astype(bool)
            true = mf.au_occurrence[fr[sel], true_face[sel], list(AU_IDS).index(au)]
            agree += int((pred == true).sum())
            total += pred.size
        click.echo(
            f"{int(tid):5d}  {int(sel.sum()):6d}  {' '.join(str(int(f)) for f in faces):13s}  "
            f"{agree}/{total} ({100.0 * agree / max(total, 1):.1f}%)"
        )
    click.echo(f"identity switches: {sw['switches']}")


def _photo(det: auperf.Detector, frontend: str) -> None:
    import numpy as np

    try:
        from skimage import data
    except ImportError:
        click.echo("\nphoto: skipped (scikit-image, which ships the photo, is not installed)")
        return
    from .. import frontend as fe_mod

    try:
        fe = fe_mod.create(frontend)
    except (auperf.errors.AuperfError, ImportError) as exc:
        click.echo(f"\nphoto: skipped (front end {frontend!r} unavailable: {exc})")
        return
    with fe:
        img = data.astronaut()
        faces = fe.detect([img])
    click.echo(f"\nskimage astronaut (512x512) through front end {fe.name!r}: {len(faces)} face(s)")
    if not len(faces):
        return
    out = det.detect(img[None], faces.landmarks5, np.zeros(len(faces), np.int64))
    for i in range(len(faces)):
        x0, y0, x1, y1 = faces.boxes[i]
        yaw, pitch, roll = faces.pose[i] if faces.pose is not None else (np.nan,) * 3
        found = [au for j, au in enumerate(det.au_ids) if out.active[i, j]]
        top = np.argsort(-out.probabilities[i])[:3]
        best = ", ".join(f"AU{det.au_ids[j]} {out.probabilities[i, j]:.2f}" for j in top)
        click.echo(
            f"face {i}: box ({x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}), yaw {yaw:.0f} pitch "
            f"{pitch:.0f} roll {roll:.0f} deg; active: {_au_list(found)}; highest: {best}"
        )
    click.echo("(the demo model is trained on rendered faces only; on photos it is a smoke test)")


def _au_list(aus: list[int]) -> str:
    return " ".join(f"AU{a}" for a in aus) or "-"
