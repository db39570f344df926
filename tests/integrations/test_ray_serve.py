"""Ray Serve deployment: request decoding (no Ray) and the HTTP service on a local Ray."""

from __future__ import annotations

import base64
import json
import math
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from auperf import errors
from auperf.integrations import ray as auray


def _free_port() -> int:
    """A TCP port nothing listens on now, so that concurrent test runs do not collide."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = _free_port()
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _raw(frames, **kw):
    return json.dumps(auray.encode_request(frames, **kw)).encode()


# -- decoding, no Ray ------------------------------------------------------------------------------
def test_decode_raw_png_and_bgr_roundtrip(faces):
    frames, lm, fidx = faces
    d = auray.decode_request(_raw(frames, landmarks=lm, frame_index=fidx))
    np.testing.assert_array_equal(d.frames, frames)
    np.testing.assert_array_equal(d.landmarks, lm)
    np.testing.assert_array_equal(d.frame_index, fidx)
    png = auray.decode_request(_raw(frames[:2], encoding="png", landmarks=lm[:3]))
    np.testing.assert_array_equal(png.frames, frames[:2])  # PNG is lossless
    bgr = auray.decode_request(_raw(frames[:2, ..., ::-1], frames_order="BGR"))
    np.testing.assert_array_equal(bgr.frames, frames[:2])
    assert bgr.landmarks is None and bgr.frame_index is None


@pytest.mark.parametrize(
    "body, err, text",
    [
        (b"{not json", errors.ParameterError, "not JSON"),
        (b"[1, 2]", errors.ParameterError, "JSON object"),
        (b'{"frames": 1, "images": []}', errors.ParameterError, "exactly one"),
        (b'{"landmarks": []}', errors.ParameterError, "exactly one"),
        (b'{"images": ["@@@"]}', errors.ParameterError, "images\\[0\\]: not valid base64"),
        (b'{"images": ["aGVsbG8="]}', errors.ParameterError, "images\\[0\\]: not an image"),
        (b'{"images": [], "foo": 1}', errors.ParameterError, "unknown keys \\['foo'\\]"),
        (b'{"frames": {"shape": [1, 2, 2, 3], "data": "AAAA"}}', errors.ShapeError, "3 bytes"),
        (b'{"frames": {"shape": [1, 2, 2], "data": ""}}', errors.ShapeError, "frames.shape"),
        (
            b'{"frames": {"shape": [1,1,1,3], "data": "AAAA"}, "invalid": "x"}',
            errors.ValueRangeError,
            "invalid",
        ),  # noqa: E501
        (
            b'{"frames": {"shape": [1,1,1,3], "data": "AAAA"}, "landmarks": [[1, 2]]}',
            errors.ShapeError,
            "landmarks",
        ),  # noqa: E501
        (
            b'{"frames": {"shape": [1,1,1,3], "data": "AAAA"}, "frame_index": [0.5]}',
            errors.ShapeError,
            "frame_index",
        ),  # noqa: E501
        (
            b'{"frames": {"shape": [99,1,1,3], "data": ""}}',
            auray.PayloadTooLargeError,
            "max_frames",
        ),  # noqa: E501
    ],
)
def test_decode_errors(body, err, text):
    with pytest.raises(err, match=text):
        auray.decode_request(body)


def test_decode_limits(faces):
    frames, lm, fidx = faces
    body = _raw(frames, landmarks=lm, frame_index=fidx)
    with pytest.raises(auray.PayloadTooLargeError, match="max_request_bytes"):
        auray.decode_request(body, auray.ServeLimits(max_request_bytes=len(body) - 1))
    with pytest.raises(auray.PayloadTooLargeError, match="11 faces|12 faces"):
        auray.decode_request(body, auray.ServeLimits(max_faces=10))
    with pytest.raises(auray.PayloadTooLargeError, match="max_pixels"):
        auray.decode_request(body, auray.ServeLimits(max_pixels=100))
    assert issubclass(auray.PayloadTooLargeError, errors.AuperfError)


def test_detect_batched_equals_detector_per_request(faces, detector):
    frames, lm, fidx = faces
    template = np.asarray(detector.manifest.input.alignment.points)
    small = frames[:, :100, :150].copy()  # another frame size: its own group
    reqs = [
        (frames[:2], lm[:4], fidx[:4]),
        (frames[2:5], lm[4:10], fidx[4:10] - 2),
        (small[:1], lm[:2], None),
        (frames[5:], lm[:0], None),  # no faces
    ]
    items = [auray.check_faces(auray.DecodedRequest(f, lmk, fi), template) for f, lmk, fi in reqs]
    got = auray.detect_batched(detector, items)
    for (f, lmk, fi), g in zip(reqs, got, strict=True):
        w = detector.detect(f, lmk, fi)
        np.testing.assert_allclose(g.probabilities, w.probabilities, atol=2e-6)
        np.testing.assert_array_equal(g.active, w.active)
        np.testing.assert_array_equal(g.frame_index, w.frame_index)
        assert g.to_records()[0]["face"] == 0 if len(w) else len(g) == 0


# -- the deployment on a local Ray ---------------------------------------------------------------
def _http(url, body=None, method=None):
    req = urllib.request.Request(url, data=body, method=method or ("POST" if body else "GET"))
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def service(ray_local):
    handle = auray.serve(
        backend="onnxruntime-cpu",
        port=PORT,
        num_cpus=0.5,
        threads=1,
        batch_size=16,
        max_batch_requests=8,
        batch_wait_timeout_s=0.02,
        max_request_bytes=400_000,
        max_faces=64,
    )
    yield handle
    handle.shutdown()


def _check_answer(answer, want):
    assert [f["face"] for f in answer["faces"]] == list(range(len(want)))
    got = np.array(
        [
            [math.nan if f[c] is None else f[c] for c in want.columns()[7::2]]
            for f in answer["faces"]
        ]
    ).reshape(len(want), -1)
    np.testing.assert_allclose(got, want.probabilities, atol=2e-6)
    act = np.array([[f[c] for c in want.columns()[8::2]] for f in answer["faces"]], dtype=bool)
    np.testing.assert_array_equal(act.reshape(want.active.shape), want.active)
    for f, row in zip(answer["faces"], want.to_records(), strict=True):
        assert f["frame"] == row["frame"] and f["valid"] == row["valid"]
        for k in ("x0", "y0", "x1", "y1"):
            assert f[k] == pytest.approx(row[k], abs=1e-9) if row["valid"] else f[k] is None


@pytest.mark.slow
def test_serve_concurrent_clients_and_bad_requests(service, faces, detector):
    frames, lm, fidx = faces
    url = service.url
    assert _http(url + "healthz") == (200, {"status": "ok"})
    assert _http(url + "readyz") == (200, {"status": "ready"})
    rng = np.random.default_rng(0)
    cases = []
    for k in range(12):
        b0 = int(rng.integers(0, 5))
        b1 = int(rng.integers(b0 + 1, 7))
        sel = np.flatnonzero((fidx >= b0) & (fidx < b1))
        lmk = lm[sel].copy()
        invalid = "raise"
        if k == 5:
            lmk[0, 1] = np.nan
            invalid = "mark"
        encoding = "png" if k % 3 == 0 else "raw"
        body = _raw(frames[b0:b1], landmarks=lmk, frame_index=fidx[sel] - b0, encoding=encoding,
                    invalid=invalid)  # fmt: skip
        cases.append(("ok", body, (frames[b0:b1], lmk, fidx[sel] - b0, invalid)))
    nan_lm = lm[:2].copy()
    nan_lm[1, 0, 0] = np.nan
    bad = [
        (400, b'{"frames": '),
        (413, _raw(np.zeros((8, 120, 160, 3), np.uint8))),
        (413, _raw(frames[:1], landmarks=np.repeat(lm[:1], 65, axis=0))),
        (422, _raw(frames[:1], landmarks=nan_lm)),
        (422, _raw(frames[:2], landmarks=lm[:3], frame_index=[0, 1, 2])),
        (400, b'{"frames": {"shape": [1, 1, 1, 3], "data": "AAAA"}}'),  # no landmarks
    ]
    for status, body in bad:
        cases.insert(len(cases) // 2, (status, body, None))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda c: _http(url + "detect", c[1]), cases))
    for (expect, _, ref), (status, answer) in zip(cases, answers, strict=True):
        if expect != "ok":
            assert status == expect, answer
            assert answer["error"] and answer["message"]
            continue
        assert status == 200, answer
        f, lmk, fi, invalid = ref
        _check_answer(answer, detector.detect(f, lmk, fi, invalid=invalid))
    # the bad requests named their fault
    msgs = {s: a["message"] for (s, _, r), (_, a) in zip(cases, answers, strict=True) if r is None}
    assert "max_request_bytes" in msgs[413] or "max_faces" in msgs[413]
    status, info = _http(url + "info")
    assert status == 200 and info["backend"] == "onnxruntime-cpu"
    assert info["stats"]["batched_requests"] == 12
    assert info["stats"]["batches"] < 12  # concurrent requests were batched together
    assert _http(url + "nowhere")[0] == 404
    assert _http(url + "detect", method="GET")[0] == 405


def test_serve_argument_errors(ray_local):
    with pytest.raises(errors.ParameterError, match="max_faces"):
        auray.serve(max_faces=0)
    with pytest.raises(errors.ParameterError, match="batch_wait_timeout_s"):
        auray.serve(batch_wait_timeout_s=-1.0)


def test_encode_request_errors(faces):
    with pytest.raises(errors.ValueRangeError, match="encoding"):
        auray.encode_request(faces[0][:1], encoding="webp")
    obj = auray.encode_request(faces[0][:1], encoding="jpeg")
    assert len(base64.b64decode(obj["images"][0])) < faces[0][0].nbytes


def test_cli_serve_rejects_bad_arguments_before_starting():
    from click.testing import CliRunner

    from auperf.cli import main

    res = CliRunner().invoke(main, ["serve", "--max-faces", "0"])
    assert res.exit_code == 1 and "ParameterError" in res.output and "max_faces" in res.output
    assert "readyz" in CliRunner().invoke(main, ["serve", "--help"]).output


def test_requests_without_landmarks_use_the_front_end(faces, detector):
    """No Ray: what a replica does with a request that has images and no landmarks."""
    from auperf.frontend import Faces

    frames, lm, fidx = faces

    class TableFrontEnd:  # returns the rendered landmarks of the frames it is given
        def detect(self, imgs):
            assert imgs.shape == frames[:3].shape
            sel = fidx < 3
            return Faces(
                frame_index=fidx[sel], boxes=np.zeros((sel.sum(), 4)),
                scores=np.ones(sel.sum(), np.float32), landmarks5=lm[sel], num_frames=3,
            )  # fmt: skip

    template = np.asarray(detector.manifest.input.alignment.points)
    body = _raw(frames[:3], encoding="png")
    limits = auray.ServeLimits()
    with pytest.raises(errors.ParameterError, match="no face front end"):
        auray.prepare_request(body, limits, template)
    item = auray.prepare_request(body, limits, template, TableFrontEnd())
    assert item.invalid == "mark"
    (got,) = auray.detect_batched(detector, [item])
    want = detector.detect(frames[:3], lm[fidx < 3], fidx[fidx < 3])
    np.testing.assert_allclose(got.probabilities, want.probabilities, atol=2e-6)
    np.testing.assert_array_equal(got.frame_index, want.frame_index)
