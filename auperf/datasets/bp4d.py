"""BP4D-Spontaneous layout (FERA 2015 label files).

Layout::

    <root>/
      Sequences/<subject>/<task>/<frame>.jpg         e.g. Sequences/F001/T1/0012.jpg
      AUCoding/AU_OCC/<subject>_<task>.csv           occurrence, header row of AU numbers
      AUCoding/AU_INT/AU06/<subject>_<task>_AU06.csv intensity rows "frame,intensity"
      auperf_landmarks.csv                           optional auperf sidecar

Occurrence CSV: row 1 is the header, its first cell names the frame column (BP4D writes ``0``),
the other cells are AU numbers. Each further row is ``frame, v_1, ..., v_K`` with ``v`` in
``0``, ``1``, or ``9`` (unknown, read as ``-1``). Intensity CSVs have no header; the value is on
the FACS 0-5 scale, ``9`` unknown (read as NaN).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, ParameterError
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
    parse_au_header,
    parse_float,
    parse_int,
    read_csv_rows,
    resolve_aus,
    write_csv,
    write_image,
)

__all__ = ["BP4D_AUS", "BP4D_INTENSITY_AUS", "BP4DReader", "BP4DWriter"]

logger = logging.getLogger("auperf")

#: The 12 AUs of the usual BP4D occurrence benchmark.
BP4D_AUS: tuple[int, ...] = (1, 2, 4, 6, 7, 10, 12, 14, 15, 17, 23, 24)
#: The AUs with intensity codes (FERA 2015).
BP4D_INTENSITY_AUS: tuple[int, ...] = (6, 10, 12, 14, 17)

_UNKNOWN = 9


def _occ_path(root: Path, subject: str, task: str) -> Path:
    return root / "AUCoding" / "AU_OCC" / f"{subject}_{task}.csv"


def _int_path(root: Path, au: int, subject: str, task: str) -> Path:
    return root / "AUCoding" / "AU_INT" / f"AU{au:02d}" / f"{subject}_{task}_AU{au:02d}.csv"


class BP4DWriter(DatasetWriter):
    """Write frames and AU labels in the BP4D layout.

    Args:
        root: Dataset root folder.
        au_ids: AU columns of the occurrence CSVs.
        intensity_aus: AUs that get intensity files (a subset of ``au_ids``).
        frame_digits: Zero padding of the frame file names.
        exist_ok: Allow a non-empty root.
        jpeg_quality: JPEG quality, 1-100.

    Example:
        >>> with BP4DWriter(tmp) as w:  # doctest: +SKIP
        ...     w.add(img, subject="F001", task="T1", frame=1, occurrence=occ)
    """

    layout = "bp4d"

    def __init__(
        self,
        root: str | Path,
        *,
        au_ids: Sequence[int] = BP4D_AUS,
        intensity_aus: Sequence[int] = BP4D_INTENSITY_AUS,
        frame_digits: int = 4,
        exist_ok: bool = False,
        jpeg_quality: int = 95,
    ) -> None:
        self.au_ids = resolve_aus(au_ids, BP4D_AUS, "au_ids")
        self.intensity_aus = tuple(int(a) for a in intensity_aus)
        missing = [a for a in self.intensity_aus if a not in self.au_ids]
        if missing:
            raise ParameterError(
                f"intensity_aus: AUs {missing} are not in au_ids {list(self.au_ids)}"
            )
        self.frame_digits = check_frame(frame_digits, "frame_digits", 1)
        super().__init__(root, exist_ok=exist_ok, jpeg_quality=jpeg_quality)
        # (subject, task) -> frame -> (occurrence, intensity or None)
        self._rows: dict[tuple[str, str], dict[int, tuple[np.ndarray, np.ndarray | None]]] = {}

    def add(
        self,
        image: np.ndarray,
        *,
        subject: str,
        task: str,
        frame: int,
        occurrence: Any,
        intensity: Any = None,
        landmarks: Any = None,
    ) -> Path:
        """Add one frame.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            subject: Subject id, e.g. ``"F001"`` (no underscore: it separates subject and task
                in label file names).
            task: Task id, e.g. ``"T1"``.
            frame: Frame number, >= 0.
            occurrence: ``(L,)`` in ``au_ids`` order or a mapping AU -> value; 0, 1, -1 unknown.
            intensity: Optional ``(L,)`` or mapping, 0-5 or NaN unknown; only the
                ``intensity_aus`` entries are written.
            landmarks: Optional ``(5, 2)`` landmarks for the sidecar.

        Returns:
            The written image path.
        """
        check_image(image)
        subject = check_name(subject, "subject")
        if "_" in subject:
            raise ParameterError(f"subject: must not contain '_', got {subject!r}")
        task = check_name(task, "task")
        frame = check_frame(frame)
        occ = au_vector(occurrence, self.au_ids, "occurrence", kind="occurrence")
        if occ is None:
            raise ParameterError("occurrence: required for BP4D")
        inten = au_vector(intensity, self.au_ids, "intensity", kind="intensity")
        lm = check_landmarks(landmarks)
        rel = f"Sequences/{subject}/{task}/{frame:0{self.frame_digits}d}.jpg"
        self._claim(rel)
        write_image(self.root / rel, image, jpeg_quality=self.jpeg_quality)
        self._rows.setdefault((subject, task), {})[frame] = (occ, inten)
        self._add_landmarks(rel, None, lm)
        self.count += 1
        return self.root / rel

    def _write_labels(self) -> None:
        any_intensity = any(v[1] is not None for seq in self._rows.values() for v in seq.values())
        for (subject, task), frames in self._rows.items():
            order = sorted(frames)
            rows = []
            for f in order:
                occ = frames[f][0]
                rows.append([f] + [_UNKNOWN if v < 0 else int(v) for v in occ])
            write_csv(
                _occ_path(self.root, subject, task), ["0"] + [str(a) for a in self.au_ids], rows
            )
            if not any_intensity:
                continue
            for au in self.intensity_aus:
                j = self.au_ids.index(au)
                irows = []
                for f in order:
                    inten = frames[f][1]
                    v = np.nan if inten is None else float(inten[j])
                    irows.append([f, _UNKNOWN if np.isnan(v) else format_intensity(v)])
                write_csv(_int_path(self.root, au, subject, task), None, irows)


class BP4DReader(DatasetReader):
    """Read a dataset in the BP4D layout.

    Args:
        root: Dataset root folder.
        aus: AU numbers to return (default :data:`BP4D_AUS`); each must be a column of every
            occurrence CSV.
        intensity: Read the ``AU_INT`` files where present (AUs without them get NaN).
        check_files: Check that every labelled frame has an image file.
        missing_images: ``"raise"`` (default) or ``"skip"`` labelled frames without an image
            (skips are counted in a warning).
        landmarks: Use ``auperf_landmarks.csv`` when present.

    Raises:
        DatasetError: a missing folder or file, a wrong header, a code outside 0/1/9, an
            intensity outside 0-5 (9 = unknown), a duplicate frame; the message names the file
            and the row.
    """

    layout = "bp4d"
    default_aus = BP4D_AUS

    def __init__(
        self,
        root: str | Path,
        *,
        aus: Sequence[int] | None = None,
        intensity: bool = True,
        check_files: bool = True,
        missing_images: str = "raise",
        landmarks: bool = True,
    ) -> None:
        super().__init__(root, landmarks=landmarks)
        if missing_images not in ("raise", "skip"):
            raise ParameterError(
                f"missing_images: expected 'raise' or 'skip', got {missing_images!r}"
            )
        self.au_ids = resolve_aus(aus, BP4D_AUS)
        occ_dir = self.root / "AUCoding" / "AU_OCC"
        if not occ_dir.is_dir():
            raise DatasetError("occurrence folder not found", path=occ_dir)
        files = sorted(occ_dir.glob("*.csv"))
        if not files:
            raise DatasetError("no occurrence CSV files", path=occ_dir)
        int_dir = self.root / "AUCoding" / "AU_INT"
        self.intensity_aus = tuple(
            a for a in self.au_ids if intensity and (int_dir / f"AU{a:02d}").is_dir()
        )
        samples: list[Sample] = []
        skipped = 0
        self._missing_intensity: dict[int, int] = {}
        for path in files:
            if "_" not in path.stem:
                raise DatasetError("file name must be <subject>_<task>.csv", path=path)
            subject, task = path.stem.split("_", 1)
            labels = self._read_occurrence(path)
            inten = {a: self._read_intensity(a, subject, task) for a in self.intensity_aus}
            seq_dir = self.root / "Sequences" / subject / task
            images = numbered_files(seq_dir) if check_files else {}
            if check_files and not images and missing_images == "raise":
                raise DatasetError(f"no frame images for {path.name}", path=seq_dir)
            for frame, (row, occ) in labels.items():
                img = images.get(frame) if check_files else seq_dir / f"{frame:04d}.jpg"
                if img is None:
                    if missing_images == "raise":
                        raise DatasetError(
                            f"frame {frame}: no image {frame}.jpg (any zero padding) in {seq_dir}",
                            path=path,
                            row=row,
                        )
                    skipped += 1
                    continue
                ivec = np.full(len(self.au_ids), np.nan, dtype=np.float32)
                for a, table in inten.items():
                    ivec[self.au_ids.index(a)] = table.get(frame, np.nan)
                samples.append(
                    Sample(
                        layout=self.layout,
                        key=img.relative_to(self.root).as_posix(),
                        image_path=img,
                        frame=frame,
                        subject=subject,
                        sequence=task,
                        au_ids=self.au_ids,
                        occurrence=occ,
                        intensity=ivec,
                    )
                )
        for au, count in self._missing_intensity.items():
            logger.warning(
                "bp4d: %d sequences have no AU%02d intensity file; their AU%d intensity is unknown",
                count,
                au,
                au,
            )
        if skipped:
            logger.warning(
                "bp4d: skipped %d labelled frames without an image under %s", skipped, self.root
            )
        self._finish(samples)

    def _read_occurrence(self, path: Path) -> dict[int, tuple[int, np.ndarray]]:
        rows = read_csv_rows(path)
        first = next(rows, None)
        if first is None:
            raise DatasetError("empty file: expected a header row of AU numbers", path=path, row=1)
        hline, header = first
        if len(header) < 2:
            raise DatasetError(
                f"header: expected a frame column and AU columns, got {header}",
                path=path,
                row=hline,
            )
        cols = [parse_au_header(h, path, hline) for h in header[1:]]
        if len(set(cols)) != len(cols):
            raise DatasetError(f"header: duplicate AU columns in {header}", path=path, row=hline)
        missing = [a for a in self.au_ids if a not in cols]
        if missing:
            raise DatasetError(
                f"header: requested AUs {missing} have no column (columns: {cols})",
                path=path,
                row=hline,
            )
        idx = [cols.index(a) + 1 for a in self.au_ids]
        out: dict[int, tuple[int, np.ndarray]] = {}
        for line, cells in rows:
            if len(cells) != len(header):
                raise DatasetError(
                    f"expected {len(header)} cells, got {len(cells)}", path=path, row=line
                )
            frame = parse_int(cells[0], path, line, "frame")
            if frame < 0:
                raise DatasetError(f"frame: expected >= 0, got {frame}", path=path, row=line)
            if frame in out:
                raise DatasetError(
                    f"frame {frame} appears twice (first at row {out[frame][0]})",
                    path=path,
                    row=line,
                )
            vec = np.empty(len(idx), dtype=np.int8)
            for j, c in enumerate(idx):
                v = parse_int(cells[c], path, line, f"AU{cols[c - 1]}")
                if v not in (0, 1, _UNKNOWN):
                    raise DatasetError(
                        f"AU{cols[c - 1]}: expected 0, 1 or 9 (unknown), got {cells[c].strip()!r}",
                        path=path,
                        row=line,
                    )
                vec[j] = -1 if v == _UNKNOWN else v
            out[frame] = (line, vec)
        return out

    def _read_intensity(self, au: int, subject: str, task: str) -> dict[int, float]:
        path = _int_path(self.root, au, subject, task)
        if not path.is_file():
            self._missing_intensity[au] = self._missing_intensity.get(au, 0) + 1
            return {}
        out: dict[int, float] = {}
        for line, cells in read_csv_rows(path):
            if len(cells) != 2:
                raise DatasetError(
                    f"expected 2 cells 'frame,intensity', got {len(cells)}", path=path, row=line
                )
            frame = parse_int(cells[0], path, line, "frame")
            if frame in out:
                raise DatasetError(f"frame {frame} appears twice", path=path, row=line)
            v = parse_float(cells[1], path, line, f"AU{au} intensity")
            if v == _UNKNOWN:
                v = np.nan
            elif not 0.0 <= v <= 5.0:
                raise DatasetError(
                    f"AU{au} intensity: expected 0-5 or 9 (unknown), got {cells[1].strip()!r}",
                    path=path,
                    row=line,
                )
            out[frame] = v
        return out

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        return (Path(root) / "AUCoding" / "AU_OCC").is_dir()
