"""``auperf plot``: an AU timeline PNG from a result file of ``auperf detect``."""

from __future__ import annotations

from pathlib import Path

import click

_ROW_H = 56
_LEFT = 90
_TOP = 34
_BOTTOM = 28
# Colours of tracks (RGB), cycled.
_PALETTE = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def render_timeline(
    table: dict, value: str = "auto", width: int = 1200, aus: list[int] | None = None
):
    """Draw the timeline: one row per AU, x = time (s; frame numbers where the table has no
    timestamps), y = the AU's value in the row, one polyline per track in its colour.

    Args:
        table: a result table (:func:`auperf.video.writers.read_results`).
        value: ``"r"`` (intensity 0-5), ``"p"`` (probability), ``"c"`` (occurrence) or
            ``"auto"`` (``r`` where the table has intensities, else ``p``).
        width: image width in pixels.
        aus: the AUs to draw (default: all in the table).

    Returns:
        ``(H, width, 3)`` uint8 RGB image.

    Raises:
        MediaError: the table has no rows with faces, or no column for ``value``.
    """
    import cv2
    import numpy as np

    from auperf.errors import MediaError, ValueRangeError

    cols = list(table)
    if value == "auto":
        value = "r" if any(c.endswith("_r") and c.startswith("AU") for c in cols) else "p"
    if value not in ("r", "p", "c"):
        raise ValueRangeError(f"value: expected 'r', 'p', 'c' or 'auto', got {value!r}")
    au_cols = [c for c in cols if c.startswith("AU") and c.endswith(f"_{value}")]
    if aus:
        au_cols = [c for c in au_cols if int(c[2:-2]) in aus]
    if not au_cols:
        raise MediaError(f"the table has no AU column ending in _{value}")
    ok = np.asarray(table["success"]).astype(int) == 1
    if not ok.any():
        raise MediaError("the table holds no detected face (every row has success = 0)")
    ts = np.asarray(table["timestamp"], np.float64)
    use_time = bool(np.isfinite(ts[ok]).all())
    x = ts if use_time else np.asarray(table["frame"], np.float64)
    ids = np.asarray(table["face_id"]).astype(int)
    x0, x1 = float(x[ok].min()), float(x[ok].max())
    span = max(x1 - x0, 1e-9)
    ymax = 5.0 if value == "r" else 1.0
    H = _TOP + _ROW_H * len(au_cols) + _BOTTOM
    img = np.full((H, width, 3), 255, np.uint8)
    plot_w = width - _LEFT - 10
    font = cv2.FONT_HERSHEY_SIMPLEX
    tracks = sorted(set(ids[ok].tolist()))
    colour = {t: _PALETTE[k % len(_PALETTE)] for k, t in enumerate(tracks)}
    cx = _LEFT
    for t in tracks:
        cv2.rectangle(img, (cx, 10), (cx + 14, 22), colour[t], -1)
        cv2.putText(img, f"face {t}", (cx + 18, 21), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cx += 80
        if cx > width - 80:
            break
    for r, c in enumerate(au_cols):
        top = _TOP + r * _ROW_H
        bot = top + _ROW_H - 8
        cv2.rectangle(img, (_LEFT, top), (_LEFT + plot_w, bot), (200, 200, 200), 1)
        label = c[:-2] + ("" if value == "p" else f" ({value})")
        cv2.putText(img, label, (6, top + _ROW_H // 2), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        y = np.asarray(table[c], np.float64)
        for t in tracks:
            sel = ok & (ids == t) & np.isfinite(y)
            if not sel.any():
                continue
            px = _LEFT + (x[sel] - x0) / span * plot_w
            py = bot - np.clip(y[sel] / ymax, 0, 1) * (bot - top - 2) - 1
            pts = np.stack([px, py], 1)
            # break the line where the track was not seen for more than one frame step
            order = np.argsort(px)
            pts = pts[order]
            gaps = np.flatnonzero(np.diff(np.asarray(table["frame"])[sel][order]) > 1) + 1
            for seg in np.split(pts, gaps):
                if len(seg) == 1:
                    cv2.circle(img, tuple(np.round(seg[0]).astype(int)), 1, colour[t], -1)
                else:
                    poly = np.round(seg * 16).astype(np.int32)[None]
                    cv2.polylines(img, poly, False, colour[t], 1, cv2.LINE_AA, shift=4)
    unit = "time (s)" if use_time else "frame"
    yb = H - 8
    cv2.putText(img, f"{x0:g}", (_LEFT, yb), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"{x1:g}", (_LEFT + plot_w - 40, yb), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, unit, (_LEFT + plot_w // 2 - 30, yb), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


@click.command()
@click.argument("result", type=click.Path(exists=True))
@click.option("-o", "--output", default=None, help="PNG to write (default: RESULT with .png).")
@click.option(
    "--value",
    type=click.Choice(["auto", "r", "p", "c"]),
    default="auto",
    help="Intensity (r), probability (p) or occurrence (c); auto: r when present, else p.",
)
@click.option("--aus", default=None, help="Comma-separated FACS numbers to draw (default: all).")
@click.option("--width", default=1200, type=click.IntRange(300, 10000), help="Image width (px).")
def command(result: str, output: str | None, value: str, aus: str | None, width: int) -> None:
    """Draw the AU timeline of RESULT (a CSV or Parquet from `auperf detect`) as a PNG: one
    row per AU, one coloured line per face track."""
    import cv2

    from auperf.errors import AuperfError
    from auperf.video.writers import read_results

    try:
        wanted = [int(a) for a in aus.split(",")] if aus else None
    except ValueError:
        raise click.BadParameter(
            f"expected numbers like 1,2,12, got {aus!r}", param_hint="--aus"
        ) from None
    try:
        table = read_results(result)
        img = render_timeline(table, value=value, width=width, aus=wanted)
    except AuperfError as exc:
        raise click.ClickException(f"{type(exc).__name__}: {exc}") from exc
    out = Path(output) if output else Path(result.rstrip("/")).with_suffix(".png")
    if not cv2.imwrite(str(out), img[:, :, ::-1]):
        raise click.ClickException(f"cannot write {out}")
    click.echo(f"wrote {out} ({img.shape[1]}x{img.shape[0]})")
