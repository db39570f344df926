"""open_dataset, layout detection, the landmark sidecar, the error class, the API surface."""

from __future__ import annotations

import numpy as np
import pytest
from _datasets_helpers import draw_face

import auperf.datasets as D
from auperf.datasets import (
    DatasetError,
    EmotioNetWriter,
    available_layouts,
    detect_layout,
    open_dataset,
)
from auperf.errors import AuperfError, ParameterError


def _emotionet(root, rng, n=3, landmarks=True):
    with EmotioNetWriter(root, au_ids=(1, 2)) as w:
        for i in range(n):
            img, lm = draw_face(rng)
            w.add(img, name=f"i{i}", occurrence=[0, 1], landmarks=lm if landmarks else None)


def test_layouts_and_detection(tmp_path, rng):
    assert available_layouts() == ("bp4d", "disfa", "emotionet", "rafdb", "affectnet", "ferplus")
    with pytest.raises(DatasetError, match="matches none of the layouts"):
        detect_layout(tmp_path)
    with pytest.raises(DatasetError, match="dataset root is not a folder"):
        open_dataset(tmp_path / "nope")
    _emotionet(tmp_path / "e", rng)
    assert detect_layout(tmp_path / "e") == "emotionet"
    assert len(open_dataset(tmp_path / "e", layout="emotionet")) == 3
    with pytest.raises(ParameterError, match="layout: expected one of"):
        open_dataset(tmp_path / "e", layout="ck+")
    (tmp_path / "e/ActionUnit_Labels").mkdir()
    with pytest.raises(DatasetError, match=r"matches several layouts \['disfa', 'emotionet'\]"):
        detect_layout(tmp_path / "e")
    # An explicit layout still works on the ambiguous folder.
    assert open_dataset(tmp_path / "e", layout="emotionet").au_ids == (1, 2)


def test_sidecar(tmp_path, rng):
    _emotionet(tmp_path, rng)
    side = tmp_path / D.LANDMARKS_SIDECAR
    lines = side.read_text().splitlines()
    assert lines[0] == "path,frame,x0,y0,x1,y1,x2,y2,x3,y3,x4,y4"
    assert lines[1].startswith("images/i0.jpg,,")
    ds = open_dataset(tmp_path)
    assert np.isfinite(ds.landmarks_array()).all()
    assert open_dataset(tmp_path, landmarks=False)[0].landmarks is None
    side.write_text("\n".join(lines[:2] + [lines[1]]) + "\n")
    with pytest.raises(
        DatasetError, match=r"auperf_landmarks\.csv, row 3: duplicate entry for 'images/i0\.jpg'"
    ):
        open_dataset(tmp_path)
    side.write_text(lines[0] + "\nimages/i0.jpg,,1,2,3\n")
    with pytest.raises(
        DatasetError, match=r"auperf_landmarks\.csv, row 2: expected 12 columns, got 5"
    ):
        open_dataset(tmp_path)
    side.write_text(lines[0] + "\nimages/i0.jpg,,1,2,3,4,5,6,7,8,9,nan\n")
    with pytest.raises(DatasetError, match=r"row 2: y4: expected a finite number, got 'nan'"):
        open_dataset(tmp_path)
    side.unlink()
    ds = open_dataset(tmp_path)
    assert ds[0].landmarks is None and np.isnan(ds.landmarks_array()).all()


def test_error_class(tmp_path):
    e = DatasetError("bad", path=tmp_path / "x.csv", row=3)
    assert isinstance(e, AuperfError) and isinstance(e, ValueError)
    assert str(e).endswith("x.csv, row 3: bad") and e.row == 3 and e.path.name == "x.csv"
    assert str(DatasetError("plain")) == "plain"


def test_reader_indexing(tmp_path, rng):
    _emotionet(tmp_path, rng, n=2)
    ds = open_dataset(tmp_path)
    assert ds.load_image(-1).dtype == np.uint8
    with pytest.raises(ParameterError, match=r"sample: index 2 outside \[0, 2\)"):
        ds.load_image(2)
    assert "EmotioNetReader" in repr(ds) and len(ds.samples) == 2
    (tmp_path / "images/i1.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"i1\.jpg: not a readable image"):
        ds.load_image(1)


def test_api_surface():
    expected = {
        "EXPRESSIONS",
        "LANDMARKS_SIDECAR",
        "Sample",
        "DatasetReader",
        "DatasetWriter",
        "DatasetError",
        "open_dataset",
        "available_layouts",
        "detect_layout",
        "BP4D_AUS",
        "BP4D_INTENSITY_AUS",
        "BP4DReader",
        "BP4DWriter",
        "DISFA_AUS",
        "DISFA_BENCHMARK_AUS",
        "DISFAReader",
        "DISFAWriter",
        "EMOTIONET_AUS",
        "EmotioNetReader",
        "EmotioNetWriter",
        "RAFDB_CODES",
        "RAFDBReader",
        "RAFDBWriter",
        "AFFECTNET_CODES",
        "AffectNetReader",
        "AffectNetWriter",
        "FERPLUS_CLASSES",
        "FERPlusReader",
        "FERPlusWriter",
        "NoisyLabels",
        "ASYMMETRIC_EXPRESSION_MAP",
        "flip_labels",
        "weak_model_labels",
        "flip_expressions",
    }
    assert set(D.__all__) == expected
    assert all(hasattr(D, n) for n in expected)
    assert D.EXPRESSIONS[:7] == (
        "neutral",
        "happiness",
        "sadness",
        "surprise",
        "fear",
        "disgust",
        "anger",
    )


def test_context_manager_releases_video(tmp_path):
    from auperf.datasets import DISFAReader, DISFAWriter

    with DISFAWriter(tmp_path, au_ids=(1,)) as w:
        for f in (1, 2):
            w.add(np.full((16, 16, 3), 80, np.uint8), subject="SN001", frame=f, intensity=[0])
    with DISFAReader(tmp_path, aus=[1]) as ds:
        ds.load_image(1)
        assert ds._capture is not None
    assert ds._capture is None
    assert ds.load_image(0).shape == (16, 16, 3)  # reopens on demand


def test_subjects_and_subset(tmp_path, rng):
    from auperf.datasets import BP4DWriter
    from auperf.errors import ShapeError

    img, _ = draw_face(rng)
    with BP4DWriter(tmp_path) as w:
        for subject in ("F002", "F001", "M001"):
            for f in (1, 2):
                w.add(img, subject=subject, task="T1", frame=f, occurrence=np.zeros(12))
    ds = open_dataset(tmp_path)
    assert ds.subjects == ("F001", "F002", "M001")
    held = ds.subset(lambda s: s.subject == "M001")
    assert len(held) == 2 and held.subjects == ("M001",) and len(ds) == 6
    assert held.au_ids == ds.au_ids and held.load_image(0).shape == img.shape
    mask = np.array([s.frame == 1 for s in ds])
    assert [s.frame for s in ds.subset(mask)] == [1, 1, 1]
    assert [s.key for s in ds.subset([5, 0])] == [ds[5].key, ds[0].key]
    with pytest.raises(ShapeError, match=r"selection: expected a boolean mask of shape \(6,\)"):
        ds.subset(np.ones(3, bool))
    with pytest.raises(ParameterError, match=r"selection: indices must lie in \[-6, 6\)"):
        ds.subset([7])
