"""The video pipeline against the Detector run directly, the renderer's truth and NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import ParameterError
from auperf.video.pipeline import RunSummary, VideoPipeline, result_columns
from auperf.video.sources import ArraySource, Frame, VideoFileSource
from auperf.video.synthetic import RenderedFrontEnd
from auperf.video.tracking import Tracker, count_id_switches
from auperf.video.writers import CsvWriter, read_results


def _concat(tables):
    return {c: np.concatenate([t[c] for t in tables]) for c in tables[0]}


def test_rows_match_the_detector_and_the_renderer(clip, detector):
    fe = RenderedFrontEnd.from_multiface(clip)
    pipe = VideoPipeline(fe, detector, chunk_size=7)
    t = _concat(list(pipe.iter_tables(ArraySource(clip.images, fps=25.0, name="clip"))))
    assert list(t) == pipe.columns == result_columns(detector.au_ids)
    # every frame appears, in order; a frame without faces has one row with face_id -1
    frames = t["frame"]
    assert (np.diff(frames) >= 0).all() and set(frames.tolist()) == set(range(30))
    n_present = fe.present.sum(axis=1)
    for f in range(30):
        rows = frames == f
        if n_present[f]:
            assert rows.sum() == n_present[f] and (t["success"][rows] == 1).all()
        else:
            assert rows.sum() == 1 and t["face_id"][rows][0] == -1
    ok = t["success"] == 1
    # the probabilities are those of Detector.detect on the same faces, frame by frame
    for f in (0, 13, 29):
        rows = np.flatnonzero(ok & (frames == f))
        lm = np.stack([np.stack([t[f"x_{k}"][rows], t[f"y_{k}"][rows]], 1) for k in range(5)], 1)
        ref = detector.detect(clip.images[f], lm)
        got = np.stack([t[f"AU{a:02d}_p"][rows] for a in detector.au_ids], 1)
        np.testing.assert_allclose(got, ref.probabilities, rtol=1e-5, atol=1e-6)
        got_c = np.stack([t[f"AU{a:02d}_c"][rows] for a in detector.au_ids], 1)
        np.testing.assert_array_equal(got_c.astype(bool), ref.active)
    # pose: the renderer's yaw/pitch/roll in degrees, converted to radians in the front
    # end's signs (yaw and pitch flipped), pose_Rx = pitch, pose_Ry = yaw, pose_Rz = roll
    true_face = _true_faces(clip, t, ok)
    pose = clip.pose_deg[t["frame"][ok], true_face]
    np.testing.assert_allclose(t["pose_Ry"][ok], np.deg2rad(-pose[:, 0]), atol=1e-9)
    np.testing.assert_allclose(t["pose_Rx"][ok], np.deg2rad(-pose[:, 1]), atol=1e-9)
    np.testing.assert_allclose(t["pose_Rz"][ok], np.deg2rad(pose[:, 2]), atol=1e-9)
    np.testing.assert_allclose(t["timestamp"], frames / 25.0)
    sw = count_id_switches(clip.track_ids[true_face], t["face_id"][ok], t["frame"][ok])
    assert sw["switches"] == 0 and sw["merges"] == 0


def _true_faces(clip, t, ok):
    lm = np.stack([t[f"x_{k}"][ok] for k in range(5)] + [t[f"y_{k}"][ok] for k in range(5)], 1)
    truth = clip.landmarks5[t["frame"][ok]].transpose(0, 1, 3, 2).reshape(ok.sum(), -1, 10)
    return np.abs(truth - lm[:, None]).sum(-1).argmin(1)


def test_smoothing_is_an_exponential_average_per_track(clip, detector):
    fe = RenderedFrontEnd.from_multiface(clip)
    raw = _concat(list(VideoPipeline(fe, detector).iter_tables(ArraySource(clip.images))))
    sm = _concat(
        list(VideoPipeline(fe, detector, smoothing=0.4).iter_tables(ArraySource(clip.images)))
    )
    col = f"AU{detector.au_ids[7]:02d}_p"
    for tid in (1, 2):
        r = raw[col][raw["face_id"] == tid]
        s = sm[col][sm["face_id"] == tid]
        fr = raw["frame"][raw["face_id"] == tid]
        want = r.copy()
        for k in range(1, len(r)):
            if fr[k] - fr[k - 1] <= 5:
                want[k] = 0.4 * r[k] + 0.6 * want[k - 1]
        np.testing.assert_allclose(s, want, rtol=1e-5)
        assert np.abs(np.diff(s)).sum() < np.abs(np.diff(r)).sum()


def test_video_run_writes_every_frame_and_resumes(clip_files, detector, tmp_path):
    fe = RenderedFrontEnd.load(clip_files / "gt.npz")
    pipe = VideoPipeline(fe, detector, chunk_size=8)
    full = tmp_path / "full.csv"
    with CsvWriter(full, pipe.columns) as w:
        s = pipe.run(VideoFileSource(clip_files / "clip.mp4"), w, progress=False)
    assert s.ok and s.frames == 30 and s.tracks == 2 and s.faces == int(fe.present.sum())
    # stop after 12 frames, then resume: the file equals the uninterrupted one
    part = tmp_path / "part.csv"
    with CsvWriter(part, pipe.columns) as w:
        s1 = pipe.run(VideoFileSource(clip_files / "clip.mp4"), w, progress=False, max_frames=12)
    assert s1.frames == 12
    with CsvWriter(part, pipe.columns, resume=True) as w:
        assert w.resume_point()[0] == 11
        s2 = pipe.run(VideoFileSource(clip_files / "clip.mp4"), w, progress=False)
    assert s2.start_frame == 11 and s2.frames == 19
    a, b = read_results(full), read_results(part)
    np.testing.assert_array_equal(a["frame"], b["frame"])
    for c in a:
        if c.endswith("_p"):
            np.testing.assert_allclose(a[c], b[c], rtol=1e-6)
    # track ids after a resume start above the largest id in the file
    assert b["face_id"][b["frame"] >= 11].min() >= 3


def test_bad_and_tiny_frames_are_reported_and_recorded(detector, clip):
    fe = RenderedFrontEnd.from_multiface(clip)
    frames = [clip.images[0], np.zeros((1, 1, 3), np.uint8), clip.images[1]]
    pipe = VideoPipeline(fe, detector)
    summary = RunSummary(source="x")
    tracker = Tracker()
    chunk = [Frame(i, float(i), img, f"f{i}") for i, img in enumerate(frames)]
    chunk.append(Frame(3, 3.0, None, "f3", "not a decodable image"))
    t = pipe.process_chunk(chunk, tracker, None, summary)
    assert [b[0] for b in summary.bad_frames] == [1, 3]
    assert "1x1 pixels is too small" in summary.bad_frames[0][2]
    for f in (1, 3):
        rows = t["frame"] == f
        assert rows.sum() == 1 and t["success"][rows][0] == 0 and t["face_id"][rows][0] == -1
        assert np.isnan(t["AU12_p"][rows][0]) and t["AU12_c"][rows][0] == 0
    assert (t["success"][np.isin(t["frame"], [0, 2])] == 1).all()


def test_images_of_different_sizes_and_bad_options(detector, clip, astronaut):
    fe = RenderedFrontEnd.from_multiface(clip)
    with pytest.raises(ParameterError, match="chunk_size"):
        VideoPipeline(fe, detector, chunk_size=0)
    with pytest.raises(ParameterError, match="smoothing"):
        VideoPipeline(fe, detector, smoothing=1.5)
    # frames of different sizes in one chunk (an image folder): grouped per size
    frames = [clip.images[3], astronaut, clip.images[4]]
    t = _concat(list(VideoPipeline(fe, detector).iter_tables(ArraySource(frames))))
    assert sorted(set(t["frame"].tolist())) == [0, 1, 2]
    assert (t["success"][t["frame"] != 1] == 1).all()


class _FakeEstimator:
    au_ids = (12, 6)

    def fit(self, frames, landmarks, frame_index):
        class R:
            pass

        r = R()
        r.au_ids = [6, 12]
        n = len(landmarks)
        r.au_intensity = np.stack([np.full(n, 1.5), landmarks[:, 0, 0] / 100.0], 1)
        return r


def test_intensity_columns_follow_the_estimators_au_order(clip, detector):
    fe = RenderedFrontEnd.from_multiface(clip)
    pipe = VideoPipeline(fe, detector, estimator=_FakeEstimator())
    assert pipe.columns[23:25] == ["AU12_r", "AU06_r"]
    t = _concat(list(pipe.iter_tables(ArraySource(clip.images[:4]))))
    ok = t["success"] == 1
    np.testing.assert_allclose(t["AU06_r"][ok], 1.5)
    np.testing.assert_allclose(t["AU12_r"][ok], t["x_0"][ok] / 100.0, rtol=1e-6)
    assert np.isnan(t["AU12_r"][~ok]).all()


def _optional(name):
    import auperf
    from auperf.errors import AuperfError

    try:
        cls = getattr(auperf, name)
    except AttributeError:
        pytest.skip(f"auperf.{name} is not part of this installation")
    try:
        return cls()
    except (AuperfError, ImportError) as exc:
        pytest.skip(f"auperf.{name}() cannot load its default model here: {exc}")


def test_real_estimator_intensities_match_a_direct_fit(clip, detector):
    est = _optional("Estimator")
    fe = RenderedFrontEnd.from_multiface(clip)
    # a few fitting steps: the point is that the pipeline feeds the estimator the right faces
    pipe = VideoPipeline(fe, detector, estimator=est, estimator_options={"iterations": 3})
    t = _concat(list(pipe.iter_tables(ArraySource(clip.images[:2]))))
    ok = np.flatnonzero(t["success"] == 1)
    lm = np.stack([np.stack([t[f"x_{k}"][ok], t[f"y_{k}"][ok]], 1) for k in range(5)], 1)
    ref = est.fit(clip.images[t["frame"][ok]], landmarks=lm, iterations=3)
    from auperf.synth import AU_IDS

    got = np.stack([t[f"AU{a:02d}_r"][ok] for a in AU_IDS], 1)
    np.testing.assert_allclose(got, ref.au_intensity, rtol=1e-4, atol=1e-4)
    assert ((got >= 0) & (got <= 5)).all()


def test_real_expression_classifier_columns(clip, detector):
    cl = _optional("ExpressionClassifier")
    fe = RenderedFrontEnd.from_multiface(clip)
    pipe = VideoPipeline(fe, detector, classifier=cl)
    t = _concat(list(pipe.iter_tables(ArraySource(clip.images[:2]))))
    ok = np.flatnonzero(t["success"] == 1)
    lm = np.stack([np.stack([t[f"x_{k}"][ok], t[f"y_{k}"][ok]], 1) for k in range(5)], 1)
    ref = cl.classify(clip.images[:2], lm, frame_index=t["frame"][ok])
    got = np.stack([t[f"expr_{n}"][ok] for n in cl.names], 1)
    np.testing.assert_allclose(got, ref.probabilities, rtol=1e-5, atol=1e-6)
    assert t["expression"][ok].tolist() == [cl.names[i] for i in ref.labels]


class _FakeClassifier:
    names = ("neutral", "happiness", "surprise")

    def classify(self, frames, landmarks, frame_index=None):
        class R:
            pass

        n = len(landmarks)
        r = R()
        r.names = self.names
        x = landmarks[:, 0, 0]
        r.labels = np.where(x > 150, 1, np.where(x > 100, 2, -1)).astype(np.int64)
        p = np.zeros((n, 3), np.float32)
        p[np.arange(n), np.maximum(r.labels, 0)] = 1.0
        p[r.labels < 0] = np.nan
        r.probabilities = p
        return r


def test_expression_columns_from_a_classifier_protocol(clip, detector):
    fe = RenderedFrontEnd.from_multiface(clip)
    pipe = VideoPipeline(fe, detector, classifier=_FakeClassifier())
    assert pipe.columns[-4:] == ["expr_neutral", "expr_happiness", "expr_surprise", "expression"]
    t = _concat(list(pipe.iter_tables(ArraySource(clip.images[:6]))))
    ok = t["success"] == 1
    x = t["x_0"][ok]
    want = np.where(x > 150, "happiness", np.where(x > 100, "surprise", ""))
    assert t["expression"][ok].tolist() == want.tolist()
    np.testing.assert_array_equal(t["expr_happiness"][ok] == 1.0, x > 150)
    assert (t["expression"][~ok] == "").all()
