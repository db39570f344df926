"""Benchmark: fuse_views vs the NumPy expression of the same rule, measured in the same run.

Workload: N faces x V=2 views x L=15 AUs of float32 logits (N = 65,536 by default) and per-AU
thresholds. The NumPy baseline is the natural one-liner:
``p = 1 / (1 + np.exp(-logits.mean(axis=1))); active = p >= thresholds`` (float32 throughout).
On a GPU (when torch sees one) the torch expression of the same rule is the baseline.

Usage: python benchmarks/fuse.py [--faces 65536] [--repeats 15] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gpu_name, interleaved, measure, metadata, write_result  # noqa: E402

import auperf  # noqa: E402
from auperf.ops import fuse_views  # noqa: E402


def numpy_rule(logits, thr):
    with np.errstate(over="ignore"):
        p = 1.0 / (1.0 + np.exp(-logits.mean(axis=1)))
    return p, p >= thr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=65536)
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--aus", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    n = 4096 if args.quick else args.faces
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (n, args.views, args.aus)).astype(np.float32)
    thr = rng.uniform(0.3, 0.7, args.aus).astype(np.float32)
    p_ref, _ = numpy_rule(logits, thr)
    p, _ = fuse_views(logits, thr)
    result = {"max_abs_difference_vs_numpy": float(np.abs(p - p_ref).max())}
    before = auperf.get_num_threads()
    fns = {"numpy": lambda: numpy_rule(logits, thr)}
    for t in (1, 2):
        fns[f"auperf_{t}thread"] = lambda t=t: (auperf.set_num_threads(t), fuse_views(logits, thr))
    result["cpu"] = interleaved(fns, repeats=3 if args.quick else args.repeats, warmup=2)
    auperf.set_num_threads(before)
    base = result["cpu"]["numpy"]["median_s"]
    result["speedup_vs_numpy"] = {k: base / v["median_s"] for k, v in result["cpu"].items()}
    print(f"fuse_views, {n} faces x {args.views} views x {args.aus} AUs (CPU)")
    for k, v in result["cpu"].items():
        print(
            f"  {k:16s} {v['median_s'] * 1e3:8.3f} ms  (IQR {v['iqr_s'] * 1e3:.3f})"
            f"  {result['speedup_vs_numpy'][k]:.2f}x vs numpy"
        )
    name = gpu_name()
    if name:
        import torch

        lg = torch.from_numpy(logits).cuda()
        th = torch.from_numpy(thr).cuda()
        sync = torch.cuda.synchronize

        def torch_rule():
            pt = torch.sigmoid(lg.mean(dim=1))
            return pt, pt >= th

        result["gpu"] = {
            "torch_expression": measure(torch_rule, repeats=50, warmup=5, sync=sync),
            "auperf_cuda": measure(lambda: fuse_views(lg, th), repeats=50, warmup=5, sync=sync),
        }
        g = result["gpu"]
        result["gpu_speedup_vs_torch"] = (
            g["torch_expression"]["median_s"] / g["auperf_cuda"]["median_s"]
        )
        print(f"GPU ({name}): {result['gpu_speedup_vs_torch']:.2f}x vs the torch expression")
    payload = {
        "benchmark": "fuse",
        "faces": n,
        "views": args.views,
        "aus": args.aus,
        "metadata": metadata(device=name),
        **result,
    }
    if not args.no_write and not args.quick:
        print("  wrote", write_result("fuse", payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
