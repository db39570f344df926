"""Parameter layout, validation errors, the AU <-> expression mapping and categories."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from auperf.errors import NonFiniteError, ParameterError, ShapeError
from auperf.synth import (
    AU_IDS,
    AU_NAMES,
    AU_TO_EXPRESSION,
    CATEGORY_NAMES,
    EXPRESSION_DIMS,
    EXPRESSION_NAMES,
    EXPRESSION_SLICE,
    IDENTITY_DIMS,
    IDENTITY_NAMES,
    IDENTITY_SLICE,
    PARAM_DIM,
    POSE_DIMS,
    POSE_SLICE,
    FaceRenderer,
    au_from_expression,
    expression_category,
    expression_from_au,
    expression_index,
    neutral_params,
    validate_params,
)
from auperf.synth.samplers import sample_category


def test_layout():
    assert POSE_DIMS == 3
    assert EXPRESSION_DIMS == len(EXPRESSION_NAMES) == 23
    assert IDENTITY_DIMS == len(IDENTITY_NAMES) >= 40
    assert PARAM_DIM == 3 + 23 + IDENTITY_DIMS
    assert (
        POSE_SLICE.stop,
        EXPRESSION_SLICE.start,
        EXPRESSION_SLICE.stop,
        IDENTITY_SLICE.start,
        IDENTITY_SLICE.stop,
    ) == (3, 3, 26, 26, PARAM_DIM)
    assert AU_IDS == (1, 2, 4, 6, 7, 9, 10, 12, 14, 15, 17, 23, 24, 25, 26)
    assert AU_NAMES[0] == "AU1" and len(AU_NAMES) == 15
    assert len(set(AU_TO_EXPRESSION)) == 15  # one dim per AU
    for name in (
        "eye_close",
        "upper_lid_raise",
        "lid_tighten",
        "inner_brow_raise",
        "outer_brow_raise",
        "brow_lower",
        "mouth_open",
        "nose_wrinkle",
        "upper_lip_raise",
        "lower_lip_depress",
        "smile",
        "lip_stretch",
        "pucker",
        "lip_corner_depress",
        "cheek_puff",
        "lip_press",
        "mouth_left",
        "mouth_right",
    ):
        assert name in EXPRESSION_NAMES
    x = neutral_params(2)
    assert x.shape == (2, PARAM_DIM)
    assert (x[:, EXPRESSION_SLICE] == 0).all() and (x[:, POSE_SLICE] == 0.5).all()


@pytest.mark.parametrize(
    "bad, err, fragment",
    [
        (np.full((2, PARAM_DIM + 1), 0.5), ParameterError, f"expected {PARAM_DIM} values"),
        (np.full((1, 2, PARAM_DIM), 0.5), ShapeError, "(1, 2, "),
        (np.array(0.5), ShapeError, "got ()"),
    ],
)
def test_validate_shape_errors(bad, err, fragment):
    with pytest.raises(err) as exc:
        validate_params(bad)
    assert "params" in str(exc.value) and fragment in str(exc.value)


def test_validate_value_errors():
    x = neutral_params(3)
    j = expression_index("smile")
    x[1, j] = 1.25
    with pytest.raises(
        ParameterError, match=rf"params: expected values in \[0, 1\], got 1.25 at face 1, dim {j}"
    ):
        validate_params(x)
    x[1, j] = -0.5
    with pytest.raises(ParameterError, match=rf"-0.5 at face 1, dim {j} \(smile\)"):
        validate_params(x)
    x[1, j] = np.nan
    with pytest.raises(NonFiniteError, match=f"nan at face 1, dim {j}"):
        validate_params(x)
    with pytest.raises(ParameterError, match="numeric"):
        validate_params([["a"] * PARAM_DIM])


def test_render_rejects_bad_params(renderer128):
    x = neutral_params(1)
    with pytest.raises(ParameterError, match="params"):
        renderer128.render(x[:, :-1])
    x[0, 0] = 2.0
    with pytest.raises(ParameterError, match="2.0 at face 0, dim 0 \\(yaw\\)"):
        renderer128.render(x)
    with pytest.raises(ShapeError, match="identity"):
        renderer128.render(neutral_params(2), identity=[1, 2, 3])
    with pytest.raises(ParameterError, match="augment"):
        renderer128.render(neutral_params(1), augment="yes")


def test_renderer_constructor_errors():
    from auperf.errors import ValueRangeError

    with pytest.raises(ValueRangeError, match="size"):
        FaceRenderer(size=8)
    with pytest.raises(ParameterError, match="seed"):
        FaceRenderer(seed=1.5)


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (3, 15), elements=st.floats(0.0, 5.0)))
def test_au_roundtrip(au):
    e = expression_from_au(au)
    assert e.shape == (3, EXPRESSION_DIMS)
    np.testing.assert_allclose(au_from_expression(e), au, atol=1e-12)
    other = np.setdiff1d(np.arange(EXPRESSION_DIMS), AU_TO_EXPRESSION)
    assert (e[:, other] == 0).all()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float64, (2, 23), elements=st.floats(0.0, 1.0)))
def test_expression_roundtrip_on_au_dims(e):
    back = expression_from_au(au_from_expression(e))
    idx = list(AU_TO_EXPRESSION)
    np.testing.assert_allclose(back[:, idx], e[:, idx], atol=1e-12)


def test_au_mapping_names():
    # the documented FACS meaning of each AU's dim
    expected = {
        1: "inner_brow_raise",
        2: "outer_brow_raise",
        4: "brow_lower",
        6: "cheek_raise",
        7: "lid_tighten",
        9: "nose_wrinkle",
        10: "upper_lip_raise",
        12: "smile",
        14: "dimple",
        15: "lip_corner_depress",
        17: "chin_raise",
        23: "lip_tighten",
        24: "lip_press",
        25: "lips_part",
        26: "mouth_open",
    }
    for au, j in zip(AU_IDS, AU_TO_EXPRESSION, strict=True):
        assert EXPRESSION_NAMES[j] == expected[au]


def test_au_errors():
    with pytest.raises(ShapeError, match="au_intensity"):
        expression_from_au(np.zeros((2, 14)))
    with pytest.raises(NonFiniteError, match="au_intensity"):
        expression_from_au(np.full((1, 15), np.nan))
    with pytest.raises(ShapeError, match="expression"):
        au_from_expression(np.zeros((2, 22)))


def test_categories_from_prototypes():
    e = np.zeros((4, EXPRESSION_DIMS))
    j = {n: i for i, n in enumerate(EXPRESSION_NAMES)}
    e[1, [j["cheek_raise"], j["smile"]]] = 0.8
    e[2, [j["inner_brow_raise"], j["outer_brow_raise"], j["upper_lid_raise"], j["mouth_open"]]] = (
        0.7
    )
    e[
        3,
        [
            j["inner_brow_raise"],
            j["outer_brow_raise"],
            j["upper_lid_raise"],
            j["mouth_open"],
            j["brow_lower"],
            j["lip_stretch"],
        ],
    ] = 0.7
    names = [CATEGORY_NAMES[c] for c in expression_category(e)]
    assert names == ["neutral", "happiness", "surprise", "fear"]
    e2 = np.zeros((1, EXPRESSION_DIMS))
    e2[0, j["pucker"]] = 0.9  # no prototype
    assert expression_category(e2)[0] == -1


def test_sample_category_is_recovered():
    rng = np.random.default_rng(5)
    e, label = sample_category(rng, 200)
    assert set(np.unique(label)) == set(range(len(CATEGORY_NAMES)))
    np.testing.assert_array_equal(expression_category(e), label)
    out = FaceRenderer(size=64).render(
        np.hstack([np.full((3, 3), 0.5), e[:3], np.full((3, IDENTITY_DIMS), 0.5)])
    )
    np.testing.assert_array_equal(out.expression, label[:3])
