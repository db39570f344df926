"""auperf.align: templates and batched similarity estimation vs skimage and an SVD reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.transform import SimilarityTransform

from auperf import align, errors
from auperf.ops.reference import similarity_reference


def test_templates_are_the_112_face_scaled():
    np.testing.assert_allclose(align.TEMPLATE_224, align.TEMPLATE_112 * 2.0)
    np.testing.assert_allclose(align.TEMPLATE_256, align.TEMPLATE_112 * (256 / 112))
    # Point order: left eye, right eye (image left/right), nose, left and right mouth corners.
    t = align.TEMPLATE_112
    assert t[0, 0] < t[2, 0] < t[1, 0] and t[3, 0] < t[4, 0]
    assert t[0, 1] < t[2, 1] < t[3, 1]
    assert not align.TEMPLATE_224.flags.writeable


@pytest.mark.parametrize("bad", [0, -5, 2.5, "224"])
def test_template_rejects_bad_sizes(bad):
    with pytest.raises(errors.ShapeError, match="size"):
        align.template(bad)


def _random_faces(rng, n, k=5, noise=2.0):
    """Template faces under random similarity transforms, plus per-point noise."""
    base = align.TEMPLATE_112
    out = np.empty((n, k, 2))
    for i in range(n):
        s = rng.uniform(0.5, 6.0)
        a = rng.uniform(-np.pi, np.pi)
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        t = rng.uniform(-500, 2000, 2)
        pts = base[rng.integers(0, 5, k)] if k != 5 else base
        out[i] = pts @ (s * r).T + t + rng.normal(0, noise, (k, 2))
    return out


def test_matches_skimage_on_noisy_points(rng):
    pts = _random_faces(rng, 200)
    m = align.estimate_similarity(pts, align.TEMPLATE_224)
    assert m.shape == (200, 2, 3) and m.dtype == np.float64
    for i in range(len(pts)):
        ref = SimilarityTransform.from_estimate(pts[i], align.TEMPLATE_224).params[:2]
        np.testing.assert_allclose(m[i], ref, atol=1e-6, rtol=0)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 20), k=st.integers(2, 68), seed=st.integers(0, 2**31 - 1))
def test_matches_svd_umeyama_any_shape(n, k, seed):
    rng = np.random.default_rng(seed)
    tmpl = rng.uniform(0, 256, (k, 2))
    pts = rng.uniform(-100, 2000, (n, k, 2))
    if k >= 2:
        pts[:, 1] += 5.0  # never all coincident
    m = align.estimate_similarity(pts, tmpl)
    assert m.shape == (n, 2, 3)
    if n:
        np.testing.assert_allclose(m, similarity_reference(pts, tmpl), atol=1e-6, rtol=1e-9)


def test_exact_transform_is_recovered(rng):
    pts = align.TEMPLATE_112[None] * 1.7 + np.array([30.0, -12.0])
    m = align.estimate_similarity(pts, align.TEMPLATE_224)[0]
    mapped = pts[0] @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(mapped, align.TEMPLATE_224, atol=1e-9)


def test_float32_points_accepted():
    pts = (align.TEMPLATE_112[None] * 2).astype(np.float32)
    m = align.estimate_similarity(pts, align.TEMPLATE_224)
    np.testing.assert_allclose(m[0], [[1, 0, 0], [0, 1, 0]], atol=1e-5)


def test_nan_points_raise_with_face_index():
    pts = np.stack([align.TEMPLATE_112, align.TEMPLATE_112])
    pts[1, 3, 0] = np.nan
    with pytest.raises(errors.NonFiniteError, match=r"faces \[1\]"):
        align.estimate_similarity(pts, align.TEMPLATE_112)


def test_coincident_points_raise():
    pts = np.full((1, 5, 2), 40.0)
    with pytest.raises(errors.SingularMatrixError, match="coincident"):
        align.estimate_similarity(pts, align.TEMPLATE_112)


def test_return_status_marks_bad_faces_instead_of_raising():
    pts = np.stack([align.TEMPLATE_112, np.full((5, 2), 3.0), align.TEMPLATE_112])
    pts[2, 0, 1] = np.inf
    m, ok = align.estimate_similarity(pts, align.TEMPLATE_112, return_status=True)
    assert ok.tolist() == [True, False, False]
    assert np.isnan(m[1:]).all() and np.isfinite(m[0]).all()


@pytest.mark.parametrize(
    "shape, tshape, match",
    [
        ((5, 2), (5, 2), r"points: expected shape \(N, K, 2\)"),
        ((3, 5, 3), (5, 2), r"points: expected shape \(N, K, 2\)"),
        ((3, 5, 2), (4, 2), "template: expected 5 points"),
        ((3, 1, 2), (1, 2), "at least 2 points"),
        ((3, 5, 2), (5,), r"template: expected shape \(K, 2\)"),
    ],
)
def test_shape_errors(shape, tshape, match):
    with pytest.raises(errors.ShapeError, match=match):
        align.estimate_similarity(np.ones(shape), np.ones(tshape))


def test_non_numeric_points_raise_dtype_error():
    with pytest.raises(errors.DTypeError, match="points"):
        align.estimate_similarity(np.array([[["a", "b"]] * 5]), align.TEMPLATE_112)


def test_invert_affine_roundtrip_and_errors(rng):
    m = align.estimate_similarity(_random_faces(rng, 10), align.TEMPLATE_224)
    inv = align.invert_affine(m)
    full = lambda a: np.concatenate([a, np.broadcast_to([0, 0, 1.0], (len(a), 1, 3))], axis=1)  # noqa: E731
    np.testing.assert_allclose(
        full(inv) @ full(m), np.broadcast_to(np.eye(3), (10, 3, 3)), atol=1e-9
    )
    with pytest.raises(errors.SingularMatrixError, match=r"faces \[0\]"):
        align.invert_affine(np.zeros((1, 2, 3)))
    with pytest.raises(errors.NonFiniteError):
        align.invert_affine(np.full((1, 2, 3), np.nan))
