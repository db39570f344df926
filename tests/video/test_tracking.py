"""Tracker, smoothing and identity-switch counting."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import ShapeError, ValueRangeError
from auperf.video.tracking import Tracker, TrackSmoother, box_iou, count_id_switches


def test_box_iou_against_hand_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]], float)
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 5]], float)
    want = np.array([[25 / 175, 1.0, 0.0, 0.0], [0.0, 4 / 100, 0.0, 0.0]])
    np.testing.assert_allclose(box_iou(a, b), want)


def test_count_id_switches_on_a_hand_made_sequence():
    # true A: ids 1,1,2,2 -> 1 switch; true B: 2,2,1,1 -> 1 switch; frame 4 both get id 5
    true = np.array(["A", "B"] * 5)
    pred = np.array([1, 2, 1, 2, 2, 1, 2, 1, 5, 5])
    frames = np.repeat(np.arange(5), 2)
    got = count_id_switches(true, pred, frames)
    assert got == {"switches": 4, "fragments": 4, "merges": 1}
    assert count_id_switches(true, np.tile([7, 8], 5), frames) == {
        "switches": 0,
        "fragments": 0,
        "merges": 0,
    }
    with pytest.raises(ShapeError):
        count_id_switches(true, pred[:3], frames)


def _face(cx, cy, s=20.0):
    box = np.array([cx - s, cy - s, cx + s, cy + s])
    pts = np.array(
        [[cx - 8, cy - 5], [cx + 8, cy - 5], [cx, cy + 2], [cx - 6, cy + 10], [cx + 6, cy + 10]],
        float,
    )
    return box, pts


def _run(tracker, frames_faces):
    out = []
    for t, faces in enumerate(frames_faces):
        if faces:
            b = np.stack([f[0] for f in faces])
            p = np.stack([f[1] for f in faces])
        else:
            b, p = np.zeros((0, 4)), np.zeros((0, 5, 2))
        out.append(tracker.update(t, b, p))
    return out


def test_reidentification_after_a_short_occlusion_and_new_id_after_a_long_one():
    # one face moving right by 4 px per frame, hidden in frames 10-14 (short) and 30-69 (long)
    seq = []
    for t in range(80):
        hidden = 10 <= t < 15 or 30 <= t < 70
        seq.append([] if hidden else [_face(50 + 4 * t, 100)])
    ids = _run(Tracker(max_age=10), seq)
    seen = [int(i[0]) for i in ids if len(i)]
    assert set(seen[:25]) == {1}  # frames 0-29 minus the 5 hidden: one id across the gap
    assert set(seen[25:]) == {2}  # after 40 frames away it is a new track


def test_crossing_faces_keep_their_ids_with_constant_velocity_prediction():
    # two faces cross head-on; at the crossing the boxes overlap almost completely
    seq = [[_face(40 + 6 * t, 100), _face(280 - 6 * t, 104)][:: (-1) ** t] for t in range(41)]
    ids = _run(Tracker(), seq)
    left = [int(i[0]) if t % 2 == 0 else int(i[1]) for t, i in enumerate(ids)]
    right = [int(i[1]) if t % 2 == 0 else int(i[0]) for t, i in enumerate(ids)]
    assert set(left) == {1} and set(right) == {2}
    # with other options, ids still stay distinct within every frame
    naive = Tracker(velocity_smoothing=1.0, max_landmark_distance=0.0)
    naive_ids = _run(naive, seq)
    assert all(len(set(i.tolist())) == len(i) for i in naive_ids)


def test_multiface_rendered_clip_has_few_identity_switches():
    """Four rendered people walking across each other, partly hidden by each other: count
    identity switches against the renderer's track ids."""
    from auperf.synth import render_multiface

    mf = render_multiface(60, n_faces=3, height=200, width=320, seed=0, face_iod_px=(24.0, 40.0))
    present = mf.in_frame & (mf.visible68.mean(axis=2) >= 0.5)
    tracker = Tracker()
    gt, pred, frames = [], [], []
    crossings = 0
    for t in range(60):
        f = np.flatnonzero(present[t])
        f = f[np.random.default_rng(t).permutation(f.size)]
        ids = tracker.update(t, mf.boxes[t, f], mf.landmarks5[t, f])
        assert len(set(ids.tolist())) == len(ids)
        gt += mf.track_ids[f].tolist()
        pred += ids.tolist()
        frames += [t] * len(f)
        if t:
            order_now = np.argsort(mf.boxes[t, :, 0])
            order_before = np.argsort(mf.boxes[t - 1, :, 0])
            crossings += int((order_now != order_before).any())
    assert crossings >= 1  # the paths really cross
    res = count_id_switches(np.array(gt), np.array(pred), np.array(frames))
    assert res["merges"] == 0
    assert res["switches"] <= 1, res


def test_tracker_rejects_bad_input():
    tr = Tracker()
    with pytest.raises(ShapeError, match="landmarks5"):
        tr.update(0, np.zeros((2, 4)), np.zeros((3, 5, 2)))
    tr.update(5, np.zeros((0, 4)), np.zeros((0, 5, 2)))
    with pytest.raises(ValueRangeError, match="frame: expected a frame after 5, got 5"):
        tr.update(5, np.zeros((0, 4)), np.zeros((0, 5, 2)))
    with pytest.raises(ValueRangeError, match="max_age"):
        Tracker(max_age=-1)
    with pytest.raises(ValueRangeError, match="min_iou"):
        Tracker(min_iou=1.5)


def test_smoother_matches_a_numpy_exponential_average():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3)).astype(np.float32)
    sm = TrackSmoother(alpha=0.3, max_gap=2)
    got = np.stack([sm.update(t, [7], x[t : t + 1])[0] for t in range(12)])
    want = np.empty_like(x)
    want[0] = x[0]
    for t in range(1, 12):
        want[t] = 0.3 * x[t] + 0.7 * want[t - 1]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # a gap longer than max_gap restarts the track; NaN rows pass through untouched
    assert np.allclose(sm.update(20, [7], x[:1]), x[:1])
    nan = np.full((1, 3), np.nan, np.float32)
    assert np.isnan(sm.update(21, [7], nan)).all()
    with pytest.raises(ValueRangeError, match="alpha"):
        TrackSmoother(alpha=0.0)
