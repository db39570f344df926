"""Ray Data batch processing on a local Ray (2 CPUs, CPU backend) over rendered videos.

The Parquet output must equal what ``auperf detect`` writes for each video, row for row; a
worker killed part way through a video is restarted and the video resumed, with nothing lost
or written twice; a broken input is recorded and the others go on; a rerun skips finished work.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av", reason="PyAV is needed to write the rendered videos")
pytest.importorskip("pyarrow", reason="pyarrow is needed for Parquet output")

from auperf import errors  # noqa: E402
from auperf.integrations import ray as auray  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SIDECAR = "auperf.video.synthetic:sidecar_frontend"


def killing_frontend(path: str, marker: str, kill_at_call: int):
    """The rendered front end, but the first worker that makes ``kill_at_call`` calls dies
    abruptly (``os._exit``, as a process killed by the OS), after writing ``marker``."""
    from auperf.video.synthetic import RenderedFrontEnd

    fe = RenderedFrontEnd.load(path)
    inner = fe.detect
    calls = [0]

    def detect(frames):
        calls[0] += 1
        if calls[0] == kill_at_call and not os.path.exists(marker):
            Path(marker).write_text(str(os.getpid()))
            os._exit(137)
        return inner(frames)

    fe.detect = detect
    return fe


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """2 rendered 16-frame videos (lossless FFV1), a broken file, and one front end file."""
    from auperf.video.synthetic import RenderedFrontEnd, render_clip, write_video

    root = tmp_path_factory.mktemp("corpus")
    clips = [render_clip(n_frames=16, n_faces=2, height=120, width=160, seed=s) for s in range(2)]
    videos = []
    for s, c in enumerate(clips):
        videos.append(str(write_video(root / f"clip{s}.mkv", c.images, codec="ffv1")))

    def cat(name):
        return np.concatenate([getattr(c, name) for c in clips])

    present = cat("in_frame") & (cat("visible68").mean(axis=2) >= 0.5)
    fe = RenderedFrontEnd(cat("images"), cat("boxes"), cat("landmarks5"), present, cat("pose_deg"))
    fe.save(root / "frontend.npz")
    broken = root / "broken.mkv"
    broken.write_bytes(b"this is not a video" * 100)
    return root, videos, str(broken), str(root / "frontend.npz")


@pytest.fixture(scope="module")
def cli_outputs(corpus, tmp_path_factory):
    """What ``auperf detect`` writes for each video (in this process, no Ray): ``full`` in
    one go, ``resumed`` stopped after 8 frames (``--max-frames 8``) and run again (it resumes;
    new track ids start after the largest one on disk, as any resumed run does)."""
    from click.testing import CliRunner

    from auperf.cli import main
    from auperf.video.writers import read_results

    root, videos, _, fe = corpus
    out = tmp_path_factory.mktemp("cli")
    tables = {"full": {}, "resumed": {}}

    def detect(video, target, *extra):
        res = CliRunner().invoke(
            main,
            [
                "detect", video, "-o", str(target), "--frontend", SIDECAR,
                "--frontend-option", f"path={fe}", "--backend", "onnxruntime-cpu",
                "--chunk-size", "4", "-q", *extra,
            ],
        )  # fmt: skip
        assert res.exit_code == 0, res.output

    for v in videos:
        stem = Path(v).stem
        detect(v, out / "full" / f"{stem}.parquet")
        tables["full"][stem] = read_results(out / "full" / f"{stem}.parquet")
        detect(v, out / "resumed" / f"{stem}.parquet", "--max-frames", "8")
        detect(v, out / "resumed" / f"{stem}.parquet")
        tables["resumed"][stem] = read_results(out / "resumed" / f"{stem}.parquet")
    return tables


def _assert_same_table(got, want):
    assert list(got) == list(want)
    assert len(got["frame"]) == len(want["frame"])
    for col in want:
        a, b = got[col], want[col]
        if a.dtype.kind in "fc":
            np.testing.assert_array_equal(a, b, err_msg=col)  # NaN == NaN here
        else:
            assert a.tolist() == b.tolist(), col


@pytest.mark.slow
def test_process_equals_cli_survives_a_killed_worker_and_skips_on_rerun(
    ray_local, corpus, cli_outputs, tmp_path
):
    import functools

    import ray.cloudpickle

    from auperf.video.writers import read_results

    root, videos, broken, fe = corpus
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "killed"
    # the worker dies on its 3rd chunk of the first video it takes: 2 chunks are on disk
    factory = functools.partial(killing_frontend, fe, str(marker), 3)
    out = tmp_path / "out"
    statuses = auray.process(
        [str(root / "clip*.mkv"), broken],
        out,
        frontend=factory,
        backend="onnxruntime-cpu",
        num_workers=2,
        num_cpus_per_worker=1,
        threads=1,
        chunk_size=4,
    )
    assert marker.exists(), "the worker was not killed"
    assert [s.path for s in statuses] == [*videos, broken]
    by_name = {Path(s.path).stem: s for s in statuses}
    assert by_name["broken"].status == "failed"
    assert "MediaError" in by_name["broken"].error
    resumed = [s for s in statuses if s.start_frame > 0]
    assert len(resumed) == 1 and resumed[0].start_frame == 8  # after the 2 chunks on disk
    for v in videos:
        stem = Path(v).stem
        s = by_name[stem]
        assert s.status == "done", s
        got = read_results(out / f"{stem}.parquet")
        # the killed video equals the CLI's resumed run, the others its run in one go
        _assert_same_table(got, cli_outputs["resumed" if s is resumed[0] else "full"][stem])
        assert got["frame"].tolist() == sorted(got["frame"].tolist())
        assert set(got["frame"].tolist()) == set(range(16)), "lost frames"
        keys = list(zip(got["frame"].tolist(), got["face_id"].tolist(), strict=True))
        assert len(keys) == len(set(keys)), "duplicate rows"

    again = auray.process(
        [str(root / "clip*.mkv"), broken], out, frontend=SIDECAR, frontend_options={"path": fe}
    )  # no Ray work: finished inputs are skipped in the driver...
    assert [s.status for s in again[:2]] == ["skipped"] * 2
    # ...and the failed one is tried again
    assert again[2].status == "failed" and "MediaError" in again[2].error


def test_inputs_and_partition_names(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("x.mp4", "y.mp4", "a/x.mp4"):
        (tmp_path / name).write_bytes(b"")
    got = auray.expand_inputs([str(tmp_path / "*.mp4"), str(tmp_path / "a" / "x.mp4")])
    assert [Path(p).name for p in got] == ["x.mp4", "y.mp4", "x.mp4"]
    assert auray.partition_names(got) == ["x.parquet", "y.parquet", "x_1.parquet"]
    with pytest.raises(errors.ParameterError, match="matches no file"):
        auray.expand_inputs(str(tmp_path / "*.avi"))
    with pytest.raises(errors.ParameterError, match="at least one"):
        auray.expand_inputs([])
    with pytest.raises(errors.ParameterError, match="num_workers"):
        auray.process(got, tmp_path / "o", num_workers=0)
    (tmp_path / "file").write_text("")
    with pytest.raises(errors.ParameterError, match="is a file"):
        auray.process(got, tmp_path / "file")


def test_worker_bounds_retries_of_an_input_that_kills_it(corpus, tmp_path):
    """No Ray: the worker class itself, given the status a dying worker leaves behind."""
    import json

    root, videos, _, fe = corpus
    config = {
        "frontend": SIDECAR,
        "frontend_options": {"path": fe},
        "backend": "onnxruntime-cpu",
        "chunk_size": 4,
        "max_retries": 1,
        "run_id": "r1",
    }
    worker = auray._VideoWorker(config)
    status = tmp_path / "s.json"
    out = tmp_path / "v.parquet"
    # attempt 1 died (status still "running"): attempt 2 is allowed and completes
    status.write_text(json.dumps({"status": "running", "run_id": "r1", "attempt": 1}))
    row = worker._one(videos[0], str(out), str(status))
    assert row["status"] == "done" and row["frames"] == 16
    # attempts 1 and 2 died: a third is refused and recorded as failed
    status.write_text(json.dumps({"status": "running", "run_id": "r1", "attempt": 2}))
    row = worker._one(videos[0], str(out), str(tmp_path / "s.json"))
    assert row["status"] == "failed" and "died 2 times" in row["error"]
    assert json.loads(status.read_text())["status"] == "failed"
    # a "running" left by another run does not count
    status.write_text(json.dumps({"status": "running", "run_id": "old", "attempt": 9}))
    row = worker._one(videos[1], str(tmp_path / "w.parquet"), str(status))
    assert row["status"] == "done"
    worker.detector.close()


def test_engines_are_built_once_per_node(tmp_path):
    """Workers starting together on a node: one builds the engine, the others find it cached.
    No Ray: the helper the workers call, from threads (a file lock serialises them)."""
    pytest.importorskip("tensorrt_rtx", reason="an engine builder (TensorRT-RTX) is needed")
    from concurrent.futures import ThreadPoolExecutor

    target = "m0_tensorrt-fp16_dynamic-1x64x256_sm80"
    with ThreadPoolExecutor(3) as pool:
        records = list(pool.map(lambda _: auray.ensure_engine(None, target, tmp_path), range(3)))
    assert sorted(r.cached for r in records) == [False, True, True]
    assert len({str(r.engine_path) for r in records}) == 1
    assert len(list(tmp_path.glob("*.engine"))) == 1
    # a worker configured with the target runs that engine: here it stops only for want of a GPU
    config = {"engine_target": target, "cache_dir": str(tmp_path)}
    try:
        det = auray._detector_for_worker(config)
    except errors.BackendUnavailableError as exc:
        assert "tensorrt" in str(exc) and "GPU" in str(exc)
    else:  # a machine with a GPU and the TensorRT runtime
        assert det.session.describe().provider == "tensorrt"
        det.close()


@pytest.mark.slow
def test_cli_detect_ray_flag_writes_the_clis_rows(ray_local, corpus, cli_outputs, tmp_path):
    """``auperf detect --ray`` hands the inputs to process(): one partition per input, equal to
    the plain CLI's table; a failed input makes the exit code 1 and names it."""
    from click.testing import CliRunner

    from auperf.cli import main
    from auperf.video.writers import read_results

    _, videos, broken, fe = corpus
    out = tmp_path / "ray_out"
    res = CliRunner().invoke(
        main,
        [
            "detect", *videos, broken, "-o", str(out), "--ray", "auto", "--frontend", SIDECAR,
            "--frontend-option", f"path={fe}", "--backend", "onnxruntime-cpu",
            "--chunk-size", "4", "-q",
        ],
    )  # fmt: skip
    assert res.exit_code == 1, res.output
    assert "broken" in res.output and "1 of 3 input(s) failed" in res.output
    for v in videos:
        stem = Path(v).stem
        _assert_same_table(read_results(out / f"{stem}.parquet"), cli_outputs["full"][stem])


def test_cli_detect_ray_flag_usage_errors(tmp_path):
    from click.testing import CliRunner

    from auperf.cli import main

    res = CliRunner().invoke(main, ["detect", "x.mp4", "--ray", "auto"])
    assert res.exit_code == 2 and "needs -o FOLDER" in res.output
    res = CliRunner().invoke(
        main, ["detect", "x.mp4", "-o", str(tmp_path), "--ray", "auto", "--intensities"]
    )
    assert res.exit_code == 2 and "--intensities" in res.output
