"""MediaPipe on rendered faces whose pose and landmarks are known (auperf.synth).

The renderer's convention (``auperf.synth.params``): positive yaw turns the face towards the
image's right, positive pitch tilts the chin down, positive roll is clockwise. The front end's
(``auperf.frontend.base``): yaw > 0 towards the image's left, pitch > 0 looking up, roll > 0
clockwise. So front end pose ~ (-yaw, -pitch, roll) of the renderer.

Measured (32 faces, 160 px, uniform yaw +-30, pitch +-20, roll +-25 degrees; random
identities and expressions): mean absolute error yaw 8.1, pitch 7.4, roll 1.6 degrees; yaw
follows with correlation 0.99 but slope 0.48 (MediaPipe reads the drawn faces' yaw as about
half of the renderer's), pitch with correlation 0.76 and slope 0.32, roll with slope 1.02.
"""

from __future__ import annotations

import numpy as np
import pytest

from auperf.synth import POSE_SLICE, FaceRenderer, degrees_to_pose, sample_params


@pytest.fixture(scope="module")
def rendered(mediapipe_fe):
    rng = np.random.default_rng(0)
    n = 32
    x = sample_params(rng, n)
    deg = np.column_stack(
        [rng.uniform(-30, 30, n), rng.uniform(-20, 20, n), rng.uniform(-25, 25, n)]
    )
    x[:, POSE_SLICE] = degrees_to_pose(deg)
    r = FaceRenderer(seed=0, size=160).render(x)
    return r, mediapipe_fe.detect(r.images)


def test_every_rendered_face_is_found(rendered):
    r, f = rendered
    assert f.frame_index.tolist() == list(range(len(r)))


def test_pose_against_the_renderer(rendered):
    r, f = rendered
    truth = r.pose_deg[f.frame_index] * np.array([-1.0, -1.0, 1.0])  # renderer -> front end
    mae = np.abs(f.pose - truth).mean(axis=0)
    print(f"rendered pose, mean absolute error yaw/pitch/roll: {mae.round(2)} degrees")
    corr = [np.corrcoef(truth[:, k], f.pose[:, k])[0, 1] for k in range(3)]
    slope = [np.polyfit(truth[:, k], f.pose[:, k], 1)[0] for k in range(3)]
    # Roll is read as drawn; yaw and pitch follow the truth in sign and order, scaled down.
    assert mae[2] < 3.0
    assert 0.9 < slope[2] < 1.1
    assert corr[0] > 0.95 and 0.3 < slope[0] < 0.8
    assert corr[1] > 0.6 and 0.15 < slope[1] < 0.8
    big = np.abs(truth[:, 0]) > 8
    assert (np.sign(f.pose[big, 0]) == np.sign(truth[big, 0])).all()


def test_landmarks5_against_the_renderer(rendered):
    """Mean error in eye distances (IOD). Eyes use the same rule (corner midpoints); MediaPipe's
    nose tip (mesh point 1) sits a little off the renderer's (iBUG 30). Measured: eyes 0.025
    and 0.029, nose 0.113, mouth corners 0.039 and 0.045."""
    r, f = rendered
    t = r.landmarks5[f.frame_index]
    iod = np.linalg.norm(t[:, 1] - t[:, 0], axis=1)
    err = (np.linalg.norm(f.landmarks5 - t, axis=2) / iod[:, None]).mean(axis=0)
    print(f"rendered landmarks5, mean error / IOD: {err.round(3)}")
    assert err[[0, 1]].max() < 0.05
    assert err[[3, 4]].max() < 0.08
    assert err[2] < 0.2
