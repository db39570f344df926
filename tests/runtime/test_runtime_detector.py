"""auperf.Detector end to end on rendered faces, against the pipeline run by hand."""

from __future__ import annotations

import json
import sys
import threading

import numpy as np
import onnxruntime as ort
import pytest
from _runtime_helpers import AU_IDS, AU_NAMES, S, crops_like_manifest

from auperf import align, backends, models
from auperf.backends import (
    BackendUnavailableError,
    ModelNotFoundError,
    OptionalDependencyError,
    SessionClosedError,
)
from auperf.detector import DetectionResult, Detector, to_five_points
from auperf.errors import (
    DTypeError,
    IndexRangeError,
    ManifestError,
    ManifestVersionError,
    NonFiniteError,
    ParameterError,
    ShapeError,
    SingularMatrixError,
    ValueRangeError,
)
from auperf.ops import fuse_views


@pytest.fixture(scope="module")
def det(tiny_model):
    with Detector(tiny_model, backend="onnxruntime-cpu") as d:
        yield d


def _by_hand(manifest, images, landmarks5, frame_index=None, thresholds=None):
    """estimate_similarity + warp_faces + onnxruntime + fuse_views, written out."""
    crops = crops_like_manifest(manifest, images, landmarks5, frame_index)
    sess = ort.InferenceSession(str(manifest.model_path()), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"image": crops})[0]
    th = np.asarray(manifest.thresholds if thresholds is None else thresholds, np.float32)
    return fuse_views(logits, th)


def test_detect_equals_the_pipeline_by_hand(det, faces):
    res = det.detect(faces.images, landmarks=faces.landmarks5)
    p, a = _by_hand(det.manifest, faces.images, faces.landmarks5)
    assert isinstance(res, DetectionResult) and len(res) == 6
    assert res.probabilities.shape == (6, 4) and res.probabilities.dtype == np.float32
    assert res.active.dtype == np.bool_
    np.testing.assert_allclose(res.probabilities, p, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(res.active, a)
    np.testing.assert_array_equal(res.active, res.probabilities >= res.thresholds)
    assert np.ptp(res.probabilities, axis=0).max() > 1e-2  # faces differ
    assert res.au_ids == tuple(AU_IDS) and res.au_names == tuple(AU_NAMES)
    np.testing.assert_array_equal(res.frame_index, np.arange(6))
    assert res.valid.all()
    np.testing.assert_array_equal(res.thresholds, np.float32([0.5, 0.45, 0.55, 0.5]))


def test_boxes_enclose_the_face(det, faces):
    res = det.detect(faces.images, faces.landmarks5)
    lm = faces.landmarks68
    assert (res.boxes[:, 0] < lm[..., 0].min(axis=1)).all()
    assert (res.boxes[:, 1] < lm[..., 1].min(axis=1)).all()
    assert (res.boxes[:, 2] > lm[..., 0].max(axis=1)).all()
    # The crop's outline maps back onto the box corners for an unrotated face.
    m = align.estimate_similarity(faces.landmarks5, np.asarray(det.manifest.input.alignment.points))
    inv = align.invert_affine(m)
    centre = inv[:, :, :2] @ np.array([(S - 1) / 2, (S - 1) / 2]) + inv[:, :, 2]
    np.testing.assert_allclose((res.boxes[:, :2] + res.boxes[:, 2:]) / 2, centre, atol=1e-9)


def test_many_faces_per_frame_and_batching(tiny_model, det, faces):
    # Frames 0 and 3, each face used twice, in a scrambled order.
    frames = faces.images[[0, 3]]
    order = np.array([1, 0, 0, 1, 1])
    src = np.array([3, 0, 0, 3, 3])
    lm = faces.landmarks5[src]
    res = det.detect(frames, lm, frame_index=order)
    p, _ = _by_hand(det.manifest, frames, lm, order)
    np.testing.assert_allclose(res.probabilities, p, atol=1e-6, rtol=0)
    np.testing.assert_array_equal(res.frame_index, order)
    np.testing.assert_allclose(res.probabilities[1], res.probabilities[2], atol=1e-6)
    with Detector(tiny_model, backend="onnxruntime-cpu", batch_size=2) as small:
        np.testing.assert_allclose(
            small.detect(frames, lm, order).probabilities, res.probabilities, atol=1e-5, rtol=0
        )


def test_single_frame_and_bgr_frames(det, faces):
    one = det.detect(faces.images[2], faces.landmarks5[2:3])
    ref = det.detect(faces.images, faces.landmarks5)
    np.testing.assert_allclose(one.probabilities[0], ref.probabilities[2], atol=1e-6)
    bgr = det.detect(faces.images[..., ::-1].copy(), faces.landmarks5, frames_order="BGR")
    np.testing.assert_allclose(bgr.probabilities, ref.probabilities, atol=1e-6)


def test_68_landmarks_reduce_to_5(det, faces):
    lm68 = faces.landmarks68
    five = to_five_points(lm68)
    np.testing.assert_allclose(five[:, 0], (lm68[:, 36] + lm68[:, 39]) / 2)
    np.testing.assert_allclose(five[:, 1], (lm68[:, 42] + lm68[:, 45]) / 2)
    np.testing.assert_allclose(five, faces.landmarks5, atol=1e-9)  # the renderer's own rule
    np.testing.assert_array_equal(five[:, 2:], lm68[:, [30, 48, 54]])
    res = det.detect(faces.images, lm68)
    p, _ = _by_hand(det.manifest, faces.images, five)
    np.testing.assert_allclose(res.probabilities, p, atol=1e-6, rtol=0)


def test_torch_backend_detector_matches_onnxruntime(tiny_model, det, faces):
    with Detector(tiny_model, backend="torch-cpu") as d:
        assert d.describe()["session"]["backend"] == "torch"
        res = d.detect(faces.images, faces.landmarks5)
    ref = det.detect(faces.images, faces.landmarks5)
    np.testing.assert_allclose(res.probabilities, ref.probabilities, atol=1e-4, rtol=0)


def test_zero_faces_give_an_empty_result(det, faces):
    res = det.detect(faces.images, np.zeros((0, 5, 2)), frame_index=np.zeros(0, np.int64))
    assert len(res) == 0
    assert res.probabilities.shape == (0, 4) and res.active.shape == (0, 4)
    assert res.boxes.shape == (0, 4) and res.frame_index.shape == (0,)
    assert res.to_records() == []
    res = det.detect(faces.images[:1], np.zeros((0, 68, 2)))
    assert len(res) == 0


def test_nan_landmarks_raise_naming_the_face(det, faces):
    lm = faces.landmarks5.copy()
    lm[4, 2, 0] = np.nan
    with pytest.raises(NonFiniteError, match=r"faces \[4\] \(frames \[4\]\)"):
        det.detect(faces.images, lm)


def test_invalid_faces_can_be_marked(det, faces):
    lm = faces.landmarks5.copy()
    lm[1, 0, 1] = np.inf
    lm[3] = lm[3, :1]  # all five points coincide
    with pytest.raises(SingularMatrixError, match=r"faces \[2\] \(frames \[3\]\)"):
        det.detect(faces.images, np.delete(lm, 1, axis=0), frame_index=np.array([0, 2, 3, 4, 5]))
    res = det.detect(faces.images, lm, invalid="mark")
    np.testing.assert_array_equal(res.valid, [True, False, True, False, True, True])
    assert np.isnan(res.probabilities[[1, 3]]).all() and not res.active[[1, 3]].any()
    assert np.isnan(res.boxes[[1, 3]]).all()
    ref = det.detect(faces.images, faces.landmarks5)
    keep = [0, 2, 4, 5]
    np.testing.assert_allclose(res.probabilities[keep], ref.probabilities[keep], atol=1e-6)
    with pytest.raises(ValueRangeError, match="invalid"):
        det.detect(faces.images, faces.landmarks5, invalid="skip")


def test_bad_inputs_name_the_value(det, faces):
    img, lm = faces.images, faces.landmarks5
    with pytest.raises(ShapeError, match=r"frames: expected shape \(B, H, W, 3\)"):
        det.detect(img[..., :2], lm)
    with pytest.raises(ShapeError, match="frames"):
        det.detect(img[0, 0], lm[:1])
    with pytest.raises(DTypeError, match="frames: expected uint8, got float32"):
        det.detect(img.astype(np.float32), lm)
    with pytest.raises(DTypeError, match="frames"):
        det.detect(img.tolist(), lm)
    with pytest.raises(ShapeError, match=r"landmarks: expected shape \(N, 5, 2\) or \(N, 68, 2\)"):
        det.detect(img, lm[:, :4])
    with pytest.raises(DTypeError, match="landmarks"):
        det.detect(img, np.array([["a"]]))
    with pytest.raises(ShapeError, match="frame_index: required"):
        det.detect(img, lm[:3])
    with pytest.raises(ShapeError, match=r"frame_index: expected shape \(6,\)"):
        det.detect(img, lm, frame_index=np.arange(5))
    with pytest.raises(DTypeError, match="frame_index: expected integers"):
        det.detect(img, lm, frame_index=np.arange(6.0))
    with pytest.raises(IndexRangeError, match="frame_index: entry 5 is 6"):
        det.detect(img, lm, frame_index=np.array([0, 1, 2, 3, 4, 6]))
    with pytest.raises(ValueRangeError, match="frames_order"):
        det.detect(img, lm, frames_order="RGBA")


def test_threshold_override(tiny_model, faces):
    with Detector(tiny_model, backend="onnxruntime-cpu", thresholds=0.6) as d:
        res = d.detect(faces.images, faces.landmarks5)
        np.testing.assert_array_equal(d.thresholds, np.full(4, 0.6, np.float32))
    np.testing.assert_array_equal(res.active, res.probabilities >= np.float32(0.6))
    th = [0.7, 0.1, 0.9, 0.0]
    with Detector(tiny_model, backend="onnxruntime-cpu", thresholds=th) as d:
        res = d.detect(faces.images, faces.landmarks5)
    _, a = _by_hand(d.manifest, faces.images, faces.landmarks5, thresholds=th)
    np.testing.assert_array_equal(res.active, a)
    assert res.active[:, 3].all() and not res.active[:, 2].any()
    with pytest.raises(ShapeError, match=r"thresholds: expected a scalar or \(4,\)"):
        Detector(tiny_model, backend="onnxruntime-cpu", thresholds=[0.5, 0.5])
    with pytest.raises(ValueRangeError, match="thresholds: entry 1 is 1.5"):
        Detector(tiny_model, backend="onnxruntime-cpu", thresholds=[0.5, 1.5, 0.5, 0.5])


def test_constructor_arguments(tiny_model):
    with pytest.raises(ParameterError, match="batch_size"):
        Detector(tiny_model, batch_size=0)
    with pytest.raises(ParameterError, match="either backend"):
        Detector(tiny_model, backend="torch", providers=["onnxruntime-cpu"])
    with pytest.raises(ParameterError, match="non-empty list"):
        Detector(tiny_model, providers="onnxruntime-cpu")
    with pytest.raises(BackendUnavailableError, match="tensorrt package is not installed"):
        Detector(tiny_model, backend="tensorrt")
    with Detector(tiny_model, providers=["tensorrt", "torch-cpu"]) as d:
        assert d.session.describe().provider == "torch-cpu"
    with Detector(tiny_model) as d:  # "auto"
        assert d.describe()["session"]["provider"] == backends.available_backends()[0]
    manifest = models.load_manifest(tiny_model / "tiny.json")
    with Detector(
        manifest,
        backend="onnxruntime-cpu",
        backend_options={"onnxruntime": {"intra_op_num_threads": 1}},
    ) as d:
        assert d.describe()["session"]["options"] == {"intra_op_num_threads": 1}
        assert d.au_ids == AU_IDS and d.au_names == AU_NAMES


def test_records_and_pandas(det, faces, monkeypatch):
    res = det.detect(faces.images[:2], faces.landmarks5[:2])
    rows = res.to_records()
    assert len(rows) == 2 and list(rows[0]) == res.columns()
    assert rows[1]["frame"] == 1 and rows[1]["AU12"] == pytest.approx(res.probabilities[1, 3])
    assert rows[0]["AU04_active"] == bool(res.active[0, 1])
    json.dumps(rows)  # plain Python values
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if not installed
    with pytest.raises(OptionalDependencyError, match="pandas is not installed"):
        res.to_pandas()
    monkeypatch.undo()
    pd = pytest.importorskip("pandas")
    df = res.to_pandas()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == res.columns()
    np.testing.assert_allclose(df["AU01"].to_numpy(), res.probabilities[:, 0])


def test_close_and_threads(tiny_model, faces):
    d = Detector(tiny_model, backend="onnxruntime-cpu")
    ref = d.detect(faces.images, faces.landmarks5).probabilities
    results, errors = [], []

    def work():
        try:
            results.append(d.detect(faces.images, faces.landmarks5).probabilities)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    for r in results:
        np.testing.assert_array_equal(r, ref)
    d.close()
    assert d.closed and d.session.closed and "closed" in repr(d)
    with pytest.raises(SessionClosedError):
        d.detect(faces.images, faces.landmarks5)
    d.close()


def test_default_model_is_the_demo_folder(monkeypatch, tmp_path):
    assert models.default_model_dir() == models.DEMO_DIR
    assert models.DEMO_DIR.parts[-3:] == ("auperf", "models", "demo")
    monkeypatch.setattr(models, "DEMO_DIR", tmp_path / "absent")
    with pytest.raises(ModelNotFoundError, match="demo model is not installed") as ei:
        Detector()
    assert isinstance(ei.value, FileNotFoundError)


def test_shipped_demo_model_loads_when_present():
    if not any(models.DEMO_DIR.glob("*.json")):
        pytest.skip(f"the demo model is not in {models.DEMO_DIR} yet")
    with Detector(backend="onnxruntime-cpu") as d:
        assert d.manifest.source.parent == models.DEMO_DIR
        size = d.manifest.input.size
        res = d.detect(np.zeros((1, 2 * size[0], 2 * size[1], 3), np.uint8), np.zeros((0, 5, 2)))
        assert res.probabilities.shape == (0, len(d.au_ids))


def test_model_lookup_errors(tiny_model, tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        Detector(tmp_path / "nope")
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").write_text("{}")
    with pytest.raises(ModelNotFoundError, match="holds 2"):
        Detector(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="holds no"):
        Detector(empty)
    with pytest.raises(ModelNotFoundError, match="expected a folder"):
        Detector(3.5)


def test_manifests_the_detector_cannot_run(model_copy):
    path = model_copy / "tiny.json"
    d = json.loads(path.read_text())
    d["format_version"] = 2
    path.write_text(json.dumps(d))
    with pytest.raises(ManifestVersionError, match="format_version: 2 is newer"):
        Detector(model_copy)
    d["format_version"] = 1
    d["task"] = "au_intensity"
    path.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="runs au_occurrence models"):
        Detector(model_copy)


def test_corrupt_model_through_the_detector(model_copy):
    p = model_copy / "tiny.onnx"
    p.write_bytes(p.read_bytes()[:-10])
    with pytest.raises(ManifestError, match="model.sha256"):
        Detector(model_copy, backend="onnxruntime-cpu")
