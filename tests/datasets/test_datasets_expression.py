"""RAF-DB, AffectNet-style and FERPlus-style layouts."""

from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import close_images, draw_face

from auperf.datasets import (
    EXPRESSIONS,
    AffectNetReader,
    AffectNetWriter,
    DatasetError,
    FERPlusReader,
    FERPlusWriter,
    RAFDBReader,
    RAFDBWriter,
    open_dataset,
)
from auperf.errors import ValueRangeError


def test_rafdb_round_trip(tmp_path, rng):
    truth = {}
    with RAFDBWriter(tmp_path) as w:
        for i in range(10):
            img, lm = draw_face(rng, 64, 64)
            split = "train" if i < 7 else "test"
            expr = int(rng.integers(0, 7))
            name = w.add(
                img, split=split, expression=expr, landmarks=lm, gender=i % 3, race=1, age=3
            )
            truth[name] = (img, expr, lm, i % 3)
    assert name == "test_00003.jpg"
    lines = (tmp_path / "basic/EmoLabel/list_patition_label.txt").read_text().splitlines()
    assert lines[0].startswith("train_00001.jpg ") and len(lines) == 10
    ds = open_dataset(tmp_path)
    assert isinstance(ds, RAFDBReader) and ds.au_ids == () and len(ds) == 10
    for s in ds:
        img, expr, lm, gender = truth[s.image_path.name]
        assert s.expression == expr and s.split == s.image_path.name.split("_")[0]
        np.testing.assert_array_equal(s.landmarks, lm)
        assert (
            s.attributes["gender"] == gender
            and s.attributes["race"] == 1
            and s.attributes["age"] == 3
        )
        assert close_images(ds.load_image(s), img)
    aligned = RAFDBReader(tmp_path / "basic", image="aligned", split="test")
    assert len(aligned) == 3 and aligned[0].landmarks is None
    crop = aligned.load_image(0)
    assert crop.shape == (100, 100, 3)


def test_rafdb_alignment_puts_points_on_template(tmp_path):
    # A black image with white dots at the landmarks: the aligned crop must show the dots at the
    # template positions.
    from auperf.datasets.rafdb import _ALIGNED_TEMPLATE

    img = np.zeros((120, 160, 3), np.uint8)
    lm = np.array([[60.0, 50.0], [100.0, 52.0], [80.0, 72.0], [64.0, 92.0], [96.0, 93.0]])
    for x, y in lm:
        img[int(round(y)) - 1 : int(round(y)) + 2, int(round(x)) - 1 : int(round(x)) + 2] = 255
    with RAFDBWriter(tmp_path, jpeg_quality=100) as w:
        w.add(img, split="train", expression=0, landmarks=lm)
    crop = RAFDBReader(tmp_path, image="aligned").load_image(0)[..., 0].astype(float)
    for x, y in _ALIGNED_TEMPLATE:
        xi, yi = int(round(x)), int(round(y))
        assert crop[yi - 2 : yi + 3, xi - 2 : xi + 3].max() > 100


def test_rafdb_errors(tmp_path, rng):
    img, lm = draw_face(rng)
    with RAFDBWriter(tmp_path) as w:
        w.add(img, split="train", expression=1, landmarks=lm)
        w.add(img, split="train", expression=2)
    p = tmp_path / "basic/EmoLabel/list_patition_label.txt"
    assert p.read_text() == "train_00001.jpg 4\ntrain_00002.jpg 5\n"  # happiness 4, sadness 5
    p.write_text("train_00001.jpg 4\ntrain_00002.jpg 8\n")
    with pytest.raises(
        DatasetError, match=r"list_patition_label\.txt, row 2: label: expected a code 1-7, got '8'"
    ):
        RAFDBReader(tmp_path)
    p.write_text("train_00001.jpg 4\ntrain_00003.jpg 5\n")
    with pytest.raises(DatasetError, match=r"row 2: image file not found"):
        RAFDBReader(tmp_path)
    p.write_text("train_00001.jpg 4\n")
    m = tmp_path / "basic/Annotation/manual/train_00001_manu_attri.txt"
    m.write_text("1 2\n3 4\n5 6\n7 8\n9 x\n0\n0\n0\n")
    with pytest.raises(
        DatasetError,
        match=r"train_00001_manu_attri\.txt, row 5: landmark 4: expected a number, got 'x'",
    ):
        RAFDBReader(tmp_path)
    m.write_text("1 2\n3 4\n5 6\n7 8\n9 10\n0\n0\n7\n")
    with pytest.raises(DatasetError, match=r"row 8: age: expected a code 0-4, got '7'"):
        RAFDBReader(tmp_path)
    w = RAFDBWriter(tmp_path / "other")
    with pytest.raises(ValueRangeError, match="expression: expected -1 .* got 7"):
        w.add(img, split="train", expression=7)


def test_affectnet_round_trip_and_errors(tmp_path, rng):
    truth = {}
    with AffectNetWriter(tmp_path) as w:
        for i in range(9):
            img, lm = draw_face(rng)
            expr = i - 1  # -1 (uncertain) .. 7 (contempt)
            w.add(
                img,
                split="train" if i < 6 else "val",
                name=f"f{i}",
                expression=expr,
                valence=0.25,
                arousal=-0.5,
                landmarks=lm,
            )
            truth[f"f{i}.jpg"] = (img, expr, lm)
    ds = open_dataset(tmp_path)
    assert isinstance(ds, AffectNetReader) and len(ds) == 9
    for s in ds:
        img, expr, lm = truth[s.image_path.name]
        assert s.expression == expr and s.attributes["valence"] == 0.25
        assert s.attributes["affectnet_code"] == (9 if expr < 0 else expr)
        np.testing.assert_array_equal(s.landmarks, lm)
        assert close_images(ds.load_image(s), img)
    assert len(AffectNetReader(tmp_path, split="val")) == 3
    # 68-point landmarks in the CSV become 5 points.
    p = tmp_path / "Manually_Annotated_file_lists/validation.csv"
    rows = p.read_text().splitlines()
    pts68 = rng.uniform(0, 40, size=(68, 2))
    cells = rows[1].split(",")
    cells[5] = ";".join(f"{v:.3f}" for v in pts68.reshape(-1))
    p.write_text("\n".join([rows[0], ",".join(cells)]) + "\n")
    s = AffectNetReader(tmp_path, split="val", landmarks=False)[0]
    np.testing.assert_allclose(s.landmarks[0], pts68[36:42].mean(0), atol=1e-3)
    np.testing.assert_allclose(s.landmarks[4], pts68[54], atol=1e-3)
    cells[6] = "11"
    p.write_text("\n".join([rows[0], ",".join(cells)]) + "\n")
    with pytest.raises(
        DatasetError, match=r"validation\.csv, row 2: expression: expected a code 0-10, got '11'"
    ):
        AffectNetReader(tmp_path)


def test_ferplus_round_trip_and_errors(tmp_path, rng):
    with FERPlusWriter(tmp_path) as w:
        imgs = []
        for i in range(8):
            img, _ = draw_face(rng, 48, 48)
            imgs.append(img)
            w.add(img, split=("train", "valid", "test")[i % 3], expression=i)
        w.add(imgs[0], split="train", votes=np.array([4, 4, 0, 0, 0, 0, 0, 0, 2, 0]))  # tie
        w.add(imgs[0], split="train", votes=np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 9]))  # not a face
    ds = open_dataset(tmp_path)
    assert isinstance(ds, FERPlusReader)
    np.testing.assert_array_equal(ds.expression_array(), list(range(8)) + [-1, -1])
    assert [s.split for s in ds][:3] == ["train", "valid", "test"]
    grey = imgs[0] @ np.array([0.299, 0.587, 0.114])
    got = ds.load_image(0)
    assert got.shape == (48, 48, 3) and np.abs(got[..., 0] - grey).max() < 2
    assert EXPRESSIONS[ds[3].expression] == "surprise"
    p = tmp_path / "fer2013new.csv"
    rows = p.read_text().splitlines()
    rows.insert(2, "Training,,10,0,0,0,0,0,0,0,0,0")  # a dropped image: skipped
    rows[3] = rows[3].replace("PublicTest", "Public")
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"fer2013new\.csv, row 4: Usage: expected one of"):
        FERPlusReader(tmp_path)
