from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import close_images, draw_face

from auperf.datasets import DISFA_AUS, DatasetError, DISFAReader, DISFAWriter, open_dataset
from auperf.errors import NonFiniteError, ValueRangeError


def _make(root, rng, media, n=5):
    truth = {}
    with DISFAWriter(root, media=media) as w:
        for subject in ("SN001", "SN002"):
            for f in range(1, n + 1):
                img, lm = draw_face(rng)
                inten = rng.integers(0, 6, size=len(DISFA_AUS)).astype(np.float32)
                w.add(img, subject=subject, frame=f, intensity=inten, landmarks=lm)
                truth[(subject, f)] = (img, inten, lm)
    return truth


@pytest.mark.parametrize("media", ["video", "frames"])
def test_round_trip(tmp_path, rng, media):
    truth = _make(tmp_path, rng, media)
    ds = open_dataset(tmp_path)
    assert type(ds) is DISFAReader and ds.au_ids == DISFA_AUS and len(ds) == len(truth)
    if media == "video":
        assert (tmp_path / "Videos_LeftCamera/LeftVideoSN001_comp.avi").is_file()
        assert ds[0].video_path is not None and ds[0].image_path is None
        assert ds[0].key == "Videos_LeftCamera/LeftVideoSN001_comp.avi#1"
    else:
        assert (tmp_path / "Images_LeftCamera/SN001/00001.png").is_file()
    for s in ds:
        img, inten, lm = truth[(s.subject, s.frame)]
        np.testing.assert_array_equal(s.intensity, inten)
        np.testing.assert_array_equal(s.occurrence, (inten >= 2).astype(np.int8))
        np.testing.assert_array_equal(s.landmarks, lm)
        got = ds.load_image(s)
        if media == "frames":
            np.testing.assert_array_equal(got, img)  # PNG is lossless
        else:
            assert close_images(got, img, tol=8.0)  # MJPG is lossy
    # Sequential decoding gives the same frames as seeking.
    for s, im in ds.iter_images():
        np.testing.assert_array_equal(im, ds.load_image(s))


def test_seek_finds_the_right_frame(tmp_path):
    with DISFAWriter(tmp_path) as w:
        for f in range(1, 8):
            w.add(
                np.full((32, 32, 3), 30 * f, np.uint8),
                subject="SN001",
                frame=f,
                intensity=np.zeros(12),
            )
    ds = DISFAReader(tmp_path)
    for i in (6, 2, 4, 0):
        assert abs(float(ds.load_image(i).mean()) - 30 * (i + 1)) < 4


def test_label_text_and_threshold(tmp_path, rng):
    img, _ = draw_face(rng)
    with DISFAWriter(tmp_path, media="frames", au_ids=(1, 12)) as w:
        w.add(img, subject="SN001", frame=1, intensity=[0, 3])
        w.add(img, subject="SN001", frame=2, intensity=[1, 2.5])
    assert (tmp_path / "ActionUnit_Labels/SN001/SN001_au12.txt").read_text() == "1,3\n2,2.5\n"
    ds = DISFAReader(tmp_path, aus=[1, 12], occurrence_threshold=1)
    np.testing.assert_array_equal(ds.occurrence_matrix(), [[0, 1], [1, 1]])
    with pytest.raises(
        DatasetError, match=r"SN001_au2\.txt: AU2 requested but subject SN001 has no label file"
    ):
        DISFAReader(tmp_path)


def test_bad_label_files(tmp_path, rng):
    img, _ = draw_face(rng)
    with DISFAWriter(tmp_path, media="frames", au_ids=(1, 2)) as w:
        for f in (1, 2, 3):
            w.add(img, subject="SN001", frame=f, intensity=[0, 0])
    p = tmp_path / "ActionUnit_Labels/SN001/SN001_au2.txt"
    p.write_text("1,0\n2,6\n3,0\n")
    with pytest.raises(
        DatasetError, match=r"SN001_au2\.txt, row 2: AU2 intensity: expected 0-5, got '6'"
    ):
        DISFAReader(tmp_path, aus=[1, 2])
    p.write_text("1,0\n2,0\n")
    with pytest.raises(
        DatasetError, match=r"SN001_au2\.txt: frames differ from SN001_au1\.txt: frame 3"
    ):
        DISFAReader(tmp_path, aus=[1, 2])
    p.write_text("0,0\n")
    with pytest.raises(DatasetError, match=r"row 1: frame: DISFA frames start at 1, got 0"):
        DISFAReader(tmp_path, aus=[1, 2])
    p.write_text("1,0\n2,0\n3,0\n")
    (tmp_path / "Images_LeftCamera/SN001/00003.png").unlink()
    with pytest.raises(DatasetError, match=r"SN001_au1\.txt, row 3: frame 3: no image"):
        DISFAReader(tmp_path, aus=[1, 2])


def test_video_shorter_than_labels(tmp_path, rng):
    img, _ = draw_face(rng)
    with DISFAWriter(tmp_path, au_ids=(1,)) as w:
        for f in (1, 2):
            w.add(img, subject="SN001", frame=f, intensity=[0])
    (tmp_path / "ActionUnit_Labels/SN001/SN001_au1.txt").write_text("1,0\n2,0\n3,1\n")
    with pytest.raises(
        DatasetError, match=r"SN001_au1\.txt, row 3: frame 3 is beyond the 2 frames"
    ):
        DISFAReader(tmp_path, aus=[1])


def test_writer_rejects(tmp_path, rng):
    img, _ = draw_face(rng)
    w = DISFAWriter(tmp_path)
    with pytest.raises(NonFiniteError, match="DISFA has no unknown code"):
        w.add(img, subject="SN001", frame=1, intensity=[np.nan] + [0] * 11)
    with pytest.raises(ValueRangeError, match="subject SN001 expects frame 1 next, got 2"):
        w.add(img, subject="SN001", frame=2, intensity=np.zeros(12))
    w.close()
