"""FERPlus-style layout (FER2013 images relabelled by 10 annotators).

Layout::

    <root>/
      fer2013new.csv                 Usage, Image name, 8 emotion votes, unknown, NF
      FER2013Train/<name>.png        Usage "Training"     -> split "train"
      FER2013Valid/<name>.png        Usage "PublicTest"   -> split "valid"
      FER2013Test/<name>.png         Usage "PrivateTest"  -> split "test"
      auperf_landmarks.csv           optional auperf sidecar

Vote columns, in order: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt,
unknown, NF (not a face). Rows with an empty image name (images FERPlus dropped) are skipped.
The expression is the majority vote: the class with the most votes, or ``-1`` when the top is
shared, or is "unknown" or "NF". Images are 48x48 greyscale PNGs; readers return them as RGB.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, ParameterError, ShapeError, ValueRangeError
from ._common import (
    EXPRESSIONS,
    DatasetReader,
    DatasetWriter,
    Sample,
    check_expression,
    check_image,
    check_landmarks,
    parse_int,
    read_csv_rows,
    write_csv,
    write_image,
)

__all__ = ["FERPLUS_CLASSES", "FERPlusReader", "FERPlusWriter"]

logger = logging.getLogger("auperf")

#: The vote columns of ``fer2013new.csv``, in order.
FERPLUS_CLASSES: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
_HEADER = ["Usage", "Image name", *FERPLUS_CLASSES]
_USAGE = {
    "Training": ("train", "FER2013Train"),
    "PublicTest": ("valid", "FER2013Valid"),
    "PrivateTest": ("test", "FER2013Test"),
}
_SPLIT_TO_USAGE = {v[0]: k for k, v in _USAGE.items()}
# vote column -> EXPRESSIONS index (the 8 emotions)
_TO_EXPR = np.array([EXPRESSIONS.index(c) for c in FERPLUS_CLASSES[:8]])


def majority_expression(votes: np.ndarray) -> int:
    """EXPRESSIONS index of the majority vote, ``-1`` for a tie, "unknown" or "NF"."""
    top = votes.max()
    if top <= 0:
        return -1
    winners = np.flatnonzero(votes == top)
    if len(winners) != 1 or winners[0] >= 8:
        return -1
    return int(_TO_EXPR[winners[0]])


class FERPlusWriter(DatasetWriter):
    """Write images and vote labels in the FERPlus-style layout (greyscale PNG)."""

    layout = "ferplus"

    def __init__(self, root: str | Path, *, exist_ok: bool = False) -> None:
        super().__init__(root, exist_ok=exist_ok)
        self._rows: list[list[Any]] = []

    def add(
        self,
        image: np.ndarray,
        *,
        split: str,
        expression: int | None = None,
        votes: Any = None,
        landmarks: Any = None,
    ) -> str:
        """Add one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB (FERPlus images are 48x48; any size is written),
                stored as greyscale.
            split: ``"train"``, ``"valid"`` or ``"test"``.
            expression: EXPRESSIONS index 0-7; written as 10 votes for that class.
            votes: Instead of ``expression``: the 10 vote counts in :data:`FERPLUS_CLASSES` order.
            landmarks: Optional ``(5, 2)`` landmarks for the sidecar.

        Returns:
            The image name, e.g. ``"fer0000000.png"``.
        """
        check_image(image)
        if split not in _SPLIT_TO_USAGE:
            raise ParameterError(f"split: expected 'train', 'valid' or 'test', got {split!r}")
        if (expression is None) == (votes is None):
            raise ParameterError("give exactly one of expression= and votes=")
        if votes is None:
            e = check_expression(expression, 8)
            if e < 0:
                raise ValueRangeError(
                    "expression: -1 cannot be written as votes; pass votes= instead"
                )
            v = np.zeros(10, dtype=np.int64)
            v[int(np.flatnonzero(_TO_EXPR == e)[0])] = 10
        else:
            v = np.asarray(votes)
            if v.shape != (10,):
                raise ShapeError(f"votes: expected shape (10,), got {v.shape}")
            if v.dtype.kind not in "iu" or (v < 0).any():
                raise ValueRangeError(f"votes: expected non-negative integers, got {v.tolist()}")
        lm = check_landmarks(landmarks)
        name = f"fer{len(self._rows):07d}.png"
        usage = _SPLIT_TO_USAGE[split]
        rel = f"{_USAGE[usage][1]}/{name}"
        self._claim(rel)
        write_image(self.root / rel, image, grey=True)
        self._rows.append([usage, name, *[int(x) for x in v]])
        self._add_landmarks(rel, None, lm)
        self.count += 1
        return name

    def _write_labels(self) -> None:
        write_csv(self.root / "fer2013new.csv", _HEADER, self._rows)


class FERPlusReader(DatasetReader):
    """Read a dataset in the FERPlus-style layout.

    Args:
        root: Dataset root folder.
        split: ``"train"``, ``"valid"``, ``"test"`` or ``None`` for all.
        check_files: Check that every image exists.
        landmarks: Use ``auperf_landmarks.csv`` when present.

    Raises:
        DatasetError: a wrong header, an unknown Usage, a negative or non-integer vote, a missing
            image; the message names the file and the row.
    """

    layout = "ferplus"

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        check_files: bool = True,
        landmarks: bool = True,
    ) -> None:
        super().__init__(root, landmarks=landmarks)
        if split not in (None, *_SPLIT_TO_USAGE):
            raise ParameterError(f"split: expected 'train', 'valid', 'test' or None, got {split!r}")
        self.au_ids = ()
        path = self.root / "fer2013new.csv"
        rows = read_csv_rows(path)
        first = next(rows, None)
        if first is None or [h.strip() for h in first[1]] != _HEADER:
            got = "nothing" if first is None else ",".join(first[1])
            raise DatasetError(f"header: expected {','.join(_HEADER)}, got {got}", path=path, row=1)
        samples: list[Sample] = []
        dropped = 0
        for line, cells in rows:
            if len(cells) != len(_HEADER):
                raise DatasetError(
                    f"expected {len(_HEADER)} cells, got {len(cells)}", path=path, row=line
                )
            usage = cells[0].strip()
            if usage not in _USAGE:
                raise DatasetError(
                    f"Usage: expected one of {list(_USAGE)}, got {usage!r}", path=path, row=line
                )
            name = cells[1].strip()
            if not name:
                dropped += 1
                continue
            votes = np.array(
                [parse_int(c, path, line, _HEADER[2 + i]) for i, c in enumerate(cells[2:])]
            )
            if (votes < 0).any():
                j = int(np.flatnonzero(votes < 0)[0])
                raise DatasetError(
                    f"{FERPLUS_CLASSES[j]}: expected a vote count >= 0, got {votes[j]}",
                    path=path,
                    row=line,
                )
            s, folder = _USAGE[usage]
            if split is not None and s != split:
                continue
            img = self.root / folder / name
            if check_files and not img.is_file():
                raise DatasetError(f"image file not found: {img}", path=path, row=line)
            samples.append(
                Sample(
                    layout=self.layout,
                    key=f"{folder}/{name}",
                    image_path=img,
                    split=s,
                    expression=majority_expression(votes),
                    attributes={"votes": votes},
                )
            )
        if dropped:
            logger.info("ferplus: %d rows without an image name skipped in %s", dropped, path)
        self._finish(samples)

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        return (Path(root) / "fer2013new.csv").is_file()
