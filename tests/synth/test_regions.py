"""Each expression dim changes pixels only inside its facial region (augmentation off)."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.synth import EXPRESSION_NAMES, FaceRenderer, Framing, expression_index, neutral_params

# Vertical band (in inter-ocular distances below the eye line; negative = above) that each dim may
# touch on a frontal face. Written from FACS: brows and forehead above the eyes, lids around the
# eye line, the cheek raiser down to the nose base, mouth actions below the nose. Companion
# movements widen some bands: AU9 also lowers the inner brows (and the forehead lines anchored to
# them); lip actions move the philtrum; the jaw drop and cheek puff change the face contour from
# the cheekbone down; moving the mouth sideways drags the lower nasolabial folds.
REGIONS = {
    "inner_brow_raise": (-1.5, 0.0),
    "outer_brow_raise": (-1.5, 0.0),
    "brow_lower": (-1.0, 0.1),
    "eye_close": (-0.3, 0.2),
    "upper_lid_raise": (-0.35, 0.2),
    "lid_tighten": (-0.3, 0.3),
    "cheek_raise": (-0.3, 0.9),
    "nose_wrinkle": (-1.5, 1.35),
    "upper_lip_raise": (0.45, 1.4),
    "lower_lip_depress": (1.0, 1.6),
    "smile": (0.45, 1.6),
    "dimple": (0.9, 1.4),
    "lip_corner_depress": (0.9, 1.6),
    "chin_raise": (0.9, 1.9),
    "lip_stretch": (0.9, 1.5),
    "pucker": (0.75, 1.5),
    "lip_tighten": (0.75, 1.5),
    "lip_press": (0.75, 1.5),
    "lips_part": (1.0, 1.5),
    "mouth_open": (0.6, 2.6),
    "cheek_puff": (-0.3, 1.9),
    "mouth_left": (0.6, 1.9),
    "mouth_right": (0.6, 1.9),
}


def test_every_dim_has_a_region():
    assert set(REGIONS) == set(EXPRESSION_NAMES)


@pytest.fixture(scope="module")
def renders():
    size = 128
    x = neutral_params(1 + len(EXPRESSION_NAMES))
    for k, name in enumerate(EXPRESSION_NAMES):
        x[k + 1, expression_index(name)] = 1.0
    r = FaceRenderer(size=size, framing=Framing(scale=0.7))
    # one key for every face: any random draw is the same, so only the dim differs
    return r.render(x, keys=np.zeros(len(x), np.int64))


@pytest.mark.parametrize("name", EXPRESSION_NAMES)
def test_dim_changes_only_its_region(renders, name):
    k = 1 + EXPRESSION_NAMES.index(name)
    ref, img = renders.images[0].astype(int), renders.images[k].astype(int)
    changed = np.abs(img - ref).max(axis=2) > 0
    assert changed.sum() > 10, f"{name} changes nothing"
    l5 = renders.landmarks5[0]
    eye_y = l5[:2, 1].mean()
    iod = l5[1, 0] - l5[0, 0]
    lo, hi = REGIONS[name]
    margin = 2  # anti-aliasing plus the 3x3 softening blur
    y0 = eye_y + lo * iod - margin
    y1 = eye_y + hi * iod + margin
    ys = np.nonzero(changed)[0]
    outside = (ys < y0) | (ys > y1)
    assert outside.sum() == 0, (name, ys.min(), ys.max(), y0, y1)
    # and the change is inside the face's horizontal extent
    xs = np.nonzero(changed)[1]
    jaw = renders.landmarks68[0, :17, 0]
    assert xs.min() >= jaw.min() - 0.35 * iod and xs.max() <= jaw.max() + 0.35 * iod
