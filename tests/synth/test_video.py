"""Video sequences (smooth trajectories, stable tracks) and multi-face frames."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import ValueRangeError
from auperf.synth import EXPRESSION_SLICE, IDENTITY_SLICE, FaceRenderer
from auperf.synth.video import render_multiface, render_sequence, sequence_params


def test_trajectories_are_smooth():
    fps = 30.0
    x, events = sequence_params(np.random.default_rng(0), 300, fps=fps, event_rate=1.0)
    assert x.shape[0] == 300 and x.min() >= 0 and x.max() <= 1
    # identity constant, expression and pose continuous
    assert np.ptp(x[:, IDENTITY_SLICE], axis=0).max() == 0
    step = np.abs(np.diff(x[:, : EXPRESSION_SLICE.stop], axis=0))
    # the fastest ramp (a blink: 0 -> 1 in 0.08 s) moves at most 1.5 / 0.08 per second
    assert step.max() <= 1.5 / (0.08 * fps) + 1e-9
    pose_deg = (2 * x[:, :3] - 1) * np.array([35.0, 25.0, 30.0])
    assert np.abs(np.diff(pose_deg, axis=0)).max() < 1.0  # < 1 degree per frame
    assert len(events) >= 3
    for ev in events:
        assert ev["onset"] < ev["apex"] < ev["offset"] < ev["end"]
    # at each event's apex the target is reached (other events can only add)
    for ev in events:
        t = int(np.ceil(ev["apex"] * fps))
        if t < 300 and ev["offset"] * fps > t:
            assert (x[t, EXPRESSION_SLICE] >= ev["expression"] - 1e-9).all()


def test_rendered_sequence_landmarks_move_smoothly():
    r = FaceRenderer(size=96)
    seq = render_sequence(r, 45, fps=30.0, seed=2, track_id=7)
    f = seq.frames
    assert f.images.shape == (45, 96, 96, 3)
    assert (f.identity == 7).all() and seq.track_id == 7
    np.testing.assert_allclose(seq.times, np.arange(45) / 30.0)
    iod = np.linalg.norm(f.landmarks5[:, 1] - f.landmarks5[:, 0], axis=1).mean()
    jump = np.linalg.norm(np.diff(f.landmarks68, axis=0), axis=2)
    # between frames no landmark moves more than a fifth of the eye distance (blinks included)
    assert jump.max() < 0.2 * iod
    # identical keys keep the background and light fixed across frames
    assert (f.light == f.light[0]).all()


def test_sequence_noise_is_fresh_but_scene_fixed():
    from auperf.synth import Augment

    r = FaceRenderer(size=64)
    x, _ = sequence_params(np.random.default_rng(1), 3)
    x[:] = x[0]  # a still face: only the per-frame degradations may differ
    out = r.render(
        x,
        augment=Augment(clutter=1.0, noise=1.0),
        keys=np.full(3, 5),
        degrade_keys=np.array([10, 11, 12]),
    )
    clean = r.render(x, augment=Augment(clutter=1.0), keys=np.full(3, 5))
    assert (clean.images[0] == clean.images[1]).all()  # same scene every frame
    assert (out.images[0] != out.images[1]).any()  # but new noise
    resid = out.images.astype(int) - clean.images.astype(int)
    assert np.abs(resid.mean(axis=(1, 2, 3))).max() < 1.0


def test_sequence_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueRangeError, match="n_frames"):
        sequence_params(rng, 0)
    with pytest.raises(ValueRangeError, match="fps"):
        sequence_params(rng, 5, fps=0.0)


@pytest.fixture(scope="module")
def multi():
    return render_multiface(
        30, n_faces=3, height=120, width=200, fps=10.0, seed=5, face_iod_px=(14.0, 26.0)
    )


def test_multiface_outputs(multi):
    m = multi
    T, F = 30, 3
    assert m.images.shape == (T, 120, 200, 3) and m.mask.shape == (T, 120, 200)
    assert m.instance.shape == (T, 120, 200) and m.instance.min() >= -1 and m.instance.max() < F
    assert m.boxes.shape == (T, F, 4) and m.landmarks68.shape == (T, F, 68, 2)
    np.testing.assert_array_equal(m.track_ids, [1, 2, 3])
    # boxes enclose the landmarks
    assert (m.boxes[..., 0:1] <= m.landmarks68[..., 0]).all()
    assert (m.boxes[..., 3:4] >= m.landmarks68[..., 1]).all()
    # face pixels exist exactly where the instance map says
    assert ((m.instance >= 0) == (m.mask > 0)).all()


def test_multiface_paths_cross_and_tracks_are_stable(multi):
    cx = multi.landmarks5[:, :, 2, 0]  # nose tips
    order_first, order_last = np.argsort(cx[0]), np.argsort(cx[-1])
    assert not np.array_equal(order_first, order_last)  # somebody overtook somebody
    # each face moves continuously: a track never jumps to another face's position
    step = np.abs(np.diff(cx, axis=0))
    gaps = np.abs(cx[:, :, None] - cx[:, None, :])
    assert step.max() < 0.5 * 200 / 10
    # visibility flags agree with the instance map
    lm = multi.landmarks68
    xi = np.floor(lm[..., 0] + 0.5).astype(int)
    yi = np.floor(lm[..., 1] + 0.5).astype(int)
    ok = (xi >= 0) & (xi < 200) & (yi >= 0) & (yi < 120)
    t, f, k = np.nonzero(multi.visible68)
    assert ok[t, f, k].all()
    assert (multi.instance[t, yi[t, f, k], xi[t, f, k]] == f).all()
    assert gaps.max() > 0
    # when faces overlap, some landmarks of the farther face are hidden
    assert (~multi.visible68 & ok).any()
