"""M3 networks: shapes, conventions, typed errors, the mask -> class mapping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auperf.errors import ParameterError, ShapeError
from auperf.estimator import parse_labels_from_mask, roll_from_matrices
from auperf.nets.m3 import (
    NUM_PARSE_CLASSES,
    PARAM_DIM,
    Imitator,
    Parser,
    Predictor,
    fit_loss,
    weighted_features,
)


def test_shapes_and_ranges():
    g, p, q = Imitator(32, width=16, min_width=8), Parser(32, width=8), Predictor(32, width=8)
    x = torch.rand(3, PARAM_DIM, generator=torch.Generator().manual_seed(0))
    img = g(x).detach()
    assert img.shape == (3, 3, 32, 32) and 0 <= float(img.min()) and float(img.max()) <= 1
    logits, feats = p.features(img)
    assert logits.shape == (3, NUM_PARSE_CLASSES, 32, 32)
    assert [f.shape[-1] for f in feats] == [16, 8, 4]
    wf = weighted_features(p, img)
    assert wf[0].shape == (3, NUM_PARSE_CLASSES, 8, 16, 16)
    out = q.eval()(img).detach()
    assert out.shape == (3, PARAM_DIM) and float(out.min()) > 0 and float(out.max()) < 1


def test_upconv_imitator_shapes_and_nearest_upsampling():
    g = Imitator(32, width=16, min_width=8, arch="upconv")
    x = torch.rand(2, PARAM_DIM, generator=torch.Generator().manual_seed(5))
    img = g(x).detach()
    assert img.shape == (2, 3, 32, 32) and 0 <= float(img.min()) and float(img.max()) <= 1
    t = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    ref = t.numpy().repeat(2, axis=2).repeat(2, axis=3)
    np.testing.assert_array_equal(g.up[0](t).numpy(), ref)
    with pytest.raises(ParameterError, match=r"arch: expected one of .*got 'resnet'"):
        Imitator(32, arch="resnet")


def test_weighted_features_match_numpy():
    """W F_l against a NumPy computation from the parser's logits and features."""
    p = Parser(32, width=8)
    y = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    logits, feats = p.features(y)
    wf = weighted_features(p, y)
    lg = logits.detach().numpy().astype(np.float64)
    w = np.exp(lg - lg.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    for f, got in zip(feats, wf, strict=True):
        k = 32 // f.shape[-1]
        n, c, h, _ = w.shape
        wp = w.reshape(n, c, h // k, k, h // k, k).mean(axis=(3, 5))
        ref = wp[:, :, None] * f.detach().numpy()[:, None]
        np.testing.assert_allclose(got.detach().numpy(), ref, atol=1e-6)


def test_fit_loss_is_zero_at_the_target_and_positive_elsewhere():
    g, p = Imitator(32, width=16, min_width=8), Parser(32, width=8)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(2, PARAM_DIM, generator=gen)
    with torch.no_grad():
        t = weighted_features(p, g(x))
        assert float(fit_loss(g, p, x, t).abs().max()) == 0.0
        other = torch.rand(2, PARAM_DIM, generator=gen)
        assert float(fit_loss(g, p, other, t).min()) > 0


@pytest.mark.parametrize("bad", [(3, 76), (77,), (2, 3, 77)])
def test_imitator_rejects_bad_params(bad):
    with pytest.raises(ShapeError, match=r"x: expected shape \(N, 77\)"):
        Imitator(32, width=16)(torch.zeros(bad))


def test_parser_and_predictor_reject_bad_images():
    with pytest.raises(
        ShapeError, match=r"images: expected shape \(N, 3, 32, 32\), got \(1, 3, 64, 64\)"
    ):
        Parser(32, width=8)(torch.zeros(1, 3, 64, 64))
    with pytest.raises(ShapeError, match="images"):
        Predictor(32, width=8)(torch.zeros(1, 1, 32, 32))
    with pytest.raises(ParameterError, match="size"):
        Imitator(40)


def test_mask_mapping_splits_left_and_right():
    from auperf.align import template

    s = 64
    mid = template(s)[:2, 0].mean()
    mask = np.zeros((s, s), np.uint8)
    mask[10, 5], mask[10, 60] = 2, 2  # brows
    mask[20, 5], mask[20, 60] = 3, 3  # eyes
    mask[30, 30], mask[40, 30], mask[41, 30], mask[42, 30] = 4, 5, 6, 7
    mask[0, 0], mask[50, 50], mask[51, 51], mask[52, 52] = 8, 9, 10, 11
    out = parse_labels_from_mask(mask, s)
    assert 5 < mid < 60
    assert (out[10, 5], out[10, 60], out[20, 5], out[20, 60]) == (2, 3, 4, 5)
    assert (out[30, 30], out[40, 30], out[41, 30], out[42, 30]) == (6, 7, 8, 9)
    assert (out[0, 0], out[50, 50], out[51, 51], out[52, 52]) == (10, 0, 0, 0)


def test_roll_from_matrices_hand_computed():
    a = np.radians(10.0)
    m = np.array([[[np.cos(a), -np.sin(a), 3.0], [np.sin(a), np.cos(a), 1.0]]]) * 0.5
    np.testing.assert_allclose(roll_from_matrices(m), [-10.0])


@pytest.mark.parametrize("size", [128, 256])
def test_larger_sizes_build(size):
    """256/512 px are configurations of the same networks (tiny widths here)."""
    x = torch.rand(1, PARAM_DIM, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        img = Imitator(size, width=8, min_width=4)(x)
        assert img.shape == (1, 3, size, size)
        assert [t.shape[-1] for t in weighted_features(Parser(size, width=4), img)] == [
            size // 2,
            size // 4,
            size // 8,
        ]
        assert Predictor(size, width=4).eval()(img).shape == (1, PARAM_DIM)
