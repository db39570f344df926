"""Loading engines: sidecar checks against the library, the GPU and the manifest; inspection;
the ``tensorrt`` backend without a GPU."""

from __future__ import annotations

import json
import shutil

import pytest
from _engine_helpers import needs_builder

from auperf import backends, engine
from auperf.engine import (
    EngineMismatchError,
    EngineNotFoundError,
    EngineRecord,
    EngineRuntimeUnavailableError,
)
from auperf.errors import AuperfError, BackendUnavailableError

pytestmark = needs_builder
NO_GPU = not engine.visible_gpus()


@pytest.fixture
def rec_copy(fp32_record, tmp_path) -> EngineRecord:
    """A private copy of the fp32 engine and its sidecar that a test may damage."""
    for p in (fp32_record.engine_path, fp32_record.sidecar_path):
        shutil.copy(p, tmp_path / p.name)
    return EngineRecord.from_path(tmp_path / fp32_record.engine_path.name)


def _edit(rec: EngineRecord, fn) -> None:
    sc = json.loads(rec.sidecar_path.read_text())
    fn(sc)
    rec.sidecar_path.write_text(json.dumps(sc))


def test_check_passes_and_paths(fp32_record, manifest):
    rec = engine.check_engine(fp32_record, manifest)
    assert rec.key == fp32_record.key
    assert EngineRecord.from_path(fp32_record.sidecar_path).key == rec.key
    assert EngineRecord.from_path(fp32_record.engine_path).target.name == rec.target.name
    found = engine.find_engines(manifest, fp32_record.engine_path.parent, target=rec.target.name)
    assert [r.key for r in found] == [rec.key]


def test_damaged_engine_raises_with_rebuild_command(rec_copy, manifest):
    rec_copy.engine_path.write_bytes(rec_copy.read_engine()[:-1] + b"\0")
    with pytest.raises(EngineMismatchError, match="hashes to") as ei:
        engine.check_engine(rec_copy, manifest)
    msg = str(ei.value)
    assert "auperf build" in msg and "--force" in msg and rec_copy.target.name in msg
    assert isinstance(ei.value, AuperfError) and isinstance(ei.value, RuntimeError)


def test_library_version_mismatch(rec_copy, manifest):
    _edit(rec_copy, lambda sc: sc["builder"].update(version="0.0.1"))
    with pytest.raises(EngineMismatchError, match=r"built by \S+ 0\.0\.1, running") as ei:
        engine.check_engine(rec_copy, manifest)
    assert "auperf build" in str(ei.value)
    _edit(rec_copy, lambda sc: sc["builder"].update(library="tensorrt", version="10.0"))
    if "tensorrt" not in engine.installed_libraries():
        with pytest.raises(EngineMismatchError, match="not installed here"):
            engine.check_engine(rec_copy, manifest)


def test_model_mismatch(fp32_record, other_model):
    from auperf.models import load_manifest

    with pytest.raises(EngineMismatchError, match="built from a model with sha256"):
        engine.check_engine(fp32_record, load_manifest(other_model))


def test_io_mismatch(rec_copy, manifest):
    _edit(rec_copy, lambda sc: sc["io"][0].update(dtype="float16"))
    with pytest.raises(EngineMismatchError, match="input 'image'"):
        engine.check_engine(rec_copy, manifest)


def test_gpu_mismatch(rec_copy, manifest, monkeypatch):
    import importlib

    load_mod = importlib.import_module("auperf.engine.load")

    fake = engine.GpuInfo(0, "NVIDIA H100", (9, 0))
    monkeypatch.setattr(load_mod, "visible_gpus", lambda: [fake])
    with pytest.raises(EngineMismatchError, match=r"built for sm80, GPU 0 is NVIDIA H100 \(sm90\)"):
        engine.check_engine(rec_copy, manifest)
    engine.check_engine(rec_copy, manifest, check_gpu=False)


def test_missing_and_broken_sidecars(rec_copy, tmp_path):
    rec_copy.sidecar_path.write_text("{")
    with pytest.raises(EngineMismatchError, match="not valid JSON"):
        EngineRecord.from_path(rec_copy.engine_path)
    rec_copy.sidecar_path.write_text(json.dumps({"key": "x"}))
    with pytest.raises(EngineMismatchError, match="not an engine sidecar"):
        EngineRecord.from_path(rec_copy.engine_path)
    rec_copy.sidecar_path.unlink()
    with pytest.raises(EngineNotFoundError, match="auperf build"):
        EngineRecord.from_path(rec_copy.engine_path)


def test_newer_sidecar_version(rec_copy):
    _edit(rec_copy, lambda sc: sc.update(sidecar_version=engine.SIDECAR_VERSION + 1))
    with pytest.raises(EngineMismatchError, match="upgrade auperf"):
        EngineRecord.from_path(rec_copy.sidecar_path)


class _FakeEngine:
    """The ICudaEngine tensor API over given tensors (deserialising needs a GPU)."""

    def __init__(self, io):
        self._io = io

    @property
    def num_io_tensors(self):
        return len(self._io)

    def get_tensor_name(self, i):
        return self._io[i]["name"]

    def _d(self, name):
        return next(d for d in self._io if d["name"] == name)

    def get_tensor_mode(self, name):
        return "TensorIOMode.INPUT" if self._d(name)["mode"] == "input" else "TensorIOMode.OUTPUT"

    def get_tensor_dtype(self, name):
        return {"float32": "DataType.FLOAT", "float16": "DataType.HALF"}[self._d(name)["dtype"]]

    def get_tensor_shape(self, name):
        return self._d(name)["shape"]

    def get_tensor_profile_shape(self, name, profile):
        p = self._d(name)["profile"]
        return [p["min"], p["opt"], p["max"]]


def test_inspection_against_the_sidecar(fp32_record):
    prof = {"min": [1, 3, 64, 64], "opt": [4, 3, 64, 64], "max": [8, 3, 64, 64]}
    io = [dict(d) for d in fp32_record.sidecar["io"]]
    for d in io:
        if d["mode"] == "input":
            d["profile"] = prof
    got = engine.inspect_engine(_FakeEngine(io))
    assert got[0]["profile"] == prof and got[0]["dtype"] == "float32"
    from auperf.engine.load import check_io

    check_io(fp32_record, got, "engine")
    io[0]["profile"] = dict(prof, max=[16, 3, 64, 64])
    with pytest.raises(EngineMismatchError, match="profile of 'image'"):
        check_io(fp32_record, engine.inspect_engine(_FakeEngine(io)), "engine")
    io[0]["profile"] = prof
    io[1] = dict(io[1], name="probs")
    with pytest.raises(EngineMismatchError, match="has I/O"):
        check_io(fp32_record, engine.inspect_engine(_FakeEngine(io)), "engine")


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path; this machine has a GPU")
def test_load_without_gpu_raises_typed_error(fp32_record, manifest, other_model):
    from auperf.models import load_manifest

    with pytest.raises(EngineRuntimeUnavailableError, match="needs an NVIDIA GPU") as ei:
        engine.load(fp32_record, manifest)
    assert isinstance(ei.value, BackendUnavailableError) and "checks out" in str(ei.value)
    with pytest.raises(EngineMismatchError):  # the checks run first
        engine.load(fp32_record, load_manifest(other_model))


@pytest.mark.skipif(not NO_GPU, reason="checks the no-GPU path; this machine has a GPU")
def test_backend_reports_why_it_cannot_load(fp32_record, manifest):
    reason = backends.unavailable_reasons()["tensorrt"]
    assert "no NVIDIA GPU is visible" in reason and "can build engines here" in reason
    with pytest.raises(BackendUnavailableError, match="tensorrt: cannot load"):
        backends.open_session(manifest, "tensorrt", {"tensorrt": {"engine": fp32_record}})
    with backends.open_session(manifest, ["tensorrt", "onnxruntime-cpu"]) as s:
        assert s.describe().provider == "onnxruntime-cpu"


@pytest.mark.skipif(NO_GPU, reason="running an engine needs an NVIDIA GPU; none is visible")
def test_engine_runs_like_onnxruntime(tiny_model, manifest, tmp_path):
    import numpy as np

    from auperf.engine.calibration import synth_inputs

    lib = engine.find_library()
    arch = engine.visible_gpus()[0].arch
    if lib.chooses_compute_capability and arch not in lib.compute_capabilities():
        pytest.skip(f"{lib.name} {lib.version} cannot build for this GPU ({arch})")
    target = engine.Target(precision="fp32", min_batch=1, opt_batch=4, max_batch=8)
    rec = engine.build(tiny_model, target, tmp_path)
    loaded = engine.load(rec, manifest)
    assert loaded.io[0]["profile"]["max"] == [8, 3, 64, 64]
    x = synth_inputs(manifest, count=6)
    with backends.open_session(manifest, "tensorrt", {"tensorrt": {"engine": rec}}) as s:
        got = s.run({"image": x})["logits"]
        assert s.max_batch_size == 8
    with backends.open_session(manifest, "onnxruntime-cpu") as ref:
        want = ref.run({"image": x})["logits"]
    np.testing.assert_allclose(got, want, atol=1e-3)


def test_backend_finds_engines_in_the_cache(fp32_record, manifest, tmp_path):
    from auperf.backends.tensorrt import TensorRTBackend

    b = TensorRTBackend("tensorrt")
    cache = fp32_record.engine_path.parent
    assert b._find(manifest, {"cache_dir": cache, "target": fp32_record.target.name}).key == (
        fp32_record.key
    )
    with pytest.raises(BackendUnavailableError, match="no engine for 'tiny'.*auperf build"):
        b._find(manifest, {"cache_dir": tmp_path})
