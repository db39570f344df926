"""Rendered clips with known faces, and a front end that returns their true landmarks.

Used by the demo, the tests and the video benchmark, where the point is the pipeline (decode,
batching, tracking, writing) rather than face detection: :class:`RenderedFrontEnd` looks each
incoming frame up among the rendered frames (by exact pixel hash, else by the nearest
48x48 thumbnail, which survives lossy video compression) and returns the renderer's boxes,
5 landmarks and pose for the faces visible in it, in a shuffled order. A frame that matches
no rendered frame (mean absolute thumbnail difference above ``max_difference`` grey levels)
has no faces.

Convention:
    As :mod:`auperf.frontend`: pixels with the origin at the centre of the top-left pixel,
    pose ``(yaw, pitch, roll)`` in degrees with yaw > 0 towards the image's left and pitch > 0
    looking up. The renderer's own pose signs are the opposite for yaw and pitch
    (:mod:`auperf.synth`), and are converted here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import MediaError, OptionalDependencyError, ShapeError
from ..frontend.base import Faces, FrontEnd

__all__ = ["RenderedFrontEnd", "render_clip", "write_video", "sidecar_frontend"]

_THUMB = 48


def _thumb(img: np.ndarray) -> np.ndarray:
    # every 8th pixel first (cheap on 1080p), then an area average down to _THUMB x _THUMB
    small = np.ascontiguousarray(img[::8, ::8])
    return cv2.resize(small, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def _digest(img: np.ndarray) -> bytes:
    # A strided sample of the pixels (every 5th row and column) and the shape: enough to tell
    # rendered frames apart, and cheap on 1080p frames.
    head = np.asarray(img.shape, np.int64).tobytes()
    sample = np.ascontiguousarray(img[::5, ::5]).tobytes()
    return hashlib.blake2b(head + sample, digest_size=16).digest()


class RenderedFrontEnd(FrontEnd):
    """Ground-truth faces of rendered frames (see the module docstring).

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB, the rendered frames (only hashes and thumbnails
            are kept).
        boxes: ``(T, F, 4)`` face boxes.
        landmarks5: ``(T, F, 5, 2)``.
        present: ``(T, F)`` bool, which faces a detector would report.
        pose_deg: ``(T, F, 3)`` renderer pose (yaw, pitch, roll), or ``None``.
        seed: seed of the shuffling of the face order within a frame.
        max_difference: largest mean absolute difference (grey levels) between a frame's
            thumbnail and the nearest rendered one for the frame to count as that one.
    """

    name = "rendered"

    def __init__(
        self,
        frames: np.ndarray,
        boxes: np.ndarray,
        landmarks5: np.ndarray,
        present: np.ndarray,
        pose_deg: np.ndarray | None = None,
        seed: int = 0,
        max_difference: float = 12.0,
        *,
        thumbs: np.ndarray | None = None,
        digests: list[bytes] | None = None,
    ) -> None:
        T = int(boxes.shape[0])
        if landmarks5.shape[:2] != boxes.shape[:2] or present.shape != boxes.shape[:2]:
            raise ShapeError(
                f"landmarks5, present: expected leading shape {boxes.shape[:2]}, got "
                f"{landmarks5.shape[:2]} and {present.shape}"
            )
        if frames is not None:
            thumbs = np.stack([_thumb(f) for f in frames])
            digests = [_digest(f) for f in frames]
        self.thumbs = thumbs
        self.digests = list(digests or [])
        self._by_digest = {d: t for t, d in enumerate(self.digests)}
        self.boxes = np.asarray(boxes, np.float64)
        self.landmarks5 = np.asarray(landmarks5, np.float64)
        self.present = np.asarray(present, bool)
        self.pose_deg = None if pose_deg is None else np.asarray(pose_deg, np.float64)
        self.seed = int(seed)
        self.max_difference = float(max_difference)
        self.num_frames = T
        #: the rendered frame each call's frames were matched to, most recent call
        self.last_match: list[int] = []

    @classmethod
    def from_multiface(cls, mf: Any, min_visible: float = 0.5, seed: int = 0) -> RenderedFrontEnd:
        """From :func:`auperf.synth.render_multiface` output: a face is present when it is in
        the frame and at least ``min_visible`` of its 68 landmarks are not covered."""
        present = mf.in_frame & (mf.visible68.mean(axis=2) >= min_visible)
        return cls(mf.images, mf.boxes, mf.landmarks5, present, mf.pose_deg, seed)

    def match(self, img: np.ndarray) -> int:
        """The rendered frame ``img`` shows (exact hash, else nearest thumbnail), or -1."""
        t = self._by_digest.get(_digest(img))
        if t is not None:
            return t
        if img.ndim != 3 or min(img.shape[:2]) < 2:
            return -1
        d = np.abs(self.thumbs - _thumb(img)[None]).reshape(len(self.thumbs), -1).mean(1)
        best = int(np.argmin(d))
        return best if d[best] <= self.max_difference else -1

    def detect(self, frames: Any) -> Faces:
        frames = list(frames)
        fidx, boxes, lm, pose, ts = [], [], [], [], []
        self.last_match = []
        for j, img in enumerate(frames):
            t = self.match(np.asarray(img))
            self.last_match.append(t)
            if t < 0:
                continue
            faces = np.flatnonzero(self.present[t])
            rng = np.random.default_rng([self.seed, t])
            faces = faces[rng.permutation(faces.size)]
            for f in faces:
                fidx.append(j)
                boxes.append(self.boxes[t, f])
                lm.append(self.landmarks5[t, f])
                ts.append((t, f))
                if self.pose_deg is not None:
                    yaw, pitch, roll = self.pose_deg[t, f]
                    pose.append((-yaw, -pitch, roll))
                else:
                    pose.append((np.nan, np.nan, np.nan))
        #: (rendered frame, face) of each returned face, most recent call
        self.last_faces = ts
        if not fidx:
            return Faces.empty(len(frames))
        return Faces(
            frame_index=np.asarray(fidx, np.int64),
            boxes=np.asarray(boxes, np.float64),
            scores=np.ones(len(fidx), np.float32),
            landmarks5=np.asarray(lm, np.float64),
            pose=np.asarray(pose, np.float64),
            num_frames=len(frames),
        )

    def save(self, path: str | Path) -> None:
        """Write the ground truth and the frame keys to an ``.npz`` (no pixels)."""
        np.savez_compressed(
            path,
            thumbs=self.thumbs,
            digests=np.frombuffer(b"".join(self.digests), np.uint8).reshape(-1, 16),
            boxes=self.boxes,
            landmarks5=self.landmarks5,
            present=self.present,
            pose_deg=self.pose_deg if self.pose_deg is not None else np.zeros((0,)),
            seed=np.asarray(self.seed),
        )

    @classmethod
    def load(cls, path: str | Path) -> RenderedFrontEnd:
        """Read a file written by :meth:`save` (plain arrays, no pickle)."""
        with np.load(path, allow_pickle=False) as z:
            pose = z["pose_deg"]
            return cls(
                None,
                z["boxes"],
                z["landmarks5"],
                z["present"],
                pose if pose.size else None,
                int(z["seed"]),
                thumbs=z["thumbs"],
                digests=[bytes(r) for r in z["digests"]],
            )


def sidecar_frontend(path: str) -> RenderedFrontEnd:
    """Factory for ``auperf detect --frontend auperf.video.synthetic:sidecar_frontend
    --frontend-option path=<file.npz>``: a :class:`RenderedFrontEnd` saved with ``save``."""
    return RenderedFrontEnd.load(path)


def render_clip(
    n_frames: int = 48,
    n_faces: int = 2,
    height: int = 240,
    width: int = 320,
    fps: float = 25.0,
    seed: int = 0,
    face_iod_px: tuple[float, float] = (40.0, 60.0),
) -> Any:
    """A multi-face clip (:func:`auperf.synth.render_multiface`) with crossing paths."""
    from ..synth import render_multiface

    return render_multiface(
        n_frames,
        n_faces=n_faces,
        height=height,
        width=width,
        fps=fps,
        seed=seed,
        face_iod_px=face_iod_px,
    )


def write_video(
    path: str | Path, frames: np.ndarray, fps: float = 25.0, codec: str = "libx264", crf: int = 18
) -> Path:
    """Encode ``(T, H, W, 3)`` uint8 RGB frames to a video file with PyAV.

    ``codec="libx264"`` writes H.264 in yuv420p (even sizes needed; ``crf`` sets quality),
    ``"ffv1"`` a lossless file (yuv444p, so pixels change by rounding only), ``"mpeg4"``
    MPEG-4 part 2.

    Raises:
        OptionalDependencyError: PyAV is not installed.
        ShapeError: ``frames`` is not ``(T, H, W, 3)`` uint8.
    """
    try:
        import av
    except ImportError:
        raise OptionalDependencyError(
            "write_video: PyAV is not installed (pip install av)"
        ) from None
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ShapeError(f"frames: expected (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    path = Path(path)
    from fractions import Fraction

    try:
        with av.open(str(path), "w") as c:
            st = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            st.width, st.height = frames.shape[2], frames.shape[1]
            st.pix_fmt = "yuv444p" if codec == "ffv1" else "yuv420p"
            if codec == "libx264":
                st.options = {"crf": str(crf), "preset": "veryfast"}
            for f in frames:
                for pkt in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    c.mux(pkt)
            for pkt in st.encode():
                c.mux(pkt)
    except av.error.FFmpegError as exc:
        raise MediaError(f"cannot encode with {codec!r} ({exc})", source=path) from None
    return path
