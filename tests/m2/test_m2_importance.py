"""Importance weighting, rank regularisation and relabelling against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from auperf.errors import ShapeError, ValueRangeError
from training.common.config import ConfigError, config_from_dict
from training.common.importance import (
    ImportanceConfig,
    ImportanceHead,
    LabelStore,
    high_group_size,
    rank_regularisation,
    relabel,
    scn_loss,
    weighted_bce_with_logits,
    weighted_cross_entropy,
)

LOGITS = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
ALPHA = torch.tensor([0.5, 1.0])
LABELS = torch.tensor([1, 0])
# Hand values: sample 0 sees logits alpha*z = (0.5, 1, 0), label 1:
#   -(1 - log(e^0.5 + e^1 + e^0)) = 0.6802696706...
# sample 1 sees (0, 0, 3), label 0: -(0 - log(2 + e^3)) = 3.0949229564...
WCE_HAND = (0.6802696706417346 + 3.094922956420961) / 2


def test_weighted_ce_hand_value():
    got = weighted_cross_entropy(LOGITS, ALPHA, LABELS)
    assert float(got) == pytest.approx(WCE_HAND, abs=1e-6)
    # The same with plain arithmetic, independently of torch's cross-entropy.
    terms = []
    for z, a, y in zip(LOGITS.tolist(), ALPHA.tolist(), LABELS.tolist(), strict=True):
        s = [a * v for v in z]
        terms.append(math.log(sum(math.exp(v) for v in s)) - s[y])
    assert float(got) == pytest.approx(sum(terms) / 2, abs=1e-6)


def test_weighted_ce_with_unit_alpha_is_plain_ce():
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 3, 1, 2, 2])
    plain = torch.nn.functional.cross_entropy(z, y)
    assert float(weighted_cross_entropy(z, torch.ones(5), y)) == pytest.approx(float(plain))


def test_weighted_bce_hand_value():
    z = torch.tensor([[2.0, -1.0], [0.5, 1.0]])
    a = torch.tensor([0.5, 1.0])
    y = torch.tensor([[1, 0], [-1, 1]])
    # Known entries: softplus(-1) [a z = 1, y = 1], softplus(-0.5) [a z = -0.5, y = 0],
    # softplus(-1) [a z = 1, y = 1]; the -1 label is ignored.
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    hand = (sp(-1.0) + sp(-0.5) + sp(-1.0)) / 3
    assert float(weighted_bce_with_logits(z, a, y)) == pytest.approx(hand, abs=1e-6)
    assert float(weighted_bce_with_logits(z, a, torch.full_like(y, -1))) == 0.0


def test_rank_regularisation_hand_values():
    # beta 0.5 of 4 -> high group {0.55, 0.5}, low {0.5, 0.5}: gap 0.025, loss 0.15 - 0.025.
    a = torch.tensor([0.5, 0.55, 0.5, 0.5])
    assert float(rank_regularisation(a, 0.5, 0.15)) == pytest.approx(0.125, abs=1e-6)
    # beta 0.7 of 10 -> M = 7: high mean 0.6, low mean 0.35 / 3; gap 0.4833 > 0.15: loss 0.
    b = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    assert float(rank_regularisation(b[torch.randperm(10)], 0.7, 0.15)) == 0.0
    assert float(rank_regularisation(b, 0.7, 0.6)) == pytest.approx(0.6 - (0.6 - 0.35 / 3))
    assert float(rank_regularisation(torch.tensor([0.3]), 0.7, 0.15)) == 0.0


def test_rank_regularisation_gradient_pushes_groups_apart():
    a = torch.tensor([0.5, 0.52, 0.49, 0.51], requires_grad=True)
    rank_regularisation(a, 0.5, 0.15).backward()
    # High group (0.52, 0.51) gets a negative gradient (pushed up), the low group positive.
    assert a.grad[1] < 0 and a.grad[3] < 0 and a.grad[0] > 0 and a.grad[2] > 0


def test_high_group_size():
    assert high_group_size(10, 0.7) == 7
    assert high_group_size(2, 0.7) == 1
    assert high_group_size(3, 0.99) == 2
    with pytest.raises(ShapeError, match="at least 2"):
        high_group_size(1, 0.7)


def test_scn_loss_mix_and_plain():
    cfg = ImportanceConfig(gamma=0.5, beta=0.5, delta1=0.15)
    a = torch.tensor([0.5, 0.55])
    terms = scn_loss(LOGITS, a, LABELS, cfg)
    wce = float(weighted_cross_entropy(LOGITS, a, LABELS))
    # beta 0.5 of 2: high {0.55}, low {0.5}: RR = 0.15 - 0.05 = 0.1.
    assert float(terms.rr) == pytest.approx(0.1, abs=1e-6)
    assert float(terms.total) == pytest.approx(0.5 * 0.1 + 0.5 * wce, abs=1e-6)
    plain = scn_loss(LOGITS, None, LABELS, ImportanceConfig(enabled=False))
    ce = float(torch.nn.functional.cross_entropy(LOGITS, LABELS))
    assert float(plain.total) == pytest.approx(ce) and float(plain.rr) == 0.0
    with pytest.raises(ShapeError, match="alpha"):
        scn_loss(LOGITS, None, LABELS, cfg)


def test_relabel_hand_case():
    probs = torch.tensor(
        [
            [0.1, 0.8, 0.1],  # high alpha, label 0, margin 0.7: kept (not in the low group)
            [0.6, 0.3, 0.1],  # low alpha, label 1, margin 0.3 > 0.2: -> 0
            [0.45, 0.3, 0.25],  # low alpha, label 1, margin 0.15: kept
            [0.2, 0.2, 0.6],  # high alpha, label 2 (its arg max): kept
        ]
    )
    labels = torch.tensor([0, 1, 1, 2])
    alpha = torch.tensor([0.9, 0.2, 0.1, 0.8])
    new, changed = relabel(probs, labels, alpha, beta=0.5, delta2=0.2)
    assert new.tolist() == [0, 0, 1, 2]
    assert changed.tolist() == [False, True, False, False]
    assert labels.tolist() == [0, 1, 1, 2]  # input untouched
    new, changed = relabel(probs, labels, alpha, beta=0.5, delta2=0.1)
    assert new.tolist() == [0, 0, 0, 2]


def test_label_store_update_and_state():
    store = LabelStore([0, 1, 2, 3])
    assert store.update(torch.tensor([1, 2]), torch.tensor([1, 0])) == 1
    assert store.current.tolist() == [0, 1, 0, 3] and store.changes == 1
    assert store.relabelled().tolist() == [False, False, True, False]
    other = LabelStore([0, 1, 2, 3])
    other.load_state(store.state_tensors(), store.state_json())
    assert other.current.tolist() == [0, 1, 0, 3] and other.changes == 1
    with pytest.raises(ShapeError, match="labels_current"):
        LabelStore([0, 1]).load_state(store.state_tensors(), {})


def test_importance_head_range_and_shape():
    head = ImportanceHead(8)
    a = head(torch.randn(5, 8) * 10)
    assert a.shape == (5,) and bool(((a > 0) & (a < 1)).all())
    with pytest.raises(ShapeError, match=r"\(N, 8\)"):
        head(torch.randn(5, 7))


def test_bad_inputs_raise_typed_errors():
    with pytest.raises(ValueRangeError, match="got 3"):
        weighted_cross_entropy(LOGITS, ALPHA, torch.tensor([0, 3]))
    with pytest.raises(ShapeError, match="alpha"):
        weighted_cross_entropy(LOGITS, torch.ones(3), LABELS)
    with pytest.raises(ShapeError, match="labels"):
        weighted_cross_entropy(LOGITS, ALPHA, torch.tensor([0, 1, 2]))


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("beta", 1.0, "beta"),
        ("gamma", 1.5, "gamma"),
        ("delta2", -0.1, "delta2"),
        ("relabel_after", -1, "relabel_after"),
        ("delta1", "x", "delta1"),
    ],
)
def test_importance_config_errors(key, value, match):
    with pytest.raises(ConfigError, match=match):
        config_from_dict(ImportanceConfig, {key: value})
