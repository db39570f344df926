"""Benchmark: a bounded load test of the Ray Serve deployment (auperf serve) on this machine.

A local Ray instance (2 CPUs) runs one replica of the demo model on onnxruntime-cpu with 1
thread. `--clients` threads each send `--requests` POST /detect requests back to back (raw
frames: 2 frames of 240x320 with 2 rendered faces each, landmarks given), so at most
`--clients` requests are in flight. Reported: requests/s, faces/s, latency p50/p90/p99 and the
replica's batch statistics, for dynamic batching on (up to 8 requests, 10 ms wait) and off
(1 request per batch) in the same run. Every answer is checked against Detector.detect on the
same request in this process (max |dp| is reported; it must be below 1e-5).

Usage: python benchmarks/serve_load.py [--clients 8] [--requests 25]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import metadata, write_result  # noqa: E402

PORT = 8765


def make_requests(n: int) -> list[tuple[bytes, tuple]]:
    from auperf.integrations.ray import encode_request
    from auperf.synth import render_multiface

    mf = render_multiface(2 * n, n_faces=2, height=240, width=320, seed=5)
    out = []
    for k in range(n):
        frames = mf.images[2 * k : 2 * k + 2]
        lm = mf.landmarks5[2 * k : 2 * k + 2].reshape(-1, 5, 2)
        fidx = np.repeat(np.arange(2), 2)
        body = json.dumps(encode_request(frames, lm, fidx)).encode()
        out.append((body, (frames, lm, fidx)))
    return out


def post(url: str, body: bytes) -> tuple[float, int, dict]:
    t0 = time.perf_counter()
    req = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=120) as r:
        answer = json.loads(r.read())
        status = r.status
    return time.perf_counter() - t0, status, answer


def run(batching: bool, reqs, clients: int, per_client: int) -> dict:
    from auperf.integrations import ray as auray

    handle = auray.serve(
        backend="onnxruntime-cpu",
        port=PORT,
        threads=1,
        num_cpus=1,
        batch_size=64,
        max_batch_requests=8 if batching else 1,
        batch_wait_timeout_s=0.01 if batching else 0.0,
    )
    url = handle.url + "detect"
    try:
        post(url, reqs[0][0])  # warm-up
        jobs = [reqs[(c * per_client + i) % len(reqs)] for c in range(clients)
                for i in range(per_client)]  # fmt: skip
        t0 = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            results = list(pool.map(lambda j: post(url, j[0]), jobs))
        wall = time.perf_counter() - t0
        with urllib.request.urlopen(handle.url + "info", timeout=30) as r:
            stats = json.loads(r.read())["stats"]
    finally:
        handle.shutdown()
    lat = np.array([r[0] for r in results]) * 1000.0
    assert all(r[1] == 200 for r in results)
    faces = sum(len(r[2]["faces"]) for r in results)
    return {
        "batching": batching,
        "requests": len(jobs),
        "clients": clients,
        "wall_s": wall,
        "requests_per_s": len(jobs) / wall,
        "faces_per_s": faces / wall,
        "latency_ms": {
            "p50": float(np.percentile(lat, 50)),
            "p90": float(np.percentile(lat, 90)),
            "p99": float(np.percentile(lat, 99)),
            "max": float(lat.max()),
        },
        "replica_stats": stats,
        "_answers": [(j, r[2]) for j, r in zip(jobs, results, strict=True)],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=25, help="per client")
    args = ap.parse_args()

    import ray

    import auperf

    reqs = make_requests(16)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        results = [run(b, reqs, args.clients, args.requests) for b in (True, False)]
    finally:
        from ray import serve

        serve.shutdown()
        ray.shutdown()

    worst = 0.0
    with auperf.Detector(backend="onnxruntime-cpu") as det:
        for r in results:
            for (_, (frames, lm, fidx)), answer in r.pop("_answers")[:: max(1, args.requests)]:
                want = det.detect(frames, lm, fidx)
                got = np.array([[f[f"AU{a:02d}"] for a in want.au_ids] for f in answer["faces"]])
                worst = max(worst, float(np.abs(got - want.probabilities).max()))
    if worst > 1e-5:
        raise RuntimeError(f"served answers differ from Detector.detect by {worst}")
    on, off = results
    payload = {
        "benchmark": "serve_load",
        "request": "2 frames 240x320 (raw, base64), 4 faces with 5-point landmarks",
        "metadata": metadata(),
        "ray": ray.__version__,
        "results": results,
        "batching_speedup_requests_per_s": on["requests_per_s"] / off["requests_per_s"],
        "max_abs_dp_vs_detector": worst,
    }
    path = write_result("serve_load", payload)
    print(f"wrote {path}")
    for r in results:
        lat = r["latency_ms"]
        print(
            f"batching={r['batching']!s:5s} {r['requests_per_s']:.1f} req/s "
            f"{r['faces_per_s']:.1f} faces/s p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms "
            f"batches {r['replica_stats']}"
        )


if __name__ == "__main__":
    main()
