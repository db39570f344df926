"""auperf: a compiled, high-performance inference SDK for facial action units.

The package imports without a GPU, without TensorRT and without torch. Heavy parts (the
renderer, backends, networks) are imported when first used.

Submodules:
    align     5-point templates and batched similarity estimation
    ops       compiled kernels: warp_faces, fuse_views, adam_step (fitting step)
    synth     procedural face renderer with full ground truth
    datasets  readers and writers of the public AU/expression dataset layouts
    nets      network definitions (torch, imported only when used)
    manifest  the versioned model manifest format
    backends  inference backends (onnxruntime, torch) behind one interface, imported lazily
    detector  auperf.Detector: landmarks -> aligned crops -> backend -> fused AU probabilities
    estimator auperf.Estimator: M3 parameter fitting with the imitator in the loop (pose, AUs)
    features  auperf.Features: landmarks -> aligned crops -> AU and pose embeddings (M4 encoder)
    classifier auperf.ExpressionClassifier: landmarks -> aligned crops -> expression softmax (M2)
    models    shipped models (the demo detector) and model lookup
    engine    TensorRT engine build step: targets, cache, sidecars
    teacher   AU pseudo-labels from MediaPipe blendshapes (M0's inaccurate set)
    labeling  the label job: videos/photos -> aligned crops + teacher label table (auperf label)
    frontend  face front ends (MediaPipe, dlib, given boxes/landmarks): frames -> faces, pose
    video     video/image/camera sources, tracking, CSV/Parquet writers, the detect pipeline
    errors    typed exceptions
    integrations  scale-out: Triton model repositories and client, Ray Data and Ray Serve
"""

from __future__ import annotations

import importlib
from typing import Any

from . import errors
from ._version import __version__

__all__ = [
    "__version__",
    "errors",
    "build_info",
    "set_num_threads",
    "get_num_threads",
    "Detector",
    "DetectionResult",
    "Features",
    "FeatureResult",
    "Estimator",
    "FitResult",
    "ExpressionClassifier",
    "ExpressionResult",
]

_LAZY_SUBMODULES = {
    "align",
    "ops",
    "synth",
    "datasets",
    "nets",
    "manifest",
    "backends",
    "detector",
    "features",
    "estimator",
    "classifier",
    "models",
    "engine",
    "teacher",
    "labeling",
    "frontend",
    "integrations",
    "video",
}
_LAZY_ATTRIBUTES = {
    "Detector": "detector",
    "DetectionResult": "detector",
    "Features": "features",
    "FeatureResult": "features",
    "Estimator": "estimator",
    "FitResult": "estimator",
    "ExpressionClassifier": "classifier",
    "ExpressionResult": "classifier",
}


def build_info() -> dict[str, Any]:
    """What the compiled core was built with and what this machine offers.

    Returns:
        A dict with ``version``, ``compiler``, ``cuda_compiled`` (bool), ``cuda_archs`` (list of
        str), ``cuda_runtime_version`` (e.g. ``"13.0"``, or ``None`` without CUDA),
        ``cuda_driver_version`` (``None`` where no driver is present), ``cuda_device_count``
        (0 on machines without a GPU; never raises), ``num_threads`` (CPU kernel threads) and
        ``warp_cpu_path`` (the CPU loop of warp_faces here: ``avx2``, ``sse4.1`` or ``scalar``).
    """
    from . import _core

    info = dict(_core.build_info())
    info["version"] = __version__
    info["core_version"] = info.pop("core_version")
    return info


def set_num_threads(n: int) -> None:
    """Set the number of threads the CPU kernels use (>= 1). Default: all cores, or the
    ``AUPERF_NUM_THREADS`` environment variable."""
    from . import _core

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise errors.ValueRangeError(f"n: expected an integer >= 1, got {n!r}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads the CPU kernels use."""
    from . import _core

    return int(_core.get_num_threads())


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name in _LAZY_ATTRIBUTES:
        return getattr(importlib.import_module(f".{_LAZY_ATTRIBUTES[name]}", __name__), name)
    raise AttributeError(f"module 'auperf' has no attribute {name!r}")
