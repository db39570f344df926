"""Shared benchmark plumbing: timing with warm-up, median and IQR, and machine metadata.

Every benchmark writes one JSON file to ``benchmarks/results/`` holding its parameters, its
timings (each a list of repeats plus median and IQR), the ratios against the baseline measured
in the same run, and the metadata of the machine: commit, versions, CPU, threads, CUDA device.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def measure(
    fn: Callable[[], Any], *, repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Time ``fn`` ``repeats`` times after ``warmup`` calls (``sync`` runs inside the timing)."""
    for _ in range(warmup):
        fn()
        if sync:
            sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return summarise(times)


def summarise(times: list[float]) -> dict[str, Any]:
    a = np.asarray(times)
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"seconds": [float(t) for t in a], "median_s": float(med), "iqr_s": float(q3 - q1)}


def interleaved(
    fns: dict[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Time several functions in alternation (A B C A B C ...), so that load on a shared machine
    hits all of them alike; returns ``measure``-style summaries by name."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t0)
    return {k: summarise(v) for k, v in times.items()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def metadata(device: str | None = None) -> dict[str, Any]:
    import auperf

    meta: dict[str, Any] = {
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": socket.gethostname(),
        "commit": _commit(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "auperf": auperf.build_info(),
        "device": device or "cpu",
    }
    try:
        import cv2

        meta["opencv"] = cv2.__version__
    except ImportError:
        pass
    return meta


def gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:
        pass
    return None


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    device = payload.get("metadata", {}).get("device", "cpu")
    tag = "".join(ch if ch.isalnum() else "-" for ch in device).strip("-").lower()
    path = RESULTS / f"{name}_{tag}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
