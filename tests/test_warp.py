"""auperf.ops.warp_faces (C++ CPU path) against OpenCV and a float64 NumPy reference."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import auperf
from auperf import align, errors
from auperf.ops import warp_faces
from auperf.ops.reference import normalise_reference, warp_reference

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _similarity(rng, frame_hw, out_size, inside=True):
    """Random src_to_dst similarity whose crop centre lands on (or off) the frame."""
    h, w = frame_hw
    scale = rng.uniform(0.3, 3.0)
    angle = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    if inside:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    else:
        cx, cy = rng.uniform(-2 * w, 3 * w), rng.uniform(-2 * h, 3 * h)
    m = np.array([[c, -s, 0.0], [s, c, 0.0]])
    m[:, 2] = np.array([out_size / 2, out_size / 2]) - m[:, :2] @ [cx, cy]
    return m


def _affine(rng, frame_hw, out_size):
    m = _similarity(rng, frame_hw, out_size)
    m[:, :2] = m[:, :2] @ np.array([[1.0, rng.uniform(-0.4, 0.4)], [rng.uniform(-0.4, 0.4), 1.0]])
    m[:, :2] *= rng.uniform(0.7, 1.3, (2, 1))
    return m


def _cv2_warp(frame, m, size, border=0):
    return cv2.warpAffine(
        frame,
        m,
        (size, size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(border, border, border),
    )


def _agreement_with_cv2(frames, mats, idx, size, border=0):
    ours = warp_faces(
        frames, mats, idx, size=size, dtype="uint8", layout="NHWC", border_value=border
    )
    ref = np.stack([_cv2_warp(frames[i], m, size, border) for m, i in zip(mats, idx, strict=True)])
    diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
    return float((diff <= 1).mean()), int(diff.max())


@pytest.mark.parametrize("kind", ["similarity", "affine"])
def test_uint8_matches_cv2_on_1080p(frame_1080p, rng, kind):
    frames = frame_1080p[None]
    make = _similarity if kind == "similarity" else _affine
    mats = np.stack([make(rng, frames.shape[1:3], 224) for _ in range(24)])
    frac, worst = _agreement_with_cv2(frames, mats, np.zeros(24, np.int64), 224)
    assert frac >= 0.999, f"only {frac:.5f} of pixels within 1 level of cv2 (worst {worst})"


def test_uint8_matches_cv2_partly_and_wholly_outside(astronaut, rng):
    frames = astronaut[None]
    mats = np.stack([_similarity(rng, (512, 512), 160, inside=False) for _ in range(40)])
    frac, worst = _agreement_with_cv2(frames, mats, np.zeros(40, np.int64), 160, border=37)
    assert frac >= 0.999, f"{frac:.5f} within 1 level (worst {worst})"
    # Wholly outside: every pixel is the border value.
    far = np.array([[[1.0, 0, 5000.0], [0, 1.0, 5000.0]]])
    out = warp_faces(frames, far, size=32, dtype="uint8", border_value=(10, 20, 30))
    assert (out[0, 0] == 10).all() and (out[0, 1] == 20).all() and (out[0, 2] == 30).all()


@pytest.mark.parametrize("hw", [(1, 1), (1, 7), (5, 1), (2, 2), (17, 33), (480, 640)])
def test_uint8_matches_cv2_small_and_odd_frames(rng, hw):
    base = cv2.resize(
        rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
        (hw[1], hw[0]),
        interpolation=cv2.INTER_LINEAR,
    )
    frames = base.reshape(1, *hw, 3)
    mats = np.stack([_affine(rng, hw, 24) for _ in range(8)])
    frac, worst = _agreement_with_cv2(frames, mats, np.zeros(8, np.int64), 24, border=90)
    assert frac >= 0.999, f"{frac:.5f} within 1 level (worst {worst})"


def _smooth_frames(rng, b, h, w):
    small = rng.integers(0, 256, (b, max(1, h // 8), max(1, w // 8), 3), dtype=np.uint8)
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_LINEAR) for f in small])


@settings(max_examples=30, deadline=None)
@given(
    b=st.integers(1, 3),
    h=st.integers(1, 64),
    w=st.integers(1, 64),
    n=st.integers(1, 6),
    oh=st.integers(1, 40),
    ow=st.integers(1, 40),
    seed=st.integers(0, 2**31 - 1),
    border=st.integers(0, 255),
)
def test_float_matches_float64_reference(b, h, w, n, oh, ow, seed, border):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (b, h, w, 3), dtype=np.uint8)  # noise: no tolerance hidden
    mats = np.stack([_affine(rng, (h, w), max(oh, ow)) for _ in range(n)])
    idx = rng.integers(0, b, n)
    ours = warp_faces(frames, mats, idx, size=(oh, ow), layout="NHWC", border_value=border)
    ref = warp_reference(frames, mats, idx, (oh, ow), border) / 255.0
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=0)


def test_normalisation_layouts_and_channel_orders(astronaut, rng):
    frames = np.stack([astronaut, astronaut[::-1].copy()])
    mats = np.stack([_similarity(rng, (512, 512), 64) for _ in range(5)])
    idx = np.array([0, 1, 1, 0, 1])
    crops = warp_reference(frames, mats, idx, (64, 64))
    for out_order in ("RGB", "BGR"):
        for layout in ("NCHW", "NHWC"):
            ours = warp_faces(
                frames,
                mats,
                idx,
                size=64,
                mean=IMAGENET_MEAN,
                std=IMAGENET_STD,
                output_order=out_order,
                layout=layout,
            )
            ref = normalise_reference(
                crops, IMAGENET_MEAN, IMAGENET_STD, swap_rb=out_order == "BGR", layout=layout
            )
            assert ours.shape == ref.shape and ours.dtype == np.float32
            np.testing.assert_allclose(ours, ref, atol=1e-4 / 0.224, rtol=0)
    # BGR input to RGB output equals RGB input to RGB output.
    a = warp_faces(frames[..., ::-1], mats, idx, size=64, input_order="BGR")
    b = warp_faces(frames, mats, idx, size=64)
    np.testing.assert_array_equal(a, b)


def test_layouts_and_dtypes_agree_exactly(astronaut, rng):
    frames = astronaut[None]
    mats = np.stack([_similarity(rng, (512, 512), 48, inside=bool(i % 2)) for i in range(6)])
    kw = dict(size=48, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    nchw = warp_faces(frames, mats, **kw)
    nhwc = warp_faces(frames, mats, layout="NHWC", **kw)
    np.testing.assert_array_equal(nchw, nhwc.transpose(0, 3, 1, 2))
    half = warp_faces(frames, mats, dtype="float16", **kw)
    assert half.dtype == np.float16
    np.testing.assert_array_equal(half, nchw.astype(np.float16))  # same round-to-nearest-even
    u8 = warp_faces(frames, mats, size=48, dtype="uint8")
    raw = warp_faces(frames, mats, size=48) * 255.0
    np.testing.assert_array_equal(u8, np.floor(np.clip(raw, 0, 255) + 0.5).astype(np.uint8))


def test_fast_rows_equal_border_rows_bitwise(astronaut):
    """Rows near the frame's last row take the scalar path; the same pixels from a taller frame
    take the SIMD path. Both must give identical bits."""
    short = astronaut[:100][None]
    tall = astronaut[:140][None]
    m = np.array([[[1.0, 0.1, -10.0], [-0.1, 1.0, -20.0]]])
    a = warp_faces(short, m, size=(70, 90), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    b = warp_faces(tall, m, size=(70, 90), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    # Pixels whose taps are inside `short` are identical; the rest differ only by the border.
    ref_inside = warp_reference(short, m, [0], (70, 90))[0]
    ref_tall = warp_reference(tall, m, [0], (70, 90))[0]
    same = np.isclose(ref_inside, ref_tall, atol=0).all(axis=-1)
    assert same.mean() > 0.5
    np.testing.assert_array_equal(a[0][:, same], b[0][:, same])


def test_thread_count_does_not_change_results(frame_1080p, rng):
    frames = frame_1080p[None]
    mats = np.stack([_similarity(rng, (1080, 1920), 112) for _ in range(9)])
    before = auperf.get_num_threads()
    try:
        auperf.set_num_threads(1)
        one = warp_faces(frames, mats, size=112)
        auperf.set_num_threads(2)
        two = warp_faces(frames, mats, size=112)
        auperf.set_num_threads(5)
        five = warp_faces(frames, mats, size=112)
    finally:
        auperf.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, five)


def test_many_faces_per_frame_follow_frame_index(astronaut, rng):
    frames = np.stack([astronaut, 255 - astronaut, astronaut[:, ::-1].copy()])
    mats = np.stack([_similarity(rng, (512, 512), 40) for _ in range(7)])
    idx = np.array([2, 0, 0, 1, 2, 1, 0])
    batch = warp_faces(frames, mats, idx, size=40)
    for i in range(7):
        single = warp_faces(frames[idx[i]][None], mats[i][None], size=40)
        np.testing.assert_array_equal(batch[i], single[0])


def test_estimate_then_warp_puts_landmarks_on_the_template(astronaut):
    """The align -> warp pair: a bright dot at each landmark lands on the template point."""
    frame = np.zeros((1, 600, 800, 3), np.uint8)
    pts = align.TEMPLATE_112 @ np.array([[2.0, 0.6], [-0.6, 2.0]]).T + [300.0, 150.0]
    for x, y in pts:
        cv2.circle(frame[0], (int(round(x)), int(round(y))), 3, (255, 255, 255), -1)
    m = align.estimate_similarity(pts[None], align.TEMPLATE_224)
    crop = warp_faces(frame, m, size=224, dtype="uint8", layout="NHWC")[0, ..., 0]
    for tx, ty in align.TEMPLATE_224:
        patch = crop[int(ty) - 6 : int(ty) + 7, int(tx) - 6 : int(tx) + 7]
        ys, xs = np.nonzero(patch > 128)
        assert len(xs) > 0
        cy, cx = ys.mean() + int(ty) - 6, xs.mean() + int(tx) - 6
        assert abs(cx - tx) < 1.5 and abs(cy - ty) < 1.5


def test_strided_and_reversed_frames(astronaut, rng):
    frames = np.stack([astronaut, astronaut])
    mats = np.stack([_similarity(rng, (256, 512), 32) for _ in range(4)])
    idx = np.array([0, 1, 0, 1])
    strided = frames[:, ::2]  # rows 2x apart: taken as is
    np.testing.assert_array_equal(
        warp_faces(strided, mats, idx, size=32), warp_faces(strided.copy(), mats, idx, size=32)
    )
    flipped = frames[:, :, ::-1]  # negative pixel stride: copied first
    np.testing.assert_array_equal(
        warp_faces(flipped, mats, idx, size=32), warp_faces(flipped.copy(), mats, idx, size=32)
    )


def test_out_argument_is_filled_and_returned(astronaut):
    m = np.array([[[0.5, 0, 0], [0, 0.5, 0]]])
    out = np.full((1, 3, 16, 16), -7.0, np.float32)
    res = warp_faces(astronaut[None], m, size=16, out=out)
    assert res is out and (out != -7.0).all()
    with pytest.raises(errors.ShapeError, match="out: expected"):
        warp_faces(astronaut[None], m, size=16, out=np.empty((1, 16, 16, 3), np.float32))
    with pytest.raises(errors.ShapeError, match="out: expected"):
        warp_faces(astronaut[None], m, size=16, out=np.empty((1, 3, 16, 16), np.float16))


def test_empty_batch_returns_empty(astronaut):
    out = warp_faces(astronaut[None], np.zeros((0, 2, 3)), np.zeros(0, np.int64), size=(8, 9))
    assert out.shape == (0, 3, 8, 9) and out.dtype == np.float32
    out = warp_faces(astronaut[None], np.zeros((0, 2, 3)), size=8, layout="NHWC", dtype="uint8")
    assert out.shape == (0, 8, 8, 3) and out.dtype == np.uint8


def test_frame_index_defaults():
    frames = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
    m = np.tile(np.array([[1.0, 0, 0], [0, 1, 0]]), (3, 1, 1))
    out = warp_faces(frames, m, size=20, dtype="uint8", layout="NHWC")  # N == B: face i <- frame i
    np.testing.assert_array_equal(out[:, :19, :19], frames[:, :19, :19])
    with pytest.raises(errors.ShapeError, match="frame_index: required"):
        warp_faces(frames, m[:2], size=20)


M1 = np.array([[[1.0, 0, 0], [0, 1.0, 0]]])
F1 = np.zeros((1, 8, 8, 3), np.uint8)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (
            dict(frames=np.zeros((8, 8, 3), np.uint8)),
            errors.ShapeError,
            r"frames: expected shape \(B, H, W, 3\)",
        ),
        (dict(frames=np.zeros((1, 8, 8, 4), np.uint8)), errors.ShapeError, "3 channels"),
        (dict(frames=np.zeros((1, 0, 8, 3), np.uint8)), errors.ShapeError, "H, W >= 1"),
        (
            dict(frames=np.zeros((1, 8, 8, 3), np.float32)),
            errors.DTypeError,
            "frames: expected uint8",
        ),
        (
            dict(matrices=np.zeros((1, 3, 3))),
            errors.ShapeError,
            r"matrices: expected shape \(N, 2, 3\)",
        ),
        (dict(frame_index=np.array([1])), errors.IndexRangeError, "frame_index: entry 0 is 1"),
        (dict(frame_index=np.array([-1])), errors.IndexRangeError, "entry 0 is -1"),
        (dict(frame_index=np.array([0.0])), errors.DTypeError, "frame_index: expected integers"),
        (
            dict(frame_index=np.array([0, 0])),
            errors.ShapeError,
            r"frame_index: expected shape \(1,\)",
        ),
        (dict(matrices=np.full((1, 2, 3), np.nan)), errors.NonFiniteError, "face 0 holds NaN"),
        (dict(matrices=np.zeros((1, 2, 3))), errors.SingularMatrixError, "face 0 is singular"),
        (dict(size=0), errors.ShapeError, "size"),
        (dict(size=(4, 4, 4)), errors.ShapeError, "size"),
        (dict(dtype="int16"), errors.DTypeError, "dtype: expected one of"),
        (dict(layout="CHW"), errors.ValueRangeError, "layout"),
        (dict(input_order="RGBA"), errors.ValueRangeError, "input_order"),
        (dict(std=(0.2, 0.0, 0.2)), errors.ValueRangeError, "std: expected values > 0"),
        (dict(mean=(0.1, 0.2)), errors.ShapeError, "mean: expected a scalar or 3 values"),
        (dict(mean=(0.1, np.nan, 0.1)), errors.ValueRangeError, "mean: expected finite"),
        (dict(dtype="uint8", mean=(0.5, 0.5, 0.5)), errors.ValueRangeError, "uint8 output"),
        (dict(border_value=300), errors.ValueRangeError, "border_value"),
    ],
)
def test_bad_input_raises_typed_errors(kwargs, exc, match):
    args = dict(frames=F1, matrices=M1, frame_index=np.array([0]), size=8)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        warp_faces(**args)


def test_errors_are_also_builtin_exceptions():
    with pytest.raises(ValueError):
        warp_faces(F1, np.zeros((1, 2, 3)), size=8)
    with pytest.raises(TypeError):
        warp_faces(F1.astype(np.float32), M1, size=8)


def test_device_frames_need_cuda():
    if auperf.build_info()["cuda_device_count"] > 0:
        pytest.skip("a CUDA device is visible: the device path is covered in tests/gpu")
    torch = pytest.importorskip("torch")

    class FakeCuda:
        """An object that claims to be CUDA memory, as a torch/cupy tensor would."""

        __cuda_array_interface__ = {
            "shape": (1, 8, 8, 3),
            "typestr": "|u1",
            "data": (0, False),
            "version": 3,
            "strides": None,
        }

    del torch
    with pytest.raises((errors.CudaUnavailableError, errors.DeviceError)):
        warp_faces(FakeCuda(), M1, size=8)
    with pytest.raises(errors.DeviceError, match="one device"):
        warp_faces(F1, FakeCuda(), size=8)


def test_avx2_and_sse_loops_give_identical_bits(tmp_path):
    """The AVX2 loop (chosen at run time) and the SSE4.1 loop must agree to the bit."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from skimage import data\n"
        "from auperf.ops import warp_faces\n"
        "rng = np.random.default_rng(5)\n"
        "frames = np.stack([data.astronaut(), data.astronaut()[::-1].copy()])\n"
        "m = np.zeros((30, 2, 3))\n"
        "a = rng.uniform(-0.6, 0.6, 30); s = rng.uniform(0.4, 2.0, 30)\n"
        "m[:, 0, 0] = m[:, 1, 1] = np.cos(a) * s; m[:, 1, 0] = np.sin(a) * s\n"
        "m[:, 0, 1] = -m[:, 1, 0]; m[:, :, 2] = rng.uniform(-300, 100, (30, 2))\n"
        "idx = rng.integers(0, 2, 30)\n"
        "outs = [warp_faces(frames, m, idx, size=(61, 77), dtype=d, layout=l, output_order=o)\n"
        "        for d in ('float32', 'float16', 'uint8') for l in ('NCHW', 'NHWC')\n"
        "        for o in ('RGB', 'BGR')]\n"
        "np.savez(sys.argv[1], *outs)\n"
        "import auperf; print(auperf.build_info()['warp_cpu_path'])\n"
    )
    results, paths = [], []
    for env_extra, name in (({}, "default"), ({"AUPERF_WARP_NO_AVX2": "1"}, "sse")):
        path = tmp_path / f"{name}.npz"
        env = {**__import__("os").environ, **env_extra}
        run = subprocess.run(
            [sys.executable, "-c", code, str(path)],
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
        paths.append(run.stdout.strip())
        results.append(np.load(path))
    assert paths[1] == "sse4.1"
    if paths[0] != "avx2":
        pytest.skip(f"this CPU has no AVX2 (loop {paths[0]}): only the SSE4.1 loop ran")
    for key in results[0].files:
        np.testing.assert_array_equal(results[0][key], results[1][key], err_msg=key)
