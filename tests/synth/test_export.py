"""write_dataset: rendered data in each public layout reads back with the exact labels."""

from __future__ import annotations

import numpy as np
import pytest

from auperf import datasets as ds
from auperf import errors
from auperf.synth import ACTIVE_LEVEL, FaceRenderer, au_values, render_sequence, write_dataset


def _sequence(subject: int, frames: int, size: int, seed: int):
    return render_sequence(
        FaceRenderer(seed=seed, size=size),
        frames,
        fps=5.0,
        seed=seed * 1000 + subject,
        track_id=subject,
    ).frames


def test_bp4d_layout_roundtrip(tmp_path):
    root = write_dataset(
        tmp_path / "bp4d", "bp4d", subjects=2, frames_per_subject=30, size=64, fps=5.0, seed=3
    )
    reader = ds.open_dataset(root)
    assert type(reader).__name__ == "BP4DReader" and len(reader) == 60
    active = 0
    for s in range(2):
        truth = _sequence(s, 30, 64, 3)
        values = au_values(truth.params)
        expect = np.stack([values[a] >= 5.0 * ACTIVE_LEVEL for a in ds.BP4D_AUS], 1)
        active += int(expect.sum())
        rows = [x for x in reader.samples if x.subject == f"F{s + 1:03d}"]
        rows.sort(key=lambda x: x.frame)
        got = np.stack([x.occurrence for x in rows])
        np.testing.assert_array_equal(got, expect.astype(np.int8))
        np.testing.assert_allclose(
            np.stack([x.landmarks for x in rows]), truth.landmarks5, atol=1e-3
        )
        img = reader.load_image(rows[0])
        assert img.shape == (64, 64, 3)
        assert np.abs(img.astype(int) - truth.images[0]).mean() < 4  # JPEG
    assert active > 20, "the sequences should hold AU events, or the comparison proves little"


def test_disfa_layout_keeps_only_drawn_aus(tmp_path):
    root = write_dataset(
        tmp_path / "disfa", "disfa", subjects=2, frames_per_subject=30, size=64, fps=5.0
    )
    reader = ds.open_dataset(root)
    assert len(reader) == 60
    assert set(reader.samples[0].au_ids) <= set(ds.DISFA_AUS)
    truth = _sequence(1, 30, 64, 0)
    values = au_values(truth.params)
    rows = sorted((x for x in reader.samples if x.subject == "SN002"), key=lambda x: x.frame)
    got = np.stack([r.intensity for r in rows])
    expect = np.stack([np.round(values[au]) for au in rows[0].au_ids], 1)
    assert expect.sum() > 10, "the sequence should hold AU events"
    np.testing.assert_allclose(got, expect)


def test_emotionet_marks_undrawn_aus_unknown(tmp_path):
    root = write_dataset(tmp_path / "en", "emotionet", subjects=2, frames_per_subject=5, size=64)
    reader = ds.open_dataset(root)
    assert len(reader) == 10
    occ = reader.occurrence_matrix()
    drawn = set(au_values(np.zeros((1, 77))).keys())
    for j, au in enumerate(reader.samples[0].au_ids):
        assert (occ[:, j] == -1).all() == (au not in drawn), au


def test_rafdb_has_basic_expressions_only(tmp_path):
    root = write_dataset(tmp_path / "raf", "rafdb", subjects=2, frames_per_subject=5, size=96)
    reader = ds.open_dataset(root)
    assert len(reader) == 10
    exprs = reader.expression_array()
    assert ((exprs >= 0) & (exprs < ds.EXPRESSIONS.index("contempt"))).all()
    assert reader.landmarks_array().shape == (10, 5, 2)


def test_bad_layout_and_counts():
    with pytest.raises(errors.ParameterError, match="layout"):
        write_dataset("/nonexistent", "affwild")
    with pytest.raises(errors.ParameterError, match="subjects"):
        write_dataset("/nonexistent", "bp4d", subjects=0)
