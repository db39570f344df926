"""``auperf demo``: the demo detector on rendered faces with known AUs."""

from __future__ import annotations

import click

import auperf


@click.command()
@click.option("--faces", default=8, type=click.IntRange(1, 4096), help="Rendered faces to run.")
@click.option("--seed", default=0, type=int, help="Seed of the rendered faces.")
@click.option("--backend", default="auto", help="Provider name, or 'auto'.")
@click.option("--model", default=None, help="Model folder or manifest (default: the demo).")
def command(faces: int, seed: int, backend: str, model: str | None) -> None:
    """Run the demo detector on rendered faces with known AUs and print both side by side."""
    import numpy as np

    from ..synth import FaceRenderer, sample_params

    rng = np.random.default_rng(seed)
    res = FaceRenderer(seed=seed, size=256).render(sample_params(rng, faces))
    try:
        with auperf.Detector(model, backend=backend) as det:
            out = det.detect(res.images, res.landmarks5)
            session = det.describe()["session"]
    except auperf.errors.AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    from ..synth import AU_IDS

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
