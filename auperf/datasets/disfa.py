"""DISFA layout (left camera).

Layout::

    <root>/
      Videos_LeftCamera/LeftVideo<SN001>_comp.avi      the published videos (MJPG written here)
      Images_LeftCamera/<SN001>/<frame>.png            extracted frames (auperf's choice of name)
      ActionUnit_Labels/<SN001>/<SN001>_au<k>.txt      lines "frame,intensity"
      auperf_landmarks.csv                             optional auperf sidecar

Frames are numbered from 1 (line ``1,0`` labels the first video frame). Intensities are the
FACS 0-5 codes; DISFA has no unknown code. An AU counts as occurring at intensity >= 2 by the
common convention (``occurrence_threshold``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import DatasetError, NonFiniteError, ParameterError, ShapeError, ValueRangeError
from ._common import (
    DatasetReader,
    DatasetWriter,
    Sample,
    au_vector,
    check_frame,
    check_image,
    check_landmarks,
    check_name,
    format_intensity,
    numbered_files,
    parse_float,
    parse_int,
    read_csv_rows,
    resolve_aus,
    write_csv,
    write_image,
)

__all__ = ["DISFA_AUS", "DISFA_BENCHMARK_AUS", "DISFAReader", "DISFAWriter"]

logger = logging.getLogger("auperf")

#: The 12 AUs DISFA codes.
DISFA_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
#: The 8 AUs of the usual DISFA occurrence benchmark.
DISFA_BENCHMARK_AUS: tuple[int, ...] = (1, 2, 4, 6, 9, 12, 25, 26)

_MEDIA = ("video", "frames", "both")


def _video_rel(subject: str) -> str:
    return f"Videos_LeftCamera/LeftVideo{subject}_comp.avi"


def _label_path(root: Path, subject: str, au: int) -> Path:
    return root / "ActionUnit_Labels" / subject / f"{subject}_au{au}.txt"


class DISFAWriter(DatasetWriter):
    """Write frames and AU intensities in the DISFA layout.

    Args:
        root: Dataset root folder.
        au_ids: AUs that get a label file.
        media: ``"video"`` (an MJPG AVI per subject), ``"frames"`` (PNG files) or ``"both"``.
        fps: Frame rate of the videos.
        frame_digits: Zero padding of the frame file names.
        exist_ok: Allow a non-empty root.

    Frames of a subject must be added in order 1, 2, 3, ... and share one size (a video cannot
    have gaps).
    """

    layout = "disfa"

    def __init__(
        self,
        root: str | Path,
        *,
        au_ids: Sequence[int] = DISFA_AUS,
        media: str = "video",
        fps: float = 20.0,
        frame_digits: int = 5,
        exist_ok: bool = False,
    ) -> None:
        if media not in _MEDIA:
            raise ParameterError(f"media: expected one of {_MEDIA}, got {media!r}")
        if not (isinstance(fps, int | float) and np.isfinite(fps) and fps > 0):
            raise ParameterError(f"fps: expected a positive number, got {fps!r}")
        self.au_ids = resolve_aus(au_ids, DISFA_AUS, "au_ids")
        self.media = media
        self.fps = float(fps)
        self.frame_digits = check_frame(frame_digits, "frame_digits", 1)
        super().__init__(root, exist_ok=exist_ok)
        self._labels: dict[str, list[np.ndarray]] = {}
        self._videos: dict[str, cv2.VideoWriter] = {}
        self._sizes: dict[str, tuple[int, int]] = {}

    def add(
        self, image: np.ndarray, *, subject: str, frame: int, intensity: Any, landmarks: Any = None
    ) -> None:
        """Add the next frame of a subject.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            subject: Subject id, e.g. ``"SN001"``.
            frame: 1-based frame number; must be the subject's previous frame + 1.
            intensity: ``(L,)`` in ``au_ids`` order or a mapping AU -> value, each in [0, 5]
                (DISFA has no unknown code, so NaN is refused).
            landmarks: Optional ``(5, 2)`` landmarks for the sidecar.
        """
        check_image(image)
        subject = check_name(subject, "subject")
        frame = check_frame(frame, "frame", 1)
        inten = au_vector(intensity, self.au_ids, "intensity", kind="intensity")
        if inten is None:
            raise ParameterError("intensity: required for DISFA")
        if np.isnan(inten).any():
            raise NonFiniteError(
                f"intensity: DISFA has no unknown code, got NaN in {inten.tolist()}"
            )
        lm = check_landmarks(landmarks)
        rows = self._labels.setdefault(subject, [])
        if frame != len(rows) + 1:
            raise ValueRangeError(
                f"frame: subject {subject} expects frame {len(rows) + 1} next, got {frame}"
            )
        size = (image.shape[1], image.shape[0])
        if self._sizes.setdefault(subject, size) != size:
            raise ShapeError(
                f"image: subject {subject} frames are {self._sizes[subject]} (W, H), got {size}"
            )
        self._claim(f"{subject}#{frame}")
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if self.media in ("video", "both"):
            vw = self._videos.get(subject)
            if vw is None:
                path = self.root / _video_rel(subject)
                path.parent.mkdir(parents=True, exist_ok=True)
                vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), self.fps, size)
                if not vw.isOpened():
                    raise DatasetError("could not open an MJPG video writer", path=path)
                self._videos[subject] = vw
            vw.write(bgr)
        if self.media in ("frames", "both"):
            rel = f"Images_LeftCamera/{subject}/{frame:0{self.frame_digits}d}.png"
            write_image(self.root / rel, image)
        if self.media in ("video", "both"):
            self._add_landmarks(_video_rel(subject), frame, lm)
        if self.media in ("frames", "both"):
            self._add_landmarks(
                f"Images_LeftCamera/{subject}/{frame:0{self.frame_digits}d}.png", None, lm
            )
        rows.append(inten)
        self.count += 1

    def _write_labels(self) -> None:
        for vw in self._videos.values():
            vw.release()
        for subject, rows in self._labels.items():
            for j, au in enumerate(self.au_ids):
                lines = [[f + 1, format_intensity(r[j])] for f, r in enumerate(rows)]
                write_csv(_label_path(self.root, subject, au), None, lines)


class DISFAReader(DatasetReader):
    """Read a dataset in the DISFA layout.

    Args:
        root: Dataset root folder.
        aus: AU numbers to return (default :data:`DISFA_AUS`); each needs a label file per subject.
        media: ``"auto"`` (extracted frames where a subject has them, else the video),
            ``"frames"`` or ``"video"``.
        occurrence_threshold: Intensity at or above which an AU counts as occurring (default 2).
        check_files: Check that the frames or videos exist and hold every labelled frame.
        landmarks: Use ``auperf_landmarks.csv`` when present.

    Raises:
        DatasetError: a missing label file, frame or video; a malformed line; an intensity
            outside 0-5; label files of one subject that disagree on their frames.
    """

    layout = "disfa"
    default_aus = DISFA_AUS

    def __init__(
        self,
        root: str | Path,
        *,
        aus: Sequence[int] | None = None,
        media: str = "auto",
        occurrence_threshold: float = 2.0,
        check_files: bool = True,
        landmarks: bool = True,
    ) -> None:
        super().__init__(root, landmarks=landmarks)
        if media not in ("auto", "frames", "video"):
            raise ParameterError(f"media: expected 'auto', 'frames' or 'video', got {media!r}")
        if not (
            isinstance(occurrence_threshold, int | float) and 0.0 < occurrence_threshold <= 5.0
        ):
            raise ParameterError(
                f"occurrence_threshold: expected a number in (0, 5], got {occurrence_threshold!r}"
            )
        self.au_ids = resolve_aus(aus, DISFA_AUS)
        self.occurrence_threshold = float(occurrence_threshold)
        label_dir = self.root / "ActionUnit_Labels"
        if not label_dir.is_dir():
            raise DatasetError("label folder not found", path=label_dir)
        subjects = sorted(p.name for p in label_dir.iterdir() if p.is_dir())
        if not subjects:
            raise DatasetError("no subject folders", path=label_dir)
        self._capture: tuple[Path, cv2.VideoCapture] | None = None
        samples: list[Sample] = []
        for subject in subjects:
            table, rows, ref = self._read_subject(subject)
            frames = sorted(table)
            frame_dir = self.root / "Images_LeftCamera" / subject
            video = self.root / _video_rel(subject)
            use_frames = media == "frames" or (media == "auto" and frame_dir.is_dir())
            if use_frames:
                images = numbered_files(frame_dir) if check_files else {}
                if check_files and not frame_dir.is_dir():
                    raise DatasetError(f"no extracted frames for subject {subject}", path=frame_dir)
            elif check_files:
                if not video.is_file():
                    raise DatasetError(f"no video for subject {subject}", path=video)
                n = self._frame_count(video)
                if n <= 0:
                    logger.warning("disfa: %s does not report its frame count; not checked", video)
                elif frames[-1] > n:
                    bad = next(f for f in frames if f > n)
                    raise DatasetError(
                        f"frame {bad} is beyond the {n} frames of {video}", path=ref, row=rows[bad]
                    )
            for f in frames:
                inten = table[f]
                occ = (inten >= self.occurrence_threshold).astype(np.int8)
                if use_frames:
                    img = images.get(f) if check_files else frame_dir / f"{f:05d}.png"
                    if img is None:
                        raise DatasetError(
                            f"frame {f}: no image {f}.png (any zero padding) in {frame_dir}",
                            path=ref,
                            row=rows[f],
                        )
                    s = Sample(
                        layout=self.layout,
                        key=img.relative_to(self.root).as_posix(),
                        image_path=img,
                        frame=f,
                        subject=subject,
                        au_ids=self.au_ids,
                        occurrence=occ,
                        intensity=inten,
                    )
                else:
                    s = Sample(
                        layout=self.layout,
                        key=f"{_video_rel(subject)}#{f}",
                        video_path=video,
                        frame=f,
                        subject=subject,
                        au_ids=self.au_ids,
                        occurrence=occ,
                        intensity=inten,
                    )
                samples.append(s)
        self._finish(samples)

    @staticmethod
    def _frame_count(video: Path) -> int:
        cap = cv2.VideoCapture(str(video))
        try:
            if not cap.isOpened():
                raise DatasetError("cannot open the video", path=video)
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()

    def _read_subject(self, subject: str) -> tuple[dict[int, np.ndarray], dict[int, int], Path]:
        """Per frame the ``(L,)`` intensities; per frame its row in the first label file."""
        per_au: list[dict[int, float]] = []
        first_rows: dict[int, int] = {}
        ref = _label_path(self.root, subject, self.au_ids[0])
        for au in self.au_ids:
            path = _label_path(self.root, subject, au)
            if not path.is_file():
                raise DatasetError(
                    f"AU{au} requested but subject {subject} has no label file for it", path=path
                )
            values: dict[int, float] = {}
            rows: dict[int, int] = {}
            for line, cells in read_csv_rows(path):
                if len(cells) != 2:
                    raise DatasetError(
                        f"expected 'frame,intensity', got {','.join(cells)!r}", path=path, row=line
                    )
                f = parse_int(cells[0], path, line, "frame")
                if f < 1:
                    raise DatasetError(
                        f"frame: DISFA frames start at 1, got {f}", path=path, row=line
                    )
                if f in values:
                    raise DatasetError(
                        f"frame {f} appears twice (first at row {rows[f]})", path=path, row=line
                    )
                v = parse_float(cells[1], path, line, f"AU{au} intensity")
                if not 0.0 <= v <= 5.0:
                    raise DatasetError(
                        f"AU{au} intensity: expected 0-5, got {cells[1].strip()!r}",
                        path=path,
                        row=line,
                    )
                values[f] = v
                rows[f] = line
            if not values:
                raise DatasetError("no label lines", path=path)
            if per_au and set(values) != set(per_au[0]):
                diff = sorted(set(values) ^ set(per_au[0]))[0]
                where = rows.get(diff)
                raise DatasetError(
                    f"frames differ from {ref.name}: frame {diff} is in one file but not the other",
                    path=path,
                    row=where,
                )
            if not per_au:
                first_rows = rows
            per_au.append(values)
        table = {f: np.array([d[f] for d in per_au], dtype=np.float32) for f in per_au[0]}
        return table, first_rows, ref

    def load_image(self, sample: Sample | int) -> np.ndarray:
        """The sample's image or video frame, ``(H, W, 3)`` uint8 RGB."""
        s = self._sample(sample)
        if s.video_path is None:
            return super().load_image(s)
        if self._capture is None or self._capture[0] != s.video_path:
            if self._capture is not None:
                self._capture[1].release()
            cap = cv2.VideoCapture(str(s.video_path))
            if not cap.isOpened():
                raise DatasetError("cannot open the video", path=s.video_path)
            self._capture = (s.video_path, cap)
        cap = self._capture[1]
        cap.set(cv2.CAP_PROP_POS_FRAMES, s.frame - 1)
        ok, bgr = cap.read()
        if not ok:
            raise DatasetError(f"cannot decode frame {s.frame}", path=s.video_path)
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

    def iter_images(self) -> Iterator[tuple[Sample, np.ndarray]]:
        """Yield ``(sample, image)`` in index order, decoding each video once, front to back."""
        cap: cv2.VideoCapture | None = None
        current: Path | None = None
        position = 0
        try:
            for s in self._samples:
                if s.video_path is None:
                    yield s, super().load_image(s)
                    continue
                if s.video_path != current or s.frame < position + 1:
                    if cap is not None:
                        cap.release()
                    cap = cv2.VideoCapture(str(s.video_path))
                    if not cap.isOpened():
                        raise DatasetError("cannot open the video", path=s.video_path)
                    current, position = s.video_path, 0
                bgr = None
                while position < s.frame:
                    ok, bgr = cap.read()
                    if not ok:
                        raise DatasetError(f"cannot decode frame {position + 1}", path=s.video_path)
                    position += 1
                yield s, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            if cap is not None:
                cap.release()

    def subset(self, selection: Any) -> DISFAReader:
        out = super().subset(selection)
        out._capture = None  # each reader owns its video handle
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Release the video handle :meth:`load_image` keeps open."""
        if self._capture is not None:
            self._capture[1].release()
            self._capture = None

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        return (Path(root) / "ActionUnit_Labels").is_dir()
