"""CSV and Parquet writers: round trip, per-chunk flush, resume after a cut."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import MediaError, ParameterError
from auperf.video.writers import CsvWriter, ParquetWriter, open_writer, read_results

COLS = ["file", "frame", "face_id", "timestamp", "success", "AU12_p"]


def _table(frames, ids, p):
    n = len(frames)
    return {
        "file": np.array(["a,b.mp4"] * n),  # a comma: the CSV must quote it
        "frame": np.asarray(frames, np.int64),
        "face_id": np.asarray(ids, np.int64),
        "timestamp": np.asarray(frames, np.float64) / 25.0,
        "success": (np.asarray(ids) >= 0).astype(np.int64),
        "AU12_p": np.asarray(p, np.float64),
    }


def test_csv_round_trip_and_nan_as_empty(tmp_path):
    path = tmp_path / "out.csv"
    with CsvWriter(path, COLS) as w:
        w.write(_table([0, 0, 1], [1, 2, -1], [0.25, 0.123456789, np.nan]))
        w.write(_table([2], [1], [1.0]))
    text = path.read_text().splitlines()
    assert text[0] == ",".join(COLS)
    assert text[3] == '"a,b.mp4",1,-1,0.04,0,'
    r = read_results(path)
    np.testing.assert_array_equal(r["frame"], [0, 0, 1, 2])
    np.testing.assert_array_equal(r["face_id"], [1, 2, -1, 1])
    np.testing.assert_allclose(r["AU12_p"], [0.25, 0.1234568, np.nan, 1.0], rtol=1e-7)
    assert list(r["file"]) == ["a,b.mp4"] * 4
    import pandas as pd

    df = pd.read_csv(path)
    assert list(df.columns) == COLS and df["AU12_p"].isna().sum() == 1


def test_csv_resume_drops_a_cut_line_and_redoes_the_last_frame(tmp_path):
    path = tmp_path / "out.csv"
    with CsvWriter(path, COLS) as w:
        w.write(_table([0, 1, 1, 2, 2], [1, 1, 2, 1, 2], [0.1, 0.2, 0.3, 0.4, 0.5]))
    with open(path, "a") as fh:
        fh.write('"a,b.mp4",3,1,0.12,1,0.')  # a line cut by a crash: no newline
    w = CsvWriter(path, COLS, resume=True)
    assert w.resume_point() == (2, 2)  # frame 2 is done again; ids so far up to 2
    w.write(_table([2, 3], [3, 3], [0.9, 0.8]))
    w.close()
    r = read_results(path)
    np.testing.assert_array_equal(r["frame"], [0, 1, 1, 2, 3])
    np.testing.assert_array_equal(r["face_id"], [1, 1, 2, 3, 3])
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(ln.count(b",") == 6 for ln in lines[1:-1])


def test_csv_resume_rejects_other_columns_and_overwrite_replaces(tmp_path):
    path = tmp_path / "out.csv"
    CsvWriter(path, COLS).close()
    with pytest.raises(ParameterError, match="other columns"):
        CsvWriter(path, COLS + ["AU06_p"], resume=True)
    with CsvWriter(path, COLS, resume=True) as w:
        assert w.resume_point() == (0, -1)
    with CsvWriter(path, COLS) as w:
        w.write(_table([0], [1], [0.5]))
    with CsvWriter(path, COLS, resume=False):
        pass
    assert path.read_text() == ",".join(COLS) + "\n"
    with pytest.raises(ParameterError, match="expected columns"):
        CsvWriter(path, COLS).write({"frame": np.zeros(1)})


def test_parquet_parts_round_trip_and_resume(tmp_path):
    import pandas as pd

    path = tmp_path / "out.parquet"
    w = open_writer(path, COLS)
    assert isinstance(w, ParquetWriter)
    w.write(_table([0, 0, 1], [1, 2, -1], [0.25, 0.5, np.nan]))
    w.write(_table([2, 3], [1, 4], [0.75, 1.0]))
    w.close()
    assert sorted(p.name for p in path.iterdir()) == [
        "part-0000000000.parquet",
        "part-0000000002.parquet",
    ]
    df = pd.read_parquet(path).sort_values(["frame", "face_id"])
    assert list(df.columns) == COLS
    np.testing.assert_array_equal(df["face_id"], [1, 2, -1, 1, 4])
    (path / "part-0000000004.tmp").write_bytes(b"half written")
    w = ParquetWriter(path, COLS, resume=True)
    assert w.resume_point() == (4, 4)
    assert not list(path.glob("*.tmp"))
    r = read_results(path)
    np.testing.assert_array_equal(r["frame"], [0, 0, 1, 2, 3])
    with pytest.raises(ParameterError, match="is a file"):
        ParquetWriter(_file(tmp_path), COLS)


def _file(tmp_path):
    p = tmp_path / "plain.parquet"
    p.write_text("x")
    return p


def test_read_results_errors(tmp_path):
    with pytest.raises(MediaError, match="no such result file"):
        read_results(tmp_path / "none.csv")
    (tmp_path / "junk.csv").write_text("a,b\n1,2\n")
    with pytest.raises(MediaError, match="not a result table"):
        read_results(tmp_path / "junk.csv")


def _frames_table(first, last):
    frames, ids, p = [], [], []
    for f in range(first, last):
        for k in range(f % 3):  # 0, 1 or 2 faces; a frame without faces gets one row
            frames.append(f)
            ids.append(k + 1)
            p.append((f * 7 + k) % 10 / 10)
        if f % 3 == 0:
            frames.append(f)
            ids.append(-1)
            p.append(np.nan)
    return _table(frames, ids, p)


def test_resume_after_a_cut_at_any_byte_gives_the_uninterrupted_file(tmp_path):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    full = tmp_path / "full.csv"
    with CsvWriter(full, COLS) as w:
        for a in range(0, 12, 4):
            w.write(_frames_table(a, a + 4))
    want = full.read_bytes()
    header = len(want.split(b"\n")[0]) + 1

    @settings(max_examples=40, deadline=None)
    @given(cut=st.integers(min_value=header, max_value=len(want)))
    def check(cut):
        path = tmp_path / "cut.csv"
        path.write_bytes(want[:cut])  # what a kill at any byte of any write could leave
        with CsvWriter(path, COLS, resume=True) as w:
            start, _ = w.resume_point()
            w.write(_frames_table(start, 12))
        assert path.read_bytes() == want

    check()
