from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import close_images, draw_face

from auperf.datasets import BP4D_AUS, BP4DReader, BP4DWriter, DatasetError, open_dataset
from auperf.errors import DTypeError, ParameterError, ShapeError, ValueRangeError


def _make(root, rng, *, n_frames=4, intensity=True):
    truth = {}
    with BP4DWriter(root) as w:
        for subject in ("F001", "M002"):
            for task in ("T1", "T2"):
                for f in range(10, 10 + n_frames):
                    img, lm = draw_face(rng)
                    occ = rng.integers(-1, 2, size=len(BP4D_AUS)).astype(np.int8)
                    inten = rng.integers(0, 6, size=len(BP4D_AUS)).astype(np.float32)
                    inten[rng.random(len(BP4D_AUS)) < 0.2] = np.nan
                    w.add(
                        img,
                        subject=subject,
                        task=task,
                        frame=f,
                        occurrence=occ,
                        intensity=inten if intensity else None,
                        landmarks=lm,
                    )
                    truth[(subject, task, f)] = (img, occ, inten, lm)
    return truth


def test_round_trip(tmp_path, rng):
    truth = _make(tmp_path, rng)
    ds = BP4DReader(tmp_path)
    assert ds.au_ids == BP4D_AUS
    assert len(ds) == len(truth)
    int_cols = [BP4D_AUS.index(a) for a in (6, 10, 12, 14, 17)]
    other = [j for j in range(len(BP4D_AUS)) if j not in int_cols]
    for s in ds:
        img, occ, inten, lm = truth[(s.subject, s.sequence, s.frame)]
        np.testing.assert_array_equal(s.occurrence, occ)
        assert s.occurrence.dtype == np.int8
        np.testing.assert_array_equal(s.intensity[int_cols], inten[int_cols])  # NaN == NaN here
        assert np.isnan(s.intensity[other]).all()  # AUs without intensity files are unknown
        np.testing.assert_array_equal(s.landmarks, lm)  # the sidecar round-trips exactly
        assert close_images(ds.load_image(s), img)
    occ = ds.occurrence_matrix()
    assert occ.shape == (len(truth), 12) and (occ == -1).any()  # unknowns stay -1, never 0


def test_csv_text_and_unknown_code(tmp_path, rng):
    img, _ = draw_face(rng)
    occ = np.zeros(12, np.int8)
    occ[0] = -1
    occ[1] = 1
    with BP4DWriter(tmp_path) as w:
        w.add(img, subject="F001", task="T1", frame=7, occurrence=occ)
    lines = (tmp_path / "AUCoding/AU_OCC/F001_T1.csv").read_text().splitlines()
    assert lines[0] == "0,1,2,4,6,7,10,12,14,15,17,23,24"
    assert lines[1] == "7,9,1,0,0,0,0,0,0,0,0,0,0"
    assert (tmp_path / "Sequences/F001/T1/0007.jpg").is_file()
    assert not (tmp_path / "AUCoding/AU_INT").exists()  # no intensity given, none written


def test_aus_subset_and_missing_column(tmp_path, rng):
    _make(tmp_path, rng, n_frames=2, intensity=False)
    ds = open_dataset(tmp_path, aus=[12, 1])
    assert ds.au_ids == (12, 1) and ds[0].occurrence.shape == (2,)
    with pytest.raises(
        DatasetError, match=r"F001_T1\.csv, row 1: header: requested AUs \[9\]"
    ) as e:
        BP4DReader(tmp_path, aus=[1, 9])
    assert e.value.row == 1 and e.value.path.name == "F001_T1.csv"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("11,2,0,0,0,0,0,0,0,0,0,0,0", r"row 3: AU1: expected 0, 1 or 9 \(unknown\), got '2'"),
        ("11,x,0,0,0,0,0,0,0,0,0,0,0", r"row 3: AU1: expected an integer, got 'x'"),
        ("11,0,0", r"row 3: expected 13 cells, got 3"),
        ("10,0,0,0,0,0,0,0,0,0,0,0,0", r"row 3: frame 10 appears twice \(first at row 2\)"),
    ],
)
def test_bad_occurrence_rows(tmp_path, rng, line, message):
    img, _ = draw_face(rng)
    with BP4DWriter(tmp_path) as w:
        w.add(img, subject="F001", task="T1", frame=10, occurrence=np.zeros(12, np.int8))
        w.add(img, subject="F001", task="T1", frame=11, occurrence=np.zeros(12, np.int8))
    p = tmp_path / "AUCoding/AU_OCC/F001_T1.csv"
    rows = p.read_text().splitlines()
    rows[2] = line
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=message):
        BP4DReader(tmp_path)


def test_bad_intensity_and_missing_image(tmp_path, rng):
    img, _ = draw_face(rng)
    with BP4DWriter(tmp_path) as w:
        for f in (1, 2):
            w.add(
                img,
                subject="F001",
                task="T1",
                frame=f,
                occurrence=np.zeros(12, np.int8),
                intensity=np.ones(12, np.float32),
            )
    p = tmp_path / "AUCoding/AU_INT/AU12/F001_T1_AU12.csv"
    assert p.read_text() == "1,1\n2,1\n"
    p.write_text("1,1\n2,7\n")
    with pytest.raises(
        DatasetError, match=r"F001_T1_AU12\.csv, row 2: AU12 intensity: expected 0-5 or 9"
    ):
        BP4DReader(tmp_path)
    p.write_text("1,1\n2,9\n")
    assert np.isnan(BP4DReader(tmp_path)[1].intensity[BP4D_AUS.index(12)])
    (tmp_path / "Sequences/F001/T1/0002.jpg").unlink()
    with pytest.raises(DatasetError, match=r"F001_T1\.csv, row 3: frame 2: no image"):
        BP4DReader(tmp_path)
    assert len(BP4DReader(tmp_path, missing_images="skip")) == 1


def test_missing_folder_and_header(tmp_path, rng):
    with pytest.raises(DatasetError, match="AU_OCC: occurrence folder not found"):
        BP4DReader(tmp_path)
    (tmp_path / "AUCoding/AU_OCC").mkdir(parents=True)
    (tmp_path / "AUCoding/AU_OCC/F001_T1.csv").write_text("frame,AU1,smile\n")
    with pytest.raises(
        DatasetError, match=r"row 1: header: expected an AU number such as 12 or AU12, got 'smile'"
    ):
        BP4DReader(tmp_path)


def test_writer_rejects_bad_input(tmp_path, rng):
    img, _ = draw_face(rng)
    w = BP4DWriter(tmp_path)
    with pytest.raises(DTypeError, match="image: expected dtype uint8, got float32"):
        w.add(img.astype(np.float32), subject="F001", task="T1", frame=1, occurrence=np.zeros(12))
    with pytest.raises(ShapeError, match=r"image: expected shape \(H, W, 3\), got \(48, 40\)"):
        w.add(img[..., 0], subject="F001", task="T1", frame=1, occurrence=np.zeros(12))
    with pytest.raises(ValueRangeError, match="occurrence: AU2 occurrence must be 0, 1 or -1"):
        w.add(img, subject="F001", task="T1", frame=1, occurrence=[0, 2] + [0] * 10)
    with pytest.raises(ValueRangeError, match="intensity: AU1 intensity must lie in"):
        w.add(
            img,
            subject="F001",
            task="T1",
            frame=1,
            occurrence=np.zeros(12),
            intensity=[6.0] + [0] * 11,
        )
    with pytest.raises(ShapeError, match=r"occurrence: expected shape \(12,\)"):
        w.add(img, subject="F001", task="T1", frame=1, occurrence=np.zeros(5))
    with pytest.raises(ParameterError, match="subject: must not contain '_'"):
        w.add(img, subject="F_1", task="T1", frame=1, occurrence=np.zeros(12))
    w.add(img, subject="F001", task="T1", frame=1, occurrence={a: 0 for a in BP4D_AUS})
    with pytest.raises(ParameterError, match="already added"):
        w.add(img, subject="F001", task="T1", frame=1, occurrence=np.zeros(12))
    w.close()
    with pytest.raises(DatasetError, match="dataset root is not empty"):
        BP4DWriter(tmp_path)


def test_missing_intensity_file_is_unknown_and_logged(tmp_path, rng, caplog):
    img, _ = draw_face(rng)
    with BP4DWriter(tmp_path) as w:
        for task in ("T1", "T2"):
            w.add(
                img,
                subject="F001",
                task=task,
                frame=1,
                occurrence=np.zeros(12),
                intensity=np.full(12, 3.0),
            )
    (tmp_path / "AUCoding/AU_INT/AU06/F001_T2_AU06.csv").unlink()
    with caplog.at_level("WARNING", logger="auperf"):
        ds = BP4DReader(tmp_path)
    assert "1 sequences have no AU06 intensity file" in caplog.text
    j = BP4D_AUS.index(6)
    assert ds[0].intensity[j] == 3.0 and np.isnan(ds[1].intensity[j])
    assert np.isnan(BP4DReader(tmp_path, intensity=False).intensity_matrix()).all()
