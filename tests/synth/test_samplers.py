"""Samplers: ranges, AU co-occurrence like spontaneous data, identities, poses."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.errors import ParameterError, ValueRangeError
from auperf.synth import AU_IDS, IDENTITY_DIMS, PARAM_DIM, identity_index, validate_params
from auperf.synth.samplers import (
    sample_aus,
    sample_expressions,
    sample_identities,
    sample_params,
    sample_pose,
)


@pytest.fixture(scope="module")
def aus():
    return sample_aus(np.random.default_rng(0), 20000) >= 1.0


def _p(occ, a, given=None):
    i = AU_IDS.index(a)
    if given is None:
        return occ[:, i].mean()
    g = occ[:, AU_IDS.index(given)]
    return occ[g, i].mean()


@pytest.mark.parametrize("a, b", [(12, 6), (6, 12), (2, 1), (1, 2), (25, 26), (7, 4), (24, 17)])
def test_cooccurrence(aus, a, b):
    # P(a | b) is far above the base rate P(a)
    assert _p(aus, a, given=b) > 2.0 * _p(aus, a), (a, b)
    assert _p(aus, a, given=b) > 0.3


def test_base_rates_are_plausible(aus):
    rates = aus.mean(axis=0)
    assert (rates > 0.01).all() and (rates < 0.5).all()
    assert (~aus.any(axis=1)).mean() > 0.2  # many faces show no AU at level 1
    assert _p(aus, 12) > _p(aus, 9)  # smiles are common, nose wrinkles rare


def test_expressions_in_range():
    e, src = sample_expressions(np.random.default_rng(1), 500)
    assert e.shape == (500, 23) and e.min() >= 0 and e.max() <= 1
    assert src.shape == (500,)
    # mouth_left and mouth_right never together
    assert not ((e[:, 21] > 0) & (e[:, 22] > 0)).any()


def test_identities():
    ids = sample_identities(np.random.default_rng(2), 2000)
    assert ids.shape == (2000, IDENTITY_DIMS) and ids.min() >= 0 and ids.max() <= 1
    age = ids[:, identity_index("age") - 26]
    lines = ids[:, identity_index("forehead_lines") - 26]
    assert np.corrcoef(age, lines)[0, 1] > 0.5
    shape = ids[:, identity_index("jaw_width") - 26]
    assert abs(np.median(shape) - 0.5) < 0.03 and shape.std() > 0.1


def test_pose_and_params():
    rng = np.random.default_rng(3)
    p = sample_pose(rng, 4000)
    deg = (2 * p - 1) * np.array([35.0, 25.0, 30.0])
    assert 9 < deg[:, 0].std() < 14 and 6 < deg[:, 1].std() < 9.5
    for expr in ("au", "category", "uniform", "neutral"):
        for pose in ("natural", "uniform", "frontal"):
            x = sample_params(rng, 5, expression=expr, pose=pose)
            assert x.shape == (5, PARAM_DIM)
            validate_params(x)
    with pytest.raises(ParameterError, match="expression"):
        sample_params(rng, 2, expression="happy")
    with pytest.raises(ParameterError, match="rng"):
        sample_params(0, 2)
    with pytest.raises(ValueRangeError, match="n"):
        sample_params(rng, -1)
    with pytest.raises(ParameterError, match="identities"):
        sample_params(rng, 2, identities=np.zeros((3, IDENTITY_DIMS)))


def test_samplers_deterministic():
    a = sample_params(np.random.default_rng(9), 50)
    b = sample_params(np.random.default_rng(9), 50)
    np.testing.assert_array_equal(a, b)
