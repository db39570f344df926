"""Benchmark: adam_step vs NumPy and torch.optim.Adam + clamp, measured in the same run.

Workload: N faces x D = 77 parameters (N in 1, 64, 256), float32, every face active, one
projected Adam step per call (``lr`` 1e-3, box [0, 1], no tolerance so every face keeps
stepping). Baselines, on the CPU with one thread each:

- ``numpy``: the same rule vectorised over the active faces (bias correction, projection, the
  per-face max |dx| test, step counts), float32 throughout;
- ``torch_adam_clamp``: ``torch.optim.Adam.step()`` (foreach implementation) on one (N, D)
  leaf tensor, then ``clamp_(0, 1)``. It does less than the others (no per-face step counts,
  no convergence test, no frozen faces), so it is a floor for what a generic optimiser costs.

A fourth row times N = 256 with three faces in four frozen (inactive): auperf does not touch
them, NumPy skips them by fancy indexing. On a GPU (when torch sees one and auperf has CUDA)
the device kernel is timed against torch's Adam + clamp on the device.

Each timed call runs ``--inner`` steps (default 50) so the timer's resolution does not matter;
times are reported per step. Usage: python benchmarks/fit_step.py [--repeats 15] [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import gpu_name, interleaved, measure, metadata, write_result  # noqa: E402

import auperf  # noqa: E402
from auperf.ops import adam_step  # noqa: E402

D = 77
LR, B1, B2, EPS = 1e-3, 0.9, 0.999, 1e-8


def numpy_step(x, g, m, v, step, active, tol_param=0.0):
    """The adam_step rule in NumPy, float32, over the active faces only; returns faces left."""
    idx = np.flatnonzero(active)
    if idx.size == 0:
        return 0
    gi, xi = g[idx], x[idx]
    ok = np.isfinite(gi).all(axis=1) & np.isfinite(xi).all(axis=1)
    active[idx[~ok]] = False
    idx, gi, xi = idx[ok], gi[ok], xi[ok]
    t = np.maximum(step[idx], 0) + 1
    step[idx] = t
    mi = np.float32(B1) * m[idx] + np.float32(1 - B1) * gi
    vi = np.float32(B2) * v[idx] + np.float32(1 - B2) * gi * gi
    c1 = (1 - np.float64(B1) ** t).astype(np.float32)[:, None]
    c2 = (1 - np.float64(B2) ** t).astype(np.float32)[:, None]
    new = np.clip(xi - np.float32(LR) * (mi / c1) / (np.sqrt(vi / c2) + np.float32(EPS)), 0, 1)
    dx = np.abs(new - xi).max(axis=1)
    m[idx], v[idx], x[idx] = mi, vi, new
    if tol_param > 0:
        active[idx[dx <= tol_param]] = False
    return int(active.sum())


def make_state(n, seed=0):
    rng = np.random.default_rng(seed)
    return dict(
        x=rng.uniform(0, 1, (n, D)).astype(np.float32),
        g=rng.normal(0, 1, (n, D)).astype(np.float32),
        m=np.zeros((n, D), np.float32),
        v=np.zeros((n, D), np.float32),
        step=np.zeros(n, np.int32),
        active=np.ones(n, bool),
    )


def check_agreement(n):
    """Max |x| difference after 5 identical steps: auperf vs NumPy vs torch Adam + clamp."""
    import torch

    a, b = make_state(n, 1), make_state(n, 1)
    p = torch.nn.Parameter(torch.from_numpy(make_state(n, 1)["x"]))
    opt = torch.optim.Adam([p], lr=LR, betas=(B1, B2), eps=EPS)
    for k in range(5):
        g = np.random.default_rng(100 + k).normal(0, 1, (n, D)).astype(np.float32)
        adam_step(a["x"], g, a["m"], a["v"], a["step"], a["active"], lr=LR)
        numpy_step(b["x"], g, b["m"], b["v"], b["step"], b["active"])
        p.grad = torch.from_numpy(g)
        opt.step()
        with torch.no_grad():
            p.clamp_(0, 1)
    xt = p.detach().numpy()
    return {
        "max_abs_dx_vs_numpy": float(np.abs(a["x"] - b["x"]).max()),
        "max_abs_dx_vs_torch_adam_clamp": float(np.abs(a["x"] - xt).max()),
    }


def cpu_timings(n, repeats, inner, frozen_fraction=0.0):
    import torch

    a, b = make_state(n), make_state(n)
    if frozen_fraction:
        frozen = np.random.default_rng(2).random(n) < frozen_fraction
        a["active"][frozen] = False
        b["active"][frozen] = False
    p = torch.nn.Parameter(torch.from_numpy(make_state(n)["x"]))
    p.grad = torch.from_numpy(make_state(n)["g"])
    opt = torch.optim.Adam([p], lr=LR, betas=(B1, B2), eps=EPS)

    def run_auperf():
        for _ in range(inner):
            adam_step(a["x"], a["g"], a["m"], a["v"], a["step"], a["active"], lr=LR)

    def run_numpy():
        for _ in range(inner):
            numpy_step(b["x"], b["g"], b["m"], b["v"], b["step"], b["active"])

    def run_torch():
        for _ in range(inner):
            opt.step()
            with torch.no_grad():
                p.clamp_(0, 1)

    fns = {"auperf": run_auperf, "numpy": run_numpy}
    if not frozen_fraction:
        fns["torch_adam_clamp"] = run_torch
    timed = interleaved(fns, repeats=repeats, warmup=2)
    out = {}
    for name, t in timed.items():
        out[name] = {
            "per_step_median_s": t["median_s"] / inner,
            "per_step_iqr_s": t["iqr_s"] / inner,
            "seconds_per_call_of_inner_steps": t["seconds"],
        }
    base = out["auperf"]["per_step_median_s"]
    out["auperf_speedup"] = {
        k: v["per_step_median_s"] / base for k, v in out.items() if k != "auperf"
    }
    return out


def gpu_timings(n, inner):
    import torch

    dev = torch.device("cuda")
    s = {k: torch.from_numpy(v).to(dev) for k, v in make_state(n).items()}
    p = torch.nn.Parameter(s["x"].clone())
    p.grad = s["g"].clone()
    opt = torch.optim.Adam([p], lr=LR, betas=(B1, B2), eps=EPS)
    sync = torch.cuda.synchronize

    def run_auperf():
        for _ in range(inner):
            adam_step(s["x"], s["g"], s["m"], s["v"], s["step"], s["active"], lr=LR)

    def run_torch():
        for _ in range(inner):
            opt.step()
            with torch.no_grad():
                p.clamp_(0, 1)

    out = {
        "auperf_cuda": measure(run_auperf, repeats=20, warmup=3, sync=sync),
        "torch_adam_clamp": measure(run_torch, repeats=20, warmup=3, sync=sync),
    }
    for v in out.values():
        v["per_step_median_s"] = v["median_s"] / inner
    out["auperf_speedup_vs_torch"] = (
        out["torch_adam_clamp"]["median_s"] / out["auperf_cuda"]["median_s"]
    )
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--inner", type=int, default=50)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    before = auperf.get_num_threads()
    auperf.set_num_threads(1)
    repeats = 3 if args.quick else args.repeats
    inner = 5 if args.quick else args.inner
    result = {"agreement_after_5_steps": {str(n): check_agreement(n) for n in (1, 64, 256)}}
    cpu = {}
    try:
        for n in (1, 64, 256):
            cpu[f"N={n}"] = cpu_timings(n, repeats, inner)
        cpu["N=256, 75% frozen"] = cpu_timings(256, repeats, inner, frozen_fraction=0.75)
    finally:
        auperf.set_num_threads(before)
    result["cpu_1thread"] = cpu
    print(f"adam_step, D = {D}, CPU, one thread; per-step median (auperf speedup)")
    for case, r in cpu.items():
        line = f"  {case:18s} auperf {r['auperf']['per_step_median_s'] * 1e6:8.2f} us"
        for k, ratio in r["auperf_speedup"].items():
            line += f" | {k} {r[k]['per_step_median_s'] * 1e6:8.2f} us ({ratio:.1f}x)"
        print(line)
    name = gpu_name()
    if name and auperf.build_info()["cuda_device_count"] > 0:
        result["gpu"] = {f"N={n}": gpu_timings(n, inner) for n in (1, 64, 256)}
        for case, r in result["gpu"].items():
            print(f"GPU ({name}) {case}: {r['auperf_speedup_vs_torch']:.2f}x vs torch Adam + clamp")
    payload = {
        "benchmark": "fit_step",
        "dim": D,
        "faces": [1, 64, 256],
        "settings": {"lr": LR, "beta1": B1, "beta2": B2, "eps": EPS, "box": [0.0, 1.0]},
        "inner_steps_per_timed_call": inner,
        "metadata": metadata(device=name),
        **result,
    }
    if not args.no_write and not args.quick:
        print("  wrote", write_result("fit_step", payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
