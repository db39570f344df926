"""Each M1 loss on tiny tensors against a direct NumPy computation (or a hand value)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from auperf.errors import ShapeError
from training.m1 import losses as L


def _t(a):
    return torch.tensor(np.asarray(a), dtype=torch.float32)


def _norm(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_weighted_bce(rng):
    z = rng.normal(size=(4, 3))
    y = (rng.random((4, 3)) < 0.5).astype(float)
    alpha = np.array([0.5, 1.0, 1.5])
    p = 1 / (1 + np.exp(-z))
    ref = np.mean(alpha * -(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert float(L.weighted_bce(_t(z), _t(y), _t(alpha))) == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ShapeError, match="alpha"):
        L.weighted_bce(_t(z), _t(y), _t([1.0, 2.0]))


def test_lsgan_and_simple_losses(rng):
    r, f = rng.normal(size=(2, 1, 3, 3)), rng.normal(size=(2, 1, 3, 3))
    ref_d = 0.5 * np.mean((r - 1) ** 2) + 0.5 * np.mean(f**2)
    assert float(L.lsgan_discriminator_loss(_t(r), _t(f))) == pytest.approx(ref_d, rel=1e-5)
    assert float(L.lsgan_generator_loss(_t(f))) == pytest.approx(
        0.5 * np.mean((f - 1) ** 2), rel=1e-5
    )
    a, b = rng.normal(size=(5, 4)), rng.normal(size=(5, 4))
    ref_e = np.mean(np.sum((a - b) ** 2, axis=1))
    assert float(L.embedding_consistency_loss(_t(a), _t(b))) == pytest.approx(ref_e, rel=1e-5)
    assert float(L.l1_loss(_t(a), _t(b))) == pytest.approx(np.mean(np.abs(a - b)), rel=1e-5)
    with pytest.raises(ShapeError, match="reencoded"):
        L.embedding_consistency_loss(_t(a), _t(b[:, :2]))


def _supcon_ref(feat, groups, tau, weight=None):
    f = _norm(feat)
    n = len(f)
    terms, ws = [], []
    for i in range(n):
        pos = [p for p in range(n) if p != i and groups[p] == groups[i]]
        if not pos:
            continue
        denom = sum(math.exp(f[i] @ f[a] / tau) for a in range(n) if a != i)
        li = -np.mean([math.log(math.exp(f[i] @ f[p] / tau) / denom) for p in pos])
        terms.append(li)
        ws.append(1.0 if weight is None else weight[i])
    return float(np.mean(np.array(ws) * np.array(terms)))


def test_supcon_identity(rng):
    z = rng.normal(size=(7, 4))
    ident = np.array([0, 0, 1, 1, 1, 2, 3])  # identities 2 and 3 have no positive
    w = rng.uniform(0.5, 2.0, 7)
    got = L.supcon_identity_loss(_t(z), torch.tensor(ident), 0.2, _t(w))
    assert float(got) == pytest.approx(_supcon_ref(z, ident, 0.2, w), rel=1e-5)
    # no positive anywhere: zero, still differentiable
    zz = _t(z).requires_grad_(True)
    out = L.supcon_identity_loss(zz, torch.arange(7), 0.2)
    out.backward()
    assert float(out.detach()) == 0.0


def test_supcon_identity_prefers_clustered_embeddings():
    ident = torch.tensor([0, 0, 1, 1])
    good = torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [0.1, 1.0]])
    bad = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1], [0.1, 1.0]])
    assert float(L.supcon_identity_loss(good, ident, 0.1)) < float(
        L.supcon_identity_loss(bad, ident, 0.1)
    )


def test_supcon_au(rng):
    b, c, d = 5, 3, 4
    e = rng.normal(size=(b, c, d))
    y = (rng.random((b, c)) < 0.5).astype(np.int64)
    y[:, 2] = [1, 0, 0, 0, 0]  # the single positive of AU 2 has no positive partner
    au_w = np.array([1.0, 2.0, 0.5])
    beta = rng.uniform(0.5, 2.0, (c, 2))
    f = _norm(e.reshape(b * c, d))
    tau = 0.3
    per_au = []
    for k in range(c):
        vals, ws = [], []
        for i in range(b):
            r = i * c + k
            pos = [j * c + k for j in range(b) if j != i and y[j, k] == y[i, k]]
            if not pos:
                continue
            denom = sum(math.exp(f[r] @ f[s] / tau) for s in range(b * c) if s != r)
            vals.append(-np.mean([math.log(math.exp(f[r] @ f[p] / tau) / denom) for p in pos]))
            ws.append(au_w[k] * beta[k, y[i, k]])
        per_au.append(np.mean(np.array(ws) * np.array(vals)) if vals else 0.0)
    ref = float(np.sum(per_au) / c)
    got = L.supcon_au_loss(_t(e), torch.tensor(y), tau, _t(au_w), _t(beta))
    assert float(got) == pytest.approx(ref, rel=1e-5)


def test_au_label_balance():
    y = torch.tensor([[1, 0], [0, 0], [0, 0], [0, 1]])
    bal = L.au_label_balance(y)
    # AU0 rate 0.25: beta0 = 0.5/0.75, beta1 = 0.5/0.25
    np.testing.assert_allclose(bal.numpy(), [[2 / 3, 2.0], [2 / 3, 2.0]], rtol=1e-6)


def test_orthogonality(rng):
    wa, wi = rng.normal(size=(6, 5)), rng.normal(size=(3, 5))
    a, z = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    ref = np.linalg.norm(wa @ wi.T) / (np.linalg.norm(wa) * np.linalg.norm(wi))
    ref += np.mean(
        np.abs(np.sum(a * z, 1)) / (np.linalg.norm(a, axis=1) * np.linalg.norm(z, axis=1))
    )
    assert float(L.orthogonality_loss(_t(wa), _t(wi), _t(a), _t(z))) == pytest.approx(ref, rel=1e-5)
    # orthogonal weights and codes: zero
    e = np.eye(4)
    zero = L.orthogonality_loss(_t(e[:2]), _t(e[2:]), _t(e[:1, :2]), _t(e[1:2, :2]))
    assert float(zero) == pytest.approx(0.0, abs=1e-7)


def test_landmark_losses(rng):
    logits = rng.normal(size=(2, 3, 4))
    cells = np.array([[0, 3, 1], [2, 2, 0]])
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ref = -np.mean([logp[i, k, cells[i, k]] for i in range(2) for k in range(3)])
    got = L.landmark_loss(_t(logits), torch.tensor(cells))
    assert float(got) == pytest.approx(ref, rel=1e-5)
    assert float(L.uniform_landmark_loss(_t(logits))) == pytest.approx(-logp.mean(), rel=1e-5)
    # flat maps reach the minimum log G
    assert float(L.uniform_landmark_loss(torch.zeros(2, 3, 4))) == pytest.approx(
        math.log(4), rel=1e-6
    )
    assert float(L.uniform_landmark_loss(_t(logits))) > math.log(4)


def test_pair_losses(rng):
    lg = rng.normal(size=6)
    same = np.array([1, 0, 1, 1, 0, 0])
    p = 1 / (1 + np.exp(-lg))
    ref = -np.mean(same * np.log(p) + (1 - same) * np.log(1 - p))
    assert float(L.pair_discriminator_loss(_t(lg), _t(same))) == pytest.approx(ref, rel=1e-5)
    ref_c = -np.mean(0.5 * np.log(p) + 0.5 * np.log(1 - p))
    assert float(L.pair_confusion_loss(_t(lg))) == pytest.approx(ref_c, rel=1e-5)
    assert float(L.pair_confusion_loss(torch.zeros(3))) == pytest.approx(math.log(2), rel=1e-6)
