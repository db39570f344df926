"""Frame sources: video files, folders of images, single images, cameras, stream URLs, arrays.

Every source yields :class:`Frame` objects in order. A source that fails part way (a truncated
video, a file in a folder that does not decode) yields every good frame first and then either
raises :class:`~auperf.errors.MediaError` (a video or stream that cannot go on) or yields a
frame with ``image=None`` and ``error`` set (one bad image of a folder: the next ones are still
read).

Convention:
    ``Frame.image`` is ``(H, W, 3)`` uint8 RGB, C-contiguous. ``Frame.index`` counts frames
    from 0 in decode order (for a folder: the position of the file among the image files,
    sorted by name). ``Frame.timestamp`` is in seconds: the presentation time for videos
    (PyAV's ``frame.time``; OpenCV's ``CAP_PROP_POS_MSEC`` / 1000), seconds since the first
    frame for cameras and streams read with OpenCV, and NaN for images.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError, OptionalDependencyError, ParameterError

__all__ = [
    "Frame",
    "Source",
    "ArraySource",
    "VideoFileSource",
    "ImageFolderSource",
    "ImageFileSource",
    "CameraSource",
    "open_source",
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
]

_log = logging.getLogger("auperf")

#: File name suffixes read as images (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
#: File name suffixes read as videos (lower case); any other non-image file is tried as a video.
VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv")
_DECODERS = ("auto", "av", "opencv")


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        index: position in the source, from 0.
        timestamp: seconds (see the module's *Convention*); NaN where unknown.
        image: ``(H, W, 3)`` uint8 RGB, or ``None`` when this frame could not be read.
        name: the file the frame came from (its name, for folders; the path otherwise).
        error: why ``image`` is ``None``; empty otherwise.
    """

    index: int
    timestamp: float
    image: np.ndarray | None
    name: str = ""
    error: str = ""


class Source:
    """Base class: an iterable of :class:`Frame`; ``start`` skips the frames before it.

    Attributes:
        name: the input as given (path, URL, ``camera:<i>``).
        fps: the nominal frame rate, or ``None`` where the source does not say.
        num_frames: the number of frames when known in advance, else ``None``.
    """

    name: str = ""
    fps: float | None = None
    num_frames: int | None = None

    def frames(self, start: int = 0) -> Iterator[Frame]:
        """Yield frames with ``index >= start``, in order."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Release the decoder (also done when iteration ends)."""


def _check_start(start: Any) -> int:
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ParameterError(f"start: expected an integer >= 0, got {start!r}")
    return int(start)


def _as_rgb(image: np.ndarray, name: str) -> np.ndarray:
    """``(H, W)``, ``(H, W, 1|3|4)`` uint8/uint16 -> ``(H, W, 3)`` uint8 RGB (input is RGB)."""
    a = np.asarray(image)
    if a.dtype == np.uint16:
        a = (a >> 8).astype(np.uint8)
    if a.dtype != np.uint8:
        raise MediaError(f"expected 8-bit pixels, got dtype {a.dtype}", source=name)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise MediaError(f"expected an image of shape (H, W, 3), got {a.shape}", source=name)
    return np.ascontiguousarray(a)


class ArraySource(Source):
    """Frames held in memory: a ``(T, H, W, 3)`` uint8 RGB array or a list of ``(H, W, 3)``.

    Args:
        frames: the frames.
        fps: frame rate used for timestamps (``index / fps``); NaN timestamps when ``None``.
        name: a label for messages and the ``file`` column.
    """

    def __init__(self, frames: Any, fps: float | None = None, name: str = "<array>") -> None:
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = frames[None]
        self._frames = frames
        self.fps = None if fps is None else float(fps)
        self.name = name
        self.num_frames = len(frames)

    def frames(self, start: int = 0) -> Iterator[Frame]:
        start = _check_start(start)
        for i in range(start, len(self._frames)):
            t = i / self.fps if self.fps else math.nan
            yield Frame(i, t, _as_rgb(self._frames[i], self.name), self.name)


class VideoFileSource(Source):
    """A video file or a stream URL decoded with PyAV (default) or OpenCV's ``VideoCapture``.

    Args:
        path: the file path or URL (``rtsp://``, ``http(s)://``, ...).
        decoder: ``"av"`` (PyAV, frame-accurate timestamps), ``"opencv"`` (``cv2.VideoCapture``)
            or ``"auto"`` (PyAV when installed, else OpenCV).
        threads: decoder threads for PyAV (``0``: FFmpeg's default).

    Raises:
        MediaError: the file does not exist or cannot be opened (no video stream in it).
        OptionalDependencyError: ``decoder="av"`` but PyAV is not installed.

    Iterating raises :class:`~auperf.errors.MediaError` after the last good frame when decoding
    fails part way (a truncated or corrupt file).
    """

    def __init__(self, path: str | Path, decoder: str = "auto", threads: int = 0) -> None:
        if decoder not in _DECODERS:
            raise ParameterError(f"decoder: expected one of {list(_DECODERS)}, got {decoder!r}")
        self.name = str(path)
        self._url = "://" in self.name
        if not self._url and not Path(self.name).is_file():
            raise MediaError("no such file", source=self.name)
        if decoder == "auto":
            decoder = "av" if _have_av() else "opencv"
        if decoder == "av" and not _have_av():
            raise OptionalDependencyError(
                "decoder 'av': PyAV is not installed (pip install av, or auperf[video])"
            )
        self.decoder = decoder
        self._threads = int(threads)
        self._probe()

    def _probe(self) -> None:
        if self.decoder == "av":
            import av

            try:
                with av.open(self.name, timeout=10.0 if self._url else None) as c:
                    if not c.streams.video:
                        raise MediaError("holds no video stream", source=self.name)
                    st = c.streams.video[0]
                    self.fps = float(st.average_rate) if st.average_rate else None
                    self.num_frames = int(st.frames) or None
                    self.size = (int(st.codec_context.width), int(st.codec_context.height))
            except MediaError:
                raise
            except Exception as exc:  # noqa: BLE001 - every FFmpeg failure becomes one error
                raise MediaError(f"cannot open as a video ({exc})", source=self.name) from None
        else:
            cap = self._capture()
            fps = cap.get(_cv2().CAP_PROP_FPS)
            n = cap.get(_cv2().CAP_PROP_FRAME_COUNT)
            self.fps = float(fps) if fps and fps > 0 else None
            self.num_frames = int(n) if n and n > 0 else None
            self.size = (
                int(cap.get(_cv2().CAP_PROP_FRAME_WIDTH)),
                int(cap.get(_cv2().CAP_PROP_FRAME_HEIGHT)),
            )
            cap.release()

    def _capture(self) -> Any:
        cv2 = _cv2()
        cap = cv2.VideoCapture(self.name)
        if not cap.isOpened():
            raise MediaError("cannot open as a video (OpenCV VideoCapture)", source=self.name)
        return cap

    def frames(self, start: int = 0) -> Iterator[Frame]:
        start = _check_start(start)
        if self.decoder == "av":
            yield from self._frames_av(start)
        else:
            yield from self._frames_cv(start)

    def _frames_av(self, start: int) -> Iterator[Frame]:
        import av

        try:
            container = av.open(self.name, timeout=10.0 if self._url else None)
        except Exception as exc:  # noqa: BLE001
            raise MediaError(f"cannot open as a video ({exc})", source=self.name) from None
        i = -1
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            if self._threads:
                stream.codec_context.thread_count = self._threads
            try:
                for packet in container.demux(stream):
                    for fr in packet.decode():
                        i += 1
                        if i < start:
                            continue
                        t = float(fr.time) if fr.time is not None else math.nan
                        yield Frame(i, t, fr.to_ndarray(format="rgb24"), self.name)
            except (av.error.FFmpegError, ValueError, OSError) as exc:
                raise MediaError(
                    f"decoding failed after frame {i} ({type(exc).__name__}: {exc})",
                    source=self.name,
                ) from None
        finally:
            container.close()
        if i < 0:
            raise MediaError("no frame could be decoded (empty or corrupt video)", source=self.name)
        if self.num_frames and i + 1 < self.num_frames:
            raise MediaError(
                f"truncated: the container announces {self.num_frames} frames, "
                f"{i + 1} were decoded",
                source=self.name,
            )

    def _frames_cv(self, start: int) -> Iterator[Frame]:
        cv2 = _cv2()
        cap = self._capture()
        i = -1
        t0 = time.monotonic()
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    break
                i += 1
                if i < start:
                    continue
                ms = cap.get(cv2.CAP_PROP_POS_MSEC)
                t = ms / 1000.0 if not self._url else time.monotonic() - t0
                yield Frame(i, t, np.ascontiguousarray(bgr[:, :, ::-1]), self.name)
        finally:
            cap.release()
        if i < 0:
            raise MediaError("no frame could be decoded (empty or corrupt video)", source=self.name)
        if self.num_frames and i + 1 < self.num_frames and not self._url:
            raise MediaError(
                f"truncated: the container announces {self.num_frames} frames, "
                f"{i + 1} were decoded",
                source=self.name,
            )


class CameraSource(Source):
    """A camera by its OpenCV index (``cv2.VideoCapture(index)``); runs until the camera stops
    or ``max_frames`` frames were read. Timestamps: seconds since the first frame."""

    def __init__(self, index: int, max_frames: int | None = None) -> None:
        self.index = int(index)
        self.name = f"camera:{self.index}"
        self.max_frames = max_frames

    def frames(self, start: int = 0) -> Iterator[Frame]:
        cv2 = _cv2()
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            raise MediaError("cannot open the camera", source=self.name)
        t0 = time.monotonic()
        i = -1
        try:
            while self.max_frames is None or i + 1 < self.max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                i += 1
                if i >= start:
                    yield Frame(i, time.monotonic() - t0, bgr[:, :, ::-1].copy(), self.name)
        finally:
            cap.release()


def _read_image(path: Path) -> tuple[np.ndarray | None, str]:
    cv2 = _cv2()
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        return None, f"cannot read ({exc.strerror or exc})"
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        return None, "not a decodable image (corrupt, truncated or another format)"
    if img.ndim == 3 and img.shape[2] >= 3:
        img = img[:, :, [2, 1, 0] + ([3] if img.shape[2] == 4 else [])]
    try:
        return _as_rgb(img, path.name), ""
    except MediaError as exc:
        return None, str(exc)


class ImageFileSource(Source):
    """One image file as a one-frame source. Raises :class:`MediaError` when it cannot be read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.num_frames = 1
        if not self.path.is_file():
            raise MediaError("no such file", source=self.name)

    def frames(self, start: int = 0) -> Iterator[Frame]:
        if _check_start(start) > 0:
            return
        img, err = _read_image(self.path)
        if img is None:
            raise MediaError(err, source=self.name)
        yield Frame(0, math.nan, img, self.path.name)


class ImageFolderSource(Source):
    """The image files of a folder (not recursive), sorted by name; one frame per file.

    Files whose suffix is not in :data:`IMAGE_SUFFIXES` are skipped and listed in
    :attr:`skipped`. A file with an image suffix that does not decode yields a frame with
    ``image=None`` and ``error`` set, so the frame numbering does not depend on which files
    decode.

    Raises:
        MediaError: the folder does not exist or holds no image file.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.name = str(path)
        if not self.path.is_dir():
            raise MediaError("no such folder", source=self.name)
        entries = sorted(p for p in self.path.iterdir() if p.is_file())
        self.files = [p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES]
        #: files left out because their suffix is not an image suffix
        self.skipped = [p for p in entries if p.suffix.lower() not in IMAGE_SUFFIXES]
        self.num_frames = len(self.files)
        if not self.files:
            raise MediaError(
                f"holds no image file (suffixes {', '.join(IMAGE_SUFFIXES)}); "
                f"{len(self.skipped)} other file(s)",
                source=self.name,
            )

    def frames(self, start: int = 0) -> Iterator[Frame]:
        for i in range(_check_start(start), len(self.files)):
            img, err = _read_image(self.files[i])
            yield Frame(i, math.nan, img, self.files[i].name, err)


def open_source(spec: str | int | Path, decoder: str = "auto") -> Source:
    """The source for a command-line style input.

    Args:
        spec: a camera index (an int, or a string of digits), a URL (anything with ``://``),
            a folder (its images), an image file (by suffix) or a video file.
        decoder: for videos and URLs: ``"auto"``, ``"av"`` or ``"opencv"``.

    Raises:
        MediaError: the path does not exist, or the file cannot be opened.
    """
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return CameraSource(int(spec))
    s = str(spec)
    if s.isdigit():
        return CameraSource(int(s))
    if "://" in s:
        return VideoFileSource(s, decoder=decoder)
    p = Path(s)
    if p.is_dir():
        return ImageFolderSource(p)
    if not p.exists():
        raise MediaError("no such file or folder", source=s)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFileSource(p)
    if not os.access(p, os.R_OK):
        raise MediaError("not readable (permission denied)", source=s)
    return VideoFileSource(p, decoder=decoder)


def _have_av() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def _cv2() -> Any:
    import cv2

    return cv2
