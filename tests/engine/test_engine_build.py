"""The build step for real with the installed builder (TensorRT-RTX here): engines, sidecars,
profiles, the cache and its key, precisions, INT8 calibration."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _engine_helpers import HAS_RTX, HAS_TRT, needs_builder, needs_rtx

from auperf import engine
from auperf.engine import (
    CalibrationError,
    EngineRecord,
    Int8CalibrationUnsupportedError,
    PrecisionUnsupportedError,
    Target,
    TargetError,
)
from auperf.manifest import sha256_file

pytestmark = needs_builder

T_FP32 = Target(precision="fp32", min_batch=1, opt_batch=4, max_batch=8, gpu_arch="sm80")


def test_fp32_engine_and_sidecar(fp32_record, manifest):
    rec = fp32_record
    assert isinstance(rec, EngineRecord)
    assert (
        rec.engine_path.name == f"{rec.key}.engine" and rec.sidecar_path.name == f"{rec.key}.json"
    )
    assert rec.key.startswith("tiny_m0_tensorrt-fp32_dynamic-1x4x8_sm80_")
    data = rec.read_engine()
    assert len(data) > 10_000 and len(data) == rec.sidecar["engine_bytes"]
    assert sha256_file(rec.engine_path) == rec.sidecar["engine_sha256"]
    # The serialized engine names its I/O tensors.
    assert b"image" in data and b"logits" in data
    sc = json.loads(rec.sidecar_path.read_text())
    assert sc == rec.sidecar
    assert sc["model"]["sha256"] == manifest.model.sha256
    assert sc["model"]["manifest_format_version"] == manifest.format_version
    assert sc["model"]["manifest"] == str(manifest.source.resolve())
    lib = engine.find_library()
    assert sc["builder"]["library"] == lib.name and sc["builder"]["version"] == lib.version
    assert (
        sc["gpu"]
        == {
            "arch": "sm80",
            "compute_capability": [8, 0],
            "name": None,
            "built_with_gpu": False,
        }
        or sc["gpu"]["built_with_gpu"]
    )
    assert sc["precision"] == "fp32" and sc["target"] == T_FP32.to_dict()
    assert sc["auperf_version"] and sc["built_at"].endswith("+00:00")
    assert sc["build_seconds"] > 0


def test_profile_and_io_match_target_and_manifest(fp32_record, manifest):
    rec = fp32_record
    assert rec.profiles == [
        {"image": {"min": (1, 3, 64, 64), "opt": (4, 3, 64, 64), "max": (8, 3, 64, 64)}}
    ]
    assert rec.max_batch_size == 8
    io = {(d["name"], d["mode"]): d for d in rec.sidecar["io"]}
    assert io[("image", "input")] == {
        "name": "image",
        "mode": "input",
        "dtype": "float32",
        "shape": [-1, 3, 64, 64],
    }
    assert io[("logits", "output")]["dtype"] == "float32"
    assert io[("logits", "output")]["shape"] == [-1, 2, 4]
    assert manifest.output("logits").shape == ("batch", 2, 4)


def test_cache_is_reused_and_rebuilt_when_the_key_changes(tiny_model, tmp_path):
    first = engine.build(tiny_model, T_FP32, tmp_path)
    assert not first.cached
    stamp = os.stat(first.engine_path).st_mtime_ns
    again = engine.build(tiny_model, T_FP32, tmp_path)
    assert again.cached and again.key == first.key
    assert os.stat(first.engine_path).st_mtime_ns == stamp  # not rewritten
    other = Target(precision="fp32", min_batch=1, opt_batch=4, max_batch=16, gpu_arch="sm80")
    changed = engine.build(tiny_model, other, tmp_path)
    assert not changed.cached and changed.key != first.key
    assert changed.profiles[0]["image"]["max"] == (16, 3, 64, 64)
    forced = engine.build(tiny_model, T_FP32, tmp_path, force=True)
    assert not forced.cached and forced.key == first.key
    # A damaged cached engine is rebuilt, not returned.
    first.engine_path.write_bytes(b"broken")
    fixed = engine.build(tiny_model, T_FP32, tmp_path)
    assert not fixed.cached and sha256_file(fixed.engine_path) == fixed.sidecar["engine_sha256"]
    engines = sorted(p.name for p in tmp_path.glob("*.engine"))
    assert len(engines) == 2


def test_key_depends_on_model_and_library(tiny_model, other_model, manifest):
    from auperf.models import load_manifest

    lib = engine.find_library()
    k1 = engine.engine_key(manifest, T_FP32, lib, "sm80")
    assert k1 == engine.engine_key(manifest, T_FP32, lib, "sm80")
    assert k1 != engine.engine_key(load_manifest(other_model), T_FP32, lib, "sm80")
    assert k1 != engine.engine_key(manifest, T_FP32, lib, "sm86")
    fake = engine.Library(lib.name, lib.version + ".1", lib.module)
    assert k1 != engine.engine_key(manifest, T_FP32, fake, "sm80")
    assert k1 != engine.engine_key(manifest, T_FP32, lib, "sm80", calibration_sha256="ab")


@needs_rtx
@pytest.mark.parametrize("arch", ["sm86", "sm89", "sm120"])
def test_fp16_for_several_architectures(tiny_model, shared_cache, fp32_record, arch):
    pytest.importorskip("onnxconverter_common", reason="fp16 with tensorrt_rtx converts the graph")
    t = Target(precision="fp16", min_batch=1, opt_batch=8, max_batch=32, gpu_arch=arch)
    rec = engine.build(tiny_model, t, shared_cache)
    sc = rec.sidecar
    assert sc["gpu"]["arch"] == arch and sc["precision"] == "fp16"
    # TensorRT-RTX builds strongly typed networks: fp16 comes from an fp16 graph.
    assert sc["builder"]["strongly_typed"] and sc["builder"]["flags"] == []
    assert "float16" in sc["builder"]["graph"]
    assert {d["dtype"] for d in sc["io"]} == {"float32"}  # inputs and outputs stay float32
    assert rec.profiles[0]["image"]["max"] == (32, 3, 64, 64)
    assert rec.sidecar["engine_bytes"] < fp32_record.sidecar["engine_bytes"]


@needs_rtx
def test_unsupported_architectures(tiny_model, tmp_path):
    with pytest.raises(TargetError, match="cannot build for sm90") as ei:
        engine.build(tiny_model, "m0_tensorrt-fp16_dynamic-1x8x64_sm90", tmp_path)
    assert "sm80" in str(ei.value) and "sm120" in str(ei.value)
    assert engine.find_library().compute_capabilities()[:4] == ["sm75", "sm80", "sm86", "sm89"]
    if not engine.visible_gpus():
        with pytest.raises(TargetError, match="no NVIDIA GPU is visible"):
            engine.build(tiny_model, Target(gpu_arch="native"), tmp_path)
    assert not list(tmp_path.glob("*.engine"))


def test_bad_inputs(tiny_model, model_copy_factory, tmp_path):
    with pytest.raises(TargetError, match="unknown target"):
        engine.build(tiny_model, "m0-fast", tmp_path)
    with pytest.raises(TargetError, match="only int8 targets"):
        engine.build(tiny_model, T_FP32, tmp_path, calibration="synth")
    broken = model_copy_factory()
    onnx = broken / "tiny.onnx"
    onnx.write_bytes(onnx.read_bytes()[:-10])
    from auperf.errors import ManifestError

    with pytest.raises(ManifestError, match="sha256"):
        engine.build(broken, T_FP32, tmp_path)


@pytest.fixture
def model_copy_factory(tiny_model, tmp_path):
    import shutil

    def make():
        dst = tmp_path / "copy"
        shutil.copytree(tiny_model, dst)
        return dst

    return make


T_INT8 = Target(precision="int8", min_batch=1, opt_batch=4, max_batch=8, gpu_arch="sm86")


def test_int8_needs_calibration(tiny_model, tmp_path):
    with pytest.raises(PrecisionUnsupportedError, match="calibration"):
        engine.build(tiny_model, T_INT8, tmp_path)


@needs_rtx
def test_int8_without_implicit_calibration_names_the_alternative(tiny_model, tmp_path, monkeypatch):
    from auperf.engine import calibration

    assert not engine.find_library().has_int8_calibrator
    monkeypatch.setattr(calibration, "explicit_quantization_available", lambda: False)
    with pytest.raises(Int8CalibrationUnsupportedError, match="no implicit INT8 calibration") as ei:
        engine.build(tiny_model, T_INT8, tmp_path, calibration="synth")
    assert "QuantizeLinear" in str(ei.value) and isinstance(ei.value, RuntimeError)


@needs_rtx
def test_int8_explicit_quantisation_from_rendered_faces(tiny_model, shared_cache):
    pytest.importorskip("onnxruntime.quantization")
    rec = engine.build(tiny_model, T_INT8, shared_cache, calibration="synth")
    sc = rec.sidecar
    assert sc["precision"] == "int8" and "Q/DQ" in sc["builder"]["graph"]
    cal = sc["calibration"]
    assert cal["method"].startswith("explicit") and cal["source"] == "synth"
    assert cal["images"] == 64 and os.path.isfile(cal["cache"])
    acc = sc["accuracy"]
    assert acc["engine_accuracy"].startswith("not measured")
    assert 0.0 <= acc["mean_abs_dp"] < 0.1 and 0.0 <= acc["f1_vs_fp32_decisions"] <= 1.0
    # Same data -> same key -> cached; the calibration cache file is reused.
    assert engine.build(tiny_model, T_INT8, shared_cache, calibration="synth").cached


def test_calibration_inputs(manifest, tmp_path):
    import cv2

    from auperf.engine.calibration import calibration_inputs, fingerprint

    x = calibration_inputs(manifest, "synth")
    assert x.shape == (64, 3, 64, 64) and x.dtype == np.float32 and x.std() > 0.1
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    y = calibration_inputs(manifest, folder)
    assert y.shape == (3, 3, 64, 64) and y.dtype == np.float32
    f1 = fingerprint(folder)
    cv2.imwrite(str(folder / "3.png"), rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    assert fingerprint(folder) != f1
    cv2.imwrite(str(folder / "big.png"), np.zeros((80, 80, 3), np.uint8))
    with pytest.raises(CalibrationError, match="80x80"):
        calibration_inputs(manifest, folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CalibrationError, match="no images"):
        calibration_inputs(manifest, empty)
    with pytest.raises(CalibrationError, match=r"expected an array \(N, 3, 64, 64\)"):
        calibration_inputs(manifest, np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(CalibrationError, match="float32"):
        calibration_inputs(manifest, np.zeros((2, 3, 64, 64), np.float64))


def test_library_choice():
    lib = engine.find_library()
    assert lib.name == ("tensorrt" if HAS_TRT else "tensorrt_rtx")
    if HAS_RTX:
        rtx = engine.find_library("tensorrt_rtx")
        assert rtx.strongly_typed_only and rtx.chooses_compute_capability
        assert not rtx.uses_timing_cache
