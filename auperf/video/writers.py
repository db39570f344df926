"""Streaming result writers: CSV (one file) and Parquet (a folder of parts), with resume.

A *table* here is a dict of equal-length 1-D NumPy arrays, one per column, in column order.
The pipeline writes one table per chunk of frames, and every chunk holds all the rows of its
frames, so what is on disk is always a sequence of complete frames.

CSV (``.csv``): a header line, then one line per row. Each chunk is formatted in memory and
written with a single ``write`` to a file opened for appending, then flushed to the disk
(``fsync``), so a killed process leaves complete lines (a line cut by a crash during the
write is dropped on resume). Floats are written with 7 significant digits, NaN as an empty
field, booleans as 0/1.

Parquet (a folder, e.g. ``out.parquet/``): one file ``part-<first frame>.parquet`` per chunk,
written to a temporary name and renamed, so a part is either complete or absent.
``pandas.read_parquet("out.parquet")`` and ``pyarrow.dataset`` read the folder as one table.

Resume: :meth:`CsvWriter.resume_point` / :meth:`ParquetWriter.resume_point` read the existing
output and return the frame to restart from and the largest face id in it. The CSV writer
drops the rows of the last frame on disk and restarts at that frame, so a frame cut short in
any way is processed again.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import MediaError, OptionalDependencyError, ParameterError

__all__ = ["CsvWriter", "ParquetWriter", "open_writer", "read_results"]


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def _fmt(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return "" if math.isnan(f) else f"{f:.7g}"
    return str(v)


class CsvWriter:
    """Append tables to a CSV file (see the module docstring).

    Args:
        path: the output file.
        columns: column names, in order (the header).
        resume: keep an existing file with the same header and append to it (after
            :meth:`resume_point`); otherwise an existing file is replaced.

    Raises:
        ParameterError: ``resume`` and the existing file has another header.
    """

    def __init__(self, path: str | Path, columns: list[str], resume: bool = False) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self._fd: int | None = None
        self._resume = bool(resume)
        self._start = 0
        self._max_id = -1
        #: the ``file`` value of the last row kept by a resume (``None``: nothing kept)
        self.resumed_file: str | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume and self.path.is_file() and self.path.stat().st_size > 0:
            self._start, self._max_id = self._prepare_resume()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            self._write_all(",".join(self.columns) + "\n")

    def resume_point(self) -> tuple[int, int]:
        """``(first frame to process, largest face id already written)``; ``(0, -1)`` for a
        new file."""
        return self._start, self._max_id

    def _prepare_resume(self) -> tuple[int, int]:
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        lines = data[:end].decode("utf-8").splitlines()
        if not lines or lines[0].split(",") != self.columns:
            raise ParameterError(
                f"output: {self.path} exists with other columns than this run writes "
                f"(first line {lines[0][:80] if lines else ''!r}); remove it or write elsewhere"
            )
        rows = list(csv.reader(lines[1:]))
        fi = self.columns.index("frame")
        ii = self.columns.index("face_id")
        if not rows:
            os.truncate(self.path, len((lines[0] + "\n").encode()))
            return 0, -1
        last = int(rows[-1][fi])
        if "file" in self.columns:
            self.resumed_file = rows[-1][self.columns.index("file")]
        keep = [k for k, r in enumerate(rows) if int(r[fi]) < last]
        max_id = max((int(r[ii]) for r in rows), default=-1)
        size = len(("\n".join(lines[: 1 + len(keep)]) + "\n").encode())
        os.truncate(self.path, size)
        return last, max_id

    def _write_all(self, text: str) -> None:
        data = text.encode("utf-8")
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        os.fsync(self._fd)

    def write(self, table: dict[str, np.ndarray]) -> None:
        """Append the rows of ``table`` (its keys must be :attr:`columns`) and flush them."""
        if self._fd is None:
            raise ParameterError(f"write: {self.path} is closed")
        if list(table) != self.columns:
            raise ParameterError(f"table: expected columns {self.columns}, got {list(table)}")
        cols = [table[c].tolist() for c in self.columns]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        for row in zip(*cols, strict=True):
            w.writerow([_fmt(v) for v in row])
        if buf.tell():
            self._write_all(buf.getvalue())

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CsvWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ParquetWriter:
    """Write tables as Parquet parts into a folder (see the module docstring).

    Args:
        path: the output folder (created).
        columns: column names, in order.
        resume: keep the existing parts (after :meth:`resume_point`); otherwise existing
            ``part-*.parquet`` files are removed.

    Raises:
        OptionalDependencyError: pyarrow is not installed.
        ParameterError: ``path`` is a file, or ``resume`` and the parts have other columns.
    """

    def __init__(self, path: str | Path, columns: list[str], resume: bool = False) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise OptionalDependencyError(
                "Parquet output: pyarrow is not installed (pip install pyarrow, or auperf[video])"
            ) from None
        self._pa, self._pq = pa, pq
        self.path = Path(path)
        self.columns = list(columns)
        if self.path.exists() and not self.path.is_dir():
            raise ParameterError(f"output: {self.path} is a file; Parquet output is a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        for tmp in self.path.glob("*.tmp"):
            tmp.unlink()
        parts = sorted(self.path.glob("part-*.parquet"))
        self._start, self._max_id = 0, -1
        #: the ``file`` value of the last row kept by a resume (``None``: nothing kept)
        self.resumed_file: str | None = None
        if resume and parts:
            frame_max = -1
            for p in parts:
                t = pq.read_table(p)
                if t.column_names != self.columns:
                    raise ParameterError(
                        f"output: {p} has other columns than this run writes; remove "
                        f"{self.path} or write elsewhere"
                    )
                if t.num_rows:
                    if "file" in t.column_names:
                        self.resumed_file = str(t["file"][t.num_rows - 1].as_py())
                    frame_max = max(frame_max, int(pa.compute.max(t["frame"]).as_py()))
                    self._max_id = max(self._max_id, int(pa.compute.max(t["face_id"]).as_py()))
            self._start = frame_max + 1
        elif not resume:
            for p in parts:
                p.unlink()
        self._closed = False

    def resume_point(self) -> tuple[int, int]:
        """``(first frame to process, largest face id already written)``."""
        return self._start, self._max_id

    def write(self, table: dict[str, np.ndarray]) -> None:
        """Write ``table`` as one part named after its first frame."""
        if self._closed:
            raise ParameterError(f"write: {self.path} is closed")
        if list(table) != self.columns:
            raise ParameterError(f"table: expected columns {self.columns}, got {list(table)}")
        if len(table["frame"]) == 0:
            return
        first = int(table["frame"][0])
        t = self._pa.table({c: self._pa.array(table[c]) for c in self.columns})
        final = self.path / f"part-{first:010d}.parquet"
        tmp = final.with_suffix(".tmp")
        self._pq.write_table(t, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def close(self) -> None:
        """Nothing is buffered; marks the writer closed."""
        self._closed = True

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_writer(path: str | Path, columns: list[str], resume: bool = False) -> Any:
    """A :class:`ParquetWriter` for a ``.parquet``/``.pq`` path, else a :class:`CsvWriter`."""
    p = Path(path)
    if _is_parquet(p):
        return ParquetWriter(p, columns, resume=resume)
    return CsvWriter(p, columns, resume=resume)


def read_results(path: str | Path) -> dict[str, np.ndarray]:
    """Read a result file written by these writers into a table (dict of NumPy arrays).

    Numeric CSV columns become float64 (empty fields NaN) or int64 where every value is an
    integer; ``file``, ``expression`` and other text columns stay str.

    Raises:
        MediaError: the file does not exist, is empty or is not a result table.
    """
    p = Path(path)
    if not p.exists():
        raise MediaError("no such result file", source=p)
    if p.is_dir() or _is_parquet(p):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise OptionalDependencyError(
                "reading Parquet: pyarrow is not installed (pip install pyarrow)"
            ) from None
        parts = sorted(p.glob("part-*.parquet")) if p.is_dir() else [p]
        if not parts:
            raise MediaError("holds no part-*.parquet file", source=p)
        import pyarrow as pa

        t = pa.concat_tables([pq.read_table(x) for x in parts])
        return {c: t[c].to_numpy(zero_copy_only=False) for c in t.column_names}
    with open(p, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or "frame" not in rows[0]:
        raise MediaError("not a result table (no header with a 'frame' column)", source=p)
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        vals = [r[j] for r in body]
        try:
            f = np.array([float(v) if v != "" else math.nan for v in vals], np.float64)
        except ValueError:
            out[name] = np.array(vals, dtype=str)
            continue
        if f.size and np.isfinite(f).all() and (f == np.round(f)).all():
            out[name] = f.astype(np.int64)
        else:
            out[name] = f
    return out
