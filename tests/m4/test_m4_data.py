"""M4 data: the curriculum, pair sampling, rendered clips, folders of videos, typed errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import DatasetError, MediaError
from training.common.config import ConfigError, config_from_dict
from training.m4.config import CurriculumConfig, M4Config
from training.m4.data import Clips, PairSampler, folder_clips, read_video, synth_clips


def _clips(lengths=(5, 9, 2)) -> Clips:
    n = sum(lengths)
    frames = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 4, 4), np.uint8)
    return Clips(frames=frames, offsets=np.concatenate([[0], np.cumsum(lengths)]))


def test_curriculum_schedule_by_hand():
    c = CurriculumConfig(gap_start=1, gap_end=9, epochs=5)
    # G(e) = round(1 + 8 * (e - 1) / 4): 1, 3, 5, 7, 9, then 9.
    assert [c.max_gap(e) for e in range(1, 8)] == [1, 3, 5, 7, 9, 9, 9]
    assert CurriculumConfig(2, 2, 1).max_gap(1) == 2
    with pytest.raises(ConfigError, match="gap_end"):
        CurriculumConfig(gap_start=4, gap_end=2)


def test_pairs_respect_the_gap_and_the_clip():
    clips = _clips()
    cur = CurriculumConfig(gap_start=1, gap_end=6, epochs=3)
    sampler = PairSampler(clips, cur, pairs_per_epoch=400, batch_size=64)
    clip_of = np.repeat(np.arange(clips.num_clips), clips.lengths)
    for epoch in (1, 2, 3):
        src, dst, gap = sampler.draw(epoch, torch.Generator().manual_seed(epoch), 400)
        assert np.array_equal(np.abs(src - dst), gap)
        assert gap.min() >= 1 and gap.max() <= cur.max_gap(epoch)
        assert np.array_equal(clip_of[src], clip_of[dst])  # never across clips
        assert np.all(gap <= clips.lengths[clip_of[src]] - 1)
        if epoch == 3:
            assert gap.max() == 6  # the widest gap is reached (clip of 9 frames)
    # Epoch 1 of the curriculum: adjacent frames only, both orders drawn.
    src, dst, _ = sampler.draw(1, torch.Generator().manual_seed(0), 400)
    assert set(np.unique(dst - src)) == {-1, 1}


def test_batches_are_deterministic_and_scaled():
    sampler = PairSampler(_clips(), CurriculumConfig(1, 3, 2), pairs_per_epoch=70, batch_size=32)
    a = list(sampler(2, torch.Generator().manual_seed(5)))
    b = list(sampler(2, torch.Generator().manual_seed(5)))
    assert len(a) == len(sampler) == 3 and a[-1]["source"].shape == (6, 3, 4, 4)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x["source"], y["source"]) and torch.equal(x["target"], y["target"])
    assert a[0]["source"].dtype == torch.float32 and float(a[0]["source"].max()) <= 16 / 255


def test_clip_errors():
    with pytest.raises(DatasetError, match="a pair needs"):
        Clips(
            frames=np.zeros((3, 3, 4, 4), np.uint8), offsets=np.array([0, 1, 3]), names=("a", "b")
        )
    with pytest.raises(DatasetError, match="offsets"):
        Clips(frames=np.zeros((3, 3, 4, 4), np.uint8), offsets=np.array([0, 2]))
    with pytest.raises(DatasetError, match="frames"):
        Clips(frames=np.zeros((3, 4, 4, 3), np.uint8), offsets=np.array([0, 3]))


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="data.pairs_per_epoch"):
        config_from_dict(M4Config, {"data": {"pairs_per_epoch": 0}})
    with pytest.raises(ConfigError, match="curriculum.bogus"):
        config_from_dict(M4Config, {"curriculum": {"bogus": 1}})
    with pytest.raises(ConfigError, match="image_size"):
        config_from_dict(M4Config, {"image_size": 40})


def test_synth_clips_are_aligned_sequences_with_ground_truth_kept_apart(tmp_path):
    cfg = config_from_dict(
        M4Config,
        {
            "data": {
                "render_size": 64,
                "frames_per_sequence": 4,
                "augment": "off",
                "cache_dir": str(tmp_path),
            }
        },
    ).data
    clips = synth_clips(cfg, 32, count=2, first=5)
    assert clips.frames.shape == (8, 3, 32, 32) and clips.names == ("synth-5", "synth-6")
    assert clips.au_occurrence.shape == (8, 15) and clips.pose_deg.shape == (8, 3)
    assert len(list(tmp_path.glob("m4_clips_*.npz"))) == 1
    again = synth_clips(cfg, 32, count=2, first=5)  # read back from the cache
    assert np.array_equal(again.frames, clips.frames)
    # A different first track id gives other identities.
    other = synth_clips(cfg, 32, count=1, first=7)
    assert not np.array_equal(other.frames[:4], clips.frames[:4])


def _write_video(path, frames, fps=10.0):
    import cv2

    h, w = frames.shape[1:3]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert vw.isOpened()
    for f in frames:
        vw.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    vw.release()


def test_folder_of_videos(tmp_path):
    yy, xx = np.mgrid[0:48, 0:64]
    smooth = np.stack([xx * 4, yy * 5, 255 - xx * 3], -1)  # JPEG keeps smooth content
    base = np.clip(smooth, 0, 255).astype(np.uint8)[None]
    frames = np.repeat(base, 5, axis=0)
    _write_video(tmp_path / "a.avi", frames)
    _write_video(tmp_path / "b.avi", frames[:3])
    # b has landmarks: a face-like 5-point layout in frame pixels, one row per frame.
    from auperf import align

    lm = align.template(40)[None].repeat(3, 0) + np.array([10.0, 4.0])
    np.save(tmp_path / "b.landmarks5.npy", lm)
    (tmp_path / "notes.txt").write_text("not a video")
    clips = folder_clips(tmp_path, 32)
    assert clips.names == ("a.avi", "b.avi")
    assert clips.lengths.tolist() == [5, 3] and clips.frames.shape[1:] == (3, 32, 32)
    assert read_video(tmp_path / "a.avi", max_frames=2).shape == (2, 48, 64, 3)
    # Centre crop of a: the 48x48 middle of the frame resized to 32 (JPEG round trip).
    import cv2

    ref = cv2.resize(base[0, :, 8:56], (32, 32), interpolation=cv2.INTER_AREA).transpose(2, 0, 1)
    assert np.abs(clips.frames[0].astype(int) - ref.astype(int)).mean() < 6


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="not a folder"):
        folder_clips(tmp_path / "missing", 32)
    with pytest.raises(DatasetError, match="holds no video"):
        folder_clips(tmp_path, 32)
    (tmp_path / "broken.mp4").write_bytes(b"\x00not a video at all" * 10)
    with pytest.raises(MediaError, match="broken.mp4"):
        folder_clips(tmp_path, 32)
    with pytest.raises(MediaError, match="no such video"):
        read_video(tmp_path / "nope.mp4")
    (tmp_path / "broken.mp4").unlink()
    _write_video(tmp_path / "c.avi", np.zeros((4, 32, 32, 3), np.uint8) + 100)
    np.save(tmp_path / "c.landmarks5.npy", np.zeros((2, 5, 2)))
    with pytest.raises(DatasetError, match="c.landmarks5.npy"):
        folder_clips(tmp_path, 32)
    lm = np.full((4, 5, 2), np.nan)
    np.save(tmp_path / "c.landmarks5.npy", lm)
    with pytest.raises(DatasetError, match="non-finite"):
        folder_clips(tmp_path, 32)
    (tmp_path / "c.landmarks5.npy").unlink()
    _write_video(tmp_path / "c.avi", np.zeros((1, 32, 32, 3), np.uint8))
    with pytest.raises(DatasetError, match="pair needs"):
        folder_clips(tmp_path, 32)
