"""Frame sources: PyAV and OpenCV decoding, folders, bad files, the decode-ahead queue."""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import pytest

from auperf.errors import MediaError
from auperf.video.prefetch import prefetch_chunks
from auperf.video.sources import (
    ArraySource,
    CameraSource,
    Frame,
    ImageFileSource,
    ImageFolderSource,
    Source,
    VideoFileSource,
    open_source,
)


def test_pyav_and_opencv_decode_the_same_frames(clip, clip_files):
    av_src = VideoFileSource(clip_files / "clip.mp4", decoder="av")
    cv_src = VideoFileSource(clip_files / "clip.mp4", decoder="opencv")
    assert av_src.num_frames == 30 and av_src.fps == pytest.approx(25.0)
    assert av_src.size == (320, 240) and cv_src.size == (320, 240)
    a = list(av_src.frames())
    b = list(cv_src.frames())
    assert [f.index for f in a] == list(range(30)) == [f.index for f in b]
    np.testing.assert_allclose([f.timestamp for f in a], np.arange(30) / 25.0, atol=1e-6)
    np.testing.assert_allclose([f.timestamp for f in b], np.arange(30) / 25.0, atol=1e-3)
    for fa, fb, truth in zip(a, b, clip.images, strict=True):
        assert fa.image.shape == (240, 320, 3) and fa.image.dtype == np.uint8
        # both decoders see the same frame (they may convert YUV to RGB slightly differently)
        assert np.abs(fa.image.astype(int) - fb.image.astype(int)).mean() < 2.0
        # and it is the rendered frame, up to H.264 loss
        assert np.abs(fa.image.astype(int) - truth.astype(int)).mean() < 4.0


def test_start_skips_frames(clip_files):
    src = VideoFileSource(clip_files / "clip.mp4")
    frames = list(src.frames(start=25))
    assert [f.index for f in frames] == [25, 26, 27, 28, 29]
    assert frames[0].timestamp == pytest.approx(1.0)


@pytest.mark.parametrize("decoder", ["av", "opencv"])
def test_truncated_video_yields_the_good_frames_then_raises(
    clip_files, tmp_path, decoder, truncated_video
):
    data = (clip_files / "clip.mp4").read_bytes()
    # moov (the index) is at the end of this file: cutting the tail makes it unopenable
    cut = tmp_path / "cut_tail.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(MediaError, match="cut_tail.mp4"):
        list(VideoFileSource(cut, decoder=decoder).frames())
    # a stream whose index survives but whose data is cut
    trunc = truncated_video
    got: list[Frame] = []
    with pytest.raises(MediaError, match="truncated") as info:
        for f in VideoFileSource(trunc, decoder=decoder).frames():
            got.append(f)
    assert 5 <= len(got) < 30, len(got)
    assert "30 frames" in str(info.value) and "truncated.mp4" in str(info.value)


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "noise.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(MediaError, match=r"noise\.mp4: cannot open as a video"):
        open_source(bad)
    with pytest.raises(MediaError, match="no such file or folder"):
        open_source(tmp_path / "absent.mp4")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(MediaError, match="holds no image file"):
        open_source(empty)


def test_folder_skips_non_images_and_marks_bad_images(tmp_path, astronaut):
    cv2.imwrite(str(tmp_path / "a.png"), astronaut[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "c.jpg"), astronaut[::2, ::2, ::-1])
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "readme.txt").write_text("hello")
    gray = astronaut.mean(axis=2).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "d_gray.png"), gray)
    src = open_source(tmp_path)
    assert isinstance(src, ImageFolderSource)
    assert [p.name for p in src.skipped] == ["readme.txt"]
    frames = list(src.frames())
    assert [(f.index, f.name) for f in frames] == [
        (0, "a.png"),
        (1, "b.jpg"),
        (2, "c.jpg"),
        (3, "d_gray.png"),
    ]
    np.testing.assert_array_equal(frames[0].image, astronaut)
    assert frames[1].image is None and "not a decodable image" in frames[1].error
    assert frames[2].image.shape == (256, 256, 3)
    assert frames[3].image.shape == (512, 512, 3)
    np.testing.assert_array_equal(frames[3].image[:, :, 1], gray)
    assert all(math.isnan(f.timestamp) for f in frames)
    assert [f.index for f in src.frames(start=2)] == [2, 3]


def test_open_source_dispatch(tmp_path, astronaut, clip_files):
    cv2.imwrite(str(tmp_path / "one.png"), astronaut[:, :, ::-1])
    assert isinstance(open_source(tmp_path / "one.png"), ImageFileSource)
    assert isinstance(open_source(clip_files / "clip.mp4"), VideoFileSource)
    assert isinstance(open_source("0"), CameraSource)
    assert open_source(3).name == "camera:3"
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(MediaError, match="broken.png: not a decodable image"):
        list(open_source(tmp_path / "broken.png").frames())


class _CountingSource(Source):
    """A source that records how far ahead of the consumer it got, then fails at frame 23."""

    def __init__(self) -> None:
        self.name = "counting"
        self.produced = 0
        self.lock = threading.Lock()

    def frames(self, start: int = 0):
        for i in range(start, 40):
            if i == 23:
                raise MediaError("decoding failed after frame 22", source=self.name)
            with self.lock:
                self.produced = i + 1
            yield Frame(i, float(i), np.full((4, 4, 3), i, np.uint8))


def test_prefetch_is_bounded_and_hands_over_errors_after_good_frames():
    import time

    src = _CountingSource()
    it = prefetch_chunks(src, chunk_size=2, queue_size=3)
    first = next(it)
    time.sleep(0.3)  # let the decoder run as far ahead as the queue allows
    with src.lock:
        ahead = src.produced
    # consumed 1 chunk; at most 3 chunks in the queue and 1 chunk being filled
    assert ahead <= 2 * (1 + 3 + 1), ahead
    seen = [f.index for f in first]
    with pytest.raises(MediaError, match="after frame 22"):
        for chunk in it:
            seen += [f.index for f in chunk]
    assert seen == list(range(23))


def test_prefetch_start_stop_and_array_source():
    frames = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    src = ArraySource(frames, fps=5.0)
    chunks = list(prefetch_chunks(src, chunk_size=3, start=2, stop=9))
    assert [[f.index for f in c] for c in chunks] == [[2, 3, 4], [5, 6, 7], [8]]
    assert chunks[0][0].timestamp == pytest.approx(0.4)
    np.testing.assert_array_equal(chunks[1][0].image, frames[5])


def test_stream_url_over_http(clip_files):
    """A video served over HTTP on this machine, read as a stream URL by PyAV and OpenCV."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip_files))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        for decoder in ("av", "opencv"):
            src = open_source(url, decoder=decoder)
            assert isinstance(src, VideoFileSource) and src.name == url
            frames = list(src.frames())
            assert len(frames) == 30 and frames[0].image.shape == (240, 320, 3)
        with pytest.raises(MediaError, match="cannot open"):
            open_source(url.replace("clip.mp4", "absent.mp4"), decoder="av")
    finally:
        server.shutdown()
