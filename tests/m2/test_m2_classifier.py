"""auperf.ExpressionClassifier end to end: against an independent reference (cv2.warpAffine +
torch + NumPy softmax), batching, invalid faces, records, errors, and the shipped demo model on
rendered faces of known expression."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import auperf
from auperf import align
from auperf.classifier import DEFAULT_EXPRESSION_MODEL, ExpressionClassifier, ExpressionResult
from auperf.errors import (
    DTypeError,
    IndexRangeError,
    ManifestError,
    NonFiniteError,
    ParameterError,
    SessionClosedError,
    ShapeError,
    SingularMatrixError,
    ValueRangeError,
)
from auperf.nets.m2 import M2Inference, M2Net

torch.set_num_threads(1)
S = 40
CLASSES = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """An untrained (seeded) M2 network exported with its manifest."""
    from auperf.synth import FaceRenderer, sample_params
    from training.data.faces import align_images
    from training.m2.export import export_m2

    torch.manual_seed(0)
    net = M2Net(7, "smallnet")
    # Batch-norm statistics of real face crops, so that the untrained network's outputs
    # differ from face to face.
    out = FaceRenderer(seed=5, size=96).render(sample_params(np.random.default_rng(5), 32))
    x = torch.from_numpy(align_images(out.images, out.landmarks5, S)).float()
    x = (x - 120.0) / 58.0
    with torch.no_grad():
        for _ in range(30):
            net(x)
        net.classifier.weight.mul_(4.0)
    net.eval()
    folder = tmp_path_factory.mktemp("m2model")
    res = export_m2(
        net, folder, name="m2-tiny", classes=CLASSES, input_size=S, training_data="none"
    )
    return net, res.manifest_path


@pytest.fixture(scope="module")
def faces():
    from auperf.synth import FaceRenderer, sample_params

    return FaceRenderer(seed=3, size=96).render(sample_params(np.random.default_rng(11), 6))


@pytest.fixture(scope="module")
def clf(tiny):
    with ExpressionClassifier(tiny[1], backend="onnxruntime-cpu") as c:
        yield c


def _reference(net, manifest, images, lm5, frame_index):
    """cv2.warpAffine with the similarity to the manifest template, normalise, torch, softmax."""
    import cv2

    tpl = np.asarray(manifest.input.alignment.points)
    m = align.estimate_similarity(lm5, tpl)
    crops = []
    for i in range(len(lm5)):
        crop = cv2.warpAffine(
            images[frame_index[i]],
            m[i],
            (S, S),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        crops.append(crop)
    x = np.stack(crops).astype(np.float64)
    x = (x - np.asarray(manifest.input.mean)) / np.asarray(manifest.input.std)
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        z = M2Inference(net)(x).double().numpy()
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_classify_matches_an_independent_reference(tiny, clf, faces):
    net, _ = tiny
    res = clf.classify(faces.images, faces.landmarks5)
    assert isinstance(res, ExpressionResult) and len(res) == 6
    assert res.probabilities.shape == (6, 7) and res.probabilities.dtype == np.float32
    assert res.labels.dtype == np.int64 and res.names == CLASSES
    np.testing.assert_allclose(res.probabilities.sum(1), 1.0, atol=1e-5)
    ref = _reference(net, clf.manifest, faces.images, faces.landmarks5, np.arange(6))
    # cv2 interpolates with 5-bit fixed-point weights; warp_faces in float.
    np.testing.assert_allclose(res.probabilities, ref, atol=2e-2)
    np.testing.assert_array_equal(res.labels, res.probabilities.argmax(1))
    assert np.ptp(res.probabilities, axis=0).max() > 2e-3  # faces differ
    np.testing.assert_array_equal(res.frame_index, np.arange(6))
    assert res.valid.all() and np.isfinite(res.boxes).all()


def test_several_faces_per_frame_batching_and_68_points(tiny, clf, faces):
    one = clf.classify(faces.images, faces.landmarks5)
    # Two frames, three faces each (the landmarks of faces 0-2 placed on frames 0 and 1).
    frames = faces.images[:2]
    fi = np.array([0, 0, 0, 1, 1, 1])
    lm = np.concatenate([faces.landmarks5[[0, 0, 0]], faces.landmarks5[[1, 1, 1]]])
    with ExpressionClassifier(tiny[1], backend="onnxruntime-cpu", batch_size=4) as c:
        res = c.classify(frames, lm, frame_index=fi)
    np.testing.assert_allclose(res.probabilities[:3], one.probabilities[[0, 0, 0]], atol=1e-5)
    np.testing.assert_allclose(res.probabilities[3:], one.probabilities[[1, 1, 1]], atol=1e-5)
    r68 = clf.classify(faces.images, faces.landmarks68)
    np.testing.assert_allclose(
        r68.probabilities,
        clf.classify(faces.images, align.five_points_from_68(faces.landmarks68)).probabilities,
        atol=1e-6,
    )
    bgr = clf.classify(
        np.ascontiguousarray(faces.images[..., ::-1]), faces.landmarks5, frames_order="BGR"
    )
    np.testing.assert_allclose(bgr.probabilities, one.probabilities, atol=1e-5)


def test_records_empty_and_invalid_faces(clf, faces):
    lm = faces.landmarks5.copy()
    lm[2] = np.nan
    lm[4] = lm[4, :1]  # every point the same: degenerate
    res = clf.classify(faces.images, lm, invalid="mark")
    assert res.valid.tolist() == [True, True, False, True, False, True]
    assert np.isnan(res.probabilities[[2, 4]]).all() and res.labels[2] == -1
    rows = res.to_records()
    assert rows[2]["expression"] is None and rows[0]["expression"] == CLASSES[res.labels[0]]
    assert list(rows[0]) == res.columns()
    assert rows[1]["p_happiness"] == pytest.approx(float(res.probabilities[1, 1]))
    assert res.to_pandas().shape == (6, 8 + 7)
    with pytest.raises(NonFiniteError, match=r"faces \[2\]"):
        clf.classify(faces.images, lm)
    lm[2] = faces.landmarks5[2]
    with pytest.raises(SingularMatrixError, match=r"faces \[4\]"):
        clf.classify(faces.images, lm)
    empty = clf.classify(faces.images[:1], np.zeros((0, 5, 2)))
    assert empty.probabilities.shape == (0, 7) and empty.labels.shape == (0,)


def test_bad_inputs_name_the_value(clf, faces):
    with pytest.raises(DTypeError, match="frames"):
        clf.classify(faces.images.astype(np.float32), faces.landmarks5)
    with pytest.raises(ShapeError, match="landmarks"):
        clf.classify(faces.images, faces.landmarks5[:, :4])
    with pytest.raises(ShapeError, match="frame_index"):
        clf.classify(faces.images, faces.landmarks5[:3])
    with pytest.raises(IndexRangeError, match="frame_index"):
        clf.classify(faces.images, faces.landmarks5, frame_index=np.arange(1, 7))
    with pytest.raises(ValueRangeError, match="invalid"):
        clf.classify(faces.images, faces.landmarks5, invalid="skip")
    with pytest.raises(ParameterError, match="batch_size"):
        ExpressionClassifier(clf.manifest, batch_size=0)


def test_refuses_models_it_cannot_run(tiny, tmp_path):
    from auperf.models import DEMO_DIR

    with pytest.raises(ManifestError, match="expression"):
        ExpressionClassifier(DEMO_DIR, backend="onnxruntime-cpu")
    with pytest.raises(ManifestError, match="expression"):
        ExpressionClassifier(DEMO_DIR)


def test_close(tiny, faces):
    c = ExpressionClassifier(tiny[1], backend="onnxruntime-cpu")
    assert "m2-tiny" in repr(c) and c.describe()["classes"] == list(CLASSES)
    c.close()
    c.close()
    with pytest.raises(SessionClosedError):
        c.classify(faces.images, faces.landmarks5)


def test_lazy_top_level_names():
    assert auperf.ExpressionClassifier is ExpressionClassifier
    assert auperf.ExpressionResult is ExpressionResult
    assert {"ExpressionClassifier", "ExpressionResult"} <= set(auperf.__all__)


def test_shipped_demo_classifies_rendered_expressions():
    assert (DEFAULT_EXPRESSION_MODEL / "MODEL_CARD.md").is_file()
    from auperf import synth

    rng = np.random.default_rng(2024)
    n = 70
    params = synth.sample_params(rng, n, expression="neutral")
    expr, labels = synth.sample_category(rng, n, categories=list(range(7)), intensity=(0.6, 1.0))
    params[:, synth.EXPRESSION_SLICE] = expr
    out = synth.FaceRenderer(seed=77, size=96, augment=synth.Augment.off()).render(params)
    with ExpressionClassifier() as c:
        m = c.manifest
        m.verify_model()
        res = c.classify(out.images, out.landmarks5)
    assert m.task == "expression" and res.names == CLASSES
    acc = float((res.labels == labels).mean())
    # Chance is 1/7; the demo's test accuracy is recorded in its manifest.
    assert acc > 0.3, acc


def test_default_model_folder_copy_loads(tmp_path):
    shutil.copytree(DEFAULT_EXPRESSION_MODEL, tmp_path / "copy")
    with ExpressionClassifier(tmp_path / "copy") as c:
        assert c.manifest.method == "M2"
