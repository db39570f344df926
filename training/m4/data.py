"""M4 data: video clips without labels, and frame pairs drawn with the curriculum's gap.

Sources:

- **Rendered sequences** (:func:`synth_clips`): :func:`auperf.synth.render_sequence` clips, one
  identity each, with drifting head pose and AU events; every frame is aligned from the
  renderer's 5 points exactly as at inference (:func:`training.data.faces.align_images`:
  ``estimate_similarity`` to ``auperf.align.template(S)``, then ``warp_faces``). The clips'
  ground-truth AUs and poses are kept for *evaluation only*; training never reads them.
- **A folder of videos** (:func:`folder_clips`): every ``*.mp4``, ``*.avi``, ``*.mov``,
  ``*.mkv``, ``*.webm`` file, decoded with OpenCV. With a sidecar ``<stem>.landmarks5.npy``
  (``(T, 5, 2)`` float, frame pixels, :mod:`auperf.align` point order, one row per decoded
  frame) each frame is aligned like the rendered ones; without one, the video is taken to be
  already cropped to the face and its centre square is resized to ``S x S``.

Pairs (:class:`PairSampler`): each pair picks a clip uniformly, a gap ``g`` uniformly from
``1 .. min(G(epoch), T - 1)`` (:meth:`training.m4.config.CurriculumConfig.max_gap`), a start
frame uniformly, and with probability 1/2 swaps source and target. Every draw comes from the
trainer's per-epoch generator, so resumed runs see the same pairs.

Convention: clips are stored as ``(N, 3, S, S)`` uint8 RGB crops, all clips concatenated, with
``offsets`` ``(K + 1,)`` (clip ``k`` is ``frames[offsets[k]:offsets[k + 1]]``). Batches are
``{"source", "target"}``: ``(B, 3, S, S)`` float32 in ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from auperf.errors import DatasetError, MediaError

from .config import CurriculumConfig, M4DataConfig

__all__ = ["Clips", "synth_clips", "folder_clips", "read_video", "PairSampler", "VIDEO_SUFFIXES"]

_log = logging.getLogger("auperf.training")
_CACHE_FORMAT = 1
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


@dataclass
class Clips:
    """Aligned clips (module docstring).

    Attributes:
        frames: ``(N, 3, S, S)`` uint8 RGB.
        offsets: ``(K + 1,)`` int64, clip boundaries.
        au_occurrence: ``(N, 15)`` bool ground truth (rendered clips; ``None`` otherwise), for
            evaluation only.
        pose_deg: ``(N, 3)`` yaw, pitch, roll in degrees (rendered clips; ``None`` otherwise).
        names: one name per clip.
    """

    frames: np.ndarray
    offsets: np.ndarray
    au_occurrence: np.ndarray | None = None
    pose_deg: np.ndarray | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[1] != 3 or self.frames.dtype != np.uint8:
            raise DatasetError(
                f"frames: expected (N, 3, S, S) uint8, got {self.frames.shape} {self.frames.dtype}"
            )
        off = np.asarray(self.offsets, dtype=np.int64)
        if off.ndim != 1 or off.size < 2 or off[0] != 0 or off[-1] != len(self.frames):
            raise DatasetError(f"offsets: expected 0 .. {len(self.frames)}, got {off.tolist()}")
        lengths = np.diff(off)
        short = np.flatnonzero(lengths < 2)
        if short.size:
            k = int(short[0])
            name = self.names[k] if k < len(self.names) else str(k)
            raise DatasetError(f"clip {name!r}: has {int(lengths[k])} frames, a pair needs >= 2")
        self.offsets = off

    @property
    def num_clips(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def lengths(self) -> np.ndarray:
        """``(K,)`` frames per clip."""
        return np.diff(self.offsets)

    def subset(self, clips: list[int] | np.ndarray) -> Clips:
        """The clips with the given indices, in that order."""
        idx = [np.arange(self.offsets[k], self.offsets[k + 1]) for k in clips]
        rows = np.concatenate(idx) if idx else np.zeros(0, np.int64)
        lengths = [len(i) for i in idx]
        return Clips(
            frames=self.frames[rows],
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            au_occurrence=None if self.au_occurrence is None else self.au_occurrence[rows],
            pose_deg=None if self.pose_deg is None else self.pose_deg[rows],
            names=tuple(self.names[k] for k in clips) if self.names else (),
        )


# -- rendered sequences ------------------------------------------------------------------------


def _cache_key(cfg: M4DataConfig, size: int, count: int, first: int) -> str:
    from auperf import __version__

    d = asdict(cfg)
    for k in ("pairs_per_epoch", "cache_dir", "train_sequences", "test_sequences", "max_frames"):
        d.pop(k)
    blob = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "auperf": __version__,
            "size": size,
            "n": count,
            "first": first,
            **d,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def synth_clips(
    cfg: M4DataConfig, image_size: int, count: int, first: int = 0, progress: bool = False
) -> Clips:
    """Render ``count`` sequences (track ids ``first .. first + count - 1``) and align them.

    Sequences with different track ids have different identities (each draws its own), so
    splits made of disjoint track-id ranges share no identity.

    Args:
        cfg: the data settings (seed, render size, frames, fps, pose amplitude, events,
            augmentation, cache).
        image_size: side ``S`` of the aligned crops.
        count: number of sequences.
        first: the first track id.
        progress: show a progress bar.
    """
    from auperf.synth import Augment, FaceRenderer
    from auperf.synth.video import render_sequence

    from ..data.faces import align_images

    path = None
    if cfg.cache_dir:
        path = Path(cfg.cache_dir) / f"m4_clips_{_cache_key(cfg, image_size, count, first)}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                return Clips(
                    frames=z["frames"],
                    offsets=z["offsets"],
                    au_occurrence=z["au_occurrence"],
                    pose_deg=z["pose_deg"],
                    names=tuple(str(n) for n in z["names"]),
                )
    if cfg.augment == "off":
        augment = Augment.off()
    else:
        augment = Augment(clutter=0.6, light=0.6, blur=0.25, noise=0.4, jpeg=0.3, occlusion=0.0)
    renderer = FaceRenderer(seed=cfg.seed, size=cfg.render_size, augment=augment)
    frames, aus, poses, names = [], [], [], []
    ids = range(first, first + count)
    if progress:
        from tqdm.auto import tqdm

        ids = tqdm(ids, desc="render clips", leave=False)
    for track in ids:
        seq = render_sequence(
            renderer,
            cfg.frames_per_sequence,
            fps=cfg.fps,
            seed=cfg.seed,
            track_id=track,
            pose_amplitude_deg=tuple(cfg.pose_amplitude_deg),
            event_rate=cfg.event_rate,
        )
        r = seq.frames
        frames.append(align_images(r.images, r.landmarks5, image_size))
        aus.append(r.au_occurrence)
        poses.append(r.pose_deg)
        names.append(f"synth-{track}")
    lengths = [len(f) for f in frames]
    clips = Clips(
        frames=np.concatenate(frames),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        au_occurrence=np.concatenate(aus).astype(bool),
        pose_deg=np.concatenate(poses).astype(np.float64),
        names=tuple(names),
    )
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(
            tmp,
            frames=clips.frames,
            offsets=clips.offsets,
            au_occurrence=clips.au_occurrence,
            pose_deg=clips.pose_deg,
            names=np.asarray(clips.names),
        )
        tmp.replace(path)
    return clips


# -- folders of videos ------------------------------------------------------------------------


def read_video(path: str | Path, max_frames: int = 0) -> np.ndarray:
    """Decode a video file with OpenCV.

    Args:
        path: the video file.
        max_frames: most frames read (0: all).

    Returns:
        ``(T, H, W, 3)`` uint8 RGB frames.

    Raises:
        MediaError: the file is missing, cannot be opened, or holds no decodable frame.
    """
    import cv2

    path = Path(path)
    if not path.is_file():
        raise MediaError("no such video file", source=path)
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise MediaError("cannot be opened as a video", source=path)
        frames = []
        while max_frames <= 0 or len(frames) < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        cap.release()
    if not frames:
        raise MediaError("holds no decodable frame", source=path)
    return np.stack(frames)


def _centre_crops(frames: np.ndarray, size: int) -> np.ndarray:
    import cv2

    _, h, w, _ = frames.shape
    side = min(h, w)
    y0, x0 = (h - side) // 2, (w - side) // 2
    out = [
        cv2.resize(f[y0 : y0 + side, x0 : x0 + side], (size, size), interpolation=cv2.INTER_AREA)
        for f in frames
    ]
    return np.ascontiguousarray(np.stack(out).transpose(0, 3, 1, 2))


def folder_clips(folder: str | Path, image_size: int, max_frames: int = 0) -> Clips:
    """Every video of ``folder`` as an aligned clip (module docstring).

    Raises:
        DatasetError: the folder is missing or holds no video; a landmarks sidecar has the
            wrong shape or frame count, or non-finite values; a video has fewer than 2 frames.
        MediaError: a video cannot be decoded.
    """
    from ..data.faces import align_images

    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"data.source: {folder} is not a folder of videos")
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise DatasetError(f"data.source: {folder} holds no video ({', '.join(VIDEO_SUFFIXES)})")
    frames, lengths, names = [], [], []
    for video in videos:
        rgb = read_video(video, max_frames)
        side = video.with_name(video.stem + ".landmarks5.npy")
        if side.is_file():
            lm = np.load(side, allow_pickle=False)
            if lm.ndim != 3 or lm.shape[1:] != (5, 2) or lm.shape[0] < len(rgb):
                raise DatasetError(
                    f"{side}: expected (T, 5, 2) landmarks for the {len(rgb)} frames read, "
                    f"got {lm.shape}"
                )
            lm = lm[: len(rgb)].astype(np.float64)
            if not np.isfinite(lm).all():
                bad = int(np.flatnonzero(~np.isfinite(lm).all(axis=(1, 2)))[0])
                raise DatasetError(f"{side}: frame {bad} has non-finite landmarks")
            crops = align_images(rgb, lm, image_size)
        else:
            crops = _centre_crops(rgb, image_size)
        if len(crops) < 2:
            raise DatasetError(f"{video}: has {len(crops)} frame, a pair needs >= 2")
        frames.append(crops)
        lengths.append(len(crops))
        names.append(video.name)
    return Clips(
        frames=np.concatenate(frames),
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        names=tuple(names),
    )


# -- pairs ------------------------------------------------------------------------------------


class PairSampler:
    """Frame pairs drawn on the fly with the curriculum's gap (module docstring).

    A callable ``(epoch, generator) -> iterator of batches`` for
    :class:`training.common.loop.Trainer`.

    Args:
        clips: the training clips.
        curriculum: the gap schedule.
        pairs_per_epoch: pairs per epoch.
        batch_size: pairs per batch.
    """

    def __init__(
        self, clips: Clips, curriculum: CurriculumConfig, pairs_per_epoch: int, batch_size: int
    ) -> None:
        self.clips = clips
        self.curriculum = curriculum
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.batch_size = int(batch_size)
        self._frames = torch.from_numpy(clips.frames)

    def draw(self, epoch: int, generator: torch.Generator, n: int) -> tuple[np.ndarray, ...]:
        """Indices of ``n`` pairs: ``(source rows, target rows, gaps)`` into ``clips.frames``."""
        lengths = torch.from_numpy(self.clips.lengths)
        offsets = torch.from_numpy(self.clips.offsets)
        k = torch.randint(0, self.clips.num_clips, (n,), generator=generator)
        max_gap = torch.clamp(lengths[k] - 1, max=self.curriculum.max_gap(epoch))
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        gap = 1 + torch.floor(u * max_gap).long()
        v = torch.rand(n, generator=generator, dtype=torch.float64)
        start = torch.floor(v * (lengths[k] - gap)).long()
        swap = torch.rand(n, generator=generator) < 0.5
        a = offsets[k] + start
        b = a + gap
        src = torch.where(swap, b, a)
        dst = torch.where(swap, a, b)
        return src.numpy(), dst.numpy(), gap.numpy()

    def __call__(self, epoch: int, generator: torch.Generator) -> Iterator[dict[str, torch.Tensor]]:
        src, dst, _ = self.draw(epoch, generator, self.pairs_per_epoch)
        for i in range(0, len(src), self.batch_size):
            s = torch.from_numpy(src[i : i + self.batch_size])
            t = torch.from_numpy(dst[i : i + self.batch_size])
            yield {
                "source": self._frames[s].float() / 255.0,
                "target": self._frames[t].float() / 255.0,
            }

    def __len__(self) -> int:
        return -(-self.pairs_per_epoch // self.batch_size)
