"""AffectNet-style layout (manually annotated part).

Layout::

    <root>/
      Manually_Annotated_Images/<subdirectory>/<file>.jpg
      Manually_Annotated_file_lists/training.csv      split "train"
      Manually_Annotated_file_lists/validation.csv    split "val"
      auperf_landmarks.csv                            optional auperf sidecar

CSV columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal``. ``facial_landmarks`` is either empty or 68
points as ``x1;y1;x2;y2;...``; the reader turns 68 points into auperf's 5 (eye centres as the
mean of each eye's six contour points, nose tip point 31, mouth corners points 49 and 55, 1-based
iBUG numbering). Expression codes: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust,
6 Anger, 7 Contempt (the order of :data:`~auperf.datasets.EXPRESSIONS`), 8 None, 9 Uncertain,
10 No-Face (read as expression ``-1``, the code kept in ``attributes``). Valence and arousal lie
in [-1, 1], ``-2`` where undefined.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DatasetError, ParameterError, ValueRangeError
from ._common import (
    DatasetReader,
    DatasetWriter,
    Sample,
    check_expression,
    check_image,
    check_landmarks,
    check_name,
    format_number,
    parse_float,
    parse_int,
    read_csv_rows,
    write_csv,
    write_image,
)

__all__ = ["AFFECTNET_CODES", "AffectNetReader", "AffectNetWriter"]

#: AffectNet code -> name; codes 0-7 equal the indices of ``EXPRESSIONS``.
AFFECTNET_CODES: dict[int, str] = {
    0: "neutral",
    1: "happiness",
    2: "sadness",
    3: "surprise",
    4: "fear",
    5: "disgust",
    6: "anger",
    7: "contempt",
    8: "none",
    9: "uncertain",
    10: "no-face",
}
_HEADER = [
    "subDirectory_filePath",
    "face_x",
    "face_y",
    "face_width",
    "face_height",
    "facial_landmarks",
    "expression",
    "valence",
    "arousal",
]
_FILES = {"train": "training.csv", "val": "validation.csv"}


def _five_from_68(pts: np.ndarray) -> np.ndarray:
    return np.stack([pts[36:42].mean(0), pts[42:48].mean(0), pts[30], pts[48], pts[54]]).astype(
        np.float64
    )


class AffectNetWriter(DatasetWriter):
    """Write images and labels in the AffectNet-style layout.

    Landmarks go to the auperf sidecar (the CSV's ``facial_landmarks`` column holds 68 points,
    which a 5-point record cannot fill, so it is left empty).
    """

    layout = "affectnet"

    def __init__(self, root: str | Path, *, exist_ok: bool = False, jpeg_quality: int = 95) -> None:
        super().__init__(root, exist_ok=exist_ok, jpeg_quality=jpeg_quality)
        self._rows: dict[str, list[list[Any]]] = {s: [] for s in _FILES}

    def add(
        self,
        image: np.ndarray,
        *,
        split: str,
        name: str,
        expression: int,
        valence: float = -2.0,
        arousal: float = -2.0,
        subdirectory: str = "0",
        face_box: tuple[int, int, int, int] | None = None,
        landmarks: Any = None,
    ) -> Path:
        """Add one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            split: ``"train"`` or ``"val"``.
            name: File name without extension.
            expression: Index into ``EXPRESSIONS`` (0-7), or ``-1`` (written as code 9,
                Uncertain).
            valence, arousal: In [-1, 1], or -2 for undefined.
            subdirectory: The image's folder under ``Manually_Annotated_Images``.
            face_box: ``(x, y, width, height)``; default: the whole image.
            landmarks: Optional ``(5, 2)`` landmarks for the sidecar.

        Returns:
            The written image path.
        """
        check_image(image)
        if split not in _FILES:
            raise ParameterError(f"split: expected 'train' or 'val', got {split!r}")
        name = check_name(name, "name")
        subdirectory = check_name(subdirectory, "subdirectory")
        expression = check_expression(expression, 8)
        for what, v in (("valence", valence), ("arousal", arousal)):
            if not isinstance(v, int | float) or not (-1.0 <= v <= 1.0 or v == -2.0):
                raise ValueRangeError(f"{what}: expected a number in [-1, 1] or -2, got {v!r}")
        if face_box is None:
            face_box = (0, 0, image.shape[1], image.shape[0])
        if len(face_box) != 4 or any(
            isinstance(v, bool) or not isinstance(v, int | np.integer) for v in face_box
        ):
            raise ParameterError(
                f"face_box: expected 4 integers (x, y, width, height), got {face_box!r}"
            )
        lm = check_landmarks(landmarks)
        rel_in = f"{subdirectory}/{name}.jpg"
        rel = f"Manually_Annotated_Images/{rel_in}"
        self._claim(rel)
        write_image(self.root / rel, image, jpeg_quality=self.jpeg_quality)
        code = 9 if expression < 0 else expression
        self._rows[split].append(
            [
                rel_in,
                *[int(v) for v in face_box],
                "",
                code,
                format_number(valence),
                format_number(arousal),
            ]
        )
        self._add_landmarks(rel, None, lm)
        self.count += 1
        return self.root / rel

    def _write_labels(self) -> None:
        for split, rows in self._rows.items():
            if rows:
                write_csv(
                    self.root / "Manually_Annotated_file_lists" / _FILES[split], _HEADER, rows
                )


class AffectNetReader(DatasetReader):
    """Read a dataset in the AffectNet-style layout.

    Args:
        root: Dataset root folder.
        split: ``"train"``, ``"val"`` or ``None`` for every list present.
        check_files: Check that every image exists.
        landmarks: Use ``auperf_landmarks.csv`` for rows without 68-point landmarks.

    Raises:
        DatasetError: a wrong header, a code outside 0-10, a malformed number or landmark list,
            a missing image; the message names the file and the row.
    """

    layout = "affectnet"

    def __init__(
        self,
        root: str | Path,
        *,
        split: str | None = None,
        check_files: bool = True,
        landmarks: bool = True,
    ) -> None:
        super().__init__(root, landmarks=landmarks)
        if split not in (None, *_FILES):
            raise ParameterError(f"split: expected 'train', 'val' or None, got {split!r}")
        self.au_ids = ()
        lists = self.root / "Manually_Annotated_file_lists"
        wanted = [split] if split else list(_FILES)
        paths = [(s, lists / _FILES[s]) for s in wanted if split or (lists / _FILES[s]).is_file()]
        if not paths:
            raise DatasetError("no training.csv or validation.csv", path=lists)
        samples: list[Sample] = []
        for s, path in paths:
            rows = read_csv_rows(path)
            first = next(rows, None)
            if first is None or [h.strip() for h in first[1]] != _HEADER:
                got = "nothing" if first is None else ",".join(first[1])
                raise DatasetError(
                    f"header: expected {','.join(_HEADER)}, got {got}", path=path, row=1
                )
            for line, cells in rows:
                if len(cells) != len(_HEADER):
                    raise DatasetError(
                        f"expected {len(_HEADER)} cells, got {len(cells)}", path=path, row=line
                    )
                rel_in = cells[0].strip()
                if not rel_in or rel_in.startswith("/") or ".." in rel_in.split("/"):
                    raise DatasetError(
                        f"subDirectory_filePath: expected a relative path, got {rel_in!r}",
                        path=path,
                        row=line,
                    )
                box = [parse_int(c, path, line, _HEADER[1 + i]) for i, c in enumerate(cells[1:5])]
                code = parse_int(cells[6], path, line, "expression")
                if code not in AFFECTNET_CODES:
                    raise DatasetError(
                        f"expression: expected a code 0-10, got {cells[6].strip()!r}",
                        path=path,
                        row=line,
                    )
                va = [
                    parse_float(c, path, line, n)
                    for c, n in ((cells[7], "valence"), (cells[8], "arousal"))
                ]
                for v, n in zip(va, ("valence", "arousal"), strict=True):
                    if not (-1.0 <= v <= 1.0 or v == -2.0):
                        raise DatasetError(
                            f"{n}: expected [-1, 1] or -2, got {v!r}", path=path, row=line
                        )
                lm = None
                text = cells[5].strip()
                if text:
                    vals = [parse_float(c, path, line, "facial_landmarks") for c in text.split(";")]
                    if len(vals) != 136:
                        raise DatasetError(
                            "facial_landmarks: expected 68 points (136 numbers), "
                            f"got {len(vals)} numbers",
                            path=path,
                            row=line,
                        )
                    lm = _five_from_68(np.array(vals).reshape(68, 2))
                img = self.root / "Manually_Annotated_Images" / rel_in
                if check_files and not img.is_file():
                    raise DatasetError(f"image file not found: {img}", path=path, row=line)
                samples.append(
                    Sample(
                        layout=self.layout,
                        key=f"Manually_Annotated_Images/{rel_in}",
                        image_path=img,
                        split=s,
                        expression=code if code < 8 else -1,
                        landmarks=lm,
                        attributes={
                            "affectnet_code": code,
                            "face_box": tuple(box),
                            "valence": va[0],
                            "arousal": va[1],
                        },
                    )
                )
        self._finish(samples)

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        return (Path(root) / "Manually_Annotated_file_lists").is_dir()
