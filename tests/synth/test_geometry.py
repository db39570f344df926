"""Geometry: 5 points on the alignment template, landmarks on the drawn features, AU motion."""

from __future__ import annotations

import numpy as np
import pytest

from auperf.synth import (
    BROWS,
    EYES,
    HAIR,
    IDENTITY_SLICE,
    LOWER_LIP,
    MOUTH,
    NOSE,
    SKIN,
    UPPER_LIP,
    FaceRenderer,
    Framing,
    expression_index,
    neutral_params,
)
from auperf.synth.samplers import sample_identities, sample_pose

# auperf.align.TEMPLATE_112 (copied so these tests do not need the compiled core)
TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)


def _at(mask, pts):
    """Mask classes at the pixels nearest to ``pts`` (K, 2)."""
    xi = np.floor(pts[:, 0] + 0.5).astype(int)
    yi = np.floor(pts[:, 1] + 0.5).astype(int)
    return mask[yi, xi]


def _near_class(mask, pt, classes, radius=1.5):
    h, w = mask.shape
    ys, xs = np.mgrid[0:h, 0:w]
    near = (xs - pt[0]) ** 2 + (ys - pt[1]) ** 2 <= radius**2
    return np.isin(mask[near], classes).any()


@pytest.mark.parametrize("size", [112, 224, 256])
def test_frontal_neutral_on_template(size):
    out = FaceRenderer(size=size).render(neutral_params(1))
    err = np.linalg.norm(out.landmarks5[0] - TEMPLATE_112 * size / 112.0, axis=1)
    assert err.max() < 0.03 * size, err


def test_identities_near_template():
    rng = np.random.default_rng(21)
    x = neutral_params(24)
    x[:, IDENTITY_SLICE] = sample_identities(rng, 24)
    out = FaceRenderer(size=112).render(x)
    err = np.linalg.norm(out.landmarks5 - TEMPLATE_112[None], axis=2)
    assert err.max() < 0.08 * 112
    assert np.median(err) < 0.03 * 112


def test_framing_jitter_moves_faces():
    r = FaceRenderer(
        size=112, framing=Framing(jitter_scale=0.1, jitter_shift=0.05, jitter_roll_deg=10)
    )
    x = neutral_params(16)
    out = r.render(x, keys=np.arange(16))
    c = out.landmarks5.mean(axis=1)
    iod = np.linalg.norm(out.landmarks5[:, 1] - out.landmarks5[:, 0], axis=1)
    assert np.ptp(c[:, 0]) > 2 and np.ptp(iod) > 2
    assert np.abs(out.pose_deg[:, 2]).max() <= 10 + 1e-9 and np.ptp(out.pose_deg[:, 2]) > 2
    # the eye line follows the reported roll
    d = out.landmarks5[:, 1] - out.landmarks5[:, 0]
    np.testing.assert_allclose(
        np.degrees(np.arctan2(d[:, 1], d[:, 0])), out.pose_deg[:, 2], atol=0.5
    )


def test_pose_moves_nose_the_documented_way(renderer128):
    x = neutral_params(5)
    x[1, 0], x[2, 0], x[3, 1], x[4, 2] = 0.9, 0.1, 0.9, 0.8
    lm = renderer128.render(x).landmarks68
    rel = lm[:, 30] - 0.5 * (lm[:, 39] + lm[:, 42])  # nose tip relative to the eyes' inner corners
    assert rel[1, 0] > rel[0, 0] + 3 and rel[2, 0] < rel[0, 0] - 3  # yaw: nose right / left
    assert rel[3, 1] > rel[0, 1] + 1  # pitch down: nose further below the eyes
    d = lm[4, 45] - lm[4, 36]
    assert np.degrees(np.arctan2(d[1], d[0])) > 5  # roll: clockwise turn


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_landmarks_on_drawn_features(seed):
    rng = np.random.default_rng(seed)
    n = 10
    x = neutral_params(n)
    x[:, IDENTITY_SLICE] = sample_identities(rng, n)
    x[:, :3] = sample_pose(rng, n, spread=0.8)
    out = FaceRenderer(size=160, framing=Framing(scale=0.75)).render(x)
    for k in range(n):
        m, lm = out.mask[k], out.landmarks68[k]
        # eye centres (corner midpoints) and lid midpoints are inside the eye class
        mids = np.array(
            [
                (lm[37] + lm[41]) / 2,
                (lm[38] + lm[40]) / 2,
                (lm[43] + lm[47]) / 2,
                (lm[44] + lm[46]) / 2,
            ]
        )
        assert (_at(m, out.landmarks5[k, :2]) == EYES).all()
        assert (_at(m, mids) == EYES).all()
        # mouth corners touch the lips; lip middles lie on their lip
        for i in (48, 54):
            assert _near_class(m, lm[i], [UPPER_LIP, LOWER_LIP], 1.5)
        assert _at(m, (0.6 * lm[51] + 0.4 * lm[62])[None])[0] == UPPER_LIP
        assert _at(m, (0.6 * lm[57] + 0.4 * lm[66])[None])[0] == LOWER_LIP
        # brow landmarks on the brows; nose tip on the nose
        # (a fringe may cover a brow: points under hair are occluded, not misplaced)
        for i in range(17, 27):
            if _at(m, lm[i : i + 1])[0] == HAIR:
                continue
            if i in (19, 20, 23, 24):
                assert _at(m, lm[i : i + 1])[0] == BROWS
            else:  # the tapered tips and inner ends
                assert _near_class(m, lm[i], [BROWS], 1.0 if i in (18, 21, 22, 25) else 1.5)
        assert _at(m, lm[30:31])[0] == NOSE
        # chin landmark on the face outline: skin just above, no face skin a little below
        iod = np.linalg.norm(out.landmarks5[k, 1] - out.landmarks5[k, 0])
        up = lm[8] + np.array([0.0, -0.06 * iod])
        down = lm[8] + np.array([0.0, 0.06 * iod])
        # (a beard labels the chin as hair)
        assert _at(m, up[None])[0] in (SKIN, HAIR) and _at(m, down[None])[0] not in (SKIN, HAIR)


def _sweep(dim: str, levels=(0.0, 0.25, 0.5, 0.75, 1.0), size=160, extra=None, scale=0.75):
    x = neutral_params(len(levels))
    x[:, expression_index(dim)] = levels
    if extra:
        for name, v in extra.items():
            x[:, expression_index(name)] = v
    return FaceRenderer(size=size, framing=Framing(scale=scale)).render(x)


def _strictly(a, sign):
    d = np.diff(np.asarray(a, dtype=np.float64)) * sign
    return (d > 0).all(), a


def _class_extent(mask, classes, cols=None, rows=None):
    sel = np.isin(mask, classes)
    if cols is not None:
        sel[:, : cols[0]] = False
        sel[:, cols[1] :] = False
    if rows is not None:
        sel[: rows[0]] = False
        sel[rows[1] :] = False
    ys, xs = np.nonzero(sel)
    return ys, xs


def test_au12_raises_mouth_corners():
    out = _sweep("smile")
    corner_y = out.landmarks68[:, [48, 54], 1].mean(1)
    ok, _ = _strictly(corner_y, -1)
    assert ok, corner_y
    # independent measurement on the mask: the outermost lip pixels move up and outwards
    top = []
    width = []
    for m in out.mask:
        ys, xs = _class_extent(m, [UPPER_LIP, LOWER_LIP])
        left = xs <= xs.min() + 1
        top.append(ys[left].mean())
        width.append(np.ptp(xs))
    assert _strictly(top, -1)[0], top
    assert _strictly(width, 1)[0], width
    assert corner_y[0] - corner_y[-1] > 0.1 * np.ptp(out.landmarks5[0, :2, 0])


def test_au26_drops_the_jaw():
    out = _sweep("mouth_open")
    chin = out.landmarks68[:, 8, 1]
    assert _strictly(chin, 1)[0], chin
    cx = int(round(out.landmarks68[0, 8, 0]))
    bottoms = [np.nonzero(m[:, cx] == SKIN)[0].max() for m in out.mask]
    assert _strictly(bottoms, 1)[0], bottoms


def test_au1_raises_the_inner_brow_and_bends_it():
    out = _sweep("inner_brow_raise")
    inner = out.landmarks68[:, [21, 22], 1].mean(1)
    outer = out.landmarks68[:, [17, 26], 1].mean(1)
    assert _strictly(inner, -1)[0], inner
    assert np.abs(outer - outer[0]).max() < 0.5  # outer end stays (AU1, not AU2)
    # brow pixels above the inner brow landmark's column rise
    tops = []
    for m, lm in zip(out.mask, out.landmarks68, strict=True):
        x = int(round(lm[21, 0]))
        ys = np.nonzero(m[:, x] == BROWS)[0]
        tops.append(ys.min())
    assert np.all(np.diff(tops) <= 0) and tops[-1] < tops[0] - 3, tops


def test_au2_raises_the_outer_brow():
    out = _sweep("outer_brow_raise")
    assert _strictly(out.landmarks68[:, [17, 26], 1].mean(1), -1)[0]


def test_au4_lowers_and_draws_brows_together():
    out = _sweep("brow_lower")
    lm = out.landmarks68
    assert _strictly(lm[:, 17:27, 1].mean(1), 1)[0]
    assert _strictly(lm[:, 22, 0] - lm[:, 21, 0], -1)[0]
    # glabella lines darken the skin between the brows
    mid = 0.5 * (lm[:, 21] + lm[:, 22])
    lum = [
        img[int(p[1]) - 3 : int(p[1]) + 6, int(p[0]) - 6 : int(p[0]) + 7].astype(float).mean()
        for img, p in zip(out.images, mid, strict=True)
    ]
    assert lum[-1] < lum[0] - 2


@pytest.mark.parametrize(
    "dim, idx, sign",
    [
        ("cheek_raise", [40, 41, 46, 47], -1),  # AU6 lower lid up
        ("lid_tighten", [40, 41, 46, 47], -1),  # AU7
        ("nose_wrinkle", [31, 35], -1),  # AU9 nostril wings up
        ("upper_lip_raise", [50, 51, 52], -1),  # AU10
        ("lip_corner_depress", [48, 54], 1),  # AU15 corners down
        ("chin_raise", [57], -1),  # AU17 lower lip pushed up
        ("upper_lid_raise", [37, 38, 43, 44], -1),  # AU5
    ],
)
def test_au_moves_landmarks_monotonically(dim, idx, sign):
    out = _sweep(dim, size=128)
    y = out.landmarks68[:, idx, 1].mean(1)
    assert _strictly(y, sign)[0], y


def test_au6_narrows_the_eyes():
    out = _sweep("cheek_raise", size=128)
    eye_px = [(m == EYES).sum() for m in out.mask]
    assert _strictly(eye_px, -1)[0], eye_px


def test_au14_narrows_and_au23_au24_thin_the_lips():
    out = _sweep("dimple", size=128)
    assert _strictly(out.landmarks68[:, 54, 0] - out.landmarks68[:, 48, 0], -1)[0]
    for dim in ("lip_tighten", "lip_press"):
        out = _sweep(dim, size=128)
        red = [np.isin(m, [UPPER_LIP, LOWER_LIP]).sum() for m in out.mask]
        assert _strictly(red, -1)[0], (dim, red)


def test_au25_parts_the_lips_and_eye_close_closes():
    out = _sweep("lips_part", size=128)
    gap = out.landmarks68[:, 66, 1] - out.landmarks68[:, 62, 1]
    assert _strictly(gap, 1)[0] and gap[0] == pytest.approx(0.0, abs=1e-9)
    inner = [(m == MOUTH).sum() for m in out.mask]
    assert inner[0] == 0 and inner[-1] > 20 and np.all(np.diff(inner) >= 0)
    out = _sweep("eye_close", size=128)
    eye_px = [(m == EYES).sum() for m in out.mask]
    assert _strictly(eye_px, -1)[0] and eye_px[-1] == 0, eye_px


def test_identity_confounds():
    # naturally low brows sit where AU4 puts them; a downturned mouth looks like AU15
    x = neutral_params(4)
    from auperf.synth import identity_index

    x[1, identity_index("brow_height")] = 0.0
    x[2, expression_index("brow_lower")] = 0.6
    x[3, identity_index("mouth_corner_tilt")] = 1.0
    out = FaceRenderer(size=128).render(x)
    lm = out.landmarks68
    brow = lm[:, 17:27, 1].mean(1)
    assert brow[1] > brow[0] + 1 and brow[2] > brow[0] + 1
    corners = lm[:, [48, 54], 1].mean(1)
    assert corners[3] > corners[0] + 1
    assert out.au_intensity[1].sum() == 0 and out.au_intensity[3].sum() == 0


def _umeyama_similarity(src, dst):
    """Least-squares similarity src -> dst (2x3), written out independently of auperf.align."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    s = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[1, 1] = -1
    rot = u @ s @ vt
    scale = np.trace(np.diag(d) @ s) / (a**2).sum(1).mean()
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = md - scale * rot @ ms
    return m


def test_alignment_undoes_framing_jitter():
    import cv2

    size = 128
    x = neutral_params(6)
    x[:, IDENTITY_SLICE] = sample_identities(np.random.default_rng(4), 6)
    ref = FaceRenderer(size=size).render(x)
    jit = FaceRenderer(
        size=size, framing=Framing(jitter_scale=0.12, jitter_shift=0.06, jitter_roll_deg=12)
    ).render(x, keys=np.arange(6) + 100)
    tmpl = TEMPLATE_112 * size / 112.0
    for k in range(6):
        m = _umeyama_similarity(jit.landmarks5[k], tmpl)
        m_ref = _umeyama_similarity(ref.landmarks5[k], tmpl)
        a = cv2.warpAffine(jit.images[k], m, (size, size), flags=cv2.INTER_LINEAR)
        b = cv2.warpAffine(ref.images[k], m_ref, (size, size), flags=cv2.INTER_LINEAR)
        # compare the inner face (eyes to mouth), where both crops have content
        box = (slice(int(0.35 * size), int(0.9 * size)), slice(int(0.25 * size), int(0.75 * size)))
        aligned = np.abs(a[box].astype(float) - b[box].astype(float)).mean()
        unaligned = np.abs(jit.images[k][box].astype(float) - b[box].astype(float)).mean()
        assert aligned < 6.0 and aligned < 0.4 * unaligned, (k, aligned, unaligned)
