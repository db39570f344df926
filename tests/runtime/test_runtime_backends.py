"""Backends: the registry's provider semantics, session feed checks, onnxruntime and torch
sessions, and every available backend against the torch reference."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types

import numpy as np
import pytest
from _runtime_helpers import S, crops_like_manifest
from hypothesis import given, settings
from hypothesis import strategies as st

from auperf import backends
from auperf.backends import (
    Backend,
    BackendError,
    BackendUnavailableError,
    FeedError,
    SessionClosedError,
    UnknownProviderError,
    WeightsError,
)
from auperf.errors import (
    AuperfError,
    DTypeError,
    ManifestError,
    ManifestVersionError,
    ParameterError,
    ShapeError,
)
from auperf.manifest import Manifest
from auperf.models import load_manifest, weights_path


def _batch(b: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    low = rng.standard_normal((b, 3, 8, 8)).astype(np.float32)
    x = np.repeat(np.repeat(low, S // 8, axis=2), S // 8, axis=3)
    return (x + rng.standard_normal((b, 1, 1, 1))).astype(np.float32)


def _fuse(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-logits.astype(np.float64).mean(axis=1)))


@pytest.fixture(scope="module")
def manifest(tiny_model) -> Manifest:
    return load_manifest(tiny_model)


# -- lazy import -----------------------------------------------------------------------------
def test_import_is_lazy():
    code = (
        "import sys, auperf, auperf.backends, auperf.detector, auperf.models; "
        "from auperf.backends import base; "
        "heavy = [m for m in ('torch', 'onnxruntime', 'tensorrt', 'tensorrt_rtx', 'pandas') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing the runtime pulled in {out.stdout.strip()}"


# -- registry --------------------------------------------------------------------------------
def test_providers_and_reasons():
    assert set(backends.providers()) >= {
        "tensorrt",
        "onnxruntime-tensorrt",
        "onnxruntime-cuda",
        "onnxruntime-cpu",
        "torch-cuda",
        "torch-cpu",
    }
    avail = backends.available_backends()
    assert {"onnxruntime-cpu", "torch-cpu"} <= set(avail)
    assert avail == [p for p in backends.AUTO_ORDER if p in avail] + [
        p for p in avail if p not in backends.AUTO_ORDER
    ]
    reasons = backends.unavailable_reasons()
    assert reasons["onnxruntime-cpu"] is None and reasons["torch-cpu"] is None
    if reasons["tensorrt"] is not None:  # it loads where a GPU and a TensorRT runtime are present
        assert "not installed" in reasons["tensorrt"] or "GPU" in reasons["tensorrt"]


def test_auto_order_is_fixed_and_logged(caplog):
    assert backends.AUTO_ORDER == (
        "tensorrt",
        "onnxruntime-cuda",
        "torch-cuda",
        "onnxruntime-cpu",
        "torch-cpu",
    )
    with caplog.at_level(logging.INFO, logger="auperf"):
        b = backends.resolve("auto")
    assert isinstance(b, Backend)
    assert b.provider == backends.available_backends()[0]
    assert f"using provider {b.provider}" in caplog.text
    assert "provider tensorrt cannot load" in caplog.text  # skips are logged with the reason


def test_explicit_unavailable_provider_raises_with_reason():
    with pytest.raises(BackendUnavailableError, match="tensorrt package is not installed") as ei:
        backends.resolve("tensorrt")
    assert set(ei.value.reasons) == {"tensorrt"}
    assert isinstance(ei.value, AuperfError) and isinstance(ei.value, RuntimeError)
    if "onnxruntime-cuda" not in backends.available_backends():
        with pytest.raises(BackendUnavailableError, match="onnxruntime-gpu"):
            backends.resolve("CUDAExecutionProvider")
    if "torch-cuda" not in backends.available_backends():
        with pytest.raises(BackendUnavailableError, match="torch-cuda: cannot load: torch"):
            backends.resolve("torch-cuda")


def test_list_takes_first_that_loads_and_warns(caplog):
    with caplog.at_level(logging.INFO, logger="auperf"):
        b = backends.resolve(["tensorrt", "torch-cpu", "onnxruntime-cpu"])
    assert b.provider == "torch-cpu" and b.name == "torch"
    skipped = [r for r in caplog.records if "provider tensorrt cannot load" in r.getMessage()]
    assert skipped and skipped[0].levelno == logging.WARNING
    assert "trying torch-cpu" in skipped[0].getMessage()
    assert "using provider torch-cpu" in caplog.text
    assert backends.resolve(["onnxruntime-cpu", "torch-cpu"]).provider == "onnxruntime-cpu"


def test_list_where_none_loads_names_every_reason():
    with pytest.raises(BackendUnavailableError) as ei:
        backends.resolve(["tensorrt", "torch-cuda"] if not _has_torch_cuda() else ["tensorrt"])
    assert "tensorrt" in ei.value.reasons
    assert "tensorrt package is not installed" in str(ei.value)


def _has_torch_cuda() -> bool:
    return "torch-cuda" in backends.available_backends()


def test_aliases_and_bad_requests():
    assert backends.resolve("onnxruntime").provider == "onnxruntime-cpu"
    assert backends.resolve("CPUExecutionProvider").provider == "onnxruntime-cpu"
    assert backends.resolve("torch").provider == "torch-cpu"
    with pytest.raises(UnknownProviderError, match="unknown provider 'openvino'"):
        backends.resolve("openvino")
    with pytest.raises(UnknownProviderError):
        backends.resolve(["onnxruntime-cpu", "nope"])
    with pytest.raises(ParameterError, match="non-empty"):
        backends.resolve([])
    with pytest.raises(ParameterError, match="stands alone"):
        backends.resolve(["auto", "torch"])
    with pytest.raises(ParameterError, match="provider names"):
        backends.resolve([3])


def test_register_and_open_session_skips_providers_that_fail_to_open(monkeypatch, manifest, caplog):
    """A provider that imports but cannot open (as onnxruntime-gpu without a usable GPU) is
    skipped by a list like one that cannot import; a bad module gives a reason too."""
    mod = types.ModuleType("fake_auperf_backend")

    class Refusing(Backend):
        name = "fake"

        def unavailable_reason(self):
            return None

        def version(self):
            return "0"

        def open_impl(self, manifest, **options):
            raise BackendUnavailableError("fake: no device", {self.provider: "no device"})

    mod.Refusing = Refusing
    monkeypatch.setitem(sys.modules, "fake_auperf_backend", mod)
    monkeypatch.setattr(backends, "_REGISTRY", dict(backends._REGISTRY))
    monkeypatch.setattr(backends, "_ALIASES", dict(backends._ALIASES))
    backends.register("fake-gpu", "fake_auperf_backend:Refusing")
    backends.register("broken", "no_such_module_for_auperf:Thing")
    with pytest.raises(ParameterError, match="already registered"):
        backends.register("fake-gpu", "fake_auperf_backend:Refusing")
    with pytest.raises(ParameterError, match="target"):
        backends.register("other", "no-colon")

    assert backends.resolve("fake-gpu").provider == "fake-gpu"  # it imports...
    with caplog.at_level(logging.WARNING, logger="auperf"):
        with backends.open_session(manifest, ["broken", "fake-gpu", "onnxruntime-cpu"]) as s:
            assert s.describe().provider == "onnxruntime-cpu"
    assert "provider broken cannot load: its module" in caplog.text
    assert "provider fake-gpu cannot load: no device" in caplog.text
    with pytest.raises(BackendUnavailableError) as ei:
        backends.open_session(manifest, ["fake-gpu", "broken"])
    assert ei.value.reasons["fake-gpu"] == "no device"
    assert "cannot be imported" in ei.value.reasons["broken"]


def test_open_session_options_by_family_and_provider(manifest):
    with pytest.raises(ParameterError, match="does not take"):
        backends.open_session(manifest, "onnxruntime-cpu", {"onnxruntime": {"precision": "x"}})
    with pytest.raises(ParameterError, match="expected a mapping"):
        backends.open_session(manifest, "onnxruntime-cpu", {"onnxruntime": 3})
    opts = {
        "onnxruntime": {"intra_op_num_threads": 2},
        "onnxruntime-cpu": {"inter_op_num_threads": 1},
    }
    with backends.open_session(manifest, "onnxruntime-cpu", opts) as s:
        assert s.describe().options == {"intra_op_num_threads": 2, "inter_op_num_threads": 1}


# -- session feed checks ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def ort_session(manifest):
    with backends.open_session(manifest, "onnxruntime-cpu") as s:
        yield s


def test_feed_checks_name_the_value(ort_session):
    x = _batch(2)
    with pytest.raises(FeedError, match="missing \\['image'\\]"):
        ort_session.run({})
    with pytest.raises(FeedError, match="unknown \\['extra'\\]"):
        ort_session.run({"image": x, "extra": x})
    with pytest.raises(FeedError, match="expected a mapping"):
        ort_session.run(x)
    with pytest.raises(FeedError, match="expected an array"):
        ort_session.run({"image": x.tolist()})
    with pytest.raises(ShapeError, match=r"feed\['image'\]: expected shape \(batch, 3, 64, 64\)"):
        ort_session.run({"image": x[0]})
    with pytest.raises(ShapeError, match="axis 3"):
        ort_session.run({"image": x[..., :32]})
    with pytest.raises(DTypeError, match="expected float32, got float64"):
        ort_session.run({"image": x.astype(np.float64)})
    with pytest.raises(DTypeError, match="got float16"):
        ort_session.run({"image": x.astype(np.float16)})


@settings(max_examples=40, deadline=None)
@given(
    batch=st.integers(0, 3),
    tail=st.sampled_from([(3, S, S), (S, S, 3), (3, S), (1, S, S), (3, S, S, 1), (3, S, S - 1)]),
    dtype=st.sampled_from(["float32", "float64", "float16", "uint8"]),
)
def test_feed_checks_accept_exactly_the_spec(ort_session, batch, tail, dtype):
    x = np.ones((batch, *tail), dtype=dtype)
    if tail != (3, S, S):
        with pytest.raises(ShapeError, match=r"feed\['image'\]"):
            ort_session.run({"image": x})
    elif dtype != "float32":
        with pytest.raises(DTypeError, match=f"expected float32, got {dtype}"):
            ort_session.run({"image": x})
    else:
        assert ort_session.run({"image": x})["logits"].shape == (batch, 2, 4)


def test_max_batch_size_is_enforced(manifest):
    s = backends.open_session(manifest, "onnxruntime-cpu")
    s.max_batch_size = 2
    s.run({"image": _batch(2)})
    with pytest.raises(ShapeError, match="exceeds this session's max_batch_size 2"):
        s.run({"image": _batch(3)})
    s.close()


def test_empty_batch_gives_empty_outputs(ort_session):
    out = ort_session.run({"image": np.zeros((0, 3, S, S), np.float32)})
    assert out["logits"].shape == (0, 2, 4) and out["logits"].dtype == np.float32


def test_closed_session_and_describe(manifest):
    with backends.open_session(manifest, "onnxruntime-cpu") as s:
        info = s.describe()
        assert (info.backend, info.provider, info.device, info.precision) == (
            "onnxruntime",
            "onnxruntime-cpu",
            "cpu",
            "float32",
        )
        assert info.execution_providers[0] == "CPUExecutionProvider"
        assert info.version == backends.get_backend("onnxruntime-cpu").version()
        assert json.loads(json.dumps(info.to_dict()))["manifest"] == "tiny"
        assert "onnxruntime-cpu" in repr(s)
    assert s.closed and "closed" in repr(s)
    with pytest.raises(SessionClosedError):
        s.run({"image": _batch(1)})
    s.close()  # idempotent


# -- onnxruntime -----------------------------------------------------------------------------
def test_onnxruntime_options(manifest, tmp_path):
    saved = tmp_path / "opt" / "tiny.optimised.onnx"
    b = backends.get_backend("onnxruntime-cpu")
    x = _batch(3)
    with b.open(manifest) as ref:
        want = ref.run({"image": x})["logits"]
    with b.open(
        manifest,
        intra_op_num_threads=1,
        inter_op_num_threads=1,
        graph_optimization_level="extended",
        optimized_model_path=saved,
    ) as s:
        np.testing.assert_allclose(s.run({"image": x})["logits"], want, atol=1e-5, rtol=0)
        assert s.inference_session.get_session_options().intra_op_num_threads == 1
    assert saved.is_file() and saved.stat().st_size > 0
    with b.open(manifest, graph_optimization_level="disable") as s:
        np.testing.assert_allclose(s.run({"image": x})["logits"], want, atol=1e-5, rtol=0)
    with pytest.raises(ParameterError, match="graph_optimization_level"):
        b.open(manifest, graph_optimization_level="max")
    with pytest.raises(ParameterError, match="intra_op_num_threads"):
        b.open(manifest, intra_op_num_threads=-1)
    with pytest.raises(ParameterError, match="device_id"):
        b.open(manifest, device_id=0)


def test_corrupt_onnx_is_refused(model_copy):
    onnx_path = model_copy / "tiny.onnx"
    data = bytearray(onnx_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx_path.write_bytes(bytes(data))
    m = load_manifest(model_copy)
    with pytest.raises(ManifestError, match="model.sha256"):
        backends.open_session(m, "onnxruntime-cpu")
    # Without the checksum, onnxruntime's own refusal (or a truncated file) is a BackendError.
    onnx_path.write_bytes(b"not an onnx file")
    with pytest.raises(BackendError, match="tiny.onnx: onnxruntime .* cannot open it"):
        backends.open_session(m, "onnxruntime-cpu", {"onnxruntime": {"verify": False}})


def test_missing_onnx_is_typed(model_copy):
    (model_copy / "tiny.onnx").unlink()
    m = load_manifest(model_copy)
    with pytest.raises(backends.ModelNotFoundError, match="tiny.onnx does not exist"):
        backends.open_session(m, "onnxruntime-cpu")


def test_manifest_that_disagrees_with_the_graph_is_refused(model_copy):
    path = model_copy / "tiny.json"
    d = json.loads(path.read_text())
    d["input"]["name"] = "pixels"
    path.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="no tensor 'pixels'"):
        backends.open_session(load_manifest(model_copy), "onnxruntime-cpu")


def test_newer_manifest_version_is_refused(model_copy):
    path = model_copy / "tiny.json"
    d = json.loads(path.read_text())
    d["format_version"] = 99
    path.write_text(json.dumps(d))
    with pytest.raises(ManifestVersionError, match="newer than this auperf reads"):
        load_manifest(model_copy)


# -- torch -----------------------------------------------------------------------------------
def test_torch_session_describe_and_weights_naming(manifest, tiny_model):
    assert weights_path(manifest) == tiny_model / "tiny.safetensors"
    with backends.open_session(manifest, "torch-cpu") as s:
        info = s.describe()
        assert (info.backend, info.device, info.precision) == ("torch", "cpu", "float32")
        assert info.options["backbone"] == "smallnet" and info.model.endswith("tiny.safetensors")
        assert not s.module.training


def test_torch_options_and_errors(manifest, model_copy):
    b = backends.get_backend("torch-cpu")
    with pytest.raises(ParameterError, match="CPU runs float32 only"):
        b.open(manifest, precision="float16")
    with pytest.raises(ParameterError, match="cuda_graphs"):
        b.open(manifest, cuda_graphs=True)
    with pytest.raises(ParameterError, match="does not take"):
        b.open(manifest, intra_op_num_threads=1)
    (model_copy / "tiny.safetensors").unlink()
    with pytest.raises(WeightsError, match="tiny.safetensors does not exist"):
        b.open(load_manifest(model_copy))
    (model_copy / "tiny.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="has sha256 .* the manifest records"):
        b.open(load_manifest(model_copy))
    (model_copy / "garbage.safetensors").write_bytes(b"garbage")
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        b.open(load_manifest(model_copy), weights=model_copy / "garbage.safetensors")


def test_torch_weights_that_do_not_fit(manifest, model_copy):
    import torch
    from safetensors.torch import save_file

    from auperf.nets.m0 import M0Net

    save_file(M0Net(5, "smallnet").state_dict(), str(model_copy / "five.safetensors"))
    with pytest.raises(WeightsError, match="does not fit M0 with backbone 'smallnet' and 4 AUs"):
        backends.get_backend("torch-cpu").open(
            load_manifest(model_copy), weights=model_copy / "five.safetensors"
        )
    torch.manual_seed(1)
    other = M0Net(4, "smallnet", noisy_heads=False)  # fits: no noisy heads needed
    save_file(other.state_dict(), str(model_copy / "other.safetensors"))
    with backends.get_backend("torch-cpu").open(
        load_manifest(model_copy), weights=model_copy / "other.safetensors"
    ) as s:
        assert s.describe().model.endswith("other.safetensors")


def test_torch_needs_the_backbone_name(model_copy):
    path = model_copy / "tiny.json"
    d = json.loads(path.read_text())
    d["training"].pop("config")
    path.write_text(json.dumps(d))
    m = load_manifest(model_copy)
    with pytest.raises(ManifestError, match="training.config.backbone: missing"):
        backends.get_backend("torch-cpu").open(m)
    with backends.get_backend("torch-cpu").open(m, backbone="smallnet") as s:
        assert s.run({"image": _batch(2)})["logits"].shape == (2, 2, 4)


# -- every backend against the torch reference -----------------------------------------------
@pytest.fixture(scope="module")
def reference_batch(faces, manifest):
    """Face crops made as the manifest says, plus random smooth images: (9, 3, S, S)."""
    crops = crops_like_manifest(manifest, faces.images, faces.landmarks5)
    return np.concatenate([crops, _batch(3, seed=5)], axis=0)


@pytest.mark.parametrize(
    "provider", ["onnxruntime-cpu", "onnxruntime-cuda", "onnxruntime-tensorrt", "torch-cuda"]
)
def test_backend_matches_torch_reference(provider, manifest, reference_batch):
    if provider not in backends.available_backends():
        pytest.skip(f"{provider}: {backends.unavailable_reasons()[provider]}")
    with backends.open_session(manifest, "torch-cpu") as ref:
        want = ref.run({"image": reference_batch})["logits"]
    p_ref = _fuse(want)
    assert np.ptp(p_ref, axis=0).max() > 1e-2  # faces give clearly different outputs
    with backends.open_session(manifest, provider) as s:
        for b in (1, reference_batch.shape[0]):
            got = s.run({"image": reference_batch[:b]})["logits"]
            got = got if isinstance(got, np.ndarray) else got.cpu().numpy()
            assert got.shape == (b, 2, 4) and got.dtype == np.float32
            np.testing.assert_allclose(_fuse(got), p_ref[:b], atol=1e-4, rtol=0)
            np.testing.assert_allclose(got, want[:b], atol=1e-4, rtol=0)


def test_manifest_weights_entry_is_read_and_checked(tmp_path):
    """A manifest's model.weights names the torch weights and its sha256; a changed file is
    refused by the torch backend before it is loaded."""
    import json
    import shutil

    from auperf import backends
    from auperf.errors import ManifestError, WeightsError
    from auperf.manifest import Manifest
    from auperf.models import DEMO_DIR, load_manifest, weights_path

    demo = load_manifest(None)
    assert demo.model.weights is not None and demo.model.weights.format == "safetensors"
    assert weights_path(demo) == DEMO_DIR / demo.model.weights.file
    copy = tmp_path / "demo"
    shutil.copytree(DEMO_DIR, copy)
    manifest_file = next(copy.glob("*.json"))
    data = json.loads(manifest_file.read_text())
    assert Manifest.from_dict(data).to_dict()["model"]["weights"] == data["model"]["weights"]
    bad = json.loads(json.dumps(data))
    bad["model"]["weights"]["sha256"] = "xyz"
    with pytest.raises(ManifestError, match=r"model\.weights\.sha256"):
        Manifest.from_dict(bad)
    bad["model"]["weights"] = {"file": "w.safetensors", "format": "pickle", "sha256": "0" * 64}
    with pytest.raises(ManifestError, match=r"model\.weights\.format"):
        Manifest.from_dict(bad)
    weights = copy / data["model"]["weights"]["file"]
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0xFF
    weights.write_bytes(bytes(blob))
    with pytest.raises(WeightsError, match="sha256"):
        backends.open_session(Manifest.load(manifest_file), "torch-cpu")
