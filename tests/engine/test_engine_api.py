"""The engine package's surface: lazy imports, exported names, the provider registration."""

from __future__ import annotations

import subprocess
import sys

import auperf.engine as engine


def test_import_is_lazy():
    code = (
        "import sys, auperf.engine, auperf.backends.tensorrt; "
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'tensorrt', 'tensorrt_rtx', "
        "'onnxconverter_common', 'cupy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing auperf.engine pulled in {out.stdout.strip()}"


def test_public_names():
    for name in engine.__all__:
        assert hasattr(engine, name), name
    assert callable(engine.build) and callable(engine.load) and callable(engine.list_targets)
    for cls in (engine.TargetError, engine.CalibrationError):
        assert issubclass(cls, ValueError)
    for cls in (engine.EngineMismatchError, engine.EngineBuildError, engine.EngineNotFoundError):
        assert issubclass(cls, engine.EngineError) and issubclass(cls, RuntimeError)
    assert issubclass(engine.Int8CalibrationUnsupportedError, engine.PrecisionUnsupportedError)


def test_tensorrt_provider_is_the_engine_backend():
    from auperf import backends
    from auperf.backends.tensorrt import TensorRTBackend

    b = backends.get_backend("tensorrt")
    assert isinstance(b, TensorRTBackend)
    assert b.OPTIONS == {"engine", "cache_dir", "target", "device_id"}
    reason = b.unavailable_reason()
    assert reason is None or "GPU" in reason or "not installed" in reason
