"""RAF-DB basic layout (7 basic expressions).

Layout::

    <root>/basic/
      Image/original/<split>_<nnnnn>.jpg
      Image/aligned/<split>_<nnnnn>_aligned.jpg          100x100
      EmoLabel/list_patition_label.txt                   lines "train_00001.jpg 5"
      Annotation/manual/<split>_<nnnnn>_manu_attri.txt   5 lines "x y", then gender, race, age

``<split>`` is ``train`` or ``test``, ``<nnnnn>`` a 5-digit 1-based number (the file name
``list_patition_label.txt`` is spelt as published). Label codes: 1 Surprise, 2 Fear, 3 Disgust,
4 Happiness, 5 Sadness, 6 Anger, 7 Neutral. Attribute codes: gender 0 male, 1 female, 2 unsure;
race 0 Caucasian, 1 African-American, 2 Asian; age 0 (0-3), 1 (4-19), 2 (20-39), 3 (40-69),
4 (70+). The manual landmarks are in the original image, in auperf's 5-point order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
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
    parse_float,
    parse_int,
    write_image,
)

__all__ = ["RAFDB_CODES", "RAFDBReader", "RAFDBWriter"]

#: RAF-DB label code -> index into :data:`~auperf.datasets.EXPRESSIONS`.
RAFDB_CODES: dict[int, int] = {
    1: EXPRESSIONS.index("surprise"),
    2: EXPRESSIONS.index("fear"),
    3: EXPRESSIONS.index("disgust"),
    4: EXPRESSIONS.index("happiness"),
    5: EXPRESSIONS.index("sadness"),
    6: EXPRESSIONS.index("anger"),
    7: EXPRESSIONS.index("neutral"),
}
_TO_CODE = {v: k for k, v in RAFDB_CODES.items()}
_SPLITS = ("train", "test")
_NAME = re.compile(r"(train|test)_(\d+)\.jpg")
_ATTR_RANGES = {"gender": 3, "race": 3, "age": 5}

# Where the 5 points land in a 100x100 aligned crop: the common 112x112 5-point face template
# scaled by 100/112.
_ALIGNED_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
) * (100.0 / 112.0)


def _similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``src -> dst`` (2x3), Umeyama's closed form."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    rot = u @ e @ vt
    var = (s**2).sum() / len(src)
    scale = (sig * np.diag(e)).sum() / var if var > 0 else 1.0
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - scale * rot @ ms
    return m


def _manual_path(base: Path, stem: str) -> Path:
    return base / "Annotation" / "manual" / f"{stem}_manu_attri.txt"


class RAFDBWriter(DatasetWriter):
    """Write images, expression labels and manual annotations in the RAF-DB basic layout.

    Args:
        root: Dataset root folder (``basic/`` is created inside it).
        exist_ok: Allow a non-empty root.
        jpeg_quality: JPEG quality, 1-100.
    """

    layout = "rafdb"

    def __init__(self, root: str | Path, *, exist_ok: bool = False, jpeg_quality: int = 95) -> None:
        super().__init__(root, exist_ok=exist_ok, jpeg_quality=jpeg_quality)
        self._base = self.root / "basic"
        self._lines: list[tuple[str, int, str]] = []
        self._next = {s: 1 for s in _SPLITS}

    def add(
        self,
        image: np.ndarray,
        *,
        split: str,
        expression: int,
        landmarks: Any = None,
        aligned: np.ndarray | None = None,
        gender: int = 2,
        race: int = 0,
        age: int = 2,
        index: int | None = None,
    ) -> str:
        """Add one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB, the original image.
            split: ``"train"`` or ``"test"``.
            expression: Index into :data:`~auperf.datasets.EXPRESSIONS`, one of the 7 basic
                classes (0-6).
            landmarks: ``(5, 2)`` in ``image``; written to the manual annotation file. Without
                them no annotation file is written.
            aligned: The ``(100, 100, 3)`` aligned crop. If ``None`` it is made by warping
                ``image`` with the least-squares similarity from ``landmarks`` to a fixed 5-point
                template, or by resizing ``image`` when there are no landmarks.
            gender, race, age: Attribute codes (see the module docstring).
            index: The 1-based number in the file name; default: the split's next number.

        Returns:
            The image name, e.g. ``"train_00001.jpg"``.
        """
        check_image(image)
        if split not in _SPLITS:
            raise ParameterError(f"split: expected 'train' or 'test', got {split!r}")
        expression = check_expression(expression, 7)
        if expression < 0:
            raise ValueRangeError("expression: RAF-DB has no unknown label code, got -1")
        lm = check_landmarks(landmarks)
        for name, value in (("gender", gender), ("race", race), ("age", age)):
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value < _ATTR_RANGES[name]
            ):
                raise ValueRangeError(
                    f"{name}: expected an integer in [0, {_ATTR_RANGES[name] - 1}], got {value!r}"
                )
        if index is None:
            index = self._next[split]
        if isinstance(index, bool) or not isinstance(index, int) or not 1 <= index <= 99999:
            raise ParameterError(f"index: expected an integer in [1, 99999], got {index!r}")
        self._next[split] = max(self._next[split], index + 1)
        stem = f"{split}_{index:05d}"
        self._claim(stem)
        if aligned is not None:
            check_image(aligned, "aligned")
            if aligned.shape[:2] != (100, 100):
                raise ShapeError(f"aligned: expected shape (100, 100, 3), got {aligned.shape}")
        elif lm is not None:
            m = _similarity(lm, _ALIGNED_TEMPLATE)
            aligned = cv2.warpAffine(
                image, m, (100, 100), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        else:
            aligned = cv2.resize(image, (100, 100), interpolation=cv2.INTER_AREA)
        write_image(
            self._base / "Image" / "original" / f"{stem}.jpg", image, jpeg_quality=self.jpeg_quality
        )
        write_image(
            self._base / "Image" / "aligned" / f"{stem}_aligned.jpg",
            aligned,
            jpeg_quality=self.jpeg_quality,
        )
        if lm is not None:
            path = _manual_path(self._base, stem)
            path.parent.mkdir(parents=True, exist_ok=True)
            text = "".join(f"{x!r}\t{y!r}\n" for x, y in lm.tolist()) + f"{gender}\n{race}\n{age}\n"
            path.write_text(text, encoding="utf-8")
        self._lines.append((split, index, f"{stem}.jpg {_TO_CODE[expression]}"))
        self.count += 1
        return f"{stem}.jpg"

    def _write_labels(self) -> None:
        path = self._base / "EmoLabel" / "list_patition_label.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        order = sorted(self._lines, key=lambda t: (_SPLITS.index(t[0]), t[1]))
        path.write_text("".join(line + "\n" for _, _, line in order), encoding="utf-8")


class RAFDBReader(DatasetReader):
    """Read a dataset in the RAF-DB basic layout.

    Args:
        root: Dataset root (the folder holding ``basic/``, or ``basic/`` itself).
        image: ``"original"`` or ``"aligned"``: which image ``image_path`` points to. Landmarks
            are only given with ``"original"`` (they are measured there); the other path is in
            ``attributes``.
        split: ``"train"``, ``"test"`` or ``None`` for both.
        check_files: Check that the images exist.
        landmarks: Use ``auperf_landmarks.csv`` for images without a manual annotation.

    Raises:
        DatasetError: a malformed label line, a code outside 1-7, a missing image, a malformed
            annotation file; the message names the file and the row.
    """

    layout = "rafdb"

    def __init__(
        self,
        root: str | Path,
        *,
        image: str = "original",
        split: str | None = None,
        check_files: bool = True,
        landmarks: bool = True,
    ) -> None:
        root = Path(root)
        if root.name != "basic" and (root / "basic").is_dir():
            super().__init__(root, landmarks=landmarks)
            base = root / "basic"
        else:
            super().__init__(root.parent if root.name == "basic" else root, landmarks=landmarks)
            base = root
        if image not in ("original", "aligned"):
            raise ParameterError(f"image: expected 'original' or 'aligned', got {image!r}")
        if split not in (None, *_SPLITS):
            raise ParameterError(f"split: expected 'train', 'test' or None, got {split!r}")
        self.au_ids = ()
        self.image = image
        path = base / "EmoLabel" / "list_patition_label.txt"
        if not path.is_file():
            raise DatasetError("label file not found", path=path)
        samples: list[Sample] = []
        seen: dict[str, int] = {}
        with open(path, encoding="utf-8") as f:
            for line, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                parts = text.split()
                if len(parts) != 2:
                    raise DatasetError(
                        f"expected '<image> <label>', got {text.rstrip()!r}", path=path, row=line
                    )
                name, code_text = parts
                m = _NAME.fullmatch(name)
                if m is None:
                    raise DatasetError(
                        f"image: expected train_nnnnn.jpg or test_nnnnn.jpg, got {name!r}",
                        path=path,
                        row=line,
                    )
                if name in seen:
                    raise DatasetError(
                        f"image {name!r} appears twice (first at row {seen[name]})",
                        path=path,
                        row=line,
                    )
                seen[name] = line
                code = parse_int(code_text, path, line, "label")
                if code not in RAFDB_CODES:
                    raise DatasetError(
                        f"label: expected a code 1-7, got {code_text!r}", path=path, row=line
                    )
                if split is not None and m.group(1) != split:
                    continue
                stem = name[:-4]
                original = base / "Image" / "original" / name
                aligned = base / "Image" / "aligned" / f"{stem}_aligned.jpg"
                img = original if image == "original" else aligned
                if check_files and not img.is_file():
                    raise DatasetError(f"image file not found: {img}", path=path, row=line)
                attrs: dict[str, Any] = {
                    "original_path": original,
                    "aligned_path": aligned,
                    "rafdb_code": code,
                }
                lm = None
                manual = _manual_path(base, stem)
                if manual.is_file():
                    pts, extra = self._read_manual(manual)
                    attrs.update(extra)
                    lm = pts if image == "original" else None
                samples.append(
                    Sample(
                        layout=self.layout,
                        key=img.relative_to(self.root).as_posix(),
                        image_path=img,
                        split=m.group(1),
                        expression=RAFDB_CODES[code],
                        landmarks=lm,
                        attributes=attrs,
                    )
                )
        self._finish(samples)

    @staticmethod
    def _read_manual(path: Path) -> tuple[np.ndarray, dict[str, int]]:
        lines = [
            (i, t)
            for i, t in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
            if t.strip()
        ]
        if len(lines) < 5:
            raise DatasetError(f"expected 5 landmark lines, got {len(lines)} lines", path=path)
        pts = np.empty((5, 2), dtype=np.float64)
        for k in range(5):
            row, text = lines[k]
            cells = text.split()
            if len(cells) != 2:
                raise DatasetError(
                    f"landmark {k}: expected 'x y', got {text!r}", path=path, row=row
                )
            pts[k] = [parse_float(c, path, row, f"landmark {k}") for c in cells]
        attrs: dict[str, int] = {}
        for (row, text), name in zip(lines[5:8], ("gender", "race", "age"), strict=False):
            v = parse_int(text, path, row, name)
            if not 0 <= v < _ATTR_RANGES[name]:
                raise DatasetError(
                    f"{name}: expected a code 0-{_ATTR_RANGES[name] - 1}, got {text.strip()!r}",
                    path=path,
                    row=row,
                )
            attrs[name] = v
        return pts, attrs

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        root = Path(root)
        return (root / "basic" / "EmoLabel" / "list_patition_label.txt").is_file() or (
            root.name == "basic" and (root / "EmoLabel" / "list_patition_label.txt").is_file()
        )
