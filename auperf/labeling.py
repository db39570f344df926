"""Turn unlabelled videos and photos of real faces into an AU training set: the label job.

For every input (a video file, an image file or a folder of images) the job decodes frames
(:mod:`auperf.video` sources; every ``frame_step``-th frame of a video), finds faces with a front
end that gives MediaPipe's blendshapes (:mod:`auperf.frontend`), follows them with
:class:`auperf.video.Tracker`, labels each face with the blendshape teacher
(:class:`auperf.teacher.Teacher`, by default :meth:`~auperf.teacher.Teacher.calibrated`), and
keeps a sample of the faces:

* *dedup*: a face whose 24 x 24 grey thumbnail of its aligned crop differs from the last kept
  face of its track by less than ``dedup`` grey levels (mean absolute difference, 0-255) is a
  near-identical frame and is dropped;
* *track balance*: each track keeps at most ``max_per_track`` faces, spread evenly over the
  track (a long, still shot does not outweigh a short one).

Output (``out_dir``), the EmotioNet-style layout that :func:`auperf.datasets.open_dataset` and
the M0 trainer read::

    images/<name>.jpg           aligned crops, crop_size x crop_size RGB (auperf.align template)
    labels.csv                  image, AU1, AU2, ...: 1, 0, 999 (unknown: the teacher cannot see it)
    auperf_landmarks.csv        the 5 alignment points of each crop (the template), so the
                                trainers re-align crops exactly like any other dataset
    auperf_label_meta.csv       image, source, track, frame, timestamp, box, pose, teacher scores
    auperf_label_state.json     settings and per-input status (the resume record)
    auperf_label_report.json    counts of the last run (inputs, frames, faces, skips, rows)

Convention:
    Crops are aligned by :func:`auperf.align.estimate_similarity` (the 5 points -> the
    ``auperf.align.template(crop_size)`` template, ``src_to_dst``) and
    :func:`auperf.ops.warp_faces` (bilinear, black border), RGB uint8. ``timestamp`` is in
    seconds (NaN for photos); ``frame`` is the index in the source from 0; ``box`` is
    ``(x0, y0, x1, y1)`` in frame pixels; pose ``(yaw, pitch, roll)`` in degrees as in
    :mod:`auperf.frontend.base`. ``source`` is the input path, and for image folders the
    image's path: the unit that held-out splits keep together.

Invariants: the label table never holds a row without its crop, nor a crop without its row. An
input is written whole (crops, then the tables, atomically replaced, then the state); resuming
(``resume=True``) skips inputs marked done, removes the rows and crops of an input that was
interrupted, and redoes it. Bad inputs (files that cannot be opened or decoded, frames that do
not decode, inputs without faces, faces whose points cannot be aligned) are skipped, counted
in :class:`LabelReport` and listed in ``auperf_label_report.json``.

Example::

    from auperf.labeling import label_media
    report = label_media(["clip.mp4", "photos/"], "labels/")
    print(report.summary())
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    DatasetError,
    MediaError,
    NonFiniteError,
    ParameterError,
    ShapeError,
    SingularMatrixError,
)

__all__ = [
    "DEFAULT_AUS",
    "LabelReport",
    "LabelTable",
    "check_label_dir",
    "label_media",
    "read_label_dir",
]

_log = logging.getLogger("auperf")

#: The AU list of the shipped demo model, the default columns of the label table.
DEFAULT_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26)
_UNKNOWN_CODE = 999
_STATE = "auperf_label_state.json"
_META = "auperf_label_meta.csv"
_REPORT = "auperf_label_report.json"
_SIDECAR = "auperf_landmarks.csv"
_THUMB = 24
_FORMAT = 1


@dataclass
class LabelReport:
    """Counts of one label run.

    Attributes:
        inputs: inputs given. inputs_done: inputs processed in this run.
        inputs_resumed: inputs skipped because an earlier run finished them.
        inputs_failed: ``[(input, reason)]`` for files that could not be opened or decoded
            (a decode error part way keeps the faces before it and is listed here too).
        inputs_no_face: inputs in which the front end found no face in any sampled frame.
        frames_read: frames decoded and passed to the front end.
        frames_unreadable: frames (images of a folder) that did not decode.
        frames_no_face: sampled frames without a face.
        faces_found: faces the front end returned.
        faces_unaligned: faces whose 5 points were not finite, too close together
            (eye distance below ``min_eye_px``) or gave a singular alignment.
        faces_duplicate: faces dropped as near-identical to the previous kept face of their track.
        faces_balanced_out: faces dropped by the per-track cap.
        rows_written: rows (= crops) added in this run. rows_total: rows in the table now.
        positives: ``{"AU12": n, ...}`` positive labels among the rows added in this run.
        unknown_aus: AUs the teacher labels unknown in every row.
    """

    inputs: int = 0
    inputs_done: int = 0
    inputs_resumed: int = 0
    inputs_failed: list[tuple[str, str]] = field(default_factory=list)
    inputs_no_face: list[str] = field(default_factory=list)
    frames_read: int = 0
    frames_unreadable: int = 0
    frames_no_face: int = 0
    faces_found: int = 0
    faces_unaligned: int = 0
    faces_duplicate: int = 0
    faces_balanced_out: int = 0
    rows_written: int = 0
    rows_total: int = 0
    positives: dict[str, int] = field(default_factory=dict)
    unknown_aus: list[int] = field(default_factory=list)

    def summary(self) -> str:
        """A few human-readable lines."""
        lines = [
            f"inputs: {self.inputs} ({self.inputs_done} done, {self.inputs_resumed} already "
            f"done, {len(self.inputs_failed)} failed, {len(self.inputs_no_face)} without a face)",
            f"frames: {self.frames_read} read, {self.frames_unreadable} unreadable, "
            f"{self.frames_no_face} without a face",
            f"faces: {self.faces_found} found, {self.faces_unaligned} not alignable, "
            f"{self.faces_duplicate} near-duplicates, {self.faces_balanced_out} over the "
            f"per-track cap",
            f"rows: {self.rows_written} written, {self.rows_total} in the table",
        ]
        for name, why in self.inputs_failed:
            lines.append(f"failed: {name}: {why}")
        for name in self.inputs_no_face:
            lines.append(f"no face: {name}")
        return "\n".join(lines)


@dataclass
class LabelTable:
    """A label folder read back (``N`` rows).

    Attributes:
        root: the folder. au_ids: the ``L`` AU columns.
        images: ``(N,)`` file names under ``images/``.
        labels: ``(N, L)`` int8, 1 / 0 / -1 unknown.
        scores: ``(N, L)`` float32 teacher scores (NaN where the AU has no blendshape).
        source: ``(N,)`` the input each row came from (held-out splits group by it).
        track: ``(N,)`` int64 track id within the source. frame: ``(N,)`` int64 frame index.
        timestamp: ``(N,)`` float64 seconds (NaN for photos).
    """

    root: Path
    au_ids: tuple[int, ...]
    images: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    source: np.ndarray
    track: np.ndarray
    frame: np.ndarray
    timestamp: np.ndarray

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def load_crops(self) -> np.ndarray:
        """``(N, S, S, 3)`` uint8 RGB crops, in row order."""
        from .datasets._common import read_image

        if len(self) == 0:
            return np.zeros((0, 0, 0, 3), np.uint8)
        return np.stack([read_image(self.root / "images" / n) for n in self.images])


# -- small helpers ------------------------------------------------------------------------------


def _meta_header(au_ids: Sequence[int]) -> list[str]:
    return (
        ["image", "source", "track", "frame", "timestamp", "x0", "y0", "x1", "y1"]
        + ["yaw", "pitch", "roll"]
        + [f"score_AU{a}" for a in au_ids]
    )


def _write_csv_atomic(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    os.replace(tmp, path)


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _fmt(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.6g}"


def _source_tag(source: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(source).stem)[:32]
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()[:8]
    return f"{stem or 'input'}_{digest}"


def _thumb(crop: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (_THUMB, _THUMB), interpolation=cv2.INTER_AREA).astype(np.float32)


def _check_positive(name: str, value: Any, integer: bool = False) -> None:
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
    if bad or (integer and int(value) != value) or not value > 0:
        kind = "an integer" if integer else "a number"
        raise ParameterError(f"{name}: expected {kind} > 0, got {value!r}")


@dataclass
class _Candidate:
    crop: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    track: int
    frame: int
    timestamp: float
    box: np.ndarray
    pose: np.ndarray
    source: str


class _TrackSampler:
    """Per-track dedup and an evenly spread cap, in bounded memory (see the module docstring)."""

    def __init__(self, cap: int, dedup: float) -> None:
        self.cap, self.dedup = cap, dedup
        self.kept: dict[int, list[_Candidate]] = {}
        self.last_thumb: dict[int, np.ndarray] = {}
        self.stride: dict[int, int] = {}
        self.seen: dict[int, int] = {}
        self.duplicates = 0
        self.balanced_out = 0

    def offer(self, c: _Candidate) -> None:
        th = _thumb(c.crop)
        last = self.last_thumb.get(c.track)
        if last is not None and float(np.abs(th - last).mean()) < self.dedup:
            self.duplicates += 1
            return
        self.last_thumb[c.track] = th
        k = self.seen.get(c.track, 0)
        self.seen[c.track] = k + 1
        stride = self.stride.setdefault(c.track, 1)
        if k % stride:
            self.balanced_out += 1
            return
        lst = self.kept.setdefault(c.track, [])
        lst.append(c)
        if len(lst) >= 2 * self.cap:  # thin to every other one, double the stride
            self.balanced_out += len(lst) - len(lst[::2])
            self.kept[c.track] = lst[::2]
            self.stride[c.track] = 2 * stride

    def result(self) -> list[_Candidate]:
        out = []
        for track in sorted(self.kept):
            lst = self.kept[track]
            if len(lst) > self.cap:
                pick = np.unique(np.linspace(0, len(lst) - 1, self.cap).round().astype(int))
                self.balanced_out += len(lst) - pick.size
                lst = [lst[i] for i in pick]
            out.extend(lst)
        return out


# -- the table on disk ----------------------------------------------------------------------------


class _Table:
    """Rows of the label folder, kept in memory and rewritten atomically after each input."""

    def __init__(self, root: Path, au_ids: tuple[int, ...], crop_size: int) -> None:
        self.root, self.au_ids, self.crop_size = root, au_ids, crop_size
        self.rows: list[dict[str, Any]] = []

    def load(self) -> None:
        t = read_label_dir(self.root)
        if t.au_ids != self.au_ids:
            raise ParameterError(
                f"au_ids: the folder {self.root} holds AUs {list(t.au_ids)}, this run asks for "
                f"{list(self.au_ids)}; use another folder or the same AUs"
            )
        meta = _read_meta(self.root, self.au_ids)
        for i, name in enumerate(t.images):
            m = meta[name]
            self.rows.append({"image": str(name), "labels": t.labels[i], **m})

    def drop_source(self, source: str) -> int:
        gone = [r for r in self.rows if r["source"] == source]
        self.rows = [r for r in self.rows if r["source"] != source]
        for r in gone:
            (self.root / "images" / r["image"]).unlink(missing_ok=True)
        return len(gone)

    def save(self) -> None:
        ids = self.au_ids
        _write_csv_atomic(
            self.root / "labels.csv",
            ["image"] + [f"AU{a}" for a in ids],
            (
                [r["image"]] + [_UNKNOWN_CODE if v < 0 else int(v) for v in r["labels"]]
                for r in self.rows
            ),
        )
        from .align import template

        pts = [repr(float(v)) for v in template(self.crop_size).reshape(-1)]
        _write_csv_atomic(
            self.root / _SIDECAR,
            ["path", "frame", "x0", "y0", "x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4"],
            ([f"images/{r['image']}", ""] + pts for r in self.rows),
        )
        _write_csv_atomic(
            self.root / _META,
            _meta_header(ids),
            (
                [r["image"], r["source"], r["track"], r["frame"], _fmt(r["timestamp"])]
                + [_fmt(v) for v in r["box"]]
                + [_fmt(v) for v in r["pose"]]
                + [_fmt(v) for v in r["scores"]]
                for r in self.rows
            ),
        )


def _read_meta(root: Path, au_ids: Sequence[int]) -> dict[str, dict[str, Any]]:
    path = root / _META
    if not path.is_file():
        raise DatasetError("label folder without its metadata table", path=path)
    out: dict[str, dict[str, Any]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header = _meta_header(au_ids)
    if not rows or rows[0] != header:
        raise DatasetError(f"header: expected {','.join(header)}", path=path, row=1)
    for line, cells in enumerate(rows[1:], start=2):
        if len(cells) != len(header):
            raise DatasetError(
                f"expected {len(header)} cells, got {len(cells)}", path=path, row=line
            )
        try:
            nums = [float(c) for c in cells[4:]]
            out[cells[0]] = {
                "source": cells[1],
                "track": int(cells[2]),
                "frame": int(cells[3]),
                "timestamp": nums[0],
                "box": np.array(nums[1:5]),
                "pose": np.array(nums[5:8]),
                "scores": np.array(nums[8:], np.float32),
            }
        except ValueError as exc:
            raise DatasetError(f"not a number ({exc})", path=path, row=line) from None
    return out


def read_label_dir(root: str | Path) -> LabelTable:
    """Read a folder written by :func:`label_media` (checked with :func:`check_label_dir`).

    Raises:
        DatasetError: a missing or malformed table, or rows and crops that do not match (the
            file is named).
    """
    from .datasets import EmotioNetReader

    root = Path(root)
    check_label_dir(root)
    reader = EmotioNetReader(root, landmarks=False)
    ids = tuple(int(a) for a in reader.au_ids)
    names = np.array([Path(s.key).name for s in reader], dtype=object)
    labels = reader.occurrence_matrix().astype(np.int8)
    meta = _read_meta(root, ids)
    missing = [n for n in names if n not in meta]
    if missing or len(meta) != len(names):
        raise DatasetError(
            f"labels.csv and {_META} disagree ({len(names)} vs {len(meta)} rows; "
            f"first missing: {missing[:3]})",
            path=root,
        )
    m = [meta[n] for n in names]
    n_au = len(ids)
    return LabelTable(
        root=root,
        au_ids=ids,
        images=names.astype(str),
        labels=labels,
        scores=np.array([r["scores"] for r in m], np.float32).reshape(-1, n_au),
        source=np.array([r["source"] for r in m], dtype=str),
        track=np.array([r["track"] for r in m], np.int64),
        frame=np.array([r["frame"] for r in m], np.int64),
        timestamp=np.array([r["timestamp"] for r in m], np.float64),
    )


def check_label_dir(root: str | Path) -> int:
    """Check that every row of ``labels.csv`` has its crop and every crop its row.

    Returns:
        the number of rows.

    Raises:
        DatasetError: a row without a crop or a crop without a row (named), or no table.
    """
    root = Path(root)
    path = root / "labels.csv"
    if not path.is_file():
        raise DatasetError("no labels.csv: not a label folder", path=root)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))[1:]
    names = {r[0] for r in rows if r}
    files = {p.name for p in (root / "images").glob("*") if p.is_file()}
    no_crop = sorted(names - files)
    no_row = sorted(files - names)
    if no_crop:
        raise DatasetError(f"{len(no_crop)} rows without a crop, e.g. {no_crop[:3]}", path=path)
    if no_row:
        raise DatasetError(
            f"{len(no_row)} crops without a row, e.g. {no_row[:3]}", path=root / "images"
        )
    return len(names)


# -- the job --------------------------------------------------------------------------------------


def _expand_inputs(inputs: Sequence[str | Path]) -> list[str]:
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out = []
    for x in inputs:
        if not isinstance(x, (str, Path)) or not str(x):
            raise ParameterError(f"inputs: expected paths, got {x!r}")
        out.append(str(Path(x).resolve()))
    if not out:
        raise ParameterError("inputs: expected at least one video, image or folder")
    return out


def label_media(
    inputs: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    *,
    au_ids: Sequence[int] = DEFAULT_AUS,
    teacher: Any = None,
    front_end: Any = None,
    crop_size: int = 128,
    frame_step: int = 5,
    max_per_track: int = 40,
    dedup: float = 2.0,
    min_eye_px: float = 12.0,
    num_faces: int = 4,
    jpeg_quality: int = 95,
    resume: bool = True,
    decoder: str = "auto",
    progress: Callable[[str], None] | None = None,
) -> LabelReport:
    """Run the front end and the teacher over videos and photos and write a label folder.

    Args:
        inputs: video files, image files and folders of images.
        out_dir: the label folder (created; see the module docstring for its layout).
        au_ids: the AU columns of the table (default: the demo model's 15 AUs).
        teacher: a :class:`auperf.teacher.Teacher` for ``au_ids`` (default:
            ``Teacher.calibrated(au_ids)``, the shipped calibration).
        front_end: a :class:`auperf.frontend.FrontEnd` that returns blendshapes (default:
            MediaPipe with ``num_faces`` faces per frame, closed at the end).
        crop_size: side of the aligned crops in pixels (>= 32).
        frame_step: decode every frame of a video but keep every ``frame_step``-th for labelling.
        max_per_track: faces kept per track at most, spread evenly over the track.
        dedup: near-duplicate threshold in grey levels (mean absolute difference of 24 x 24
            thumbnails of consecutive kept crops of a track); 0 keeps every face.
        min_eye_px: faces whose eye centres are closer than this (frame pixels) are skipped as
            not alignable.
        num_faces: faces per frame for the default front end.
        jpeg_quality: JPEG quality of the crops.
        resume: continue a folder written before with the same settings (else the folder must
            hold no label table).
        decoder: video decoder of :class:`auperf.video.VideoFileSource`.
        progress: called with one line per input (e.g. ``click.echo``), or ``None``.

    Returns:
        :class:`LabelReport`, also written to ``auperf_label_report.json``.

    Raises:
        ParameterError: bad options, a teacher for other AUs, a front end without
            blendshapes, or an existing folder written with other settings (or ``resume=False``
            on a folder that already holds a table).
    """
    from .align import estimate_similarity, template
    from .ops import warp_faces
    from .teacher import Teacher
    from .video import Tracker, VideoFileSource, open_source

    paths = _expand_inputs(inputs)
    ids = tuple(int(a) for a in au_ids)
    if not ids or len(set(ids)) != len(ids):
        raise ParameterError(f"au_ids: expected distinct AU numbers, got {list(au_ids)}")
    _check_positive("crop_size", crop_size, integer=True)
    if crop_size < 32:
        raise ParameterError(f"crop_size: expected an integer >= 32, got {crop_size!r}")
    _check_positive("frame_step", frame_step, integer=True)
    _check_positive("max_per_track", max_per_track, integer=True)
    _check_positive("min_eye_px", min_eye_px)
    _check_positive("num_faces", num_faces, integer=True)
    if isinstance(dedup, bool) or not isinstance(dedup, (int, float)) or not dedup >= 0:
        raise ParameterError(f"dedup: expected a number >= 0, got {dedup!r}")
    if teacher is None:
        teacher = Teacher.calibrated(ids)
    if tuple(teacher.au_ids) != ids:
        raise ParameterError(
            f"teacher: labels AUs {list(teacher.au_ids)}, the table has {list(ids)}"
        )
    settings = {
        "format": _FORMAT,
        "au_ids": list(ids),
        "crop_size": int(crop_size),
        "frame_step": int(frame_step),
        "max_per_track": int(max_per_track),
        "dedup": float(dedup),
        "min_eye_px": float(min_eye_px),
        "teacher": teacher.describe(),
    }
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(exist_ok=True)
    table = _Table(root, ids, int(crop_size))
    state_path = root / _STATE
    state: dict[str, Any] = {"settings": settings, "inputs": {}}
    if state_path.is_file() or (root / "labels.csv").is_file():
        if not resume:
            raise ParameterError(
                f"out_dir: {root} already holds a label table; pass resume=True (--resume) to "
                "continue it, or choose an empty folder"
            )
        if state_path.is_file():
            state = json.loads(state_path.read_text(encoding="utf-8"))
            if state.get("settings") != settings:
                old = state.get("settings", {})
                diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise ParameterError(
                    f"out_dir: {root} was written with other settings ({', '.join(diff)}); "
                    "use the same settings to resume, or another folder"
                )
        if (root / "labels.csv").is_file() and (root / _META).is_file():
            # Crops of an input interrupted before its rows were written: drop them first.
            with open(root / "labels.csv", newline="", encoding="utf-8") as f:
                named = {r[0] for r in list(csv.reader(f))[1:] if r}
            for p in (root / "images").glob("*"):
                if p.is_file() and p.name not in named:
                    p.unlink()
            table.load()
    # Any file in images/ without a row (an interrupted first input) goes.
    named = {r["image"] for r in table.rows}
    for p in (root / "images").glob("*"):
        if p.is_file() and p.name not in named:
            p.unlink()
    done = {k for k, v in state["inputs"].items() if v.get("status") == "done"}
    for src in {r["source"] for r in table.rows}:
        owner = src.split("::")[0]
        if owner not in done:
            table.drop_source(src)

    report = LabelReport(inputs=len(paths))
    own_fe = front_end is None
    if own_fe:
        from . import frontend

        front_end = frontend.create("mediapipe", num_faces=int(num_faces), scores=False)
    tmpl = template(int(crop_size))
    positives = np.zeros(len(ids), np.int64)
    try:
        for path in paths:
            if path in done:
                report.inputs_resumed += 1
                continue
            counts = {"rows": 0, "faces": 0, "error": ""}
            try:
                src = open_source(path, decoder=decoder)
            except MediaError as exc:
                report.inputs_failed.append((path, str(exc)))
                state["inputs"][path] = {"status": "done", **counts, "error": str(exc)}
                _write_json_atomic(state_path, state)
                continue
            is_video = isinstance(src, VideoFileSource)
            folder = Path(path).is_dir()
            sampler = _TrackSampler(int(max_per_track), float(dedup))
            tracker = Tracker()
            faces_here = 0
            try:
                for fr in src.frames():
                    if is_video and not folder and fr.index % frame_step:
                        continue
                    if fr.image is None:
                        report.frames_unreadable += 1
                        continue
                    try:
                        faces = front_end.detect([fr.image])
                    except ShapeError as exc:  # e.g. a 1 x 1 image
                        _log.info("%s frame %d: %s", path, fr.index, exc)
                        report.frames_unreadable += 1
                        continue
                    report.frames_read += 1
                    if faces.blendshapes is None and len(faces):
                        raise ParameterError(
                            f"front_end: {front_end.name!r} gives no blendshapes; the teacher "
                            "needs MediaPipe's"
                        )
                    if len(faces) == 0:
                        report.frames_no_face += 1
                        if not folder:
                            tracker.update(fr.index, np.zeros((0, 4)), np.zeros((0, 5, 2)))
                        continue
                    report.faces_found += len(faces)
                    faces_here += len(faces)
                    source = f"{path}::{fr.name}" if folder else path
                    if folder:
                        tracks = np.arange(len(faces), dtype=np.int64)
                    else:
                        tracks = tracker.update(fr.index, faces.boxes, faces.landmarks5)
                    lab = teacher(faces.blendshapes, faces.blendshape_names)
                    for k in range(len(faces)):
                        pts = faces.landmarks5[k]
                        eye = (
                            float(np.linalg.norm(pts[1] - pts[0])) if np.isfinite(pts).all() else 0
                        )
                        if not eye >= min_eye_px:
                            report.faces_unaligned += 1
                            continue
                        try:
                            m = estimate_similarity(pts[None], tmpl)
                            crop = warp_faces(
                                fr.image[None],
                                m,
                                size=int(crop_size),
                                dtype="uint8",
                                layout="NHWC",
                            )[0]
                        except (SingularMatrixError, NonFiniteError):
                            report.faces_unaligned += 1
                            continue
                        pose = faces.pose[k] if faces.pose is not None else np.full(3, np.nan)
                        sampler.offer(
                            _Candidate(
                                crop=np.ascontiguousarray(crop),
                                labels=lab.labels[k].copy(),
                                scores=lab.scores[k].copy(),
                                track=int(tracks[k]),
                                frame=int(fr.index),
                                timestamp=float(fr.timestamp),
                                box=np.asarray(faces.boxes[k], np.float64),
                                pose=np.asarray(pose, np.float64),
                                source=source,
                            )
                        )
            except MediaError as exc:
                counts["error"] = str(exc)
                report.inputs_failed.append((path, str(exc)))
            finally:
                src.close()
            if folder:
                unread = getattr(src, "skipped", [])
                if unread:
                    _log.info("%s: %d files without an image suffix skipped", path, len(unread))
            if faces_here == 0:
                report.inputs_no_face.append(path)
            kept = sampler.result()
            report.faces_duplicate += sampler.duplicates
            report.faces_balanced_out += sampler.balanced_out
            # Crops first, then the tables (atomic), then the state: see the module docstring.
            from .datasets._common import write_image

            tag = _source_tag(path)
            new_rows = []
            for c in kept:
                sub = ""
                if folder:
                    sub = "_" + _source_tag(c.source.split("::", 1)[1])
                name = f"{tag}{sub}_t{c.track}_f{c.frame}.jpg"
                write_image(root / "images" / name, c.crop, jpeg_quality=int(jpeg_quality))
                new_rows.append(
                    {
                        "image": name,
                        "labels": c.labels,
                        "source": c.source,
                        "track": c.track,
                        "frame": c.frame,
                        "timestamp": c.timestamp,
                        "box": c.box,
                        "pose": c.pose,
                        "scores": c.scores,
                    }
                )
                positives += c.labels == 1
            table.rows.extend(new_rows)
            table.save()
            counts.update(rows=len(new_rows), faces=faces_here)
            state["inputs"][path] = {"status": "done", **counts}
            _write_json_atomic(state_path, state)
            report.inputs_done += 1
            report.rows_written += len(new_rows)
            if progress is not None:
                progress(
                    f"{path}: {faces_here} faces, {len(new_rows)} rows"
                    + (f" (error: {counts['error']})" if counts["error"] else "")
                )
    finally:
        if own_fe:
            front_end.close()
    if not (root / "labels.csv").is_file():
        table.save()
    report.rows_total = len(table.rows)
    report.positives = {f"AU{a}": int(n) for a, n in zip(ids, positives, strict=True)}
    report.unknown_aus = list(teacher.unknown_aus)
    data = asdict(report)
    data["settings"] = settings
    _write_json_atomic(root / _REPORT, data)
    return report
