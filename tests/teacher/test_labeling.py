"""auperf.labeling / ``auperf label``: front end + teacher -> crops + label table, skips, resume.

The inputs are rendered (``auperf.synth``) so that every count can be predicted: a video of one
moving face written with OpenCV, with runs of repeated frames (near-duplicates), a folder with
good, corrupt, faceless and 1 x 1 images, and a file that is not a video at all.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from auperf import errors
from auperf.datasets import open_dataset
from auperf.labeling import DEFAULT_AUS, check_label_dir, label_media, read_label_dir
from auperf.teacher import Teacher, load_calibration

REPEAT = 3  # each distinct frame of the video is written this many times
DEDUP = 0.5  # grey levels: identical frames are duplicates, the slowly moving face's are not


def _write_video(path: Path, frames: np.ndarray, fps: float = 10.0) -> None:
    import cv2

    h, w = frames.shape[1:3]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert out.isOpened()
    for f in frames:
        out.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    out.release()


def _write_png(path: Path, image: np.ndarray) -> None:
    import cv2

    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    from auperf.synth import FaceRenderer
    from auperf.synth.video import render_sequence

    root = tmp_path_factory.mktemp("media")
    seq = render_sequence(FaceRenderer(seed=3, size=160), 8, fps=10.0, seed=5)
    frames = np.repeat(seq.frames.images, REPEAT, axis=0)  # runs of identical frames
    _write_video(root / "clip.avi", frames)
    folder = root / "photos"
    folder.mkdir()
    still = FaceRenderer(seed=4, size=160).render(seq.frames.params[:2] * 0 + 0.5)
    _write_png(folder / "a_face.png", still.images[0])
    _write_png(folder / "b_flat.png", np.full((120, 120, 3), 128, np.uint8))
    (folder / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    _write_png(folder / "d_tiny.png", np.zeros((1, 1, 3), np.uint8))
    (folder / "notes.txt").write_text("not an image")
    (root / "broken.mp4").write_bytes(b"\x00" * 4096)
    return {"video": root / "clip.avi", "folder": folder, "broken": root / "broken.mp4"}


@pytest.fixture(scope="module")
def fe():
    from auperf import frontend

    f = frontend.create("mediapipe", num_faces=2, scores=False)
    yield f
    f.close()


@pytest.fixture(scope="module")
def labelled(inputs, fe, tmp_path_factory):
    out = tmp_path_factory.mktemp("labels") / "set"
    rep = label_media(
        [inputs["video"], inputs["folder"], inputs["broken"]],
        out,
        front_end=fe,
        frame_step=1,
        crop_size=64,
        dedup=DEDUP,
    )
    return out, rep


def test_counts_of_skipped_inputs(labelled, inputs):
    out, rep = labelled
    print(rep.summary())
    assert rep.inputs == 3 and rep.inputs_done == 2  # the broken file is not 'done'
    failed = dict(rep.inputs_failed)
    assert str(inputs["broken"].resolve()) in failed
    # corrupt and 1 x 1 images are unreadable frames; the flat image is a frame without a face
    assert rep.frames_unreadable == 2
    assert rep.frames_no_face >= 1
    assert rep.frames_read == 8 * REPEAT + 2
    assert rep.faces_found == 8 * REPEAT + 1
    assert rep.faces_unaligned == 0
    # Identical frames in a row are near-duplicates: only the first of each run is kept.
    assert rep.faces_duplicate == 8 * (REPEAT - 1)
    assert rep.rows_written == rep.rows_total == 8 + 1
    report = json.loads((out / "auperf_label_report.json").read_text())
    assert report["rows_total"] == 9 and report["frames_unreadable"] == 2


def test_table_and_crops_match_and_read_as_emotionet(labelled):
    out, _ = labelled
    assert check_label_dir(out) == 9
    ds = open_dataset(out)
    assert ds.layout == "emotionet" and len(ds) == 9
    assert ds.au_ids == DEFAULT_AUS
    img = ds.load_image(0)
    assert img.shape == (64, 64, 3)
    t = read_label_dir(out)
    assert len(t) == 9
    # The video's rows form one track with increasing, distinct frames.
    vid = t.source == t.source[np.argmax(t.frame)]
    assert len(set(t.track[vid])) == 1
    assert np.all(np.diff(t.frame[vid]) == REPEAT)
    np.testing.assert_allclose(t.timestamp[vid], t.frame[vid] / 10.0, atol=1e-6)
    # Folder rows carry the image's own name as source.
    assert any(s.endswith("::a_face.png") for s in t.source)


def test_labels_follow_the_teacher_and_unknown_is_never_negative(labelled):
    out, rep = labelled
    t = read_label_dir(out)
    teacher = Teacher.calibrated(DEFAULT_AUS)
    th = teacher.thresholds
    for j, au in enumerate(t.au_ids):
        if au in teacher.unknown_aus:
            assert (t.labels[:, j] == -1).all(), au
        else:
            np.testing.assert_array_equal(t.labels[:, j], (t.scores[:, j] >= th[j]).astype(np.int8))
    assert 23 in rep.unknown_aus  # no blendshape at all
    raw = (out / "labels.csv").read_text().splitlines()
    col = raw[0].split(",").index("AU23")
    assert all(line.split(",")[col] == "999" for line in raw[1:])


def test_per_track_cap_spreads_frames(inputs, fe, tmp_path):
    rep = label_media(
        [inputs["video"]],
        tmp_path / "cap",
        front_end=fe,
        frame_step=1,
        max_per_track=3,
        crop_size=64,
        dedup=DEDUP,
    )
    t = read_label_dir(tmp_path / "cap")
    assert len(t) == 3 and rep.faces_balanced_out == 8 - 3
    # Spread over the track (the streaming thinning keeps every 2^k-th face, then evens out):
    # the first face and one from its second half, not the first three.
    assert t.frame.min() == 0 and t.frame.max() >= 4 * REPEAT


def test_dedup_zero_keeps_every_face_and_frame_step(inputs, fe, tmp_path):
    rep = label_media(
        [inputs["video"]], tmp_path / "all", front_end=fe, frame_step=1, dedup=0, crop_size=64
    )
    assert rep.rows_total == 8 * REPEAT and rep.faces_duplicate == 0
    rep = label_media(
        [inputs["video"]], tmp_path / "step", front_end=fe, frame_step=REPEAT, dedup=0, crop_size=64
    )
    assert rep.frames_read == 8 and rep.rows_total == 8


def test_resume_skips_done_inputs_and_repairs_an_interrupted_one(labelled, inputs, fe, tmp_path):
    src, _ = labelled
    out = tmp_path / "resumed"
    shutil.copytree(src, out)
    before = (out / "labels.csv").read_text()
    rep = label_media(
        [inputs["video"], inputs["folder"], inputs["broken"]],
        out,
        front_end=fe,
        frame_step=1,
        crop_size=64,
        dedup=DEDUP,
    )
    assert rep.inputs_resumed == 3 and rep.rows_written == 0
    assert (out / "labels.csv").read_text() == before
    # Interrupt: the folder input is not marked done, and a stray crop lies in images/.
    state = json.loads((out / "auperf_label_state.json").read_text())
    del state["inputs"][str(inputs["folder"].resolve())]
    (out / "auperf_label_state.json").write_text(json.dumps(state))
    (out / "images" / "stray.jpg").write_bytes(b"half written")
    rep = label_media(
        [inputs["video"], inputs["folder"], inputs["broken"]],
        out,
        front_end=fe,
        frame_step=1,
        crop_size=64,
        dedup=DEDUP,
    )
    assert rep.inputs_resumed == 2 and rep.inputs_done == 1 and rep.rows_written == 1
    assert rep.rows_total == 9 and check_label_dir(out) == 9
    assert not (out / "images" / "stray.jpg").exists()
    assert sorted((out / "labels.csv").read_text().splitlines()) == sorted(before.splitlines())


def test_resume_refuses_other_settings_and_no_resume(labelled, inputs, fe, tmp_path):
    src, _ = labelled
    out = tmp_path / "other"
    shutil.copytree(src, out)
    with pytest.raises(errors.ParameterError, match="other settings.*crop_size"):
        label_media([inputs["video"]], out, front_end=fe, frame_step=1, crop_size=96, dedup=DEDUP)
    with pytest.raises(errors.ParameterError, match="already holds a label table"):
        label_media([inputs["video"]], out, front_end=fe, frame_step=1, crop_size=64, resume=False)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"crop_size": 16}, "crop_size"),
        ({"frame_step": 0}, "frame_step"),
        ({"max_per_track": 1.5}, "max_per_track"),
        ({"dedup": -1.0}, "dedup"),
        ({"au_ids": [12, 12]}, "au_ids"),
        ({"teacher": Teacher([1, 12])}, "teacher"),
    ],
)
def test_bad_options_raise_typed_errors(kwargs, match, tmp_path, inputs):
    with pytest.raises(errors.ParameterError, match=match):
        label_media([inputs["video"]], tmp_path / "x", **kwargs)


def test_missing_label_dir_and_mismatch_are_reported(labelled, tmp_path):
    with pytest.raises(errors.DatasetError, match="labels.csv"):
        check_label_dir(tmp_path)
    out = tmp_path / "bad"
    shutil.copytree(labelled[0], out)
    next((out / "images").iterdir()).unlink()
    with pytest.raises(errors.DatasetError, match="rows without a crop"):
        check_label_dir(out)


def test_training_pipeline_reads_the_folder(labelled):
    from training.data.faces import dataset_faces

    faces = dataset_faces(labelled[0], [12, 25, 23], 48, val_fraction=0.2, progress=False)
    assert faces.images.shape == (9, 3, 48, 48)
    assert (faces.occurrence[:, 2] == -1).all()  # AU23 unknown stays unknown


def test_cli_label(inputs, tmp_path):
    from auperf.cli import main

    runner = CliRunner()
    res = runner.invoke(
        main,
        [
            "label",
            str(inputs["folder"]),
            "-o",
            str(tmp_path / "cli"),
            "--crop-size",
            "64",
            "--report",
        ],
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output[res.output.index("{") :])
    assert rep["rows_total"] == 1 and rep["frames_unreadable"] == 2
    res = runner.invoke(
        main, ["label", str(inputs["folder"]), "-o", str(tmp_path / "c2"), "--aus", "1,x"]
    )
    assert res.exit_code == 2 and "--aus" in res.output
    res = runner.invoke(
        main, ["label", str(inputs["folder"]), "-o", str(tmp_path / "c3"), "--crop-size", "8"]
    )
    assert res.exit_code == 1 and "ParameterError" in res.output and "crop_size" in res.output


def test_shipped_calibration_agrees_with_its_results():
    cal = load_calibration()
    root = Path(__file__).resolve().parents[2]
    res = json.loads((root / "training/results/teacher/calibration.json").read_text())
    min_auc = res["meta"]["min_auc"]
    for row in res["rows"]:
        assert (row["au"] in cal["reliable_aus"]) == (
            row["auc"] is not None and row["auc"] >= min_auc and row["reliable"]
        )
    teacher = Teacher.calibrated(DEFAULT_AUS)
    assert set(teacher.unknown_aus) == {a for a in DEFAULT_AUS if a not in cal["reliable_aus"]}


def test_load_calibration_errors(tmp_path):
    with pytest.raises(errors.ModelNotFoundError):
        load_calibration(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"thresholds": {"12": 0.3}, "reliable_aus": [12, 1]}))
    with pytest.raises(errors.ParameterError, match=r"reliable AUs \[1\]"):
        load_calibration(bad)
    bad.write_text("{not json")
    with pytest.raises(errors.ParameterError, match="JSON"):
        load_calibration(bad)
    with pytest.raises(errors.ParameterError, match="not among au_ids"):
        Teacher([1, 12], unknown=[4])
