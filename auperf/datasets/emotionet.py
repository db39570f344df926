"""EmotioNet-style layout (images in the wild with AU occurrence).

Layout::

    <root>/
      images/<name>.jpg
      labels.csv            columns: image, AU1, AU2, ... ; values 0, 1, 999 (unknown)
      auperf_landmarks.csv  optional auperf sidecar

The ``image`` column holds the file name relative to ``images/``. EmotioNet is distributed as
URL lists with per-image AU codes; this layout is the form the images take once downloaded.
"""

from __future__ import annotations

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
    check_image,
    check_landmarks,
    check_name,
    parse_au_header,
    parse_int,
    read_csv_rows,
    resolve_aus,
    write_csv,
    write_image,
)

__all__ = ["EMOTIONET_AUS", "EmotioNetReader", "EmotioNetWriter"]

#: The 12 AUs of the EmotioNet 2017 challenge, the AU set written by default.
EMOTIONET_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 17, 20, 25, 26, 43)

_UNKNOWN = 999


class EmotioNetWriter(DatasetWriter):
    """Write images and AU occurrence in the EmotioNet-style layout.

    Args:
        root: Dataset root folder.
        au_ids: AU columns of ``labels.csv``.
        exist_ok: Allow a non-empty root.
        jpeg_quality: JPEG quality, 1-100.
    """

    layout = "emotionet"

    def __init__(
        self,
        root: str | Path,
        *,
        au_ids: Sequence[int] = EMOTIONET_AUS,
        exist_ok: bool = False,
        jpeg_quality: int = 95,
    ) -> None:
        self.au_ids = resolve_aus(au_ids, EMOTIONET_AUS, "au_ids")
        super().__init__(root, exist_ok=exist_ok, jpeg_quality=jpeg_quality)
        self._rows: list[list[Any]] = []

    def add(self, image: np.ndarray, *, name: str, occurrence: Any, landmarks: Any = None) -> Path:
        """Add one image.

        Args:
            image: ``(H, W, 3)`` uint8 RGB.
            name: File name without extension (``images/<name>.jpg``).
            occurrence: ``(L,)`` in ``au_ids`` order or a mapping; 0, 1, -1 unknown (written 999).
            landmarks: Optional ``(5, 2)`` landmarks for the sidecar.

        Returns:
            The written image path.
        """
        check_image(image)
        name = check_name(name, "name")
        occ = au_vector(occurrence, self.au_ids, "occurrence", kind="occurrence")
        if occ is None:
            raise ParameterError("occurrence: required for EmotioNet")
        lm = check_landmarks(landmarks)
        rel = f"images/{name}.jpg"
        self._claim(rel)
        write_image(self.root / rel, image, jpeg_quality=self.jpeg_quality)
        self._rows.append([f"{name}.jpg"] + [_UNKNOWN if v < 0 else int(v) for v in occ])
        self._add_landmarks(rel, None, lm)
        self.count += 1
        return self.root / rel

    def _write_labels(self) -> None:
        write_csv(self.root / "labels.csv", ["image"] + [f"AU{a}" for a in self.au_ids], self._rows)


class EmotioNetReader(DatasetReader):
    """Read a dataset in the EmotioNet-style layout.

    Args:
        root: Dataset root folder.
        aus: AU numbers to return; default: every AU column of ``labels.csv``.
        check_files: Check that every image exists.
        landmarks: Use ``auperf_landmarks.csv`` when present.

    Raises:
        DatasetError: no ``image`` column, a requested AU without a column, a code outside
            0/1/999, a duplicate or missing image; the message names the file and the row.
    """

    layout = "emotionet"
    default_aus = EMOTIONET_AUS

    def __init__(
        self,
        root: str | Path,
        *,
        aus: Sequence[int] | None = None,
        check_files: bool = True,
        landmarks: bool = True,
    ) -> None:
        super().__init__(root, landmarks=landmarks)
        path = self.root / "labels.csv"
        rows = read_csv_rows(path)
        first = next(rows, None)
        if first is None:
            raise DatasetError("empty file: expected a header row", path=path, row=1)
        hline, header = first
        names = [h.strip() for h in header]
        if "image" not in names:
            raise DatasetError(
                f"header: expected an 'image' column, got {','.join(names)}", path=path, row=hline
            )
        img_col = names.index("image")
        cols = {parse_au_header(h, path, hline): i for i, h in enumerate(names) if i != img_col}
        if len(cols) != len(names) - 1:
            raise DatasetError(
                f"header: duplicate AU columns in {','.join(names)}", path=path, row=hline
            )
        self.au_ids = resolve_aus(aus, tuple(cols))
        missing = [a for a in self.au_ids if a not in cols]
        if missing:
            raise DatasetError(
                f"header: requested AUs {missing} have no column (columns: {list(cols)})",
                path=path,
                row=hline,
            )
        samples: list[Sample] = []
        seen: dict[str, int] = {}
        for line, cells in rows:
            if len(cells) != len(names):
                raise DatasetError(
                    f"expected {len(names)} cells, got {len(cells)}", path=path, row=line
                )
            name = cells[img_col].strip()
            if not name or "/" in name or "\\" in name:
                raise DatasetError(
                    f"image: expected a file name, got {name!r}", path=path, row=line
                )
            if name in seen:
                raise DatasetError(
                    f"image {name!r} appears twice (first at row {seen[name]})", path=path, row=line
                )
            seen[name] = line
            occ = np.empty(len(self.au_ids), dtype=np.int8)
            for j, a in enumerate(self.au_ids):
                text = cells[cols[a]]
                v = parse_int(text, path, line, f"AU{a}")
                if v not in (0, 1, _UNKNOWN):
                    raise DatasetError(
                        f"AU{a}: expected 0, 1 or 999 (unknown), got {text.strip()!r}",
                        path=path,
                        row=line,
                    )
                occ[j] = -1 if v == _UNKNOWN else v
            img = self.root / "images" / name
            if check_files and not img.is_file():
                raise DatasetError(f"image file not found: {img}", path=path, row=line)
            samples.append(
                Sample(
                    layout=self.layout,
                    key=f"images/{name}",
                    image_path=img,
                    au_ids=self.au_ids,
                    occurrence=occ,
                )
            )
        self._finish(samples)

    @classmethod
    def detect(cls, root: str | Path) -> bool:
        root = Path(root)
        return (root / "labels.csv").is_file() and (root / "images").is_dir()
