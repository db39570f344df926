"""The video pipeline: frames -> front end -> Detector (+ Estimator, ExpressionClassifier)
-> tracker -> smoothing -> rows.

:class:`VideoPipeline` reads a :class:`~auperf.video.sources.Source` in chunks of frames
decoded ahead in a thread (:func:`~auperf.video.prefetch.prefetch_chunks`), finds the faces
of a whole chunk with one front-end call, runs the AU detector on all faces of the chunk at
once (frames batched across time), gives each face a track id, optionally smooths the AU
probabilities per track, and turns the chunk into a table that a writer appends and flushes.

Output columns (in this order; ``<id>`` is the FACS number on two digits):

============================== =================================================================
``file``                       the input (video path, or the image's name for folders)
``frame``                      frame index in the input, from 0
``face_id``                    track id (>= 1); -1 on the row of a frame without faces
``timestamp``                  seconds (see :mod:`auperf.video.sources`); empty where unknown
``confidence``                 front-end detection score in [0, 1]
``success``                    1 when the face was detected and its AUs computed, else 0
``face_x0 .. face_y1``         face box (front end), frame pixels
``pose_Rx, pose_Ry, pose_Rz``  head pose in **radians**: pitch, yaw, roll (the front end's
                               angles in :mod:`auperf.frontend` signs, converted from degrees)
``x_0 .. x_4, y_0 .. y_4``     the 5 alignment points (:mod:`auperf.align` order), pixels
``AU<id>_r``                   intensity 0-5 (only with an estimator)
``AU<id>_c``                   occurrence 0/1: (smoothed) probability >= the model's threshold
``AU<id>_p``                   AU probability in [0, 1] (smoothed when smoothing is on)
``expr_<name>``, ``expression`` expression probabilities and label (only with a classifier)
============================== =================================================================

Every frame yields at least one row: a frame where no face was found (or that could not be
decoded, or is smaller than ``min_frame_size``) gets one row with ``face_id = -1`` and
``success = 0``, so a resumed run knows the frame was done. Names follow OpenFace's CSV
(``frame, face_id, timestamp, confidence, success, pose_R*, x_*, y_*, AU*_r, AU*_c``); the
box, ``AU*_p`` and the expression columns are auperf's own, and the landmark columns hold 5
points instead of OpenFace's 68.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError, ParameterError
from .prefetch import prefetch_chunks
from .sources import Frame, Source
from .tracking import Tracker, TrackSmoother

__all__ = ["VideoPipeline", "RunSummary", "result_columns"]

_log = logging.getLogger("auperf")


def result_columns(
    au_ids: list[int],
    intensity_au_ids: list[int] | None = None,
    expression_names: list[str] | None = None,
) -> list[str]:
    """The output columns (see the module docstring) for these AUs and options."""
    cols = ["file", "frame", "face_id", "timestamp", "confidence", "success"]
    cols += ["face_x0", "face_y0", "face_x1", "face_y1", "pose_Rx", "pose_Ry", "pose_Rz"]
    cols += [f"x_{k}" for k in range(5)] + [f"y_{k}" for k in range(5)]
    cols += [f"AU{a:02d}_r" for a in intensity_au_ids or []]
    cols += [f"AU{a:02d}_c" for a in au_ids]
    cols += [f"AU{a:02d}_p" for a in au_ids]
    if expression_names:
        cols += [f"expr_{n}" for n in expression_names] + ["expression"]
    return cols


@dataclass
class RunSummary:
    """What a run did.

    Attributes:
        source: the input's name.
        start_frame: first frame processed (> 0 after a resume).
        frames: frames processed (written) in this run.
        faces: face rows written with ``success = 1``.
        tracks: distinct track ids written.
        seconds: wall time of the run.
        bad_frames: ``(frame, name, reason)`` for frames that could not be read or used.
        error: why the input stopped early (a truncated video), or ``""``.
        skipped_files: files of a folder left out because they are not images.
    """

    source: str
    start_frame: int = 0
    frames: int = 0
    faces: int = 0
    tracks: int = 0
    seconds: float = 0.0
    bad_frames: list[tuple[int, str, str]] = field(default_factory=list)
    error: str = ""
    skipped_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No bad frame, no early stop, no skipped file."""
        return not (self.bad_frames or self.error or self.skipped_files)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else math.nan

    @property
    def faces_per_second(self) -> float:
        return self.faces / self.seconds if self.seconds > 0 else math.nan


class VideoPipeline:
    """Front end + AU detector (+ intensity estimator, expression classifier) over a video.

    Args:
        frontend: an :class:`auperf.frontend.FrontEnd` (finds boxes, 5 landmarks and pose).
        detector: an :class:`auperf.Detector`.
        estimator: optional AU intensity estimator (:class:`auperf.Estimator`): ``fit(frames,
            landmarks=..., frame_index=...)``, or without ``frame_index`` one frame per face,
            returning ``.au_intensity (N, L)`` (0-5), optionally ``.au_ids`` and ``.ok``. Its
            AUs: its ``au_ids`` attribute, else ``auperf.synth.AU_IDS``.
        classifier: optional expression classifier with ``classify(frames, landmarks,
            frame_index=...)`` returning ``.probabilities (N, C)``, ``.labels`` and ``.names``.
        chunk_size: frames per chunk (front end call, detector batch, write).
        queue_size: chunks decoded ahead at most.
        smoothing: ``alpha`` of the per-track exponential smoothing of AU probabilities
            (``None`` or 1: off); see :class:`~auperf.video.tracking.TrackSmoother`.
        tracker_options: options of :class:`~auperf.video.tracking.Tracker`.
        min_frame_size: frames with a side shorter than this (pixels) are not searched for
            faces and are reported as bad frames.
        estimator_options: keyword arguments for every ``estimator.fit`` call (e.g.
            ``{"iterations": 100}`` for :class:`auperf.Estimator`).
    """

    def __init__(
        self,
        frontend: Any,
        detector: Any,
        *,
        estimator: Any = None,
        classifier: Any = None,
        chunk_size: int = 16,
        queue_size: int = 4,
        smoothing: float | None = None,
        tracker_options: dict[str, Any] | None = None,
        min_frame_size: int = 16,
        estimator_options: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise ParameterError(f"chunk_size: expected an integer >= 1, got {chunk_size!r}")
        if smoothing is not None and not 0.0 < smoothing <= 1.0:
            raise ParameterError(
                f"smoothing: expected a value in (0, 1] or None, got {smoothing!r}"
            )
        self.frontend = frontend
        self.detector = detector
        self.estimator = estimator
        self.classifier = classifier
        self.chunk_size = int(chunk_size)
        self.queue_size = int(queue_size)
        self.smoothing = smoothing
        self.tracker_options = dict(tracker_options or {})
        self.min_frame_size = int(min_frame_size)
        self.estimator_options = dict(estimator_options or {})
        self.au_ids = [int(a) for a in detector.au_ids]
        self._thresholds = np.asarray(detector.thresholds, np.float32)
        self.intensity_au_ids = _intensity_ids(estimator) if estimator is not None else None
        self._estimator_takes_index: bool | None = None
        self.expression_names = _class_names(classifier) if classifier is not None else None
        self.columns = result_columns(self.au_ids, self.intensity_au_ids, self.expression_names)

    # -- running -------------------------------------------------------------------------------
    def run(
        self,
        source: Source,
        writer: Any = None,
        *,
        progress: bool = True,
        max_frames: int | None = None,
        on_chunk: Callable[[dict[str, np.ndarray]], None] | None = None,
    ) -> RunSummary:
        """Process ``source`` and write every chunk's table with ``writer`` (if given).

        When ``writer`` has ``resume_point()``, processing starts at its first frame and new
        track ids start after its largest id; an output that holds another input's rows
        (by file name; not checked for image folders) raises ParameterError. A source that
        fails part way (a truncated video) ends the run with ``summary.error`` set, after
        every good frame was written.
        ``KeyboardInterrupt`` propagates after the chunks finished so far were written (the
        writer is left open; close it).

        Args:
            source: the frames.
            writer: a :class:`~auperf.video.writers.CsvWriter` / ``ParquetWriter``, or None.
            progress: show a tqdm bar (frames/s and faces/s) on stderr.
            max_frames: process at most this many frames of the source (counted from frame 0,
                so a resumed run stops at the same frame).
            on_chunk: called with each chunk's table after it is written.

        Returns:
            A :class:`RunSummary`.
        """
        start, max_id = writer.resume_point() if writer is not None else (0, -1)
        kept = getattr(writer, "resumed_file", None)
        if kept is not None and not hasattr(source, "files"):
            if Path(kept).name != Path(source.name).name:
                raise ParameterError(
                    f"output: {writer.path} holds results of {kept!r}, not of "
                    f"{source.name!r}; write elsewhere or start it afresh (--overwrite)"
                )
        summary = RunSummary(source=source.name, start_frame=start)
        summary.skipped_files = [p.name for p in getattr(source, "skipped", [])]
        tracker = Tracker(**{"first_id": max(max_id + 1, 1), **self.tracker_options})
        smoother = (
            TrackSmoother(self.smoothing)
            if self.smoothing is not None and self.smoothing < 1.0
            else None
        )
        ids_seen: set[int] = set()
        bar = _progress_bar(source, start, progress, max_frames)
        t0 = time.perf_counter()
        try:
            chunks = prefetch_chunks(
                source, self.chunk_size, self.queue_size, start=start, stop=max_frames
            )
            for chunk in chunks:
                table = self.process_chunk(chunk, tracker, smoother, summary)
                if writer is not None:
                    writer.write(table)
                if on_chunk is not None:
                    on_chunk(table)
                ok = table["success"] == 1
                summary.frames += len(chunk)
                summary.faces += int(ok.sum())
                ids_seen.update(table["face_id"][ok].tolist())
                if bar is not None:
                    el = max(time.perf_counter() - t0, 1e-9)
                    bar.update(len(chunk))
                    bar.set_postfix_str(f"{summary.faces / el:.1f} faces/s", refresh=False)
        except MediaError as exc:
            summary.error = str(exc)
        finally:
            summary.seconds = time.perf_counter() - t0
            summary.tracks = len(ids_seen)
            if bar is not None:
                bar.close()
        return summary

    def iter_tables(self, source: Source) -> Iterator[dict[str, np.ndarray]]:
        """Yield one table per chunk (no writer, no resume); a failing source raises."""
        tracker = Tracker(**self.tracker_options)
        smoother = TrackSmoother(self.smoothing) if self.smoothing not in (None, 1.0) else None
        summary = RunSummary(source=source.name)
        for chunk in prefetch_chunks(source, self.chunk_size, self.queue_size):
            yield self.process_chunk(chunk, tracker, smoother, summary)

    # -- one chunk -----------------------------------------------------------------------------
    def process_chunk(
        self,
        chunk: list[Frame],
        tracker: Tracker,
        smoother: TrackSmoother | None,
        summary: RunSummary,
    ) -> dict[str, np.ndarray]:
        """The table of one chunk of consecutive frames (every frame gets >= 1 row)."""
        usable: list[int] = []
        for k, fr in enumerate(chunk):
            if fr.image is None:
                summary.bad_frames.append((fr.index, fr.name, fr.error or "not readable"))
            elif min(fr.image.shape[:2]) < self.min_frame_size:
                h, w = fr.image.shape[:2]
                summary.bad_frames.append(
                    (
                        fr.index,
                        fr.name,
                        f"{w}x{h} pixels is too small to hold a face "
                        f"(needs at least {self.min_frame_size} on each side)",
                    )
                )
            else:
                usable.append(k)
        images = [chunk[k].image for k in usable]
        whole = getattr(chunk, "batch", None)
        if whole is not None and len(usable) != len(chunk):
            whole = None
        faces = None
        if images:
            faces = self.frontend.detect(whole if whole is not None else images)
        n = len(faces) if faces is not None else 0
        L = len(self.au_ids)
        probs = np.full((n, L), np.nan, np.float32)
        valid = np.zeros(n, bool)
        inten = (
            np.full((n, len(self.intensity_au_ids)), np.nan, np.float32)
            if self.intensity_au_ids is not None
            else None
        )
        expr = (
            np.full((n, len(self.expression_names)), np.nan, np.float32)
            if self.expression_names is not None
            else None
        )
        labels = np.full(n, "", dtype=object)
        if n:
            fidx = np.asarray(faces.frame_index, np.int64)
            lm5 = np.asarray(faces.landmarks5, np.float64)
            # Frames of one shape go to the models together (a video: the whole chunk).
            shapes: dict[tuple[int, ...], list[int]] = {}
            for j, img in enumerate(images):
                shapes.setdefault(img.shape, []).append(j)
            for members in shapes.values():
                sel = np.flatnonzero(np.isin(fidx, members))
                if sel.size == 0:
                    continue
                remap = np.full(len(images), -1, np.int64)
                remap[members] = np.arange(len(members))
                if whole is not None:  # one shape: stacked already, in the decode thread
                    batch = whole
                else:
                    batch = np.stack([images[j] for j in members])
                local = remap[fidx[sel]]
                res = self.detector.detect(batch, lm5[sel], local, invalid="mark")
                probs[sel] = res.probabilities
                valid[sel] = res.valid
                ok = sel[res.valid]
                if ok.size and self.estimator is not None:
                    inten[ok] = self._intensities(batch, lm5[ok], remap[fidx[ok]])
                if ok.size and self.classifier is not None:
                    cl = self.classifier.classify(batch, lm5[ok], frame_index=remap[fidx[ok]])
                    expr[ok] = _reorder(cl, "probabilities", "names", self.expression_names)
                    labels[ok] = [str(x) for x in _label_names(cl, self.expression_names)]
        rows: list[tuple[int, int]] = []  # (chunk position, face row or -1)
        face_ids = np.full(n, -1, np.int64)
        per_frame: dict[int, list[int]] = {}
        if n:
            for i, j in enumerate(np.asarray(faces.frame_index).tolist()):
                per_frame.setdefault(usable[j], []).append(i)
        for k, fr in enumerate(chunk):
            members = per_frame.get(k, [])
            if members:
                m = np.asarray(members)
                face_ids[m] = tracker.update(
                    fr.index, np.asarray(faces.boxes)[m], np.asarray(faces.landmarks5)[m]
                )
                if smoother is not None:
                    probs[m] = smoother.update(fr.index, face_ids[m], probs[m])
                order = m[np.argsort(face_ids[m], kind="stable")]
                rows += [(k, int(i)) for i in order]
            else:
                rows.append((k, -1))
        return self._table(chunk, rows, faces, face_ids, probs, valid, inten, expr, labels)

    def _intensities(self, batch: np.ndarray, lm5: np.ndarray, local: np.ndarray) -> np.ndarray:
        fit = self.estimator.fit
        if self._estimator_takes_index is None:
            import inspect

            try:
                params = inspect.signature(fit).parameters
                self._estimator_takes_index = "frame_index" in params
            except (TypeError, ValueError):
                self._estimator_takes_index = True
        opts = self.estimator_options
        if self._estimator_takes_index:
            res = fit(batch, landmarks=lm5, frame_index=local, **opts)
        else:  # one frame per face
            res = fit(batch[local], landmarks=lm5, **opts)
        out = _reorder(res, "au_intensity", "au_ids", self.intensity_au_ids)
        ok = getattr(res, "ok", None)
        if ok is not None:
            out[~np.asarray(ok, bool)] = np.nan
        return out

    def _table(self, chunk, rows, faces, face_ids, probs, valid, inten, expr, labels):
        R = len(rows)
        pos = np.array([r[0] for r in rows], np.int64)
        fi = np.array([r[1] for r in rows], np.int64)
        has = fi >= 0
        src = np.where(has, fi, 0)

        def take(a: np.ndarray | None, shape: tuple[int, ...], fill: float = np.nan):
            out = np.full((R, *shape), fill, np.float64)
            if a is not None and has.any():
                out[has] = np.asarray(a, np.float64)[src[has]]
            return out

        t: dict[str, np.ndarray] = {}
        t["file"] = np.array([chunk[p].name for p in pos], dtype=object).astype(str)
        t["frame"] = np.array([chunk[p].index for p in pos], np.int64)
        t["face_id"] = np.where(has, face_ids[src] if len(face_ids) else -1, -1).astype(np.int64)
        t["timestamp"] = np.array([chunk[p].timestamp for p in pos], np.float64)
        t["confidence"] = take(None if faces is None else faces.scores, ())
        t["success"] = (has & (valid[src] if len(valid) else False)).astype(np.int64)
        box = take(None if faces is None else faces.boxes, (4,))
        for c, name in enumerate(("face_x0", "face_y0", "face_x1", "face_y1")):
            t[name] = box[:, c]
        pose_src = None if faces is None else faces.pose
        pose = np.deg2rad(take(pose_src, (3,)))  # (yaw, pitch, roll) degrees -> radians
        t["pose_Rx"], t["pose_Ry"], t["pose_Rz"] = pose[:, 1], pose[:, 0], pose[:, 2]
        lm = take(None if faces is None else faces.landmarks5, (5, 2))
        for k in range(5):
            t[f"x_{k}"] = lm[:, k, 0]
        for k in range(5):
            t[f"y_{k}"] = lm[:, k, 1]
        p = take(probs, (len(self.au_ids),))
        if self.intensity_au_ids is not None:
            r = take(inten, (len(self.intensity_au_ids),))
            for j, a in enumerate(self.intensity_au_ids):
                t[f"AU{a:02d}_r"] = r[:, j]
        ok = t["success"] == 1
        for j, a in enumerate(self.au_ids):
            t[f"AU{a:02d}_c"] = np.where(ok, p[:, j] >= self._thresholds[j], 0).astype(np.int64)
        for j, a in enumerate(self.au_ids):
            t[f"AU{a:02d}_p"] = p[:, j]
        if self.expression_names is not None:
            e = take(expr, (len(self.expression_names),))
            for j, name in enumerate(self.expression_names):
                t[f"expr_{name}"] = e[:, j]
            lab = np.full(R, "", dtype=object)
            if has.any():
                lab[has] = np.asarray(labels, dtype=object)[src[has]]
            t["expression"] = lab.astype(str)
        return t


def _progress_bar(source: Source, start: int, progress: bool, stop: int | None) -> Any:
    if not progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        _log.info("tqdm is not installed: no progress bar")
        return None
    end = source.num_frames
    if stop is not None:
        end = min(end, stop) if end else stop
    total = max(end - start, 0) if end else None
    return tqdm(
        total=total,
        unit="frame",
        desc=Path(source.name).name or source.name,
        dynamic_ncols=True,
        leave=True,
    )


def _intensity_ids(estimator: Any) -> list[int]:
    ids = getattr(estimator, "au_ids", None)
    if ids is None:
        ids = getattr(getattr(estimator, "manifest", None), "au_ids", None)
    if ids is None:
        # auperf.Estimator reports the renderer's AUs (auperf.synth.AU_IDS), in that order.
        from ..synth.params import AU_IDS

        ids = AU_IDS
    return [int(a) for a in ids]


def _class_names(classifier: Any) -> list[str]:
    for attr in ("names", "class_names", "categories"):
        names = getattr(classifier, attr, None)
        if names is not None:
            return [str(n) for n in names]
    raise ParameterError("classifier: cannot tell its classes (expected a 'names' attribute)")


def _reorder(res: Any, values: str, keys: str, wanted: list[Any]) -> np.ndarray:
    """Columns of ``res.<values>`` in the order of ``wanted`` (by ``res.<keys>``)."""
    v = np.asarray(getattr(res, values), np.float32)
    have = list(getattr(res, keys, wanted))
    idx = []
    for w in wanted:
        match = [i for i, h in enumerate(have) if str(h) == str(w)]
        if not match:
            raise ParameterError(f"{keys}: the result lacks {w!r} (it has {have})")
        idx.append(match[0])
    return v[:, idx]


def _label_names(res: Any, names: list[str]) -> list[str]:
    labels = np.asarray(res.labels)
    if labels.dtype.kind in "iu":
        own = [str(n) for n in getattr(res, "names", names)]
        return [own[int(i)] if 0 <= int(i) < len(own) else "" for i in labels]
    return [str(x) for x in labels]
