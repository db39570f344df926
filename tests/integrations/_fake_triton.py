"""A small stand-in for a Triton server, for tests only: no Triton server runs here.

It reads a repository written by ``auperf.integrations.triton.export_repository``: every
``config.pbtxt`` is parsed with Triton's own ``ModelConfig`` protobuf schema, network models run
in onnxruntime, Python-backend models run their generated ``model.py`` against a fake
``triton_python_backend_utils`` module, and ensembles run their steps in order. Every tensor
that enters or leaves a model is checked against the model's config (name, data type, rank,
fixed sizes, ``max_batch_size``), as Triton does, so a config that disagrees with the model or
with the tensors the client sends fails here.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

TYPE_TO_NUMPY = {
    "TYPE_FP32": np.float32,
    "TYPE_FP16": np.float16,
    "TYPE_FP64": np.float64,
    "TYPE_UINT8": np.uint8,
    "TYPE_INT64": np.int64,
    "TYPE_BOOL": np.bool_,
}
WIRE_TO_NUMPY = {
    "FP32": np.float32,
    "FP16": np.float16,
    "FP64": np.float64,
    "UINT8": np.uint8,
    "INT64": np.int64,
    "BOOL": np.bool_,
}


def parse_config(path: Path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(Path(path).read_text(), model_config_pb2.ModelConfig())


def _type_name(cfg_tensor) -> str:
    from tritonclient.grpc import model_config_pb2

    return model_config_pb2.DataType.Name(cfg_tensor.data_type)


def check_tensor(cfg, tensor_cfgs, name: str, array: np.ndarray, what: str) -> None:
    """Raise AssertionError if ``array`` does not fit the config entry ``name``."""
    match = [t for t in tensor_cfgs if t.name == name]
    assert match, f"{cfg.name}: no {what} named {name!r} in config"
    t = match[0]
    assert array.dtype == TYPE_TO_NUMPY[_type_name(t)], (
        f"{cfg.name}.{name}: dtype {array.dtype} vs config {_type_name(t)}"
    )
    dims = list(t.dims)
    shape = list(array.shape)
    if cfg.max_batch_size > 0:
        assert 1 <= shape[0] <= cfg.max_batch_size, f"{cfg.name}: batch {shape[0]} too large"
        shape = shape[1:]
    assert len(shape) == len(dims), f"{cfg.name}.{name}: rank of {array.shape} vs dims {dims}"
    for s, d in zip(shape, dims, strict=True):
        assert d == -1 or d == s, f"{cfg.name}.{name}: shape {array.shape} vs dims {dims}"


def _fake_pb_utils() -> types.ModuleType:
    mod = types.ModuleType("triton_python_backend_utils")

    class Tensor:
        def __init__(self, name, array):
            self._name, self._array = name, np.asarray(array)

        def name(self):
            return self._name

        def as_numpy(self):
            return self._array

    class TritonError(Exception):
        pass

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    class Request:
        def __init__(self, tensors):
            self.tensors = tensors

    def get_input_tensor_by_name(request, name):
        return request.tensors.get(name)

    mod.Tensor, mod.TritonError, mod.InferenceResponse = Tensor, TritonError, InferenceResponse
    mod.Request, mod.get_input_tensor_by_name = Request, get_input_tensor_by_name
    return mod


class FakeResult:
    """What ``InferenceServerClient.infer`` returns: ``as_numpy(name)``."""

    def __init__(self, outputs: dict[str, np.ndarray]):
        self.outputs = outputs

    def as_numpy(self, name):
        return self.outputs.get(name)


class FakeTritonServer:
    """Runs the models of a repository folder; ``infer`` has tritonclient's signature."""

    def __init__(self, repo: Path):
        self.repo = Path(repo)
        self.configs = {
            p.parent.name: parse_config(p) for p in sorted(self.repo.glob("*/config.pbtxt"))
        }
        for name, cfg in self.configs.items():
            assert cfg.name == name, f"{name}: config name {cfg.name!r} differs from the folder"
        self._pb = _fake_pb_utils()
        self._python: dict[str, object] = {}
        self._ort: dict[str, object] = {}
        self.calls: list[tuple[str, dict[str, tuple]]] = []

    # -- one model --------------------------------------------------------------------------
    def run_model(self, name: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        cfg = self.configs[name]
        for k, v in inputs.items():
            check_tensor(cfg, cfg.input, k, v, "input")
        assert {t.name for t in cfg.input} == set(inputs), f"{name}: inputs {sorted(inputs)}"
        self.calls.append((name, {k: v.shape for k, v in inputs.items()}))
        if cfg.platform == "ensemble":
            out = self._run_ensemble(cfg, inputs)
        elif cfg.platform == "onnxruntime_onnx":
            out = self._run_onnx(name, inputs)
        elif cfg.backend == "python":
            out = self._run_python(name, inputs)
        else:
            raise AssertionError(f"{name}: the fake server cannot run {cfg.platform!r}")
        for k, v in out.items():
            check_tensor(cfg, cfg.output, k, v, "output")
        return out

    def _run_onnx(self, name, inputs):
        import onnxruntime as ort

        if name not in self._ort:
            self._ort[name] = ort.InferenceSession(
                str(self.repo / name / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
            )
        sess = self._ort[name]
        names = [o.name for o in sess.get_outputs()]
        return dict(zip(names, sess.run(names, inputs), strict=True))

    def _run_python(self, name, inputs):
        if name not in self._python:
            sys.modules["triton_python_backend_utils"] = self._pb
            try:
                path = self.repo / name / "1" / "model.py"
                spec = importlib.util.spec_from_file_location(f"_triton_{name}", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
            finally:
                sys.modules.pop("triton_python_backend_utils", None)
            model = module.TritonPythonModel()
            model.initialize({"model_repository": str(self.repo / name), "model_version": "1"})
            self._python[name] = model
        request = self._pb.Request({k: self._pb.Tensor(k, v) for k, v in inputs.items()})
        (response,) = self._python[name].execute([request])
        if response.error is not None:
            raise RuntimeError(f"{name}: {response.error}")
        return {t.name(): t.as_numpy() for t in response.output_tensors}

    def _run_ensemble(self, cfg, inputs):
        tensors = dict(inputs)
        for step in cfg.ensemble_scheduling.step:
            feed = {k: tensors[v] for k, v in step.input_map.items()}
            out = self.run_model(step.model_name, feed)
            for k, v in step.output_map.items():
                tensors[v] = out[k]
        return {t.name: tensors[t.name] for t in cfg.output}

    # -- the tritonclient surface -------------------------------------------------------------
    def infer(self, model_name, inputs, outputs=None, **_kwargs):
        feed = {}
        for t in inputs:
            meta = t._get_tensor()
            raw = t._get_binary_data()
            assert raw is not None, "the client should send binary tensors"
            arr = np.frombuffer(raw, dtype=WIRE_TO_NUMPY[meta["datatype"]])
            feed[meta["name"]] = arr.reshape(meta["shape"]).copy()
        out = self.run_model(model_name, feed)
        wanted = [o._get_tensor()["name"] for o in outputs] if outputs else list(out)
        return FakeResult({k: out[k] for k in wanted})


NUMPY_TO_WIRE = {np.dtype(v).name: k for k, v in WIRE_TO_NUMPY.items()}


def serve_http(server: FakeTritonServer):
    """Serve ``server`` over HTTP with the KServe v2 inference protocol and its binary tensor
    extension (the subset ``tritonclient.http`` uses for ``infer``). Returns ``(url, stop)``."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def do_POST(self):
            parts = self.path.strip("/").split("/")
            if len(parts) < 4 or parts[:2] != ["v2", "models"] or parts[-1] != "infer":
                self.send_error(404)
                return
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hlen = int(self.headers.get("Inference-Header-Content-Length", len(body)))
            header = json.loads(body[:hlen])
            offset = hlen
            feed = {}
            for t in header["inputs"]:
                size = t["parameters"]["binary_data_size"]
                arr = np.frombuffer(body[offset : offset + size], WIRE_TO_NUMPY[t["datatype"]])
                feed[t["name"]] = arr.reshape(t["shape"]).copy()
                offset += size
            try:
                out = server.run_model(parts[2], feed)
            except Exception as exc:  # noqa: BLE001 - reported to the client as Triton does
                msg = json.dumps({"error": str(exc)}).encode()
                self.send_response(400)
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            wanted = [o["name"] for o in header.get("outputs", [])] or list(out)
            blobs, outs = [], []
            for name in wanted:
                a = np.ascontiguousarray(out[name])
                blobs.append(a.tobytes())
                outs.append(
                    {
                        "name": name,
                        "datatype": NUMPY_TO_WIRE[a.dtype.name],
                        "shape": list(a.shape),
                        "parameters": {"binary_data_size": a.nbytes},
                    }
                )
            head = json.dumps({"model_name": parts[2], "outputs": outs}).encode()
            payload = head + b"".join(blobs)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Inference-Header-Content-Length", str(len(head)))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()

    def stop():
        httpd.shutdown()
        httpd.server_close()

    return f"127.0.0.1:{httpd.server_address[1]}", stop
