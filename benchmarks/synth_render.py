"""Benchmark: faces per second of ``auperf.synth.FaceRenderer`` on one CPU core.

Baseline (measured in the same run, same faces): a naive renderer that fills the face's main
regions (outline, brows, eyes, nose, lips, inner mouth) by testing every pixel against every
polygon (even-odd rule, NumPy over the full frame) and shades each pixel at full resolution. It
draws far less than the real renderer (no hair, wrinkles, iris, teeth, anti-aliasing), so the
ratio understates the gain.

The three are timed interleaved (``benchmarks/_common.py``) so load from other jobs on a shared
machine hits them alike. Writes ``benchmarks/results/synth_render_<hostname>.json`` with machine
metadata, the median and IQR of the time per face over repeats, faces/s and the speed-up.

Usage::

    python benchmarks/synth_render.py [--size 256] [--faces 64] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, metadata  # noqa: E402

import auperf  # noqa: E402
from auperf.synth import Augment, FaceRenderer, sample_params  # noqa: E402


def _inside(poly: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test of every pixel (the naive way)."""
    inside = np.zeros(xs.shape, bool)
    n = len(poly)
    for i in range(n):
        x0, y0 = poly[i]
        x1, y1 = poly[(i + 1) % n]
        crosses = (y0 > ys) != (y1 > ys)
        with np.errstate(divide="ignore", invalid="ignore"):
            xint = x0 + (ys - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (xs < xint)
    return inside


def naive_render(lm: np.ndarray, size: int) -> np.ndarray:
    """Render one face from its 68 landmarks with per-pixel polygon tests and shading."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.empty((size, size, 3))
    img[...] = (196, 200, 206)
    eye_mid = 0.5 * (lm[36:42].mean(0) + lm[42:48].mean(0))
    up = eye_mid - lm[8]
    forehead = [eye_mid + 0.55 * up + (lm[16] - lm[0]) * t for t in (0.45, 0.25, 0.0, -0.25, -0.45)]
    outline = np.vstack([lm[0:17], np.array(forehead)])
    regions = [
        (outline, (200, 150, 120)),
        (lm[17:22], (90, 60, 40)),
        (lm[22:27], (90, 60, 40)),
        (lm[36:42], (235, 230, 225)),
        (lm[42:48], (235, 230, 225)),
        (np.vstack([lm[27], lm[31:36]]), (185, 135, 108)),
        (np.vstack([lm[48:55], lm[60:65][::-1]]), (170, 90, 90)),
        (np.vstack([lm[54:60], lm[48], lm[60], lm[67:63:-1]]), (180, 100, 100)),
        (lm[60:68], (70, 22, 28)),
    ]
    for poly, colour in regions:
        sel = _inside(poly, xs, ys)
        img[sel] = colour
    c = outline.mean(0)
    r = 0.6 * np.ptp(outline, axis=0)
    u, v = (xs - c[0]) / r[0], (ys - c[1]) / r[1]
    nz = np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
    light = np.array([-0.35, -0.45, 0.82])
    shade = 0.55 + 0.55 * np.clip(u * light[0] + v * light[1] + nz * light[2], 0, None)
    face = _inside(outline, xs, ys)
    img[face] *= shade[face][:, None]
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _per_face(summary: dict, n: int) -> dict:
    """``_common`` summary of a batch of ``n`` faces -> per-face figures."""
    per = [t / n for t in summary["seconds"]]
    q1, med, q3 = np.percentile(per, [25, 50, 75])
    return {
        "median_s_per_face": float(med),
        "iqr_s_per_face": float(q3 - q1),
        "faces_per_s": float(1.0 / med),
        "repeats": len(per),
        "s_per_face": per,
    }


def _metadata() -> dict:
    try:
        return metadata()
    except Exception as exc:  # the compiled core may be missing; the renderer does not need it
        meta = {
            "host": socket.gethostname(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "cpu_count": os.cpu_count(),
            "load_average": list(os.getloadavg()),
            "auperf": auperf.__version__,
            "platform": platform.platform(),
            "note": f"metadata() failed: {exc!r}",
        }
        try:
            meta["cpu_model"] = next(
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            )
        except (OSError, StopIteration):
            meta["cpu_model"] = platform.processor() or "unknown"
        try:
            out = subprocess.run(
                ["git", "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
                cwd=Path(__file__).resolve().parent,
            )
            meta["commit"] = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            meta["commit"] = None
        return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--baseline-faces", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    # One core: OpenCV gets one thread and the renderer runs no other threads (NumPy element-wise
    # code, no BLAS). The process is not pinned: on a shared machine the scheduler should be free
    # to move it off a core another job is using.
    cv2.setNumThreads(1)
    x = sample_params(np.random.default_rng(args.seed), args.faces)
    r = FaceRenderer(seed=args.seed, size=args.size)
    xb = x[: args.baseline_faces]
    lms = r.landmarks(xb)
    load_before = list(os.getloadavg())
    # interleaved (A B C A B C ...) so load from other jobs hits all three alike
    t = interleaved(
        {
            "clean": lambda: r.render(x, augment=Augment.off()),
            "realistic": lambda: r.render(x, augment=Augment.realistic()),
            "baseline": lambda: [naive_render(lm, args.size) for lm in lms],
        },
        repeats=args.repeats,
    )
    clean = _per_face(t["clean"], args.faces)
    aug = _per_face(t["realistic"], args.faces)
    base = _per_face(t["baseline"], len(xb))
    result = {
        "benchmark": "synth_render",
        "params": {
            "size": args.size,
            "faces": args.faces,
            "baseline_faces": args.baseline_faces,
            "repeats": args.repeats,
            "seed": args.seed,
            "cv2_threads": 1,
            "timing": "interleaved, 1 warm-up",
        },
        "metadata": _metadata(),
        "load_average_before": load_before,
        "renderer_clean": clean,
        "renderer_realistic_augment": aug,
        "naive_baseline": base,
        "speedup_clean_vs_baseline": base["median_s_per_face"] / clean["median_s_per_face"],
    }
    out_dir = Path(__file__).resolve().parent / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"synth_render_{socket.gethostname()}.json"
    path.write_text(json.dumps(result, indent=2))
    print(
        f"renderer (augment off): {clean['faces_per_s']:.0f} faces/s "
        f"(median {clean['median_s_per_face'] * 1e3:.2f} ms, "
        f"IQR {clean['iqr_s_per_face'] * 1e3:.2f} ms)"
    )
    print(f"renderer (realistic augment): {aug['faces_per_s']:.0f} faces/s")
    print(
        f"naive baseline: {base['faces_per_s']:.1f} faces/s; "
        f"speed-up x{result['speedup_clean_vs_baseline']:.0f}"
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
