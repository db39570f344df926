"""``auperf detect`` and ``auperf plot`` on rendered clips, bad inputs, kills and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

import auperf
from auperf.cli import main
from auperf.video.writers import read_results

FE = "auperf.video.synthetic:sidecar_frontend"


def _args(clip_files, *extra):
    return [
        "detect",
        *extra,
        "--frontend",
        FE,
        "--frontend-option",
        f"path={clip_files / 'gt.npz'}",
    ]


def _well_formed_csv(path):
    data = path.read_bytes()
    assert data.endswith(b"\n"), "the last line is incomplete"
    lines = data.decode().splitlines()
    n = lines[0].count(",")
    assert all(ln.count(",") == n for ln in lines), "a line has a wrong field count"
    return lines


def test_detect_video_to_csv_and_parquet(clip_files, tmp_path):
    runner = CliRunner()
    out = tmp_path / "clip.csv"
    res = runner.invoke(main, _args(clip_files, str(clip_files / "clip.mp4"), "-o", str(out)))
    assert res.exit_code == 0, res.output
    assert "30 frames" in res.output and "2 tracks" in res.output and "frames/s" in res.output
    # the tqdm bar: frames/s as its rate, faces/s as its postfix
    assert "frame/s" in res.output and "faces/s]" in res.output
    t = read_results(out)
    assert set(t["frame"].tolist()) == set(range(30))
    assert set(t["face_id"][t["success"] == 1].tolist()) == {1, 2}
    pq = tmp_path / "clip.parquet"
    res = runner.invoke(
        main,
        _args(clip_files, str(clip_files / "clip.mp4"), "-o", str(pq), "-q", "--smooth", "0.5"),
    )
    assert res.exit_code == 0 and res.output == "", res.output
    p = read_results(pq)
    np.testing.assert_array_equal(p["frame"], t["frame"])
    np.testing.assert_array_equal(p["face_id"], t["face_id"])
    # smoothing changed the probabilities but not the first frame of each track
    assert not np.allclose(np.nan_to_num(p["AU12_p"]), np.nan_to_num(t["AU12_p"]))
    np.testing.assert_allclose(p["AU12_p"][:2], t["AU12_p"][:2], rtol=1e-6)
    png = tmp_path / "timeline.png"
    res = runner.invoke(main, ["plot", str(out), "-o", str(png), "--width", "600"])
    assert res.exit_code == 0, res.output
    img = cv2.imread(str(png))
    assert img.shape[1] == 600 and img.shape[0] > 15 * 50
    colours = {tuple(int(v) for v in px) for px in img.reshape(-1, 3)[::7]}
    assert (180, 119, 31) in colours and (14, 127, 255) in colours  # tracks 1 and 2 (BGR)
    res = runner.invoke(main, ["plot", str(pq), "-o", str(tmp_path / "p.png"), "--aus", "6,12"])
    assert res.exit_code == 0 and cv2.imread(str(tmp_path / "p.png")).shape[0] < 200


def test_bad_inputs_give_messages_and_exit_1_while_good_ones_are_processed(
    clip, clip_files, tmp_path, truncated_video
):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in (0, 5, 9):
        cv2.imwrite(str(folder / f"frame{i:02d}.png"), clip.images[i][:, :, ::-1])
    (folder / "frame03.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (folder / "notes.txt").write_text("not an image")
    cv2.imwrite(str(folder / "tiny.png"), np.zeros((1, 1, 3), np.uint8))
    noise = tmp_path / "noise.mp4"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main,
        _args(
            clip_files,
            str(folder),
            str(noise),
            str(truncated_video),
            str(clip_files / "clip.mp4"),
            "-o",
            str(out),
        ),
    )
    assert res.exit_code == 1, res.output
    msg = res.output
    assert "frame 1 (frame03.jpg): not a decodable image" in msg
    assert "1 file(s) are not images and were skipped: notes.txt" in msg
    assert "(tiny.png): 1x1 pixels is too small to hold a face" in msg
    assert "noise.mp4: MediaError" in msg and "cannot open as a video" in msg
    assert "truncated: the container announces 30 frames" in msg
    assert "(the frames before it are written)" in msg
    assert "3 of 4 input(s) had errors" in msg
    cut = read_results(out / "truncated.csv")
    assert 5 <= len(set(cut["frame"].tolist())) < 30
    assert set(cut["frame"].tolist()) == set(range(int(cut["frame"].max()) + 1))
    t = read_results(out / "images.csv")
    names = dict(zip(t["frame"].tolist(), t["file"].tolist(), strict=False))
    assert names == {
        0: "frame00.png",
        1: "frame03.jpg",
        2: "frame05.png",
        3: "frame09.png",
        4: "tiny.png",
    }
    good = np.isin(t["frame"], [0, 2, 3])
    assert (t["success"][good] == 1).all() and (t["success"][~good] == 0).all()
    assert len(read_results(out / "clip.csv")["frame"]) >= 30
    assert not (out / "noise.csv").exists()


def test_zero_faces_is_a_note_not_an_error(clip_files, tmp_path, astronaut):
    img = tmp_path / "astronaut.png"
    cv2.imwrite(str(img), astronaut[:, :, ::-1])  # the rendered-faces front end sees no face
    res = CliRunner().invoke(main, _args(clip_files, str(img), "-o", str(tmp_path / "a.csv")))
    assert res.exit_code == 0, res.output
    assert "note:" in res.output and "no face found in 1 frame(s)" in res.output
    t = read_results(tmp_path / "a.csv")
    assert t["face_id"].tolist() == [-1] and t["success"].tolist() == [0]


def test_optional_models_are_required_when_asked(clip_files, tmp_path):
    args = _args(clip_files, str(clip_files / "clip.mp4"), "-o", str(tmp_path / "x.csv"))
    for flag, name in (("--intensities", "Estimator"), ("--expressions", "ExpressionClassifier")):
        if hasattr(auperf, name):
            continue  # the real class: test_intensities_with_the_real_estimator
        res = CliRunner().invoke(main, [*args, flag])
        assert res.exit_code == 1
        assert f"{flag} needs auperf.{name}" in res.output
    res = CliRunner().invoke(
        main, ["detect", str(clip_files / "clip.mp4"), "--frontend", "no.such:x"]
    )
    assert res.exit_code == 1 and "cannot load it" in res.output


def _spawn(clip_files, out, *extra):
    code = "import sys; from auperf.cli import main; sys.exit(main())"
    cmd = [
        sys.executable,
        "-c",
        code,
        *_args(clip_files, str(clip_files / "long.mp4"), "-o", str(out)),
    ]
    cmd += ["--chunk-size", "4", "-q", *extra]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_rows(proc, out, rows, timeout=60.0):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if out.exists() and out.read_bytes().count(b"\n") > rows:
            return
        if proc.poll() is not None:
            pytest.fail(f"finished before it could be interrupted: {proc.stderr.read().decode()}")
        time.sleep(0.02)
    proc.kill()
    pytest.fail("no rows were written in time")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_or_interrupted_run_leaves_complete_frames_and_resumes(clip_files, tmp_path, sig):
    out = tmp_path / "long.csv"
    proc = _spawn(clip_files, out)
    _wait_for_rows(proc, out, 20)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130, err.decode()
        assert "interrupted: every finished frame is in" in err.decode()
    lines = _well_formed_csv(out)
    t = read_results(out)
    last = int(t["frame"].max())
    assert 5 <= last < 119, last
    # frames 0..last all present, each with its full set of rows
    assert set(t["frame"].tolist()) == set(range(last + 1))
    if sig == signal.SIGINT:
        return
    # rerun: resumes and completes; the result covers all 120 frames once
    proc = _spawn(clip_files, out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    _well_formed_csv(out)
    done = read_results(out)
    frames, counts = np.unique(done["frame"], return_counts=True)
    np.testing.assert_array_equal(frames, np.arange(120))
    # the same frame of the clip (every 30th frame repeats) has as many faces each time
    per_clip_frame = {}
    for f, c in zip(frames, counts, strict=True):
        per_clip_frame.setdefault(f % 30, set()).add(int(c))
    assert all(len(v) == 1 for v in per_clip_frame.values()), per_clip_frame
    assert len(lines) > 20


def test_intensities_with_the_real_estimator(clip_files, tmp_path):
    from auperf.errors import AuperfError

    try:
        auperf.Estimator()
    except AttributeError:
        pytest.skip("auperf.Estimator is not part of this installation")
    except (AuperfError, ImportError) as exc:
        pytest.skip(f"auperf.Estimator() cannot load its default models here: {exc}")
    out = tmp_path / "r.csv"
    args = _args(clip_files, str(clip_files / "clip.mp4"), "-o", str(out), "-q")
    res = CliRunner().invoke(
        main,
        [*args, "--intensities", "--estimator-option", "iterations=3", "--max-frames", "2"],
    )
    assert res.exit_code == 0, res.output
    t = read_results(out)
    ok = t["success"] == 1
    assert ok.sum() >= 2 and set(t["frame"].tolist()) == {0, 1}
    r = np.stack([t[c][ok] for c in t if c.endswith("_r")], 1)
    assert r.shape[1] == 15 and np.isfinite(r).all() and (r >= 0).all() and (r <= 5).all()


def test_default_mediapipe_front_end_on_a_photo(tmp_path, astronaut):
    pytest.importorskip("mediapipe", reason="the default front end needs mediapipe")
    img = tmp_path / "astronaut.jpg"
    cv2.imwrite(str(img), astronaut[:, :, ::-1])
    out = tmp_path / "astronaut.csv"
    res = CliRunner().invoke(main, ["detect", str(img), "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    t = read_results(out)
    assert t["success"].tolist() == [1] and t["face_id"].tolist() == [1]
    # the face is where the astronaut's face is, and the eyes are level and above the mouth
    assert 150 < t["face_x0"][0] < t["x_0"][0] < t["x_1"][0] < t["face_x1"][0] < 300
    assert t["y_0"][0] < t["y_3"][0] and abs(t["y_0"][0] - t["y_1"][0]) < 10
    assert abs(t["pose_Rz"][0]) < 0.3 and np.isfinite(t["pose_Rx"][0])


def test_resume_refuses_an_output_of_another_input(clip_files, tmp_path):
    out = tmp_path / "same.csv"
    args = _args(
        clip_files, str(clip_files / "clip.mp4"), "-o", str(out), "-q", "--max-frames", "3"
    )
    assert CliRunner().invoke(main, args).exit_code == 0
    other = tmp_path / "other.mp4"
    other.write_bytes((clip_files / "clip.mp4").read_bytes())
    res = CliRunner().invoke(
        main, _args(clip_files, str(other), "-o", str(out), "-q", "--max-frames", "3")
    )
    assert res.exit_code == 1 and "holds results of" in res.output and "--overwrite" in res.output
    res = CliRunner().invoke(
        main, _args(clip_files, str(other), "-o", str(out), "-q", "--overwrite")
    )
    assert res.exit_code == 0 and set(read_results(out)["file"].tolist()) == {str(other)}
