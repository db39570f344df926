"""The sample record, the reader and writer base classes, and helpers shared by the layouts.

Convention:
    Images handed to writers and returned by readers are ``(H, W, 3)`` uint8 RGB. Landmarks are
    ``(5, 2)`` float64 ``(x, y)`` pixel coordinates of the image the sample points to, in the
    order of :mod:`auperf.align`: the eye on the image's left, the eye on the image's right, the
    nose tip, the mouth corner on the image's left, the mouth corner on the image's right.
    AU occurrence is int8 with ``1`` active, ``0`` inactive and ``-1`` unknown; AU intensity is
    float32 on the FACS 0-5 scale with ``NaN`` unknown. Expressions use the index of
    :data:`EXPRESSIONS`, ``-1`` unknown. Frame numbers are the dataset's own (DISFA: 1-based).
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from ..errors import (
    DatasetError,
    DTypeError,
    NonFiniteError,
    ParameterError,
    ShapeError,
    ValueRangeError,
)
from ..labels import EXPRESSIONS

__all__ = [
    "EXPRESSIONS",
    "LANDMARKS_SIDECAR",
    "Sample",
    "DatasetReader",
    "DatasetWriter",
]

logger = logging.getLogger("auperf")

#: File name of the auperf landmark sidecar, at the dataset root.
LANDMARKS_SIDECAR = "auperf_landmarks.csv"
_SIDECAR_HEADER = ["path", "frame"] + [f"{c}{i}" for i in range(5) for c in ("x", "y")]


@dataclass(frozen=True, eq=False)
class Sample:
    """One labelled face image (or video frame) of a dataset.

    Attributes:
        layout: Name of the layout that produced the sample (``"bp4d"``, ``"disfa"``, ...).
        key: Stable identifier inside the dataset: the image path relative to the root (posix
            separators), or ``"<video path>#<frame>"`` for a video frame. The landmark sidecar
            uses the same key.
        image_path: The image file, or ``None`` for a video frame.
        video_path: The video file, or ``None`` for an image.
        frame: Frame number in the dataset's own numbering, ``None`` for still images.
        subject: Subject / identity id, ``None`` where the dataset has none.
        sequence: Sequence or task id (BP4D task), ``None`` where the dataset has none.
        split: Split name (``"train"``, ``"test"``, ...) where the layout defines one.
        au_ids: The AU numbers the label arrays follow, shape ``(L,)``; empty for
            expression-only datasets.
        occurrence: ``(L,)`` int8 in {-1, 0, 1} (``-1`` unknown), or ``None``.
        intensity: ``(L,)`` float32 in [0, 5], ``NaN`` unknown, or ``None``.
        expression: Index into :data:`EXPRESSIONS`, ``-1`` unknown, ``None`` where the dataset
            has no expression labels.
        landmarks: ``(5, 2)`` float64 in the sample's image, or ``None``.
        attributes: Layout-specific extras (RAF-DB gender/race/age, FERPlus votes, ...).
    """

    layout: str
    key: str
    image_path: Path | None = None
    video_path: Path | None = None
    frame: int | None = None
    subject: str | None = None
    sequence: str | None = None
    split: str | None = None
    au_ids: tuple[int, ...] = ()
    occurrence: np.ndarray | None = None
    intensity: np.ndarray | None = None
    expression: int | None = None
    landmarks: np.ndarray | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def resolve_aus(
    aus: Sequence[int] | None, default: Sequence[int], name: str = "aus"
) -> tuple[int, ...]:
    """Validate a requested AU list (positive, distinct integers) or return ``default``."""
    if aus is None:
        return tuple(int(a) for a in default)
    if isinstance(aus, (str, bytes)) or not isinstance(aus, Sequence | np.ndarray):
        raise ParameterError(f"{name}: expected a sequence of AU numbers, got {aus!r}")
    out: list[int] = []
    for a in aus:
        if isinstance(a, bool) or not isinstance(a, int | np.integer) or int(a) <= 0:
            raise ParameterError(f"{name}: AU numbers must be positive integers, got {a!r}")
        out.append(int(a))
    if len(set(out)) != len(out):
        raise ParameterError(f"{name}: AU numbers must be distinct, got {out}")
    if not out:
        raise ParameterError(f"{name}: expected at least one AU")
    return tuple(out)


def check_image(image: Any, name: str = "image") -> np.ndarray:
    """Check that ``image`` is an ``(H, W, 3)`` uint8 array and return it."""
    if not isinstance(image, np.ndarray):
        raise DTypeError(f"{name}: expected a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise DTypeError(f"{name}: expected dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ShapeError(f"{name}: expected shape (H, W, 3), got {image.shape}")
    return image


def check_landmarks(landmarks: Any, name: str = "landmarks") -> np.ndarray | None:
    """Check ``(5, 2)`` finite landmarks; return them as float64 (``None`` passes through)."""
    if landmarks is None:
        return None
    arr = np.asarray(landmarks)
    if arr.dtype.kind not in "fiu":
        raise DTypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if arr.shape != (5, 2):
        raise ShapeError(f"{name}: expected shape (5, 2), got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise NonFiniteError(f"{name}: expected finite values, got {arr.tolist()}")
    return arr


def au_vector(values: Any, au_ids: Sequence[int], name: str, *, kind: str) -> np.ndarray | None:
    """Turn per-AU labels (a mapping AU -> value, or an ``(L,)`` array in ``au_ids`` order) into
    an array. ``kind`` is ``"occurrence"`` (int8 in {-1, 0, 1}) or ``"intensity"`` (float32 in
    [0, 5], NaN unknown)."""
    if values is None:
        return None
    if isinstance(values, Mapping):
        extra = sorted(set(int(k) for k in values) - set(au_ids))
        if extra:
            raise ParameterError(
                f"{name}: AUs {extra} are not among this writer's AUs {list(au_ids)}"
            )
        missing = [a for a in au_ids if a not in values]
        if missing:
            raise ParameterError(f"{name}: no value for AUs {missing}")
        arr = np.array([values[a] for a in au_ids], dtype=np.float64)
    else:
        arr = np.asarray(values)
        if arr.dtype.kind not in "fiub":
            raise DTypeError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
        if arr.shape != (len(au_ids),):
            raise ShapeError(
                f"{name}: expected shape ({len(au_ids)},) for AUs {list(au_ids)}, got {arr.shape}"
            )
        arr = arr.astype(np.float64)
    if kind == "occurrence":
        bad = ~np.isin(arr, (-1.0, 0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueRangeError(
                f"{name}: AU{au_ids[i]} occurrence must be 0, 1 or -1 (unknown), got {arr[i]!r}"
            )
        return arr.astype(np.int8)
    bad = ~np.isnan(arr) & ((arr < 0.0) | (arr > 5.0) | ~np.isfinite(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueRangeError(
            f"{name}: AU{au_ids[i]} intensity must lie in [0, 5] or be NaN, got {arr[i]!r}"
        )
    return arr.astype(np.float32)


def check_name(value: Any, name: str) -> str:
    """A path component: a non-empty string without separators, whitespace or commas."""
    if (
        not isinstance(value, str)
        or not value
        or re.search(r"[\\/\s,#]", value)
        or value in (".", "..")
    ):
        raise ParameterError(
            f"{name}: expected a plain name (no separators, spaces or commas), got {value!r}"
        )
    return value


def check_frame(frame: Any, name: str = "frame", minimum: int = 0) -> int:
    if isinstance(frame, bool) or not isinstance(frame, int | np.integer) or int(frame) < minimum:
        raise ParameterError(f"{name}: expected an integer >= {minimum}, got {frame!r}")
    return int(frame)


def check_expression(expression: Any, num_classes: int, name: str = "expression") -> int:
    if (
        isinstance(expression, bool)
        or not isinstance(expression, int | np.integer)
        or not -1 <= int(expression) < num_classes
    ):
        classes = ", ".join(f"{i} {n}" for i, n in enumerate(EXPRESSIONS[:num_classes]))
        raise ValueRangeError(
            f"{name}: expected -1 (unknown) or a class index ({classes}), got {expression!r}"
        )
    return int(expression)


def format_intensity(value: float) -> str:
    """Shortest text that reads back to the same float32 (intensities are stored as float32)."""
    return np.format_float_positional(np.float32(value), unique=True, trim="-")


def format_number(value: float) -> str:
    """Shortest text that reads back to the same float; integral values without a decimal point."""
    value = float(value)
    if value.is_integer():
        return str(int(value))
    return repr(value)


# --------------------------------------------------------------------------------------------
# Parsing helpers: every failure names the file and the 1-based row
# --------------------------------------------------------------------------------------------


def parse_int(text: str, path: Path, row: int, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise DatasetError(
            f"{what}: expected an integer, got {text!r}", path=path, row=row
        ) from None


def parse_float(text: str, path: Path, row: int, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise DatasetError(f"{what}: expected a number, got {text!r}", path=path, row=row) from None
    if not math.isfinite(value):
        raise DatasetError(f"{what}: expected a finite number, got {text!r}", path=path, row=row)
    return value


def parse_au_header(text: str, path: Path, row: int) -> int:
    """An AU column name: ``"12"``, ``"AU12"`` or ``"AU012"``."""
    m = re.fullmatch(r"\s*(?:AU)?0*(\d+)\s*", text, flags=re.IGNORECASE)
    if m is None or int(m.group(1)) == 0:
        raise DatasetError(
            f"header: expected an AU number such as 12 or AU12, got {text!r}", path=path, row=row
        )
    return int(m.group(1))


def read_csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, cells)`` for each non-blank CSV row of ``path``."""
    if not path.is_file():
        raise DatasetError("file not found", path=path)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        for cells in reader:
            if not cells or all(not c.strip() for c in cells):
                continue
            yield reader.line_num, cells


def write_csv(path: Path, header: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        if header is not None:
            w.writerow(header)
        w.writerows(rows)


def read_image(path: Path) -> np.ndarray:
    """Read an image file as ``(H, W, 3)`` uint8 RGB (grey images are expanded)."""
    if not path.is_file():
        raise DatasetError("image file not found", path=path)
    data = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if data is None:
        raise DatasetError("not a readable image", path=path)
    return cv2.cvtColor(data, cv2.COLOR_BGR2RGB)


def write_image(
    path: Path, image: np.ndarray, *, jpeg_quality: int = 95, grey: bool = False
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if grey:
        data = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    else:
        data = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params: list[int] = []
    if path.suffix.lower() in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    if not cv2.imwrite(str(path), data, params):
        raise DatasetError("could not write the image", path=path)


def numbered_files(folder: Path) -> dict[int, Path]:
    """Map the integer stem of each file in ``folder`` (``"0012.jpg"`` -> 12) to its path."""
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        if p.is_file() and p.stem.isdigit():
            out[int(p.stem)] = p
    return out


# --------------------------------------------------------------------------------------------
# Landmark sidecar
# --------------------------------------------------------------------------------------------


def sidecar_key(rel_path: str, frame: int | None) -> str:
    return rel_path if frame is None else f"{rel_path}#{frame}"


def read_sidecar(path: Path) -> dict[str, np.ndarray]:
    """Read ``auperf_landmarks.csv``: key -> ``(5, 2)`` float64."""
    out: dict[str, np.ndarray] = {}
    rows = read_csv_rows(path)
    first = next(rows, None)
    if first is None:
        raise DatasetError("empty landmark sidecar: expected a header row", path=path, row=1)
    line, header = first
    if [h.strip() for h in header] != _SIDECAR_HEADER:
        raise DatasetError(
            f"header: expected {','.join(_SIDECAR_HEADER)}, got {','.join(header)}",
            path=path,
            row=line,
        )
    for line, cells in rows:
        if len(cells) != len(_SIDECAR_HEADER):
            raise DatasetError(
                f"expected {len(_SIDECAR_HEADER)} columns, got {len(cells)}", path=path, row=line
            )
        rel = cells[0].strip()
        if not rel:
            raise DatasetError("empty path", path=path, row=line)
        frame = parse_int(cells[1], path, line, "frame") if cells[1].strip() else None
        pts = np.array(
            [parse_float(c, path, line, _SIDECAR_HEADER[2 + i]) for i, c in enumerate(cells[2:])],
            dtype=np.float64,
        ).reshape(5, 2)
        key = sidecar_key(rel, frame)
        if key in out:
            raise DatasetError(f"duplicate entry for {key!r}", path=path, row=line)
        out[key] = pts
    return out


def write_sidecar(path: Path, entries: Sequence[tuple[str, int | None, np.ndarray]]) -> None:
    rows = [
        [rel, "" if frame is None else str(frame)] + [repr(float(v)) for v in pts.reshape(-1)]
        for rel, frame, pts in entries
    ]
    write_csv(path, _SIDECAR_HEADER, rows)


# --------------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------------


class DatasetReader:
    """Index of a dataset in one of the supported layouts.

    A reader parses and validates every label file when it is constructed and keeps a list of
    :class:`Sample` records; images are read on demand with :meth:`load_image` or
    :meth:`iter_images`. It is a sequence: ``len(reader)``, ``reader[i]``, ``for s in reader``.

    Attributes:
        layout: Layout name.
        root: Dataset root folder.
        au_ids: AU numbers of the label arrays, in order (empty for expression datasets).
    """

    layout: ClassVar[str] = ""
    #: AU numbers a reader returns when ``aus`` is not given.
    default_aus: ClassVar[tuple[int, ...]] = ()

    def __init__(self, root: str | Path, *, landmarks: bool = True) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError("dataset root is not a folder", path=self.root)
        self.au_ids: tuple[int, ...] = tuple(self.default_aus)
        self._samples: list[Sample] = []
        self._use_sidecar = landmarks

    # Subclasses call this at the end of __init__.
    def _finish(self, samples: list[Sample]) -> None:
        if self._use_sidecar:
            samples = self._apply_sidecar(samples)
        self._samples = samples
        logger.info("%s: indexed %d samples under %s", self.layout, len(samples), self.root)

    def _apply_sidecar(self, samples: list[Sample]) -> list[Sample]:
        path = self.root / LANDMARKS_SIDECAR
        if not path.is_file():
            return samples
        table = read_sidecar(path)
        used = 0
        out = []
        for s in samples:
            pts = table.get(s.key)
            if pts is not None and s.landmarks is None:
                s = _replace(s, landmarks=pts)
                used += 1
            out.append(s)
        if used < len(table):
            logger.info(
                "%s: %d of %d entries match no sample of this reader",
                path,
                len(table) - used,
                len(table),
            )
        return out

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        """Whether ``root`` looks like this layout (folder structure only; nothing is parsed)."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self._samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self._samples)

    def __getitem__(self, index: int) -> Sample:
        return self._samples[index]

    @property
    def samples(self) -> tuple[Sample, ...]:
        """All samples, in index order."""
        return tuple(self._samples)

    def _sample(self, sample: Sample | int) -> Sample:
        if isinstance(sample, Sample):
            return sample
        if isinstance(sample, bool) or not isinstance(sample, int | np.integer):
            raise ParameterError(f"sample: expected a Sample or an index, got {sample!r}")
        if not -len(self._samples) <= int(sample) < len(self._samples):
            raise ParameterError(f"sample: index {sample} outside [0, {len(self._samples)})")
        return self._samples[int(sample)]

    def load_image(self, sample: Sample | int) -> np.ndarray:
        """The sample's image, ``(H, W, 3)`` uint8 RGB.

        Raises:
            DatasetError: the file is missing or cannot be decoded.
        """
        s = self._sample(sample)
        if s.image_path is None:
            raise DatasetError(f"sample {s.key!r} has no image file")
        return read_image(s.image_path)

    def iter_images(self) -> Iterator[tuple[Sample, np.ndarray]]:
        """Yield ``(sample, image)`` in index order."""
        for s in self._samples:
            yield s, self.load_image(s)

    def occurrence_matrix(self) -> np.ndarray:
        """AU occurrence of all samples, ``(N, L)`` int8, ``-1`` unknown."""
        out = np.full((len(self._samples), len(self.au_ids)), -1, dtype=np.int8)
        for i, s in enumerate(self._samples):
            if s.occurrence is not None:
                out[i] = s.occurrence
        return out

    def intensity_matrix(self) -> np.ndarray:
        """AU intensity of all samples, ``(N, L)`` float32, ``NaN`` unknown."""
        out = np.full((len(self._samples), len(self.au_ids)), np.nan, dtype=np.float32)
        for i, s in enumerate(self._samples):
            if s.intensity is not None:
                out[i] = s.intensity
        return out

    def expression_array(self) -> np.ndarray:
        """Expression class index of all samples, ``(N,)`` int64, ``-1`` unknown."""
        return np.array(
            [-1 if s.expression is None else s.expression for s in self._samples], dtype=np.int64
        )

    def landmarks_array(self) -> np.ndarray:
        """Landmarks of all samples, ``(N, 5, 2)`` float64, ``NaN`` where a sample has none."""
        out = np.full((len(self._samples), 5, 2), np.nan, dtype=np.float64)
        for i, s in enumerate(self._samples):
            if s.landmarks is not None:
                out[i] = s.landmarks
        return out

    @property
    def subjects(self) -> tuple[str, ...]:
        """The distinct subject / identity ids, sorted (empty where the dataset has none)."""
        return tuple(sorted({s.subject for s in self._samples if s.subject is not None}))

    def subset(self, selection: Any) -> DatasetReader:
        """A reader over some of the samples (same root and AU list, nothing re-read).

        Args:
            selection: A boolean mask ``(N,)``, a sequence of indices, or a predicate
                ``Sample -> bool`` (e.g. ``lambda s: s.subject in held_out``).

        Returns:
            A shallow copy of this reader holding the selected samples, in index order.
        """
        n = len(self._samples)
        if callable(selection):
            keep = [s for s in self._samples if selection(s)]
        else:
            sel = np.asarray(selection)
            if sel.dtype == bool:
                if sel.shape != (n,):
                    raise ShapeError(
                        f"selection: expected a boolean mask of shape ({n},), got {sel.shape}"
                    )
                idx = np.flatnonzero(sel)
            elif sel.dtype.kind in "iu" and sel.ndim == 1:
                if sel.size and (sel.min() < -n or sel.max() >= n):
                    raise ParameterError(
                        f"selection: indices must lie in [-{n}, {n}), got {sel.min()}..{sel.max()}"
                    )
                idx = sel
            else:
                raise ParameterError(
                    f"selection: expected a boolean mask, indices or a predicate, got {selection!r}"
                )
            keep = [self._samples[int(i)] for i in idx]
        out = copy.copy(self)
        out._samples = keep
        return out

    def close(self) -> None:
        """Release open files (video handles). The index stays usable; idempotent."""

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(root={str(self.root)!r}, samples={len(self)}, au_ids={list(self.au_ids)})"


def _replace(sample: Sample, **changes: Any) -> Sample:
    from dataclasses import replace

    return replace(sample, **changes)


class DatasetWriter:
    """Base of the layout writers: a context manager that writes images as they are added and
    the label files (and the landmark sidecar) on :meth:`close`.

    Args:
        root: Dataset root folder. It must not exist or be empty unless ``exist_ok``.
        exist_ok: Allow writing into a non-empty folder (files of the same name are replaced).
        jpeg_quality: JPEG quality of written ``.jpg`` images, 1-100.
    """

    layout: ClassVar[str] = ""

    def __init__(self, root: str | Path, *, exist_ok: bool = False, jpeg_quality: int = 95) -> None:
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError("dataset root exists and is not a folder", path=self.root)
        if self.root.is_dir() and any(self.root.iterdir()) and not exist_ok:
            raise DatasetError(
                "dataset root is not empty (pass exist_ok=True to write into it)", path=self.root
            )
        if (
            isinstance(jpeg_quality, bool)
            or not isinstance(jpeg_quality, int)
            or not 1 <= jpeg_quality <= 100
        ):
            raise ParameterError(
                f"jpeg_quality: expected an integer in [1, 100], got {jpeg_quality!r}"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = jpeg_quality
        self._landmarks: list[tuple[str, int | None, np.ndarray]] = []
        self._keys: set[str] = set()
        self._closed = False
        self.count = 0

    def _claim(self, key: str) -> None:
        if self._closed:
            raise DatasetError("writer is closed", path=self.root)
        if key in self._keys:
            raise ParameterError(f"sample {key!r} was already added")
        self._keys.add(key)

    def _add_landmarks(self, rel: str, frame: int | None, landmarks: np.ndarray | None) -> None:
        if landmarks is not None:
            self._landmarks.append((rel, frame, landmarks))

    def _write_labels(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Write the label files and the landmark sidecar. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._write_labels()
        if self._landmarks:
            write_sidecar(self.root / LANDMARKS_SIDECAR, self._landmarks)
        logger.info("%s: wrote %d samples under %s", self.layout, self.count, self.root)

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
