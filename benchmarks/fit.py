"""Benchmark: auperf.Estimator fitting throughput, batch 1 (a per-face loop) vs large batches.

Workload: ``--faces`` faces rendered by auperf.synth (held-out identities, natural expressions)
at twice the model's crop size, with the renderer's 5-point landmarks. Every configuration
fits all faces for exactly ``--iterations`` Adam steps (``tolerance=0``, so no face stops
early and every configuration does the same work), starting from the predictor.

Baseline: the per-face loop of public Face-to-Parameter reimplementations, here
``Estimator.fit`` called on one face at a time (batch 1). Batched: ``Estimator.fit`` on chunks of
``B`` faces. Configurations run interleaved (A B C A B C ...) so load on a shared machine hits
them alike; faces/s = faces / median seconds; the ratio to batch 1 measured in the same run is
the figure that counts. The process CPU time of each configuration is recorded too: on a shared
machine it is less disturbed by other jobs than the wall time. With ``tolerance=0`` the cost is
linear in the iteration count, so a run at fewer iterations also gives the rate at 400
(``faces_per_s_at_400_iterations``, derived, not measured).

Usage: python benchmarks/fit.py [--faces 64] [--batches 1,16,64] [--iterations 400]
       [--repeats 3] [--backend torch] [--device cpu] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gpu_name, interleaved, metadata, write_result  # noqa: E402

import auperf  # noqa: E402


def workload(n: int, size: int, seed: int = 1000):
    from auperf.synth import FaceRenderer, sample_params

    x = sample_params(np.random.default_rng(seed), n)
    r = FaceRenderer(seed=seed, size=2 * size).render(x)
    return r.images, r.landmarks5


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=int, default=64)
    ap.add_argument("--batches", default="1,16,64")
    ap.add_argument("--iterations", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--models", default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    auperf.set_num_threads(args.threads)
    est = auperf.Estimator(args.models, backend=args.backend, device=args.device)
    frames, lm = workload(args.faces, est.size)
    batches = [int(b) for b in args.batches.split(",")]
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else None

    def run(b: int):
        def go():
            for i in range(0, args.faces, b):
                est.fit(frames[i : i + b], lm[i : i + b], iterations=args.iterations, tolerance=0.0)

        return go

    fns = {f"batch_{b}": run(b) for b in batches}
    cpu: dict[str, list[float]] = {k: [] for k in fns}

    def with_cpu(name, fn):
        def go():
            t0 = time.process_time()
            fn()
            cpu[name].append(time.process_time() - t0)

        return go

    timings = interleaved(
        {k: with_cpu(k, f) for k, f in fns.items()}, repeats=args.repeats, warmup=0, sync=sync
    )
    base = timings[f"batch_{batches[0]}"]["median_s"]
    base_cpu = float(np.median(cpu[f"batch_{batches[0]}"]))
    rows = {}
    for b in batches:
        k = f"batch_{b}"
        t = timings[k]
        c = float(np.median(cpu[k]))
        rows[k] = {
            **t,
            "process_cpu_seconds": cpu[k],
            "median_cpu_s": c,
            "faces_per_s": args.faces / t["median_s"],
            "faces_per_s_at_400_iterations": args.faces / t["median_s"] * args.iterations / 400,
            "faces_per_cpu_s": args.faces / c,
            "speedup_vs_first": base / t["median_s"],
            "cpu_speedup_vs_first": base_cpu / c,
        }
    device = gpu_name() if args.device.startswith("cuda") else "cpu"
    payload = {
        "benchmark": "fit",
        "parameters": vars(args),
        "model_size_px": est.size,
        "results": rows,
        "metadata": metadata(device),
    }
    path = write_result(f"fit_{args.backend}", payload)
    for k, r in rows.items():
        print(
            f"{k:>10}: {r['faces_per_s']:8.3f} faces/s at {args.iterations} iterations "
            f"(x{r['speedup_vs_first']:.1f} vs batch {batches[0]}, median {r['median_s']:.2f} s, "
            f"IQR {r['iqr_s']:.2f} s); CPU {r['median_cpu_s']:.2f} s "
            f"(x{r['cpu_speedup_vs_first']:.1f})"
        )
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
