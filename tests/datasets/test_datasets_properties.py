"""Property tests: invariants that hold for any input."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from auperf.datasets import flip_expressions, flip_labels
from auperf.datasets._common import read_sidecar, write_sidecar

labels_2d = arrays(
    np.int8, st.tuples(st.integers(1, 30), st.integers(1, 6)), elements=st.sampled_from([-1, 0, 1])
)


@settings(max_examples=60, deadline=None)
@given(labels_2d, st.floats(0, 1), st.integers(0, 2**32 - 1))
def test_flip_invariants(y, rate, seed):
    noisy, mask = flip_labels(y, rate, seed)
    assert noisy.shape == y.shape and noisy.dtype == y.dtype
    np.testing.assert_array_equal(noisy != y, mask)
    np.testing.assert_array_equal(noisy == -1, y == -1)
    np.testing.assert_array_equal(noisy[mask], 1 - y[mask])
    if rate == 0:
        assert not mask.any()
    if rate == 1:
        np.testing.assert_array_equal(mask, y >= 0)


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.int64, st.integers(1, 40), elements=st.integers(-1, 7)),
    st.floats(0, 1),
    st.sampled_from(["symmetric", "asymmetric"]),
    st.integers(0, 2**32 - 1),
)
def test_expression_flip_invariants(y, rate, mode, seed):
    noisy, mask = flip_expressions(y, rate, seed, mode=mode, num_classes=8)
    np.testing.assert_array_equal(noisy != y, mask)
    assert ((noisy >= -1) & (noisy < 8)).all()
    np.testing.assert_array_equal(noisy == -1, y == -1)


@settings(max_examples=30, deadline=None)
@given(arrays(np.float64, (3, 5, 2), elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_sidecar_round_trip_is_exact(pts):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "side.csv"
        entries = [("a/b.jpg", None, pts[0]), ("v.avi", 3, pts[1]), ("v.avi", 4, pts[2])]
        write_sidecar(path, entries)
        table = read_sidecar(path)
    np.testing.assert_array_equal(table["a/b.jpg"], pts[0])
    np.testing.assert_array_equal(table["v.avi#3"], pts[1])
    np.testing.assert_array_equal(table["v.avi#4"], pts[2])


_TINY = np.full((4, 4, 3), 128, np.uint8)


@settings(max_examples=25, deadline=None)
@given(
    arrays(
        np.int8, st.tuples(st.integers(1, 5), st.just(12)), elements=st.sampled_from([-1, 0, 1])
    ),
    arrays(
        np.float64,
        st.tuples(st.integers(1, 5), st.just(12)),
        elements=st.one_of(st.just(float("nan")), st.floats(0, 5)),
    ),
)
def test_bp4d_labels_round_trip(occ, inten):
    from auperf.datasets import BP4D_AUS, BP4D_INTENSITY_AUS, BP4DReader, BP4DWriter

    n = min(len(occ), len(inten))
    with tempfile.TemporaryDirectory() as d:
        with BP4DWriter(d) as w:
            for f in range(n):
                w.add(
                    _TINY, subject="F001", task="T1", frame=f, occurrence=occ[f], intensity=inten[f]
                )
        ds = BP4DReader(d)
        np.testing.assert_array_equal(ds.occurrence_matrix(), occ[:n])
        cols = [BP4D_AUS.index(a) for a in BP4D_INTENSITY_AUS]
        got = ds.intensity_matrix()[:, cols]
        np.testing.assert_array_equal(got, inten[:n, cols].astype(np.float32))


@settings(max_examples=25, deadline=None)
@given(
    arrays(np.int8, st.tuples(st.integers(1, 6), st.just(12)), elements=st.sampled_from([-1, 0, 1]))
)
def test_emotionet_labels_round_trip(occ):
    from auperf.datasets import EmotioNetReader, EmotioNetWriter

    with tempfile.TemporaryDirectory() as d:
        with EmotioNetWriter(d) as w:
            for i, row in enumerate(occ):
                w.add(_TINY, name=f"x{i}", occurrence=row)
        np.testing.assert_array_equal(EmotioNetReader(d).occurrence_matrix(), occ)
