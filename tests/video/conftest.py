"""Fixtures of the video tests: a rendered two-face clip, its video file and ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.video.synthetic import RenderedFrontEnd, render_clip, write_video

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def clip():
    """30 frames, 320x240, two faces walking across each other (auperf.synth)."""
    return render_clip(n_frames=30, n_faces=2, seed=2, height=240, width=320)


@pytest.fixture(scope="session")
def clip_files(clip, tmp_path_factory):
    """The clip as H.264 (``clip.mp4``), as a 120-frame H.264 made of the clip repeated four
    times (``long.mp4``, for the kill tests), and the front end's ground truth (``gt.npz``)."""
    root = tmp_path_factory.mktemp("clip")
    write_video(root / "clip.mp4", clip.images, fps=25.0)
    write_video(root / "long.mp4", np.concatenate([clip.images] * 4), fps=25.0, crf=30)
    RenderedFrontEnd.from_multiface(clip).save(root / "gt.npz")
    return root


@pytest.fixture(scope="session")
def detector():
    import auperf

    det = auperf.Detector(backend="onnxruntime-cpu")
    yield det
    det.close()


@pytest.fixture(scope="session")
def truncated_video(clip_files):
    """``clip.mp4`` remuxed with its index first (faststart), then cut at 60 % of its bytes:
    it opens, announces 30 frames and decodes only the first ones."""
    import av

    fast = clip_files / "fast.mp4"
    with (
        av.open(str(clip_files / "clip.mp4")) as src,
        av.open(str(fast), "w", options={"movflags": "faststart"}) as dst,
    ):
        ins = src.streams.video[0]
        outs = dst.add_stream_from_template(ins)
        for pkt in src.demux(ins):
            if pkt.dts is None:
                continue
            pkt.stream = outs
            dst.mux(pkt)
    data = fast.read_bytes()
    trunc = clip_files / "truncated.mp4"
    trunc.write_bytes(data[: int(len(data) * 0.6)])
    return trunc
