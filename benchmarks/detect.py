"""Benchmark: auperf.Detector end to end (frames + landmarks -> AU probabilities), faces/s per
backend and batch size, against a per-face baseline measured in the same run.

Workload: 256 faces rendered by auperf.synth, each in its own 256x256 frame, with the renderer's
5-point landmarks. The Detector aligns (estimate_similarity), crops (warp_faces), runs the model
and fuses the views (fuse_views) in batches of 1, 8, 64 and 256.

Baseline ("py-feat style"): a Python loop over faces that estimates each face's similarity with
scikit-image, warps it with cv2.warpAffine, normalises and transposes it with NumPy, runs the
same ONNX model on that one face with onnxruntime and applies the sigmoid of the views' mean,
on the same threads. Its probabilities differ slightly from the Detector's (reported as
max |dp|): it rounds each crop to uint8 and OpenCV quantises sample positions to 1/32 pixel,
where warp_faces interpolates in float.

Usage: python benchmarks/detect.py [--faces 256] [--repeats 3] [--quick] [--model DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gpu_name, measure, metadata, write_result  # noqa: E402

import auperf  # noqa: E402
from auperf import backends  # noqa: E402


def workload(n: int, seed: int = 0):
    from auperf.synth import FaceRenderer, sample_params

    rng = np.random.default_rng(seed)
    res = FaceRenderer(seed=seed, size=256).render(sample_params(rng, n))
    return res.images, res.landmarks5


def baseline(manifest, frames, landmarks):
    """Per-face preprocessing in Python and one model call per face."""
    import cv2
    import onnxruntime as ort
    from skimage.transform import SimilarityTransform

    inp = manifest.input
    h, w = inp.size
    template = np.asarray(inp.alignment.points)
    mean = np.asarray(inp.mean, np.float32)
    std = np.asarray(inp.std, np.float32)
    onnx_path = manifest.model_path()
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    in_name = sess.get_inputs()[0].name

    def run():
        out = np.empty((len(frames), len(manifest.au_ids)), np.float32)
        for i, (frame, pts) in enumerate(zip(frames, landmarks, strict=True)):
            m = SimilarityTransform.from_estimate(pts, template).params[:2]
            crop = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR)
            x = ((crop.astype(np.float32) - mean) / std).transpose(2, 0, 1)[None]
            logits = sess.run(None, {in_name: np.ascontiguousarray(x)})[0]
            out[i] = 1.0 / (1.0 + np.exp(-logits.mean(axis=1)[0]))
        return out

    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=None, help="model folder or manifest (default: the demo)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    n = 32 if args.quick else args.faces
    frames, landmarks = workload(n)
    from auperf.models import load_manifest

    manifest = load_manifest(args.model)
    base_run = baseline(manifest, frames, landmarks)
    base_probs = base_run()
    result = {"baseline_per_face": measure(base_run, repeats=args.repeats)}
    result["baseline_per_face"]["faces_per_s"] = n / result["baseline_per_face"]["median_s"]
    rows = []
    for provider in backends.available_backends():
        for batch in (1, 8, 64, 256):
            if batch > n:
                continue
            try:
                det = auperf.Detector(args.model, backend=provider, batch_size=batch)
            except auperf.errors.AuperfError as exc:
                rows.append({"provider": provider, "batch": batch, "error": str(exc)})
                continue
            with det:
                probs = det.detect(frames, landmarks).probabilities
                timing = measure(lambda d=det: d.detect(frames, landmarks), repeats=args.repeats)
            timing.update(
                provider=provider,
                batch=batch,
                faces_per_s=n / timing["median_s"],
                speedup_vs_baseline=result["baseline_per_face"]["median_s"] / timing["median_s"],
                max_abs_difference_vs_baseline=float(np.abs(probs - base_probs).max()),
            )
            rows.append(timing)
    result["detector"] = rows
    print(
        f"Detector end to end, {n} faces, model {manifest.name!r}, "
        f"{auperf.get_num_threads()} threads"
    )
    b = result["baseline_per_face"]
    print(f"  {'baseline (per face)':28s} {b['faces_per_s']:9.0f} faces/s")
    for r in rows:
        if "error" in r:
            print(f"  {r['provider']:>16s} batch {r['batch']:<4d} unavailable: {r['error']}")
            continue
        print(
            f"  {r['provider']:>16s} batch {r['batch']:<4d} {r['faces_per_s']:9.0f} faces/s"
            f"  {r['speedup_vs_baseline']:5.1f}x"
            f"  (max |dp| {r['max_abs_difference_vs_baseline']:.1e})"
        )
    payload = {
        "benchmark": "detect",
        "faces": n,
        "model": manifest.name,
        "metadata": metadata(device=gpu_name()),
        **result,
    }
    if not args.no_write and not args.quick:
        print("  wrote", write_result("detect", payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
