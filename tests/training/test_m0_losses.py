"""M0 losses against values worked out by hand with Python's math module, and gradient signs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from auperf.errors import ShapeError, ValueRangeError
from training.m0.losses import (
    M0LossWeights,
    au_balance_weights,
    clean_loss,
    m0_loss,
    masked_bce_with_logits,
    multiview_orthogonality_loss,
    noisy_loss,
    pseudo_labels,
    refine_noisy_labels,
    view_consistency_loss,
)


def sig(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def bce(y: float, p: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def entropy(p: float) -> float:
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def cos(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def t(x, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


# -- L_clean / L_noisy -----------------------------------------------------------------------
def test_clean_loss_hand_value_with_unknowns_and_alpha():
    z = t([[0.0, 2.0], [-1.0, 0.5]])
    y = t([[1.0, 0.0], [-1.0, 1.0]])
    alpha = t([2.0, 0.5])
    expected = (2.0 * bce(1, sig(0.0)) + 0.5 * bce(0, sig(2.0)) + 0.5 * bce(1, sig(0.5))) / 3
    assert clean_loss(z, y, alpha).item() == pytest.approx(expected, rel=1e-12)


def test_clean_loss_all_known_is_mean_over_faces_and_aus():
    z = t([[0.3, -1.2, 2.0], [1.5, 0.1, -0.4]])
    y = t([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    alpha = [1.5, 0.5, 1.0]
    expected = (
        sum(alpha[k] * bce(y[b, k].item(), sig(z[b, k].item())) for b in range(2) for k in range(3))
        / 6
    )
    assert clean_loss(z, y, t(alpha)).item() == pytest.approx(expected, rel=1e-12)


def test_all_unknown_gives_zero_and_zero_gradient():
    z = t([[0.3, -2.0]], grad=True)
    loss = clean_loss(z, t([[-1.0, -1.0]]))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_clean_loss_gradient_signs():
    z = t([[0.7, 0.7, 0.7]], grad=True)
    clean_loss(z, t([[1.0, 0.0, -1.0]])).backward()
    g = z.grad[0]
    assert g[0] < 0  # positive label: raise the logit
    assert g[1] > 0  # negative label: lower it
    assert g[2] == 0  # unknown: no gradient
    # d/dz of BCE(1, sigmoid(z)) / 2 known entries = (sigmoid(z) - 1) / 2
    assert g[0].item() == pytest.approx((sig(0.7) - 1) / 2, rel=1e-12)


def test_noisy_loss_uses_sum_of_heads():
    clean = t([[0.3, -0.2]], grad=True)
    resid = t([[-1.0, 0.4]], grad=True)
    y = t([[1.0, 0.0]])
    alpha = t([1.0, 3.0])
    loss = noisy_loss(clean + resid, y, alpha)
    expected = (bce(1, sig(0.3 - 1.0)) + 3.0 * bce(0, sig(-0.2 + 0.4))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    assert resid.grad[0, 0] < 0 and resid.grad[0, 1] > 0
    torch.testing.assert_close(clean.grad, resid.grad)


def test_label_loss_errors():
    with pytest.raises(ShapeError, match="labels shape"):
        masked_bce_with_logits(t([[0.0, 1.0]]), t([[1.0]]))
    with pytest.raises(ShapeError, match="alpha"):
        masked_bce_with_logits(t([[0.0, 1.0]]), t([[1.0, 0.0]]), t([1.0]))


# -- L_mv ------------------------------------------------------------------------------------
def test_orthogonality_hand_value():
    w1 = [[1.0, 2.0, 2.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    w2 = [[2.0, -1.0, 2.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 5.0]]
    expected = sum(abs(cos(a, b)) for a, b in zip(w1, w2, strict=True)) / 3
    assert expected == pytest.approx((4 / 9 + 1 / math.sqrt(2) + 0) / 3)
    assert multiview_orthogonality_loss(t(w1), t(w2)).item() == pytest.approx(expected, rel=1e-12)


def test_orthogonality_gradient_pushes_cosine_to_zero():
    w1 = t([[1.0, 2.0, 2.0], [1.0, 0.0, 0.0]], grad=True)
    w2 = t([[2.0, -1.0, 2.0], [-1.0, 1.0, 0.0]], grad=True)
    multiview_orthogonality_loss(w1, w2).backward()
    with torch.no_grad():
        n1, n2 = w1 - 0.05 * w1.grad, w2 - 0.05 * w2.grad
    for k in range(2):
        before = abs(cos(w1[k].tolist(), w2[k].tolist()))
        after = abs(cos(n1[k].tolist(), n2[k].tolist()))
        assert after < before


# -- L_cons ----------------------------------------------------------------------------------
def test_consistency_hand_value():
    logit = lambda p: math.log(p / (1 - p))  # noqa: E731
    z1 = t([[0.0, logit(0.1)]])
    z2 = t([[logit(0.8), logit(0.1)]])
    first = entropy(0.65) - (entropy(0.5) + entropy(0.8)) / 2
    second = entropy(0.1) - entropy(0.1)
    assert view_consistency_loss(z1, z2).item() == pytest.approx((first + second) / 2, rel=1e-10)


def test_consistency_gradient_pulls_views_together():
    z1 = t([[-1.0]], grad=True)
    z2 = t([[2.0]], grad=True)
    view_consistency_loss(z1, z2).backward()
    assert z1.grad.item() < 0  # p1 < p2: raising p1 lowers the loss
    assert z2.grad.item() > 0  # and lowering p2
    z = t([[0.4, -3.0]], grad=True)
    loss = view_consistency_loss(z, z.detach().clone())
    loss.backward()
    assert loss.item() == pytest.approx(0.0, abs=1e-15)
    assert torch.allclose(z.grad, torch.zeros_like(z))


def test_consistency_is_finite_when_saturated():
    z1 = t([[100.0]], grad=True)
    z2 = t([[-100.0]], grad=True)
    loss = view_consistency_loss(z1, z2)
    loss.backward()
    assert loss.item() == pytest.approx(math.log(2), rel=1e-9)
    assert torch.isfinite(z1.grad).all() and torch.isfinite(z2.grad).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-30, 30), min_size=2, max_size=8))
def test_bounded_losses(values):
    n = len(values) // 2
    z1 = t([values[:n]])
    z2 = t([values[n : 2 * n]])
    c = view_consistency_loss(z1, z2).item()
    assert -1e-12 <= c <= math.log(2) + 1e-12
    m = multiview_orthogonality_loss(t([values[:n] + [1.0]]), t([values[n : 2 * n] + [0.5]])).item()
    assert 0.0 <= m <= 1.0 + 1e-12


# -- pseudo-labels, refinement, balance weights ---------------------------------------------
def test_pseudo_labels():
    z = t([[-0.1, 0.0, 2.0]], grad=True)
    y = pseudo_labels(z)
    assert y.tolist() == [[0.0, 1.0, 1.0]]
    assert not y.requires_grad
    assert pseudo_labels(z, threshold=0.85).tolist() == [[0.0, 0.0, 1.0]]
    with pytest.raises(ValueRangeError, match="threshold"):
        pseudo_labels(z, threshold=1.0)


def test_refinement_hand_values():
    y = t([[1.0, 0.0, 1.0, 0.0, -1.0]])
    p1 = t([[0.1, 0.9, 0.4, 1.0, 0.3]])
    p2 = t([[0.1, 0.9, 0.2, 1.0, 0.3]])
    soft = refine_noisy_labels(y, p1, p2, gamma=0.5, harden=False)
    torch.testing.assert_close(soft, t([[0.55, 0.45, 0.65, 0.5, -1.0]]))
    hard = refine_noisy_labels(y, p1, p2)  # gamma 0.5, threshold 0.5, ties go to 1
    assert hard.tolist() == [[1.0, 0.0, 1.0, 1.0, -1.0]]
    # A smaller gamma lets confident predictions overrule the given label:
    # 0.3 + 0.7 * 0.1 = 0.37 -> 0; 0.7 * 0.9 = 0.63 -> 1; 0.3 + 0.7 * 0.3 = 0.51 -> 1; 0.7 -> 1.
    hard3 = refine_noisy_labels(y, p1, p2, gamma=0.3)
    assert hard3.tolist() == [[0.0, 1.0, 1.0, 1.0, -1.0]]


def test_refinement_gamma_half_never_flips_below_tie():
    torch.manual_seed(0)
    y = (torch.rand(200, 4) > 0.5).double()
    p = torch.rand(200, 4, dtype=torch.float64) * 0.999
    assert torch.equal(refine_noisy_labels(y, p, p), y)
    with pytest.raises(ValueRangeError, match="gamma"):
        refine_noisy_labels(y, p, p, gamma=1.5)


def test_balance_weights_hand_values():
    labels = t([[1, 0, -1], [0, 1, 1], [1, -1, 1], [0, 0, 0]])
    inv = [1 / (2 / 4), 1 / (1 / 3), 1 / (2 / 3)]
    mean = sum(inv) / 3
    w = au_balance_weights(labels)
    assert w.dtype == torch.float32
    assert w.tolist() == pytest.approx([v / mean for v in inv], rel=1e-6)
    assert w.mean().item() == pytest.approx(1.0, rel=1e-6)


def test_balance_weights_edge_cases(caplog):
    with pytest.raises(ValueRangeError, match=r"\[1\]"):
        au_balance_weights(t([[1, -1], [0, -1]]))
    w = au_balance_weights(t([[1, 0], [0, 0]]), min_rate=0.01)
    assert torch.isfinite(w).all()
    assert w[1] / w[0] == pytest.approx(0.5 / 0.01)
    assert "no positive" in caplog.text


# -- total -----------------------------------------------------------------------------------
def test_total_combines_terms_with_lambdas():
    torch.manual_seed(0)
    clean = torch.randn(4, 2, 3, dtype=torch.float64)
    noisy = clean + torch.randn(4, 2, 3, dtype=torch.float64)
    w = (torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 5, dtype=torch.float64))
    yc = t([[1, 0, 1], [0, 0, 1], [-1, -1, -1], [-1, -1, -1]])
    yn = t([[-1, -1, -1], [-1, -1, -1], [1, 1, 0], [0, 1, 0]])
    lam = M0LossWeights(lambda_noisy=2.0, lambda_mv=3.0, lambda_cons=0.5)
    terms = m0_loss(clean, w, yc, noisy_logits=noisy, noisy_labels=yn, weights=lam)
    c = clean_loss(clean[:, 0], yc) + clean_loss(clean[:, 1], yc)
    n = noisy_loss(noisy[:, 0], yn) + noisy_loss(noisy[:, 1], yn)
    mv = multiview_orthogonality_loss(*w)
    cons = view_consistency_loss(clean[:, 0], clean[:, 1])
    for got, want in ((terms.clean, c), (terms.noisy, n), (terms.mv, mv), (terms.cons, cons)):
        assert got.item() == pytest.approx(want.item(), rel=1e-12)
    assert terms.total.item() == pytest.approx((c + 2 * n + 3 * mv + 0.5 * cons).item(), rel=1e-12)
    assert set(terms.as_floats()) == {"total", "clean", "noisy", "mv", "cons"}


def test_semi_supervised_pseudo_labels_from_other_view():
    clean = t([[[2.0], [-3.0]]], grad=True)  # one face, views 1 and 2, one AU
    w = (t([[1.0, 0.0]]), t([[0.0, 1.0]]))
    terms = m0_loss(clean, w, t([[-1.0]]), unlabelled=torch.tensor([True]))
    # view 1 learns view 2's label (0), view 2 learns view 1's label (1)
    expected = bce(0, sig(2.0)) + bce(1, sig(-3.0))
    assert terms.clean.item() == pytest.approx(expected, rel=1e-12)
    terms.clean.backward()
    # no gradient reaches the teacher through its pseudo-label
    assert clean.grad[0, 0, 0].item() == pytest.approx(sig(2.0) - 0, rel=1e-12)
    assert clean.grad[0, 1, 0].item() == pytest.approx(sig(-3.0) - 1, rel=1e-12)


def test_total_shape_errors():
    with pytest.raises(ShapeError, match="clean_logits"):
        m0_loss(t([[0.0]]), (t([[1.0]]), t([[1.0]])), t([[1.0]]))
    with pytest.raises(ShapeError, match="give both"):
        m0_loss(
            t([[[0.0], [0.0]]]),
            (t([[1.0]]), t([[1.0]])),
            t([[1.0]]),
            noisy_logits=t([[[0.0], [0.0]]]),
        )
