"""Benchmark: ``auperf detect``'s pipeline end to end on a 1080p clip, against decoding alone,
measured in the same run.

Workload: a 1920x1080 H.264 clip (yuv420p, CRF 23) rendered by auperf.synth with three faces
walking across each other (inter-ocular distance 60-120 px), written with PyAV.

Timed, interleaved (A B C ... A B C), after a warm-up:

* ``decode_av``: PyAV decoding to RGB frames (``VideoFileSource(decoder="av")``), nothing else;
* ``decode_opencv``: OpenCV ``VideoCapture`` decoding to RGB frames;
* ``pipeline_rendered_fe``: the whole pipeline (PyAV decode in a thread, front end, Detector on
  every face of a chunk at once, tracker, CSV writer with a flush per chunk) with the front end
  that returns the renderer's landmarks (it costs one 48x48 thumbnail per frame), so the figure
  is the pipeline's own cost;
* ``pipeline_rendered_fe_sequential``: the same without the decode thread (decode a chunk, then
  process it), to show what overlapping decode with inference buys;
* ``pipeline_mediapipe``: the whole pipeline with the MediaPipe front end (``num_faces=3``),
  when it is installed: the figure a user sees on this machine.

Tracking: identity switches of :class:`auperf.video.tracking.Tracker` against the renderer's
track ids on rendered multi-face clips (100 frames, 4 faces walking across each other on a
400x240 canvas, inter-ocular distance 24-44 px; a face counts as detected when at least half of
its landmarks are visible), seeds 0-3, faces given in a shuffled order. Not timed.

Usage: python benchmarks/video.py [--frames 48] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import interleaved, metadata, write_result  # noqa: E402

import auperf  # noqa: E402
from auperf.video.pipeline import RunSummary, VideoPipeline  # noqa: E402
from auperf.video.sources import VideoFileSource  # noqa: E402
from auperf.video.synthetic import RenderedFrontEnd, write_video  # noqa: E402
from auperf.video.tracking import Tracker  # noqa: E402
from auperf.video.writers import CsvWriter  # noqa: E402


def make_clip(root: Path, frames: int, seed: int = 0) -> tuple[Path, RenderedFrontEnd]:
    from auperf.synth import render_multiface

    mf = render_multiface(
        frames, n_faces=3, height=1080, width=1920, seed=seed, face_iod_px=(60.0, 120.0)
    )
    path = write_video(root / "clip1080.mp4", mf.images, fps=25.0, crf=23)
    return path, RenderedFrontEnd.from_multiface(mf)


def tracking_eval(seeds: range, frames: int = 100) -> list[dict]:
    from auperf.synth import render_multiface
    from auperf.video.tracking import count_id_switches

    rows = []
    for seed in seeds:
        mf = render_multiface(
            frames, n_faces=4, height=240, width=400, seed=seed, face_iod_px=(24.0, 44.0)
        )
        present = mf.in_frame & (mf.visible68.mean(axis=2) >= 0.5)
        tracker = Tracker()
        gt, pred, fr = [], [], []
        for t in range(frames):
            f = np.flatnonzero(present[t])
            f = f[np.random.default_rng([seed, t]).permutation(f.size)]
            ids = tracker.update(t, mf.boxes[t, f], mf.landmarks5[t, f])
            gt += mf.track_ids[f].tolist()
            pred += ids.tolist()
            fr += [t] * len(f)
        # re-appearances: a face detected again after at least one frame without it
        reappear = int(sum(((np.diff(present[:, k].astype(int)) == 1).sum()) for k in range(4)))
        res = count_id_switches(np.array(gt), np.array(pred), np.array(fr))
        rows.append({"seed": seed, "detections": len(gt), "reappearances": reappear, **res})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunk-size", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="12 frames, 1 repeat, write nothing")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.repeats = 12, 1
    tmp = tempfile.TemporaryDirectory()
    root = Path(tmp.name)
    clip, fe = make_clip(root, args.frames)
    det = auperf.Detector(backend="onnxruntime-cpu")
    pipe = VideoPipeline(fe, det, chunk_size=args.chunk_size)
    counts: dict[str, RunSummary] = {}

    def decode(decoder: str):
        def run():
            n = 0
            for _ in VideoFileSource(clip, decoder=decoder).frames():
                n += 1
            assert n == args.frames  # noqa: S101 - benchmark sanity check

        return run

    def pipeline(p: VideoPipeline, name: str):
        def run():
            with CsvWriter(root / f"{name}.csv", p.columns) as w:
                counts[name] = p.run(VideoFileSource(clip, decoder="av"), w, progress=False)

        return run

    def sequential():
        tracker = Tracker()
        summary = RunSummary(source=str(clip))
        chunk: list = []
        with CsvWriter(root / "seq.csv", pipe.columns) as w:
            for fr in VideoFileSource(clip, decoder="av").frames():
                chunk.append(fr)
                if len(chunk) == args.chunk_size:
                    w.write(pipe.process_chunk(chunk, tracker, None, summary))
                    chunk = []
            if chunk:
                w.write(pipe.process_chunk(chunk, tracker, None, summary))

    fns = {
        "decode_av": decode("av"),
        "decode_opencv": decode("opencv"),
        "pipeline_rendered_fe": pipeline(pipe, "pipeline_rendered_fe"),
        "pipeline_rendered_fe_sequential": sequential,
    }
    mp_note = None
    try:
        from auperf import frontend

        mp = frontend.create("mediapipe", num_faces=3)
        fns["pipeline_mediapipe"] = pipeline(
            VideoPipeline(mp, det, chunk_size=args.chunk_size), "pipeline_mediapipe"
        )
    except Exception as exc:  # noqa: BLE001 - report why the row is missing
        mp_note = f"{type(exc).__name__}: {exc}"
    timings = interleaved(fns, repeats=args.repeats, warmup=1)
    fps = {k: args.frames / v["median_s"] for k, v in timings.items()}
    result = {
        "benchmark": "video",
        "params": {
            "frames": args.frames,
            "size": [1920, 1080],
            "codec": "libx264 crf 23 yuv420p",
            "faces_per_frame_max": 3,
            "chunk_size": args.chunk_size,
            "repeats": args.repeats,
            "detector": det.manifest.name,
            "backend": det.describe()["session"]["provider"],
        },
        "timings": timings,
        "frames_per_second": fps,
        "faces_per_second": {
            k: counts[k].faces / timings[k]["median_s"] for k in counts if k in timings
        },
        "ratios": {
            "pipeline_rendered_fe_vs_decode_av": fps["pipeline_rendered_fe"] / fps["decode_av"],
            "pipeline_threaded_vs_sequential": fps["pipeline_rendered_fe"]
            / fps["pipeline_rendered_fe_sequential"],
        },
        "notes": {"mediapipe": mp_note or "measured"},
        "tracking": tracking_eval(range(1 if args.quick else 4), 40 if args.quick else 100),
        "metadata": metadata(),
    }
    if "pipeline_mediapipe" in fps:
        result["ratios"]["pipeline_mediapipe_vs_decode_av"] = (
            fps["pipeline_mediapipe"] / fps["decode_av"]
        )
        result["detections"] = {
            "mediapipe_faces": counts["pipeline_mediapipe"].faces,
            "rendered_faces": counts["pipeline_rendered_fe"].faces,
        }
    for k, v in fps.items():
        print(
            f"{k:34s} {v:7.1f} frames/s  (median {timings[k]['median_s']:.3f} s, "
            f"IQR {timings[k]['iqr_s']:.3f} s)"
        )
    for k, v in result["ratios"].items():
        print(f"{k:34s} {v:.2f}x")
    for row in result["tracking"]:
        print("tracking", row)
    det.close()
    if not args.quick:
        print("wrote", write_result("video", result))


if __name__ == "__main__":
    main()
