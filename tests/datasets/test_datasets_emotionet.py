from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import close_images, draw_face

from auperf.datasets import (
    EMOTIONET_AUS,
    DatasetError,
    EmotioNetReader,
    EmotioNetWriter,
    open_dataset,
)


def test_round_trip(tmp_path, rng):
    truth = {}
    with EmotioNetWriter(tmp_path) as w:
        for i in range(12):
            img, lm = draw_face(rng, 36, 44)
            occ = rng.integers(-1, 2, size=12).astype(np.int8)
            w.add(img, name=f"img{i:03d}", occurrence=occ, landmarks=lm if i % 2 else None)
            truth[f"images/img{i:03d}.jpg"] = (img, occ, lm if i % 2 else None)
    ds = open_dataset(tmp_path)
    assert isinstance(ds, EmotioNetReader) and ds.au_ids == EMOTIONET_AUS
    for s in ds:
        img, occ, lm = truth[s.key]
        np.testing.assert_array_equal(s.occurrence, occ)
        if lm is None:
            assert s.landmarks is None
        else:
            np.testing.assert_array_equal(s.landmarks, lm)
        assert close_images(ds.load_image(s), img)
    header, first = (tmp_path / "labels.csv").read_text().splitlines()[:2]
    assert header == "image,AU1,AU2,AU4,AU5,AU6,AU9,AU12,AU17,AU20,AU25,AU26,AU43"
    assert first.split(",")[0] == "img000.jpg"
    assert set(first.split(",")[1:]) <= {"0", "1", "999"}


def test_errors(tmp_path, rng):
    img, _ = draw_face(rng)
    with EmotioNetWriter(tmp_path, au_ids=(1, 12)) as w:
        w.add(img, name="a", occurrence=[1, 0])
        w.add(img, name="b", occurrence=[-1, 1])
    assert (tmp_path / "labels.csv").read_text() == "image,AU1,AU12\na.jpg,1,0\nb.jpg,999,1\n"
    np.testing.assert_array_equal(EmotioNetReader(tmp_path).occurrence_matrix(), [[1, 0], [-1, 1]])
    with pytest.raises(
        DatasetError, match=r"labels\.csv, row 1: header: requested AUs \[4\] have no column"
    ):
        EmotioNetReader(tmp_path, aus=[1, 4])
    p = tmp_path / "labels.csv"
    p.write_text("image,AU1,AU12\na.jpg,1,0\nb.jpg,99,1\n")
    with pytest.raises(
        DatasetError, match=r"labels\.csv, row 3: AU1: expected 0, 1 or 999 \(unknown\), got '99'"
    ):
        EmotioNetReader(tmp_path)
    p.write_text("image,AU1,AU12\na.jpg,1,0\nc.jpg,0,1\n")
    with pytest.raises(DatasetError, match=r"labels\.csv, row 3: image file not found"):
        EmotioNetReader(tmp_path)
    p.write_text("name,AU1\n")
    with pytest.raises(DatasetError, match=r"row 1: header: expected an 'image' column"):
        EmotioNetReader(tmp_path)
