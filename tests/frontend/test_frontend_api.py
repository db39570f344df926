"""auperf.frontend: registry, options, bad input, the pose and 5-point maths, given faces."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import auperf
from auperf import errors, frontend
from auperf.frontend import Faces, FrontEnd


def test_lazy_submodule_and_registry():
    assert auperf.frontend is frontend
    assert set(frontend.names()) >= {"mediapipe", "dlib", "given"}


def test_auto_is_mediapipe():
    with frontend.create() as fe:
        assert fe.name == "mediapipe"
        d = fe.describe()
        assert d["name"] == "mediapipe" and d["model"].endswith("face_landmarker.task")


def test_unknown_name_raises():
    with pytest.raises(errors.ParameterError, match="'nope'"):
        frontend.create("nope")


def test_unknown_option_raises():
    with pytest.raises(errors.ParameterError, match="colour"):
        frontend.create("mediapipe", colour=3)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        ("mediapipe", {"num_faces": 0}, "num_faces"),
        ("mediapipe", {"min_detection_confidence": 1.5}, "min_detection_confidence"),
        ("mediapipe", {"min_presence_confidence": -0.1}, "min_presence_confidence"),
        ("mediapipe", {"tiles": 0}, "tiles"),
        ("dlib", {"upsample": 9}, "upsample"),
        ("dlib", {"min_detection_confidence": 2}, "min_detection_confidence"),
        ("given", {"landmarker": "x"}, "landmarker"),
    ],
)
def test_bad_options_name_the_value(name, options, match):
    with pytest.raises(errors.AuperfError, match=match) as info:
        frontend.create(name, **options)
    assert isinstance(info.value, ValueError)


def test_model_path_that_does_not_exist():
    with pytest.raises(errors.ParameterError, match="no_such.task"):
        frontend.create("mediapipe", model_path="/nonexistent/no_such.task")


def test_missing_mediapipe_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(errors.OptionalDependencyError, match="pip install"):
        frontend.create("mediapipe")


def test_missing_model_names_the_way_out(monkeypatch, tmp_path):
    from auperf.frontend import _mediapipe

    monkeypatch.setattr(_mediapipe, "_SHIPPED", tmp_path / "absent.task")
    monkeypatch.setattr(_mediapipe.importlib.util, "find_spec", lambda name: None)
    monkeypatch.delenv(_mediapipe.MODEL_ENV, raising=False)
    with pytest.raises(errors.OptionalDependencyError, match="AUPERF_FACE_LANDMARKER"):
        frontend.create("mediapipe")


def test_damaged_model_is_refused(monkeypatch, tmp_path):
    from auperf.frontend import _mediapipe

    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    monkeypatch.setattr(_mediapipe, "_SHIPPED", bad)
    with pytest.raises(errors.OptionalDependencyError, match="sha256"):
        _mediapipe.locate_face_landmarker_model()


def test_missing_dlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)
    with pytest.raises(errors.OptionalDependencyError, match=r"auperf\[dlib\]"):
        frontend.create("dlib")


# --- bad frames --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mediapipe", "dlib"])
@pytest.mark.parametrize(
    ("frames", "error", "match"),
    [
        (np.zeros((1, 1, 3), np.uint8), errors.ShapeError, r"1x1 pixels is too small"),
        (np.zeros((64, 64, 3), np.float32), errors.DTypeError, "float32"),
        (np.zeros((64, 64), np.uint8), errors.ShapeError, r"\(64, 64\)"),
        (np.zeros((2, 64, 64, 4), np.uint8), errors.ShapeError, r"frames\[0\]"),
        ([], errors.ParameterError, "empty"),
        ("image.jpg", errors.ParameterError, "str"),
        (
            [np.zeros((64, 64, 3), np.uint8), np.zeros((8, 64, 3), np.uint8)],
            errors.ShapeError,
            r"frames\[1\]",
        ),
    ],
)
def test_bad_frames_raise_typed_errors(name, frames, error, match, mediapipe_fe, dlib_fe):
    fe = mediapipe_fe if name == "mediapipe" else dlib_fe
    with pytest.raises(error, match=match):
        fe.detect(frames)


@pytest.mark.parametrize("name", ["mediapipe", "dlib"])
def test_zero_faces_is_an_empty_result(name, mediapipe_fe, dlib_fe):
    fe = mediapipe_fe if name == "mediapipe" else dlib_fe
    rng = np.random.default_rng(3)
    frames = [
        rng.integers(0, 255, (96, 128, 3), dtype=np.uint8),
        np.full((50, 70, 3), 128, np.uint8),
    ]
    faces = fe.detect(frames)
    assert isinstance(faces, Faces)
    assert len(faces) == 0 and faces.num_frames == 2
    assert faces.landmarks5.shape == (0, 5, 2) and faces.boxes.shape == (0, 4)


def test_detect_after_close_raises():
    fe = frontend.create("mediapipe")
    fe.close()
    with pytest.raises(errors.ParameterError, match="close"):
        fe.detect(np.zeros((64, 64, 3), np.uint8))


def test_batch_forms_agree(astronaut, mediapipe_fe):
    """A (B, H, W, 3) array, a list, and frames of different sizes give the same faces."""
    import cv2

    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    a = mediapipe_fe.detect(np.stack([astronaut, astronaut]))
    b = mediapipe_fe.detect([astronaut, small, np.zeros((40, 30, 3), np.uint8), astronaut])
    assert a.frame_index.tolist() == [0, 1]
    assert b.frame_index.tolist() == [0, 1, 3] and b.num_frames == 4
    np.testing.assert_allclose(a.landmarks5[0], b.landmarks5[2], atol=1e-6)
    # The same face at half the size: the points scale with the image (pixel centres at
    # integers: x_small = (x + 0.5) / 2 - 0.5), to within 1.5 px of the small image.
    np.testing.assert_allclose((b.landmarks5[0] + 0.5) / 2 - 0.5, b.landmarks5[1], atol=1.5)


# --- the maths -------------------------------------------------------------------------------


def test_head_pose_from_rotation_against_scipy():
    """R = Ry(a) Rx(b) Rz(c) (scipy's intrinsic 'YXZ') -> (yaw, pitch, roll) = -(a, b, c)."""
    rng = np.random.default_rng(0)
    abc = np.column_stack(
        [rng.uniform(-80, 80, 50), rng.uniform(-60, 60, 50), rng.uniform(-90, 90, 50)]
    )
    r = Rotation.from_euler("YXZ", abc, degrees=True).as_matrix()
    np.testing.assert_allclose(frontend.head_pose_from_rotation(r), -abc, atol=1e-9)
    m = np.tile(np.eye(4), (50, 1, 1))
    m[:, :3, :3] = 2.5 * r  # a scale (as in MediaPipe's matrices) is divided out
    m[:, :3, 3] = rng.normal(size=(50, 3))
    np.testing.assert_allclose(frontend.head_pose_from_rotation(m), -abc, atol=1e-9)


def test_head_pose_hand_cases():
    # Face turned towards the image's left: its forward axis (+z) gains -x: yaw > 0.
    a = np.radians(20)
    ry = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    assert frontend.head_pose_from_rotation(ry.T)[0] == pytest.approx(20)
    # Face looking up: forward gains +y (y up in the camera frame): pitch > 0.
    b = np.radians(10)
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    fwd = rx.T @ np.array([0, 0, 1.0])
    assert fwd[1] > 0 and frontend.head_pose_from_rotation(rx.T)[1] == pytest.approx(10)
    with pytest.raises(errors.ShapeError, match="rotation"):
        frontend.head_pose_from_rotation(np.eye(2))


def test_landmarks5_from_mediapipe_by_hand():
    mesh = np.zeros((1, 478, 2))
    mesh[0, 33], mesh[0, 133] = (10, 20), (30, 22)
    mesh[0, 362], mesh[0, 263] = (50, 20), (70, 24)
    mesh[0, 1], mesh[0, 61], mesh[0, 291] = (40, 40), (25, 60), (55, 61)
    out = frontend.landmarks5_from_mediapipe(mesh)
    np.testing.assert_array_equal(out[0], [[20, 21], [60, 22], [40, 40], [25, 60], [55, 61]])
    with pytest.raises(errors.ShapeError, match="mesh"):
        frontend.landmarks5_from_mediapipe(np.zeros((1, 68, 2)))


def test_landmarks5_follow_the_align_rule(astronaut, mediapipe_fe):
    """Eye centres are the eye-corner midpoints of the mesh, in image-left, image-right order."""
    f = mediapipe_fe.detect(astronaut)
    m = f.landmarks[0]
    np.testing.assert_allclose(f.landmarks5[0, 0], (m[33] + m[133]) / 2)
    np.testing.assert_allclose(f.landmarks5[0, 1], (m[362] + m[263]) / 2)
    p = f.landmarks5[0]
    assert p[0, 0] < p[2, 0] < p[1, 0] and p[3, 0] < p[4, 0]  # left/right order
    assert max(p[0, 1], p[1, 1]) < p[2, 1] < min(p[3, 1], p[4, 1])  # eyes, nose, mouth


# --- given boxes / landmarks -----------------------------------------------------------------


def test_given_landmarks_pass_through_and_68_points_follow_align():
    from auperf.align import five_points_from_68

    rng = np.random.default_rng(1)
    lm68 = rng.uniform(10, 90, (3, 68, 2))
    frames = np.zeros((2, 100, 100, 3), np.uint8)
    with frontend.create("given") as fe:
        f = fe.detect(frames, landmarks=lm68, frame_index=[0, 1, 1], scores=[0.9, 0.8, 0.7])
    np.testing.assert_array_equal(f.landmarks5, five_points_from_68(lm68))
    np.testing.assert_array_equal(f.boxes[:, :2], lm68.min(axis=1))
    assert f.frame_index.tolist() == [0, 1, 1] and f.num_frames == 2
    assert np.isnan(f.pose[:, :2]).all()
    d = f.landmarks5[:, 1] - f.landmarks5[:, 0]
    np.testing.assert_allclose(f.pose[:, 2], np.degrees(np.arctan2(d[:, 1], d[:, 0])))


def test_given_errors():
    frames = np.zeros((2, 64, 64, 3), np.uint8)
    with frontend.create("given") as fe:
        with pytest.raises(errors.ParameterError, match="neither"):
            fe.detect(frames)
        with pytest.raises(errors.ShapeError, match="landmarks"):
            fe.detect(frames, landmarks=np.zeros((1, 7, 2)), frame_index=[0])
        with pytest.raises(errors.ParameterError, match="frame_index"):
            fe.detect(frames, boxes=np.array([[1, 1, 9, 9.0]] * 3))
        with pytest.raises(errors.IndexRangeError, match="frame_index"):
            fe.detect(frames, boxes=np.array([[1, 1, 9, 9.0]]), frame_index=[5])
        with pytest.raises(errors.NonFiniteError, match="boxes"):
            fe.detect(frames[:1], boxes=np.array([[1, 1, np.nan, 9.0]]))
        with pytest.raises(errors.ShapeError, match=r"faces \[0\]"):
            fe.detect(frames[:1], boxes=np.array([[9, 1, 1, 9.0]]))
        empty = fe.detect(frames, boxes=np.zeros((0, 4)), frame_index=np.zeros(0, int))
        assert len(empty) == 0 and empty.num_frames == 2


@pytest.mark.parametrize("landmarker", ["mediapipe", "dlib"])
def test_given_boxes_find_landmarks_inside(astronaut, mediapipe_fe, landmarker):
    """Boxes only: the landmarker finds the face in the box; a box on no face gets NaN."""
    ref = mediapipe_fe.detect(astronaut)
    boxes = np.array([ref.boxes[0], [400.0, 400, 480, 480]])
    with frontend.create("given", landmarker=landmarker) as fe:
        f = fe.detect(astronaut, boxes=boxes)
    assert len(f) == 2
    np.testing.assert_array_equal(f.boxes, boxes)
    iod = np.linalg.norm(ref.landmarks5[0, 1] - ref.landmarks5[0, 0])
    err = np.linalg.norm(f.landmarks5[0] - ref.landmarks5[0], axis=1)
    # Eyes: the same rule for both; dlib's nose and mouth are placed from a mean face.
    assert err[:2].max() < 0.1 * iod, err / iod
    assert err.max() < 0.35 * iod, err / iod
    if landmarker == "mediapipe":
        assert np.isnan(f.landmarks5[1]).all()
        # Yaw and roll agree; pitch does not have to: MediaPipe's pose is relative to the
        # optical axis of the view it sees (the crop's centre here, the frame's centre for
        # ``ref``), and this face sits well above the frame's centre (7 degrees apart here).
        np.testing.assert_allclose(f.pose[0, [0, 2]], ref.pose[0, [0, 2]], atol=4)


def test_custom_front_end_can_be_registered():
    class Fixed(FrontEnd):
        name = "fixed"

        def detect(self, frames):
            return Faces.empty(1)

    frontend.register("fixed-test", Fixed)
    try:
        assert isinstance(frontend.create("fixed-test"), Fixed)
    finally:
        frontend._REGISTRY.pop("fixed-test")
    with pytest.raises(errors.ParameterError, match="auto"):
        frontend.register("auto", Fixed)


def test_dlib_points_to_five_by_a_known_similarity():
    """dlib points made from the mean face by a similarity S give S(template) back exactly."""
    from auperf.frontend._dlib import five_points_from_dlib5, mean_face_with_subnasale

    face = mean_face_with_subnasale()
    rng = np.random.default_rng(5)
    out, want = [], []
    for _ in range(4):
        a, s, t = rng.uniform(-0.5, 0.5), rng.uniform(0.5, 3), rng.uniform(0, 300, 2)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        S = lambda p, rot=rot, t=t: p @ rot.T + t  # noqa: E731
        left, right = face[0], face[1]
        d = np.array([6.0, 1.0])
        # dlib order: image-right eye outer, inner; image-left eye outer, inner; subnasale.
        out.append(S(np.array([right + d, right - d, left - d, left + d, face[5]])))
        want.append(S(face[:5]))
    np.testing.assert_allclose(five_points_from_dlib5(np.array(out)), np.array(want), atol=1e-9)


def test_missing_system_library_names_the_packages(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_egl(name, *args, **kwargs):
        if name.startswith("mediapipe"):
            raise ImportError("libEGL.so.1: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_egl)
    with pytest.raises(errors.OptionalDependencyError, match="apt-get install -y libgl1"):
        frontend.create("mediapipe")
