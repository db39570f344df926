"""M1 pair sampler (every drawn quadruple obeys the rules) and the GCN adjacency (NumPy)."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import ShapeError, ValueRangeError
from auperf.nets.m1 import AUGraph, cooccurrence_adjacency
from training.m1.config import SamplerConfig
from training.m1.data import LANDMARKS_49, PairSampler, landmark_cells


def _videos(rng, n_ids=6, frames=30, c=6, fps=4.0):
    labels = (rng.random((n_ids * frames, c)) < 0.3).astype(np.int8)
    labels[rng.random(len(labels)) < 0.2] = 0  # some neutral frames
    identity = np.repeat(np.arange(n_ids), frames)
    time = np.tile(np.arange(frames) / fps, n_ids)
    return labels, identity, time


def _is_negative(y, ident, t, i, j, cfg):
    shared = int((y[i] & y[j]).sum())
    return (
        ident[i] == ident[j]
        and not np.array_equal(y[i], y[j])
        and (shared == 0 or abs(t[i] - t[j]) > cfg.far_s)
    )


def _is_positive(y, ident, t, i, j, cfg):
    if ident[i] == ident[j]:
        return i != j and abs(t[i] - t[j]) <= cfg.near_s
    k = int(y[i].sum())
    shared = int((y[i] & y[j]).sum())
    if k == 0:
        return int(y[j].sum()) == 0
    if k == 1:
        return shared == 1
    return shared >= 2 and shared / k >= cfg.min_shared_ratio


@pytest.mark.parametrize("temporal_p", [0.0, 0.5, 1.0])
def test_every_drawn_quadruple_obeys_the_rules(rng, temporal_p):
    y, ident, t = _videos(rng)
    cfg = SamplerConfig(far_s=3.0, near_s=0.5, min_shared_ratio=0.5, temporal_positive_p=temporal_p)
    s = PairSampler(y, ident, t, cfg)
    quads = s.draw(np.random.default_rng(0), 400)
    assert quads.shape == (400, 4)
    kinds = set()
    for a, an, p, pn in quads:
        assert _is_negative(y, ident, t, a, an, cfg), (a, an)
        assert _is_positive(y, ident, t, a, p, cfg), (a, p)
        assert _is_negative(y, ident, t, p, pn, cfg), (p, pn)
        kinds.add(ident[a] == ident[p])
    if temporal_p == 0.0:
        assert kinds == {False}  # cross-identity positives only (they exist here)
    elif temporal_p == 1.0:
        assert True in kinds
    else:
        assert kinds == {True, False}


def test_sampler_masks_match_a_loop(rng):
    y, ident, t = _videos(rng, n_ids=3, frames=12, c=4)
    cfg = SamplerConfig(far_s=1.5, near_s=0.5, min_shared_ratio=0.6)
    neg, pos_t, pos_c = PairSampler.candidate_masks(y, ident, t, cfg)
    for i in range(len(y)):
        for j in range(len(y)):
            assert neg[i, j] == _is_negative(y, ident, t, i, j, cfg)
            assert (pos_t[i, j] or pos_c[i, j]) == _is_positive(y, ident, t, i, j, cfg)


def test_sampler_is_deterministic_and_checks_inputs(rng):
    y, ident, t = _videos(rng)
    s = PairSampler(y, ident, t, SamplerConfig())
    a = s.draw(np.random.default_rng(5), 20)
    b = s.draw(np.random.default_rng(5), 20)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ShapeError, match="identity"):
        PairSampler(y, ident[:-1], t, SamplerConfig())
    with pytest.raises(ValueRangeError, match="labels"):
        PairSampler(y * 2, ident, t, SamplerConfig())
    # one frame per identity: no hard negative anywhere
    with pytest.raises(ValueRangeError, match="no frame"):
        PairSampler(y[:5], np.arange(5), t[:5], SamplerConfig())


def _adjacency_reference(y, thr):
    c = y.shape[1]
    p = np.zeros((c, c))
    for i in range(c):
        for j in range(c):
            rows = [n for n in range(len(y)) if y[n, i] == 1 and y[n, j] >= 0]
            if rows:
                p[i, j] = sum(y[n, j] == 1 for n in rows) / len(rows)
    b = np.array([[1.0 if (i == j or p[i, j] >= thr) else 0.0 for j in range(c)] for i in range(c)])
    return b / b.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("thr", [0.0, 0.3, 0.7, 1.0])
def test_adjacency_matches_numpy_loops(rng, thr):
    y = (rng.random((80, 5)) < np.array([0.1, 0.4, 0.5, 0.05, 0.3])).astype(np.int64)
    y[:, 2] |= y[:, 1]  # AU2 always active with AU1: P(2 | 1) = 1
    y[rng.random(y.shape) < 0.05] = -1  # some unknown labels
    got = cooccurrence_adjacency(y, thr)
    np.testing.assert_allclose(got, _adjacency_reference(y, thr), atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-6)
    if thr <= 1.0:
        assert got[1, 2] > 0  # the dependent pair is linked


def test_adjacency_hand_computed():
    y = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1], [0, 0, 1]])
    # P(1|0) = 1/2, P(0|1) = 1/2, P(2|1) = 1/2, P(1|2) = 1/2, P(2|0) = P(0|2) = 0
    a = cooccurrence_adjacency(y, 0.5)
    np.testing.assert_allclose(a, [[0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0.5, 0.5]], atol=1e-7)


def test_adjacency_errors():
    with pytest.raises(ShapeError, match="labels"):
        cooccurrence_adjacency(np.zeros(4))
    with pytest.raises(ValueRangeError, match=r"labels\[0, 1\]"):
        cooccurrence_adjacency(np.array([[0, 2]]))
    with pytest.raises(ValueRangeError, match="threshold"):
        cooccurrence_adjacency(np.zeros((2, 2)), 1.5)


def test_gcn_matches_numpy(rng):
    import torch

    adj = cooccurrence_adjacency((rng.random((50, 4)) < 0.4).astype(int), 0.3)
    g = AUGraph(adj, node_dim=5)
    torch.nn.init.normal_(g.bias)
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    w1 = g.w1.weight.detach().numpy()
    w2 = g.w2.weight.detach().numpy()
    h = np.maximum(adj @ (x.numpy() @ w1.T), 0)
    ref = (adj @ (h @ w2.T))[..., 0] + g.bias.detach().numpy()
    np.testing.assert_allclose(g(x).detach().numpy(), ref, atol=1e-5)


def test_landmark_indices_and_cells():
    assert len(LANDMARKS_49) == 49 and len(set(LANDMARKS_49)) == 49
    assert (
        not set(range(17)) & set(LANDMARKS_49) and 60 not in LANDMARKS_49 and 64 not in LANDMARKS_49
    )
    pts = np.array([[-0.5, -0.5], [63.4, 63.4], [3.4, 0.0], [3.6, 0.0], [100.0, -7.0]])
    # size 64, grid 16: a cell is 4 pixels wide, starting at -0.5
    np.testing.assert_array_equal(landmark_cells(pts, 64, 16), [0, 255, 0, 1, 15])
    with pytest.raises(ShapeError, match="landmarks"):
        landmark_cells(np.zeros((3, 3)), 64, 16)
