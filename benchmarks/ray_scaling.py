"""Benchmark: Ray Data batch processing (auperf.integrations.ray.process) with 1 and 2 workers
on this machine's CPU, against the single-process pipeline (what `auperf detect` runs) measured
in the same run, plus a paper estimate of the nodes needed for 10,000 hours of 30 fps video in
24 hours.

Workload: rendered multi-face clips (auperf.video.synthetic.render_clip, 2 faces), encoded as
H.264 with PyAV, decoded by the pipeline; faces come from the renderer's ground truth
(RenderedFrontEnd), so the front end costs a thumbnail lookup instead of a face detector, and
the measured work is decode + align + warp + model + fuse + tracking + Parquet writing. The
detector is the shipped demo model on onnxruntime-cpu with 1 thread per worker.

Each configuration runs `--repeats` times into a fresh output folder, in alternation
(baseline, 1 worker, 2 workers, baseline, ...). Wall time of a Ray run includes starting its
actors (each loads a Detector); `in_worker_frames_per_s` divides the frames by the time the
workers spent inside their videos (summed over videos, divided by the workers), which leaves
the start-up out.

Usage: python benchmarks/ray_scaling.py [--videos 4] [--frames 64] [--repeats 2]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import metadata, summarise, write_result  # noqa: E402

SIDECAR = "auperf.video.synthetic:sidecar_frontend"


def make_corpus(root: Path, videos: int, frames: int) -> tuple[list[str], str]:
    from auperf.video.synthetic import RenderedFrontEnd, render_clip, write_video

    clips = [
        render_clip(n_frames=frames, n_faces=2, height=240, width=320, seed=100 + s)
        for s in range(videos)
    ]
    paths = [str(write_video(root / f"clip{s}.mp4", c.images)) for s, c in enumerate(clips)]

    def cat(name):
        return np.concatenate([getattr(c, name) for c in clips])

    present = cat("in_frame") & (cat("visible68").mean(axis=2) >= 0.5)
    fe = RenderedFrontEnd(cat("images"), cat("boxes"), cat("landmarks5"), present, cat("pose_deg"))
    fe.save(root / "frontend.npz")
    return paths, str(root / "frontend.npz")


def run_baseline(paths: list[str], fe_path: str, out: Path) -> dict:
    import auperf
    from auperf.video.pipeline import VideoPipeline
    from auperf.video.sources import open_source
    from auperf.video.synthetic import sidecar_frontend
    from auperf.video.writers import ParquetWriter

    auperf.set_num_threads(1)
    t0 = time.perf_counter()
    det = auperf.Detector(
        backend="onnxruntime-cpu", backend_options={"onnxruntime": {"intra_op_num_threads": 1}}
    )
    pipe = VideoPipeline(sidecar_frontend(fe_path), det, chunk_size=16)
    frames = faces = 0
    for p in paths:
        with ParquetWriter(out / (Path(p).stem + ".parquet"), pipe.columns) as w:
            s = pipe.run(open_source(p), w, progress=False)
        frames, faces = frames + s.frames, faces + s.faces
    det.close()
    return {"seconds": time.perf_counter() - t0, "frames": frames, "faces": faces}


def run_ray(paths: list[str], fe_path: str, out: Path, workers: int) -> dict:
    from auperf.integrations import ray as auray

    t0 = time.perf_counter()
    st = auray.process(
        paths,
        out,
        frontend=SIDECAR,
        frontend_options={"path": fe_path},
        backend="onnxruntime-cpu",
        num_workers=workers,
        num_cpus_per_worker=1,
        threads=1,
        chunk_size=16,
    )
    wall = time.perf_counter() - t0
    if any(s.status != "done" for s in st):
        raise RuntimeError(f"a video failed: {[s.to_dict() for s in st]}")
    return {
        "seconds": wall,
        "frames": sum(s.frames for s in st),
        "faces": sum(s.faces for s in st),
        "in_worker_seconds": sum(s.seconds for s in st),
    }


def paper_estimate(per_core_fps: float, faces_per_frame: float, load_average: float) -> dict:
    """Nodes for 10,000 h of 30 fps video in 24 h, from the per-core rate measured here.

    The per-core rate is the whole pipeline on one core (decode, front end, detector on the
    CPU, tracking, Parquet). On a GPU node the detector moves to the GPU, so the CPU rate
    used for the other stages is a lower bound of what they reach there.
    """
    hours, fps, window_h = 10_000, 30, 24
    frames = hours * 3600 * fps
    needed = frames / (window_h * 3600)
    eff = 0.8  # assumed parallel efficiency across the cores of a node
    out: dict = {
        "video_hours": hours,
        "fps": fps,
        "window_hours": window_h,
        "frames": frames,
        "frames_per_s_needed": needed,
        "faces_per_frame": faces_per_frame,
        "measured_here": {
            "pipeline_frames_per_s_per_cpu_core": per_core_fps,
            "load_average_during_run": load_average,
            "note": (
                "decode (H.264 240x320) + rendered front end (a lookup, not a face detector) + "
                "detector (onnxruntime-cpu, demo model) + tracking + Parquet, 1 thread per "
                "worker, on a 2-core machine shared with other work (load average above): a "
                "lower bound of what an idle core does. A real face detector costs more: "
                "MediaPipe took ~13 ms per 512x512 frame on one core here (FACTS.md)."
            ),
        },
        "assumed_parallel_efficiency": eff,
        "cpu_only_nodes": {},
        "gpu_nodes": {
            "note": (
                "NOT MEASURED: no GPU was available, so the per-GPU detector rates below are "
                "assumptions, not measurements. A node has 8 GPUs and 128 cores; its rate is "
                "the smaller of what its GPUs detect and what its cores decode and track "
                "at the per-core rate measured here."
            ),
            "assumed": [],
        },
    }
    for cores in (32, 64, 128):
        node = per_core_fps * cores * eff
        out["cpu_only_nodes"][f"{cores}_cores"] = {
            "node_frames_per_s": node,
            "nodes": int(np.ceil(needed / node)),
        }
    for gpu_rate in (5_000, 20_000, 50_000):
        gpu_fps = 8 * gpu_rate / faces_per_frame
        cpu_fps = 128 * eff * per_core_fps
        node = min(gpu_fps, cpu_fps)
        out["gpu_nodes"]["assumed"].append(
            {
                "assumed_gpu_faces_per_s": gpu_rate,
                "node_frames_per_s": node,
                "bound_by": "gpu" if gpu_fps <= cpu_fps else "cpu",
                "nodes": int(np.ceil(needed / node)),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import ray

    root = Path(tempfile.mkdtemp(prefix="auperf_ray_scaling_"))
    try:
        paths, fe_path = make_corpus(root, args.videos, args.frames)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.data.DataContext.get_current().enable_progress_bars = False
        runs: dict[str, list[dict]] = {"baseline": [], "ray_1": [], "ray_2": []}
        for rep in range(args.repeats):
            for key in runs:
                out = root / f"out_{key}_{rep}"
                if key == "baseline":
                    r = run_baseline(paths, fe_path, out)
                else:
                    r = run_ray(paths, fe_path, out, int(key[-1]))
                print(key, rep, {k: round(v, 2) for k, v in r.items()}, flush=True)
                runs[key].append(r)
                shutil.rmtree(out, ignore_errors=True)
        ray.shutdown()
    finally:
        shutil.rmtree(root, ignore_errors=True)

    frames = runs["baseline"][0]["frames"]
    result: dict = {
        "benchmark": "ray_scaling",
        "videos": args.videos,
        "frames_per_video": args.frames,
        "resolution": [240, 320],
        "faces_per_frame": 2,
        "total_frames": frames,
        "metadata": metadata(),
        "ray": ray.__version__,
        "configs": {},
    }
    for key, rs in runs.items():
        wall = [r["seconds"] for r in rs]
        entry = {**summarise(wall), "frames_per_s": frames / float(np.median(wall))}
        if key != "baseline":
            workers = int(key[-1])
            inner = [r["in_worker_seconds"] / workers for r in rs]
            entry["in_worker_seconds_per_worker"] = inner
            entry["in_worker_frames_per_s"] = frames / float(np.median(inner))
        result["configs"][key] = entry
    c = result["configs"]
    result["speedup_2_vs_1_workers_wall"] = c["ray_1"]["median_s"] / c["ray_2"]["median_s"]
    result["speedup_2_vs_1_workers_in_worker"] = (
        c["ray_2"]["in_worker_frames_per_s"] / c["ray_1"]["in_worker_frames_per_s"]
    )
    result["ray_1_vs_single_process_wall"] = c["baseline"]["median_s"] / c["ray_1"]["median_s"]
    per_core = c["ray_1"]["in_worker_frames_per_s"]
    faces_per_frame = runs["baseline"][0]["faces"] / frames
    load = result["metadata"]["load_average"][0] if result["metadata"]["load_average"] else 0.0
    result["estimate_10k_hours"] = paper_estimate(per_core, faces_per_frame, load)
    counts = {k: sorted({r["faces"] for r in rs}) for k, rs in runs.items()}
    result["face_rows_per_config"] = counts
    path = write_result("ray_scaling", result)
    print(f"wrote {path}")
    for key, e in c.items():
        print(f"{key:9s} median {e['median_s']:.2f} s  {e['frames_per_s']:.1f} frames/s (wall)")
    print(
        f"2 vs 1 workers: x{result['speedup_2_vs_1_workers_wall']:.2f} wall, "
        f"x{result['speedup_2_vs_1_workers_in_worker']:.2f} in-worker"
    )


if __name__ == "__main__":
    main()
