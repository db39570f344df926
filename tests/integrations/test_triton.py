"""Triton model repository export and the tritonclient helper.

No Triton server can run here: configs are parsed with Triton's published ``ModelConfig``
protobuf schema (``tritonclient.grpc.model_config_pb2``) and the repository is run by the
stand-in server of ``_fake_triton.py`` (onnxruntime for the network, the generated ``model.py``
files for the Python-backend models, the ensemble's steps in order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tritonclient.http", reason="tritonclient is not installed (auperf[triton])")
pytest.importorskip(
    "tritonclient.grpc.model_config_pb2",
    reason="Triton's model_config_pb2 needs tritonclient[grpc]",
)

from auperf import errors  # noqa: E402
from auperf.integrations import triton  # noqa: E402

from _fake_triton import FakeTritonServer, parse_config  # noqa: E402

NAME = "m0-smallnet-synth-demo"


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("triton") / "repo"
    triton.export_repository(None, out, max_batch_size=4, preferred_batch_sizes=(2, 4, 8))
    return out


def test_layout_and_configs_parse_against_triton_schema(repo):
    names = sorted(p.name for p in repo.iterdir())
    assert names == sorted([NAME, f"{NAME}_align", f"{NAME}_fuse", f"{NAME}_onnx"])
    for n in names:
        assert (repo / n / "1").is_dir()
        cfg = parse_config(repo / n / "config.pbtxt")  # raises on any unknown field or bad value
        assert cfg.name == n
    assert (repo / f"{NAME}_onnx" / "1" / "model.onnx").is_file()
    assert (repo / f"{NAME}_align" / "1" / "model.py").is_file()


def test_network_config_matches_the_onnx_graph(repo):
    import onnx
    from tritonclient.grpc import model_config_pb2 as pb

    cfg = parse_config(repo / f"{NAME}_onnx" / "config.pbtxt")
    assert cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 4
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]  # 8 > max_batch_size
    assert cfg.dynamic_batching.max_queue_delay_microseconds == 500
    (group,) = cfg.instance_group
    assert group.kind == pb.ModelInstanceGroup.KIND_GPU and group.count == 1
    graph = onnx.load(str(repo / f"{NAME}_onnx" / "1" / "model.onnx")).graph
    for cfg_list, onnx_list in ((cfg.input, graph.input), (cfg.output, graph.output)):
        assert [t.name for t in cfg_list] == [t.name for t in onnx_list]
        for t, o in zip(cfg_list, onnx_list, strict=True):
            dims = [d.dim_value if d.dim_value else -1 for d in o.type.tensor_type.shape.dim]
            assert [-1, *t.dims] == dims  # the first ONNX axis is the batch
            assert t.data_type == pb.TYPE_FP32 and o.type.tensor_type.elem_type == 1


def test_ensemble_wiring_is_consistent(repo):
    ens = parse_config(repo / NAME / "config.pbtxt")
    assert ens.platform == "ensemble" and ens.max_batch_size == 0
    steps = list(ens.ensemble_scheduling.step)
    assert [s.model_name for s in steps] == [f"{NAME}_align", f"{NAME}_onnx", f"{NAME}_fuse"]
    produced = {t.name for t in ens.input}
    for s in steps:
        cfg = parse_config(repo / s.model_name / "config.pbtxt")
        assert set(s.input_map) == {t.name for t in cfg.input}
        assert set(s.input_map.values()) <= produced
        assert set(s.output_map) <= {t.name for t in cfg.output}
        produced |= set(s.output_map.values())
    assert {t.name for t in ens.output} <= produced


def test_tensorrt_plan_and_options(tmp_path):
    from tritonclient.grpc import model_config_pb2 as pb

    plan = tmp_path / "m.engine"
    plan.write_bytes(b"\x00not-a-real-engine")
    info = triton.export_repository(
        None,
        tmp_path / "r",
        tensorrt_engine=plan,
        instance_count=2,
        gpus=[0, 1],
        onnx_tensorrt=True,
        max_batch_size=32,
    )
    assert info.network == f"{NAME}_trt"
    trt = parse_config(tmp_path / "r" / f"{NAME}_trt" / "config.pbtxt")
    assert trt.platform == "tensorrt_plan" and trt.max_batch_size == 32
    assert list(trt.instance_group[0].gpus) == [0, 1] and trt.instance_group[0].count == 2
    assert (tmp_path / "r" / f"{NAME}_trt" / "1" / "model.plan").read_bytes() == plan.read_bytes()
    onnx_cfg = parse_config(tmp_path / "r" / f"{NAME}_onnx" / "config.pbtxt")
    acc = onnx_cfg.optimization.execution_accelerators.gpu_execution_accelerator
    assert acc[0].name == "tensorrt" and acc[0].parameters["precision_mode"] == "FP16"
    ens = parse_config(tmp_path / "r" / NAME / "config.pbtxt")
    assert ens.ensemble_scheduling.step[1].model_name == f"{NAME}_trt"
    cpu = triton.export_repository(
        None, tmp_path / "c", instance_kind="cpu", ensemble=False, name="au"
    )
    assert sorted(cpu.models) == ["au_onnx"]
    cfg = parse_config(tmp_path / "c" / "au_onnx" / "config.pbtxt")
    assert cfg.instance_group[0].kind == pb.ModelInstanceGroup.KIND_CPU
    assert not cfg.HasField("optimization")


def test_pbtxt_writer_against_protobuf_text_format():
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as pb

    text = triton.to_pbtxt(
        {
            "name": 'a "quoted" name',
            "max_batch_size": 8,
            "parameters": [{"key": "k", "value": {"string_value": "v"}}],
            "dynamic_batching": {"preferred_batch_size": [2, 4], "preserve_ordering": True},
        }
    )
    cfg = text_format.Parse(text, pb.ModelConfig())
    assert cfg.name == 'a "quoted" name' and cfg.max_batch_size == 8
    assert cfg.parameters["k"].string_value == "v"
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4]
    assert cfg.dynamic_batching.preserve_ordering is True


@pytest.mark.parametrize("mode", ["ensemble", "model"])
def test_client_equals_detector(repo, faces, detector, mode):
    frames, lm, fidx = faces
    server = FakeTritonServer(repo)
    client = triton.TritonDetector(mode=mode, client=server, max_batch_size=4)
    got = client.detect(frames, lm, fidx)
    want = detector.detect(frames, lm, fidx)
    assert got.au_ids == want.au_ids and got.au_names == want.au_names
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=2e-6, rtol=0)
    np.testing.assert_array_equal(got.active, want.active)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-9)
    np.testing.assert_array_equal(got.frame_index, want.frame_index)
    np.testing.assert_array_equal(got.valid, want.valid)
    assert got.columns() == want.columns()
    # 12 faces in requests of at most 4 faces (the network's max_batch_size)
    top, key = (NAME, "LANDMARKS") if mode == "ensemble" else (f"{NAME}_onnx", "image")
    assert [s[key][0] for m, s in server.calls if m == top] == [4, 4, 4]


def test_client_marks_invalid_faces_and_reads_bgr(repo, faces, detector):
    frames, lm, fidx = faces
    lm = lm.copy()
    lm[3, 2] = np.nan
    lm[7] = lm[7, :1]  # all points coincide
    client = triton.TritonDetector(client=FakeTritonServer(repo), max_batch_size=4)
    bgr = np.ascontiguousarray(frames[..., ::-1])
    got = client.detect(bgr, lm, fidx, frames_order="BGR", invalid="mark")
    want = detector.detect(frames, lm, fidx, invalid="mark")
    assert got.valid.tolist() == want.valid.tolist() and not got.valid[[3, 7]].any()
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=2e-6)
    with pytest.raises(errors.NonFiniteError, match="faces \\[3\\]"):
        client.detect(frames, lm, fidx)
    lm[3] = faces[1][3]
    with pytest.raises(errors.SingularMatrixError, match="faces \\[7\\]"):
        client.detect(frames, lm, fidx)


def test_python_model_reports_errors_per_request(repo):
    server = FakeTritonServer(repo)
    frames = np.zeros((1, 32, 32, 3), np.uint8)
    lm = np.zeros((1, 5, 2))  # coincident points
    with pytest.raises(RuntimeError, match="coincide|singular|degenerate"):
        server.run_model(
            f"{NAME}_align",
            {"FRAMES": frames, "LANDMARKS": lm, "FRAME_INDEX": np.zeros(1, np.int64)},
        )


def test_export_errors(tmp_path, repo):
    with pytest.raises(FileExistsError, match="overwrite"):
        triton.export_repository(None, repo)
    for kwargs, err, text in [
        ({"max_batch_size": 0}, errors.ParameterError, "max_batch_size"),
        ({"instance_count": 1.5}, errors.ParameterError, "instance_count"),
        ({"instance_kind": "tpu"}, errors.ValueRangeError, "instance_kind"),
        ({"gpus": [-1]}, errors.ParameterError, "gpus"),
        ({"preferred_batch_sizes": [0]}, errors.ParameterError, "preferred_batch_sizes"),
        ({"tensorrt_engine": tmp_path / "none.plan"}, errors.ParameterError, "tensorrt_engine"),
    ]:
        with pytest.raises(err, match=text):
            triton.export_repository(None, tmp_path / "x", **kwargs)
    with pytest.raises(errors.ModelNotFoundError):
        triton.export_repository(tmp_path / "missing", tmp_path / "x")
    with pytest.raises(errors.ValueRangeError, match="mode"):
        triton.TritonDetector(mode="grpc", client=object())


def test_cli_export_triton(tmp_path):
    from click.testing import CliRunner

    from auperf.cli import main

    res = CliRunner().invoke(
        main, ["export-triton", "--repo", str(tmp_path / "r"), "--max-batch-size", "16"]
    )
    assert res.exit_code == 0, res.output
    assert "ensemble" in res.output
    cfg = parse_config(tmp_path / "r" / f"{NAME}_onnx" / "config.pbtxt")
    assert cfg.max_batch_size == 16
    again = CliRunner().invoke(main, ["export-triton", "--repo", str(tmp_path / "r")])
    assert again.exit_code == 1 and "overwrite" in again.output


def test_client_over_http_with_tritonclient(repo, faces, detector):
    """The default client: tritonclient.http over a real HTTP connection (KServe v2 with
    binary tensors) to the stand-in server."""
    from _fake_triton import serve_http

    frames, lm, fidx = faces
    url, stop = serve_http(FakeTritonServer(repo))
    try:
        client = triton.TritonDetector(url=url, max_batch_size=4)
        got = client.detect(frames, lm, fidx)
        with pytest.raises(Exception, match="coincide|singular|degenerate"):
            # a request the server refuses surfaces as the client library's error
            client.client.infer(
                f"{NAME}_align",
                [
                    client._input("FRAMES", frames[:1]),
                    client._input("LANDMARKS", np.zeros((1, 5, 2))),
                    client._input("FRAME_INDEX", np.zeros(1, np.int64)),
                ],
            )
    finally:
        stop()
    want = detector.detect(frames, lm, fidx)
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=2e-6, rtol=0)
    np.testing.assert_array_equal(got.active, want.active)
    np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-9)
