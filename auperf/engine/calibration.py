"""INT8 calibration data and quantisation.

Calibration data is a batch of model inputs made the way the runtime makes them:

- a folder of aligned face images (PNG/JPEG, already cropped to the manifest's
  ``input.size``), read as RGB and normalised with the manifest's mean/std, colour order and
  layout;
- ``"synth"``: faces rendered by :mod:`auperf.synth`, aligned to the manifest's template with
  :func:`auperf.align.estimate_similarity` and cropped with :func:`auperf.ops.warp_faces`;
- an array ``(N, *sample)`` of model inputs.

Two ways to INT8, chosen by what the library offers:

- implicit calibration (TensorRT 10: ``BuilderFlag.INT8`` with an ``IInt8EntropyCalibrator2``
  fed from device memory; its cache is written beside the engine as ``<key>.calib``). Needs a GPU.
- explicit quantisation (TensorRT-RTX, TensorRT 11, which removed ``IInt8Calibrator``): the
  graph gets QuantizeLinear/DequantizeLinear nodes from onnxruntime's ``quantize_static``
  (QDQ format, symmetric int8, per-channel weights), computed on the CPU from the calibration
  data; the quantised ONNX is cached as ``calib/<sha>.qdq.onnx`` and the builder compiles it.
  Its accuracy against the float32 graph is measured on the CPU with onnxruntime on held-out
  rendered faces and stored in the sidecar (``accuracy``); the engine's own accuracy needs a GPU.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CalibrationError
from ..manifest import Manifest

__all__ = [
    "calibration_inputs",
    "synth_inputs",
    "fingerprint",
    "has_qdq",
    "explicit_quantization_available",
    "quantize_explicit",
    "implicit_calibrator",
]

_log = logging.getLogger("auperf")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
SYNTH_COUNT = 64
SYNTH_SEED = 2026
#: Names the quantisation settings in cached Q/DQ files (bump when they change).
_QDQ_SETTINGS = "s8sym-minmax-nobias"


def synth_inputs(
    manifest: Manifest, count: int = SYNTH_COUNT, seed: int = SYNTH_SEED
) -> np.ndarray:
    """Rendered faces cropped as the manifest says: ``(count, *sample)`` of ``input.dtype``."""
    from .. import align
    from ..ops import warp_faces
    from ..synth import FaceRenderer, sample_params

    inp = manifest.input
    size = max(96, 2 * max(inp.size))
    out = FaceRenderer(seed=seed, size=size).render(
        sample_params(np.random.default_rng(seed), count)
    )
    m = align.estimate_similarity(out.landmarks5, np.asarray(inp.alignment.points))
    return np.asarray(
        warp_faces(
            out.images,
            m,
            size=inp.size,
            mean=[v / 255.0 for v in inp.mean],
            std=[v / 255.0 for v in inp.std],
            output_order=inp.colour_order,
            layout=inp.layout,
            dtype=inp.dtype,
        )
    )


def _folder_inputs(manifest: Manifest, folder: Path) -> np.ndarray:
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"calibration: {folder} holds no images ({_IMAGE_SUFFIXES})")
    inp = manifest.input
    h, w = inp.size
    crops = []
    for f in files:
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is None:
            raise CalibrationError(f"calibration: {f} cannot be read as an image")
        if img.shape[:2] != (h, w):
            raise CalibrationError(
                f"calibration: {f} is {img.shape[1]}x{img.shape[0]}, the model takes aligned "
                f"crops of {w}x{h} (align them first, e.g. with auperf.ops.warp_faces)"
            )
        if inp.colour_order == "RGB":
            img = img[:, :, ::-1]
        crops.append(img)
    x = (np.stack(crops).astype(np.float32) - np.float32(inp.mean)) / np.float32(inp.std)
    if inp.layout == "NCHW":
        x = x.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(x.astype(inp.dtype))


def calibration_inputs(manifest: Manifest, calibration: Any) -> np.ndarray:
    """The calibration batch ``(N, *sample)`` from a folder, ``"synth"`` or an array.

    Raises:
        CalibrationError: an empty or unreadable folder, images of the wrong size, an array
            of the wrong shape or dtype.
    """
    from ..backends.base import input_specs

    spec = input_specs(manifest)[0]
    if isinstance(calibration, str) and calibration == "synth":
        return synth_inputs(manifest)
    if isinstance(calibration, (str, Path)):
        folder = Path(calibration)
        if not folder.is_dir():
            raise CalibrationError(
                f"calibration: {folder} is not a folder (give a folder of aligned faces, "
                "'synth', or an array)"
            )
        return _folder_inputs(manifest, folder)
    x = np.asarray(calibration)
    if x.ndim != len(spec.shape) or tuple(x.shape[1:]) != tuple(spec.shape[1:]) or len(x) == 0:
        raise CalibrationError(
            f"calibration: expected an array (N, {', '.join(map(str, spec.shape[1:]))}), "
            f"got {x.shape}"
        )
    if str(x.dtype) != spec.dtype:
        raise CalibrationError(f"calibration: expected {spec.dtype}, got {x.dtype}")
    return np.ascontiguousarray(x)


def fingerprint(calibration: Any) -> str:
    """A hash that changes when the calibration data does (file names and bytes of a folder,
    the renderer settings for ``"synth"``, the array's bytes)."""
    h = hashlib.sha256()
    if isinstance(calibration, str) and calibration == "synth":
        h.update(f"synth:{SYNTH_COUNT}:{SYNTH_SEED}".encode())
    elif isinstance(calibration, (str, Path)) and Path(calibration).is_dir():
        for p in sorted(Path(calibration).iterdir()):
            if p.suffix.lower() in _IMAGE_SUFFIXES:
                h.update(p.name.encode())
                h.update(p.read_bytes())
    elif isinstance(calibration, (str, Path)):
        h.update(f"missing:{calibration}".encode())
    else:
        x = np.ascontiguousarray(np.asarray(calibration))
        h.update(json.dumps([list(x.shape), str(x.dtype)]).encode())
        h.update(x.tobytes())
    return h.hexdigest()


def has_qdq(onnx_bytes: bytes) -> bool:
    """Whether the ONNX graph already holds QuantizeLinear/DequantizeLinear nodes."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def explicit_quantization_available() -> bool:
    """Whether onnxruntime's quantisation tools are installed."""
    return (
        importlib.util.find_spec("onnxruntime") is not None
        and importlib.util.find_spec("onnxruntime.quantization") is not None
    )


def _f1(y: np.ndarray, p: np.ndarray) -> float:
    tp = float(np.sum(y & p))
    fp = float(np.sum(~y & p))
    fn = float(np.sum(y & ~p))
    return 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else 1.0


def _cpu_accuracy(manifest: Manifest, fp32: Path, qdq: Path) -> dict[str, Any]:
    """Fused probabilities of the Q/DQ graph vs the float32 graph, onnxruntime on the CPU,
    on held-out rendered faces (another seed than the calibration set)."""
    import onnxruntime as ort

    from ..ops import fuse_views

    x = synth_inputs(manifest, count=32, seed=SYNTH_SEED + 1)
    name = manifest.input.name
    out_name = manifest.postprocess.input
    res = {}
    for tag, path in (("fp32", fp32), ("int8", qdq)):
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        res[tag] = sess.run([out_name], {name: x})[0]
    th = np.asarray(manifest.thresholds, dtype=np.float32)
    if manifest.postprocess.kind == "fuse_views":
        p32, a32 = fuse_views(res["fp32"], th)
        p8, a8 = fuse_views(res["int8"], th)
    else:
        p32, p8 = (1 / (1 + np.exp(-res[k].reshape(len(x), -1))) for k in ("fp32", "int8"))
        a32, a8 = p32 >= th, p8 >= th
    p32, p8, a32, a8 = (np.asarray(v) for v in (p32, p8, a32, a8))
    return {
        "measured_on": "onnxruntime CPU: the Q/DQ graph vs the float32 graph, not the engine",
        "faces": int(len(x)),
        "mean_abs_dp": float(np.mean(np.abs(p8 - p32))),
        "max_abs_dp": float(np.max(np.abs(p8 - p32))),
        "f1_vs_fp32_decisions": _f1(a32.astype(bool), a8.astype(bool)),
        "engine_accuracy": "not measured: needs a GPU",
    }


def quantize_explicit(
    manifest: Manifest, onnx_path: Path, calibration: Any, cache_dir: Path
) -> tuple[bytes, dict[str, Any]]:
    """A Q/DQ copy of the model's ONNX, calibrated on the CPU with onnxruntime.

    Returns:
        The quantised ONNX bytes and the sidecar's ``calibration`` record.

    Raises:
        CalibrationError: unusable calibration data.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    sha = fingerprint(calibration)
    out_dir = cache_dir / "calib"
    out_dir.mkdir(parents=True, exist_ok=True)
    qdq_path = out_dir / f"{manifest.model.sha256[:16]}_{sha[:16]}_{_QDQ_SETTINGS}.qdq.onnx"
    if qdq_path.is_file():
        _log.info("using the cached Q/DQ model %s", qdq_path)
        x = None
    else:
        x = calibration_inputs(manifest, calibration)
        name = manifest.input.name

        class _Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._batches = iter([{name: x[i : i + 8]} for i in range(0, len(x), 8)])

            def get_next(self) -> dict[str, np.ndarray] | None:
                return next(self._batches, None)

        tmp = qdq_path.with_name(qdq_path.name + ".tmp.onnx")
        quantize_static(
            str(onnx_path),
            str(tmp),
            _Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "QuantizeBias": False,  # TensorRT dequantises int8 only; biases stay float
            },
        )
        tmp.replace(qdq_path)
    record = {
        "method": "explicit: onnxruntime quantize_static (QDQ, symmetric int8, MinMax)",
        "source": calibration if isinstance(calibration, str) else "array",
        "images": None if x is None else int(len(x)),
        "cache": str(qdq_path),
        "sha256": sha,
    }
    try:
        record["accuracy"] = _cpu_accuracy(manifest, onnx_path, qdq_path)
    except Exception as exc:  # noqa: BLE001 - the measurement is a report, not the build
        _log.warning("could not measure the Q/DQ model's accuracy: %s", exc)
        record["accuracy"] = None
    return qdq_path.read_bytes(), record


def implicit_calibrator(
    lib: Any, manifest: Manifest, calibration: Any, cache_file: Path, target: Any
) -> tuple[Any, dict[str, Any]]:
    """An ``IInt8EntropyCalibrator2`` over the calibration batch (TensorRT 10, needs a GPU and
    torch with CUDA for the device buffer); its cache is ``cache_file``.

    Raises:
        EngineRuntimeUnavailableError: no GPU or no torch with CUDA.
    """
    from ..errors import EngineRuntimeUnavailableError

    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        why = "implicit INT8 calibration runs the network on a GPU; none is visible to torch"
        raise EngineRuntimeUnavailableError(why, {"tensorrt": why})
    x = calibration_inputs(manifest, calibration)
    batch = min(target.opt_batch, len(x))
    trt = lib.module

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._i = 0
            self._buf = torch.empty((batch, *x.shape[1:]), dtype=torch.float32, device="cuda")

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self._i + batch > len(x):
                return None
            self._buf.copy_(torch.from_numpy(x[self._i : self._i + batch]))
            self._i += batch
            return [int(self._buf.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache_file.read_bytes() if cache_file.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            cache_file.write_bytes(bytes(cache))

    record = {
        "method": "implicit: IInt8EntropyCalibrator2",
        "source": calibration if isinstance(calibration, str) else "array",
        "images": int(len(x)),
        "cache": str(cache_file),
        "sha256": fingerprint(calibration),
        "accuracy": None,
    }
    return _Calibrator(), record
